"""Throttler: one token bucket per (seller, operation), shared by every worker and process.

Buckets are pyrate-limiter ``StateBucket`` s running its ``TokenBucket`` (GCRA) algorithm: one timestamp per
bucket, atomic read-modify-write in the store. The store is Redis (pyrate-limiter's ``RedisStateStore``, a Lua
script) when ``store_url`` is ``redis://…``, else a SQLite file (:class:`SqliteStateStore`, ``BEGIN IMMEDIATE``
transactions: safe across processes on one machine).

* Seeded from Amazon's usage plans (:data:`USAGE_PLANS`), × ``time_scale`` for the sandbox.
* Run a little under the plan (:data:`SAFETY` of its rate; a reserve of burst worth :data:`JITTER_SECONDS`, at
  least one token) so requests that reach Amazon slightly out of order still find a token there.
* ``x-amzn-RateLimit-Limit`` lowers a bucket's rate (never above the plan); the rate lives in the store too, so
  every process slows down together.
* A call that would wait raises :class:`errors.RateLimited` with the wait: workers never sleep on a bucket.
* A 429 empties the bucket (Amazon's is empty) and returns a backoff with jitter for :class:`errors.Throttled`.

pyrate-limiter notes: ``Limiter.try_acquire(blocking=False)`` answers a bare False, so the buckets are used
directly (``put_decision`` carries the wait); its SQLite bucket only runs window algorithms, hence our state
store; ``Rate`` takes whole units per whole milliseconds, so a rate r is written as 1000 units per 10⁶/r ms.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyrate_limiter import Rate, RateItem, RedisStateStore, StateBucket, StateStore, TokenBucket, WallClock

from erpsync.errors import ConfigError, RateLimited, Retryable

# operationId -> (requests per second, burst): Amazon's default usage plans (spapi-notes §4). Orders v0 getOrder
# shares its operationId with v2026 getOrder: it is "getOrderV0" here.
USAGE_PLANS: dict[str, tuple[float, int]] = {
    # Orders v2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    # Orders v0
    "getOrders": (0.0167, 20),
    "getOrderV0": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderItemsBuyerInfo": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "updateShipmentStatus": (5.0, 15),
    # Tokens
    "createRestrictedDataToken": (1.0, 10),
    # Feeds 2021-06-30
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeeds": (0.0222, 10),
    "cancelFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    # Reports 2021-06-30
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReports": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
    "cancelReport": (0.0222, 10),
    # Notifications v1 (every operation)
    "createSubscription": (1.0, 5),
    "getSubscription": (1.0, 5),
    "createDestination": (1.0, 5),
    "getDestinations": (1.0, 5),
    "deleteDestination": (1.0, 5),
    # Listings Items 2021-08-01
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "putListingsItem": (5.0, 10),
    # FBA Inventory v1
    "getInventorySummaries": (2.0, 2),
}

SAFETY = 0.98  # fraction of the plan's rate we use
JITTER_SECONDS = 0.05  # requests may reach Amazon this much out of the order we admitted them: keep tokens for it
RATE_CACHE_SECONDS = 1.0  # how long a process trusts its copy of a bucket's shared rate
MAX_BACKOFF_SECONDS = 900.0


def _rate(per_second: float, burst: int) -> Rate:
    return Rate(1000, max(1, round(1_000_000 / per_second)), burst=burst)


def effective_burst(rate: float, burst: int) -> int:
    """The burst we allow ourselves: Amazon's less a reserve (one token, or what ``JITTER_SECONDS`` is worth)."""
    return max(1, burst - max(1, math.ceil(rate * JITTER_SECONDS)))


