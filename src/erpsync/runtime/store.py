"""The state store: erpsync's own memory, on SQLite (default) or PostgreSQL, schema managed by Alembic.

It holds the notification inbox (Idempotent Receiver), the order journal (the Amazon order ⇄ Sage sales order
binder), incremental cursors, pending job identity keys, dead letters, shipment confirmations and the audit trail.
Flows use this API and never write SQL. :meth:`Store.open` applies the migrations shipped in
``runtime/migrations`` before returning, so every process sees the schema it expects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite

from erpsync import logs
from erpsync.config import Settings

log = logs.get(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # our own event says when the schema moved

VERSION_TABLE = "erpsync_state_version"
MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x45525053  # pg_advisory_xact_lock id: one migrator at a time on PostgreSQL

JOURNAL_STATUSES = ("received", "writing", "written", "shipped", "confirmed", "skipped", "voided", "failed")
DEAD_LETTER_STATUSES = ("open", "replayed", "discarded")
_REDACT = logs.PII_KEYS | logs.SECRET_KEYS


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(sa.TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (stored as naive UTC) as on PostgreSQL (timestamptz)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store keeps timezone-aware UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = sa.MetaData()

inbox = sa.Table(
    "inbox", metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("notification_type", sa.String(64)),
    sa.Column("amazon_order_id", sa.String(32), index=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("payload", sa.JSON),
)
order_journal = sa.Table(
    "order_journal", metadata,
    sa.Column("amazon_order_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("so_key", sa.Integer),
    sa.Column("tran_no", sa.String(10)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
)
cursors = sa.Table(
    "cursors", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(128), nullable=False),
    sa.Column("queue", sa.String(32), nullable=False),
    sa.Column("key", sa.String(255), nullable=False, index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("error_class", sa.String(128), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("record", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", UtcDateTime, nullable=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("replay_of", sa.Integer, sa.ForeignKey("dead_letters.id")),
    sa.Column("replay_result", sa.Text),
)
job_keys = sa.Table(
    "job_keys", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("job", sa.String(128), nullable=False),
    sa.Column("queue", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("message", sa.JSON),  # the queued message, for re-queueing one lost with a killed worker
)
shipment_confirmations = sa.Table(
    "shipment_confirmations", metadata,
    sa.Column("ship_key", sa.Integer, primary_key=True),
    sa.Column("package_no", sa.Integer, primary_key=True),
    sa.Column("amazon_order_id", sa.String(32), nullable=False, index=True),
    sa.Column("confirmed_at", UtcDateTime, nullable=False),
)
order_notified = sa.Table(  # notified orders left to the newest-first reader under backlog (migration 0003)
    "order_notified", metadata,
    sa.Column("amazon_order_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(32)),
    sa.Column("notified_at", UtcDateTime, nullable=False, index=True),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event", sa.String(64), nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)


# --- rows ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalEntry:
    amazon_order_id: str
    status: str
    so_key: int | None
    tran_no: str | None
    created_at: datetime
    updated_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    job: str
    queue: str
    key: str
    payload: dict[str, Any]
    error_class: str
    error_code: str
    message: str
    record: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: str
    replay_of: int | None
    replay_result: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_failed_at"] = self.first_failed_at.isoformat()
        data["last_failed_at"] = self.last_failed_at.isoformat()
        return data


@dataclass(frozen=True)
class PendingJob:
    key: str
    job: str
    queue: str
    attempts: int
    due_at: datetime
    last_error: str | None
    message: dict[str, Any] | None = None


@dataclass(frozen=True)
class Notified:
    amazon_order_id: str
    status: str | None
    notified_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    id: int
    event: str
    at: datetime
    detail: dict[str, Any]


# --- cursors -------------------------------------------------------------------------------------------------

V = TypeVar("V", datetime, int, str)


def _encode(value: datetime | int | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"cursor value {value!r} is naive; use timezone-aware UTC")
        return value.astimezone(timezone.utc).isoformat()
    return str(value)


def _decode(text: str, kind: type) -> datetime | int | str:
    if kind is datetime:
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    return kind(text)


@dataclass
class Cursor(Generic[V]):
    """An incremental position (dlt-style): ``last_value`` as committed, ``start_value`` = where the next read
    begins (``last_value - overlap``, so nothing at the boundary is lost; ``initial`` before the first commit).
    :meth:`commit` is called only after the data the new value covers is committed, and never moves backwards."""

    store: Store
    name: str
    initial: V
    overlap: timedelta | int | None
    last_value: V | None

    @property
    def start_value(self) -> V:
        if self.last_value is None:
            return self.initial
        if self.overlap and not isinstance(self.last_value, str):
            return self.last_value - self.overlap
        return self.last_value

    def commit(self, value: V) -> bool:
        """Advance to ``value``; False (nothing written) when it is not beyond the stored value."""
        if not isinstance(value, type(self.initial)):
            raise TypeError(f"cursor {self.name!r} holds {type(self.initial).__name__}, not {value!r}")
        text = _encode(value)
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == self.name)
                               .with_for_update()).first()
            current = _decode(row.value, type(self.initial)) if row else None
            if current is not None and value <= current:
                self.last_value = current
                return False
            _upsert(conn, cursors, {"name": self.name}, {"value": text, "updated_at": utcnow()})
        self.last_value = value
        return True


# --- the store -----------------------------------------------------------------------------------------------


class Store:
    """Open with :meth:`open` (from settings) or :meth:`connect` (a URL); both migrate to the latest schema."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.reader = _reader(engine)
        self.dead_letters = DeadLetters(engine)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        return cls.connect(settings.resolve_url(settings.state.url))

    @classmethod
    def connect(cls, url: str) -> Store:
        engine = _engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def revision(self) -> str | None:
        with self.reader.connect() as conn:
            return _current_revision(conn)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # inbox (Idempotent Receiver) ------------------------------------------------------------------------------

    def inbox_add(self, notification_id: str, *, notification_type: str | None = None,
                  amazon_order_id: str | None = None, payload: dict[str, Any] | None = None,
                  received_at: datetime | None = None) -> bool:
        """Record a notification; False when its NotificationId was seen before (drop it). PII is redacted."""
        with self.engine.begin() as conn:
            return _insert_ignore(conn, inbox, {
                "notification_id": notification_id, "notification_type": notification_type,
                "amazon_order_id": amazon_order_id, "received_at": received_at or utcnow(),
                "payload": redact(payload) if payload is not None else None})

    def inbox_forget(self, notification_id: str) -> None:
        """Take a notification out of the inbox again: its job could not be queued, so a redelivery must count."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(inbox).where(inbox.c.notification_id == notification_id))

    # order journal (binder: Amazon order id -> Sage sales order) -----------------------------------------------

    def journal_get(self, amazon_order_id: str) -> JournalEntry | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(order_journal)
                               .where(order_journal.c.amazon_order_id == amazon_order_id)).first()
        return JournalEntry(**row._mapping) if row else None

    def journal_set(self, amazon_order_id: str, status: str, *, so_key: int | None = None,
                    tran_no: str | None = None, error: str | None = None,
                    only_from: Collection[str | None] | None = None) -> bool:
        """Set the order's status (``last_error`` becomes ``error``; SOKey/TranNo kept unless given).

        ``only_from`` makes it a compare-and-set: the change happens only when the current status (None: no
        entry yet) is in it; the return value says whether it happened."""
        if status not in JOURNAL_STATUSES:
            raise ValueError(f"journal status {status!r} for {amazon_order_id}; expected one of {JOURNAL_STATUSES}")
        now = utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": error}
        if so_key is not None:
            values["so_key"] = so_key
        if tran_no is not None:
            values["tran_no"] = tran_no
        where = order_journal.c.amazon_order_id == amazon_order_id
        with self.engine.begin() as conn:
            for _ in range(2):  # a concurrent first insert is re-read as an existing row
                row = conn.execute(sa.select(order_journal.c.status).where(where).with_for_update()).first()
                if only_from is not None and (row.status if row else None) not in only_from:
                    return False
                if row:
                    conn.execute(order_journal.update().where(where).values(**values))
                    return True
                if _insert_ignore(conn, order_journal,
                                  {"amazon_order_id": amazon_order_id, "created_at": now, **values}):
                    return True
        raise RuntimeError(f"order journal entry {amazon_order_id} could not be written")

    def journal_list(self, status: str | Collection[str] | None = None, *, limit: int = 1000) -> list[JournalEntry]:
        query = sa.select(order_journal).order_by(order_journal.c.updated_at).limit(limit)
        if status is not None:
            query = query.where(order_journal.c.status.in_([status] if isinstance(status, str) else status))
        with self.reader.connect() as conn:
            return [JournalEntry(**row._mapping) for row in conn.execute(query)]

    # cursors ---------------------------------------------------------------------------------------------------

    def cursor(self, name: str, initial: V, overlap: timedelta | int | None = None) -> Cursor[V]:
        """The cursor ``name``; the type of ``initial`` (datetime, int or str) is the type of its values."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).first()
        last = _decode(row.value, type(initial)) if row else None
        return Cursor(self, name, initial, overlap, last)

    def position(self, name: str) -> dict[str, Any] | None:
        """A position that moves both ways (a page token, a window in progress), kept as JSON beside the cursors;
        None when there is none."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).first()
        return json.loads(row.value) if row else None

    def position_set(self, name: str, value: dict[str, Any] | None) -> None:
        """Record the position ``name`` (None: forget it)."""
        with self.engine.begin() as conn:
            if value is None:
                conn.execute(cursors.delete().where(cursors.c.name == name))
            else:
                _upsert(conn, cursors, {"name": name}, {"value": json.dumps(value), "updated_at": utcnow()})

    # notified orders not read yet (the newest-first reader's work) -------------------------------------------

    def notified_add(self, amazon_order_id: str, status: str | None) -> None:
        """Note that ``amazon_order_id`` was notified (as ``status``) and is still to be read; a later
        notification replaces the earlier one."""
        with self.engine.begin() as conn:
            _upsert(conn, order_notified, {"amazon_order_id": amazon_order_id},
                    {"status": status, "notified_at": utcnow()})

    def notified_newest(self, *, limit: int = 100, exclude: Collection[str] = ()) -> list[Notified]:
        query = sa.select(order_notified).order_by(order_notified.c.notified_at.desc()).limit(limit)
        if exclude:
            query = query.where(order_notified.c.amazon_order_id.not_in(list(exclude)))
        with self.reader.connect() as conn:
            return [Notified(**row._mapping) for row in conn.execute(query)]

    def notified_get(self, amazon_order_ids: Collection[str]) -> dict[str, Notified]:
        if not amazon_order_ids:
            return {}
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(order_notified)
                                .where(order_notified.c.amazon_order_id.in_(list(amazon_order_ids))))
            return {row.amazon_order_id: Notified(**row._mapping) for row in rows}

    def notified_remove(self, notified: Notified) -> bool:
        """Forget ``notified`` once it is read, unless a newer notification of the order replaced it meanwhile."""
        with self.engine.begin() as conn:
            return bool(conn.execute(order_notified.delete().where(
                order_notified.c.amazon_order_id == notified.amazon_order_id,
                order_notified.c.notified_at == notified.notified_at)).rowcount)

    def notified_summary(self) -> tuple[int, datetime | None]:
        """How many notified orders are still to be read, and when the oldest of them was notified."""
        with self.reader.connect() as conn:
            count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(order_notified.c.notified_at))).one()
        if isinstance(oldest, str):  # SQLite's aggregate skips the column's type
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        return count, oldest

    # pending job identity keys ---------------------------------------------------------------------------------

    def job_key_claim(self, key: str, *, job: str, queue: str, due_at: datetime,
                      stale_after: timedelta, message: dict[str, Any] | None = None) -> bool:
        """Claim an identity key for a job about to be queued; False when it is pending already.

        A key whose job was due more than ``stale_after`` ago is taken over: its message was lost with a killed
        worker (jobs are idempotent, so a rare duplicate run is harmless; a lost one is not)."""
        row = {"key": key, "job": job, "queue": queue, "attempts": 0, "due_at": due_at, "last_error": None,
               "message": message}
        with self.engine.begin() as conn:
            if _insert_ignore(conn, job_keys, row):
                return True
            taken = conn.execute(job_keys.update()
                                 .where(job_keys.c.key == key, job_keys.c.due_at < utcnow() - stale_after)
                                 .values(**row))
            if taken.rowcount:
                log.warning("job.key_reclaimed", key=key, job=job)
            return bool(taken.rowcount)

    def job_key_note(self, key: str, *, job: str, queue: str, attempts: int, due_at: datetime,
                     error: str | None, message: dict[str, Any] | None = None) -> None:
        """Record that the job behind ``key`` was rescheduled (after ``attempts`` runs) for ``due_at``, with the
        message now queued for it (kept as it was when None)."""
        values = {"job": job, "queue": queue, "attempts": attempts, "due_at": due_at, "last_error": error}
        if message is not None:
            values["message"] = message
        with self.engine.begin() as conn:
            _upsert(conn, job_keys, {"key": key}, values)

    def job_key_release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(job_keys.delete().where(job_keys.c.key == key))

    def job_key_get(self, key: str) -> PendingJob | None:
        """The pending job behind ``key``; None when no job with that key is queued, scheduled or running."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(job_keys).where(job_keys.c.key == key)).first()
        return PendingJob(**row._mapping) if row else None

    def job_keys_pending(self, *, limit: int = 1000) -> list[PendingJob]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(job_keys).order_by(job_keys.c.due_at).limit(limit))
            return [PendingJob(**row._mapping) for row in rows]

    def job_keys_count(self, queue: str) -> int:
        """How many jobs of ``queue`` are pending: queued, scheduled (a retry, a delay) or running."""
        with self.reader.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(job_keys)
                                .where(job_keys.c.queue == queue)).scalar_one()

    # shipment confirmations ------------------------------------------------------------------------------------

    def confirmation_add(self, ship_key: int, package_no: int, amazon_order_id: str,
                         confirmed_at: datetime | None = None) -> bool:
        """Record a package confirmed on Amazon; False when it was recorded before."""
        with self.engine.begin() as conn:
            return _insert_ignore(conn, shipment_confirmations, {
                "ship_key": ship_key, "package_no": package_no, "amazon_order_id": amazon_order_id,
                "confirmed_at": confirmed_at or utcnow()})

    def confirmed_packages(self, ship_key: int) -> set[int]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(shipment_confirmations.c.package_no)
                                .where(shipment_confirmations.c.ship_key == ship_key))
            return {row.package_no for row in rows}

    # audit -----------------------------------------------------------------------------------------------------

    def audit(self, event: str, **detail: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(event=event, at=utcnow(), detail=redact(detail)))

    def audit_list(self, *, event: str | None = None, limit: int = 100) -> list[AuditEvent]:
        query = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
        if event is not None:
            query = query.where(audit.c.event == event)
        with self.reader.connect() as conn:
            return [AuditEvent(**row._mapping) for row in conn.execute(query)]


