"""`edge diag scan` and `edge diag iris` through the real CLI."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from edge.cli import app
from simulators.camera import QrScene, render_qr_scene, render_empty_scene

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


def diag(tmp_path: Path, *args: str, simulate: bool = True) -> object:
    env = {"EDGE_DATA_DIR": str(tmp_path / "data"), "EDGE_SIMULATE": "1" if simulate else "0"}
    return runner.invoke(app, ["diag", *args], env=env)


def test_scan_decodes_image_files_and_says_which_had_nothing(tmp_path: Path) -> None:
    code = tmp_path / "code.png"
    cv2.imwrite(str(code), render_qr_scene("PARCEL-42", QrScene(size=(800, 600), seed=3)))
    token = tmp_path / "token.png"
    cv2.imwrite(str(token), render_qr_scene("P1.c2VjcmV0LXRva2VuLXRleHQ", QrScene(size=(800, 600), seed=4)))
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), render_empty_scene((640, 480)))

    result = diag(tmp_path, "scan", "--image", str(code), "--image", str(token),
                  "--image", str(empty), "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["codes"] for r in rows] == [["PARCEL-42"], ["<pickup token P1.c2V… 26 chars>"], []]
    assert rows[0]["ms"] > 0 and rows[2]["ms"] is None
    assert "c2VjcmV0LXRva2VuLXRleHQ" not in result.output  # a pickup token is never printed whole


def test_scan_reports_an_unreadable_file_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")

    result = diag(tmp_path, "scan", "--image", str(bad))

    assert result.exit_code == 1 and "not a readable image" in result.output


def test_scan_reads_live_frames_from_the_simulated_camera(tmp_path: Path) -> None:
    result = diag(tmp_path, "scan", "--frames", "3", "--json")

    assert result.exit_code == 0, result.output
    assert [r["codes"] for r in json.loads(result.output)] == [["EDGE-DIAG-SCAN"]] * 3


def test_scan_without_a_camera_says_which_setting_is_missing(tmp_path: Path) -> None:
    result = diag(tmp_path, "scan", simulate=False)

    assert result.exit_code == 2 and "identity.qr_camera" in result.output


def test_iris_shows_quality_figures_for_one_capture(tmp_path: Path) -> None:
    result = diag(tmp_path, "iris", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["code"] == "ok" and report["frame"] == "640x480"
    assert 70 <= report["iris_r"] <= 160 and report["valid_bits"] > 0
    table = diag(tmp_path, "iris")
    assert table.exit_code == 0 and "sharpness" in table.output
    assert diag(tmp_path, "iris", simulate=False).exit_code == 2
