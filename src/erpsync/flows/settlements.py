"""Settlement reports into the Sage 500 general ledger, balanced to the deposit (docs/settlements.md).

Jobs::

    sync_settlements (amazon)   getReports lists new V2 settlement reports (Amazon makes them; they cannot be
                                requested) -> one import_settlement per report not seen before
    import_settlement (amazon)  download (GZIP aware), parse as a stream, categorise every amount, keep the row
                                detail in the state store, summarise per day and account -> post_settlement
    post_settlement (sage500)   split the summary by Sage fiscal period, one balanced GL batch per period joined
                                through the carried-forward account, posted once per settlement-id and period

Fail closed: an amount whose (transaction-type, amount-type, amount-description) has no GL account, a file that
does not read as a settlement, a closed period or an unknown account raises :class:`~erpsync.errors.Permanent`
before anything is posted: one dead letter; after the mapping (or Sage) is fixed, replaying it posts the
settlement. A settlement-id is processed once: a second report of a posted settlement is skipped (or refused,
when its total differs).

No revenue counted twice: an Order amount of the kinds Sage's invoice holds (principal, shipping, gift wrap, tax,
promotions) clears the Amazon customer's receivable when the order's fulfillment channel is one the order flow
writes into Sage, and posts to revenue when it is not (``[mapping.settlement] channels``; the default follows
``[orders] afn``). Each journal line's memo names the rule that chose its account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from erpsync import errors, logs, model
from erpsync.amazon import settlement as parser
from erpsync.amazon.reports import Reports
from erpsync.config import Settings
from erpsync.flows import connections
from erpsync.flows.jobs import JobContext, job
from erpsync.mapping import SettlementAccount, SettlementAccounts
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.posting import FiscalCalendar, FiscalPeriod, PeriodBatch, post_batches

log = logs.get(__name__)

ZERO = Decimal("0")
CENT = Decimal("0.01")
REPORTS_CURSOR = "settlements.reports_created"
CURSOR_OVERLAP = timedelta(days=1)
SHOWN_ROWS = 10  # row numbers named per unknown combination
RULE_TEXT = {"clearing": "AR clearing, order in Sage", "revenue": "revenue, order not in Sage", "mapped": "mapped"}
JOBS = ("sync_settlements", "import_settlement", "post_settlement")


class UnmappedSettlementAmounts(errors.Permanent):
    code = "unmapped_settlement_amount"


# --- categorisation and the daily summary (the Aggregator) ------------------------------------------------------


@dataclass
class Categorised:
    """A settlement read to the end: its summary and its amounts summed per (posted date, account, rule), with the
    amount descriptions behind each (account, rule). Small: days x accounts, whatever the number of rows."""

    summary: parser.Summary
    days: dict[tuple[date, str, str], Decimal] = field(default_factory=dict)
    descriptions: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    rows: int = 0

    def payload(self) -> dict[str, Any]:
        """JSON for the post_settlement job (amounts as strings)."""
        s = self.summary
        return {"settlement_id": s.settlement_id, "currency": s.currency, "total_amount": str(s.total_amount),
                "start": s.start.isoformat(), "end": s.end.isoformat(),
                "deposit_date": s.deposit_date.isoformat() if s.deposit_date else None, "rows": self.rows,
                "days": [[d.isoformat(), account, rule, str(amount)]
                         for (d, account, rule), amount in sorted(self.days.items())],
                "descriptions": [[account, rule, sorted(texts)]
                                 for (account, rule), texts in sorted(self.descriptions.items())]}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Categorised:
        summary = parser.Summary(
            data["settlement_id"], datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]),
            datetime.fromisoformat(data["deposit_date"]) if data.get("deposit_date") else None,
            Decimal(data["total_amount"]), data["currency"])
        return cls(summary, {(date.fromisoformat(d), account, rule): Decimal(amount)
                             for d, account, rule, amount in data["days"]},
                   {(account, rule): set(texts) for account, rule, texts in data["descriptions"]}, data["rows"])


def categorise(summary: parser.Summary, rows: Iterable[parser.Row], accounts: SettlementAccounts) -> Categorised:
    """Map every row to its GL account and sum per day and account (see :func:`mapped_rows`)."""
    result = Categorised(summary)
    for _ in mapped_rows(result, rows, accounts):
        pass
    return result


def mapped_rows(result: Categorised, rows: Iterable[parser.Row], accounts: SettlementAccounts
                ) -> Iterator[tuple[parser.Row, SettlementAccount]]:
    """Each row with its GL account, summed into ``result`` on the way. Every amount without an account is
    collected and, once the file is read, reported in one :class:`UnmappedSettlementAmounts` naming each
    combination and its rows."""
    days, descriptions = result.days, result.descriptions
    unknown: dict[tuple[str, str, str], list[int]] = {}
    count = 0
    for row in rows:
        count += 1
        found = accounts.account(row.transaction_type, row.amount_type, row.amount_description, row.fulfillment_id)
        if found is None:
            unknown.setdefault((row.transaction_type, row.amount_type, row.amount_description), []).append(row.number)
            continue
        key = (row.posted_date, found.account, found.rule)
        days[key] = days.get(key, ZERO) + row.amount
        text = row_text(found.rule, row.fulfillment_id, row.amount_description)
        texts = descriptions.get((found.account, found.rule))
        if texts is None:
            texts = descriptions[(found.account, found.rule)] = set()
        texts.add(text)
        yield row, found
    result.rows = count
    if unknown:
        raise UnmappedSettlementAmounts(_unknown_message(result.summary, unknown),
                                        record=result.summary.settlement_id)


def _unknown_message(summary: parser.Summary, unknown: dict[tuple[str, str, str], list[int]]) -> str:
    parts = []
    for (tt, at, ad), numbers in sorted(unknown.items()):
        shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS])
        more = f" and {len(numbers) - SHOWN_ROWS} more" if len(numbers) > SHOWN_ROWS else ""
        parts.append(f"({tt!r}, {at!r}, {ad!r}) on line{'s' if len(numbers) > 1 else ''} {shown}{more}")
    keys = ", ".join(f'"{tt}/{at}/{ad}" = "<GLAcctNo>"' for tt, at, ad in sorted(unknown))
    return (f"settlement {summary.settlement_id}: no GL account for {len(unknown)} kind(s) of amount: "
            f"{'; '.join(parts)}; nothing posted. Add them under [mapping.settlement] accounts = {{ {keys} }} "
            f"and replay the dead letter (or import the file again)")


# --- the journal --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    account: str
    amount: Decimal  # debit positive, credit negative
    memo: str
    deposit: bool = False  # the payout line: equals total-amount


@dataclass(frozen=True)
class Batch:
    period: FiscalPeriod
    date: date
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Journal:
    summary: parser.Summary
    batches: tuple[Batch, ...]
    deposit_account: str

    @property
    def lines(self) -> list[Line]:
        return [line for batch in self.batches for line in batch.lines]

    @property
    def balanced(self) -> bool:
        """Every batch sums to zero and the deposit lines equal total-amount exactly."""
        deposit = sum((line.amount for b in self.batches for line in b.lines if line.deposit), ZERO)
        return all(sum((line.amount for line in b.lines), ZERO) == 0 for b in self.batches) and \
            deposit == self.summary.total_amount

    def entries(self) -> list[PeriodBatch]:
        sid = self.summary.settlement_id
        return [PeriodBatch(b.period, model.JournalEntry(
            reference=f"{sid}/{b.period.label}", date=datetime.combine(b.date, time(12), timezone.utc),
            currency=self.summary.currency, memo=f"Amazon settlement {sid} {b.period.label}",
            lines=tuple(model.JournalLine(account=line.account, amount=line.amount, description=line.memo)
                        for line in b.lines))) for b in self.batches]


def calendar_month(day: date) -> FiscalPeriod:
    """A calendar month as a period (the replica's fiscal calendar; the dry run's without a Sage database)."""
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return FiscalPeriod(str(day.year), day.month, day.replace(day=1), following - timedelta(days=1), 1)


def journal(categorised: Categorised, period_of: Callable[[date], FiscalPeriod], settings: Settings) -> Journal:
    """One batch per period of the rows' posted dates: credit/debit per (account, rule) with the amounts negated
    (Amazon paying the seller is a credit to income), the deposit (+total-amount) on the batch of the settlement's
    last period, and the carried-forward account joining the batches so each one balances."""
    rules = settings.mapping.settlement
    summary = categorised.summary
    end_period = period_of(summary.end.date())
    per_period: dict[str, tuple[FiscalPeriod, date, dict[tuple[str, str], Decimal]]] = {}
    for (day, account, rule), amount in categorised.days.items():
        period = period_of(day)
        _, last_day, sums = per_period.setdefault(period.label, (period, day, {}))
        per_period[period.label] = (period, max(last_day, day), sums)
        sums[(account, rule)] = sums.get((account, rule), ZERO) - amount
    if end_period.label not in per_period and (summary.total_amount or per_period):
        per_period[end_period.label] = (end_period, summary.end.date(), {})
    ordered = sorted(per_period.values(), key=lambda p: p[0].start)
    if not ordered:
        return Journal(summary, (), rules.deposit)
    final = ordered[-1][0]
    batches, carried = [], ZERO
    sid = summary.settlement_id
    for period, last_day, sums in ordered:
        lines = [Line(account, amount, _memo(account, rule, categorised.descriptions))
                 for (account, rule), amount in sorted(sums.items()) if amount]
        net = -sum(sums.values(), ZERO)  # what this period's rows brought
        if period is final:
            if carried:
                lines.append(Line(rules.carried_forward, -carried,
                                  f"carried forward: settlement {sid} from earlier periods"))
            lines.append(Line(rules.deposit, summary.total_amount,
                              f"deposit: settlement {sid} total-amount {summary.total_amount} {summary.currency}",
                              deposit=True))
            day = max(last_day, min(summary.end.date(), period.end))
        else:
            if net:
                lines.append(Line(rules.carried_forward, net,
                                  f"carried forward: settlement {sid} {period.label} to {final.label}"))
            carried += net
            day = period.end
        if any(line.amount for line in lines):
            batches.append(Batch(period, day, tuple(lines)))
    return Journal(summary, tuple(batches), rules.deposit)


def _memo(account: str, rule: str, descriptions: dict[tuple[str, str], set[str]]) -> str:
    return memo(rule, descriptions.get((account, rule), ()))


def row_text(rule: str, fulfillment_id: str | None, amount_description: str) -> str:
    """How an amount is named in its journal line's memo: ``Commission`` (mapped), ``MFN Principal`` (by channel)."""
    return amount_description if rule == "mapped" else f"{fulfillment_id or ''} {amount_description}"


