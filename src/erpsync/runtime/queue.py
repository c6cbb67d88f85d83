"""The job queues: huey on the backend named by ``[queue] url``.

``sqlite:///path`` → SqliteHuey (one machine, the default); ``redis://…`` → RedisHuey; ``postgresql://…`` →
huey's PostgresHuey (psycopg 3, LISTEN/NOTIFY, ``FOR UPDATE SKIP LOCKED``). Two queues share the backend, each a
huey instance of its own name: ``amazon`` (SP-API work) and ``sage500`` (work next to SQL Server, which an
on-premises agent can run alone with ``erpsync worker --queue sage500``).
"""

from __future__ import annotations

import re

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey

from erpsync.config import Settings
from erpsync.errors import ConfigError
from erpsync.flows.jobs import QUEUES

_PG_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def backend(url: str) -> str:
    """'sqlite', 'redis' or 'postgresql' for a queue URL."""
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    if _PG_SCHEME.match(url):
        return "postgresql"
    raise ConfigError(f"[queue] url {url!r} is not a queue backend; use sqlite:///.erpsync/queue.db, "
                      f"redis://host:6379/0 or postgresql://user@host/db")


def huey_name(settings: Settings, queue: str) -> str:
    return f"{settings.queue.name}-{queue}"


def make_huey(settings: Settings, queue: str) -> Huey:
    """A huey instance for one of :data:`QUEUES` (results are not stored: outcomes live in the state store)."""
    if queue not in QUEUES:
        raise ConfigError(f"unknown queue {queue!r}; erpsync has {', '.join(QUEUES)}")
    url, name = settings.queue.url, huey_name(settings, queue)
    kind = backend(url)
    if kind == "sqlite":
        if ":memory:" in url:
            raise ConfigError("[queue] url: an in-memory SQLite queue cannot be shared with workers; use a file")
        return SqliteHuey(name, filename=settings.resolve_url(url)[len("sqlite:///"):], results=False)
    if kind == "redis":
        return RedisHuey(name, url=url, results=False, clean_name=False)
    return PostgresHuey(name, dsn=_PG_SCHEME.sub("postgresql://", url), results=False)
