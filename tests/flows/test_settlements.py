"""Settlements into the Sage GL with hand-made edge files, on the replica: no revenue counted twice, negative
deposits, reserves, a settlement crossing a month end (two batches, the carried-forward balance nets to zero), a
closed period (dead letter naming it, replayed once reopened), a repeated settlement-id, unknown fee types and
format changes refused by `erpsync settlements import` with exit 1, and the --json shape."""

from __future__ import annotations

import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from erpsync import config as config_mod
from erpsync.cli import app
from erpsync.flows import settlements as flow
from erpsync.runtime import deadletter
from erpsync.runtime.jobs import Runtime, load_job_modules
from erpsync.runtime.store import Store
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.posting import post_batches
from erpsync.sandbox.settlement import COLUMNS

from .conftest import write_toml

SID = "23456789012"
JSON_KEYS = {"settlement_id", "currency", "deposit_date", "total_amount", "balanced", "lines"}
MFN = dict(order_id="112-1111111-1111111", fid="MFN")
AFN = dict(order_id="112-2222222-2222222", fid="AFN")


def row(tt: str, at: str, ad: str, amount: str, posted: str = "2026-03-10", *, order_id: str = "", fid: str = ""):
    return {"transaction-type": tt, "amount-type": at, "amount-description": ad, "amount": amount,
            "order-id": order_id, "fulfillment-id": fid, "posted-date": posted,
            "posted-date-time": f"{posted} 10:00:00 UTC"}


def settlement_file(rows: list[dict], *, sid: str = SID, total: str | None = None, start: str = "2026-03-02",
                    end: str = "2026-03-16", currency: str = "USD", eu: bool = False) -> str:
    """A V2 flat file: header, summary, ``rows``; total-amount = Σ amounts unless given."""
    amount = sum((Decimal(r["amount"]) for r in rows), Decimal("0")) if total is None else Decimal(total)

    def number(value: str) -> str:
        return value.replace(".", ",") if eu else value

    def day(value: str) -> str:
        if not eu:
            return value
        y, m, d = value[:10].split("-")
        return f"{d}.{m}.{y}{value[10:]}"

    columns = list(COLUMNS) + ["promotion-id"]
    summary = {"settlement-id": sid, "settlement-start-date": day(f"{start} 08:00:00 UTC"),
               "settlement-end-date": day(f"{end} 08:00:00 UTC"), "deposit-date": day(f"{end} 08:00:00 UTC"),
               "total-amount": number(f"{amount:.2f}"), "currency": currency}
    lines = ["\t".join(columns), "\t".join(summary.get(c, "") for c in columns)]
    for r in rows:
        values = {**r, "settlement-id": sid, "amount": number(r["amount"]), "posted-date": day(r["posted-date"]),
                  "posted-date-time": day(r["posted-date-time"])}
        lines.append("\t".join(values.get(c, "") for c in columns))
    return "\n".join(lines) + "\n"


def mfn_and_afn_rows(posted: str = "2026-03-10") -> list[dict]:
    return [row("Order", "ItemPrice", "Principal", "100.00", posted, **MFN),
            row("Order", "ItemPrice", "Shipping", "5.00", posted, **MFN),
            row("Order", "ItemPrice", "Tax", "8.40", posted, **MFN),
            row("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-8.40", posted, **MFN),
            row("Order", "Promotion", "Principal", "-10.00", posted, **MFN),
            row("Order", "ItemFees", "Commission", "-15.00", posted, **MFN),
            row("Order", "ItemPrice", "Principal", "60.00", posted, **AFN),
            row("Order", "ItemPrice", "Tax", "4.80", posted, **AFN),
            row("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-4.80", posted, **AFN),
            row("Order", "ItemFees", "Commission", "-9.00", posted, **AFN),
            row("Order", "ItemFees", "FBAPerUnitFulfillmentFee", "-3.22", posted, **AFN)]


