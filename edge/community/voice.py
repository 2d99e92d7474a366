"""Voice notes on help and emergency requests (ADR 0128).

A clip is kept on the box (one file per request, mode 0600) and goes to the cloud through
the outbox as `request.voice_chunk` events: bounded pieces, each with the request id, its
index, the count and the sha256 of the whole clip, so the cloud can reassemble and check it.
All chunks are written in one transaction: the clip is queued whole or refused whole.

Chunks ride at Priority.BULK: after emergencies, replies and ordinary events, never dropped
like telemetry. A clip that would eat into the room kept for other events is refused with a
clear error instead, so a voice note can never be the reason an emergency is refused.
"""
from __future__ import annotations

import base64
import hashlib
import math
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from edge.clock import Clock
from edge.community.errors import RequestError
from edge.community.models import RequestRow
from edge.storage import Database, OutboxEvent, Priority, outbox, record_event
from edge.storage.db import StorageFull

CHUNK_EVENT = "request.voice_chunk"
MAX_SECONDS = 60
MAX_CLIP_BYTES = 1024 * 1024  # 60 s of Opus at Chromium's default ~128 kbit/s, with room to spare
CHUNK_RAW_BYTES = 24 * 1024  # base64 of 24 KiB is exactly 32 KiB: the contract's bound per event
MEDIA_TYPES = ("audio/webm", "audio/ogg", "audio/mp4", "audio/wav")
RETENTION = timedelta(days=7)  # kept this long after the cloud has every chunk, then deleted
BUDGET_RESERVE = 0.25  # share of the outbox budget a clip may never take: room for emergencies


@dataclass(frozen=True)
class VoiceNote:
    request_id: str
    size_bytes: int
    sha256: str
    chunk_count: int
    media_type: str


class VoiceNoteService:
    def __init__(self, db: Database, clock: Clock, folder: Path, *,
                 retention: timedelta = RETENTION) -> None:
        self._db = db
        self._clock = clock
        self._folder = folder
        self._retention = retention

    def attach(self, request_id: str, clip: bytes, media_type: str) -> VoiceNote:
        """Keep `clip` for the request and queue it for the cloud. Raises RequestError with a
        plain reason (unknown request, empty, too long, not audio, outbox full); nothing is
        kept or queued then."""
        media_type = (media_type or "").split(";")[0].strip().lower()
        self._check(clip, media_type)
        digest = hashlib.sha256(clip).hexdigest()
        chunks = [clip[at:at + CHUNK_RAW_BYTES] for at in range(0, len(clip), CHUNK_RAW_BYTES)]
        path = self._path(request_id)
        try:
            with self._db.write() as s:
                if s.get(RequestRow, request_id) is None:
                    raise RequestError("unknown_request", "there is no such request to add a voice note to")
                self._check_room(s, len(clip))
                self._write_file(path, clip)  # inside the transaction: a failed write queues nothing
                for index, chunk in enumerate(chunks):
                    record_event(s, CHUNK_EVENT, {
                        "request_id": request_id, "index": index, "count": len(chunks),
                        "sha256": digest, "media_type": media_type, "size_bytes": len(clip),
                        "audio": base64.b64encode(chunk).decode("ascii")},
                        priority=Priority.BULK, clock=self._clock)
        except StorageFull:
            path.unlink(missing_ok=True)
            raise RequestError("voice_outbox_full", "the station is offline and its queue for the "
                               "cloud is full: the voice note was not kept, your request was") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return VoiceNote(request_id, len(clip), digest, len(chunks), media_type)

    def clip(self, request_id: str) -> bytes | None:
        path = self._path(request_id)
        return path.read_bytes() if path.exists() else None

    def prune(self) -> list[str]:
        """Delete clips the cloud has whole (no chunk of theirs unpublished) and that are older
        than the retention. Returns the request ids deleted."""
        if not self._folder.exists():
            return []
        cutoff = (self._clock.now() - self._retention).timestamp()
        deleted = []
        with self._db.read() as s:
            waiting = set(s.scalars(
                select(func.json_extract(OutboxEvent.data, "$.request_id"))
                .where(OutboxEvent.type == CHUNK_EVENT, OutboxEvent.published_at.is_(None))))
        for path in self._folder.glob("*.clip"):
            request_id = path.stem
            if request_id not in waiting and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted.append(request_id)
        return deleted

    def _check(self, clip: bytes, media_type: str) -> None:
        if not isinstance(clip, bytes) or not clip:
            raise RequestError("voice_empty", "the voice note is empty: please record again")
        if len(clip) > MAX_CLIP_BYTES:
            raise RequestError("voice_too_long", f"a voice note can be at most {MAX_SECONDS} seconds")
        if media_type not in MEDIA_TYPES:
            raise RequestError("voice_not_audio", f"a voice note must be audio, not {media_type!r}")

    def _check_room(self, session, clip_bytes: int) -> None:
        """The encoded chunks (base64 plus envelope) must fit in the budget less the reserve."""
        stats = outbox._stats(session)
        encoded = math.ceil(clip_bytes / 3) * 4 + 300 * math.ceil(clip_bytes / CHUNK_RAW_BYTES)
        usable = int(stats.max_bytes * (1 - BUDGET_RESERVE))
        rows = int(stats.max_rows * (1 - BUDGET_RESERVE))
        if stats.pending_bytes + encoded > usable or stats.pending_rows + math.ceil(clip_bytes / CHUNK_RAW_BYTES) > rows:
            raise StorageFull("a voice note would take the room kept for other events")

    def _path(self, request_id: str) -> Path:
        if not request_id or "/" in request_id or request_id.startswith("."):
            raise RequestError("unknown_request", "there is no such request to add a voice note to")
        return self._folder / f"{request_id}.clip"

    def _write_file(self, path: Path, clip: bytes) -> None:
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(clip)
        os.chmod(path, 0o600)  # whatever the umask
