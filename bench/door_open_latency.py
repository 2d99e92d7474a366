"""Door-open latency: from the HTTP call to the unlock frame on the wire, and to the status
read that confirms the door open, against a lock-board simulator on a PTY, for each
lock-board family (--protocol kerong | modbus | both).

The whole controller runs with its default settings (waitress, Flask, locker service with its door monitor polling,
SQLite with durable commits, the Kerong or Modbus driver); each open is a technician open through
POST /api/diag/open over a keep-alive loopback connection, spaced by locker.unlock_gap_s
(the driver paces back-to-back unlocks by that gap on purpose). Frame times are the simulator's
perf_counter stamps, taken in this same process.

A PTY moves bytes instantly, so these figures are software time. They are printed beside
the time the same frames need on a real RS-485 line at locker.baudrate (19200) 8N1 (10 bits
a byte). KR-CU16: unlock request 5 + status request 5 + status reply 9 = 19 bytes = 9.9 ms.
Modbus RTU: coil-on request 8 + its echo 8 + status request 8 + status reply 9 = 33 bytes
= 17.2 ms, plus the 3.5-character silences RTU demands between frames (the driver waits
them out; they are shown, and taken out of the software figure like the echo window).
Goal: software p99 (call -> confirming read) below that wire time.

The resident's path (--path resident) times a pickup by code, POST /api/locker/pickup,
which claims the pickup (attempt, audit row, pickup record) in one transaction that survives
kill -9 before the unlock, its fsync running beside the frame (ADR 0137); a parcel is
deposited (untimed) before each sample. --steps also prints where the time goes: marks
around each step of the request's thread, with the frame's arrival among them.

    python bench/door_open_latency.py [--protocol kerong|modbus|both] [--path technician|resident|both]
                                      [--quick] [--opens N] [--busy] [--steps]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from waitress.server import create_server  # noqa: E402

from edge.app import build_controller  # noqa: E402
from edge.cli import freeze_startup_objects  # noqa: E402
from edge.identity.sealing import public_key_text, unseal  # noqa: E402
from edge.kiosk_ui import create_app  # noqa: E402
from edge.settings import load_settings  # noqa: E402
from simulators.lockboard import ReceivedFrame  # noqa: E402
from simulators.modbus_lockboard import simulator_for  # noqa: E402

BAUD = 19200
BITS_PER_BYTE = 10  # start + 8 data + stop
WIRE_BYTES = 5 + 5 + 9  # unlock request, status request, status reply
UNLOCK, STATUS = 0x31, 0x30
MODBUS_WIRE_BYTES = 8 + 8 + 8 + 9  # coil-on request, its echo, status request, status reply
MODBUS_WRITE_COIL, MODBUS_READ_INPUTS = 0x05, 0x02


def wire_ms(n_bytes: int) -> float:
    return n_bytes * BITS_PER_BYTE / BAUD * 1000


def modbus_silence_ms() -> float:
    """The RTU silent interval the driver keeps before each request (3.5 characters)."""
    from edge.drivers.lockboard.modbus import ModbusSettings

    return ModbusSettings(url="-", boards=(0,), baudrate=BAUD).silent_interval_s * 1000


def kerong_frames(frames: list[ReceivedFrame], board: int, lock: int) -> tuple[float, float]:
    """perf_counter stamps of the unlock frame and of the first status request after it."""
    unlock_at = next(f.at for f in frames if f.data[2] == UNLOCK and f.data[1] == (board << 4 | lock))
    confirm_at = next(f.at for f in frames if f.data[2] == STATUS and f.data[1] == board << 4
                      and f.at > unlock_at)
    return unlock_at, confirm_at


def modbus_frames(frames: list[ReceivedFrame], board: int, lock: int) -> tuple[float, float]:
    """perf_counter stamps of the coil-on frame and of the first status read after it."""
    unit = board + 1
    unlock_at = next(f.at for f in frames if f.data[0] == unit and f.data[1] == MODBUS_WRITE_COIL
                     and f.data[3] == lock and f.data[4] == 0xFF)
    confirm_at = next(f.at for f in frames if f.data[0] == unit and f.data[1] == MODBUS_READ_INPUTS
                      and f.at > unlock_at)
    return unlock_at, confirm_at


FRAME_FINDERS = {"kerong": kerong_frames, "modbus": modbus_frames}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait_closed(controller: object, number: int) -> None:
    locker = controller.services.locker  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while locker.snapshot()[number - 1]["latch"] != "closed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the monitor never saw compartment {number} close")
        time.sleep(0.005)


COURIER_CODE = "246810"


def post(connection: http.client.HTTPConnection, path: str, body: dict[str, object],
         headers: dict[str, str] | None = None) -> dict[str, object]:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    return json.loads(connection.getresponse().read())


class ResidentPath:
    """Before each timed pickup (not timed): a courier deposits a parcel through the API, the
    simulator puts it in and shuts the door, and the code is read from parcel.deposited."""

    def __init__(self, controller: object, sim: object, connection: http.client.HTTPConnection,
                 api: dict[str, str], platform_key: X25519PrivateKey) -> None:
        self._controller, self._sim, self._connection = controller, sim, connection
        self._platform_key = platform_key  # the code travels sealed: the bench opens it as the platform would
        token = post(connection, "/api/locker/courier/login", {"code": COURIER_CODE}, api)["token"]
        self._courier = {"Authorization": f"Bearer {token}"}

    def deposit(self, index: int) -> tuple[int, str]:
        """A stored parcel: (compartment number, pickup code)."""
        deposit = post(self._connection, "/api/locker/deposits",
                       {"waybill": f"BENCH{index:06d}", "phone": "13812345678", "size": "S"}, self._courier)
        number = int(deposit["compartment"])  # type: ignore[arg-type]
        board, lock = (number - 1) // 16, (number - 1) % 16
        self._sim.set_item(board, lock, True)  # type: ignore[attr-defined]
        self._sim.close_door(board, lock)  # type: ignore[attr-defined]
        return number, self._code_of(str(deposit["deposit_id"]))

    def _code_of(self, deposit_id: str) -> str:
        from sqlalchemy import select

        from edge.storage import OutboxEvent

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._controller.db.read() as session:  # type: ignore[attr-defined]
                for event in session.scalars(select(OutboxEvent).where(OutboxEvent.type == "parcel.deposited")):
                    if event.data["deposit_id"] == deposit_id:
                        secret = unseal(self._platform_key, event.data["secret"], event.message_id)
                        return str(secret["pickup_code"])
            time.sleep(0.005)
        raise RuntimeError(f"deposit {deposit_id} never became parcel.deposited")


class StepMarks:
    """--steps: perf_counter marks on entry and exit of the steps a door opening goes
    through (the service call, the code check or claim, database transactions, the unlock),
    kept per sample for the thread that serves the request."""

    STEPS = (("edge.locker.service", "LockerService", ("pickup_with_code", "open_by_technician")),
             ("edge.locker.code_claims", "CodeClaims", ("claim",)),
             ("edge.locker.pickups", "Pickups", ("_check_code", "_open_claimed", "_open_for_parcel", "status")),
             ("edge.locker.doors", "Doors", ("refuse_if_outbox_full", "unlock")))

    def __init__(self) -> None:
        import importlib

        self.marks: list[tuple[str, float, int]] = []
        self.samples: list[list[tuple[str, float]]] = []
        for module, cls_name, names in self.STEPS:
            try:
                cls = getattr(importlib.import_module(module), cls_name, None)
            except ImportError:  # an older tree, measured for comparison
                continue
            for name in names:
                if cls is not None and hasattr(cls, name):
                    setattr(cls, name, self._timed(getattr(cls, name), name))
        from edge.storage import db

        for name in ("write", "read", "claim"):
            if hasattr(db.Database, name):
                setattr(db.Database, name, self._timed_context(getattr(db.Database, name), f"db.{name}"))

    def mark(self, label: str) -> None:
        self.marks.append((label, time.perf_counter(), threading.get_ident()))

    def _timed(self, function, name: str):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.mark(f"{name}>")
            try:
                return function(*args, **kwargs)
            finally:
                self.mark(f"{name}<")
        return timed

    def _timed_context(self, function, name: str):  # type: ignore[no-untyped-def]
        @contextlib.contextmanager
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.mark(f"{name}>")
            with function(*args, **kwargs) as value:
                self.mark(f"{name} begun")
                yield value
                self.mark(f"{name} body done")
            self.mark(f"{name}<")
        return timed

    def start(self) -> None:
        self.marks.clear()

    def keep(self, started: float, unlock_at: float, replied: float) -> None:
        """The marks of the thread that served this call, with the frame's arrival."""
        threads = [thread for label, _, thread in self.marks if label.startswith(("pickup_with_code>",
                                                                                   "open_by_technician>"))]
        seen: dict[str, int] = {}
        mine = []
        for label, at, thread in self.marks:
            if threads and thread == threads[0]:
                seen[label] = seen.get(label, 0) + 1  # a step met again in one call: read#2
                mine.append((label if seen[label] == 1 else f"{label}#{seen[label]}", at))
        self.samples.append(sorted([("call", started), *mine, ("UNLOCK FRAME", unlock_at), ("reply", replied)],
                                   key=lambda mark: mark[1]))

    def report(self) -> None:
        steps: dict[str, list[float]] = {}
        for sample in self.samples:
            for (before, at_before), (after, at_after) in zip(sample, sample[1:]):
                steps.setdefault(f"{before} -> {after}", []).append((at_after - at_before) * 1000)
        print("where the time goes (steps seen in at least 90% of samples, request thread):")
        for step, values in steps.items():
            if len(values) >= 0.9 * len(self.samples):
                print(f"  {step:52}{statistics.median(values):9.2f}{percentile(values, 99):9.2f}")


