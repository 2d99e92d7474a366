"""A stand-in for `systemctl restart [--no-block] edge.service` in the update tests: it runs
the steps deploy/edge.service gives systemd, against a temporary prefix, with plain processes.

  stop the running controller (SIGTERM, then wait for it to exit)
  ExecStartPre=-<prefix>/previous/venv/bin/edge update guard
  ExecStart=<prefix>/current/venv/bin/edge run            (the link read now, as systemd does)
  ExecStartPost=<prefix>/current/venv/bin/edge update mark-good --wait
  Restart=on-failure: a failed ExecStartPost stops the service and starts it again

Settings come from the environment (EDGE_*), as from edge.service's EnvironmentFile.
FAKE_SYSTEMD_DIR holds the pid file, a journal of what ran, and the processes' output.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["FAKE_SYSTEMD_DIR"])
PREFIX = Path(os.environ["EDGE_UPDATE__PREFIX"])
PID_FILE = STATE / "edge.pid"


def note(line: str) -> None:
    with open(STATE / "journal.txt", "a") as journal:
        journal.write(f"{time.strftime('%H:%M:%S')} {line}\n")


def stop() -> None:
    if not PID_FILE.exists():
        return
    pid = int(PID_FILE.read_text())
    PID_FILE.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(300):  # TimeoutStopSec
        try:
            finished, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its end
            finished = 0 if Path(f"/proc/{pid}").exists() else pid
        if finished:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def edge(link: str) -> str:
    return str(PREFIX / link / "venv" / "bin" / "edge")


def start_once() -> bool:
    if (PREFIX / "previous").exists():
        guard = subprocess.run([edge("previous"), "update", "guard"], capture_output=True, text=True)
        note(f"guard rc={guard.returncode} {guard.stdout.strip()}")
    version = os.readlink(PREFIX / "current").rsplit("/", 1)[-1]
    output = open(STATE / f"edge-{version}.log", "ab")
    process = subprocess.Popen([edge("current"), "run"], stdout=output, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    PID_FILE.write_text(str(process.pid))
    note(f"started {version} pid={process.pid}")
    post = subprocess.run([edge("current"), "update", "mark-good", "--wait"], capture_output=True, text=True)
    note(f"mark-good {version} rc={post.returncode} {(post.stdout + post.stderr).strip()}")
    return post.returncode == 0


def restart() -> None:
    with open(STATE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one job at a time, as systemd queues them
        stop()
        for _attempt in range(3):
            if start_once():
                return
            stop()  # the failed start; Restart=on-failure starts it again


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--no-block"]
    if args[:1] != ["restart"] or args[1:] != ["edge.service"]:
        print(f"fake systemctl: unsupported {argv}", file=sys.stderr)
        return 2
    if "--no-block" in argv:  # queue the job and return at once
        subprocess.Popen([sys.executable, __file__, *args], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return 0
    restart()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
