"""Door-open latency: from the HTTP call to the unlock frame on the wire, and to the status
read that confirms the door open, against the lock-board simulator on a PTY.

The whole controller runs with its default settings (waitress, Flask, locker service with its door monitor polling,
SQLite with durable commits, the Kerong driver); each open is a technician open through
POST /api/diag/open over a keep-alive loopback connection, spaced by locker.unlock_gap_s
(the driver paces back-to-back unlocks by that gap on purpose). Frame times are the simulator's
perf_counter stamps, taken in this same process.

A PTY moves bytes instantly, so these figures are software time. They are printed beside
the time the same frames need on a real RS-485 line at 19200 baud 8N1 (10 bits a byte):
unlock request 5 + status request 5 + status reply 9 = 19 bytes = 9.9 ms. Goal: software
p99 (call -> confirming read) below that wire time.

The resident's path (--path resident, or both) is measured the same way: a pickup code typed
at the kiosk (POST /api/locker/pickup) -> the attempt committed durably -> unlock frame ->
confirming status read, over parcels deposited beforehand through the locker service, whose
codes are opened from parcel.deposited the way the platform would (sealed to a bench key).
Its frames on the wire are the same 19 bytes.

    python bench/door_open_latency.py [--quick] [--opens N] [--busy] [--path technician|resident|both]
"""
from __future__ import annotations

import argparse
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

from waitress.server import create_server  # noqa: E402

from edge.app import build_controller  # noqa: E402
from edge.cli import freeze_startup_objects  # noqa: E402
from edge.kiosk_ui import create_app  # noqa: E402
from edge.settings import load_settings  # noqa: E402
from simulators.lockboard import LockBoardSimulator  # noqa: E402

BAUD = 19200
BITS_PER_BYTE = 10  # start + 8 data + stop
WIRE_BYTES = 5 + 5 + 9  # unlock request, status request, status reply
UNLOCK, STATUS = 0x31, 0x30


def wire_ms(n_bytes: int) -> float:
    return n_bytes * BITS_PER_BYTE / BAUD * 1000


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


def measure(opens: int, busy: bool) -> dict[str, list[float]]:
    sim = LockBoardSimulator(boards=[0, 1])
    url = sim.start_pty()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), http={"port": 0},
                                 locker={"serial_url": url, "boards": [0, 1]})
        controller = build_controller(settings)
        freeze_startup_objects()  # as `edge run` does
        controller.start()
        app = create_app(controller)
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {app.config['EDGE_API_TOKEN']}"}
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        samples: dict[str, list[float]] = {"to_unlock": [], "to_confirm": [], "unlock_to_confirm": [],
                                           "to_reply": []}
        try:
            for i in range(opens):
                number = i % 32 + 1
                board, lock = (number - 1) // 16, (number - 1) % 16
                seen = len(sim.frames_received)
                started = time.perf_counter()
                connection.request("POST", "/api/diag/open", json.dumps({"compartment": number, "who": "bench"}),
                                   headers)
                reply = connection.getresponse()
                body = json.loads(reply.read())
                replied = time.perf_counter()
                if not body.get("opened"):
                    raise RuntimeError(f"compartment {number} did not open: {body}")
                frames = sim.frames_received[seen:]
                unlock_at = next(f.at for f in frames if f.data[2] == UNLOCK and f.data[1] == (board << 4 | lock))
                confirm_at = next(f.at for f in frames if f.data[2] == STATUS and f.data[1] == board << 4
                                  and f.at > unlock_at)
                samples["to_unlock"].append((unlock_at - started) * 1000)
                samples["to_confirm"].append((confirm_at - started) * 1000)
                samples["unlock_to_confirm"].append((confirm_at - unlock_at) * 1000)
                samples["to_reply"].append((replied - started) * 1000)
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


