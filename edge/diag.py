"""`edge diag ...`: the technician's view of the locker, over SSH.

The lock-board port has one owner at a time (edge/locker/buslock.py). When the port is
free, diag opens the bus itself; when the running controller holds it, diag asks the
controller through its local HTTP API (/api/diag/... on 127.0.0.1). Never both at once.
"""
from __future__ import annotations

import getpass
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Optional, Protocol

import typer
from rich.console import Console

from edge.cli_options import settings_from

diag_app = typer.Typer(no_args_is_help=True, help="Technician diagnostics of the parcel locker.")
console = Console(highlight=False)  # numbers and phones plain, not coloured mid-text


class DiagError(Exception):
    """A diagnostic could not run; the message says why in one line."""


class Diagnostics(Protocol):
    def doors(self) -> dict[str, Any]: ...
    def open(self, number: int, who: str) -> dict[str, Any]: ...
    def clear_fault(self, number: int, who: str) -> dict[str, Any]: ...
    def maintenance(self, number: int, on: bool, reason: str, who: str) -> dict[str, Any]: ...
    def bus(self) -> dict[str, Any]: ...
    def selftest(self) -> list[dict[str, Any]]: ...
    def events(self, limit: int = 20) -> dict[str, Any]: ...


class HttpDiagnostics:
    """The running controller's /api/diag endpoints."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 30) -> None:
        self._base = base_url.rstrip("/")
        self._token = token  # the controller's local API credential (<data_dir>/api.token)
        self._timeout_s = timeout_s

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self._base}/api/diag/{path}", data=data,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self._token}"},
                                         method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise DiagError(f"controller refused: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DiagError(f"the running controller holds the bus but its API at {self._base} "
                            f"does not answer ({exc})") from None

    def doors(self) -> dict[str, Any]:
        return self._call("doors")

    def open(self, number: int, who: str) -> dict[str, Any]:
        return self._call("open", {"compartment": number, "who": who})

    def clear_fault(self, number: int, who: str) -> dict[str, Any]:
        return self._call("clear-fault", {"compartment": number, "who": who})

    def maintenance(self, number: int, on: bool, reason: str, who: str) -> dict[str, Any]:
        return self._call("maintenance", {"compartment": number, "on": on, "reason": reason, "who": who})

    def bus(self) -> dict[str, Any]:
        return self._call("bus")

    def selftest(self) -> list[dict[str, Any]]:
        return self._call("selftest")["checks"]

    def events(self, limit: int = 20) -> dict[str, Any]:
        return self._call(f"events?limit={limit}")

    def station(self) -> dict[str, Any]:
        return self._call("station")


@contextmanager
def open_diagnostics(ctx: typer.Context) -> Iterator[tuple[Diagnostics, str]]:
    """Diagnostics and how they are reached ("local bus" or the controller's URL)."""
    from edge.app import local_locker_diagnostics
    from edge.locker.buslock import BusBusy, BusLock, bus_lock_path

    settings = settings_from(ctx)
    controller_url = f"http://{settings.http.host}:{settings.http.port}"
    if settings.locker.serial_url is None and not settings.simulate:
        try:  # a running controller (even a simulated one) answers without any bus setting here
            BusLock(bus_lock_path(settings.data_dir)).acquire().release()
        except BusBusy:
            yield HttpDiagnostics(controller_url, _api_token(settings)), "controller"
            return
        _fail("the controller is not running and no lock-board bus is configured "
              "(set locker.serial_url / EDGE_LOCKER__SERIAL_URL)")
    with ExitStack() as stack:
        try:
            diagnostics = stack.enter_context(local_locker_diagnostics(settings))
        except BusBusy:
            yield HttpDiagnostics(controller_url, _api_token(settings)), "controller"
            return
        yield diagnostics, "local bus"


def _api_token(settings: Any) -> str:
    """The running controller's local API credential: readable by its user and root only."""
    from edge.kiosk_ui.guard import API_TOKEN_FILE

    path = settings.data_dir / API_TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:  # a controller that has not served yet; its API refuses or is silent
        return ""
    except OSError as exc:
        _fail(f"cannot read the local API credential {path} ({exc.strerror}); "
              "run as the controller's user or with sudo")
    raise AssertionError("unreachable")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"edge diag: {message}", err=True)
    raise typer.Exit(code)


