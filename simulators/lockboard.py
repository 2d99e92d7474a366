"""A bus of Kerong KR-CU16 lock boards, speaking the exact bytes, on a PTY or a TCP port.

Tests and the bench drive it from Python; a human drives it from the command line:

    python -m simulators.lockboard --boards 0,1 [--tcp PORT]

prints the path (or socket:// URL) to open as its first line, then takes commands on stdin
(`help` lists them). Locks are counted from 0, like the driver API.
"""
from __future__ import annotations

import argparse
import array
import fcntl
import logging
import os
import select
import socket
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge.drivers.lockboard.base import LOCKS_PER_BOARD
from edge.drivers.lockboard.protocol import (
    REQUEST_LEN,
    Cmd,
    FrameParser,
    Request,
    address,
    decode_request,
    encode_reply,
)

log = logging.getLogger("simulators.lockboard")


@dataclass
class _Lock:
    latched: bool = True  # latch shut; it springs shut again when the door is pushed closed
    item: bool = False
    jammed: bool = False
    opened_at: float | None = None  # time.monotonic() when the door last opened


@dataclass(frozen=True)
class ReceivedFrame:
    at: float  # time.perf_counter() when the whole frame had arrived
    data: bytes

    @property
    def request(self) -> Request:
        return decode_request(self.data)


