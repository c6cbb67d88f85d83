"""Benchmark: a 1,000,000-row V2 settlement flat file to a balanced journal (target < 20 s, peak RSS < 300 MB).

    .venv/bin/python benchmarks/settlement_import.py [--rows 1000000] [--eu] [--keep FILE]

Writes a realistic file (orders of 5 to 9 rows — principal, shipping, tax, withheld tax, promotion, commission, FBA
fee — half MFN, half AFN, a refund every 20th order, period charges and reserves, posted over 14 days that cross a
month end), then times, in a fresh child process, what ``erpsync settlements import FILE --dry-run`` does: stream the
file through the parser, categorise every row, summarise, build the journal per period (calendar months) and check
that it balances with the deposit equal to ``total-amount``. Printed: rows, seconds, rows/s, the child's peak RSS.
``--post`` times the full import instead: the row detail into a SQLite state store and the batches posted to a
fresh SQLite Sage replica. ``--report`` times what the ``import_settlement`` job reads instead: the file as a GZIP
report document, downloaded through ``Reports.open_document`` (a spooled temporary file, unpacked and decoded line
by line) into the same parse and categorisation; its peak RSS is the figure that shows the job streams too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from erpsync.sandbox.settlement import COLUMNS, EU_FORMAT, US_FORMAT

START = datetime(2026, 3, 24, 8, 0, tzinfo=timezone.utc)


def write_file(path: Path, rows: int, eu: bool, seed: int = 7) -> None:
    fmt = EU_FORMAT if eu else US_FORMAT
    rng = random.Random(seed)
    columns = list(COLUMNS) + ["promotion-id"]
    at = {name: i for i, name in enumerate(columns)}
    sid = "98765432101"
    body: list[str] = []
    total = Decimal("0")

    def add(tt: str, am: str, desc: str, amount: Decimal, posted: datetime, order_id: str = "", fid: str = "") -> None:
        nonlocal total
        fields = [""] * len(columns)
        fields[at["settlement-id"]], fields[at["transaction-type"]], fields[at["amount-type"]] = sid, tt, am
        fields[at["amount-description"]], fields[at["amount"]] = desc, fmt.number(amount)
        fields[at["order-id"]], fields[at["fulfillment-id"]] = order_id, fid
        fields[at["posted-date"]], fields[at["posted-date-time"]] = fmt.date(posted), fmt.date_time(posted)
        body.append("\t".join(fields))
        total += amount

    rows_file = path.with_suffix(".rows")  # the amounts first: the summary row needs their total
    with rows_file.open("w", encoding="utf-8") as out:
        n = 0
        while n < rows - 4:
            posted = START + timedelta(seconds=rng.randrange(14 * 86400))
            order_id = f"11{rng.randrange(10)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"
            fid = "AFN" if n % 2 else "MFN"
            price = Decimal(rng.randrange(500, 20000)) / 100
            tax = (price * Decimal("0.08")).quantize(Decimal("0.01"))
            kind = "Refund" if n % 20 == 0 else "Order"
            sign = -1 if kind == "Refund" else 1
            add(kind, "ItemPrice", "Principal", sign * price, posted, order_id, fid)
            add(kind, "ItemPrice", "Tax", sign * tax, posted, order_id, fid)
            add(kind, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -sign * tax, posted, order_id, fid)
            add(kind, "ItemFees", "Commission", -sign * (price * Decimal("0.15")).quantize(Decimal("0.01")), posted,
                order_id, fid)
            n += 4
            if fid == "MFN" and kind == "Order":
                add(kind, "ItemPrice", "Shipping", Decimal("4.99"), posted, order_id, fid)
                n += 1
            if fid == "AFN" and kind == "Order":
                add(kind, "ItemFees", "FBAPerUnitFulfillmentFee", Decimal("-3.22"), posted, order_id, fid)
                n += 1
            if n % 7 == 0:
                add(kind, "Promotion", "Principal", Decimal("-1.00") * sign, posted, order_id, fid)
                n += 1
            if len(body) >= 10_000:
                out.write("\n".join(body) + "\n")
                body.clear()
        end = START + timedelta(days=14)
        add("ServiceFee", "Subscription", "Subscription Fee", Decimal("-39.99"), end)
        add("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", Decimal("-1234.56"), end)
        add("other-transaction", "other-transaction", "Current Reserve Amount", Decimal("-500.00"), end)
        add("other-transaction", "other-transaction", "Previous Reserve Amount Balance", Decimal("450.00"), end)
        out.write("\n".join(body) + "\n")
    summary = [""] * len(columns)
    summary[at["settlement-id"]], summary[at["currency"]] = sid, "EUR" if eu else "USD"
    summary[at["settlement-start-date"]], summary[at["settlement-end-date"]] = fmt.date_time(START), fmt.date_time(end)
    summary[at["deposit-date"]] = fmt.date_time(end + timedelta(days=2))
    summary[at["total-amount"]] = fmt.number(total)
    with path.open("w", encoding="utf-8") as out, rows_file.open(encoding="utf-8") as amounts:
        out.write("\t".join(columns) + "\n" + "\t".join(summary) + "\n")
        shutil.copyfileobj(amounts, out)
    rows_file.unlink()


JOURNAL = """
built = flow.journal(categorised, flow.calendar_month, settings)
seconds = time.perf_counter() - began
assert built.balanced, "journal not balanced"
print(json.dumps({"rows": categorised.rows, "seconds": seconds, "balanced": built.balanced,
                  "batches": [b.period.label for b in built.batches], "lines": len(built.lines),
                  "total": str(built.summary.total_amount),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


REPORT_CHILD = """
import json, resource, shutil, sys, time
from erpsync import config
from erpsync.amazon.client import Reply
from erpsync.amazon.reports import Reports
from erpsync.flows import settlements as flow

class Document:  # stands in for AmazonClient: getReportDocument answers GZIP, the download copies the .gz file
    def call(self, operation, method, path, **kw):
        return Reply(200, {"reportDocumentId": "D1", "url": "file:D1", "compressionAlgorithm": "GZIP"}, None)
    def download_to(self, url, sink):
        with open(sys.argv[1], "rb") as packed:
            shutil.copyfileobj(packed, sink, 1 << 16)

settings = config.Settings()
began = time.perf_counter()
with Reports(Document()).open_document("D1") as lines:
    categorised, _ = flow.read(lines, settings, source="report D1")
""" + JOURNAL

POSTING_CHILD = """
import json, resource, sys, time
from pathlib import Path
from erpsync import config
from erpsync.flows import settlements as flow
from erpsync.runtime.store import Store
from erpsync.sage500 import replica
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway
base = Path(sys.argv[2])
settings = config.Settings(base_dir=base)
engine = make_engine(settings.resolve_url(settings.sage500.url))
replica.seed(engine, items=50)
store = Store.open(settings)
began = time.perf_counter()
with open(sys.argv[1], encoding="utf-8-sig", newline="") as lines:
    categorised, _ = flow.read(lines, settings, source=sys.argv[1], store=store)
parsed = time.perf_counter() - began
built, batches = flow.post(Sage500Gateway(engine), categorised, settings, store)
seconds = time.perf_counter() - began
from erpsync.runtime import views
shown = time.perf_counter()
detail = views.settlement_detail(store, categorised.summary.settlement_id)
views.settlement_row_page(store, categorised.summary.settlement_id)
assert detail.complete and detail.rows == categorised.rows
dashboard = time.perf_counter() - shown
print(json.dumps({"rows": categorised.rows, "seconds": seconds, "read_and_store": parsed, "balanced": built.balanced,
                  "dashboard": dashboard,
                  "batches": list(batches), "lines": len(built.lines), "total": str(built.summary.total_amount),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHILD = """
import json, resource, sys, time
from erpsync import config
from erpsync.flows import settlements as flow
settings = config.Settings()
began = time.perf_counter()
with open(sys.argv[1], encoding="utf-8-sig", newline="") as lines:
    categorised, _ = flow.read(lines, settings, source=sys.argv[1])
""" + JOURNAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--eu", action="store_true", help="decimal commas and day-first dates")
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    parser.add_argument("--post", action="store_true",
                        help="the full import instead of the dry run: row detail into a SQLite state store and the "
                             "batches posted to a fresh SQLite Sage replica (what `settlements import FILE` does)")
    parser.add_argument("--report", action="store_true",
                        help="read the file as the import_settlement job does: a GZIP report document streamed "
                             "through Reports.open_document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "settlement.txt"
        began = time.perf_counter()
        write_file(path, args.rows, args.eu)
        print(f"wrote {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - began:.1f} s")
        if args.report:
            packed = Path(tmp) / "settlement.txt.gz"
            with path.open("rb") as plain, gzip.open(packed, "wb", compresslevel=1) as out:
                shutil.copyfileobj(plain, out, 1 << 20)
            command = [sys.executable, "-c", REPORT_CHILD, str(packed)]
        else:
            command = [sys.executable, "-c", POSTING_CHILD, str(path), tmp] if args.post else \
                [sys.executable, "-c", CHILD, str(path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode:
            sys.exit(result.stderr)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{figures['rows']:,} rows -> balanced journal ({figures['lines']} lines, batches {figures['batches']}, "
          f"total-amount {figures['total']}) in {figures['seconds']:.1f} s "
          f"({figures['rows'] / figures['seconds']:,.0f} rows/s), peak RSS {figures['peak_rss_mb']:.0f} MB "
          f"[targets: < 20 s, < 300 MB]")
    if args.post:
        print(f"(of which reading, categorising and storing the row detail: {figures['read_and_store']:.1f} s; "
              f"posted batches {figures['batches']}); the dashboard's settlement page reads it in "
              f"{figures['dashboard']:.1f} s")


if __name__ == "__main__":
    main()