def memo(rule: str, texts: Iterable[str]) -> str:
    """A journal line's memo: the rule that chose its account and the amounts behind it."""
    return f"{RULE_TEXT[rule]}: {', '.join(sorted(texts))}"[:255]


def json_line(batch: Batch, line: Line, *, named: bool) -> dict[str, str]:
    """One journal line as the ``--json`` output shows it: debit and credit as strings (one of them 0.00), the memo
    prefixed with ``[period]`` when ``named`` (a settlement that spans periods)."""
    amount = line.amount.quantize(CENT) if line.amount == line.amount.quantize(CENT) else line.amount
    nothing = str(ZERO.quantize(CENT))
    return {"account": line.account, "debit": str(amount) if amount > 0 else nothing,
            "credit": str(-amount) if amount < 0 else nothing,
            "memo": f"[{batch.period.label}] {line.memo}" if named else line.memo}


def as_json(built: Journal) -> dict[str, Any]:
    """The ``settlements import --json`` shape, exactly: settlement_id, currency, deposit_date, total_amount,
    balanced and lines [{account, debit, credit, memo}]; amounts as strings. The lines of every batch, in period
    order; when there are several, each memo starts with its period (``[2026-03] ...``)."""
    s = built.summary
    several = len(built.batches) > 1
    return {"settlement_id": s.settlement_id, "currency": s.currency,
            "deposit_date": s.deposit_date.isoformat() if s.deposit_date else None,
            "total_amount": str(s.total_amount), "balanced": built.balanced,
            "lines": [json_line(b, line, named=several) for b in built.batches for line in b.lines]}