class DeadLetters:
    """The ``dead_letters`` table. Capture and replay logic: :mod:`erpsync.runtime.deadletter`."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.reader = _reader(engine)

    def add(self, *, job: str, queue: str, key: str, payload: dict[str, Any], error_class: str, error_code: str,
            message: str, record: str | None, attempts: int, first_failed_at: datetime,
            last_failed_at: datetime | None = None, replay_of: int | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(dead_letters.insert().values(
                job=job, queue=queue, key=key, payload=payload, error_class=error_class, error_code=error_code,
                message=message, record=record, attempts=attempts, first_failed_at=first_failed_at,
                last_failed_at=last_failed_at or utcnow(), status="open", replay_of=replay_of))
            return result.inserted_primary_key[0]

    def get(self, id: int) -> DeadLetter | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(dead_letters).where(dead_letters.c.id == id)).first()
        return DeadLetter(**row._mapping) if row else None

    def list(self, status: str | None = "open", *, job: str | None = None, limit: int = 200) -> list[DeadLetter]:
        """Newest first; ``status`` None lists every status."""
        query = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        if job is not None:
            query = query.where(dead_letters.c.job == job)
        with self.reader.connect() as conn:
            return [DeadLetter(**row._mapping) for row in conn.execute(query)]

    def mark(self, id: int, status: str | None = None, *, result: str | None = None,
             only_from: Collection[str] | None = None) -> bool:
        """Set the status and/or the replay result; with ``only_from``, only when the status is one of those."""
        if status is not None and status not in DEAD_LETTER_STATUSES:
            raise ValueError(f"dead letter status {status!r}; expected one of {DEAD_LETTER_STATUSES}")
        values = {k: v for k, v in (("status", status), ("replay_result", result)) if v is not None}
        query = dead_letters.update().where(dead_letters.c.id == id).values(**values)
        if only_from is not None:
            query = query.where(dead_letters.c.status.in_(only_from))
        with self.engine.begin() as conn:
            return bool(conn.execute(query).rowcount)


# --- helpers -------------------------------------------------------------------------------------------------


def redact(value: Any) -> Any:
    """A copy of a JSON value with personal data and secrets replaced by ``[redacted]`` at any depth."""
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in _REDACT else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _dialect_insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted (RETURNING: rowcount is not reliable)."""
    stmt = _dialect_insert(conn, table).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt.returning(sa.literal(1))).first() is not None


def _upsert(conn: sa.Connection, table: sa.Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    stmt = _dialect_insert(conn, table).values(**key, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=values))


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite") and ":memory:" in url:
        raise ValueError("the state store must be a file or a server: several threads and processes share it")
    engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            # Writers take the lock up front: no deadlocked read-then-write upgrades between processes.
            # Readers (see _reader) run each statement on its own and never block a writer (WAL).
            if not conn.get_execution_options().get("erpsync_read"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif engine.dialect.name != "postgresql":
        raise ValueError(f"state store {engine.url.drivername}: use sqlite:///... or postgresql://...")
    return engine


def _reader(engine: sa.Engine) -> sa.Engine:
    """The same engine and pool, for connections that only read."""
    return engine.execution_options(erpsync_read=True)


def _current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def migrate(engine: sa.Engine) -> str:
    """Upgrade the schema to the newest revision (serialised between processes); returns that revision."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
        before = _current_revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        after = _current_revision(conn)
    if before != after:
        log.info("state.migrated", url=engine.url.render_as_string(hide_password=True), before=before, after=after)
    return after