class Installation:
    """erpsync.toml, a seeded replica and the state store in ``base``; the CLI and jobs run against it."""

    def __init__(self, base: Path, template: Path, sections: dict):
        self.base = base
        (base / ".erpsync").mkdir(exist_ok=True)
        shutil.copy(template, base / ".erpsync" / "sage500.db")
        self.config = base / "erpsync.toml"
        write_toml(self.config, sections)
        self.settings = config_mod.load(self.config)
        self.engine = make_engine(self.settings.resolve_url(self.settings.sage500.url))

    def cli(self, *args: str):
        return CliRunner().invoke(app, [*args, "--config", str(self.config)])

    def file(self, text: str, name: str = "settlement.txt") -> str:
        path = self.base / name
        path.write_text(text)
        return str(path)

    def batches(self, sid: str = SID) -> dict[str, int]:
        b = s.tciBatchLog
        with self.engine.connect() as conn:
            rows = conn.execute(select(b.c.BatchCmnt, b.c.BatchKey, b.c.Status)
                                .where(b.c.BatchCmnt.like(f"AMZ:{sid}/%"))).all()
        assert all(r.Status == 6 for r in rows)  # posted
        return {r.BatchCmnt.split("/")[1]: r.BatchKey for r in rows}

    def ledger(self, batch_key: int | None = None, sid: str = SID) -> dict[str, Decimal]:
        """Posted GL amounts per account (debit +), of one batch or of all the settlement's batches."""
        t, a = s.tglTransaction, s.tglAccount
        keys = [batch_key] if batch_key is not None else list(self.batches(sid).values())
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.c.GLAcctNo, func.sum(t.c.PostAmt)).join(a, a.c.GLAcctKey == t.c.GLAcctKey)
                                .where(t.c.BatchKey.in_(keys)).group_by(a.c.GLAcctNo)).all()
        return {no: Decimal(str(amount)) for no, amount in rows}

    def fiscal_periods(self, batch_key: int) -> set[tuple[str, int]]:
        t = s.tglTransaction
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.c.FiscYear, t.c.FiscPer).where(t.c.BatchKey == batch_key)).all())

    def set_period(self, year: int, period: int, status: int) -> None:
        p = s.tglFiscalPeriod
        with self.engine.begin() as conn:
            conn.execute(update(p).where(p.c.FiscYear == str(year), p.c.FiscPer == period).values(Status=status))

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def make_install(tmp_path, sage_template, monkeypatch):
    monkeypatch.delenv("ERPSYNC_CONFIG", raising=False)
    monkeypatch.delenv("ERPSYNC_SECRETS_FILE", raising=False)
    made = []

    def make(**sections) -> Installation:
        base = tmp_path / f"site{len(made)}"
        base.mkdir()
        made.append(Installation(base, sage_template, sections))
        return made[-1]

    yield make
    for install in made:
        install.close()


@pytest.fixture
def install(make_install) -> Installation:
    return make_install()


def test_mfn_and_afn_in_one_settlement_count_revenue_once(install):
    """MFN orders are in Sage (the order flow invoiced them): their principal, shipping, tax and promotions clear
    the Amazon receivable. AFN orders are not (orders.afn = "skip"): they post to revenue."""
    result = install.cli("settlements", "import", install.file(settlement_file(mfn_and_afn_rows())))
    assert result.exit_code == 0, result.output
    ledger = install.ledger()
    assert ledger["1210"] == Decimal("-103.40")  # MFN 100 + 5 + 8.40 - 10 cleared, not revenue
    assert ledger["4010"] == Decimal("-60.00")  # AFN principal only
    assert "4020" not in ledger and "4050" not in ledger  # MFN shipping and promotion are in the receivable
    assert ledger["2310"] == Decimal("-4.80") + Decimal("8.40") + Decimal("4.80")  # AFN tax nets, MFN tax withheld
    assert ledger["6110"] == Decimal("24.00") and ledger["6120"] == Decimal("3.22")
    assert ledger["1010"] == Decimal("127.78") and sum(ledger.values()) == 0
    t = s.tglTransaction
    with install.engine.connect() as conn:
        memos = set(conn.execute(select(t.c.ExtCmnt)).scalars())
    assert "AR clearing, order in Sage: MFN Principal, MFN Shipping, MFN Tax" in memos
    assert "revenue, order not in Sage: AFN Principal" in memos


