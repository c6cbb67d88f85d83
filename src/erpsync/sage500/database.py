"""What every part of the gateway shares: the engine, the backend, Sage's clock, and how a transaction is opened
and how database errors become erpsync errors.

A write transaction takes an exclusive application lock on its record first — ``sp_getapplock`` (owner: the
transaction) on SQL Server, ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite — and bounds
every lock wait that follows with the lock timeout: ``SET LOCK_TIMEOUT`` on SQL Server, ``lock_timeout`` on
PostgreSQL, the busy timeout on SQLite. Waiting for the record's own lock past the timeout is
:class:`~erpsync.errors.RecordLocked` (another job has the order: deferred, no retry spent); any other blocked
statement is :class:`~erpsync.errors.SageUnavailable` (a Sage session holds what we need: retried), never a worker
hung forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from erpsync.config import SageTables
from erpsync.errors import ConfigError, Permanent, RecordLocked, SageUnavailable
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.backend import Backend
from erpsync.sage500.clock import SageClock

T = TypeVar("T")
LOCK_TIMEOUT_MS = 10_000


class SageDatabase:
    """One Sage company reached through ``engine``; the concerns of the gateway (orders, shipments, catalog and
    stock, GL, schema check) are its subclasses. Thread-safe (an Engine is)."""

    def __init__(self, engine: Engine, company_id: str, backend: Backend, tables: SageTables | None = None, *,
                 user_id: str = "erpsync", lock_timeout_ms: int = LOCK_TIMEOUT_MS, clock: SageClock | None = None):
        self.engine, self.company_id, self.backend = engine, company_id, backend
        self.tables = tables or SageTables()
        self.package = s.package_table(self.tables)
        self.user_id, self.lock_timeout_ms = user_id, lock_timeout_ms
        self.clock = clock or SageClock()

    @property
    def mode(self) -> str:
        return self.backend.mode

    @contextmanager
    def _transaction(self, lock: str) -> Iterator[Connection]:
        """A write transaction holding an exclusive application lock on ``lock`` until it ends."""
        with self._errors(), self.engine.connect() as conn, conn.begin():
            _LOCKS[conn.dialect.name](conn, lock, self.lock_timeout_ms)
            yield conn

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self._errors(), self.engine.connect() as conn:
            return fn(conn)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.DBAPIError as exc:
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from exc


# ----- locks, per database engine ------------------------------------------------------------------------------


def _lock_mssql(conn: Connection, resource: str, timeout_ms: int) -> None:
    conn.execute(sql.lock_timeout_mssql(), {"timeout_ms": timeout_ms})
    granted = conn.execute(sql.applock_mssql(), {"resource": resource, "timeout_ms": timeout_ms}).scalar()
    if granted is None or granted < 0:
        raise RecordLocked(f"Sage application lock {resource!r} not granted within {timeout_ms} ms "
                           f"(sp_getapplock {granted}); another writer holds it", record=resource)


def _lock_postgresql(conn: Connection, resource: str, timeout_ms: int) -> None:
    conn.execute(sql.lock_timeout_postgresql(), {"timeout": f"{timeout_ms}ms"})
    try:
        conn.execute(sql.applock_postgresql(), {"resource": resource})
    except sa_exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise RecordLocked(f"Sage application lock {resource!r} not granted within {timeout_ms} ms; another "
                           f"writer holds it", record=resource) from None


def _lock_sqlite(conn: Connection, resource: str, timeout_ms: int) -> None:
    """SQLite has one writer: taking the write lock first serialises writers for the whole transaction."""
    conn.execute(sql.busy_timeout_sqlite(timeout_ms))
    conn.execute(sql.begin_immediate_sqlite())


_LOCKS = {"mssql": _lock_mssql, "postgresql": _lock_postgresql, "sqlite": _lock_sqlite}


# ----- errors --------------------------------------------------------------------------------------------------

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired
_LOCK_WAIT = ("database is locked", "lock request time out period exceeded")  # SQLite; SQL Server error 1222
_MISSING = ("no such table", "no such column", "undefined table", "undefined column", "invalid object name",
            "invalid column name", "does not exist")


def translate(exc: sa_exc.DBAPIError) -> Exception:
    """The erpsync error for a database error (``exc`` itself when none applies). Messages carry the driver's
    text, never bound values (the engines hide parameters)."""
    orig = exc.orig
    text = str(orig).lower()
    if getattr(orig, "sqlstate", None) == LOCK_NOT_AVAILABLE or any(marker in text for marker in _LOCK_WAIT):
        return SageUnavailable(f"a Sage statement waited longer than the lock timeout ([sage500] lock_timeout_ms) "
                               f"for a lock another session holds: {type(orig).__name__}: {_first_line(orig)}")
    if any(marker in text for marker in _MISSING):
        return ConfigError(f"the Sage database lacks a table or column erpsync needs ({_first_line(orig)}); "
                           f"run `erpsync check`")
    if isinstance(exc, sa_exc.DataError):
        return Permanent(f"Sage refused a value{_where(exc)}: {_first_line(orig)}; correct the value that does not "
                         f"fit and replay", code="sage_data_error")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or exc.connection_invalidated:
        return SageUnavailable(f"Sage database unavailable: {type(orig).__name__}: {_first_line(orig)}")
    return exc


def _first_line(orig: BaseException) -> str:
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _where(exc: sa_exc.DBAPIError) -> str:
    """' in column T.C' when the driver names the column, else ' in table T' from the statement."""
    diag = getattr(exc.orig, "diag", None)
    table, column = getattr(diag, "table_name", None), getattr(diag, "column_name", None)
    statement = exc.statement or ""
    if not table:
        found = re.search(r'(?:INSERT INTO|UPDATE)\s+"?\[?(\w+)', statement, re.IGNORECASE)
        table = found.group(1) if found else None
    if column:
        return f" in column {table}.{column}" if table else f" in column {column}"
    return f" in table {table}" if table else ""
