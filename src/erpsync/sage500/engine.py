"""Open a SQLAlchemy engine on Sage 500 (SQL Server) or on the replica (SQLite file or PostgreSQL).

A SQLite file is created on first connect only when the caller says ``create=True`` (``erpsync sage500 replica
create/seed``, ``erpsync check``'s first seeding, the demo). The gateway opens an existing file only: a worker
started before ``erpsync check`` must not leave an empty replica behind that ``check`` would then not seed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from erpsync.config import Settings
from erpsync.errors import SageUnavailable


def make_engine(url: str, *, password: str | None = None, create: bool = True, login_timeout_seconds: int = 15,
                query_timeout_seconds: int = 120, lock_timeout_ms: int = 10_000) -> Engine:
    """An engine for ``url`` whose error texts carry no bound values (``hide_parameters``).

    Timeouts, so no worker hangs on Sage: SQL Server (pymssql) ``login_timeout`` and ``timeout`` (per statement);
    PostgreSQL ``connect_timeout`` and ``statement_timeout``; SQLite waits ``lock_timeout_ms`` for another writer
    (its busy timeout) and has foreign keys on. The lock timeout of a write transaction is set by the gateway.
    SQLite with ``create=False`` opens an existing database file only (a missing one raises
    :class:`SageUnavailable`)."""
    parsed = make_url(url)
    if password and parsed.password is None:
        parsed = parsed.set(password=password)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": lock_timeout_ms / 1000}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_foreign_keys)
        if not create and parsed.database not in (None, "", ":memory:"):
            event.listen(engine, "do_connect", _existing_file_only(Path(parsed.database).absolute()))
        return engine
    connect_args: dict = {}
    if backend == "mssql":
        connect_args = {"login_timeout": login_timeout_seconds, "timeout": query_timeout_seconds}
    elif backend == "postgresql":
        connect_args = {"connect_timeout": login_timeout_seconds,
                        "options": f"-c statement_timeout={query_timeout_seconds * 1000}"}
    connect_args = {name: value for name, value in connect_args.items() if name not in parsed.query}  # URL wins
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _existing_file_only(path: Path):
    """A ``do_connect`` hook opening ``path`` read-write without creating it (SQLite URI ``mode=rw``)."""
    uri = f"file:{quote(str(path))}?mode=rw"

    def connect(dialect, _record, _cargs, cparams):
        try:
            return dialect.loaded_dbapi.connect(uri, uri=True, **cparams)
        except dialect.loaded_dbapi.OperationalError:
            if path.exists():
                raise
            raise SageUnavailable(f"the Sage 500 replica file {path} does not exist: run `erpsync check` (creates "
                                  f"and seeds it) or `erpsync sage500 replica create`; queued work is retried",
                                  record=str(path)) from None

    return connect


def engine_from_settings(settings: Settings, *, create: bool = True) -> Engine:
    """The engine of ``[sage500] url`` with its timeouts; ``create=False`` for the gateway (see the module
    docstring)."""
    cfg, password = settings.sage500, settings.secrets.sage_password
    return make_engine(settings.resolve_url(cfg.url), password=password.get_secret_value() if password else None,
                       create=create, login_timeout_seconds=cfg.login_timeout_seconds,
                       query_timeout_seconds=cfg.query_timeout_seconds, lock_timeout_ms=cfg.lock_timeout_ms)


def real_sage(mode: str, url: str) -> str | None:
    """Why the target is (or may be) a real Sage 500 database rather than a replica — ``mode`` procedure or an
    ``mssql`` URL — or None for a replica."""
    if mode == "procedure":
        return '[sage500] mode is "procedure"'
    try:
        backend = make_url(url).get_backend_name()
    except Exception:  # noqa: BLE001 - an unparsable URL is no replica either
        return f"the URL {url.split('@')[-1]!r} cannot be parsed"
    return "the URL is a SQL Server (mssql) one" if backend == "mssql" else None
