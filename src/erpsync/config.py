"""Settings: ``erpsync.toml`` for everything but secrets; secrets only from the environment or a secrets file.

Lookup: ``--config PATH``, else ``$ERPSYNC_CONFIG``, else ``./erpsync.toml``; a missing file means all defaults,
which run everything on one machine (SQLite files under ``.erpsync/``, the built-in sandbox as Amazon).
Relative paths in URLs are resolved against the directory of the config file.

Secrets (:class:`Secrets`) come from environment variables named ``ERPSYNC_<NAME>`` or from the TOML secrets file
named by ``$ERPSYNC_SECRETS_FILE`` (default ``.erpsync/secrets.toml``); the environment wins. They are
``SecretStr``: their repr, str and the logs show ``**********``.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from erpsync.errors import ConfigError

DEFAULT_PATH = "erpsync.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateSettings(Section):
    url: str = "sqlite:///.erpsync/state.db"


class QueueSettings(Section):
    # sqlite:///path (SqliteHuey), redis://host:port/db (RedisHuey), postgresql://... (PostgreSQL storage)
    url: str = "sqlite:///.erpsync/queue.db"
    name: str = "erpsync"
    workers: int = 2
    max_retries: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    # a pending job that is not running and whose message is neither queued nor scheduled this long after it was
    # due was lost (a process killed between queueing and a worker): the scheduler re-queues it
    recover_after_seconds: float = Field(default=60.0, gt=0)
    # a running job holds a lease its worker renews every third of it; an expired lease means the worker died,
    # and the scheduler re-queues the job (a job that runs longer, heartbeat alive, is never run twice)
    lease_seconds: float = Field(default=30.0, gt=0)
    job_modules: list[str] = Field(default_factory=list)  # extra modules registering jobs (erpsync's own: built in)


class RateLimitSettings(Section):
    enabled: bool = True
    # "sqlite:///.erpsync/ratelimit.db" (one machine) or "redis://127.0.0.1:6379/0" (shared by every worker)
    store_url: str = "sqlite:///.erpsync/ratelimit.db"
    circuit_failures: int = 5
    circuit_reset_seconds: float = 30.0


class NotificationSettings(Section):
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # only for a test endpoint (moto); None means AWS
    sqs_region: str = "us-east-1"
    webhook_header: str = "X-Erpsync-Token"  # the header whose value must equal secrets.webhook_token


class AmazonSettings(Section):
    # "sandbox" starts/uses the built-in simulator; "na" | "eu" | "fe" are Amazon's regions; or a full https:// URL
    endpoint: str = "sandbox"
    sandbox_url: str | None = None  # where a running sandbox listens; None: the demo starts one in-process
    lwa_url: str | None = None  # token endpoint override (the sandbox serves /auth/o2/token)
    client_id: str = "amzn1.application-oa2-client.erpsync-sandbox"
    seller_id: str = "A1SANDBOXSELLER"
    marketplace_ids: list[str] = Field(default_factory=lambda: ["ATVPDKIKX0DER"])
    timeout_seconds: float = 30.0
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)


class SageTables(Section):
    """Site-specific names the replica chooses by default (the real tracking table is not standard Sage)."""

    package_table: str = "tsoShipmentPkg_R"
    package_tracking_column: str = "TrackingNo"


class Sage500Settings(Section):
    mode: Literal["replica", "procedure"] = "replica"
    # replica: sqlite:///.erpsync/sage500.db or postgresql://...; procedure: mssql+pymssql://user@host/db
    url: str = "sqlite:///.erpsync/sage500.db"
    company_id: str = "SOA"
    user_id: str = "erpsync"
    tables: SageTables = Field(default_factory=SageTables)
    # the Sage SQL Server's clock (IANA name, e.g. "America/Chicago"): Sage stores local server time
    timezone: str = "UTC"
    login_timeout_seconds: int = Field(15, gt=0)  # connecting (pymssql login_timeout; PostgreSQL connect_timeout)
    query_timeout_seconds: int = Field(120, gt=0)  # one statement (pymssql timeout; PostgreSQL statement_timeout)
    lock_timeout_ms: int = Field(10_000, gt=0)  # a lock wait (SET LOCK_TIMEOUT; lock_timeout; SQLite busy timeout)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(value).key
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. 'America/Chicago', 'UTC'); set the "
                             f"time zone of the Sage SQL Server") from None


class OrderSettings(Section):
    pending: Literal["skip", "hold"] = "skip"  # Pending orders: wait for Unshipped, or write them on hold
    afn: Literal["skip", "shipped"] = "skip"  # FBA orders: ignore, or write as already shipped from fba_warehouse
    sync_overlap_minutes: int = 10
    sync_interval_seconds: int = 300
    # where the very first sync_window starts: hours back from its run, or a timezone-aware ISO timestamp
    sync_start: float | datetime = 24.0
    backlog_threshold: int = 20  # above this many queued order reads, switch to searchOrders pages
    shipment_scan_seconds: int = 120
    total_tolerance: Decimal = Field(default=Decimal("0.00"), ge=0)  # |Sage total - Amazon total| allowed
    max_line_quantity: int = Field(default=10_000, ge=1)  # units of one order item above which an order is refused

    @field_validator("sync_start")
    @classmethod
    def _start_known(cls, value: float | datetime) -> float | datetime:
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise ValueError(f"sync_start {value.isoformat()} has no timezone; write it in UTC with a Z "
                             f"(e.g. \"2026-03-01T00:00:00Z\") or give the hours back as a number")
        if not isinstance(value, datetime) and value < 0:
            raise ValueError(f"sync_start {value} hours back: give a number of hours >= 0 or an ISO timestamp")
        return value


class SkuRule(Section):
    """A SellerSKU rewrite tried when neither an alias nor the SKU itself names a Sage item (``re.sub``)."""

    pattern: str
    replace: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"sku_rules pattern {value!r} is not a valid regular expression: {exc}") from None
        return value


class CarrierSettings(Section):
    """How Amazon's confirmShipment names the carrier of one Sage ShipMethID."""

    carrier_code: str = Field(min_length=1)  # Amazon's code (UPS, USPS, FedEx, DHL, ...) or "Other"
    carrier_name: str | None = None  # required with "Other"
    shipping_method: str | None = None

    @model_validator(mode="after")
    def _other_named(self) -> "CarrierSettings":
        if self.carrier_code == "Other" and not self.carrier_name:
            raise ValueError('carrier_name is required when carrier_code is "Other"')
        return self