def measure(opens: int, busy: bool, protocol: str = "kerong", path: str = "technician",
            steps: StepMarks | None = None) -> dict[str, list[float]]:
    sim = simulator_for([0, 1], protocol=protocol)
    url = sim.start_pty()
    find_frames = FRAME_FINDERS[protocol]
    with tempfile.TemporaryDirectory() as tmp:
        platform_key = X25519PrivateKey.generate()
        settings = load_settings(data_dir=Path(tmp), http={"port": 0},
                                 mqtt={"platform_public_key": public_key_text(platform_key.public_key())},
                                 locker={"serial_url": url, "boards": [0, 1], "protocol": protocol,
                                         "couriers": {COURIER_CODE: "bench-courier"}})
        controller = build_controller(settings)
        freeze_startup_objects()  # as `edge run` does
        controller.start()
        app = create_app(controller)
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        api = {"Authorization": f"Bearer {app.config['EDGE_API_TOKEN']}"}  # the local API credential
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        resident = ResidentPath(controller, sim, connection, api, platform_key) if path == "resident" else None
        samples: dict[str, list[float]] = {"to_unlock": [], "to_confirm": [], "unlock_to_confirm": [],
                                           "to_reply": []}
        try:
            for i in range(opens):
                if resident is not None:
                    number, code = resident.deposit(i)
                    wait_closed(controller, number)
                    time.sleep(settings.locker.unlock_gap_s)  # the deposit's pulse is not this sample's pacing
                    request = ("/api/locker/pickup", {"code": code})
                else:
                    number = i % 32 + 1
                    request = ("/api/diag/open", {"compartment": number, "who": "bench"})
                board, lock = (number - 1) // 16, (number - 1) % 16
                seen = len(sim.frames_received)
                if steps is not None:
                    steps.start()
                started = time.perf_counter()
                body = post(connection, *request, api)
                replied = time.perf_counter()
                if not (body.get("opened") or body.get("state") == "door_open"):
                    raise RuntimeError(f"compartment {number} did not open: {body}")
                unlock_at, confirm_at = find_frames(sim.frames_received[seen:], board, lock)
                if steps is not None:
                    steps.keep(started, unlock_at, replied)
                samples["to_unlock"].append((unlock_at - started) * 1000)
                samples["to_confirm"].append((confirm_at - started) * 1000)
                samples["unlock_to_confirm"].append((confirm_at - unlock_at) * 1000)
                samples["to_reply"].append((replied - started) * 1000)
                if resident is not None:
                    sim.set_item(board, lock, False)
                sim.close_door(board, lock)
                if not busy:  # the monitor records door.closed before the next open starts
                    wait_closed(controller, number)
                # Back-to-back unlocks are paced by locker.unlock_gap_s (the shared supply sags
                # otherwise); wait it out so each sample is one door opening, not the pacing.
                time.sleep(max(0.0, settings.locker.unlock_gap_s - (time.perf_counter() - replied)))
        finally:
            connection.close()
            server.close()
            thread.join(5)
            controller.stop()
            sim.stop()
    return samples


