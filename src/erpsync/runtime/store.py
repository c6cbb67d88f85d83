"""The state store: erpsync's own memory, on SQLite (default) or PostgreSQL, schema managed by Alembic.

It holds the notification inbox (Idempotent Receiver), the order journal (the Amazon order ⇄ Sage sales order
binder), incremental cursors, pending job identity keys, dead letters, shipment confirmations and the audit trail.
Flows use this API and never write SQL. :meth:`Store.open` applies the migrations shipped in
``runtime/migrations`` before returning, so every process sees the schema it expects.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

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
ROW_IDS = range(1, 2**63)  # the ids an autoincrement key can have (SQLite's INTEGER, PostgreSQL's BIGINT)

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
    sa.Column("token", sa.String(32)),  # the token of the message that owns the key (migration 0004)
    sa.Column("leased_until", UtcDateTime),  # running: its worker's heartbeat renews this
    sa.Column("leased_by", sa.String(128)),  # host:pid of that worker
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
settlements = sa.Table(  # one row per settlement-id: processed once (flows/settlements.py)
    "settlements", metadata,
    sa.Column("settlement_id", sa.String(64), primary_key=True),
    sa.Column("report_id", sa.String(64)),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_amount", sa.String(32), nullable=False),  # Decimal as text: exact on every backend
    sa.Column("start_date", UtcDateTime, nullable=False),
    sa.Column("end_date", UtcDateTime, nullable=False),
    sa.Column("deposit_date", UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # imported | posted
    sa.Column("batches", sa.JSON),  # {"2026-03": BatchKey, ...} once posted
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
settlement_rows = sa.Table(  # the row detail behind the summarised journal, linked to Sage orders by order id
    "settlement_rows", metadata,
    sa.Column("settlement_id", sa.String(64), sa.ForeignKey("settlements.settlement_id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("posted_date", sa.Date, nullable=False),
    sa.Column("transaction_type", sa.String(64), nullable=False),
    sa.Column("amount_type", sa.String(64), nullable=False),
    sa.Column("amount_description", sa.String(128), nullable=False),
    sa.Column("amount", sa.String(32), nullable=False),
    sa.Column("order_id", sa.String(64), index=True),
    sa.Column("fulfillment_id", sa.String(8)),
    sa.Column("sku", sa.String(64)),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("rule", sa.String(16), nullable=False),
)
web_users = sa.Table(  # dashboard logins (erpsync users add); password_hash is argon2id
    "web_users", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
web_sessions = sa.Table(  # one row per login; the cookie holds the token, the row its SHA-256
    "web_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("web_users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)
web_login_failures = sa.Table(  # failed logins, the rate limit shared by every web process
    "web_login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
)
# stock and prices (issue 10, migration 0005): values per SKU and marketplace as JSON objects
# {"quantity": int, "price": "19.99", "minimum_price"?, "maximum_price"?, "attributes"?: {name: value}}
listing_state = sa.Table(
    "listing_state", metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("marketplace_id", sa.String(16), primary_key=True),
    sa.Column("item_id", sa.String(30)),
    sa.Column("desired", sa.JSON),  # what Sage said at the last scan
    sa.Column("desired_at", UtcDateTime),
    sa.Column("acked", sa.JSON),  # what Amazon accepted (processing report)
    sa.Column("acked_at", UtcDateTime),
    sa.Column("sent", sa.JSON),  # in a feed not finished yet
    sa.Column("feed_batch", sa.Integer, index=True),  # that feed's listing_feeds.id
    sa.Column("refused", sa.JSON),  # refused by Amazon: not sent again until Sage changes it or a replay
    sa.Column("held", sa.JSON),  # {"price", "reason", "approved"}: a price the guard holds for review
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
listing_feeds = sa.Table(
    "listing_feeds", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("marketplace_id", sa.String(16), nullable=False),
    sa.Column("feed_id", sa.String(32), index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # queued, IN_QUEUE, IN_PROGRESS, DONE, ...
    sa.Column("messages", sa.JSON, nullable=False),  # [{"messageId", "sku", "values"}]
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("submitted_at", UtcDateTime),
    sa.Column("status_since", UtcDateTime),  # when erpsync first saw the current status (stuck detection)
    sa.Column("finished_at", UtcDateTime),
    sa.Column("resubmits", sa.Integer, nullable=False),
    sa.Column("flagged", sa.Text),  # why it was flagged (stuck)
    sa.Column("summary", sa.JSON),  # the processing report's summary
)
fba_levels = sa.Table(
    "fba_levels", metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("marketplace_id", sa.String(16), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("as_of", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # notification | getInventorySummaries
)
reconciliations = sa.Table(
    "reconciliations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("marketplace_id", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
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
class SettlementRecord:
    settlement_id: str
    report_id: str | None
    currency: str
    total_amount: str
    start_date: datetime
    end_date: datetime
    deposit_date: datetime | None
    status: str
    batches: dict[str, int] | None
    created_at: datetime
    updated_at: datetime


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
    token: str | None = None
    leased_until: datetime | None = None
    leased_by: str | None = None


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
            row = conn.execute(_CURSOR_LOCKED, {"cursor_name": self.name}).first()
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
        self.listings = ListingStore(engine)

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
            row = conn.execute(_JOURNAL_ROW, {"order_id": amazon_order_id}).first()
        return JournalEntry(**row._mapping) if row else None

    def journal_set(self, amazon_order_id: str, status: str, *, so_key: int | None = None,
                    tran_no: str | None = None, error: str | None = None,
                    only_from: Collection[str | None] | None = None,
                    audit: tuple[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]] | None = None) -> bool:
        """Set the order's status (``last_error`` becomes ``error``; SOKey/TranNo kept unless given).

        ``only_from`` makes it a compare-and-set: the change happens only when the current status (None: no
        entry yet) is in it; the return value says whether it happened. ``audit`` = (event, detail), or a list of
        them: the audit rows of the change, written in the same transaction (a kill cannot leave one without the
        other)."""
        if status not in JOURNAL_STATUSES:
            raise ValueError(f"journal status {status!r} for {amazon_order_id}; expected one of {JOURNAL_STATUSES}")
        now = utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": error}
        if so_key is not None:
            values["so_key"] = so_key
        if tran_no is not None:
            values["tran_no"] = tran_no
        with self.engine.begin() as conn:
            for _ in range(2):  # a concurrent first insert is re-read as an existing row
                row = conn.execute(_JOURNAL_STATUS_LOCKED, {"order_id": amazon_order_id}).first()
                if only_from is not None and (row.status if row else None) not in only_from:
                    return False
                if row:
                    conn.execute(_JOURNAL_UPDATE, {"order_id": amazon_order_id, **values})
                    _audit_row(conn, audit)
                    return True
                if _insert_ignore(conn, order_journal,
                                  {"amazon_order_id": amazon_order_id, "created_at": now, **values}):
                    _audit_row(conn, audit)
                    return True
        raise RuntimeError(f"order journal entry {amazon_order_id} could not be written")

    def journal_list(self, status: str | Collection[str] | None = None, *, limit: int = 1000) -> list[JournalEntry]:
        query = sa.select(order_journal).order_by(order_journal.c.updated_at).limit(limit)
        if status is not None:
            query = query.where(order_journal.c.status.in_([status] if isinstance(status, str) else status))
        with self.reader.connect() as conn:
            return [JournalEntry(**row._mapping) for row in conn.execute(query)]

    # cursors ---------------------------------------------------------------------------------------------------

    def cursor(self, name: str, initial: V, overlap: timedelta | int | None = None, *,
               read: bool = True) -> Cursor[V]:
        """The cursor ``name``; the type of ``initial`` (datetime, int or str) is the type of its values.
        ``read=False``: a cursor only to be committed (its ``last_value`` is None until then; :meth:`Cursor.commit`
        reads the stored value under its lock anyway), one read fewer."""
        if not read:
            return Cursor(self, name, initial, overlap, None)
        with self.reader.connect() as conn:
            row = conn.execute(_CURSOR, {"cursor_name": name}).first()
        last = _decode(row.value, type(initial)) if row else None
        return Cursor(self, name, initial, overlap, last)

    def key_set(self, name: str) -> set[int]:
        """A named set of integer keys kept beside the cursors (e.g. Sage shipments a cursor passed while still
        pending, re-checked on their own); empty until first written."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).first()
        return {int(key) for key in row.value.split(",") if key} if row else set()

    def key_set_put(self, name: str, keys: Collection[int]) -> None:
        """Replace the set ``name`` (unlike a cursor it may shrink)."""
        with self.engine.begin() as conn:
            _upsert(conn, cursors, {"name": name}, {"value": ",".join(str(k) for k in sorted(set(keys))),
                                                    "updated_at": utcnow()})

    def position(self, name: str) -> dict[str, Any] | None:
        """A position that moves both ways (a page token, a window in progress), kept as JSON beside the cursors;
        None when there is none."""
        with self.reader.connect() as conn:
            row = conn.execute(_CURSOR, {"cursor_name": name}).first()
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

    def notified_newest(self, *, limit: int = 100, exclude: Collection[str] = (),
                        before: datetime | None = None) -> list[Notified]:
        """The notified orders still to read, newest first; only those notified before ``before`` if given."""
        query = sa.select(order_notified).order_by(order_notified.c.notified_at.desc()).limit(limit)
        if before is not None:
            query = query.where(order_notified.c.notified_at < before)
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

    def notified_any(self) -> bool:
        """Whether any notified order waits for the reader (cheaper than counting them)."""
        with self.reader.connect() as conn:
            return conn.execute(sa.select(order_notified.c.amazon_order_id).limit(1)).first() is not None

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

        A key whose job was due more than ``stale_after`` ago and is not running (no live lease) is taken over:
        its message was lost. The message's ``token`` becomes the key's: a copy of the old message that still
        turns up is not run (see :meth:`job_lease_take`)."""
        now = utcnow()
        row = {"key": key, "job": job, "queue": queue, "attempts": 0, "due_at": due_at, "last_error": None,
               "message": message, "token": (message or {}).get("token"), "leased_until": None, "leased_by": None}
        with self.engine.begin() as conn:
            if _insert_ignore(conn, job_keys, row):
                return True
            taken = conn.execute(job_keys.update()
                                 .where(job_keys.c.key == key, job_keys.c.due_at < now - stale_after,
                                        sa.or_(job_keys.c.leased_until.is_(None), job_keys.c.leased_until < now))
                                 .values(**row))
            if taken.rowcount:
                log.warning("job.key_reclaimed", key=key, job=job)
            return bool(taken.rowcount)

    def job_key_note(self, key: str, *, job: str, queue: str, attempts: int, due_at: datetime,
                     error: str | None, message: dict[str, Any] | None = None, token: str | None = None) -> bool:
        """Record that the job behind ``key`` was rescheduled (after ``attempts`` runs) for ``due_at``, with the
        message now queued for it (kept as it was when None; its ``token`` becomes the key's), no longer running.

        ``token``: only if the key is still owned by the message with that token (the run that failed); False
        when another message owns it now. Without it the key is written whatever its state (a run outside the
        queues)."""
        values = {"job": job, "queue": queue, "attempts": attempts, "due_at": due_at, "last_error": error,
                  "leased_until": None, "leased_by": None}
        if message is not None:
            values["message"] = message
            values["token"] = message.get("token")
        with self.engine.begin() as conn:
            if token is None:
                _upsert(conn, job_keys, {"key": key}, values)
                return True
            return bool(conn.execute(job_keys.update()
                                     .where(job_keys.c.key == key, job_keys.c.token == token)
                                     .values(**values)).rowcount)

    def job_key_release(self, key: str, token: str | None = None) -> bool:
        """The job behind ``key`` ended; with ``token``, only if the message with that token still owns the key."""
        with self.engine.begin() as conn:
            if token is None:
                return bool(conn.execute(_JOB_KEY_DELETE, {"job_key": key}).rowcount)
            return bool(conn.execute(_JOB_KEY_DELETE_OWNED, {"job_key": key, "job_token": token}).rowcount)

    # leases of running jobs --------------------------------------------------------------------------------------

    def job_lease_take(self, key: str, token: str, *, until: datetime, by: str) -> bool:
        """A worker starts the message with ``token``: lease the key until ``until``. False (do not run it) when
        the key is owned by another message (re-queued meanwhile, or taken over) or no longer pending."""
        with self.engine.begin() as conn:
            return bool(conn.execute(_JOB_KEY_OWNED_UPDATE, {"job_key": key, "job_token": token,
                                                             "leased_until": until, "leased_by": by}).rowcount)

    def job_leases_renew(self, leases: dict[str, str], *, until: datetime, by: str) -> list[str]:
        """The heartbeat: extend the leases {key: token} of the jobs this worker runs; returns the keys whose
        lease was lost (the key re-queued or released meanwhile)."""
        lost = []
        with self.engine.begin() as conn:
            for key, token in leases.items():
                renewed = conn.execute(job_keys.update()
                                       .where(job_keys.c.key == key, job_keys.c.token == token,
                                              job_keys.c.leased_by == by)
                                       .values(leased_until=until))
                if not renewed.rowcount:
                    lost.append(key)
        return lost

    def job_keys_lost(self, *, now: datetime, unleased_due_before: datetime, limit: int = 1000,
                      messages: bool = True) -> list[PendingJob]:
        """Pending keys that may have lost their message: a lease expired before ``now`` (the worker died), or no
        lease and due before ``unleased_due_before`` (the message may be gone; the caller checks the queues).
        Expired leases come first: a backlog of queued messages never hides them behind ``limit``.
        ``messages=False``: without their messages (None; every key returned has one): under a backlog most of
        the unleased keys are still queued, and decoding each one's message (a whole order) was most of the
        scan's cost."""
        lost = sa.or_(job_keys.c.leased_until < now,
                      sa.and_(job_keys.c.leased_until.is_(None), job_keys.c.due_at < unleased_due_before))
        unleased_last = sa.case((job_keys.c.leased_until.is_(None), 1), else_=0)
        columns = [c for c in job_keys.c if messages or c.name != "message"]
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(*columns).where(lost, job_keys.c.message.is_not(None))
                                .order_by(unleased_last, job_keys.c.due_at).limit(limit))
            return [PendingJob(**row._mapping) for row in rows]

    def job_key_requeue(self, pending: PendingJob, message: dict[str, Any], *, now: datetime) -> bool:
        """Hand the key of a lost job to ``message`` (a copy of the lost one with a new token), due ``now``:
        only if nothing changed since ``pending`` was read and its lease, if any, has expired."""
        where = [job_keys.c.key == pending.key, job_keys.c.due_at == pending.due_at,
                 sa.or_(job_keys.c.leased_until.is_(None), job_keys.c.leased_until < now)]
        where.append(job_keys.c.token.is_(None) if pending.token is None else job_keys.c.token == pending.token)
        with self.engine.begin() as conn:
            return bool(conn.execute(job_keys.update().where(*where).values(
                message=message, token=message.get("token"), due_at=now, leased_until=None,
                leased_by=None)).rowcount)

    def job_key_get(self, key: str) -> PendingJob | None:
        """The pending job behind ``key``; None when no job with that key is queued, scheduled or running."""
        with self.reader.connect() as conn:
            row = conn.execute(_JOB_KEY_ROW, {"job_key": key}).first()
        return PendingJob(**row._mapping) if row else None

    def job_keys_pending(self, *, limit: int = 1000) -> list[PendingJob]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(job_keys).order_by(job_keys.c.due_at).limit(limit))
            return [PendingJob(**row._mapping) for row in rows]

    def job_keys_count(self, queue: str) -> int:
        """How many jobs of ``queue`` are pending: queued, scheduled (a retry, a delay) or running."""
        with self.reader.connect() as conn:
            return conn.execute(_JOB_KEYS_OF_QUEUE, {"queue_name": queue}).scalar_one()

    # shipment confirmations ------------------------------------------------------------------------------------

    def confirmation_add(self, ship_key: int, package_no: int, amazon_order_id: str,
                         confirmed_at: datetime | None = None,
                         audit: tuple[str, dict[str, Any]] | None = None) -> bool:
        """Record a package confirmed on Amazon; False when it was recorded before. ``audit`` = (event, detail):
        its audit row, written in the same transaction when the package is recorded now."""
        with self.engine.begin() as conn:
            added = _insert_ignore(conn, shipment_confirmations, {
                "ship_key": ship_key, "package_no": package_no, "amazon_order_id": amazon_order_id,
                "confirmed_at": confirmed_at or utcnow()})
            if added:
                _audit_row(conn, audit)
            return added

    def confirmed_packages(self, ship_key: int) -> set[int]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(shipment_confirmations.c.package_no)
                                .where(shipment_confirmations.c.ship_key == ship_key))
            return {row.package_no for row in rows}

    # settlements (processed once per settlement-id) ---------------------------------------------------------

    def settlement_get(self, settlement_id: str) -> SettlementRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(settlements).where(settlements.c.settlement_id == settlement_id)).first()
            return SettlementRecord(**row._mapping) if row else None

    def settlement_report_ids(self, report_ids: Collection[str]) -> set[str]:
        """Those of ``report_ids`` a settlement was imported from."""
        if not report_ids:
            return set()
        with self.reader.connect() as conn:
            return set(conn.execute(sa.select(settlements.c.report_id)
                                    .where(settlements.c.report_id.in_(list(report_ids)))).scalars())

    def settlement_claim(self, settlement_id: str, *, report_id: str | None, currency: str, total_amount: str,
                         start_date: datetime, end_date: datetime, deposit_date: datetime | None
                         ) -> tuple[bool, SettlementRecord]:
        """Record a settlement as imported; (False, the existing record) when its id was recorded before. A record
        not yet posted takes the new values (the import runs again, e.g. from a replay)."""
        now = utcnow()
        values = {"report_id": report_id, "currency": currency, "total_amount": total_amount,
                  "start_date": start_date, "end_date": end_date, "deposit_date": deposit_date}
        with self.engine.begin() as conn:
            created = _insert_ignore(conn, settlements, {
                "settlement_id": settlement_id, **values, "status": "imported", "batches": None, "created_at": now,
                "updated_at": now})
            if not created:
                conn.execute(sa.update(settlements).where(settlements.c.settlement_id == settlement_id,
                                                          settlements.c.status != "posted")
                             .values(**values, updated_at=now))
        record = self.settlement_get(settlement_id)
        assert record is not None
        return created, record

    def settlement_rows_replace(self, settlement_id: str, rows: Iterable[dict[str, Any]], *,
                                chunk: int = 10_000) -> int:
        """Store the row detail of a settlement (replacing any from an earlier run) in one transaction. Up to
        millions of rows: the INSERT is compiled once and the driver's executemany gets plain values."""
        count = 0
        with self.engine.begin() as conn:
            conn.execute(sa.delete(settlement_rows).where(settlement_rows.c.settlement_id == settlement_id))
            compiled = settlement_rows.insert().compile(dialect=conn.dialect)
            names = list(compiled.positiontup) if compiled.positional else list(compiled.params)
            convert = [(name, settlement_rows.c[name].type.bind_processor(conn.dialect)) for name in names]

            def values(row: dict[str, Any]):
                row["settlement_id"] = settlement_id
                plain = [(name, proc(row[name]) if proc and row[name] is not None else row[name])
                         for name, proc in convert]
                return tuple(v for _, v in plain) if compiled.positional else dict(plain)

            batch: list[Any] = []
            for row in rows:
                batch.append(values(row))
                if len(batch) >= chunk:
                    conn.exec_driver_sql(compiled.string, batch)
                    count += len(batch)
                    batch = []
            if batch:
                conn.exec_driver_sql(compiled.string, batch)
                count += len(batch)
        return count

    def settlement_rows_of(self, settlement_id: str | None = None, *, order_id: str | None = None,
                           limit: int = 10_000) -> list[dict[str, Any]]:
        query = sa.select(settlement_rows).order_by(settlement_rows.c.settlement_id, settlement_rows.c.line_no)
        if settlement_id is not None:
            query = query.where(settlement_rows.c.settlement_id == settlement_id)
        if order_id is not None:
            query = query.where(settlement_rows.c.order_id == order_id)
        with self.reader.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.limit(limit))]

    def settlement_list(self, *, limit: int = 100) -> list[SettlementRecord]:
        """The most recently updated settlements first."""
        query = sa.select(settlements).order_by(settlements.c.updated_at.desc()).limit(limit)
        with self.reader.connect() as conn:
            return [SettlementRecord(**row._mapping) for row in conn.execute(query)]

    def settlement_link_report(self, settlement_id: str, report_id: str) -> None:
        """Name the report of a settlement that was posted from a file (no report id yet), so that the sync passes
        that report by instead of downloading it again on every run of its overlap window."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(settlements).where(settlements.c.settlement_id == settlement_id,
                                                      settlements.c.report_id.is_(None))
                         .values(report_id=report_id, updated_at=utcnow()))

    def settlement_posted(self, settlement_id: str, batches: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(settlements).where(settlements.c.settlement_id == settlement_id)
                         .values(status="posted", batches=batches, updated_at=utcnow()))

    # audit -----------------------------------------------------------------------------------------------------

    def audit(self, event: str, **detail: Any) -> None:
        with self.engine.begin() as conn:
            _audit_row(conn, (event, detail))

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
            last_failed_at: datetime | None = None, replay_of: int | None = None,
            audit: tuple[str, dict[str, Any]] | None = None) -> int:
        """Park a dead letter; ``audit`` = (event, detail): its audit row (with ``dead_letter``, the new id), in
        the same transaction."""
        with self.engine.begin() as conn:
            result = conn.execute(dead_letters.insert().values(
                job=job, queue=queue, key=key, payload=payload, error_class=error_class, error_code=error_code,
                message=message, record=record, attempts=attempts, first_failed_at=first_failed_at,
                last_failed_at=last_failed_at or utcnow(), status="open", replay_of=replay_of))
            dead_id = result.inserted_primary_key[0]
            if audit is not None:
                _audit_row(conn, (audit[0], {"dead_letter": dead_id, **audit[1]}))
            return dead_id

    def get(self, id: int) -> DeadLetter | None:
        if id not in ROW_IDS:  # e.g. typed into a URL: no row has it, and SQLite cannot even compare it
            return None
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
             only_from: Collection[str] | None = None, audit: tuple[str, dict[str, Any]] | None = None) -> bool:
        """Set the status and/or the replay result; with ``only_from``, only when the status is one of those.
        ``audit`` = (event, detail): the change's audit row, in the same transaction."""
        if status is not None and status not in DEAD_LETTER_STATUSES:
            raise ValueError(f"dead letter status {status!r}; expected one of {DEAD_LETTER_STATUSES}")
        values = {k: v for k, v in (("status", status), ("replay_result", result)) if v is not None}
        query = dead_letters.update().where(dead_letters.c.id == id).values(**values)
        if only_from is not None:
            query = query.where(dead_letters.c.status.in_(only_from))
        with self.engine.begin() as conn:
            changed = bool(conn.execute(query).rowcount)
            if changed:
                _audit_row(conn, audit)
            return changed


