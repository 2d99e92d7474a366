import subprocess
import sys
from pathlib import Path

import pytest

from edge.settings import SettingsError, load_settings


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[locker]\nserial_url = "/dev/ttyUSB0"\nboards = [0, 1, 2]\n[http]\nport = 9000\n')
    monkeypatch.setenv("EDGE_LOCKER__SERIAL_URL", "socket://127.0.0.1:7000")
    monkeypatch.setenv("EDGE_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(config)
    assert settings.locker.serial_url == "socket://127.0.0.1:7000"
    assert settings.locker.boards == [0, 1, 2]
    assert settings.http.port == 9000
    assert settings.data_dir == tmp_path / "d"


@pytest.mark.parametrize(("raw", "boards"), [("2", [0, 1]), ("0,3", [0, 3]), ("[1, 2]", [1, 2])])
def test_boards_from_environment(monkeypatch: pytest.MonkeyPatch, raw: str, boards: list[int]) -> None:
    monkeypatch.setenv("EDGE_LOCKER__BOARDS", raw)
    assert load_settings().locker.boards == boards


def test_default_layout_numbers_compartments_across_boards() -> None:
    layout = load_settings(locker={"boards": [0, 1]}).locker.layout()
    assert len(layout) == 32
    c17 = layout[16]
    assert (c17.number, c17.board, c17.lock) == (17, 1, 0)
    assert [c.size for c in layout[:16]] == list("SSSSSSMMMMMMLLLL")


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("EDGE_LOCKER__CLOSED_BIT", "2", "EDGE_LOCKER__CLOSED_BIT"),
        ("EDGE_HTTP__PORT", "eighty", "EDGE_HTTP__PORT"),
        ("EDGE_HTTP__HOST", "0.0.0.0", "EDGE_HTTP__HOST"),
        ("EDGE_LOCKER__BOARDS", "0,16", "EDGE_LOCKER__BOARDS"),
    ],
)
def test_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_setting_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    env = {"EDGE_HTTP__PORT": "eighty", "EDGE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "edge", "run", "--simulate"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "EDGE_HTTP__PORT" in lines[0]


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml")
