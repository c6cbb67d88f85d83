"""The Sage 500 replica: the schema on SQLite or PostgreSQL, its surrogate-key counters, and a seeded company.

``create(engine)`` builds every table (idempotent). ``seed(engine)`` fills a realistic company, deterministic for a
given ``seed``: items with descriptions and units of measure, warehouses MAIN / EAST / FBA with bins (one
excluded from availability) and stock, a price sheet in USD/CAD/GBP/EUR, ship methods, a GL chart of accounts,
one AMAZON customer per marketplace and one customer on hold. :func:`next_keys` is ``spGetNextSurrogateKey``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, Integer, bindparam, insert, inspect, select, update

from erpsync.config import SageTables
from erpsync.errors import ConfigError
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql

# key series handed out by spGetNextSurrogateKey (SOKey comes from 'tsoSalesOrdLog', as Sage does)
SERIES = (
    "tciAddress", "tciContact", "tciShipMethod", "tciUnitMeasure", "tciPaymentTerms", "tarCustomer", "timWarehouse",
    "timWhseBin", "timItem", "tglAccount", "tsoSalesOrdLog", "tsoSOLine", "tsoSOLineDist", "tsoShipment",
    "tsoShipLine", "tsoShipLineDist", "tciBatchLog", "tglPosting", "tglTransaction",
    "StgSession", "tsoSalesOrder.TranNo", "tsoShipment.TranNo",
)

MARKETPLACES = {  # marketplace id -> (CustID, currency, country, customer name)
    "ATVPDKIKX0DER": ("AMAZON-US", "USD", "USA", "Amazon.com (US marketplace)"),
    "A2EUQ1WTGCTBG2": ("AMAZON-CA", "CAD", "CAN", "Amazon.ca (CA marketplace)"),
    "A1F83G8C2ARO7P": ("AMAZON-UK", "GBP", "GBR", "Amazon.co.uk (UK marketplace)"),
    "A1PA6795UKMFR9": ("AMAZON-DE", "EUR", "DEU", "Amazon.de (DE marketplace)"),
}
HOLD_CUSTOMER = "ONHOLD-CO"
WAREHOUSES = (("MAIN", "Main warehouse, Reno NV"), ("EAST", "East warehouse, Columbus OH"),
              ("FBA", "Fulfilled by Amazon (virtual)"))
SHIP_METHODS = (
    ("UPS GROUND", "UPS Ground"), ("UPS 2DAY", "UPS 2nd Day Air"), ("UPS NEXTDAY", "UPS Next Day Air"),
    ("FEDEX GROUND", "FedEx Ground"), ("FEDEX 2DAY", "FedEx 2Day"), ("USPS PRIORITY", "USPS Priority Mail"),
    ("USPS FIRST", "USPS First-Class Package"), ("DHL INTL", "DHL Express Worldwide"), ("AMZ FBA", "Amazon FBA"),
)
UNITS = ("EA", "CS", "PR", "PK", "BX", "RL", "DZ", "ST")
GL_ACCOUNTS = (
    ("1010", "Cash - Operating"), ("1050", "Amazon Clearing"), ("1200", "Accounts Receivable"),
    ("1210", "Amazon Receivable"), ("1260", "Amazon Reserve Held"), ("1400", "Inventory"),
    ("2310", "Sales Tax Payable"), ("2320", "Marketplace Facilitator Tax"), ("4010", "Sales - Amazon"),
    ("4020", "Shipping Income"), ("4030", "Gift Wrap Income"), ("4050", "Promotions and Discounts"),
    ("4060", "Sales Returns and Refunds"), ("4900", "Amazon Reimbursements"), ("5010", "Cost of Goods Sold"),
    ("6110", "Amazon Commission (Referral Fees)"), ("6120", "FBA Fulfillment Fees"), ("6130", "FBA Storage Fees"),
    ("6140", "Amazon Subscription Fee"), ("6150", "Amazon Advertising"), ("6160", "Amazon Other Fees"),
    ("6190", "Amazon Miscellaneous Adjustments"), ("1055", "Amazon Settlement Carried Forward"),
)
FISCAL_YEARS = 5  # the replica's fiscal calendar: calendar months, this many years either side of the seed date
SALES_ACCOUNT = "4010"
CURRENCY_RATES = {"USD": Decimal("1"), "CAD": Decimal("1.36"), "GBP": Decimal("0.79"), "EUR": Decimal("0.92")}

COLORS = (("BLU", "Blue"), ("BLK", "Black"), ("WHT", "White"), ("RED", "Red"), ("GRN", "Green"), ("GRY", "Grey"),
          ("NVY", "Navy"), ("YEL", "Yellow"), ("ORG", "Orange"), ("PNK", "Pink"), ("PUR", "Purple"), ("BRN", "Brown"))
SIZES = (("L", "Large"), ("M", "Medium"), ("S", "Small"), ("XL", "X-Large"), ("XS", "X-Small"), ("XXL", "2X-Large"))
# family code, noun, unit of measure, variant axes, price range (USD)
VOLUMES = (("500", "500 ml"), ("750", "750 ml"), ("1L", "1 l"))
FAMILIES = (
    ("WIDGET", "Widget", "EA", (COLORS, SIZES), (8, 30)),
    ("TSHIRT", "Cotton T-Shirt", "EA", (COLORS, SIZES), (12, 28)),
    ("HOODIE", "Fleece Hoodie", "EA", (COLORS, SIZES), (35, 70)),
    ("JACKET", "Rain Jacket", "EA", (COLORS, SIZES), (60, 140)),
    ("LEGGING", "Sport Leggings", "EA", (COLORS, SIZES[:5]), (25, 55)),
    ("SOCKS", "Crew Socks", "PR", (COLORS, SIZES[:3]), (6, 15)),
    ("GLOVE", "Work Gloves", "PR", (COLORS, SIZES[:4]), (9, 25)),
    ("CAP", "Baseball Cap", "EA", (COLORS, (("SM", "S/M"), ("LXL", "L/XL"))), (14, 30)),
    ("GADGET", "Gadget", "EA", ((("MINI", "Mini"), ("PRO", "Pro"), ("MAX", "Max")), COLORS), (15, 60)),
    ("MUG", "Ceramic Mug", "EA", ((("12OZ", "12 oz"), ("16OZ", "16 oz")), COLORS), (8, 18)),
    ("BOTTLE", "Insulated Bottle", "EA", (VOLUMES, COLORS), (18, 35)),
    ("YOGAMAT", "Yoga Mat", "EA", ((("4MM", "4 mm"), ("6MM", "6 mm"), ("8MM", "8 mm")), COLORS), (20, 45)),
    ("BACKPACK", "Backpack", "EA", ((("20L", "20 l"), ("30L", "30 l")), COLORS), (40, 90)),
    ("TOWEL", "Cotton Towel", "EA", ((("HAND", "hand"), ("BATH", "bath")), COLORS), (9, 25)),
    ("NOTEBOOK", "Dotted Notebook", "EA", ((("A5", "A5"), ("A4", "A4")), COLORS), (5, 14)),
    ("PEN-GEL", "Gel Pens 12-pack", "BX", (COLORS,), (7, 16)),
    ("CABLE-USBC", "USB-C Cable", "EA", ((("1M", "1 m"), ("2M", "2 m"), ("3M", "3 m")), COLORS[1:3]), (9, 22)),
    ("CHARGER", "USB-C Wall Charger", "EA", ((("20W", "20 W"), ("30W", "30 W"), ("65W", "65 W")), COLORS[1:3]),
     (15, 45)),
    ("BATT-AA", "AA Alkaline Batteries", "PK", ((("4PK", "4-pack"), ("8PK", "8-pack"), ("24PK", "24-pack")),),
     (5, 20)),
    ("TAPE-PACK", "Packing Tape", "RL", ((("48MM", "48 mm"), ("72MM", "72 mm")), COLORS[1:3]), (3, 9)),
    ("SCREW-WOOD", "Wood Screws", "BX", ((("6X1", "#6 x 1in"), ("8X1", "#8 x 1in"), ("8X2", "#8 x 2in"),
                                         ("10X3", "#10 x 3in")),), (6, 14)),
    ("LEDBULB", "LED Bulb A19", "CS", ((("40W", "40 W eq."), ("60W", "60 W eq."), ("100W", "100 W eq.")),
                                       (("SW", "soft white"), ("DL", "daylight"))), (14, 30)),
    ("TEABAG", "Green Tea", "DZ", ((("MINT", "mint"), ("LEMON", "lemon"), ("PLAIN", "plain")),), (4, 9)),
)


def catalog() -> list[tuple[str, str, str, tuple[int, int], str]]:
    """Every item the seeder can make: (ItemID, ShortDesc, UnitMeasID, price range, family), in a stable order
    that interleaves families so a small catalog still covers them all."""
    per_family = []
    for code, noun, unit, axes, prices in FAMILIES:
        variants = [((code,), (noun,))]
        for axis in axes:
            variants = [(ids + (vid,), names + (vname,)) for ids, names in variants for vid, vname in axis]
        per_family.append([("-".join(ids), ", ".join(names)[:40], unit, prices, code) for ids, names in variants])
    ordered = []
    for index in range(max(map(len, per_family))):
        ordered += [family[index] for family in per_family if index < len(family)]
    return ordered


def next_keys(conn: Connection, series: str, count: int = 1) -> int:
    """``spGetNextSurrogateKey`` (count 1) / ``spGetNextBlockSurrogateKey``: reserve ``count`` keys, return the
    first. The row lock taken by the UPDATE serialises concurrent writers until commit."""
    taken = conn.execute(sql.take_keys(), {"series": series, "count": count}).scalar()
    if taken is None:
        conn.execute(sql.insert_key(), {"TableName": series, "NextKey": 1 + count})
        return 1
    return taken - count


def _replica_only(engine: Engine) -> None:
    """The replica lives on SQLite or PostgreSQL; a SQL Server is a real Sage database: never built or dropped."""
    if engine.dialect.name == "mssql":
        raise ConfigError(f"refused: {engine.url.render_as_string()} is a SQL Server database (a real Sage 500); the "
                          f"replica is built on SQLite or PostgreSQL only, and nothing was touched")


def create(engine: Engine, tables: SageTables | None = None) -> list[str]:
    """Create every missing table and the key counters; returns the names of the tables created."""
    _replica_only(engine)
    existing = {name.lower() for name in inspect(engine).get_table_names()}
    wanted = s.expected_tables(tables)
    with engine.begin() as conn:
        s.metadata.create_all(conn)
        s.package_table(tables).create(conn, checkfirst=True)
        known = set(conn.execute(select(s.tciSurrogateKey_R.c.TableName)).scalars())
        missing = [{"TableName": name, "NextKey": 1} for name in SERIES if name not in known]
        if missing:
            conn.execute(insert(s.tciSurrogateKey_R), missing)
    return [t.name for t in wanted if t.name.lower() not in existing]


def drop(engine: Engine, tables: SageTables | None = None) -> None:
    _replica_only(engine)
    s.package_table(tables).drop(engine, checkfirst=True)
    s.metadata.drop_all(engine)


@dataclass
class SeedReport:
    company_id: str
    rows: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str, int], None]  # (table, rows) after each table is seeded
SEEDED_TABLES = (
    "tsmCompany", "tciUnitMeasure", "tciPaymentTerms", "tciShipMethod", "tglAccount", "timWarehouse", "timWhseBin",
    "timItem", "timItemDescription", "timInventory", "timWhseBinInvt", "timPriceSheet", "tciAddress", "tciContact",
    "tarCustomer", "tarCustAddr", "tglFiscalPeriod",
)


class _Seeder:
    """Hands out surrogate keys from the counters' current values, and inserts rows table by table."""

    def __init__(self, conn: Connection, company_id: str, rng: random.Random, progress: Progress | None):
        self.conn, self.company_id, self.rng, self.progress = conn, company_id, rng, progress
        self.report = SeedReport(company_id)
        counters = s.tciSurrogateKey_R
        self.next = {name: key for name, key in conn.execute(select(counters.c.TableName, counters.c.NextKey))}
        self.used: dict[str, int] = {}
        self.units: dict[str, int] = {}
        self.ship_methods: dict[str, int] = {}
        self.accounts: dict[str, int] = {}
        self.warehouses: dict[str, int] = {}
        self.bins: list[tuple[str, int, str, int]] = []

    def key(self, series: str) -> int:
        self.used[series] = self.used.get(series, 0) + 1
        return self.next[series] + self.used[series] - 1

    def put(self, table, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(insert(table), rows)
        self.report.rows[table.name] = len(rows)
        if self.progress:
            self.progress(table.name, len(rows))



def seed(engine: Engine, company_id: str = "SOA", items: int = 500, seed: int = 7, *,
         tables: SageTables | None = None, progress: Progress | None = None,
         now: datetime | None = None) -> SeedReport:
    """Create the schema if needed and seed one company. Refuses a company that is already there."""
    _replica_only(engine)
    products = catalog()
    if not 1 <= items <= len(products):
        raise ValueError(f"items must be between 1 and {len(products)}, not {items}")
    create(engine, tables)
    now = now or s.sage_time()
    with engine.begin() as conn:
        if conn.execute(select(s.tsmCompany.c.CompanyID).where(s.tsmCompany.c.CompanyID == company_id)).first():
            raise ConfigError(f"company {company_id} is already seeded in {engine.url.render_as_string()}; "
                              f"use a new database or reset it "
                              f"(erpsync sage500 replica seed --reset)")
        seeder = _Seeder(conn, company_id, random.Random(seed), progress)
        _seed_setup(seeder)
        _seed_items(seeder, products[:items], now)
        _seed_customers(seeder, now)
        _seed_fiscal_periods(seeder, now)
        keys = s.tciSurrogateKey_R  # the counters past the keys the seed used (replica only: not a Sage statement)
        conn.execute(update(keys).where(keys.c.TableName == bindparam("series"))
                     .values(NextKey=keys.c.NextKey + bindparam("count", type_=Integer)),
                     [{"series": name, "count": count} for name, count in seeder.used.items()])
    return seeder.report


def _seed_fiscal_periods(sd: _Seeder, now: datetime) -> None:
    """Calendar months, all open (Status 1), FISCAL_YEARS either side of ``now``."""
    rows = []
    for year in range(now.year - FISCAL_YEARS, now.year + FISCAL_YEARS + 1):
        for month in range(1, 13):
            start = datetime(year, month, 1)
            following = datetime(year + month // 12, month % 12 + 1, 1)
            rows.append(dict(CompanyID=sd.company_id, FiscYear=str(year), FiscPer=month, StartDate=start,
                             EndDate=following - timedelta(seconds=1), Status=1))
    sd.put(s.tglFiscalPeriod, rows)


def _seed_setup(sd: _Seeder) -> None:
    co = sd.company_id
    sd.put(s.tsmCompany, [dict(CompanyID=co, CompanyName="Sierra Outfitters & Accessories", CurrID="USD")])
    sd.units = {uid: sd.key("tciUnitMeasure") for uid in UNITS}
    sd.put(s.tciUnitMeasure, [dict(UnitMeasKey=k, CompanyID=co, UnitMeasID=u) for u, k in sd.units.items()])
    sd.put(s.tciPaymentTerms, [dict(PmtTermsKey=sd.key("tciPaymentTerms"), CompanyID=co, PmtTermsID=t)
                               for t in ("NET30", "PREPAID")])
    sd.ship_methods = {mid: sd.key("tciShipMethod") for mid, _ in SHIP_METHODS}
    sd.put(s.tciShipMethod, [dict(ShipMethKey=sd.ship_methods[mid], CompanyID=co, ShipMethID=mid, ShipMethDesc=desc)
                             for mid, desc in SHIP_METHODS])
    sd.accounts = {no: sd.key("tglAccount") for no, _ in GL_ACCOUNTS}
    sd.put(s.tglAccount, [dict(GLAcctKey=sd.accounts[no], CompanyID=co, GLAcctNo=no, Description=desc,
                               PostingType=1, Status=1) for no, desc in GL_ACCOUNTS])
    sd.warehouses = {wid: sd.key("timWarehouse") for wid, _ in WAREHOUSES}
    sd.put(s.timWarehouse, [dict(WhseKey=sd.warehouses[wid], CompanyID=co, WhseID=wid, Description=desc)
                            for wid, desc in WAREHOUSES])
    bins = [("MAIN", f"A-{aisle:02d}-{shelf:02d}", 0) for aisle in range(1, 5) for shelf in range(1, 4)]
    bins += [("MAIN", "QC-HOLD", 1), ("EAST", "E-01-01", 0), ("EAST", "E-01-02", 0), ("FBA", "FBA", 0)]
    sd.bins = [(wid, sd.key("timWhseBin"), bid, excl) for wid, bid, excl in bins]
    sd.put(s.timWhseBin, [dict(WhseBinKey=k, WhseKey=sd.warehouses[wid], WhseBinID=bid, Type=1, ExclFromAvail=excl)
                          for wid, k, bid, excl in sd.bins])


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)) + Decimal("0.99")