def _stock_parcels(controller: object, sim: LockBoardSimulator, platform: object, first: int) -> list[str]:
    """Fill every free compartment with a parcel (deposit, item in, door shut); their codes."""
    from sqlalchemy import select

    from edge.identity.sealing import unseal
    from edge.locker.errors import NoFreeCompartment
    from edge.storage import OutboxEvent

    locker = controller.services.locker  # type: ignore[attr-defined]
    deposit_ids = []
    for size in ("S", "M", "L"):
        while True:
            try:
                view = locker.start_deposit("bench", f"BENCH{first + len(deposit_ids)}", "13812345678", size)
            except NoFreeCompartment:
                break
            spec = locker.compartment_location(view.compartment)
            sim.set_item(spec.board, spec.lock, True)
            sim.close_door(spec.board, spec.lock)
            deposit_ids.append(view.deposit_id)
    wanted, deadline = set(deposit_ids), time.monotonic() + 30
    while True:
        with controller.db.read() as s:  # type: ignore[attr-defined]
            events = [e for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == "parcel.deposited"))
                      if e.data["deposit_id"] in wanted]
        if len(events) == len(wanted):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("deposits were not all confirmed")
        time.sleep(0.01)
    return [unseal(platform, e.data["secret"], e.message_id)["pickup_code"] for e in events]


