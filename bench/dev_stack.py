"""How long `fleet dev` (what `./dev run` starts) takes to be ready, and to stop on Ctrl-C.

    python bench/dev_stack.py [--database-url URL] [--runs N]

Each run starts the supervisor on free ports with a fresh station data folder, reads its
output until "dev: ready", sends SIGINT to its process group (as a terminal's Ctrl-C does)
and times the exit. The default database is a throw-away one on 127.0.0.1:5432, dropped
at the end. Prints one line per run, then the median.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_run(database_url: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-dev-") as folder:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "FLEET_"))},
               "EDGE_DATA_DIR": str(Path(folder) / "edge"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        stack = subprocess.Popen([sys.executable, "-m", "fleet", "dev", "--database-url", database_url,
                                  "--port", str(free_port()), "--console-port", str(free_port())],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True, process_group=0)
        assert stack.stdout is not None
        for line in stack.stdout:
            if line.startswith("dev: ready"):
                break
        else:
            raise SystemExit(f"fleet dev exited ({stack.wait()}) before it was ready")
        ready = time.monotonic() - started
        asked = time.monotonic()
        os.killpg(stack.pid, signal.SIGINT)
        stack.stdout.read()  # closed once every process that shares it has gone
        stack.wait(60)
        return ready, time.monotonic() - asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a throw-away database on 127.0.0.1:5432")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    url, throwaway = args.database_url, None
    if url is None:
        throwaway = f"fleet_bench_dev_{secrets.token_hex(4)}"
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{throwaway}"
    try:
        results = []
        for run in range(1, args.runs + 1):
            ready, stopped = one_run(url)
            results.append((ready, stopped))
            print(f"run {run}: ready in {ready:.1f} s, stopped {stopped:.1f} s after SIGINT", flush=True)
        print(f"median of {len(results)}: ready {statistics.median(r for r, _ in results):.1f} s, "
              f"stop {statistics.median(s for _, s in results):.1f} s (the first run also creates and migrates "
              f"the database)")
    finally:
        if throwaway is not None:
            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{throwaway}" WITH (FORCE)')


if __name__ == "__main__":
    main()
