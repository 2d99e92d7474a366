"""`edge diag scan` and `edge diag iris`: the QR and iris cameras checked on the spot (the
configured camera, the running simulated station's, or a still simulated one), tokens shown
by kind only. edge/diag.py registers these commands."""
from __future__ import annotations

from typing import Any, Optional

import typer

from edge.cli_options import settings_from
from edge.diag_access import DiagError, HttpDiagnostics, console, emit_json, fail


SIM_QR_TEXT = "EDGE-DIAG-SCAN"  # what the simulated camera shows to `diag scan` in simulate mode


def _shown_code(text: str) -> str:
    """A decoded text as the technician sees it: pickup and personal tokens are credentials,
    so only their kind, start and length are shown."""
    from edge.identity.tokens import token_kind

    kind = token_kind(text)
    return text if kind is None else f"<{kind} token {text[:6]}… {len(text)} chars>"


def _scan_images(paths: list[str]) -> list[dict[str, Any]]:
    from edge.drivers.qr import QrDecoder, decode_image_file

    decoder, found = QrDecoder(), []
    for path in paths:
        try:
            codes = decode_image_file(path, decoder)
        except ValueError as exc:
            found.append({"source": path, "error": str(exc), "codes": []})
            continue
        found.append({"source": path, "codes": [_shown_code(t) for t, _ in codes],
                      "ms": round(codes[0][1], 1) if codes else None})
    return found


def _scan_camera(ctx: typer.Context, frames: int) -> list[dict[str, Any]]:
    import time

    from edge.drivers.qr import QrDecoder

    camera = _camera(ctx, "qr")
    decoder, found = QrDecoder(), []
    try:
        for index in range(frames):
            frame = camera.read()
            if frame is None:
                found.append({"source": f"frame {index + 1}", "error": "no frame from the camera",
                              "codes": []})
                continue
            started = time.perf_counter()
            texts = decoder.decode(frame)
            found.append({"source": f"frame {index + 1}", "codes": [_shown_code(t) for t in texts],
                          "ms": round((time.perf_counter() - started) * 1000, 1)})
    finally:
        camera.close()
    return found


def _camera(ctx: typer.Context, purpose: str) -> Any:
    """The configured camera for "qr" or "iris"; in simulate mode with none configured, a
    simulated one showing a test code or a synthetic eye."""
    from edge.app import build_camera

    settings = settings_from(ctx)
    camera = build_camera(settings, purpose, sim_qr_text=SIM_QR_TEXT)
    if camera is None and not settings.simulate and _running_station_is_simulated(settings):
        camera = build_camera(settings_from(ctx, simulate=True), purpose, sim_qr_text=SIM_QR_TEXT)
    if camera is None:
        setting = "identity.qr_camera" if purpose == "qr" else "identity.iris_camera"
        fail(f"no {purpose} camera configured (set {setting})")
    return camera


def _running_station_is_simulated(settings: Any) -> bool:
    """A controller started with --simulate has simulated cameras and no camera settings:
    diag then looks through a simulated camera of its own, as the station does."""
    try:
        from edge.kiosk_ui.guard import API_TOKEN_FILE

        token = settings.data_dir / API_TOKEN_FILE
        station = HttpDiagnostics(f"http://{settings.http.host}:{settings.http.port}",
                                  token.read_text().strip() if token.is_file() else "", timeout_s=5).station()
    except (DiagError, OSError):
        return False
    return bool(station.get("simulate"))


def scan(ctx: typer.Context,
         image: Optional[list[str]] = typer.Option(None, "--image", help="image file(s) to decode"),
         frames: int = typer.Option(5, "--frames", min=1, max=300, help="live frames without --image"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Decode QR codes in image files, or in live frames from the QR camera; ms per image."""
    found = _scan_images(image) if image else _scan_camera(ctx, frames)
    if as_json:
        emit_json(found)
    else:
        from edge.diag_text import cells, compact_table, t

        table = compact_table(t("scan.title"))
        for column in (t("col.source"), t("col.found"), "ms"):
            table.add_column(column, overflow="fold")
        for row in found:
            table.add_row(*cells(row["source"], row.get("error") or "\n".join(row["codes"]) or t("scan.none"),
                                 "" if row.get("ms") is None else row["ms"]))
        console.print(table)
    if any("error" in row for row in found):
        raise typer.Exit(1)


def iris(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Check the iris camera: capture one frame and show the quality gates' figures."""
    import time

    from edge.identity.iris import iris_quality_report

    camera = _camera(ctx, "iris")
    try:
        started = time.perf_counter()
        frame = camera.read()
        capture_ms = round((time.perf_counter() - started) * 1000, 1)
    finally:
        camera.close()
    if frame is None:
        fail("the iris camera gave no frame (unplugged, busy, or wrong identity.iris_camera)", 1)
    started = time.perf_counter()
    report = iris_quality_report(frame)
    report.update(frame=f"{frame.shape[1]}x{frame.shape[0]}", capture_ms=capture_ms,
                  quality_ms=round((time.perf_counter() - started) * 1000, 1))
    if as_json:
        emit_json(report)
        return
    from edge.diag_text import cells, compact_table, t

    table = compact_table(t("iris.title"))
    table.add_column(t("col.figure"), overflow="fold")
    table.add_column(t("col.value"), overflow="fold")
    for key, value in report.items():
        table.add_row(*cells(key, value))
    console.print(table)