def measure_resident(opens: int, busy: bool) -> dict[str, list[float]]:
    """The resident's path: a typed pickup code -> unlock frame -> confirming status read."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from edge.identity.sealing import public_key_text

    platform = X25519PrivateKey.generate()
    sim = LockBoardSimulator(boards=[0, 1])
    url = sim.start_pty()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), http={"port": 0},
                                 mqtt={"platform_public_key": public_key_text(platform.public_key())},
                                 locker={"serial_url": url, "boards": [0, 1], "couriers": {"246810": "bench"}})
        controller = build_controller(settings)
        freeze_startup_objects()
        controller.start()
        app = create_app(controller)
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        # the kiosk's own pages reach the API with the controller's credential, as here
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {app.config['EDGE_API_TOKEN']}"}
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        samples: dict[str, list[float]] = {"to_unlock": [], "to_confirm": [], "unlock_to_confirm": [],
                                           "to_reply": []}
        try:
            while len(samples["to_confirm"]) < opens:
                for code in _stock_parcels(controller, sim, platform, len(samples["to_confirm"]) * 2):
                    if len(samples["to_confirm"]) >= opens:
                        break
                    seen = len(sim.frames_received)
                    started = time.perf_counter()
                    connection.request("POST", "/api/locker/pickup", json.dumps({"code": code}), headers)
                    reply = connection.getresponse()
                    body = json.loads(reply.read())
                    replied = time.perf_counter()
                    if body.get("state") != "door_open":
                        raise RuntimeError(f"pickup did not open: {body}")
                    number = body["compartment"]
                    board, lock = (number - 1) // 16, (number - 1) % 16
                    frames = sim.frames_received[seen:]
                    unlock_at = next(f.at for f in frames if f.data[2] == UNLOCK and f.data[1] == (board << 4 | lock))
                    confirm_at = next(f.at for f in frames if f.data[2] == STATUS and f.data[1] == board << 4
                                      and f.at > unlock_at)
                    samples["to_unlock"].append((unlock_at - started) * 1000)
                    samples["to_confirm"].append((confirm_at - started) * 1000)
                    samples["unlock_to_confirm"].append((confirm_at - unlock_at) * 1000)
                    samples["to_reply"].append((replied - started) * 1000)
                    sim.set_item(board, lock, False)
                    sim.close_door(board, lock)
                    if not busy:
                        wait_closed(controller, number)
                    time.sleep(max(0.0, settings.locker.unlock_gap_s - (time.perf_counter() - replied)))
                if len(samples["to_confirm"]) < opens:  # every pickup completed before restocking
                    while any(c["state"] != "free" for c in controller.services.locker.snapshot()):
                        time.sleep(0.01)
        finally:
            connection.close()
            server.close()
            thread.join(5)
            controller.stop()
            sim.stop()
    return samples


def report(title: str, samples: dict[str, list[float]], wire: float) -> None:
    print(title)
    print(f"{'':38}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [("HTTP call -> unlock frame on the wire", "to_unlock"),
            ("HTTP call -> confirming status read", "to_confirm"),
            ("  of which unlock -> confirming read", "unlock_to_confirm"),
            ("HTTP call -> HTTP reply (after commit)", "to_reply")]
    for label, key in rows:
        values = samples[key]
        print(f"{label:38}{statistics.median(values):9.2f}{percentile(values, 99):9.2f}{max(values):9.2f}")
    echo_ms = controller_echo_window_ms()
    software_p99 = percentile([v - echo_ms for v in samples["to_confirm"]], 99)
    print(f"software p99 (call -> confirming read, less the echo window): {software_p99:.2f} ms, "
          f"{'below' if software_p99 < wire else 'ABOVE'} the wire time ({wire:.1f} ms)")


def controller_echo_window_ms() -> float:
    from edge.settings import LockerSettings

    return LockerSettings().unlock_echo_window_s * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 opens: a smoke run")
    parser.add_argument("--opens", type=int, default=1000)
    parser.add_argument("--busy", action="store_true",
                        help="close each door and open the next at once, so the door monitor's "
                             "door.closed commit often runs during the next opening")
    parser.add_argument("--path", choices=("technician", "resident", "both"), default="both",
                        help="technician: POST /api/diag/open; resident: a typed pickup code")
    args = parser.parse_args(argv)
    opens = 100 if args.quick else args.opens
    if args.path == "resident":
        return main_resident(opens, args.busy)
    load_before = os.getloadavg()[0]
    samples = measure(opens, args.busy)
    wire = wire_ms(WIRE_BYTES)
    print(f"door-open latency over {opens} opens (HTTP -> Flask -> locker service -> Kerong driver -> PTY simulator)")
    print(f"machine load average at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores; scheduler delays under load show in p99)")
    print("busy locker: the previous door's close is committed while the next door opens" if args.busy
          else "each door opens with the previous close already recorded (one person at the kiosk)")
    print(f"{'':38}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [("HTTP call -> unlock frame on the wire", "to_unlock"),
            ("HTTP call -> confirming status read", "to_confirm"),
            ("  of which unlock -> confirming read", "unlock_to_confirm"),
            ("HTTP call -> HTTP reply (after commit)", "to_reply")]
    for label, key in rows:
        values = samples[key]
        print(f"{label:38}{statistics.median(values):9.2f}{percentile(values, 99):9.2f}{max(values):9.2f}")
    print(f"wire time of the same frames at {BAUD} baud: {WIRE_BYTES} bytes x {BITS_PER_BYTE} bits = {wire:.1f} ms "
          f"(unlock {wire_ms(5):.1f} + status {wire_ms(5):.1f} + reply {wire_ms(9):.1f})")
    echo_ms = controller_echo_window_ms()
    software = [v - echo_ms for v in samples["to_confirm"]]
    total_p99, software_p99 = percentile(samples["to_confirm"], 99), percentile(software, 99)
    print(f"p99 call -> confirming read: {total_p99:.2f} ms, of which {echo_ms:g} ms is the configured "
          "echo window (locker.unlock_echo_window_s, ADR 0011; 0 unless the firmware echoes)")
    print(f"software p99 (call -> confirming read, less the echo window): {software_p99:.2f} ms, "
          f"{'below' if software_p99 < wire else 'ABOVE'} the wire time ({wire:.1f} ms)")
    if args.path == "both":
        print()
        return main_resident(opens, args.busy)
    return 0


def main_resident(opens: int, busy: bool) -> int:
    load_before = os.getloadavg()[0]
    samples = measure_resident(opens, busy)
    print(f"machine load average at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f}")
    report(f"resident's path over {opens} pickups (typed code over HTTP -> durable attempt commit -> "
           "Kerong driver -> PTY simulator)", samples, wire_ms(WIRE_BYTES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