class SettlementMapping(Section):
    """``[mapping.settlement]``: where settlement amounts go in the GL (docs/settlements.md)."""

    deposit: str = "1010"  # the payout (total-amount): bank, or a clearing account the bank feed matches
    carried_forward: str = "1055"  # joins the batches of a settlement that spans fiscal periods; nets to zero
    receivable: str = "1210"  # the Amazon customers' receivable: cleared for orders Sage invoiced
    # fulfillment channel (fulfillment-id) -> "receivable" (Sage invoiced the order: the order flow wrote it) or
    # "revenue" (not in Sage). Unset channels: MFN receivable; AFN receivable when [orders] afn = "shipped",
    # otherwise revenue. A channel named nowhere (an empty fulfillment-id) fails closed.
    channels: dict[str, Literal["receivable", "revenue"]] = Field(default_factory=dict)
    # "transaction-type/amount-type/amount-description" (or a shorter prefix) -> GLAcctNo, over the defaults
    accounts: dict[str, str] = Field(default_factory=dict)
    sync_interval_seconds: int = Field(default=3600, gt=0)
    sync_since_days: int = Field(default=90, ge=1, le=90)  # how far back the first sync looks (Amazon keeps 90)


class MappingSettings(Section):
    """Pure rules: see docs/mapping.md. Every table can be extended in erpsync.toml."""

    sku_aliases: dict[str, str] = Field(default_factory=dict)  # SellerSKU -> ItemID
    sku_rules: list[SkuRule] = Field(default_factory=list)  # [{pattern = regex, replace = template}], in order
    # marketplace -> Sage CustID: one customer per marketplace (defaults: the replica's US, CA, UK and DE customers)
    customers: dict[str, str] = Field(default_factory=lambda: {
        "ATVPDKIKX0DER": "AMAZON-US", "A2EUQ1WTGCTBG2": "AMAZON-CA", "A1F83G8C2ARO7P": "AMAZON-UK",
        "A1PA6795UKMFR9": "AMAZON-DE"})
    warehouses: dict[str, str] = Field(default_factory=lambda: {"MFN": "MAIN", "AFN": "FBA"})
    # Sage ShipMethID -> Amazon carrier, merged over mapping.DEFAULT_CARRIERS
    carriers: dict[str, CarrierSettings] = Field(default_factory=dict)
    # Amazon ship service level or its category -> Sage ShipMethID, merged over mapping.DEFAULT_SHIP_METHODS
    ship_methods: dict[str, str] = Field(default_factory=dict)
    # ISO 3166 alpha-2 -> Sage CountryID where the site differs from ISO alpha-3 (e.g. {"GB" = "UK"})
    countries: dict[str, str] = Field(default_factory=dict)
    # Sage column (e.g. "UserFld2") -> Amazon attribute (e.g. "marketplace_id", "is_prime")
    user_fields: dict[str, str] = Field(default_factory=dict)
    gl_accounts: dict[str, str] = Field(default_factory=dict)
    settlement: SettlementMapping = Field(default_factory=SettlementMapping)
    # Sage item field ("ShortDesc", "LongDesc", or a timItem column such as "UserFld1") -> Amazon listing attribute
    # (e.g. "item_name", "brand"), sent in the feeds
    attributes: dict[str, str] = Field(default_factory=dict)