def test_afn_written_to_sage_clears_the_receivable_too(make_install):
    install = make_install(orders={"afn": "shipped"})
    assert install.cli("settlements", "import", install.file(settlement_file(mfn_and_afn_rows()))).exit_code == 0
    ledger = install.ledger()
    assert ledger["1210"] == Decimal("-103.40") - Decimal("64.80") and "4010" not in ledger


def test_channel_rule_is_configurable(make_install):
    install = make_install(**{"mapping.settlement": {"channels": {"MFN": "revenue"}}})
    assert install.cli("settlements", "import", install.file(settlement_file(mfn_and_afn_rows()))).exit_code == 0
    ledger = install.ledger()
    assert "1210" not in ledger and ledger["4010"] == Decimal("-160.00") and ledger["4050"] == Decimal("10.00")


def test_month_end_posts_two_batches_joined_by_the_carried_forward_balance(install):
    rows = mfn_and_afn_rows("2026-03-30") + [
        row("Order", "ItemPrice", "Principal", "40.00", "2026-04-02", order_id="112-3333333-3333333", fid="AFN"),
        row("ServiceFee", "Subscription", "Subscription Fee", "-39.99", "2026-04-03")]
    text = settlement_file(rows, start="2026-03-24", end="2026-04-07")
    result = install.cli("settlements", "import", install.file(text), "--json")
    assert result.exit_code == 0, result.output
    batches = install.batches()
    assert set(batches) == {"2026-03", "2026-04"}
    march, april = install.ledger(batches["2026-03"]), install.ledger(batches["2026-04"])
    assert sum(march.values()) == 0 and sum(april.values()) == 0
    assert march["1055"] == Decimal("127.78") and april["1055"] == Decimal("-127.78")  # nets to zero
    assert "1010" not in march and april["1010"] == Decimal("127.79")  # the one deposit: 127.78 + 40 - 39.99
    assert march["4010"] == Decimal("-60.00") and april["4010"] == Decimal("-40.00")
    assert install.fiscal_periods(batches["2026-03"]) == {("2026", 3)}
    assert install.fiscal_periods(batches["2026-04"]) == {("2026", 4)}
    out = json.loads(result.stdout)
    assert out["balanced"] is True and set(out) == JSON_KEYS
    periods = [line["memo"][:9] for line in out["lines"]]  # each memo names its batch's period, in period order
    assert periods == sorted(periods) and set(periods) == {"[2026-03]", "[2026-04]"}
    assert [(line["account"], line["debit"], line["credit"]) for line in out["lines"]
            if line["account"] in ("1055", "1010")] == [("1055", "127.78", "0.00"), ("1055", "0.00", "127.78"),
                                                        ("1010", "127.79", "0.00")]


def test_a_crash_between_two_batches_posts_the_missing_one_only(install):
    """Idempotent per settlement-id and period: the March batch made it to Sage, the process died before April;
    importing the file again finds March by its reference (tciBatchLog.BatchCmnt) and posts April alone."""
    rows = mfn_and_afn_rows("2026-03-30") + [
        row("ServiceFee", "Subscription", "Subscription Fee", "-39.99", "2026-04-03")]
    path = install.file(settlement_file(rows, start="2026-03-24", end="2026-04-07"))
    with open(path) as lines, Sage500Gateway(install.engine) as gateway:
        categorised, _ = flow.read(lines, install.settings, source=path)
        built = flow.journal(categorised, flow.sage_periods(gateway, categorised), install.settings)
        march = post_batches(gateway, built.entries()[:1], what="the first batch")
    assert set(install.batches()) == {"2026-03"}
    assert install.cli("settlements", "import", path).exit_code == 0
    batches = install.batches()
    assert batches == {"2026-03": march["2026-03"], "2026-04": batches["2026-04"]}  # March not posted twice
    ledger = install.ledger()
    assert ledger["1055"] == 0 and ledger["1010"] == Decimal("87.79") and sum(ledger.values()) == 0