class LockBoardSimulator:
    def __init__(self, boards: Iterable[int] = (0, 1), closed_bit: int = 1,
                 auto_close_s: float | None = None) -> None:
        if closed_bit not in (0, 1):
            raise ValueError(f"closed_bit must be 0 or 1, not {closed_bit!r}")
        self._boards = {address(b) >> 4: [_Lock() for _ in range(LOCKS_PER_BOARD)] for b in boards}
        self._closed_bit = closed_bit
        self._auto_close_s = auto_close_s
        self._state = threading.Lock()
        self._offline: set[int] = set()
        self._garbage = b""
        self._reply_delay_s = 0.0
        self._echo_unlock = False
        self._frames: list[ReceivedFrame] = []
        self._stray_bytes = 0
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()  # reading or answering
        self._wake_r, self._wake_w = -1, -1
        self._pty: tuple[int, int] | None = None  # (master, slave) fds
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self.url: str | None = None  # what a driver opens, once started (PTY path or socket:// URL)

    # --- transport ------------------------------------------------------------------------

    def start_pty(self) -> str:
        """Serve on a new pseudo-terminal; returns the path a driver opens."""
        self._check_idle()
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        self._pty = (master, slave)  # the slave fd stays open so the master never sees EIO
        self._start()
        self.url = os.ttyname(slave)
        return self.url

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve one TCP client at a time (a newer one replaces it); returns its socket:// URL."""
        self._check_idle()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        self._listener = listener
        self._start()
        bound_host, bound_port = listener.getsockname()[:2]
        self.url = f"socket://{bound_host}:{bound_port}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the port: a driver on it sees the device vanish."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
        for fd in self._pty or ():
            os.close(fd)
        self._pty = None
        for sock in (self._client, self._listener):
            if sock is not None:
                sock.close()
        self._client = self._listener = None

    def __enter__(self) -> LockBoardSimulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _check_idle(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the simulator is already serving; stop() it first")

    def _start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="lockboard-sim", daemon=True)
        self._thread.start()

    def _request_parser(self) -> FrameParser:
        """Splits the incoming bytes into request frames (a subclass speaks another protocol)."""
        return FrameParser(REQUEST_LEN)

    def _serve(self) -> None:
        parser = self._request_parser()
        while True:
            sources: list[int | socket.socket] = [self._wake_r]
            if self._pty:
                sources.append(self._pty[0])
            if self._listener:
                sources.append(self._listener)
            if self._client:
                sources.append(self._client)
            ready, _, _ = select.select(sources, [], [])
            if self._wake_r in ready:
                return
            if self._listener in ready:
                self._accept()
                parser = self._request_parser()
                continue
            self._busy.set()  # before reading: see wait_idle()
            discarded_before = parser.discarded
            for frame in parser.feed(self._read()):
                self._write(self._answer(frame))
            with self._state:
                self._stray_bytes += parser.discarded - discarded_before
            self._busy.clear()

    def _accept(self) -> None:
        assert self._listener is not None
        client, _ = self._listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._client is not None:
            self._client.close()
        self._client = client

    def _read(self) -> bytes:
        if self._pty:
            return os.read(self._pty[0], 4096)
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except ConnectionError:
            data = b""
        if not data:  # the driver hung up; wait for the next one
            self._client.close()
            self._client = None
        return data

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._pty:
            os.write(self._pty[0], data)
        elif self._client is not None:
            try:
                self._client.sendall(data)
            except ConnectionError as exc:
                log.info("client gone before reply: %s", exc)

    # --- board behaviour ------------------------------------------------------------------

    def _answer(self, frame: bytes) -> bytes:
        """Bytes the bus sends back for one request (empty when every board stays silent)."""
        request = decode_request(frame)
        log.debug("rx %s", frame.hex(" "))
        with self._state:
            self._frames.append(ReceivedFrame(time.perf_counter(), frame))
            reply = self._reply_to(request)
            if not reply:
                return b""
            reply, self._garbage = self._garbage + reply, b""
            delay = self._reply_delay_s
        if delay:
            time.sleep(delay)
        log.debug("tx %s", reply.hex(" "))
        return reply

    def _reply_to(self, request: Request) -> bytes:
        if request.cmd == Cmd.QUERY_BUS:
            return b"".join(self._status_frame(Cmd.QUERY_REPLY, b) for b in sorted(self._boards)
                            if b not in self._offline)
        if request.board not in self._boards or request.board in self._offline:
            return b""
        locks = self._boards[request.board]
        if request.cmd == Cmd.STATUS:
            return self._status_frame(Cmd.STATUS_REPLY, request.board)
        if request.cmd == Cmd.UNLOCK:
            self._pulse(locks[request.lock])
        elif request.cmd == Cmd.UNLOCK_BOARD:
            for lock in locks:
                self._pulse(lock)
        else:
            return b""
        return self._status_frame(Cmd.STATUS_REPLY, request.board) if self._echo_unlock else b""

    def _pulse(self, lock: _Lock) -> None:
        if not lock.jammed and lock.latched:
            lock.latched = False
            lock.opened_at = time.monotonic()

    def _status_frame(self, cmd: Cmd, board: int) -> bytes:
        latches = items = 0
        for i, lock in enumerate(self._boards[board]):
            self._settle(lock)
            latch_bit = self._closed_bit if lock.latched else 1 - self._closed_bit
            latches |= latch_bit << i
            items |= lock.item << i
        return encode_reply(cmd, board, latches, items)

    def _settle(self, lock: _Lock) -> None:
        """Someone pushes an open door shut once auto_close_s has passed."""
        if (not lock.latched and self._auto_close_s is not None and lock.opened_at is not None
                and time.monotonic() - lock.opened_at >= self._auto_close_s):
            lock.latched = True
            lock.opened_at = None

    # --- controls -------------------------------------------------------------------------

    def _board(self, board: int) -> list[_Lock]:
        if board not in self._boards:
            raise ValueError(f"no board {board} on this bus (boards {sorted(self._boards)})")
        return self._boards[board]

    def _lock(self, board: int, lock: int) -> _Lock:
        locks = self._board(board)
        if not 0 <= lock < LOCKS_PER_BOARD:
            raise ValueError(f"lock {lock} is outside 0-{LOCKS_PER_BOARD - 1}")
        return locks[lock]

    def close_door(self, board: int, lock: int) -> None:
        with self._state:
            found = self._lock(board, lock)
            found.latched, found.opened_at = True, None

    def open_door(self, board: int, lock: int) -> None:
        """The door is forced or pulled open without an unlock command."""
        with self._state:
            found = self._lock(board, lock)
            found.latched, found.opened_at = False, time.monotonic()

    def is_open(self, board: int, lock: int) -> bool:
        with self._state:
            found = self._lock(board, lock)
            self._settle(found)
            return not found.latched

    def set_item(self, board: int, lock: int, present: bool) -> None:
        with self._state:
            self._lock(board, lock).item = present

    def jam(self, board: int, lock: int, jammed: bool = True) -> None:
        with self._state:
            self._lock(board, lock).jammed = jammed

    def set_offline(self, board: int, offline: bool = True) -> None:
        with self._state:
            self._board(board)
            (self._offline.add if offline else self._offline.discard)(board)

    def inject_garbage(self, data: bytes) -> None:
        """Bytes sent just before the next reply."""
        with self._state:
            self._garbage += data

    def set_reply_delay(self, seconds: float) -> None:
        with self._state:
            self._reply_delay_s = seconds

    def echo_unlock(self, enabled: bool = True) -> None:
        """Answer each unlock with a status frame, as some firmware do."""
        with self._state:
            self._echo_unlock = enabled

    @property
    def frames_received(self) -> list[ReceivedFrame]:
        with self._state:
            return list(self._frames)

    def wait_idle(self, timeout_s: float = 5.0) -> None:
        """Return once every byte already sent to the simulator has been read and answered.

        Lets a test count frames right after a driver call returns, even those the
        simulator had not reached yet (it was still sleeping out a reply delay, say).
        """
        deadline = time.monotonic() + timeout_s
        # Pending bytes first, then busy: once nothing is pending, every byte was taken in
        # by a read that set busy beforehand, so a clear busy means all were handled.
        while self._pending_bytes() or self._busy.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"lock-board simulator still busy after {timeout_s} s")
            time.sleep(0.001)

    def _pending_bytes(self) -> int:
        source = self._pty[0] if self._pty else self._client
        if source is None:
            return 0
        count = array.array("i", [0])
        try:
            fcntl.ioctl(source, termios.FIONREAD, count)
        except OSError:  # the client hung up meanwhile: nothing left to read from it
            return 0
        return count[0]

    def frames_of(self, cmd: int) -> list[bytes]:
        """Bytes of each received frame carrying `cmd`, in arrival order."""
        return [f.data for f in self.frames_received if f.request.cmd == cmd]

    @property
    def stray_bytes(self) -> int:
        """Bytes received that were not part of a well-formed request."""
        with self._state:
            return self._stray_bytes

    def describe(self) -> list[str]:
        """One line per board, for humans."""
        def listed(indices: list[int]) -> str:
            return ",".join(map(str, indices)) or "-"

        with self._state:
            lines = []
            for board, locks in sorted(self._boards.items()):
                for lock in locks:
                    self._settle(lock)
                state = "offline" if board in self._offline else "online"
                lines.append(
                    f"board {board} {state}: open {listed([i for i, k in enumerate(locks) if not k.latched])}"
                    f" items {listed([i for i, k in enumerate(locks) if k.item])}"
                    f" jammed {listed([i for i, k in enumerate(locks) if k.jammed])}"
                )
            return lines