def _run(ctx: typer.Context, action: str, *args: Any) -> tuple[Any, str]:
    from edge.locker.errors import LockerError

    try:
        with open_diagnostics(ctx) as (diagnostics, via):
            return getattr(diagnostics, action)(*args), via
    except (DiagError, LockerError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@diag_app.command()
def doors(ctx: typer.Context, as_json: bool = typer.Option(False, "--json"),
          occupied: bool = typer.Option(False, "--occupied", help="only compartments holding a parcel"),
          faults: bool = typer.Option(False, "--faults", help="only compartments with a fault"),
          overdue: bool = typer.Option(False, "--overdue", help="only overdue parcels"),
          maintenance: bool = typer.Option(False, "--maintenance", help="only compartments out of service")) -> None:
    """Every compartment: lock, door, state, parcel (masked phone, waybill tail, age), fault,
    then a summary line. Filters combine as "any of". Exit 1 when a board does not answer."""
    from edge.diag_text import door_notes, door_summary, doors_table, filter_doors, t

    report, via = _run(ctx, "doors")
    rows = filter_doors(report["compartments"], occupied=occupied, faults=faults, overdue=overdue,
                        maintenance=maintenance)
    summary = door_summary(report["compartments"])
    if as_json:
        _emit_json({**report, "compartments": rows, "summary": summary})
    else:
        console.print(doors_table(rows, via))
        for note in door_notes(rows):
            console.print(note, markup=False)
        for board in report["boards"]:
            if not board["reachable"]:
                console.print(t("board.unreachable", board=board["board"], error=board["error"]), style="red", markup=False)
        if len(rows) != summary["total"]:
            console.print(t("shown", shown=len(rows), total=summary["total"]), markup=False)
        console.print(t("summary", **summary), markup=False)
    if any(not b["reachable"] for b in report["boards"]):
        raise typer.Exit(1)


def _inside_words(row: dict[str, Any], number: int, tz_name: str) -> str:
    """What a technician is about to expose, in a sentence."""
    from edge.diag_text import age_words, local_time, state_word, t

    parcel = row.get("parcel")
    if parcel:
        return t("open.inside.parcel", number=number, phone=parcel["phone_masked"],
                 waybill="…" + (parcel["waybill_tail"] or "?"), age=age_words(parcel["age_s"]),
                 since=local_time(parcel["deposited_at"], tz_name))
    if row.get("state") == "deposit":
        return t("open.inside.deposit", number=number)
    return t("open.inside.empty", number=number, state=state_word(row.get("state", "unknown")))


def _confirm_opening(row: dict[str, Any] | None, number: int, tz_name: str) -> None:
    """Name what is inside; ask; ask again when a resident's parcel is. Not a terminal: refuse."""
    from edge.diag_text import t

    if not sys.stdin.isatty():
        _fail(t("open.not_interactive", number=number))
    if row is not None:
        console.print(_inside_words(row, number, tz_name), markup=False)
    if not typer.confirm(t("open.confirm", number=number)):
        _fail(t("open.declined"), 1)
    if row is not None and row.get("parcel") and not typer.confirm(t("open.confirm_again")):
        _fail(t("open.declined"), 1)


@diag_app.command("open")
def open_door(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
              yes: bool = typer.Option(False, "--yes", help="do not ask (needed when stdin is not a terminal)"),
              as_json: bool = typer.Option(False, "--json"),
              who: Optional[str] = typer.Option(None, "--who", help="technician name for the audit")) -> None:
    """Open one door (audited as technician): names what is inside and asks, twice when it
    holds a resident's parcel. Exit 0 only when status confirms it open."""
    from edge.diag_text import t
    from edge.locker.errors import LockerError

    tz_name = settings_from(ctx).site.timezone
    try:
        with open_diagnostics(ctx) as (diagnostics, via):
            rows = {c["number"]: c for c in diagnostics.doors()["compartments"]}
            if number not in rows:
                _fail(t("not_found", number=number))
            if not yes:
                _confirm_opening(rows.get(number), number, tz_name)
            elif not as_json:  # no question, but the technician still sees what the door exposes
                console.print(_inside_words(rows[number], number, tz_name), markup=False)
            result = diagnostics.open(number, who or _who())
    except (DiagError, LockerError) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(result)
    elif result["opened"]:
        console.print(t("open.done", number=number, attempts=result["attempts"], via=t(f"via.{via}")), markup=False)
    else:
        console.print(t("open.failed", number=number, error=result["error"]), style="red", markup=False)
    if not result["opened"]:
        raise typer.Exit(1)


@diag_app.command("clear-fault")
def clear_fault(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
                yes: bool = typer.Option(False, "--yes", help="do not ask"),
                who: Optional[str] = typer.Option(None, "--who")) -> None:
    """Put a repaired compartment back in service (audited)."""
    from edge.diag_text import t

    if not yes and not typer.confirm(t("clear.confirm", number=number)):
        raise typer.Exit(1)
    _run(ctx, "clear_fault", number, who or _who())
    console.print(t("clear.done", number=number), markup=False)


@diag_app.command()
def maintenance(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
                switch: str = typer.Argument(..., metavar="on|off", help="on: out of service; off: back"),
                reason: str = typer.Option("", "--reason", help="why (required with on); audited"),
                as_json: bool = typer.Option(False, "--json"),
                who: Optional[str] = typer.Option(None, "--who", help="technician name for the audit")) -> None:
    """Take a compartment out of service for maintenance (never assigned to a deposit; a
    parcel inside stays collectable) or put it back. Audited."""
    if switch not in ("on", "off"):
        _fail("say on (out of service) or off (back in service)")
    if switch == "on" and not reason.strip():
        _fail("--reason is required to take a compartment out of service")
    result, via = _run(ctx, "maintenance", number, switch == "on", reason, who or _who())
    if as_json:
        _emit_json(result)
    elif result["maintenance"]:
        inside = "; the parcel inside stays collectable" if result["parcel_inside"] else ""
        console.print(f"compartment {number} is out of service for maintenance ({result['reason']}){inside} "
                      f"(via {via})")
    else:
        console.print(f"compartment {number} is back in service (via {via})")


@diag_app.command()
def bus(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Scan the bus: which boards answer. Exit 1 when a configured board is missing."""
    from edge.diag_text import t

    scan, via = _run(ctx, "bus")
    if as_json:
        _emit_json(scan)
    else:
        console.print(t("bus.boards", configured=scan["configured"], answering=scan["answering"],
                        via=t(f"via.{via}")), markup=False)
        if scan["missing"]:
            console.print(t("bus.missing", boards=scan["missing"]), style="red", markup=False)
        if scan["unexpected"]:
            console.print(t("bus.unexpected", boards=scan["unexpected"]), style="yellow", markup=False)
        if scan["error"]:
            console.print(t("bus.error", error=scan["error"]), style="red", markup=False)
        if line := scan.get("line"):
            console.print(t("bus.line", counts=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in line.items())),
                          markup=False)
    if scan["missing"] or scan["error"]:
        raise typer.Exit(1)


@diag_app.command()
def selftest(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Database, key files, bus and boards, disk space, cloud link and last PUBACK, outbox
    backlog, clock synchronisation, each camera. Exit 1 when a check fails ("unknown" is
    not a failure)."""
    from edge.diag_text import checks_table, t

    checks, via = _run(ctx, "selftest")
    if via == "local bus":  # no controller: the station's checks from here (the controller adds its own)
        from edge.app import build_camera
        from edge.station_checks import offline_checks

        settings = settings_from(ctx)
        checks += offline_checks(settings, settings.database_path,
                                 lambda purpose: build_camera(settings, purpose, sim_qr_text=_SIM_QR_TEXT))
    if as_json:
        _emit_json(checks)
    else:
        console.print(checks_table(checks, t("selftest.title", via=t(f"via.{via}"))))
    if any(check["ok"] is False for check in checks):
        raise typer.Exit(1)


@diag_app.command()
def events(ctx: typer.Context, limit: int = typer.Option(20, "--limit", min=1, max=500),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Recent audit rows and outbox events (pickup codes are never shown); times in the
    site's time zone (--json: UTC)."""
    from edge.diag_text import cells, compact_table, local_time, shorten, t

    recent, via = _run(ctx, "events", limit)
    if as_json:
        _emit_json(recent)
        return
    tz_name = settings_from(ctx).site.timezone
    audit_table = compact_table(t("events.audit", via=t(f"via.{via}"), tz=tz_name))
    for key in ("col.time", "col.actor", "col.action", "col.target", "col.result"):
        audit_table.add_column(t(key), no_wrap=key == "col.time", overflow="fold",
                               min_width={"col.target": 20, "col.result": 10}.get(key))  # ids whole
    for row in recent["audit"]:  # "actor: id" wraps at its space on a narrow terminal
        actor = row["actor"] + (f": {row['actor_id']}" if row["actor_id"] else "")
        audit_table.add_row(*cells(local_time(row["ts"], tz_name), actor, row["action"], row["target"] or "",
                                   row["result"]))
    outbox_table = compact_table(t("events.outbox"))
    for key in ("col.seq", "col.time", "col.type", "col.sent", "col.data"):
        outbox_table.add_column(t(key), no_wrap=key in ("col.time", "col.type"), overflow="fold")
    for row in recent["outbox"]:
        outbox_table.add_row(*cells(row["seq"], local_time(row["ts"], tz_name), row["type"],
                                    t("yes") if row["published"] else t("no"),
                                    shorten(json.dumps(row["data"], ensure_ascii=False), 120)))
    console.print(audit_table)
    console.print(outbox_table)


@diag_app.command()
def export(ctx: typer.Context,
           since: str = typer.Option(..., "--since", help="first day (YYYY-MM-DD, site time) or an ISO time"),
           until: Optional[str] = typer.Option(None, "--until", help="last day, included (default: no end)"),
           fmt: str = typer.Option("csv", "--format", help="csv or jsonl"),
           output: Optional[str] = typer.Option(None, "--output", "-o", help="file (default: stdout)")) -> None:
    """Operation records (drop-offs, pickups, collections, returns, refusals, door openings,
    refused codes, maintenance, purges) between two dates, as CSV or JSON Lines. Read from the
    database directly, so it works whether the controller runs or not."""
    from edge.storage import Database
    from edge.storage.records import EXPORT_FORMATS, export_lines, records

    settings = settings_from(ctx)
    if fmt not in EXPORT_FORMATS:
        _fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}")
    start, end = _moment(since, settings, end_of_day=False), None
    if until is not None:
        end = _moment(until, settings, end_of_day=True)
    if not settings.database_path.is_file():
        _fail(f"no database at {settings.database_path} (set EDGE_DATA_DIR)")
    db = Database(settings.database_path)
    try:
        if end is not None and end <= start:
            _fail("--until is before --since")
        lines = export_lines(records(db, start, end), fmt)
        if output is None:
            for line in lines:
                typer.echo(line, nl=False)
        else:
            with open(output, "w", encoding="utf-8", newline="") as out:
                out.writelines(lines)
    finally:
        db.dispose()


def _moment(text: str, settings: Any, *, end_of_day: bool) -> Any:
    """A date (the whole day in the site's time zone; --until includes its day) or an ISO time."""
    from datetime import date, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.site.timezone)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"not a date or time: {text!r} (use YYYY-MM-DD)")
            raise AssertionError("unreachable") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start + timedelta(days=1) if end_of_day else start