def test_negative_total_with_reserves(install):
    rows = [row("Order", "ItemPrice", "Principal", "50.00", **AFN),
            row("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", "-180.00"),
            row("other-transaction", "other-transaction", "Current Reserve Amount", "-30.00"),
            row("other-transaction", "other-transaction", "Previous Reserve Amount Balance", "12.50"),
            row("other-transaction", "FBA Inventory Reimbursement", "WAREHOUSE_DAMAGE", "7.25")]
    result = install.cli("settlements", "import", install.file(settlement_file(rows)), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == JSON_KEYS and out["total_amount"] == "-140.25" and out["balanced"] is True
    deposit = [line for line in out["lines"] if line["account"] == "1010"]
    assert deposit == [{"account": "1010", "debit": "0.00", "credit": "140.25",
                        "memo": f"deposit: settlement {SID} total-amount -140.25 USD"}]
    ledger = install.ledger()
    assert ledger["1010"] == Decimal("-140.25") and ledger["1260"] == Decimal("17.50")  # reserve held, net
    assert ledger["4900"] == Decimal("-7.25") and ledger["6150"] == Decimal("180.00") and sum(ledger.values()) == 0


def test_json_shape_of_a_dry_run_posts_nothing(install):
    result = install.cli("settlements", "import", install.file(settlement_file(mfn_and_afn_rows())), "--dry-run",
                         "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == JSON_KEYS  # exactly the shape of issue 11, nothing added
    assert out["settlement_id"] == SID and out["currency"] == "USD" and out["total_amount"] == "127.78"
    assert out["deposit_date"] == "2026-03-16T08:00:00+00:00" and out["balanced"] is True
    assert all(set(line) == {"account", "debit", "credit", "memo"} for line in out["lines"])
    assert all(isinstance(line["debit"], str) and isinstance(line["credit"], str) for line in out["lines"])
    debits = sum(Decimal(line["debit"]) for line in out["lines"])
    assert debits == sum(Decimal(line["credit"]) for line in out["lines"]) and debits > 0
    assert install.batches() == {}


def test_eu_file_posts_like_the_us_one(make_install):
    us, eu = make_install(), make_install()
    assert us.cli("settlements", "import", us.file(settlement_file(mfn_and_afn_rows()))).exit_code == 0
    text = settlement_file(mfn_and_afn_rows(), eu=True, currency="EUR")  # a DE marketplace's file
    assert "\t127,78\tEUR\t" in text and "\t16.03.2026 08:00:00 UTC\t" in text and "\t-8,40\t" in text
    result = eu.cli("settlements", "import", eu.file(text), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["currency"], out["total_amount"], out["deposit_date"]) == ("EUR", "127.78", "2026-03-16T08:00:00+00:00")
    assert eu.ledger() == us.ledger()
    t = s.tglTransaction
    with eu.engine.connect() as conn:
        assert set(conn.execute(select(t.c.CurrID)).scalars()) == {"EUR"}


def test_repeated_settlement_id_is_posted_once(install):
    path = install.file(settlement_file(mfn_and_afn_rows()))
    assert install.cli("settlements", "import", path).exit_code == 0
    first = install.batches()
    again = install.cli("settlements", "import", path)
    assert again.exit_code == 0 and "posted before" in again.output
    assert install.batches() == first
    other = install.file(settlement_file(mfn_and_afn_rows()[:-1]), "reissued.txt")
    refused = install.cli("settlements", "import", other)
    assert refused.exit_code == 1 and f"settlement {SID} was posted" in refused.output
    assert install.batches() == first
    store = Store.open(install.settings)  # the sync meets Amazon's report of the settlement posted from the file
    try:
        with open(path) as lines:
            assert flow.read(lines, install.settings, source="report R7", store=store, report_id="R7")[0] is None
        assert store.settlement_report_ids({"R7"}) == {"R7"}  # the next sync passes it by, no second download
    finally:
        store.close()
    assert install.batches() == first


@pytest.mark.parametrize("edit, reason", [
    (lambda text: text.replace("FBAPerUnitFulfillmentFee", "FBAPerUnitFulfillmentFeeV2"),
     "no GL account for 1 kind(s) of amount: ('Order', 'ItemFees', 'FBAPerUnitFulfillmentFeeV2') on line 13"),
    (lambda text: "\n".join("\t".join(f for i, f in enumerate(line.split("\t")) if i != 14)
                            for line in text.splitlines()),
     "settlement format changed: required column 'amount' missing"),
    (lambda text: text.replace("-15.00", "-15.00 USD"), "amount '-15.00 USD' is not a number, line 8"),
])
def test_rejected_file_exits_1_with_the_reason_and_posts_nothing(install, edit, reason):
    result = install.cli("settlements", "import", install.file(edit(settlement_file(mfn_and_afn_rows()))))
    assert result.exit_code == 1 and reason in result.output and "nothing posted" in result.output
    assert install.batches() == {}


def test_an_account_sage_lacks_posts_nothing_and_the_fix_it_names_works(make_install):
    install = make_install(**{"mapping.settlement": {"accounts": {"Order/ItemFees/Commission": "6199"}}})
    path = install.file(settlement_file(mfn_and_afn_rows()))
    refused = install.cli("settlements", "import", path)
    assert refused.exit_code == 1 and "GL account(s) 6199 do not exist in company SOA; nothing posted" in refused.output
    assert "import the settlement again" in refused.output and install.batches() == {}
    write_toml(install.config, {"mapping.settlement": {"accounts": {"Order/ItemFees/Commission": "6160"}}})
    assert install.cli("settlements", "import", path).exit_code == 0  # the advice: remap and import again
    assert install.ledger()["6160"] == Decimal("24.00") and "6199" not in install.ledger()


def test_extra_column_is_accepted(install):
    text = settlement_file(mfn_and_afn_rows())
    wider = "\n".join(line + ("\ttransaction-id" if i == 0 else "\tT1") for i, line in enumerate(text.splitlines()))
    assert install.cli("settlements", "import", install.file(wider)).exit_code == 0
    assert install.ledger()["1010"] == Decimal("127.78")


def test_closed_period_is_a_dead_letter_naming_it_and_replay_posts_once_reopened(install):
    load_job_modules()
    install.set_period(2026, 3, 2)
    runtime = Runtime(install.settings, config_path=install.config)
    try:
        with open(install.file(settlement_file(mfn_and_afn_rows()))) as lines:
            categorised, _ = flow.read(lines, install.settings, source="test", store=runtime.store)
        outcome = runtime.run("post_settlement", {"settlement": categorised.payload()}, key=f"post_settlement:{SID}")
        assert outcome.status == "dead"
        letter = runtime.store.dead_letters.get(outcome.dead_letter_id)
        assert letter.error_code == "closed_period" and "fiscal period 2026-03 is closed" in letter.message
        assert install.batches() == {} and runtime.store.settlement_get(SID).status == "imported"
        assert len(runtime.store.settlement_rows_of(SID)) == 11  # the row detail, linked by order id
        assert {r["order_id"] for r in runtime.store.settlement_rows_of(order_id=AFN["order_id"])} == {AFN["order_id"]}
        install.set_period(2026, 3, 1)
        replayed = deadletter.replay(runtime, letter.id, now=True)
        assert replayed.outcome.status == "done"
        assert set(install.batches()) == {"2026-03"} and runtime.store.settlement_get(SID).status == "posted"
        assert install.ledger()["1010"] == Decimal("127.78")
    finally:
        runtime.close()


def test_gzipped_file_is_read(install):
    path = install.base / "settlement.txt.gz"
    path.write_bytes(gzip.compress(settlement_file(mfn_and_afn_rows()).encode()))
    result = install.cli("settlements", "import", str(path))
    assert result.exit_code == 0, result.output
    assert install.ledger()["1010"] == Decimal("127.78")


def test_closed_period_refuses_the_file_until_reopened(install):
    install.set_period(2026, 3, 2)
    path = install.file(settlement_file(mfn_and_afn_rows()))
    refused = install.cli("settlements", "import", path)
    assert refused.exit_code == 1 and "fiscal period 2026-03 is closed in Sage" in refused.output
    assert install.batches() == {}
    install.set_period(2026, 3, 1)
    assert install.cli("settlements", "import", path).exit_code == 0
    assert set(install.batches()) == {"2026-03"}