def _seed_items(sd: _Seeder, products, now: datetime) -> None:
    rng, co = sd.rng, sd.company_id
    items, descs, inventory, stock, prices = [], [], [], [], []
    main_bins = [k for wid, k, bid, excl in sd.bins if wid == "MAIN" and not excl]
    hold_bin = next(k for wid, k, bid, excl in sd.bins if excl)
    east_bins = [k for wid, k, bid, excl in sd.bins if wid == "EAST"]
    fba_bin = next(k for wid, k, bid, excl in sd.bins if wid == "FBA")
    since = datetime(2020, 1, 1)
    for item_id, short, unit, (low, high), family in products:
        key = sd.key("timItem")
        items.append(dict(ItemKey=key, CompanyID=co, ItemID=item_id, ItemType=5, Status=1,
                          StockUnitMeasKey=sd.units[unit]))
        descs.append(dict(ItemKey=key, LanguageID=1033, ShortDesc=short,
                          LongDesc=f"{short} ({family.lower()} line), sold per {unit}"))
        inventory += [dict(ItemKey=key, WhseKey=w, MinStockQty=Decimal(rng.choice((0, 5, 10))))
                      for w in sd.warehouses.values()]
        on_hand = {rng.choice(main_bins): rng.choice((0, 0) + tuple(range(5, 250, 5)))}
        if rng.random() < 0.5:
            on_hand[rng.choice(east_bins)] = rng.randint(0, 80)
        if rng.random() < 0.3:
            on_hand[fba_bin] = rng.randint(1, 60)
        if rng.random() < 0.1:
            on_hand[hold_bin] = rng.randint(1, 5)
        stock += [dict(WhseBinKey=b, ItemKey=key, QtyOnHand=Decimal(q)) for b, q in on_hand.items()]
        usd = _price(rng, low, high)
        changes = [(since, usd)]
        if rng.random() < 0.05:  # a price change already in force, and one announced for next month
            changes += [(now - timedelta(days=30), usd + 2), (now + timedelta(days=30), usd + 5)]
        for currency, rate in CURRENCY_RATES.items():
            for effective, price in changes:
                local = (price * rate).quantize(Decimal("1")) - Decimal("0.01") if rate != 1 else price
                prices.append(dict(ItemKey=key, WhseKey=sd.warehouses["MAIN"], CurrID=currency,
                                   EffectiveDate=effective, ListPrice=local, Sheet2Price=local * Decimal("0.9")))
    sd.put(s.timItem, items)
    sd.put(s.timItemDescription, descs)
    sd.put(s.timInventory, inventory)
    sd.put(s.timWhseBinInvt, stock)
    sd.put(s.timPriceSheet, prices)