# --- reading a file -----------------------------------------------------------------------------------------------


def read(lines: Iterable[str], settings: Settings, *, source: str, store=None,
         report_id: str | None = None) -> tuple[Categorised | None, str | None]:
    """Parse and categorise a settlement file. With ``store``: the settlement-id is claimed (processed once) and the
    row detail kept; returns (None, why) when the settlement was posted before with the same total."""
    summary, rows = parser.parse(lines, source=source)
    accounts = SettlementAccounts(settings.mapping, settings.orders)
    if store is None:
        return categorise(summary, rows, accounts), None
    created, record = store.settlement_claim(
        summary.settlement_id, report_id=report_id, currency=summary.currency,
        total_amount=str(summary.total_amount), start_date=summary.start, end_date=summary.end,
        deposit_date=summary.deposit_date)
    if not created and record.status == "posted":
        if Decimal(record.total_amount) != summary.total_amount or record.currency != summary.currency:
            raise errors.Permanent(
                f"settlement {summary.settlement_id} was posted from {record.report_id or 'a file'} with "
                f"total-amount {record.total_amount} {record.currency}; {source} says {summary.total_amount} "
                f"{summary.currency}. Nothing posted: compare the two reports and correct the GL by hand if "
                f"Amazon re-issued the settlement", code="settlement_conflict", record=summary.settlement_id)
        if report_id is not None and record.report_id is None:  # posted from a file: the sync can skip this report
            store.settlement_link_report(summary.settlement_id, report_id)
        return None, f"settlement {summary.settlement_id} was posted before (batches {record.batches})"
    result = Categorised(summary)
    detail = ({"line_no": row.number, "posted_date": row.posted_date, "transaction_type": row.transaction_type,
               "amount_type": row.amount_type, "amount_description": row.amount_description,
               "amount": str(row.amount), "order_id": row.order_id or None,
               "fulfillment_id": row.fulfillment_id or None, "sku": row.sku or None, "account": found.account,
               "rule": found.rule} for row, found in mapped_rows(result, rows, accounts))
    store.settlement_rows_replace(summary.settlement_id, detail)  # one transaction: a failure keeps no rows
    return result, None


