"""The composition root, as `edge run` uses it."""
from edge.app import build_controller
from edge.settings import Settings
from cloud_bridge.config import ConfigCommand


def test_config_set_by_the_cloud_applies_at_the_next_start(settings: Settings) -> None:
    first = build_controller(settings)
    with first.db.write() as session:
        ConfigCommand(first.settings)(session, {"settings": {"locker.retention_hours": 48}})
    first.stop()
    assert settings.locker.retention_hours == 72  # the file/env settings object is not mutated

    second = build_controller(settings)
    try:
        assert second.settings.locker.retention_hours == 48
    finally:
        second.stop()
