"""A voice note recorded in Chromium (its fake microphone) on the help form and after the
emergency button: kept on the box, queued as request.voice_chunk events that rejoin to the
exact bytes the browser sent, and reassembled whole by the simulated cloud over a real
Mosquitto (ADR 0128)."""
from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from edge.community.voice import CHUNK_EVENT
from edge.storage import outbox
from simulators.cloud import CloudSimulator
from tests.support.browser import assert_accessible, shoot, type_on_keypad
from tests.support.mosquitto import Broker
from tests.support.station import Station

pytestmark = [pytest.mark.browser, pytest.mark.mqtt, pytest.mark.timeout(180)]


@pytest.fixture
def kiosk_settings(broker: Broker) -> dict[str, Any]:
    """The station's bridge on the test's own Mosquitto, where the simulated cloud listens."""
    return {"mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.05,
                     "reconnect_max_s": 0.5}}


@pytest.fixture
def cloud(broker: Broker) -> Iterator[CloudSimulator]:
    simulator = CloudSimulator(broker.host, broker.port, decide=None, client_id="cloud-voice").start()
    assert simulator.connected.wait(10), "the cloud simulator did not connect"
    yield simulator
    simulator.stop()


def record_a_few_seconds(page: Any, record: str, stop: str, recording: str, ready: str) -> None:
    """Tap record, let the fake microphone run until the countdown has moved (`recording`
    matches the state with fewer than 59 seconds left), tap stop."""
    page.context.grant_permissions(["microphone"])
    page.get_by_role("button", name=record).click()
    voice = page.locator("[data-voice]")
    expect(voice).to_have_class(re.compile(r"\brecording\b"))
    expect(page.get_by_text(re.compile(recording))).to_be_visible(timeout=20_000)
    stop_button = page.get_by_role("button", name=stop)
    box = stop_button.bounding_box()
    assert box is not None and box["height"] >= 60 and box["width"] >= 60
    stop_button.click()
    expect(page.get_by_text(re.compile(ready))).to_be_visible()
    expect(voice).not_to_have_class(re.compile(r"\brecording\b"))


def recorded_file(page: Any) -> bytes:
    """The clip in the form's file input, as the page holds it (what the form will upload;
    Playwright does not expose multipart bodies with files)."""
    encoded = page.locator("[data-voice-file]").evaluate(
        """input => input.files[0].arrayBuffer().then(buffer => {
             let text = ""; new Uint8Array(buffer).forEach(b => { text += String.fromCharCode(b); });
             return btoa(text); })""")
    return base64.b64decode(encoded)


def chunks_of(kiosk: Station, request_id: str) -> list[Any]:
    return [e for e in kiosk.outbox(CHUNK_EVENT) if e.data["request_id"] == request_id]


def joined(chunks: list[Any]) -> bytes:
    assert [c.data["index"] for c in chunks] == list(range(chunks[0].data["count"]))
    assert all(len(c.data["audio"]) <= 32 * 1024 for c in chunks)
    clip = b"".join(base64.b64decode(c.data["audio"]) for c in chunks)
    assert {c.data["sha256"] for c in chunks} == {hashlib.sha256(clip).hexdigest()}
    return clip


def test_a_voice_note_on_the_help_form_reaches_the_cloud_whole(page, kiosk: Station, cloud: CloudSimulator) -> None:
    page.goto("/help/")
    page.get_by_role("radio", name="维修").click()
    page.get_by_role("button", name="水管漏水").click()
    type_on_keypad(page, "13912345678")
    record_button = page.get_by_role("button", name="录音", exact=True)
    box = record_button.bounding_box()
    assert box is not None and box["height"] >= 60 and box["width"] >= 60
    record_button.click()
    expect(page.get_by_text(re.compile(r"正在录音，还剩 ([1-4]\d|5[0-8]) 秒"))).to_be_visible(timeout=20_000)
    shoot(page, "voice-recording-zh")
    page.get_by_role("button", name="停止录音").click()
    expect(page.get_by_text(re.compile(r"录音已完成，共 \d+ 秒"))).to_be_visible()
    assert_accessible(page)
    shoot(page, "voice-ready-zh")

    uploading = recorded_file(page)
    page.get_by_role("button", name="提交求助").click()
    expect(page.get_by_role("heading", name="已提交")).to_be_visible()
    expect(page.get_by_text("您的语音留言已随求助一起发送。")).to_be_visible()

    [submitted] = kiosk.outbox("request.submitted")
    request_id = submitted.data["request_id"]
    assert submitted.data["description"] == "水管漏水"
    clip = joined(chunks_of(kiosk, request_id))
    assert len(clip) > 1000  # seconds of Opus, not an empty container
    assert clip == uploading  # the exact bytes the browser recorded and uploaded
    assert clip.startswith(b"\x1a\x45\xdf\xa3")  # a WebM (EBML) file, as MediaRecorder makes it
    assert kiosk.services.voice_notes.clip(request_id) == clip  # kept on the box

    assert cloud.wait_for(lambda: request_id in cloud.voice_notes, 60), "the clip did not reach the cloud"
    assert cloud.voice_notes[request_id] == clip
    assert cloud.violations == []


