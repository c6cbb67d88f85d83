"""GL posting by fiscal period: the fiscal calendar (``tglFiscalPeriod``), closed-period and account checks before
anything is written, and one GL batch per journal reference through :meth:`Sage500Gateway.post_journal` (which is
idempotent per reference, so a batch posted before a crash is found, not posted twice).

Statements are registered in :mod:`erpsync.sage500.sql`'s registry (``@statement``), so the dialect test compiles
them for SQL Server and parses them as T-SQL. ``tglFiscalPeriod.Status``: 1 open, 2 closed ([I], sage500.md §8).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import bindparam, select

from erpsync import logs, model
from erpsync.errors import Permanent
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.sql import statement

log = logs.get("erpsync.sage500")

PERIOD_OPEN = 1
PERIOD_CLOSED = 2


@statement()
def fiscal_periods_between():
    p = s.tglFiscalPeriod
    return (select(p.c.FiscYear, p.c.FiscPer, p.c.StartDate, p.c.EndDate, p.c.Status)
            .where(p.c.CompanyID == bindparam("company_id"), p.c.EndDate >= bindparam("first"),
                   p.c.StartDate <= bindparam("last"))
            .order_by(p.c.StartDate))


@dataclass(frozen=True)
class FiscalPeriod:
    fisc_year: str
    fisc_per: int
    start: date
    end: date
    status: int

    @property
    def label(self) -> str:
        return f"{self.fisc_year}-{self.fisc_per:02d}"

    @property
    def open(self) -> bool:
        return self.status == PERIOD_OPEN


class FiscalCalendar:
    """The periods of one company covering a range of dates; :meth:`period_of` a date."""

    def __init__(self, periods: Sequence[FiscalPeriod], company_id: str):
        self.periods = list(periods)
        self.company_id = company_id

    @classmethod
    def read(cls, gateway: Sage500Gateway, first: date, last: date) -> FiscalCalendar:
        params = {"company_id": gateway.company_id, "first": datetime.combine(first, time.min),
                  "last": datetime.combine(last, time.max).replace(microsecond=0)}
        rows = gateway._read(lambda conn: conn.execute(fiscal_periods_between(), params).all())  # noqa: SLF001
        return cls([FiscalPeriod(str(r.FiscYear).strip(), int(r.FiscPer), _day(r.StartDate), _day(r.EndDate),
                                 int(r.Status)) for r in rows], gateway.company_id)

    def period_of(self, day: date) -> FiscalPeriod:
        for period in self.periods:
            if period.start <= day <= period.end:
                return period
        raise Permanent(f"no fiscal period of company {self.company_id} covers {day.isoformat()} in Sage "
                        f"(tglFiscalPeriod); set up that fiscal year in Sage GL and replay the dead letter",
                        code="no_fiscal_period", record=day.isoformat())


def _day(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def missing_accounts(gateway: Sage500Gateway, numbers: Iterable[str]) -> list[str]:
    """The GLAcctNos of ``numbers`` that do not exist in the gateway's company."""
    wanted = sorted(set(numbers))
    params = {"company_id": gateway.company_id, "acct_nos": wanted}
    known = gateway._read(lambda conn: {r.GLAcctNo for r in conn.execute(sql.gl_accounts_by_no(), params)})  # noqa: SLF001
    return [n for n in wanted if n not in known]


@dataclass(frozen=True)
class PeriodBatch:
    """One GL batch of a journal that spans periods: its period and the entry to post."""

    period: FiscalPeriod
    entry: model.JournalEntry


def post_batches(gateway: Sage500Gateway, batches: Sequence[PeriodBatch], *, what: str,
                 batch_id_prefix: str = "AMZ") -> dict[str, int]:
    """Post each batch once (per its entry's reference), after checking that every period is open and every
    account exists — so a closed period or an unknown account posts nothing. Returns {period label: BatchKey}."""
    closed = [b.period.label for b in batches if not b.period.open]
    if closed:
        raise Permanent(f"{what}: fiscal period {', '.join(closed)} is closed in Sage (company "
                        f"{gateway.company_id}); nothing posted. Reopen the period in Sage GL, or post the amounts "
                        f"by hand, and replay the dead letter", code="closed_period", record=closed[0])
    unknown = missing_accounts(gateway, (line.account for b in batches for line in b.entry.lines))
    if unknown:
        raise Permanent(f"{what}: GL account(s) {', '.join(unknown)} do not exist in company {gateway.company_id}; "
                        f"nothing posted. Create them in Sage and replay the dead letter; or point "
                        f"[mapping.settlement] at accounts that exist and import the settlement again (`erpsync "
                        f"settlements import FILE`): a replay posts the accounts it was imported with",
                        code="unknown_gl_account", record=unknown[0])
    posted = {}
    for batch in batches:
        posted[batch.period.label] = gateway.post_journal(batch.entry, batch_id_prefix=batch_id_prefix)
    log.info("gl_batches_posted", what=what, batches=posted)
    return posted