@dataclass(frozen=True)
class ListingState:
    sku: str
    marketplace_id: str
    item_id: str | None
    desired: dict[str, Any] | None
    desired_at: datetime | None
    acked: dict[str, Any] | None
    acked_at: datetime | None
    sent: dict[str, Any] | None
    feed_batch: int | None
    refused: dict[str, Any] | None
    held: dict[str, Any] | None
    updated_at: datetime


def _json_value(value: Any) -> Any:
    """A JSON column read as text (SQLite), or already decoded by the driver (psycopg): JSON ``null`` is None."""
    if value is None or value == "null":
        return None
    return json.loads(value) if isinstance(value, str) else value


class Comparison(NamedTuple):
    acked: dict[str, Any] | None
    sent: dict[str, Any] | None
    refused: dict[str, Any] | None
    held: dict[str, Any] | None


@dataclass(frozen=True)
class ListingFeed:
    id: int
    marketplace_id: str
    feed_id: str | None
    status: str
    messages: list[dict[str, Any]] | None  # None: not read (ListingStore.feeds without messages)
    created_at: datetime
    submitted_at: datetime | None
    status_since: datetime | None
    finished_at: datetime | None
    resubmits: int
    flagged: str | None
    summary: dict[str, Any] | None


FEED_OPEN = ("queued", "IN_QUEUE", "IN_PROGRESS")


