"""Closing gaps that persist: ask the station to publish the range again (`outbox.replay`).

The station re-publishes the same rows, with the same message_ids and seqs; the store
drops whatever arrived meanwhile and the gap closes when the range is filled. A gap still
open after `gap_replay_retry_s` is asked for again, under a new transaction_id (the station
runs each transaction_id once)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from fleet.mqtt import command

REPLAY_COMMAND = "outbox.replay"

_CLAIM_DUE = """
UPDATE gaps SET replay_requested_at = %(now)s, replay_count = replay_count + 1
WHERE id IN (
    SELECT id FROM gaps
    WHERE closed_at IS NULL AND detected_at <= %(due)s
      AND (replay_requested_at IS NULL OR replay_requested_at <= %(retry)s)
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, site_id, device_id, from_seq, to_seq, replay_count
"""


@dataclass(frozen=True)
class ReplayRequest:
    gap_id: int
    site_id: str
    device_id: str
    from_seq: int
    to_seq: int
    attempt: int

    @property
    def transaction_id(self) -> str:
        return f"replay-{self.site_id}-{self.device_id}-{self.gap_id}-{self.attempt}"


def claim_due(conn: psycopg.Connection, now: datetime, *, after: timedelta, retry: timedelta,
              limit: int = 200) -> list[ReplayRequest]:
    """Gaps due for a replay request, marked as requested (several workers: each gap once)."""
    with conn.transaction():
        rows = conn.execute(_CLAIM_DUE, {"now": now, "due": now - after, "retry": now - retry,
                                         "limit": limit}).fetchall()
    return [ReplayRequest(*row) for row in rows]


def replay_message(request: ReplayRequest, now: datetime, expires_in: timedelta) -> tuple[str, bytes]:
    return command(REPLAY_COMMAND, {"from_seq": request.from_seq, "to_seq": request.to_seq},
                   site_id=request.site_id, device_id=request.device_id,
                   transaction_id=request.transaction_id, now=now, expires_in=expires_in)