def controller_echo_window_ms() -> float:
    from edge.settings import LockerSettings

    return LockerSettings().unlock_echo_window_s * 1000


def report(protocol: str, opens: int, busy: bool, path: str = "technician",
           marks: StepMarks | None = None) -> None:
    load_before = os.getloadavg()[0]
    if marks is not None:
        marks.samples.clear()
    samples = measure(opens, busy, protocol, path, marks)
    driver = {"kerong": "Kerong KR-CU16 driver", "modbus": "Modbus RTU driver"}[protocol]
    call = {"technician": "POST /api/diag/open", "resident": "POST /api/locker/pickup (code typed)"}[path]
    print(f"[{protocol}, {path}] door-open latency over {opens} opens ({call} -> Flask -> locker service -> "
          f"{driver} -> PTY simulator)")
    print(f"machine load average at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores; scheduler delays under load show in p99)")
    print("busy locker: the previous door's close is committed while the next door opens" if busy
          else "each door opens with the previous close already recorded (one person at the kiosk)")
    print(f"{'':38}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [("HTTP call -> unlock frame on the wire", "to_unlock"),
            ("HTTP call -> confirming status read", "to_confirm"),
            ("  of which unlock -> confirming read", "unlock_to_confirm"),
            ("HTTP call -> HTTP reply (after commit)", "to_reply")]
    for label, key in rows:
        values = samples[key]
        print(f"{label:38}{statistics.median(values):9.2f}{percentile(values, 99):9.2f}{max(values):9.2f}")
    if protocol == "kerong":
        wire = wire_ms(WIRE_BYTES)
        print(f"wire time of the same frames at {BAUD} baud: {WIRE_BYTES} bytes x {BITS_PER_BYTE} bits = "
              f"{wire:.1f} ms (unlock {wire_ms(5):.1f} + status {wire_ms(5):.1f} + reply {wire_ms(9):.1f})")
        waited_ms = controller_echo_window_ms()
        waited = (f"{waited_ms:g} ms is the configured echo window (locker.unlock_echo_window_s, ADR 0011; "
                  "0 unless the firmware echoes)")
    else:
        wire = wire_ms(MODBUS_WIRE_BYTES)
        silence = modbus_silence_ms()
        waited_ms = 2 * silence  # before the coil-on request and before the status request
        print(f"wire time of the same frames at {BAUD} baud: {MODBUS_WIRE_BYTES} bytes x {BITS_PER_BYTE} bits = "
              f"{wire:.1f} ms (coil on {wire_ms(8):.1f} + echo {wire_ms(8):.1f} + status {wire_ms(8):.1f} "
              f"+ reply {wire_ms(9):.1f}), plus 3 RTU silences of {silence:.2f} ms on a real line")
        print(f"HTTP reply waits for the coil-off after locker.modbus_pulse_s "
              f"({settings_pulse_ms():g} ms): the solenoid gets its whole pulse (ADR 0130)")
        waited = f"up to {waited_ms:.2f} ms is the RTU silence the driver keeps before its 2 requests"
    software = [v - waited_ms for v in samples["to_confirm"]]
    total_p99, software_p99 = percentile(samples["to_confirm"], 99), percentile(software, 99)
    print(f"p99 call -> confirming read: {total_p99:.2f} ms, of which {waited}")
    print(f"software p99 (call -> confirming read, less that wait): {software_p99:.2f} ms, "
          f"{'below' if software_p99 < wire else 'ABOVE'} the wire time ({wire:.1f} ms)")
    if marks is not None:
        marks.report()