class QualitySettings(Section):
    """Data-quality checks (docs/mapping.md §9): an order failing one is written on hold with every reason, never
    refused. ``checks``: which run — "label" (a ship-to that does not fit Sage's address columns), "price" (unit
    price against the Sage price sheet), "quantity" (against the SKU's recent Sage orders), "ship_to" (a US
    ship-to usaddress reads as ambiguous)."""

    checks: list[Literal["label", "price", "quantity", "ship_to"]] = Field(
        default_factory=lambda: ["label", "price", "quantity", "ship_to"])
    hold_reason: str = Field(default="Amazon: review", min_length=1, max_length=20)  # tsoSalesOrder.HoldReason(20)
    price_tolerance_percent: Decimal = Field(default=Decimal("25"), ge=0)  # |Amazon − Sage| / Sage, in percent
    quantity_mad_factor: Decimal = Field(default=Decimal("8"), gt=0)  # above median + factor × max(1.4826·MAD, 1)
    quantity_min_history: int = Field(default=10, ge=3)  # fewer earlier Sage orders of the item: no verdict
    quantity_history_days: int = Field(default=365, ge=1)  # how far back the Sage orders are read


class InventorySettings(Section):
    """Stock to Amazon (docs/inventory.md)."""

    # the worker's periodic scan, the scan after order imports and the daily reconciliation (the commands work anyway)
    enabled: bool = False
    warehouses: list[str] = Field(default_factory=lambda: ["MAIN"], min_length=1)  # Sage WhseIDs that ship MFN
    safety_stock: Decimal = Field(default=Decimal("0"), ge=0)  # units held back from every SKU
    safety_stock_by_sku: dict[str, Decimal] = Field(default_factory=dict)  # Sage ItemID -> units (replaces global)
    include: list[str] = Field(default_factory=list)  # Sage ItemIDs or patterns ("TENT-*") sold on Amazon; []: all
    exclude: list[str] = Field(default_factory=list)  # Sage ItemIDs or patterns never sent to Amazon
    product_type: str = "PRODUCT"
    scan_interval_seconds: float = Field(default=900.0, gt=0)  # the periodic inventory_scan
    debounce_seconds: float = Field(default=60.0, ge=0)  # a scan this long after an order import touched stock
    feed_poll_seconds: float = Field(default=60.0, gt=0)  # between getFeed calls (Amazon's seconds)
    feed_stuck_minutes: float = Field(default=120.0, gt=0)  # IN_QUEUE/IN_PROGRESS longer: flagged, resubmitted once
    max_messages: int = Field(default=25_000, ge=1, le=25_000)  # messages per JSON_LISTINGS_FEED
    reconcile_interval_seconds: float = Field(default=86_400.0, gt=0)  # the daily reconciliation


