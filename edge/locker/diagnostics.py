"""What a technician asks of the locker, as plain data: the same answers whether `edge diag`
owns the bus itself or asks the running controller over its local HTTP API."""
from __future__ import annotations

import dataclasses
import os
import shutil
from datetime import timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from edge.clock import iso_utc
from edge.drivers.lockboard.base import BoardStatus, BusError, LockBoardBus
from edge.locker.doors import redact_event
from edge.locker.models import Parcel
from edge.locker.service import LockerService
from edge.storage import Actor, AuditEntry, Database, OutboxEvent

MIN_FREE_DISK_BYTES = 200 * 1024 * 1024
KEY_FILES = ("pickup_code.key", "pickup_token.key")


class LockerDiagnostics:
    """Owns nothing: reads doors, boards, storage and keys for `edge diag` and its HTTP twin."""

    def __init__(self, service: LockerService, bus: LockBoardBus, db: Database, keys_dir: Path) -> None:
        self._service = service
        self._bus = bus
        self._db = db
        self._keys_dir = keys_dir

    def doors(self) -> dict[str, Any]:
        """Every compartment read from its board now (not the monitor's last read)."""
        boards = {b: self._read(b) for b in self._service.boards}
        rows = []
        for entry in self._service.snapshot():
            status = boards[entry["board"]]
            lock = status.locks[entry["lock"]]
            rows.append({
                "number": entry["number"], "board": entry["board"], "lock": entry["lock"],
                "size": entry["size"], "latch": lock.latch.value, "item": lock.item,
                "state": entry["state"] if status.reachable else "unknown", "fault": entry["fault"],
                "maintenance": entry["maintenance"],
                "parcel_state": entry["parcel"]["state"] if entry["parcel"] else None,
                "overdue": bool(entry["parcel"] and entry["parcel"]["overdue"]),
                "parcel": self._parcel_facts(entry["parcel"]),
            })
        return {
            "boards": [{"board": b, "reachable": s.reachable, "error": s.error} for b, s in boards.items()],
            "compartments": rows,
        }

    def open(self, number: int, who: str) -> dict[str, Any]:
        return self._service.open_by_technician(number, who)

    def clear_fault(self, number: int, who: str) -> dict[str, Any]:
        self._service.clear_fault(number, who)
        return {"compartment": number, "fault": None}

    def maintenance(self, number: int, on: bool, reason: str, who: str) -> dict[str, Any]:
        return self._service.set_maintenance(number, on, reason, Actor.TECHNICIAN, who)

    def bus(self) -> dict[str, Any]:
        configured = self._service.boards
        try:
            answering, error = self._bus.scan(), None
        except BusError as exc:
            answering, error = [], str(exc)
        scan = {"configured": configured, "answering": answering, "error": error,
                "missing": sorted(set(configured) - set(answering)),
                "unexpected": sorted(set(answering) - set(configured))}
        if (counters := getattr(self._bus, "counters", None)) is not None:  # drivers that count line errors
            scan["line"] = dataclasses.asdict(counters)
        return scan

    def selftest(self) -> list[dict[str, Any]]:
        checks = [self._check_db()]
        checks += [self._check_key(name) for name in KEY_FILES]
        scan = self.bus()
        checks.append({"check": "bus answers", "ok": bool(scan["answering"]),
                       "detail": scan["error"] or f"boards answering: {scan['answering']}"})
        for board in scan["configured"]:
            status = self._read(board)
            checks.append({"check": f"board {board} reachable", "ok": status.reachable,
                           "detail": status.error or "status read ok"})
        free = shutil.disk_usage(self._db.path.parent).free
        checks.append({"check": "disk space", "ok": free >= MIN_FREE_DISK_BYTES,
                       "detail": f"{free // (1024 * 1024)} MiB free"})
        return checks

    def events(self, limit: int = 20) -> dict[str, Any]:
        """Recent audit and outbox rows; pickup codes and tokens never shown."""
        limit = max(1, min(limit, 500))
        with self._db.read() as s:
            audits = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()
            events = s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq.desc()).limit(limit)).all()
        return {
            "audit": [{"id": a.id, "ts": iso_utc(a.ts), "actor": a.actor, "actor_id": a.actor_id,
                       "action": a.action, "target": a.target, "result": a.result, "detail": a.detail}
                      for a in audits],
            "outbox": [{"seq": e.seq, "type": e.type, "ts": iso_utc(e.ts),
                        "published": e.published_at is not None, "data": redact_event(e.type, e.data)}
                       for e in events],
        }

    def _parcel_facts(self, parcel: dict[str, Any] | None) -> dict[str, Any] | None:
        """What a technician may see of a stored parcel: the masked phone, the waybill's last
        four characters and when it was deposited (never its code)."""
        if parcel is None:
            return None
        with self._db.read() as s:
            stored = s.get(Parcel, parcel["parcel_id"])
        if stored is None:
            return None
        deposited_at = stored.deposited_at.replace(tzinfo=stored.deposited_at.tzinfo or timezone.utc)
        return {"phone_masked": parcel["phone_masked"], "waybill_tail": stored.waybill[-4:],
                "deposited_at": parcel["deposited_at"],
                "age_s": max(0, int((self._service.clock.now() - deposited_at).total_seconds()))}

    def _read(self, board: int) -> BoardStatus:
        try:
            return self._bus.read_board(board)
        except BusError as exc:
            return BoardStatus.unreachable(board, str(exc))

    def _check_db(self) -> dict[str, Any]:
        try:
            with self._db.write() as s:
                s.execute(text("CREATE TEMP TABLE IF NOT EXISTS diag_probe (x)"))
                s.execute(text("INSERT INTO diag_probe VALUES (1)"))
            return {"check": "database writable", "ok": True, "detail": str(self._db.path)}
        except Exception as exc:  # noqa: BLE001 - the check reports any failure
            return {"check": "database writable", "ok": False, "detail": str(exc)}

    def _check_key(self, name: str) -> dict[str, Any]:
        path = self._keys_dir / name
        if not path.is_file():
            return {"check": f"key {name}", "ok": False, "detail": f"{path} missing"}
        mode = os.stat(path).st_mode & 0o777
        return {"check": f"key {name}", "ok": mode & 0o077 == 0 and path.stat().st_size == 32,
                "detail": f"mode {mode:o}, {path.stat().st_size} bytes"}