def sage_periods(gateway: Sage500Gateway, categorised: Categorised) -> Callable[[date], FiscalPeriod]:
    """Sage's fiscal calendar over the settlement's dates."""
    first = min((d for d, _, _ in categorised.days), default=categorised.summary.end.date())
    last = max([categorised.summary.end.date(), *(d for d, _, _ in categorised.days)])
    return FiscalCalendar.read(gateway, first, last).period_of


def post(gateway: Sage500Gateway, categorised: Categorised, settings: Settings, store=None
         ) -> tuple[Journal, dict[str, int]]:
    """Split by Sage's fiscal periods and post, once per settlement-id and period. Returns the journal and
    {period: BatchKey}."""
    built = journal(categorised, sage_periods(gateway, categorised), settings)
    if not built.balanced:  # a defect, never a data problem: the journal is built to balance
        raise errors.Permanent(f"settlement {categorised.summary.settlement_id}: journal does not balance; "
                               f"nothing posted", code="gl_unbalanced", record=categorised.summary.settlement_id)
    batches = post_batches(gateway, built.entries(), what=f"settlement {categorised.summary.settlement_id}")
    if store is not None:
        store.settlement_posted(categorised.summary.settlement_id, batches)
    log.info("settlement.posted", settlement_id=categorised.summary.settlement_id, batches=batches,
             total=str(categorised.summary.total_amount), currency=categorised.summary.currency)
    return built, batches


# --- jobs -----------------------------------------------------------------------------------------------------------


@job("sync_settlements", queue="amazon")
def sync_settlements(ctx: JobContext) -> dict[str, int]:
    """List the settlement reports created since the cursor and queue an import of each one not seen before."""
    rules = ctx.settings.mapping.settlement
    initial = model.utcnow() - timedelta(days=rules.sync_since_days) + timedelta(minutes=5)
    cursor = ctx.store.cursor(REPORTS_CURSOR, initial, overlap=CURSOR_OVERLAP)
    since = max(cursor.start_value, model.utcnow() - timedelta(days=90) + timedelta(minutes=5))
    reports = Reports(connections.amazon(ctx)).settlement_reports(since)
    seen = ctx.store.settlement_report_ids({r.report_id for r in reports})
    dead = {d.key for d in ctx.store.dead_letters.list("open", job="import_settlement", limit=1000)}
    queued = 0
    for report in reports:
        key = f"import_settlement:{report.report_id}"
        if report.report_id in seen or key in dead or not report.document_id:
            continue
        queued += ctx.enqueue("import_settlement", key=key, report_id=report.report_id,
                              document_id=report.document_id)
    newest = max((r.created for r in reports if r.created), default=None)
    if newest is not None:
        cursor.commit(newest)
    log.info("settlement.sync", listed=len(reports), queued=queued)
    return {"listed": len(reports), "queued": queued}


@job("import_settlement", queue="amazon")
def import_settlement(ctx: JobContext, report_id: str, document_id: str) -> dict[str, Any]:
    """Download, parse and categorise one settlement report; hand the summary to post_settlement."""
    with Reports(connections.amazon(ctx)).open_document(document_id) as lines:
        categorised, skipped = read(lines, ctx.settings, source=f"report {report_id}", store=ctx.store,
                                    report_id=report_id)
    if categorised is None:
        log.info("settlement.already_posted", report_id=report_id, reason=skipped)
        return {"status": "skipped", "reason": skipped}
    sid = categorised.summary.settlement_id
    ctx.enqueue("post_settlement", key=f"post_settlement:{sid}", settlement=categorised.payload())
    log.info("settlement.imported", report_id=report_id, settlement_id=sid, rows=categorised.rows)
    return {"status": "imported", "settlement_id": sid, "rows": categorised.rows}


@job("post_settlement", queue="sage500")
def post_settlement(ctx: JobContext, settlement: dict[str, Any]) -> dict[str, Any]:
    """Post one categorised settlement to Sage GL (once per settlement-id and period)."""
    categorised = Categorised.from_payload(settlement)
    record = ctx.store.settlement_get(categorised.summary.settlement_id)
    if record is not None and record.status == "posted":
        return {"status": "skipped", "batches": record.batches}
    _, batches = post(connections.sage(ctx), categorised, ctx.settings, ctx.store)
    return {"status": "posted", "batches": batches}