class PriceSettings(Section):
    """Prices to Amazon from a Sage price sheet (docs/inventory.md)."""

    enabled: bool = True
    sheet: Literal["ListPrice", "Sheet2Price", "Sheet3Price", "Sheet4Price"] = "ListPrice"
    warehouse: str | None = "MAIN"  # whose price sheet; None: the first warehouse that prices the item
    markup_percent: Decimal = Decimal("0")  # added to the sheet price (negative: a discount)
    round_to: Decimal = Field(default=Decimal("0.01"), gt=0)  # rounded half-up to a multiple of this
    ending: Decimal | None = Field(default=None, ge=0, lt=1)  # e.g. 0.99: the next price ending in .99
    guard_percent: Decimal = Field(default=Decimal("30"), gt=0)  # a larger change from the acknowledged price is held
    minimum_percent: Decimal | None = Field(default=None, ge=0, lt=100)  # minimum_seller_allowed_price = price - x%
    maximum_percent: Decimal | None = Field(default=None, ge=0)  # maximum_seller_allowed_price = price + x%


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8765
    metrics_public: bool = False  # True: GET /metrics without the API token (a scraper on a private network)
    timezone: str = "UTC"  # the site's IANA zone: the dashboard shows times in it
    cookie_secure: bool = True  # the session cookie only travels over HTTPS (browsers exempt http://127.0.0.1)
    session_hours: float = Field(default=12.0, gt=0)  # a login lasts this long
    login_attempts: int = Field(default=5, ge=1)  # failed logins allowed per user name and per client ...
    login_window_seconds: int = Field(default=900, ge=1)  # ... within this window; then 429 until it passes

    @field_validator("timezone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"[web] timezone {value!r} is not an IANA zone name (e.g. \"America/Chicago\")") from None
        return value


class PiiSettings(Section):
    """Buyer data kept in the state store (names, addresses, phones, e-mails) is redacted this long after the order
    shipped, was cancelled or was skipped (Amazon's Data Protection Policy: 30 days after shipment)."""

    retention_days: float = Field(default=30.0, gt=0)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)  # how often a worker's schedule runs the purge


class SandboxSettings(Section):
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    time_scale: float = 1.0
    seed: int = 7


class Secrets(Section):
    lwa_client_secret: SecretStr = SecretStr("sandbox-client-secret")
    lwa_refresh_token: SecretStr = SecretStr("Atzr|sandbox-refresh-token")
    sage_password: SecretStr | None = None
    webhook_token: SecretStr | None = None
    api_token: SecretStr | None = None  # web dashboard / API
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None


