"""What the platform tests share: waiting (longer by default: a whole ingest pipeline moves
between the test and PostgreSQL) and counting rows in a fresh snapshot."""
from __future__ import annotations

from functools import partial
from typing import Any

import psycopg

from tests.support.wait import wait_until as _wait_until

wait_until = partial(_wait_until, timeout=30.0)


def count(pg: psycopg.Connection, sql: str, *params: Any) -> int:
    pg.rollback()  # a fresh snapshot each time
    return pg.execute(sql, params).fetchone()[0]