class SqliteStateStore(StateStore):
    """pyrate-limiter state of one bucket in a SQLite file; each check is one ``BEGIN IMMEDIATE`` transaction."""

    default_clock = WallClock()

    def __init__(self, db: SqliteFile, key: str):
        self.db, self.key = db, key

    def _load(self, conn: sqlite3.Connection, algorithm, rates) -> tuple:
        row = conn.execute("SELECT state FROM bucket_state WHERE key = ?", (self.key,)).fetchone()
        values = row[0].split(",") if row else []
        return algorithm.decode(values) if len(values) == len(rates) else algorithm.initial(rates)

    def check(self, algorithm, rates, now, weight):
        with self.db.transaction() as conn:
            state, decision = algorithm.step(rates, self._load(conn, algorithm, rates), now, weight)
            if decision.allowed:
                conn.execute("INSERT INTO bucket_state (key, state) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                             (self.key, ",".join(str(value) for value in state)))
            return decision

    def read(self, algorithm, rates):
        with self.db.transaction() as conn:
            return self._load(conn, algorithm, rates)

    def reset(self) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM bucket_state WHERE key = ?", (self.key,))


class SqliteFile:
    """One connection per process (reopened after a fork), serialised by a thread lock."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            for attempt in range(50):  # processes opening a new file together: switching to WAL may be refused
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("CREATE TABLE IF NOT EXISTS bucket_state (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
                    conn.execute("CREATE TABLE IF NOT EXISTS bucket_rate (key TEXT PRIMARY KEY, rate REAL NOT NULL)")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.02)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get_rate(self, key: str) -> float | None:
        with self.transaction() as conn:
            row = conn.execute("SELECT rate FROM bucket_rate WHERE key = ?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def set_rate(self, key: str, rate: float) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO bucket_rate (key, rate) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET rate = excluded.rate", (key, rate))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class _RedisRates:
    def __init__(self, client):
        self.client = client

    def get_rate(self, key: str) -> float | None:
        value = self.client.get(key)
        return None if value is None else float(value)

    def set_rate(self, key: str, rate: float) -> None:
        self.client.set(key, repr(rate), ex=86_400)

    def close(self) -> None:
        self.client.close()


class _Bucket:
    """One (seller, operation): its pyrate bucket, its plan, the rate last read from the store."""

    def __init__(self, key: str, plan_rate: float, plan_burst: int, store: StateStore):
        self.key, self.plan_rate, self.plan_burst = key, plan_rate, plan_burst
        self.rate, self.burst = plan_rate, effective_burst(plan_rate, plan_burst)
        self.bucket = StateBucket([_rate(plan_rate * SAFETY, self.burst)], algorithm=TokenBucket(), store=store,
                                  clock=WallClock())
        self.checked = 0.0
        self.streak = 0  # consecutive 429s
        self.lock = threading.Lock()

    def use(self, rate: float) -> None:
        if rate != self.rate:
            self.rate, self.burst = rate, effective_burst(rate, self.plan_burst)
            self.bucket.rates = [_rate(rate * SAFETY, self.burst)]


class RateLimiter:
    """Token buckets per (seller, operation), shared through ``store_url`` (``redis://…`` or ``sqlite:///…``).

    ``time_scale`` multiplies every plan (the sandbox runs time faster); ``enabled=False`` admits everything.
    """

    def __init__(self, store_url: str, *, enabled: bool = True, time_scale: float = 1.0,
                 namespace: str = "erpsync:ratelimit", plans: dict[str, tuple[float, int]] | None = None,
                 random_fraction: Callable[[], float] = random.random):
        if time_scale <= 0:
            raise ConfigError(f"time_scale must be > 0, got {time_scale}")
        self.enabled, self.time_scale, self.namespace = enabled, time_scale, namespace
        self.plans = dict(USAGE_PLANS if plans is None else plans)
        self._random = random_fraction
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self._redis = None
        self._sqlite: SqliteFile | None = None
        if not enabled:
            self._rates = None
        elif store_url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self._redis = redis.Redis.from_url(store_url, socket_timeout=5.0, socket_connect_timeout=5.0)
            self._rates = _RedisRates(self._redis)
        elif store_url.startswith("sqlite:///"):
            self._sqlite = SqliteFile(Path(store_url[len("sqlite:///"):]))
            self._rates = self._sqlite
        else:
            raise ConfigError(f"amazon.rate_limit.store_url {store_url!r} is neither redis://… nor sqlite:///…")

    @classmethod
    def from_settings(cls, settings, *, time_scale: float = 1.0) -> RateLimiter:
        """From ``settings.amazon.rate_limit`` (a relative SQLite path is resolved against the config file)."""
        limits = settings.amazon.rate_limit
        return cls(settings.resolve_url(limits.store_url), enabled=limits.enabled, time_scale=time_scale)

    # --- buckets ----------------------------------------------------------------------------------------------

    def _bucket(self, seller: str, operation: str) -> _Bucket:
        key = (seller, operation)
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                if operation not in self.plans:
                    raise ValueError(f"operation {operation!r} has no usage plan in amazon/ratelimit.py")
                rate, burst = self.plans[operation]
                name = f"{self.namespace}:{seller}:{operation}"
                store = (RedisStateStore(self._redis, name) if self._redis is not None
                         else SqliteStateStore(self._sqlite, name))
                found = self._buckets[key] = _Bucket(name, rate * self.time_scale, burst, store)
            return found

    def _refresh(self, bucket: _Bucket) -> None:
        now = time.monotonic()
        if now - bucket.checked >= RATE_CACHE_SECONDS:
            shared = self._rates.get_rate(bucket.key + ":rate")
            bucket.use(bucket.plan_rate if shared is None else min(shared, bucket.plan_rate))
            bucket.checked = now

    @contextmanager
    def _store(self, seller: str, operation: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise Retryable(f"rate-limit store unavailable for {operation} (seller {seller}): {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                raise Retryable(f"rate-limit store unavailable for {operation} (seller {seller}): {exc}") from None
            raise

    # --- the three events ---------------------------------------------------------------------------------------

    def acquire(self, seller: str, operation: str) -> None:
        """Take one token or raise :class:`RateLimited` with the seconds until one is there."""
        if not self.enabled:
            return
        bucket = self._bucket(seller, operation)
        with bucket.lock, self._store(seller, operation):
            self._refresh(bucket)
            item = RateItem(operation, bucket.bucket.now())
            decision = bucket.bucket.put_decision(item)
        if not decision.allowed:
            wait = max(0.001, (decision.retry_after_ms or 1) / 1000)
            raise RateLimited(f"{operation} for seller {seller} is at its rate limit "
                              f"({bucket.rate:g}/s); try again in {wait:.3f}s", retry_after=wait)

    def observe(self, seller: str, operation: str, header: str | None) -> None:
        """A non-429 answer arrived: reset the 429 streak; apply ``x-amzn-RateLimit-Limit`` when present.

        The header lowers the bucket's rate (or restores it, never above the plan) for every process."""
        if not self.enabled:
            return
        bucket = self._bucket(seller, operation)
        bucket.streak = 0
        if header is None:
            return
        try:
            reported = float(header)
        except ValueError:
            return  # best-effort header: ignore what is not a number
        if reported <= 0:
            return
        wanted = min(reported, bucket.plan_rate)
        if abs(wanted - bucket.rate) <= 1e-3 * bucket.rate:
            return  # the header's rounding of the rate we already run at
        with bucket.lock, self._store(seller, operation):
            if wanted != bucket.rate:
                self._rates.set_rate(bucket.key + ":rate", wanted)
                bucket.use(wanted)
                bucket.checked = time.monotonic()

    def throttled(self, seller: str, operation: str) -> float:
        """Amazon answered 429: empty the bucket and return a backoff with jitter (seconds) for the retry."""
        plan_rate, _ = self.plans.get(operation, (1.0, 1))
        bucket = self._bucket(seller, operation) if self.enabled else None
        rate = bucket.rate if bucket else plan_rate * self.time_scale
        if bucket is not None:
            bucket.streak += 1
            with bucket.lock, self._store(seller, operation):
                left = bucket.burst - int(bucket.bucket.count())
                if left > 0:
                    bucket.bucket.put(RateItem(operation, bucket.bucket.now(), weight=left))
        streak = bucket.streak if bucket else 1
        base = min(MAX_BACKOFF_SECONDS, (1.0 / (rate * SAFETY)) * 2 ** min(streak - 1, 10))
        return base * (1.0 + 0.5 * self._random())

    def rate(self, seller: str, operation: str) -> float:
        """The rate (requests per second, before :data:`SAFETY`) this bucket runs at now."""
        bucket = self._bucket(seller, operation)
        with bucket.lock, self._store(seller, operation):
            self._refresh(bucket)
        return bucket.rate

    def close(self) -> None:
        if self._rates is not None:
            self._rates.close()