class Settings(Section):
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    state: StateSettings = Field(default_factory=StateSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    amazon: AmazonSettings = Field(default_factory=AmazonSettings)
    sage500: Sage500Settings = Field(default_factory=Sage500Settings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    prices: PriceSettings = Field(default_factory=PriceSettings)
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    def resolve_url(self, url: str) -> str:
        """Make ``sqlite:///relative/path`` absolute against ``base_dir`` and create its directory."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            path = (self.base_dir / url[len(prefix):]).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
        if url.startswith(prefix + "/"):
            Path(url[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)
        return url

    @property
    def data_dir(self) -> Path:
        return self.base_dir / ".erpsync"


SECRET_NAMES = tuple(Secrets.model_fields)


def load_secrets(base_dir: Path, environ: dict[str, str] | None = None) -> Secrets:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, str] = {}
    secrets_file = Path(environ.get("ERPSYNC_SECRETS_FILE", base_dir / ".erpsync" / "secrets.toml"))
    if secrets_file.exists():
        try:
            data = tomllib.loads(secrets_file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"secrets file {secrets_file} is not valid TOML: {exc}") from None
        unknown = set(data) - set(SECRET_NAMES)
        if unknown:
            raise ConfigError(f"secrets file {secrets_file} has unknown keys {sorted(unknown)}; "
                              f"allowed: {', '.join(SECRET_NAMES)}")
        values.update({k: str(v) for k, v in data.items()})
    for name in SECRET_NAMES:
        env_value = environ.get(f"ERPSYNC_{name.upper()}")
        if env_value:
            values[name] = env_value
    return Secrets.model_validate(values)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("ERPSYNC_CONFIG") or DEFAULT_PATH)


def load(path: str | os.PathLike | None = None) -> Settings:
    """Read the config file (missing: defaults) and the secrets. Errors name the file and the bad key."""
    file = config_path(path)
    data: dict = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        if "secrets" in data:
            raise ConfigError(f"{file}: secrets do not belong in the config file; set ERPSYNC_<NAME> "
                              f"environment variables or use the secrets file")
    base_dir = file.resolve().parent
    try:
        settings = Settings.model_validate({**data, "base_dir": base_dir})
    except Exception as exc:  # pydantic.ValidationError
        raise ConfigError(f"{file}: {exc}") from None
    return settings.model_copy(update={"secrets": load_secrets(base_dir)})


TEMPLATE = '''\
# erpsync configuration. Every key is optional: the defaults run everything on this machine
# (SQLite files under .erpsync/, the built-in SP-API sandbox as Amazon, a SQLite Sage 500 replica).
# Secrets never go here: set ERPSYNC_LWA_CLIENT_SECRET, ERPSYNC_LWA_REFRESH_TOKEN, ERPSYNC_SAGE_PASSWORD,
# ERPSYNC_WEBHOOK_TOKEN, ERPSYNC_API_TOKEN in the environment, or put them in .erpsync/secrets.toml.

[state]
# Where erpsync keeps its own state (inbox, order journal, cursors, dead letters).
# PostgreSQL: "postgresql+psycopg://erpsync@127.0.0.1/erpsync"
url = "sqlite:///.erpsync/state.db"

[queue]
# Job queue: a SQLite file on one machine; "redis://127.0.0.1:6379/0" or "postgresql://..." to scale out.
url = "sqlite:///.erpsync/queue.db"
workers = 2
max_retries = 8
# A running job holds a lease its worker renews every third of it; once a lease expires (the worker died),
# the scheduler queues the job again. A longer lease: a killed worker's jobs wait longer before they run again.
lease_seconds = 30

[amazon]
# "sandbox" (built-in simulator), "na", "eu", "fe", or a full https:// endpoint.
endpoint = "sandbox"
seller_id = "A1SANDBOXSELLER"
marketplace_ids = ["ATVPDKIKX0DER"]
client_id = "amzn1.application-oa2-client.erpsync-sandbox"

[amazon.rate_limit]
# Token buckets per (seller, operation), shared by all workers: SQLite file here, or "redis://..."
enabled = true
store_url = "sqlite:///.erpsync/ratelimit.db"

[amazon.notifications]
# ORDER_CHANGE from SQS (leave empty to rely on the webhook and the polling safety net)
# sqs_queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/erpsync-orders"

[sage500]
# "replica": the built-in Sage 500 replica (SQLite or PostgreSQL); "procedure": a real Sage 500 on SQL Server
# through spSOapiSalesOrdIns, e.g. url = "mssql+pymssql://erpsync@sqlhost/MAS500_app"
mode = "replica"
url = "sqlite:///.erpsync/sage500.db"
company_id = "SOA"
# the time zone of the Sage SQL Server's clock (Sage stores local server time), an IANA name: "America/Chicago"
timezone = "UTC"
# seconds to connect and per statement; milliseconds a statement waits for a lock before it is retried later
login_timeout_seconds = 15
query_timeout_seconds = 120
lock_timeout_ms = 10000

[orders]
pending = "skip"     # Pending orders: "skip" until Unshipped, or "hold" to write them on hold
afn = "skip"         # FBA orders: "skip", or "shipped" to write them as shipped from the FBA warehouse
sync_overlap_minutes = 10
# where the very first sync window reads from: hours back (default 24), or a timestamp such as
# sync_start = "2026-03-01T00:00:00Z" to import every order updated since a go-live date
sync_start = 24
total_tolerance = "0.00"   # the Sage order total must equal Amazon's to the cent; raise only with reason
max_line_quantity = 10000  # an order item for more units is refused (dead letter), never written to Sage

[mapping]
# Every rule is explained in docs/mapping.md.
# SellerSKU -> Sage ItemID when they differ (tried first; then the SKU itself, ignoring case; then sku_rules)
sku_aliases = {}
# regex rewrites tried in order until one gives a Sage item, e.g. strip a prefix or a suffix:
# sku_rules = [{ pattern = "^AMZ-", replace = "" }, { pattern = "-FBA$", replace = "" }]
# marketplace -> Sage customer (one customer per marketplace)
customers = { ATVPDKIKX0DER = "AMAZON-US", A2EUQ1WTGCTBG2 = "AMAZON-CA", A1F83G8C2ARO7P = "AMAZON-UK", A1PA6795UKMFR9 = "AMAZON-DE" }
# fulfillment channel -> Sage warehouse
warehouses = { MFN = "MAIN", AFN = "FBA" }
# Amazon ship service level or category -> Sage ShipMethID (added to the built-in table)
# ship_methods = { NextDay = "FEDEX PRIORITY", "Std US D2D Dom" = "UPS GROUND" }
# Sage ShipMethID -> Amazon carrier for shipment confirmations (added to the built-in table)
# carriers = { "LOCAL" = { carrier_code = "Other", carrier_name = "Metro Couriers" } }
# ISO country -> Sage CountryID where the site does not use ISO alpha-3 ("USA", "GBR")
# countries = { GB = "UK" }
# Sage user fields filled from Amazon attributes (15 characters; Line.UserFld1 is the OrderItemId)
# user_fields = { UserFld2 = "marketplace_id", UserFld3 = "is_prime", "Line.UserFld2" = "asin" }
# Sage item fields -> Amazon listing attributes, sent with stock and prices (docs/inventory.md)
# attributes = { ShortDesc = "item_name", UserFld1 = "brand" }   # descriptions, or any timItem column (user fields)

[inventory]
# Stock to Amazon: Σ bins of these warehouses - open Sage orders - Amazon orders not yet in Sage - safety stock.
# enabled: the worker scans every scan_interval_seconds and after order imports, and reconciles daily
enabled = false
# include = ["TENT-*", "WIDGET-BLU-L"]   # the Sage items sold on Amazon (default: every active item)
warehouses = ["MAIN"]
safety_stock = 0
# safety_stock_by_sku = { "TENT-2P" = 5 }
# exclude = ["GIFT-CARD"]
feed_stuck_minutes = 120

[prices]
# Prices to Amazon from a Sage price sheet; a change over guard_percent from the last sent price is held
sheet = "ListPrice"
markup_percent = 0
guard_percent = 30
# ending = 0.99

[quality]
# Orders that look wrong are written to Sage ON HOLD with every reason (erpsync orders preview shows them), never
# refused: "label" a ship-to too long for Sage's address lines, "price" a unit price more than
# price_tolerance_percent away from the Sage price sheet, "quantity" far above the item's recent Sage orders,
# "ship_to" a US address the parser reads as ambiguous. docs/mapping.md section 9.
checks = ["label", "price", "quantity", "ship_to"]
hold_reason = "Amazon: review"    # Sage's HoldReason (20 characters); release the hold in Sage once checked
price_tolerance_percent = "25"
quantity_mad_factor = "8"         # flag above median + factor x max(1.4826 x MAD, 1) of earlier orders
quantity_min_history = 10         # no verdict with fewer earlier Sage orders of the item
quantity_history_days = 365

[mapping.settlement]
# Settlement reports into the GL (docs/settlements.md). The payout lands on `deposit`; a settlement that spans two
# fiscal periods posts one batch per period, joined through `carried_forward` (it nets to zero).
deposit = "1010"
carried_forward = "1055"
receivable = "1210"
# Orders Sage invoiced clear `receivable`; orders not in Sage post to revenue. Default: MFN = "receivable",
# AFN = "revenue" while [orders] afn = "skip" ("receivable" when "shipped"), so revenue is never counted twice.
# channels = { MFN = "receivable", AFN = "revenue" }
# "transaction-type/amount-type/amount-description" -> GL account, over the built-in table; an amount with no
# account fails closed (dead letter, nothing posted): add it here and replay the dead letter.
# accounts = { "other-transaction/other-transaction/Vine Enrollment Fee" = "6160" }

[web]
host = "127.0.0.1"
port = 8765
# The dashboard and API need a login (erpsync users add NAME) or ERPSYNC_API_TOKEN as "Authorization: Bearer".
# metrics_public = false   # true: /metrics without the token
# timezone = "UTC"         # the site's zone for times on the dashboard, e.g. "America/Chicago"
# cookie_secure = true     # false only behind plain HTTP on a network you trust

[pii]
# Buyer names, addresses, phones and e-mails in the state store are redacted this many days after the order
# shipped (or was cancelled); erpsync pii purge runs it now, workers run it every purge_interval_seconds.
retention_days = 30
'''


def write_template(path: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    file = config_path(path)
    if file.exists() and not force:
        raise ConfigError(f"{file} already exists; use --force to overwrite it")
    file.write_text(TEMPLATE)
    (file.resolve().parent / ".erpsync").mkdir(exist_ok=True)
    return file
