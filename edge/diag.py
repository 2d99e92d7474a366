"""`edge diag ...`: the technician's view of the locker, over SSH.

The lock-board port has one owner at a time (edge/locker/buslock.py). When the port is
free, diag opens the bus itself; when the running controller holds it, diag asks the
controller through its local HTTP API (/api/diag/... on 127.0.0.1). Never both at once.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer

from edge.cli_options import settings_from
from edge.diag_access import DiagError, console, emit_json, fail, open_diagnostics, run, who_is_asking
from edge.diag_cameras import SIM_QR_TEXT, iris, scan

diag_app = typer.Typer(no_args_is_help=True, help="Technician diagnostics of the parcel locker.")
diag_app.command()(scan)
diag_app.command()(iris)


@diag_app.command()
def doors(ctx: typer.Context, as_json: bool = typer.Option(False, "--json"),
          occupied: bool = typer.Option(False, "--occupied", help="only compartments holding a parcel"),
          faults: bool = typer.Option(False, "--faults", help="only compartments with a fault"),
          overdue: bool = typer.Option(False, "--overdue", help="only overdue parcels"),
          maintenance: bool = typer.Option(False, "--maintenance", help="only compartments out of service")) -> None:
    """Every compartment: lock, door, state, parcel (masked phone, waybill tail, age), fault,
    then a summary line. Filters combine as "any of". Exit 1 when a board does not answer."""
    from edge.diag_text import door_notes, door_summary, doors_table, filter_doors, t

    report, via = run(ctx, "doors")
    rows = filter_doors(report["compartments"], occupied=occupied, faults=faults, overdue=overdue,
                        maintenance=maintenance)
    summary = door_summary(report["compartments"])
    if as_json:
        emit_json({**report, "compartments": rows, "summary": summary})
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
        fail(t("open.not_interactive", number=number))
    if row is not None:
        console.print(_inside_words(row, number, tz_name), markup=False)
    if not typer.confirm(t("open.confirm", number=number)):
        fail(t("open.declined"), 1)
    if row is not None and row.get("parcel") and not typer.confirm(t("open.confirm_again")):
        fail(t("open.declined"), 1)


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
                fail(t("not_found", number=number))
            if not yes:
                _confirm_opening(rows.get(number), number, tz_name)
            elif not as_json:  # no question, but the technician still sees what the door exposes
                console.print(_inside_words(rows[number], number, tz_name), markup=False)
            result = diagnostics.open(number, who or who_is_asking())
    except (DiagError, LockerError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(result)
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
    run(ctx, "clear_fault", number, who or who_is_asking())
    console.print(t("clear.done", number=number), markup=False)


@diag_app.command()
def maintenance(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
                switch: str = typer.Argument(..., metavar="on|off", help="on: out of service; off: back"),
                reason: str = typer.Option("", "--reason", help="why (required with on); audited"),
                as_json: bool = typer.Option(False, "--json"),
                who: Optional[str] = typer.Option(None, "--who", help="technician name for the audit")) -> None:
    """Take a compartment out of service for maintenance (never assigned to a deposit; a
    parcel inside stays collectable) or put it back. Audited."""
    from edge.diag_text import t

    if switch not in ("on", "off"):
        fail(t("maintenance.say_on_off"))
    if switch == "on" and not reason.strip():
        fail(t("maintenance.reason"))
    result, via = run(ctx, "maintenance", number, switch == "on", reason, who or who_is_asking())
    if as_json:
        emit_json(result)
    elif result["maintenance"]:
        inside = t("maintenance.inside") if result["parcel_inside"] else ""
        console.print(t("maintenance.on", number=number, reason=result["reason"], inside=inside,
                        via=t(f"via.{via}")),
                      markup=False)
    else:
        console.print(t("maintenance.off", number=number, via=t(f"via.{via}")), markup=False)


@diag_app.command()
def bus(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Scan the bus: which boards answer. Exit 1 when a configured board is missing."""
    from edge.diag_text import t

    scan, via = run(ctx, "bus")
    if as_json:
        emit_json(scan)
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

    checks, via = run(ctx, "selftest")
    if via == "local bus":  # no controller: the station's checks from here (the controller adds its own)
        from edge.app import build_camera
        from edge.station_checks import offline_checks

        settings = settings_from(ctx)
        checks += offline_checks(settings, settings.database_path,
                                 lambda purpose: build_camera(settings, purpose, sim_qr_text=SIM_QR_TEXT))
    if as_json:
        emit_json(checks)
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

    recent, via = run(ctx, "events", limit)
    if as_json:
        emit_json(recent)
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
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}")
    start, end = _moment(since, settings, end_of_day=False), None
    if until is not None:
        end = _moment(until, settings, end_of_day=True)
    if not settings.database_path.is_file():
        fail(f"no database at {settings.database_path} (set EDGE_DATA_DIR)")
    db = Database(settings.database_path)
    try:
        if end is not None and end <= start:
            fail("--until is before --since")
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
            fail(f"not a date or time: {text!r} (use YYYY-MM-DD)")
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
        emit_json(checks)
    else:
        from edge.diag_text import checks_table, t

        console.print(checks_table(checks, t("security.title")))
    if not all(check["ok"] for check in checks):
        raise typer.Exit(1)


# --- identification: QR decoding and the iris camera ---------------------------------------