@diag_app.command()
def security(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """File modes, local API credential, platform key, broker TLS and credentials. Exit 1
    when one is not as docs/security.md expects."""
    from edge.security import security_checks

    checks = security_checks(settings_from(ctx))
    if as_json:
        _emit_json(checks)
    else:
        from edge.diag_text import checks_table, t

        console.print(checks_table(checks, t("security.title")))
    if not all(check["ok"] for check in checks):
        raise typer.Exit(1)


# --- identification: QR decoding and the iris camera ---------------------------------------

_SIM_QR_TEXT = "EDGE-DIAG-SCAN"  # what the simulated camera shows to `diag scan` in simulate mode


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
    camera = build_camera(settings, purpose, sim_qr_text=_SIM_QR_TEXT)
    if camera is None and not settings.simulate and _running_station_is_simulated(settings):
        camera = build_camera(settings_from(ctx, simulate=True), purpose, sim_qr_text=_SIM_QR_TEXT)
    if camera is None:
        setting = "identity.qr_camera" if purpose == "qr" else "identity.iris_camera"
        _fail(f"no {purpose} camera configured (set {setting})")
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


@diag_app.command()
def scan(ctx: typer.Context,
         image: Optional[list[str]] = typer.Option(None, "--image", help="image file(s) to decode"),
         frames: int = typer.Option(5, "--frames", min=1, max=300, help="live frames without --image"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Decode QR codes in image files, or in live frames from the QR camera; ms per image."""
    found = _scan_images(image) if image else _scan_camera(ctx, frames)
    if as_json:
        _emit_json(found)
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


@diag_app.command()
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
        _fail("the iris camera gave no frame (unplugged, busy, or wrong identity.iris_camera)", 1)
    started = time.perf_counter()
    report = iris_quality_report(frame)
    report.update(frame=f"{frame.shape[1]}x{frame.shape[0]}", capture_ms=capture_ms,
                  quality_ms=round((time.perf_counter() - started) * 1000, 1))
    if as_json:
        _emit_json(report)
        return
    from edge.diag_text import cells, compact_table, t

    table = compact_table(t("iris.title"))
    table.add_column(t("col.figure"), overflow="fold")
    table.add_column(t("col.value"), overflow="fold")
    for key, value in report.items():
        table.add_row(*cells(key, value))
    console.print(table)
