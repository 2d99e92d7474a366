"""The composition root's upkeep parts, built by edge/app.py's build_controller.

Owns the operation records' purge, the voice notes' service and its hourly prune, the
camera covering the locker, the station's operations (health summary, update.available,
nightly backup) and `_Every`, the thread that runs hourly upkeep. The core services and
the bridge are still built in edge/app.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.logs import get_logger

if TYPE_CHECKING:
    from edge.controller import Controller

log = get_logger("edge.app")  # the records keep the name they had when this lived there


def _build_records(controller: Controller) -> None:
    """The operation records' retention purge, run by the scheduler (ADR 0135)."""
    from edge.storage.records import RecordsJobs

    records = controller.settings.records
    controller.components.append(RecordsJobs(controller.db, records.retention_days, records.purge_batch_rows,
                                             records.purge_every_s, controller.clock))


def _station_camera(controller: Controller) -> Any:
    """The camera covering the locker (send-outs are refused while it gives no picture): the
    configured one, a simulated one in simulate mode, else none (sending stays closed)."""
    from edge.drivers.camera import OpenCVCamera, StationCamera

    spec, simulation = controller.settings.locker.station_camera, controller.simulation
    source: Any = None
    if spec is not None:
        source = OpenCVCamera(spec, 640, 480)
    elif simulation is not None:
        source = simulation.add_station_camera()
    camera = controller.services.station_camera = StationCamera(source)
    return camera


def _build_voice_notes(controller: Controller) -> None:
    """Voice notes on requests, kept under the data folder until the cloud has them (ADR 0128)."""
    from edge.community.voice import VoiceNoteService

    voice_notes = VoiceNoteService(controller.db, controller.clock, controller.settings.data_dir / "voice")
    controller.services.voice_notes = voice_notes
    controller.components.append(_Every(3600, voice_notes.prune, "voice_prune"))


class _Every:
    """Runs `work` now and then on its own thread (hourly upkeep); a failure is logged and
    tried again next time, never stops the controller."""

    def __init__(self, seconds: float, work: Any, name: str) -> None:
        import threading

        self._seconds, self._work, self._name = seconds, work, name
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self._seconds):
            try:
                self._work()
            except Exception:  # noqa: BLE001 - upkeep is retried at the next round
                log.exception("upkeep_failed", task=self._name)


def _build_operations(controller: Controller) -> None:
    """Running the station for years (edge/ops): the health summary in the retained status,
    the update.available command, and the nightly backup (when backup.dir is set). A missing
    backup key stops start-up with one line, as any bad setting does."""
    from edge.ops.backup import BackupError
    from edge.ops.fetch import UpdateAvailable
    from edge.ops.metrics import health_summary
    from edge.ops.nightly import NightlyBackup, sealing_from
    from edge.settings import SettingsError

    settings = controller.settings
    services = controller.services
    if services.bridge is not None:  # a health summary rides in the retained status
        services.bridge.health = lambda: health_summary(controller)
    if services.command_router is not None:
        services.command_router.register("update.available", UpdateAvailable(settings))
    backup = settings.backup
    if backup.dir is not None:
        try:
            sealing = sealing_from(backup.passphrase_file, backup.recipient_key)
        except BackupError as exc:
            raise SettingsError(f"bad setting backup: {exc}") from None
        nightly = NightlyBackup(settings.data_dir, backup.dir, backup.keep, sealing,
                                settings.mqtt.device_id, backup.at, settings.site.timezone)
        services.nightly_backup = nightly
        controller.components.append(nightly)
