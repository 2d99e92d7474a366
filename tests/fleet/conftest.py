"""Fleet tests run against a real PostgreSQL: a fresh database per test session
(fleet_test_<random>), dropped afterwards, so parallel runs never collide. The server is
FLEET_TEST_DATABASE_URL (./dev sets it to its private cluster where needed)."""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from fleet import db as fleet_db
from tests.support.fleet import wait_until

DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("FLEET_TEST_DATABASE_URL", DEFAULT_SERVER_URL)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server = make_url(server_url())
    name = f"fleet_test_{secrets.token_hex(6)}"
    admin = fleet_db.conninfo(server.render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    fleet_db.upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session's database, its tables emptied first."""
    with fleet_db.connect(database_url) as conn:
        conn.execute("TRUNCATE devices, event_keys, events, gaps, rejected_messages, org_units, staff, bookings, "
                     "help_requests, help_request_updates, outgoing_commands, station_catalogues "
                     "RESTART IDENTITY CASCADE")
        conn.commit()
        yield conn


@pytest.fixture(autouse=True)
def _no_fleet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's FLEET_* variables (the test database URL aside)."""
    for name in list(os.environ):
        if name.startswith("FLEET_") and name != "FLEET_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def fleet_settings(pg: psycopg.Connection, database_url: str, broker) -> Any:
    from fleet.settings import load_settings

    return load_settings(database_url=database_url,
                         mqtt={"host": broker.host, "port": broker.port, "client_id_prefix": f"t{secrets.token_hex(3)}"},
                         ingest={"gap_replay_after_s": 0.3, "gap_replay_retry_s": 2,
                                 "maintenance_every_s": 0.2, "batch_wait_s": 0.02})


class RunningWorker:
    """An IngestWorker in a thread of the test process (so the test can read its notifier)."""

    def __init__(self, worker: Any) -> None:
        import threading

        self.worker = worker
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=worker.run, args=(self.stop_event,), daemon=True)

    def start(self) -> "RunningWorker":
        self.thread.start()
        wait_until(self.worker.subscribed.is_set, what="worker subscribed")
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def start_worker(fleet_settings: Any) -> Iterator[Callable[..., RunningWorker]]:
    from fleet.ingest import IngestWorker

    running: list[RunningWorker] = []

    def start(index: int = 0, worker_class: type = IngestWorker, settings: Any = None, **kwargs: Any) -> RunningWorker:
        worker = RunningWorker(worker_class(settings or fleet_settings, index, **kwargs)).start()
        running.append(worker)
        return worker

    yield start
    for worker in running:
        if worker.thread.is_alive():
            worker.stop()