# --- command line -------------------------------------------------------------------------

HELP = """commands (locks count from 0):
  status                   one line per board
  close B L | open B L     push a door shut / pull it open
  item B L on|off          put in or take out an item
  offline B | online B     board stops / starts answering
  jam B L [on|off]         latch will not open on unlock
  garbage HEX              bytes sent before the next reply, e.g. 'garbage fb'
  delay SECONDS            delay before every reply
  echo on|off              answer unlocks with a status frame"""


def _switch(word: str) -> bool:
    if word not in ("on", "off"):
        raise ValueError(f"expected on or off, not {word!r}")
    return word == "on"


def run_command(sim: LockBoardSimulator, line: str) -> str:
    """Apply one console command; returns what to print. Bad input gets an error line."""
    words = line.split()
    if not words:
        return ""
    name, args = words[0], words[1:]
    try:
        nums = [int(a) for a in args[:2]] if name in ("close", "open", "item", "jam") else []
        if name == "status":
            return "\n".join(sim.describe())
        if name == "help":
            return HELP
        if name == "close" and len(args) == 2:
            sim.close_door(*nums)
        elif name == "open" and len(args) == 2:
            sim.open_door(*nums)
        elif name == "item" and len(args) == 3:
            sim.set_item(*nums, _switch(args[2]))
        elif name == "jam" and len(args) in (2, 3):
            sim.jam(*nums, _switch(args[2]) if len(args) == 3 else True)
        elif name in ("offline", "online") and len(args) == 1:
            sim.set_offline(int(args[0]), name == "offline")
        elif name == "garbage" and len(args) == 1:
            sim.inject_garbage(bytes.fromhex(args[0]))
        elif name == "delay" and len(args) == 1:
            sim.set_reply_delay(float(args[0]))
        elif name == "echo" and len(args) == 1:
            sim.echo_unlock(_switch(args[0]))
        else:
            return f"error: cannot read {line.strip()!r}; try 'help'"
    except ValueError as exc:
        return f"error: {exc}"
    return "ok"


def run_cli(boards: list[int], tcp_port: int | None = None, closed_bit: int = 1,
            auto_close_s: float | None = None) -> int:
    """Run a simulator until Ctrl-C: first stdout line is the port to open, then a console."""
    return serve_console(lambda: LockBoardSimulator(boards, closed_bit=closed_bit, auto_close_s=auto_close_s),
                         tcp_port, run_command, "lock-board simulator")


def serve_console(make: Callable[[], LockBoardSimulator], tcp_port: int | None,
                  command: Callable[[LockBoardSimulator, str], str | None], label: str) -> int:
    """Start a bus simulator (PTY, or TCP on `tcp_port`), print the URL to open, answer console
    commands from stdin, keep serving until Ctrl-C. Exit 2 when it cannot start."""
    try:
        sim = make()
        url = sim.start_tcp(port=tcp_port) if tcp_port is not None else sim.start_pty()
    except (ValueError, OSError) as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 2
    print(url, flush=True)
    try:
        for line in sys.stdin:
            if reply := command(sim, line):
                print(reply, flush=True)
        threading.Event().wait()  # stdin closed: keep serving until interrupted
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.lockboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", default="0,1", help="board addresses, comma separated")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on TCP instead of a PTY")
    parser.add_argument("--closed-bit", type=int, choices=(0, 1), default=1)
    parser.add_argument("--auto-close", type=float, metavar="SECONDS", help="doors close by themselves")
    args = parser.parse_args(argv)
    try:
        boards = [int(b) for b in args.boards.split(",")]
    except ValueError:
        parser.error(f"--boards takes numbers separated by commas, not {args.boards!r}")
    return run_cli(boards, args.tcp, args.closed_bit, args.auto_close)


if __name__ == "__main__":
    sys.exit(main())