def settings_pulse_ms() -> float:
    from edge.settings import LockerSettings

    return LockerSettings().modbus_pulse_s * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("kerong", "modbus", "both"), default="both",
                        help="lock-board family to measure (default both, one after the other)")
    parser.add_argument("--path", choices=("technician", "resident", "both"), default="technician",
                        help="whose door opening: a technician's open (default) or a resident's pickup by "
                             "code, which commits the pickup durably before the unlock")
    parser.add_argument("--quick", action="store_true", help="100 opens: a smoke run")
    parser.add_argument("--opens", type=int, default=1000)
    parser.add_argument("--busy", action="store_true",
                        help="close each door and open the next at once, so the door monitor's "
                             "door.closed commit often runs during the next opening")
    parser.add_argument("--steps", action="store_true",
                        help="also print where the time goes, step by step (p50/p99 ms)")
    args = parser.parse_args(argv)
    opens = 100 if args.quick else args.opens
    protocols = ("kerong", "modbus") if args.protocol == "both" else (args.protocol,)
    paths = ("technician", "resident") if args.path == "both" else (args.path,)
    marks = StepMarks() if args.steps else None  # wraps the steps once, for every run
    for index, (path, protocol) in enumerate((p, q) for p in paths for q in protocols):
        if index:
            print()
        report(protocol, opens, args.busy, path, marks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
