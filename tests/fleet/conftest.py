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
        conn.execute("TRUNCATE devices, event_keys, events, gaps, rejected_messages RESTART IDENTITY")
        conn.commit()
        yield conn


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until `predicate` is truthy (the machine is slow and shared: no fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