def test_a_voice_note_after_the_emergency_button_in_english(page, kiosk: Station, cloud: CloudSimulator) -> None:
    page.goto("/")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Emergency").click()
    page.get_by_role("button", name="Yes, call staff now").click()  # one touch: the alert goes first
    expect(page.get_by_role("heading", name="Help is on the way")).to_be_visible()
    [alert] = kiosk.outbox("request.submitted")
    assert alert.data["priority"] == "emergency"

    record_a_few_seconds(page, "Record", "Stop recording", r"Recording\. ([1-4]\d|5[0-8]) seconds left", r"Voice note ready")
    assert_accessible(page)
    shoot(page, "voice-emergency-en")
    uploading = recorded_file(page)
    page.get_by_role("button", name="Send the voice note").click()
    expect(page.get_by_text("Your voice note was sent with the request.")).to_be_visible()
    expect(page.get_by_role("button", name="Send the voice note")).to_be_hidden()  # sent once

    request_id = alert.data["request_id"]
    clip = joined(chunks_of(kiosk, request_id))
    assert clip == uploading
    assert cloud.wait_for(lambda: request_id in cloud.voice_notes, 60), "the clip did not reach the cloud"
    assert cloud.voice_notes[request_id] == clip
    assert cloud.violations == []


def test_without_a_microphone_a_tone_is_recorded_and_sending_mid_recording_keeps_it(page, kiosk: Station) -> None:
    page.add_init_script("navigator.mediaDevices.getUserMedia = () => "
                         "Promise.reject(new DOMException('no device', 'NotFoundError'));")
    page.goto("/help/")
    page.get_by_role("radio", name="其他").click()
    page.get_by_role("button", name="请给我回电话").click()
    type_on_keypad(page, "13912345678")
    page.get_by_role("button", name="录音", exact=True).click()
    expect(page.get_by_text(re.compile(r"正在录音，还剩 ([1-4]\d|5[0-8]) 秒"))).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="提交求助").click()  # still recording: stopped, kept, then sent
    expect(page.get_by_text("您的语音留言已随求助一起发送。")).to_be_visible()
    [submitted] = kiosk.outbox("request.submitted")
    request_id = submitted.data["request_id"]
    clip = joined(chunks_of(kiosk, request_id))
    assert len(clip) > 1000 and clip.startswith(b"\x1a\x45\xdf\xa3")  # a WebM of the tone
    assert kiosk.services.voice_notes.clip(request_id) == clip


def test_a_clip_that_is_not_audio_is_refused_plainly_and_the_request_still_goes(kiosk: Station) -> None:
    reply = kiosk.client.post("/help/", content_type="multipart/form-data", data={
        "csrf_token": kiosk.csrf("/help/"), "category": "repair", "description": "水管漏水",
        "phone": "13912345678", "voice": (io.BytesIO(b"<html>not audio</html>"), "voice.webm", "text/html")})
    assert reply.status_code == 302
    [submitted] = kiosk.outbox("request.submitted")
    assert submitted.data["description"] == "水管漏水"
    assert chunks_of(kiosk, submitted.data["request_id"]) == []
    sent_page = kiosk.client.get("/help/sent").get_data(as_text=True)
    assert "无法读取录音，请重新录音。" in sent_page
    assert kiosk.services.voice_notes.clip(submitted.data["request_id"]) is None


def test_a_full_outbox_refuses_the_clip_not_the_request(kiosk: Station) -> None:
    with kiosk.db.write() as session:
        outbox.set_budget(session, max_rows=1000, max_bytes=64 * 1024)
    reply = kiosk.client.post("/help/", content_type="multipart/form-data", data={
        "csrf_token": kiosk.csrf("/help/"), "category": "repair", "description": "电灯不亮",
        "phone": "13912345678", "voice": (io.BytesIO(b"\x1a\x45\xdf\xa3" + bytes(60_000)), "v.webm", "audio/webm")})
    assert reply.status_code == 302
    [submitted] = kiosk.outbox("request.submitted")  # the request went; only the clip was refused
    assert submitted.data["description"] == "电灯不亮"
    assert kiosk.outbox(CHUNK_EVENT) == []
    assert "语音留言未能保存" in kiosk.client.get("/help/sent").get_data(as_text=True)
