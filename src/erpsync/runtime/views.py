"""Read-only views of the state store for the dashboard, its JSON API and the status gauges: sync status per flow,
the order journal page by page with what happened to each order, dead letters grouped by reason, settlements with
their row detail summarised per account."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from erpsync.flows import settlements as settlement_flow
from erpsync.runtime.store import (
    DeadLetter, JournalEntry, SettlementRecord, Store, audit, cursors, dead_letters, inbox, job_keys, order_journal,
    settlement_rows, settlements, shipment_confirmations, utcnow)
from erpsync.runtime.store import FEED_OPEN, ListingFeed, listing_feeds

MAX_PAGE = 200
# flow -> (its cursor, the jobs that are its backlog); the cursor of "orders" is a time, of "shipments" a ShipKey
FLOWS = {"orders": ("orders.last_updated", ("sync_window", "import_order", "apply_order")),
         "shipments": ("shipments.ship_key", ("scan_shipments", "confirm_shipment")),
         "settlements": (settlement_flow.REPORTS_CURSOR, settlement_flow.JOBS)}
SETTLEMENT_STATUSES = ("imported", "posted")  # imported: categorised, not (yet) in the Sage GL
# the settlement jobs whose dead letters are a settlement kept out of the ledger (erpsync_settlements_rejected)
SETTLEMENT_REJECTING_JOBS = ("import_settlement", "post_settlement")


@dataclass(frozen=True)
class FlowStatus:
    flow: str
    last_run: datetime | None  # when its cursor last moved
    position: str | None  # the cursor's value
    lag_seconds: float | None  # orders: how far behind now the window is; shipments: oldest unconfirmed shipment
    backlog: int  # jobs of the flow queued, scheduled or running
    dead_letters: int  # open dead letters of the flow's jobs

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_run"] = self.last_run.isoformat() if self.last_run else None
        return data


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass
class OrderHistory:
    entry: JournalEntry | None
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """Audit events and received notifications, oldest first."""
        notes = [{"event": "notification", "at": n["received_at"],
                  "detail": {"type": n["notification_type"], "id": n["notification_id"]}} for n in self.notifications]
        return sorted([*self.events, *notes], key=lambda e: e["at"])


def _page(page: int, per_page: int) -> tuple[int, int]:
    page, per_page = max(1, page), min(max(1, per_page), MAX_PAGE)
    return page, per_page


def page_of(items: list[Any], page: int = 1, per_page: int = 50) -> Page:
    """One page of a list already read whole (a feed's messages, a reconciliation's differences)."""
    page, per_page = _page(page, per_page)
    return Page(items[(page - 1) * per_page:page * per_page], page, per_page, len(items))


def flow_status(store: Store) -> list[FlowStatus]:
    now = utcnow()
    with store.reader.connect() as conn:
        cursor_rows = {row.name: row for row in conn.execute(sa.select(cursors).where(
            cursors.c.name.in_([cursor for cursor, _ in FLOWS.values()])))}
        backlog = dict(conn.execute(sa.select(job_keys.c.job, sa.func.count()).group_by(job_keys.c.job)).all())
        dead = dict(conn.execute(sa.select(dead_letters.c.job, sa.func.count())
                                 .where(dead_letters.c.status == "open").group_by(dead_letters.c.job)).all())
        oldest_shipped = conn.execute(sa.select(sa.func.min(order_journal.c.updated_at))
                                      .where(order_journal.c.status == "shipped")).scalar()
    result = []
    for flow, (cursor, jobs) in FLOWS.items():
        row = cursor_rows.get(cursor)
        lag = None
        if flow == "orders" and row is not None:
            lag = (now - datetime.fromisoformat(row.value)).total_seconds()
        elif flow == "shipments" and oldest_shipped is not None:
            shipped = oldest_shipped if oldest_shipped.tzinfo else oldest_shipped.replace(tzinfo=now.tzinfo)
            lag = (now - shipped).total_seconds()
        result.append(FlowStatus(flow, row.updated_at if row else None, row.value if row else None, lag,
                                 sum(backlog.get(job, 0) for job in jobs), sum(dead.get(job, 0) for job in jobs)))
    return result


def retrying(store: Store) -> dict[str, int]:
    """Pending jobs that failed and wait for a retry, by the error class of their last failure (``Throttled``:
    Amazon answered 429; ``SageUnavailable``: SQL Server out of reach; ...)."""
    with store.reader.connect() as conn:
        errors = conn.execute(sa.select(job_keys.c.last_error).where(job_keys.c.last_error.is_not(None))).scalars()
        counts: dict[str, int] = {}
        for error in errors:
            name = error.partition(":")[0].strip() or "unknown"
            counts[name] = counts.get(name, 0) + 1
    return counts


def journal_counts(store: Store) -> dict[str, int]:
    with store.reader.connect() as conn:
        return dict(conn.execute(sa.select(order_journal.c.status, sa.func.count())
                                 .group_by(order_journal.c.status)).all())


def orders(store: Store, *, status: str | None = None, search: str | None = None, page: int = 1,
           per_page: int = 50) -> Page:
    """Journal entries, most recently changed first; ``search``: an Amazon order id or its start, or a TranNo."""
    page, per_page = _page(page, per_page)
    where = []
    if status:
        where.append(order_journal.c.status == status)
    if search:
        where.append(sa.or_(order_journal.c.amazon_order_id.startswith(search.strip(), autoescape=True),
                            order_journal.c.tran_no == search.strip()))
    with store.reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(order_journal).where(*where)).scalar_one()
        rows = conn.execute(sa.select(order_journal).where(*where)
                            .order_by(order_journal.c.updated_at.desc(), order_journal.c.amazon_order_id)
                            .limit(per_page).offset((page - 1) * per_page))
        items = [JournalEntry(**row._mapping) for row in rows]
    return Page(items, page, per_page, total)


def order_history(store: Store, amazon_order_id: str) -> OrderHistory:
    """The journal entry of one order with its shipment confirmations, audit events, dead letters, notifications
    and pending jobs."""
    history = OrderHistory(store.journal_get(amazon_order_id))
    with store.reader.connect() as conn:
        history.confirmations = [dict(row._mapping) for row in conn.execute(
            sa.select(shipment_confirmations).where(shipment_confirmations.c.amazon_order_id == amazon_order_id)
            .order_by(shipment_confirmations.c.confirmed_at))]
        history.events = [dict(row._mapping) for row in conn.execute(
            sa.select(audit).where(audit.c.detail["amazon_order_id"].as_string() == amazon_order_id)
            .order_by(audit.c.id).limit(500))]
        history.notifications = [dict(row._mapping) for row in conn.execute(
            sa.select(inbox.c.notification_id, inbox.c.notification_type, inbox.c.received_at)
            .where(inbox.c.amazon_order_id == amazon_order_id).order_by(inbox.c.received_at))]
        history.pending = [row.key for row in conn.execute(
            sa.select(job_keys.c.key).where(job_keys.c.key.contains(amazon_order_id, autoescape=True)))]
    history.dead_letters = dead_letter_list(store, status=None, search=amazon_order_id, per_page=MAX_PAGE).items
    return history


def dead_letter_reasons(store: Store, status: str | None = "open") -> list[tuple[str, str, int]]:
    """(job, error code, count) of the dead letters in ``status``, the most frequent first."""
    query = (sa.select(dead_letters.c.job, dead_letters.c.error_code, sa.func.count().label("n"))
             .group_by(dead_letters.c.job, dead_letters.c.error_code)
             .order_by(sa.desc("n"), dead_letters.c.error_code))
    if status:
        query = query.where(dead_letters.c.status == status)
    with store.reader.connect() as conn:
        return [(row.job, row.error_code, row.n) for row in conn.execute(query)]


def dead_letter_list(store: Store, *, status: str | None = "open", reason: str | None = None,
                     job: str | None = None, search: str | None = None, page: int = 1, per_page: int = 50) -> Page:
    """Dead letters, newest first; ``reason`` is the error code, ``search`` an order id (the record) or a key."""
    page, per_page = _page(page, per_page)
    where = []
    if status:
        where.append(dead_letters.c.status == status)
    if reason:
        where.append(dead_letters.c.error_code == reason)
    if job:
        where.append(dead_letters.c.job == job)
    if search:
        where.append(sa.or_(dead_letters.c.record == search.strip(),
                            dead_letters.c.key.contains(search.strip(), autoescape=True)))
    with store.reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(dead_letters).where(*where)).scalar_one()
        items = [DeadLetter(**row._mapping) for row in conn.execute(
            sa.select(dead_letters).where(*where).order_by(dead_letters.c.id.desc())
            .limit(per_page).offset((page - 1) * per_page))]
    return Page(items, page, per_page, total)


# --- listing feeds and reconciliations (issue 10's tables) ----------------------------------------------------------

FEED_TYPE = "JSON_LISTINGS_FEED"  # the only feed type erpsync submits


@dataclass(frozen=True)
class FeedRow:
    """A listing feed as the dashboard lists it: its row without the messages, and how many it carries."""

    feed: ListingFeed
    message_count: int

    def as_dict(self) -> dict[str, Any]:
        f, summary = self.feed, self.feed.summary or {}
        return {"id": f.id, "marketplace_id": f.marketplace_id, "feed_id": f.feed_id, "feed_type": FEED_TYPE,
                "status": f.status, "created_at": _iso(f.created_at), "submitted_at": _iso(f.submitted_at),
                "finished_at": _iso(f.finished_at), "messages": self.message_count,
                "accepted": summary.get("messagesAccepted"), "refused": summary.get("messagesInvalid"),
                "summary": f.summary, "flagged": f.flagged, "resubmits": f.resubmits}


@dataclass(frozen=True)
class FeedMessage:
    message_id: int
    sku: str
    values: dict[str, Any]
    result: str  # accepted | refused | in flight | not applied
    dead_letter: int | None  # the dead letter carrying Amazon's message for a refused one


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def feeds(store: Store, *, status: str | None = None, page: int = 1, per_page: int = 50) -> Page:
    """Listing feeds, newest first, as :class:`FeedRow` (their messages counted by the database, not read)."""
    page, per_page = _page(page, per_page)
    where = [listing_feeds.c.status == status] if status else []
    columns = [c for c in listing_feeds.c if c.name != "messages"]
    count = sa.func.json_array_length(listing_feeds.c.messages).label("message_count")
    with store.reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(listing_feeds).where(*where)).scalar_one()
        rows = conn.execute(sa.select(*columns, count).where(*where).order_by(listing_feeds.c.id.desc())
                            .limit(per_page).offset((page - 1) * per_page))
        items = [FeedRow(ListingFeed(**{"messages": None, **{k: v for k, v in row._mapping.items()
                                                                if k != "message_count"}}), row.message_count or 0)
                 for row in rows]
    return Page(items, page, per_page, total)


def feed_statuses(store: Store) -> dict[str, int]:
    with store.reader.connect() as conn:
        return dict(conn.execute(sa.select(listing_feeds.c.status, sa.func.count())
                                 .group_by(listing_feeds.c.status)).all())


def feed_messages(store: Store, feed: ListingFeed) -> list[FeedMessage]:
    """Each message of ``feed`` (read with its messages) with its result as stored: refused — a ``listing_push``
    dead letter names this feed and message (its Amazon message is there); accepted — the feed is DONE, Amazon
    processed messages and none refused this one (the rule of ``amazon.listings_feed.results``); in flight — the
    feed is not finished; not applied — it ended FATAL, CANCELLED or STUCK, or Amazon processed no message."""
    refused: dict[int, int] = {}
    if feed.feed_id:
        marker = f"of listings feed {feed.feed_id}:"
        with store.reader.connect() as conn:
            for row in conn.execute(sa.select(dead_letters.c.id, dead_letters.c.message).where(
                    dead_letters.c.job == "listing_push", dead_letters.c.message.contains(marker, autoescape=True))):
                number = row.message.split(marker)[0].rsplit("message ", 1)[-1].strip()
                if number.isdigit():
                    refused.setdefault(int(number), row.id)
    processed = bool((feed.summary or {}).get("messagesProcessed"))
    found = []
    for message in feed.messages or ():
        number = int(message["messageId"])
        if number in refused:
            result = "refused"
        elif feed.status in FEED_OPEN:
            result = "in flight"
        elif feed.status == "DONE" and processed:
            result = "accepted"
        else:
            result = "not applied"
        found.append(FeedMessage(number, message["sku"], message["values"], result, refused.get(number)))
    return found


def oldest_unfinished_feed(store: Store) -> float | None:
    """Seconds since erpsync queued the oldest listing feed not finished yet (queued, IN_QUEUE, IN_PROGRESS)."""
    with store.reader.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(listing_feeds.c.created_at))
                              .where(listing_feeds.c.status.in_(FEED_OPEN))).scalar()
    if oldest is None:
        return None
    now = utcnow()
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
    return max((now - oldest).total_seconds(), 0.0)


@dataclass(frozen=True)
class Reconciliation:
    """The last reconciliation of one marketplace: when, and the result ``flows.reconcile.conclude`` kept."""

    marketplace_id: str
    at: datetime
    result: dict[str, Any]

    @property
    def differences(self) -> list[dict[str, Any]]:
        return self.result.get("differences") or []

    def since(self, difference: dict[str, Any]) -> datetime | None:
        return datetime.fromisoformat(difference["since"]) if difference.get("since") else None

    def as_dict(self) -> dict[str, Any]:
        return {"marketplace_id": self.marketplace_id, "at": self.at.isoformat(), **{
            k: v for k, v in self.result.items() if k not in ("marketplace_id", "at")}}


def last_reconciliations(store: Store, marketplace_ids: list[str]) -> dict[str, Reconciliation | None]:
    """Per configured marketplace its last reconciliation, or None when it never ran."""
    found: dict[str, Reconciliation | None] = {}
    for marketplace_id in marketplace_ids:
        last = store.listings.reconciliation_last(marketplace_id)
        found[marketplace_id] = Reconciliation(marketplace_id, *last) if last else None
    return found


# --- settlements ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementLine:
    """The stored rows of one (account, rule) summed: the journal line they make, before the deposit and the
    carried-forward lines (an amount Amazon pays the seller is a credit)."""

    account: str
    rule: str
    rows: int
    amount: Decimal  # debit positive
    memo: str

    @property
    def debit(self) -> Decimal:
        return self.amount if self.amount > 0 else Decimal("0.00")

    @property
    def credit(self) -> Decimal:
        return -self.amount if self.amount < 0 else Decimal("0.00")

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "rule": self.rule, "rows": self.rows, "debit": str(self.debit),
                "credit": str(self.credit), "memo": self.memo}


@dataclass
class SettlementDetail:
    record: SettlementRecord
    lines: list[SettlementLine]  # from settlement_rows; empty while the file was refused (nothing kept)
    rows: int
    orders: int  # distinct order ids among the rows
    first_posted: date | None
    last_posted: date | None
    dead_letters: list[DeadLetter]

    @property
    def rows_total(self) -> Decimal:
        """Σ of the stored amounts: equals total-amount when the row detail is complete."""
        return -sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def complete(self) -> bool:
        return self.rows_total == Decimal(self.record.total_amount)

    @property
    def deposit(self) -> SettlementLine:
        """The payout line that balances the others: a debit of total-amount (a credit when it is negative)."""
        return SettlementLine("deposit", "deposit", 0, Decimal(self.record.total_amount),
                              f"deposit: settlement {self.record.settlement_id} total-amount "
                              f"{self.record.total_amount} {self.record.currency}")


def settlement_list(store: Store, *, status: str | None = None, search: str | None = None, page: int = 1,
                    per_page: int = 50) -> Page:
    """Settlements, the latest settlement period first; ``search``: a settlement id (or its start) or a report
    id. Items are (record, open dead letters naming it)."""
    page, per_page = _page(page, per_page)
    where = []
    if status:
        where.append(settlements.c.status == status)
    if search:
        where.append(sa.or_(settlements.c.settlement_id.startswith(search.strip(), autoescape=True),
                            settlements.c.report_id == search.strip()))
    with store.reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(settlements).where(*where)).scalar_one()
        records = [SettlementRecord(**row._mapping) for row in conn.execute(
            sa.select(settlements).where(*where).order_by(settlements.c.end_date.desc(), settlements.c.settlement_id)
            .limit(per_page).offset((page - 1) * per_page))]
        ids = [r.settlement_id for r in records]
        letters = conn.execute(sa.select(dead_letters).where(
            dead_letters.c.status == "open", dead_letters.c.job.in_(settlement_flow.JOBS),
            sa.or_(dead_letters.c.record.in_(ids), dead_letters.c.key.in_([f"post_settlement:{i}" for i in ids]))))
        dead: dict[str | None, int] = {}
        for letter in letters:
            sid = settlement_of(DeadLetter(**letter._mapping))
            dead[sid] = dead.get(sid, 0) + 1
    return Page([(r, dead.get(r.settlement_id, 0)) for r in records], page, per_page, total)


def settlement_of(dead: DeadLetter) -> str | None:
    """The settlement a dead letter of a settlement job is about, when known: post_settlement's key names it (its
    record may be a fiscal period), import_settlement's record (None when the file was refused before its summary
    row); None for other jobs."""
    if dead.job == "post_settlement":
        return dead.key.partition(":")[2] or None
    if dead.job == "import_settlement":
        return dead.record
    return None


def settlement_counts(store: Store) -> dict[str, int]:
    with store.reader.connect() as conn:
        return dict(conn.execute(sa.select(settlements.c.status, sa.func.count()).group_by(settlements.c.status)).all())


def settlement_dead_letters(store: Store, status: str | None = "open", limit: int = MAX_PAGE) -> list[DeadLetter]:
    """Dead letters of the settlement jobs, newest first: format changes, unknown fee types, closed periods, ..."""
    query = sa.select(dead_letters).where(dead_letters.c.job.in_(settlement_flow.JOBS))
    if status:
        query = query.where(dead_letters.c.status == status)
    with store.reader.connect() as conn:
        return [DeadLetter(**row._mapping) for row in conn.execute(query.order_by(dead_letters.c.id.desc())
                                                                    .limit(limit))]


def settlements_rejected(store: Store) -> int:
    """Open dead letters of settlement imports and postings: settlements the ledger is missing."""
    with store.reader.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(dead_letters).where(
            dead_letters.c.status == "open", dead_letters.c.job.in_(SETTLEMENT_REJECTING_JOBS))).scalar_one()


def settlement_detail(store: Store, settlement_id: str) -> SettlementDetail | None:
    """One settlement: its record, its stored row detail summed per (account, rule) as journal lines, and its dead
    letters (any status). Amounts are summed as Decimal from the stored text (grouped by amount in SQL first)."""
    record = store.settlement_get(settlement_id)
    if record is None:
        return None
    r = settlement_rows
    sums: dict[tuple[str, str], Decimal] = {}
    counts: dict[tuple[str, str], int] = {}
    texts: dict[tuple[str, str], set[str]] = {}
    keys = [f"post_settlement:{settlement_id}"] + ([f"import_settlement:{record.report_id}"] if record.report_id
                                                   else [])
    with store.reader.connect() as conn:
        grouped = conn.execute(
            sa.select(r.c.account, r.c.rule, r.c.fulfillment_id, r.c.amount_description, r.c.amount,
                      sa.func.count().label("n"))
            .where(r.c.settlement_id == settlement_id)
            .group_by(r.c.account, r.c.rule, r.c.fulfillment_id, r.c.amount_description, r.c.amount))
        for row in grouped:
            key = (row.account, row.rule)
            sums[key] = sums.get(key, Decimal("0")) + Decimal(row.amount) * row.n
            counts[key] = counts.get(key, 0) + row.n
            texts.setdefault(key, set()).add(settlement_flow.row_text(row.rule, row.fulfillment_id,
                                                                      row.amount_description))
        facts = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(r.c.order_id)),
                                       sa.func.min(r.c.posted_date), sa.func.max(r.c.posted_date))
                             .where(r.c.settlement_id == settlement_id)).one()
        letters = [DeadLetter(**row._mapping) for row in conn.execute(
            sa.select(dead_letters).where(dead_letters.c.job.in_(settlement_flow.JOBS),
                                          sa.or_(dead_letters.c.record == settlement_id, dead_letters.c.key.in_(keys)))
            .order_by(dead_letters.c.id.desc()).limit(MAX_PAGE))]
    lines = [SettlementLine(account, rule, counts[(account, rule)], -amount,
                            settlement_flow.memo(rule, texts[(account, rule)]))
             for (account, rule), amount in sorted(sums.items())]
    return SettlementDetail(record, lines, facts[0], facts[1], facts[2], facts[3], letters)


def settlement_row_page(store: Store, settlement_id: str, *, search: str | None = None, account: str | None = None,
                        page: int = 1, per_page: int = 50) -> Page:
    """The stored rows of a settlement in file order; ``search``: an order id, ``account``: a GL account."""
    page, per_page = _page(page, per_page)
    r = settlement_rows
    where = [r.c.settlement_id == settlement_id]
    if search:
        where.append(r.c.order_id == search.strip())
    if account:
        where.append(r.c.account == account.strip())
    with store.reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(r).where(*where)).scalar_one()
        items = [dict(row._mapping) for row in conn.execute(
            sa.select(r).where(*where).order_by(r.c.line_no).limit(per_page).offset((page - 1) * per_page))]
    return Page(items, page, per_page, total)
