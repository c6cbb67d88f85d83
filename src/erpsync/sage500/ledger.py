"""Journals into Sage's general ledger: one balanced GL batch (``tciBatchLog`` + ``tglPosting``) per reference.

The batch is written balanced and open (Status 4, PostStatus 0); the backend decides what follows: a real Sage
site posts it with its own posting run, the replica posts it at once as Sage would.
"""

from __future__ import annotations

from decimal import Decimal

from erpsync import logs, model
from erpsync.errors import InvalidData, Permanent
from erpsync.sage500 import sql
from erpsync.sage500.backend import NEXT_KEY, NEXT_KEY_BLOCK
from erpsync.sage500.database import SageDatabase

log = logs.get("erpsync.sage500")

ZERO = Decimal("0")
CENT3 = Decimal("0.001")


class Ledger(SageDatabase):

    def post_journal(self, entry: model.JournalEntry, batch_id_prefix: str = "AMZ") -> int:
        """Write ``entry`` as one balanced GL batch (tciBatchLog + tglPosting), once per ``entry.reference``
        (a repeat returns the existing BatchKey); in replica mode the batch is also posted to tglTransaction."""
        comment = f"{batch_id_prefix}:{entry.reference}"
        if len(comment) > 50:
            raise InvalidData(f"journal {entry.reference}: '{comment}' is longer than tciBatchLog.BatchCmnt (50)",
                              record=entry.reference)
        amounts = [line.amount.quantize(CENT3) for line in entry.lines]
        if sum(amounts, ZERO) != 0 or any(a != line.amount for a, line in zip(amounts, entry.lines, strict=True)):
            raise Permanent(f"journal {entry.reference} is not balanced to the tenth of a cent "
                            f"(Σ = {sum((line.amount for line in entry.lines), ZERO)}); nothing posted",
                            code="gl_unbalanced", record=entry.reference)
        with self._transaction(lock=f"erpsync:journal:{comment}") as conn:
            existing = conn.execute(sql.batch_by_comment(), {"company_id": self.company_id, "comment": comment}).first()
            if existing:
                log.info("gl_batch_exists", reference=entry.reference, batch_key=existing.BatchKey)
                return existing.BatchKey
            numbers = sorted({line.account for line in entry.lines})
            accounts = {r.GLAcctNo: r.GLAcctKey for r in conn.execute(
                sql.gl_accounts_by_no(), {"company_id": self.company_id, "acct_nos": numbers})}
            unknown = [n for n in numbers if n not in accounts]
            if unknown:
                raise Permanent(f"journal {entry.reference}: GL account(s) {', '.join(unknown)} do not exist in "
                                f"company {self.company_id}; fix [mapping.gl_accounts] or create them in Sage",
                                code="unknown_gl_account", record=entry.reference)
            batch_key = self.backend.call(conn, NEXT_KEY, {"series": "tciBatchLog"})["next_key"]
            date = self.clock.to_sage(entry.date)
            conn.execute(sql.insert_batch_log(), dict(
                BatchKey=batch_key, CompanyID=self.company_id, PostCompanyID=self.company_id,
                BatchID=f"{batch_id_prefix}-{batch_key}"[:20], Status=4, PostStatus=0, PostDate=date,
                BatchCmnt=comment))
            first = self.backend.call(conn, NEXT_KEY_BLOCK, {"series": "tglPosting",
                                                             "count": len(entry.lines)})["next_key"]
            conn.execute(sql.insert_gl_posting(), [dict(
                PostingKey=first + n, BatchKey=batch_key, GLAcctKey=accounts[line.account], CurrID=entry.currency,
                PostAmt=amount, PostAmtHC=amount, PostQty=ZERO, PostCmnt=(line.description or entry.memo)[:50],
                ExtCmnt=line.description[:255], TranDate=date, PostDate=date, NatCurrBegBal=0)
                for n, (line, amount) in enumerate(zip(entry.lines, amounts, strict=True))])
            self.backend.batch_written(conn, batch_key)
        log.info("gl_batch_written", reference=entry.reference, batch_key=batch_key, lines=len(entry.lines))
        return batch_key
