"""Open a SQLAlchemy engine on Sage 500 (SQL Server) or on the replica (SQLite file or PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from erpsync.config import Settings


def make_engine(url: str, *, password: str | None = None) -> Engine:
    """An engine for ``url``. SQLite: a 30 s busy timeout (writers queue up rather than fail) and foreign keys on."""
    parsed = make_url(url)
    if password and parsed.password is None:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_foreign_keys)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def engine_from_settings(settings: Settings) -> Engine:
    password = settings.secrets.sage_password
    return make_engine(settings.resolve_url(settings.sage500.url),
                       password=password.get_secret_value() if password else None)
