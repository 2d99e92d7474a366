"""A reference cloud peer over MQTT 5: what the platform does with an edge, small enough to
read. It records events deduplicated by message_id, checks each device's seq for gaps
(seqs announced by `outbox.dropped` are explained gaps), checks every message against the
contract, and sends catalogue updates and other commands. Its "auto-staff" (on by
default from the command line, `--no-auto-staff` to turn it off) decides bookings by a rule
and follows help requests up, as a community's staff would in the console (ADR 0164).

    python -m simulators.cloud --host 127.0.0.1 --port 1883 [--catalogue FILE] [--no-auto-staff]

`PrivateBroker` starts a Mosquitto of its own (free port, temporary folder), for
`edge run --simulate` when no broker is configured.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_bridge import contract
from edge.clock import iso_utc

DEFAULT_CATALOGUE = contract.EXAMPLES_DIR / "catalogue.json"
PLATFORM_KEY_FILE = "simulated_platform_x25519.key"  # simulate mode only: the cloud's private key
Device = tuple[str, str]  # (site_id, device_id)


def approve_unless_evening(booking: dict[str, Any]) -> tuple[bool, str | None]:
    """The demo rule: bookings starting at 18:00 UTC or later are rejected."""
    start = booking.get("start")
    if isinstance(start, str) and start[11:13].isdigit() and int(start[11:13]) >= 18:
        return False, "evening slots are reserved for the community's own activities"
    return True, None


@dataclass
class SimulatedStaff:
    """The station's staff as the cloud plays them: a request (or feedback) that arrives is
    marked in_progress at once, then done with a reply once `released` is set (at once by
    default; a test holds it to watch the in-between state)."""

    name: str = "王社工"
    reply: str = "已安排工作人员处理，如有问题请致电服务站。"
    released: threading.Event = field(default_factory=threading.Event)
    work_s: float = 0.0  # how long the work takes once released

    def __post_init__(self) -> None:
        self.released.set()


@dataclass
class DeviceLog:
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> first envelope seen
    arrivals: list[int] = field(default_factory=list)  # seqs in the order they first arrived
    explained: set[int] = field(default_factory=set)  # seqs announced by outbox.dropped
    status: dict[str, Any] | None = None
    compartments: dict[str, Any] | None = None

    def gaps(self) -> list[int]:
        """Seqs below the highest seen that never arrived and were not announced as dropped."""
        if not self.events:
            return []
        return [s for s in range(1, max(self.events) + 1)
                if s not in self.events and s not in self.explained]


class CloudSimulator:
    def __init__(self, host: str, port: int, *, catalogue: dict[str, Any] | None = None,
                 decide: Callable[[dict[str, Any]], tuple[bool, str | None]] | None = approve_unless_evening,
                 client_id: str | None = None, session_expiry_s: int = 0,
                 platform_key: Any = None, staff: SimulatedStaff | None = None) -> None:
        self.host, self.port = host, port
        self.staff = staff  # None: nobody follows requests up (the contract tests' default)
        self.catalogue = catalogue
        self.decide = decide
        self.devices: dict[Device, DeviceLog] = defaultdict(DeviceLog)
        self.message_ids: set[str] = set()
        self.duplicates = 0
        self.received = 0
        self.violations: list[str] = []
        self.replies: dict[str, list[dict[str, Any]]] = defaultdict(list)  # transaction_id -> replies
        self.reply_correlations: dict[str, list[bytes | None]] = defaultdict(list)
        self.unmatched_replies: list[dict[str, Any]] = []  # replies without a transaction_id
        self.catalogue_sent: set[Device] = set()
        self._changed = threading.Condition()
        # Replies come back inside each device's own reply namespace (the edge refuses others).
        self._reply_id = f"cloud-sim-{uuid.uuid4().hex[:8]}"
        self.platform_key = platform_key  # X25519PrivateKey: opens sealed pickup secrets
        self.pickup_secrets: dict[str, dict[str, Any]] = {}  # parcel_id -> opened secret
        self.one_time_codes: dict[str, str] = {}  # resident_id -> the last one-time code texted
        self.voice_pieces: dict[str, dict[int, bytes]] = defaultdict(dict)  # request_id -> index -> bytes
        self.voice_notes: dict[str, bytes] = {}  # request_id -> whole clip, sha256 checked
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5,
                                   client_id=client_id or f"cloud-sim-{uuid.uuid4().hex[:8]}")
        self._client.suppress_exceptions = True
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self.connected = threading.Event()
        self._session_expiry_s = session_expiry_s  # > 0: a persistent session, nothing lost while away

    @classmethod
    def for_demo(cls, host: str, port: int, *, auto_staff: bool, staff_work_s: float = 20.0,
                 **options: Any) -> "CloudSimulator":
        """The simulated cloud of a demo. `auto_staff` is the one switch for what staff would
        do: decide bookings by `approve_unless_evening` and follow every request up (in
        progress at once, done `staff_work_s` later). Off, bookings and requests wait, as
        they do for the platform's console (`fleet dev`, ADR 0164)."""
        return cls(host, port, decide=approve_unless_evening if auto_staff else None,
                   staff=SimulatedStaff(work_s=staff_work_s) if auto_staff else None, **options)

    def start(self) -> "CloudSimulator":
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._session_expiry_s
        self._client.reconnect_delay_set(0.1, 1)
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=self._session_expiry_s == 0,
                                   properties=properties)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- receiving ----------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            return
        for pattern in ("edge/v1/+/+/evt/#", "edge/v1/+/+/status", "edge/v1/+/+/state/#",
                        "edge/v1/+/+/reply/#"):
            client.subscribe(pattern, qos=1)
        self.connected.set()

    def _on_message(self, _client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            envelope = json.loads(message.payload)
        except ValueError:
            self._violation(f"{message.topic}: not JSON")
            return
        if not isinstance(envelope, dict):
            self._violation(f"{message.topic}: not an object")
            return
        topic = message.topic
        kind = contract.kind_of(topic, envelope)
        for problem in contract.errors(kind, envelope) if (contract.SCHEMA_DIR / f"{kind}.json").exists() \
                else [f"no schema for {kind}"]:
            self._violation(f"{topic}: {problem}")
        device = (str(envelope.get("site_id")), str(envelope.get("device_id")))
        with self._changed:
            self._record(device, kind, envelope, message)
            self._changed.notify_all()

    def _record(self, device: Device, kind: str, envelope: dict[str, Any], message: mqtt.MQTTMessage) -> None:
        log = self.devices[device]
        if kind == "status":
            log.status = envelope
            if envelope.get("data", {}).get("online") and self.catalogue and device not in self.catalogue_sent:
                self.catalogue_sent.add(device)
                self.send_command(device, "catalogue.sync", self.catalogue)
            return
        if kind == "state.compartments":
            log.compartments = envelope
            return
        message_id = envelope.get("message_id")
        if message_id in self.message_ids:
            self.duplicates += 1  # a repeat after a lost PUBACK: same message_id, dropped here
            return
        self.message_ids.add(message_id)
        self.received += 1
        seq = envelope.get("seq")
        if isinstance(seq, int):
            if seq in log.events:
                self._violation(f"seq {seq} reused by a different message_id")
            else:
                log.events[seq] = envelope
                log.arrivals.append(seq)
        if kind == "reply":
            transaction_id = envelope.get("transaction_id")
            correlation = getattr(message.properties, "CorrelationData", None)
            if transaction_id is None:
                self.unmatched_replies.append(envelope)
            else:
                self.replies[transaction_id].append(envelope)
                self.reply_correlations[transaction_id].append(correlation)
        elif envelope.get("type") == "parcel.deposited":
            self._open_secret(envelope)
        elif envelope.get("type") == "identity.otp_requested":
            self._text_one_time_code(envelope)
        elif envelope.get("type") == "request.voice_chunk":
            self._join_voice_chunk(envelope["data"])
        elif envelope.get("type") == "outbox.dropped":
            for first, last in envelope["data"]["ranges"]:
                log.explained.update(range(first, last + 1))
        elif envelope.get("type") in ("request.submitted", "feedback.submitted") and self.staff is not None:
            data = envelope.get("data", {})
            item_id = data.get("request_id") or data.get("feedback_id")
            if isinstance(item_id, str):
                threading.Thread(target=self._follow_up, args=(device, item_id, self.staff),
                                 name="cloud-sim-staff", daemon=True).start()
        elif envelope.get("type") == "booking.requested" and self.decide is not None:
            approved, reason = self.decide(envelope["data"])
            self.send_command(device, "booking.decision", {
                "booking_id": envelope["data"]["booking_id"],
                "decision": "approved" if approved else "rejected", "reason": reason})

    def _open_secret(self, envelope: dict[str, Any]) -> None:
        """What the platform does with parcel.deposited: open the sealed code to text it to
        the resident. The demo prints it, since no SMS is sent."""
        data = envelope.get("data") or {}
        opened = self._unsealed(envelope, f"parcel.deposited {data.get('parcel_id')}")
        if opened is None:
            return
        print(f"[simulated cloud] SMS to {data.get('phone_masked')}: parcel in compartment "
              f"{data.get('compartment')}, pickup code {opened.get('pickup_code')}", flush=True)
        self.pickup_secrets[str(data.get("parcel_id"))] = opened  # after the print: tests wait on it

    def _text_one_time_code(self, envelope: dict[str, Any]) -> None:
        """What the platform does with identity.otp_requested: open the sealed code and text
        it to the resident's phone. The demo prints it, since no SMS is sent."""
        data = envelope.get("data") or {}
        opened = self._unsealed(envelope, f"identity.otp_requested {data.get('resident_id')}")
        if opened is None:
            return
        print(f"[simulated cloud] SMS to resident {data.get('resident_id')}: your code is "
              f"{opened.get('otp')}", flush=True)
        self.one_time_codes[str(data.get("resident_id"))] = str(opened.get("otp"))  # after the print

    def _unsealed(self, envelope: dict[str, Any], what: str) -> dict[str, Any] | None:
        """The event's sealed secret opened with the platform key; None without a key or a
        secret, or (recorded as a violation) when it does not open."""
        from edge.identity.sealing import SealError, unseal

        data = envelope.get("data") or {}
        if self.platform_key is None or not isinstance(data.get("secret"), str):
            return None
        try:
            return unseal(self.platform_key, data["secret"], str(envelope.get("message_id")))
        except SealError as exc:
            self._violation(f"{what}: {exc}")
            return None

    def _join_voice_chunk(self, data: dict[str, Any]) -> None:
        """What the platform does with request.voice_chunk: keep each piece; once all `count`
        are in, join them in index order and check the sha256 of the whole (ADR 0128)."""
        request_id = str(data.get("request_id"))
        pieces = self.voice_pieces[request_id]
        pieces[int(data["index"])] = base64.b64decode(data["audio"], validate=True)
        if len(pieces) < int(data["count"]):
            return
        clip = b"".join(pieces[n] for n in range(int(data["count"])))
        if hashlib.sha256(clip).hexdigest() != data["sha256"] or len(clip) != data["size_bytes"]:
            self.violations.append(f"voice note {request_id}: sha256 or size does not match")
            return
        print(f"[simulated cloud] voice note for request {request_id}: {len(clip)} bytes, "
              f"{data['media_type']}", flush=True)
        self.voice_notes[request_id] = clip

    def _violation(self, text: str) -> None:
        with self._changed:
            self.violations.append(text)

    def _follow_up(self, device: Device, item_id: str, staff: SimulatedStaff) -> None:
        """Staff take the request (in_progress), then finish it with a reply."""
        self.send_command(device, "request.update", {"request_id": item_id, "status": "in_progress",
                                                     "reply": None, "staff": staff.name})
        staff.released.wait()
        time.sleep(staff.work_s)
        self.send_command(device, "request.update", {"request_id": item_id, "status": "done",
                                                     "reply": staff.reply, "staff": staff.name})

    # -- sending ------------------------------------------------------------------------
    def send_command(self, device: Device, name: str, data: Any, *, transaction_id: str | None = None,
                     expires_in: timedelta | None = timedelta(minutes=10), correlation: bytes | None = None,
                     raw: bytes | None = None) -> str:
        """Publish cmd/<name> (QoS 1) asking for replies on our own Response Topic;
        `raw` sends those bytes instead of a well-formed command. Returns the transaction_id."""
        transaction_id = transaction_id or str(uuid.uuid4())
        now = datetime.now(timezone.utc)
        command: dict[str, Any] = {"message_id": str(uuid.uuid4()), "type": name, "ts": iso_utc(now),
                                   "transaction_id": transaction_id, "data": data}
        if expires_in is not None:
            command["expires_at"] = iso_utc(now + expires_in)
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"edge/v1/{device[0]}/{device[1]}/reply/{self._reply_id}"
        properties.CorrelationData = correlation or transaction_id.encode()
        site, device_id = device
        self._client.publish(f"edge/v1/{site}/{device_id}/cmd/{name}",
                             raw if raw is not None else json.dumps(command), qos=1, properties=properties)
        return transaction_id

    # -- waiting ------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
        return True

    def wait_reply(self, transaction_id: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        if not self.wait_for(lambda: len(self.replies.get(transaction_id, [])) >= count, timeout):
            raise TimeoutError(f"no reply {count} for {transaction_id}")
        return self.replies[transaction_id]


class PrivateBroker:
    """A throw-away Mosquitto on a free loopback port (simulate mode only)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="edge-broker-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.host = "127.0.0.1"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists())

    def start(self) -> None:
        config = self.dir / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                          f"persistence true\npersistence_location {self.dir}/\nmax_inflight_messages 100\n")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        # Its own process group: a terminal's Ctrl-C reaches the process that owns the broker,
        # which stops it after its clients (not before them, mid-conversation).
        self._process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, process_group=0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private mosquitto did not start")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def load_catalogue(path: Path | None, site_id: str) -> dict[str, Any]:
    """The catalogue to send: a file, else the community demo (times made concrete around
    now)."""
    if path is not None:
        return json.loads(path.read_text())
    from zoneinfo import ZoneInfo

    from simulators.demo import demo_catalogue

    return demo_catalogue(datetime.now(timezone.utc), ZoneInfo("Asia/Shanghai"), site_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--site", default="dev-site", help="site of the demo catalogue's residents")
    parser.add_argument("--catalogue", type=Path, help="catalogue.sync payload (JSON) to send when an edge comes online")
    parser.add_argument("--staff-work-s", type=float, default=20.0,
                        help="seconds the simulated staff take to finish a request after taking it")
    parser.add_argument("--auto-staff", action=argparse.BooleanOptionalAction, default=True,
                        help="decide bookings by a rule and follow requests up (off: they wait)")
    args = parser.parse_args(argv)
    cloud = CloudSimulator.for_demo(args.host, args.port, auto_staff=args.auto_staff,
                                    staff_work_s=args.staff_work_s,
                                    catalogue=load_catalogue(args.catalogue, args.site)).start()
    print(f"cloud simulator on {args.host}:{args.port}; Ctrl-C to stop", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(1)
            if cloud.received != seen:
                seen = cloud.received
                for device, log in cloud.devices.items():
                    print(f"{'/'.join(device)}: {len(log.events)} events, gaps {log.gaps()[:10]}, "
                          f"duplicates dropped {cloud.duplicates}, contract violations {len(cloud.violations)}",
                          flush=True)
    except KeyboardInterrupt:
        cloud.stop()


if __name__ == "__main__":
    main()


def ensure_platform_keys(keys_dir: Path) -> str:
    """The simulated platform's X25519 key pair under `keys_dir` (created once, 0600);
    returns the public key as `mqtt.platform_public_key` takes it."""
    from edge.identity.sealing import public_key_text

    return public_key_text(simulated_platform_key(keys_dir).public_key())


def simulated_platform_key(keys_dir: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from edge.identity.keys import load_or_create_key

    return X25519PrivateKey.from_private_bytes(load_or_create_key(keys_dir / PLATFORM_KEY_FILE, 32))