class ListingStore:
    """Stock and prices per SKU and marketplace (desired, sent, acknowledged, refused, held), the feeds that carry
    them, FBA quantities and reconciliation results. The rules that decide what to send: :mod:`erpsync.mapping`."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.reader = _reader(engine)

    # state per SKU -----------------------------------------------------------------------------------------------

    def states(self, marketplace_id: str, skus: Collection[str] | None = None) -> dict[str, ListingState]:
        query = sa.select(listing_state).where(listing_state.c.marketplace_id == marketplace_id)
        with self.reader.connect() as conn:
            rows = conn.execute(query)
            found = {row.sku: ListingState(**row._mapping) for row in rows}
        return found if skus is None else {sku: found[sku] for sku in skus if sku in found}

    def comparison(self, marketplace_id: str) -> dict[str, Comparison]:
        """Per SKU only what a scan compares with (acknowledged, in flight, refused, held): the scan of a large
        catalogue reads no more than it needs."""
        c = listing_state.c
        raw = [sa.type_coerce(column, sa.Text) for column in (c.acked, c.sent, c.refused, c.held)]
        query = sa.select(c.sku, *raw).where(c.marketplace_id == marketplace_id)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        # The JSON read as text and decoded here: most of the four are empty, and SQLAlchemy's JSON type would
        # decode every one of them (100,000 SKUs: 400,000 json.loads, most of a scan's time)
        return {sku: Comparison(_json_value(acked), _json_value(sent), _json_value(refused), _json_value(held))
                for sku, acked, sent, refused, held in rows}

    def record_scan(self, marketplace_id: str, desired: dict[str, tuple[str, dict[str, Any]]],
                    sends: dict[str, dict[str, Any]], held: dict[str, dict[str, Any] | None],
                    max_messages: int) -> list[int]:
        """One transaction: every SKU's ``desired`` values (sku: (item_id, values)) and ``held`` price (None: none
        held any more), and the ``sends`` (sku: values) queued as feeds of at most ``max_messages`` messages, noted
        as in flight. Returns the new feeds' ids."""
        now = utcnow()
        rows = [{"sku": sku, "marketplace_id": marketplace_id, "item_id": item_id, "desired": values,
                 "desired_at": now, "updated_at": now} for sku, (item_id, values) in desired.items()]
        batches: list[int] = []
        with self.engine.begin() as conn:
            if rows:
                stmt = _dialect_insert(conn, listing_state)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["sku", "marketplace_id"],
                    set_={name: stmt.excluded[name] for name in ("item_id", "desired", "desired_at", "updated_at")}),
                    rows)
            if held:
                conn.execute(listing_state.update().where(
                    listing_state.c.marketplace_id == marketplace_id,
                    listing_state.c.sku == sa.bindparam("the_sku")).values(held=sa.bindparam("the_held")),
                    [{"the_sku": sku, "the_held": value} for sku, value in held.items()])
            skus = sorted(sends)
            for start in range(0, len(skus), max_messages):
                chunk = skus[start:start + max_messages]
                messages = [{"messageId": number, "sku": sku, "values": sends[sku]}
                            for number, sku in enumerate(chunk, 1)]
                batch = conn.execute(listing_feeds.insert().values(
                    marketplace_id=marketplace_id, status="queued", messages=messages, created_at=now,
                    resubmits=0)).inserted_primary_key[0]
                batches.append(batch)
                conn.execute(listing_state.update().where(
                    listing_state.c.marketplace_id == marketplace_id,
                    listing_state.c.sku == sa.bindparam("the_sku")).values(
                    sent=sa.bindparam("the_sent"), feed_batch=batch, updated_at=now),
                    [{"the_sku": sku, "the_sent": sends[sku]} for sku in chunk])
        return batches

    def acknowledge(self, batch_id: int, accepted: dict[str, dict[str, Any]],
                    refused: dict[str, dict[str, Any]]) -> None:
        """A feed's per-message results: accepted values become the acknowledged ones, refused values are kept
        (not sent again as they are); both leave flight if this feed carried them."""
        feed = self.feed(batch_id)
        if feed is None:
            raise ValueError(f"listing feed {batch_id} does not exist")
        now = utcnow()
        states = self.states(feed.marketplace_id, [*accepted, *refused])
        rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}  # by "this feed carried the values"
        for sku, values in accepted.items():
            state = states.get(sku)
            merged = {**((state.acked if state else None) or {}), **values}
            refused_before = {k: v for k, v in ((state.refused if state else None) or {}).items() if k not in values}
            rows[bool(state and state.feed_batch == batch_id)].append(
                {"the_sku": sku, "acked": merged, "acked_at": now, "refused": refused_before or None})
        refusals: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for sku, values in refused.items():
            state = states.get(sku)
            refusals[bool(state and state.feed_batch == batch_id)].append({"the_sku": sku, "refused": values})
        one = listing_state.update().where(listing_state.c.marketplace_id == feed.marketplace_id,
                                           listing_state.c.sku == sa.bindparam("the_sku"))
        landed = {"sent": None, "feed_batch": None}
        with self.engine.begin() as conn:
            for carried, chunk in rows.items():
                if chunk:
                    conn.execute(one.values(acked=sa.bindparam("acked"), acked_at=sa.bindparam("acked_at"),
                                            refused=sa.bindparam("refused"), updated_at=now,
                                            **(landed if carried else {})), chunk)
            for carried, chunk in refusals.items():
                if chunk:
                    conn.execute(one.values(refused=sa.bindparam("refused"), updated_at=now,
                                            **(landed if carried else {})), chunk)

    def release(self, batch_id: int) -> int:
        """Take a feed's values out of flight unacknowledged (FATAL, cancelled, stuck): the next scan sends them."""
        with self.engine.begin() as conn:
            return conn.execute(listing_state.update().where(listing_state.c.feed_batch == batch_id)
                                .values(sent=None, feed_batch=None, updated_at=utcnow())).rowcount

    def forget(self, marketplace_id: str, sku: str, *fields: str) -> None:
        """Drop what Amazon refused (a replay) and, for ``fields``, the acknowledged values: they are sent again."""
        state = self.states(marketplace_id, [sku]).get(sku)
        if state is None:
            return
        acked = {k: v for k, v in (state.acked or {}).items() if k not in fields}
        with self.engine.begin() as conn:
            conn.execute(self._one(marketplace_id, sku).values(refused=None, acked=acked or None,
                                                                updated_at=utcnow()))

    def approve_price(self, marketplace_id: str, sku: str) -> dict[str, Any] | None:
        """Approve the price the guard holds for ``sku``: the next scan sends it. The held price, or None."""
        state = self.states(marketplace_id, [sku]).get(sku)
        if state is None or not state.held:
            return None
        held = {**state.held, "approved": True}
        with self.engine.begin() as conn:
            conn.execute(self._one(marketplace_id, sku).values(held=held, updated_at=utcnow()))
        return held

    @staticmethod
    def _one(marketplace_id: str, sku: str):
        return listing_state.update().where(listing_state.c.marketplace_id == marketplace_id,
                                            listing_state.c.sku == sku)

    # feeds -----------------------------------------------------------------------------------------------------

    def feed(self, batch_id: int) -> ListingFeed | None:
        if batch_id not in ROW_IDS:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(listing_feeds).where(listing_feeds.c.id == batch_id)).first()
        return ListingFeed(**row._mapping) if row else None

    def feeds(self, status: Collection[str] | None = None, *, limit: int = 100,
              messages: bool = False) -> list[ListingFeed]:
        """Newest first; their ``messages`` only with ``messages`` (up to 25,000 each), else None."""
        columns = [c for c in listing_feeds.c if messages or c.name != "messages"]
        query = sa.select(*columns).order_by(listing_feeds.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(listing_feeds.c.status.in_(status))
        with self.reader.connect() as conn:
            return [ListingFeed(**{"messages": None, **row._mapping}) for row in conn.execute(query)]

    def feed_update(self, batch_id: int, **values: Any) -> None:
        allowed = {"feed_id", "status", "submitted_at", "status_since", "finished_at", "resubmits", "flagged",
                   "summary"}
        if set(values) - allowed:
            raise ValueError(f"listing feed fields {sorted(set(values) - allowed)} cannot be set")
        with self.engine.begin() as conn:
            conn.execute(listing_feeds.update().where(listing_feeds.c.id == batch_id).values(**values))

    # Amazon orders not yet in Sage -------------------------------------------------------------------------------

    def unwritten_order_lines(self) -> dict[str, list[tuple[str, Decimal]]]:
        """Amazon orders the journal has not seen written to Sage (received, writing): their (SKU, quantity) lines,
        from the pending ``apply_order`` message (the canonical order) or else the last ORDER_CHANGE received."""
        with self.reader.connect() as conn:
            open_ids = [r.amazon_order_id for r in conn.execute(
                sa.select(order_journal.c.amazon_order_id)
                .where(order_journal.c.status.in_(("received", "writing"))))]
            if not open_ids:
                return {}
            lines: dict[str, list[tuple[str, Decimal]]] = {}
            for row in conn.execute(sa.select(job_keys.c.message).where(job_keys.c.job == "apply_order")):
                order = ((row.message or {}).get("payload") or {}).get("order") or {}
                oid = order.get("amazon_order_id")
                if oid in open_ids:
                    lines[oid] = [(line["sku"], Decimal(str(line["quantity"])) - Decimal(
                        str(line.get("quantity_shipped") or 0))) for line in order.get("lines") or ()]
            for start in range(0, len(open_ids), 500):
                chunk = [oid for oid in open_ids[start:start + 500] if oid not in lines]
                rows = conn.execute(sa.select(inbox.c.amazon_order_id, inbox.c.payload)
                                    .where(inbox.c.amazon_order_id.in_(chunk),
                                           inbox.c.notification_type == "ORDER_CHANGE")
                                    .order_by(inbox.c.received_at))
                for row in rows:  # the latest notification wins
                    items = (row.payload or {}).get("items") or ()
                    lines[row.amazon_order_id] = [(item["sku"], Decimal(item["quantity"]) - Decimal(
                        item.get("quantity_shipped") or 0)) for item in items]
        return lines

    # FBA quantities and reconciliations ------------------------------------------------------------------------

    def fba_set(self, marketplace_id: str, sku: str, quantity: int, as_of: datetime, source: str) -> bool:
        """Record Amazon's fulfillable FBA quantity unless a newer one is known; True when recorded."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(fba_levels.c.as_of).where(
                fba_levels.c.sku == sku, fba_levels.c.marketplace_id == marketplace_id)).first()
            if row is not None and row.as_of > as_of:
                return False
            _upsert(conn, fba_levels, {"sku": sku, "marketplace_id": marketplace_id},
                    {"quantity": quantity, "as_of": as_of, "source": source})
        return True

    def fba_levels(self, marketplace_id: str) -> dict[str, tuple[int, datetime, str]]:
        with self.reader.connect() as conn:
            return {r.sku: (r.quantity, r.as_of, r.source) for r in conn.execute(
                sa.select(fba_levels).where(fba_levels.c.marketplace_id == marketplace_id))}

    def reconciliation_add(self, marketplace_id: str, result: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(reconciliations.insert().values(
                marketplace_id=marketplace_id, at=utcnow(), result=result)).inserted_primary_key[0]

    def reconciliation_last(self, marketplace_id: str | None = None) -> tuple[datetime, dict[str, Any]] | None:
        query = sa.select(reconciliations).order_by(reconciliations.c.id.desc()).limit(1)
        if marketplace_id is not None:
            query = query.where(reconciliations.c.marketplace_id == marketplace_id)
        with self.reader.connect() as conn:
            row = conn.execute(query).first()
        return (row.at, row.result) if row else None


# --- helpers -------------------------------------------------------------------------------------------------


def redact(value: Any) -> Any:
    """A copy of a JSON value with personal data and secrets replaced by ``[redacted]`` at any depth."""
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in _REDACT else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


# The statements every job runs (its key, lease, journal entry, cursors), built once with bound parameters: a
# statement built per call costs its construction and the traversal that finds its compiled form in the engine's
# cache (SQLAlchemy memoizes that key on a reused statement object), several times the cost of running it on SQLite.
# Bound parameter names differ from the column names (SQLAlchemy reserves those for the SET and VALUES clauses).
_CURSOR = sa.select(cursors.c.value).where(cursors.c.name == sa.bindparam("cursor_name"))
_CURSOR_LOCKED = _CURSOR.with_for_update()
_JOURNAL_ROW = sa.select(order_journal).where(order_journal.c.amazon_order_id == sa.bindparam("order_id"))
_JOURNAL_STATUS_LOCKED = (sa.select(order_journal.c.status)
                          .where(order_journal.c.amazon_order_id == sa.bindparam("order_id")).with_for_update())
_JOURNAL_UPDATE = order_journal.update().where(order_journal.c.amazon_order_id == sa.bindparam("order_id"))
_JOB_KEY_ROW = sa.select(job_keys).where(job_keys.c.key == sa.bindparam("job_key"))
_JOB_KEY_DELETE = job_keys.delete().where(job_keys.c.key == sa.bindparam("job_key"))
_JOB_KEY_DELETE_OWNED = _JOB_KEY_DELETE.where(job_keys.c.token == sa.bindparam("job_token"))
_JOB_KEY_OWNED_UPDATE = job_keys.update().where(job_keys.c.key == sa.bindparam("job_key"),
                                                job_keys.c.token == sa.bindparam("job_token"))
_JOB_KEYS_OF_QUEUE = (sa.select(sa.func.count()).select_from(job_keys)
                      .where(job_keys.c.queue == sa.bindparam("queue_name")))
_AUDIT_INSERT = audit.insert()
_DIALECT_STATEMENTS: dict[tuple, sa.Executable] = {}  # insert-ignore and upsert, per dialect, table and columns


def _audit_row(conn: sa.Connection,
               event: tuple[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]] | None) -> None:
    """The audit row (event, detail), or rows (a list of them, in order), inside the caller's transaction; PII is
    redacted."""
    for name, detail in (event if isinstance(event, list) else [event] if event is not None else []):
        conn.execute(_AUDIT_INSERT, {"event": name, "at": utcnow(), "detail": redact(detail)})


def _dialect_insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted (RETURNING: rowcount is not reliable).
    The columns are those of ``values`` (the statement has none of its own; one per dialect and table)."""
    which = ("insert_ignore", conn.dialect.name, table.name)
    stmt = _DIALECT_STATEMENTS.get(which)
    if stmt is None:
        stmt = _DIALECT_STATEMENTS[which] = (_dialect_insert(conn, table).on_conflict_do_nothing()
                                             .returning(sa.literal(1)))
    return conn.execute(stmt, values).first() is not None


def _upsert(conn: sa.Connection, table: sa.Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE SET each of ``values`` to the value just offered (``excluded``): the
    same row as setting the values themselves, from one statement per dialect, table and columns."""
    which = ("upsert", conn.dialect.name, table.name, tuple(key), tuple(values))
    stmt = _DIALECT_STATEMENTS.get(which)
    if stmt is None:
        insert = _dialect_insert(conn, table)
        stmt = _DIALECT_STATEMENTS[which] = insert.on_conflict_do_update(
            index_elements=list(key), set_={name: insert.excluded[name] for name in values})
    conn.execute(stmt, {**key, **values})


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite") and ":memory:" in url:
        raise ValueError("the state store must be a file or a server: several threads and processes share it")
    # hide_parameters: an error's text (logged, kept in a dead letter) never carries the bound values (payloads, PII)
    engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
            _write_ahead_log(dbapi_conn)
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


def _write_ahead_log(dbapi_conn, wait_seconds: float = 30.0) -> None:
    """Put the database file in WAL mode (a property of the file, kept once set). Switching needs the file to
    itself, and SQLite answers "database is locked" at once, without its busy timeout, while another connection
    is in a transaction: several processes opening a new store at once (a worker, the web app) would fail."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


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
