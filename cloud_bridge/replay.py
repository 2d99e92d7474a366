"""`outbox.replay`: the platform found a gap in this box's seqs that does not close by itself
and asks for the range again. Published rows are kept `outbox.keep_published_days` for
this; they go out again unchanged (same message_id and seq), so the platform stores each
once. Rows not yet published are left to the pump, which sends them anyway."""
from __future__ import annotations

from typing import Any, Protocol

from cloud_bridge.commands import CommandError
from edge.storage import Database

MAX_ROWS_PER_REPLAY = 10_000

_PUBLISHED_RANGE_SQL = (
    "SELECT o.seq, o.message_id, o.type, o.ts, o.data, r.topic, r.correlation_data, o.priority "
    "FROM outbox o LEFT JOIN bridge_reply_route r ON r.seq = o.seq "
    "WHERE o.published_at IS NOT NULL AND o.seq BETWEEN ? AND ? ORDER BY o.seq LIMIT ?"
)


class Publisher(Protocol):
    def publish_again(self, rows: list[Any]) -> int: ...


class OutboxReplay:
    """The command handler (registered as `outbox.replay`); owns its read transaction."""

    def __init__(self, db: Database, publisher: Publisher) -> None:
        self._db = db
        self._publisher = publisher

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        first, last = int(data["from_seq"]), int(data["to_seq"])
        if last < first:
            raise CommandError("invalid", "to_seq is below from_seq")
        last = min(last, first + MAX_ROWS_PER_REPLAY - 1)  # a bigger range is asked for in parts
        rows = self._published_rows(first, last)
        sent = self._publisher.publish_again(rows)
        return {"from_seq": first, "to_seq": last, "republished": sent,
                "not_kept": (last - first + 1) - sent}

    def _published_rows(self, first: int, last: int) -> list[Any]:
        connection = self._db.reader.raw_connection()
        try:
            return connection.driver_connection.execute(  # type: ignore[union-attr]
                _PUBLISHED_RANGE_SQL, (first, last, MAX_ROWS_PER_REPLAY)).fetchall()
        finally:
            connection.close()