def _seed_customers(sd: _Seeder, now: datetime) -> None:
    customers = [(cust, name, currency, country, market) for market, (cust, currency, country, name)
                 in MARKETPLACES.items()]
    customers.append((HOLD_CUSTOMER, "On Hold Trading Co. (credit hold)", "USD", "USA", None))
    addresses, contacts, rows, cust_addrs = [], [], [], []
    for cust_id, name, currency, country, market in customers:
        addr, contact, cust = sd.key("tciAddress"), sd.key("tciContact"), sd.key("tarCustomer")
        addresses.append(dict(AddrKey=addr, AddrName=name[:40], AddrLine1="410 Terry Ave N", City="Seattle",
                              StateID="WA", CountryID=country, PostalCode="98109"))
        contacts.append(dict(CntctKey=contact, CntctOwnerKey=cust, EntityType=501, Name="Accounts Payable",
                             EMailAddr=f"ap+{cust_id.lower()}@example.com"))
        rows.append(dict(CustKey=cust, CompanyID=sd.company_id, CustID=cust_id, CustName=name[:40], Status=1,
                         Hold=1 if market is None else 0, PrimaryAddrKey=addr, DfltBillToAddrKey=addr,
                         DfltShipToAddrKey=addr, PrimaryCntctKey=contact, DfltSalesAcctKey=sd.accounts[SALES_ACCOUNT],
                         ShipPriority=3, UserFld1=market, CreateDate=now, CreateType=1, CreateUserID="erpsync"))
        cust_addrs.append(dict(AddrKey=addr, CustKey=cust, CustAddrID="PRIMARY",
                               ShipMethKey=sd.ship_methods["UPS GROUND"], WhseKey=sd.warehouses["MAIN"],
                               FreightMethod=2, CurrID=currency, LanguageID=1033))
    sd.put(s.tciAddress, addresses)
    sd.put(s.tciContact, contacts)
    sd.put(s.tarCustomer, rows)
    sd.put(s.tarCustAddr, cust_addrs)
