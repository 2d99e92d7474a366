"""Voice notes on requests (ADR 0128): kept on the box 0600, queued whole as bounded chunks at
low priority, refused whole when the outbox has no room, deleted once delivered and old."""
from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta

import pytest

from edge.community import RequestError
from edge.community.voice import CHUNK_EVENT, VoiceNoteService
from edge.storage import Priority, outbox
from tests.support.station import outbox as outbox_rows

CLIP = os.urandom(100_000)  # five chunks of at most 24 KiB raw


@pytest.fixture
def voice(db, clock, tmp_path) -> VoiceNoteService:
    return VoiceNoteService(db, clock, tmp_path / "voice", retention=timedelta(days=7))


@pytest.fixture
def request_id(requests_service) -> str:
    return requests_service.submit(None, "repair", "水管漏水", None, "13800138000").request_id


def test_a_clip_is_kept_0600_and_queued_as_chunks_that_rejoin_to_the_same_bytes(voice, db, request_id, tmp_path):
    note = voice.attach(request_id, CLIP, "audio/webm;codecs=opus")
    path = tmp_path / "voice" / f"{request_id}.clip"
    assert path.read_bytes() == CLIP
    assert path.stat().st_mode & 0o777 == 0o600
    chunks = outbox_rows(db, CHUNK_EVENT)
    assert len(chunks) == note.chunk_count == 5
    assert all(len(c.data["audio"]) <= 32 * 1024 for c in chunks)
    assert all(c.priority == Priority.BULK for c in chunks)
    assert [c.data["index"] for c in chunks] == list(range(5))
    assert {c.data["count"] for c in chunks} == {5}
    assert {c.data["media_type"] for c in chunks} == {"audio/webm"}
    joined = b"".join(base64.b64decode(c.data["audio"]) for c in chunks)
    assert joined == CLIP
    assert {c.data["sha256"] for c in chunks} == {hashlib.sha256(CLIP).hexdigest()}


def test_chunks_go_after_ordinary_events_and_emergencies(voice, db, request_id, requests_service):
    voice.attach(request_id, CLIP, "audio/webm")
    requests_service.submit(None, "emergency", "", None, None, emergency=True)
    with outbox.pending_rows(db, outbox.NOTHING_SENT, 100) as rows:
        order = [row[2] for row in rows]
    assert order[0] == "request.submitted"  # the emergency, written last, goes first
    assert order[-5:] == [CHUNK_EVENT] * 5
    assert order.index(CHUNK_EVENT) > order.index("request.submitted", 1)


@pytest.mark.parametrize("clip, media_type, code", [
    (b"", "audio/webm", "voice_empty"),
    (b"x" * (1024 * 1024 + 1), "audio/webm", "voice_too_long"),
    (b"<html>", "text/html", "voice_not_audio"),
])
def test_bad_clips_are_refused_plainly_and_nothing_is_kept(voice, db, request_id, tmp_path, clip, media_type, code):
    with pytest.raises(RequestError) as refused:
        voice.attach(request_id, clip, media_type)
    assert refused.value.code == code
    assert outbox_rows(db, CHUNK_EVENT) == []
    assert not (tmp_path / "voice" / f"{request_id}.clip").exists()


def test_an_unknown_request_is_refused(voice, db):
    with pytest.raises(RequestError) as refused:
        voice.attach("no-such-request", CLIP, "audio/webm")
    assert refused.value.code == "unknown_request"
    assert outbox_rows(db, CHUNK_EVENT) == []


def test_a_full_outbox_refuses_the_clip_whole_and_keeps_room_for_emergencies(voice, db, request_id, tmp_path,
                                                                            requests_service):
    with db.write() as s:
        outbox.set_budget(s, max_rows=1000, max_bytes=150_000)  # a clip of 100 kB would take > 75 %
    before = len(outbox_rows(db))
    with pytest.raises(RequestError) as refused:
        voice.attach(request_id, CLIP, "audio/webm")
    assert refused.value.code == "voice_outbox_full"
    assert "full" in refused.value.message
    assert len(outbox_rows(db)) == before  # nothing half-queued, no event lost
    assert not (tmp_path / "voice" / f"{request_id}.clip").exists()
    requests_service.submit(None, "emergency", "", None, None, emergency=True)  # still fits


def test_a_clip_is_deleted_only_once_delivered_and_past_the_retention(voice, db, request_id, clock, tmp_path):
    voice.attach(request_id, CLIP, "audio/webm")
    path = tmp_path / "voice" / f"{request_id}.clip"
    old = (clock.now() - timedelta(days=8)).timestamp()
    os.utime(path, (old, old))
    assert voice.prune() == []  # past the retention, but the cloud does not have it all yet
    seqs = [c.seq for c in outbox_rows(db, CHUNK_EVENT)]
    with db.write() as s:
        outbox.mark_published(s, seqs[:-1], clock.now())
    assert voice.prune() == []  # one chunk still waiting
    with db.write() as s:
        outbox.mark_published(s, seqs[-1:], clock.now())
    recent = clock.now().timestamp()
    os.utime(path, (recent, recent))
    assert voice.prune() == []  # delivered, but within the retention
    os.utime(path, (old, old))
    assert voice.prune() == [request_id]
    assert not path.exists()
