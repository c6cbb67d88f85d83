"""What the fault commands, their short tests and the benchmarks share: one erpsync installation talking to a
sandbox (``Rig``), and the count of what went wrong (``Tally``).

A ``Rig`` lives in a directory of its own: a seeded Sage 500 replica (SQLite), ``erpsync.toml`` and
``.erpsync/secrets.toml``, the state store and the queues (SQLite there, or PostgreSQL / Redis when given), a
sandbox (in this process, or in a process of its own: ``sandbox_process=True``), erpsync's web app receiving the
sandbox's ORDER_CHANGE webhooks, and workers — huey consumers in this process (``workers()``) or real
``erpsync worker`` processes (``spawn_worker()``). Everything binds to 127.0.0.1 and stops in ``close()``.

    with Rig(Path(tmp), time_scale=60) as rig:
        rig.start_web()
        ids = rig.generate(100, seed=1)
        with rig.workers():
            rig.wait(lambda: rig.settled(ids), 60, "orders into Sage")
        print(rig.tally(ids))

Imported as ``benchmarks.harness`` by the tests (``tests/faults``) and by the scripts beside it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

REPO = Path(__file__).resolve().parents[1]
ERPSYNC = str(Path(sys.executable).parent / "erpsync")
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SETTLED = ("written", "skipped", "failed", "voided", "shipped", "confirmed")
PERIODIC = ("sync_window", "scan_shipments")
IN_SAGE = ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED")  # an MFN order in these states on Amazon belongs in Sage
_TRAN_CMNT = re.compile(r"^Amazon (\d{3}-\d{7}-\d{7})")


class Timeout(AssertionError):
    """A condition a run waited for did not come true before its deadline."""


@dataclass
class Tally:
    """What a run did to the orders. ``lost``: orders Amazon holds as open (Unshipped or shipped) that Sage does
    not; ``duplicated``: more than one Sage sales order for one Amazon order id; ``cancel_missed``: cancelled on
    Amazon, still open in Sage; ``crashed``: processes that died by themselves and 5xx answers of erpsync."""

    orders: int
    in_sage: int
    lost: list[str]
    duplicated: list[str]
    cancel_missed: list[str]
    dead_letters: int
    crashed: int
    extra: dict[str, Any] = field(default_factory=dict)
    dead_letter_kinds: dict[str, int] = field(default_factory=dict)  # "job/error_code": how many

    def ok(self, *, dead_letters: int = 0) -> bool:
        return (not self.lost and not self.duplicated and not self.cancel_missed and self.crashed == 0
                and self.dead_letters <= dead_letters and "timed_out" not in self.extra)

    def line(self, name: str) -> str:
        extra = "".join(f", {key} {value}" for key, value in self.extra.items())
        kinds = f" ({', '.join(f'{k} x{n}' for k, n in sorted(self.dead_letter_kinds.items()))})" \
            if self.dead_letter_kinds else ""
        return (f"{name}: {self.orders} orders, {self.in_sage} in Sage; lost {len(self.lost)}, duplicated "
                f"{len(self.duplicated)}, cancellations missed {len(self.cancel_missed)}, dead-lettered "
                f"{self.dead_letters}{kinds}, crashed {self.crashed}{extra}")


def seed_replica(path: Path) -> Path:
    """A seeded Sage 500 replica at ``path`` (SQLite)."""
    from erpsync.sage500 import replica
    from erpsync.sage500.engine import make_engine

    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    replica.seed(engine)
    engine.dispose()
    return path


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"erpsync_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique key prefix (the huey queue name); every key holding it is deleted afterwards."""
    import redis

    prefix = f"erpsync-bench-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
        client.close()


class Rig:
    """One erpsync installation under ``base`` and the sandbox it talks to (see the module's docstring)."""

    def __init__(self, base: Path, *, time_scale: float = 60.0, seed: int = 7, sage_template: Path | None = None,
                 state_url: str | None = None, queue_url: str | None = None, queue_name: str = "erpsync",
                 rate_limits: bool = True, sandbox_process: bool = False,
                 sections: dict[str, dict[str, Any]] | None = None):
        from erpsync.sandbox.server import start as start_sandbox

        self.base = base
        self.data = base / ".erpsync"
        self.data.mkdir(parents=True, exist_ok=True)
        self.time_scale = time_scale
        self._processes: list[subprocess.Popen] = []
        self.crashes = 0  # worker processes that exited by themselves
        self.answers: dict[tuple[str, int], int] = {}  # (operation, status) -> count (in-process sandbox only)
        self.throttled: list[tuple[float, str]] = []  # (sandbox seconds, operation) of every 429
        self.web = None
        self.world = None
        if sandbox_process:
            self.sandbox_proc = subprocess.Popen(
                [ERPSYNC, "sandbox", "--port", "0", "--time-scale", str(time_scale), "--seed", str(seed)],
                cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env())
            self.sandbox_url = self._read_url(self.sandbox_proc)
            self._stop_sandbox = lambda: _stop(self.sandbox_proc)
        else:
            from erpsync.sandbox.app import create_app
            from erpsync.sandbox.world import World

            self.sandbox_proc = None
            app = create_app(World.create(time_scale=time_scale, seed=seed))
            app.add_middleware(StatusCounter, record=self._answered)
            running = start_sandbox(app=app)
            self.world, self.sandbox_url, self._stop_sandbox = running.world, running.url, running.stop
        try:
            self._install(sage_template, state_url, queue_url, queue_name, rate_limits, sections or {})
        except BaseException:
            self._stop_sandbox()  # nothing left running when the set-up fails
            raise

    def _install(self, sage_template: Path | None, state_url: str | None, queue_url: str | None, queue_name: str,
                 rate_limits: bool, sections: dict[str, dict[str, Any]]) -> None:
        self.control_client = httpx.Client(base_url=f"{self.sandbox_url}/_sandbox", timeout=60)
        if sage_template is not None:
            shutil.copy(sage_template, self.data / "sage500.db")
        else:
            seed_replica(self.data / "sage500.db")
        self.token = os.environ.get("ERPSYNC_WEBHOOK_TOKEN") or secrets.token_urlsafe(24)
        (self.data / "secrets.toml").write_text(f"webhook_token = {json.dumps(self.token)}\n")
        self.sections: dict[str, dict[str, Any]] = {
            "state": {"url": state_url or "sqlite:///.erpsync/state.db"},
            "queue": {"url": queue_url or "sqlite:///.erpsync/queue.db", "name": queue_name,
                      "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5, "max_retries": 8, "workers": 2,
                      "recover_after_seconds": 2.0},
            "amazon": {"sandbox_url": self.sandbox_url, "timeout_seconds": 10.0},
            "sandbox": {"time_scale": self.time_scale},
            "sage500": {"url": "sqlite:///.erpsync/sage500.db"},
            "orders": {"sync_overlap_minutes": 10, "sync_interval_seconds": 2, "shipment_scan_seconds": 1},
        }
        self.sections["amazon.rate_limit"] = {"enabled": rate_limits, "store_url": "sqlite:///.erpsync/ratelimit.db"}
        for name, keys in sections.items():
            self.sections.setdefault(name, {}).update(keys)
        self.config_path = self.base / "erpsync.toml"
        self._write_config()

        from erpsync import config as config_mod
        from erpsync.runtime.jobs import Runtime, load_job_modules
        from erpsync.sage500.engine import make_engine
        from erpsync.sage500.gateway import Sage500Gateway

        load_job_modules()
        self.settings = config_mod.load(self.config_path)
        self.runtime = Runtime(self.settings, config_path=self.config_path)
        self.sage_url = self.settings.resolve_url(self.sections["sage500"]["url"])
        self.engine = make_engine(self.sage_url)
        self.gateway = Sage500Gateway(self.engine)

    # set-up -----------------------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment of the processes the rig starts: no config or secrets of the caller's."""
        drop = ("ERPSYNC_CONFIG", "ERPSYNC_SECRETS_FILE", "ERPSYNC_TEST_CRASH_AFTER_SAGE_COMMIT")
        return {k: v for k, v in os.environ.items() if k not in drop}

    @staticmethod
    def _read_url(process: subprocess.Popen, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            if found := re.search(r"http://127\.0\.0\.1:\d+", line):
                # keep draining its output so that the pipe never fills
                threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
                return found.group(0)
        process.kill()
        raise RuntimeError("the sandbox process did not print its URL")

    def _write_config(self) -> None:
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())
                                     + "\n" for name, keys in self.sections.items()))
        os.replace(temporary, self.config_path)  # a worker re-reading it never sees it half written

    def configure(self, section: str, **keys: Any) -> None:
        """Change erpsync.toml; every runtime re-reads it for its next job."""
        self.sections.setdefault(section, {}).update(keys)
        time.sleep(0.01)  # a new mtime even on coarse file systems
        self._write_config()

    def start_web(self, copies: int = 1) -> str:
        """erpsync's web app, with the sandbox posting ORDER_CHANGE to it; ``copies`` > 1 delivers every
        notification that many times (more webhook sinks to the same URL; in-process sandbox only)."""
        from erpsync.web.app import start as start_web

        self.web = start_web(self.runtime)
        url = f"{self.web.url}/notifications"
        header = self.settings.amazon.notifications.webhook_header
        self.control("PUT", "notifications/sinks", json={"webhook_url": url, "webhook_headers": {header: self.token}})
        if copies > 1:
            from erpsync.sandbox.notifications import WebhookSink

            with self.world.lock:
                self.world.notification_sinks.extend(WebhookSink(url, {header: self.token})
                                                     for _ in range(copies - 1))
        return url

    def _answered(self, path: str, status: int) -> None:
        operation = operation_of(path)
        self.answers[(operation, status)] = self.answers.get((operation, status), 0) + 1
        if status == 429:
            self.throttled.append((self.world.clock.seconds(), operation))

    def rescale(self, time_scale: float) -> None:
        """The sandbox (in this process) and erpsync's limiter run at ``time_scale`` from now on."""
        self.world.clock.rescale(time_scale)
        self.configure("sandbox", time_scale=time_scale)

    # Amazon (the sandbox) ---------------------------------------------------------------------------------------

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.control_client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def stocked_skus(self, minimum: int = 60) -> list[str]:
        return sorted(item for item, qty in self.gateway.stock_levels(["MAIN"]).items() if qty >= minimum)

    def generate(self, count: int, **options: Any) -> list[str]:
        """Unshipped MFN orders of items Sage has in stock, notified at once."""
        if not hasattr(self, "_skus"):
            self._skus = self.stocked_skus()
        body = {"count": count, "status": "UNSHIPPED", "afn_share": 0, "skus": self._skus, **options}
        ids: list[str] = []
        while len(ids) < count:  # the control API takes at most 10 000 at once
            ids += self.control("POST", "orders", json={**body, "count": min(10_000, count - len(ids))})["orderIds"]
        return ids

    def cancel(self, order_id: str) -> None:
        self.control("POST", f"orders/{order_id}/cancel", json={"reason": "fault suite"})

    def amazon_statuses(self, order_ids: list[str]) -> dict[str, str]:
        if self.world is not None:
            with self.world.lock:
                return {o: self.world.orders[o]["fulfillment"]["fulfillmentStatus"] for o in order_ids}
        return {o: self.control("GET", f"orders/{o}")["order"]["fulfillment"]["fulfillmentStatus"]
                for o in order_ids}

    def sandbox_seconds(self) -> float:
        """The sandbox's clock, in seconds since the epoch."""
        from datetime import datetime

        return datetime.fromisoformat(self.control("GET", "time")["now"].replace("Z", "+00:00")).timestamp()

    def webhook_failures(self) -> list:
        """The sandbox's failed webhook deliveries (erpsync answered non-2xx or not at all)."""
        if self.world is not None:
            with self.world.lock:
                return list(self.world.delivery_failures)
        return self.control("GET", "notifications")["failures"]

    # Sage -------------------------------------------------------------------------------------------------------

    def sage_orders(self) -> dict[str, list[int]]:
        """Amazon order id -> the Status of every Sage sales order written for it (by TranCmnt and extension)."""
        from erpsync.sage500 import schema

        so, ext = schema.tsoSalesOrder, schema.tsoSalesOrderExt_AMZ
        found: dict[str, list[int]] = {}
        seen: set[int] = set()
        with self.engine.connect() as conn:
            for key, cmnt, status in conn.execute(select(so.c.SOKey, so.c.TranCmnt, so.c.Status)
                                                  .where(so.c.TranCmnt.like("Amazon %"))):
                if match := _TRAN_CMNT.match(cmnt or ""):
                    found.setdefault(match.group(1), []).append(int(status))
                    seen.add(key)
            for key, oid, status in conn.execute(select(ext.c.SOKey, ext.c.AmazonOrderId, so.c.Status)
                                                 .join(so, so.c.SOKey == ext.c.SOKey)):
                if key not in seen:
                    found.setdefault(oid, []).append(int(status))
        return found

    def sage_count(self) -> int:
        from erpsync.sage500 import schema

        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(schema.tsoSalesOrderExt_AMZ)).scalar()

    # erpsync ----------------------------------------------------------------------------------------------------

    def journal(self, order_id: str) -> str | None:
        entry = self.runtime.store.journal_get(order_id)
        return entry.status if entry else None

    def journal_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.runtime.store.journal_list(limit=1_000_000):
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return counts

    def settled(self, order_ids: list[str], statuses: tuple[str, ...] = SETTLED) -> int:
        """How many of ``order_ids`` the journal says are settled (one query, however many orders). Only the ids
        are read: the benchmarks poll this every 0.1 s in erpsync's process, and building every journal entry
        (2,000 in P2a) each time cost that process ~7% of its CPU, counted as erpsync's."""
        from erpsync.runtime.store import order_journal

        wanted = set(order_ids)
        with self.runtime.store.reader.connect() as conn:
            ids = conn.execute(select(order_journal.c.amazon_order_id)
                               .where(order_journal.c.status.in_(statuses))).scalars()
            return sum(1 for oid in ids if oid in wanted)

    @contextmanager
    def workers(self, queues: tuple[str, ...] = ("amazon", "sage500"), threads: int = 3,
                schedule: bool = True) -> Iterator[None]:
        """huey consumers (and the schedule: sync_window, scan_shipments, recovery) in this process."""
        from erpsync.runtime.schedule import Scheduler

        consumers = self.runtime.start_consumer(queues, workers=threads, poll_seconds=0.05)
        scheduler = Scheduler(self.runtime, tick_seconds=0.2).start() if schedule else None
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            consumers.stop()

    def spawn_worker(self, queue: str = "all", threads: int = 2) -> subprocess.Popen:
        """A real ``erpsync worker`` process (its output goes to ``.erpsync/worker-<pid>.log``)."""
        log = open(self.data / f"worker-{len(self._processes)}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([ERPSYNC, "worker", "--queue", queue, "--workers", str(threads),
                                    "--config", str(self.config_path)], cwd=self.base, env=self.env(),
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL, as an OOM killer or a pulled plug would; counted as a crash if it had already died."""
        if process.poll() is not None:
            self.crashes += 1
            return
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> None:
        """Poll ``condition`` until it is true; :class:`Timeout` naming ``what`` and the state after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise Timeout(f"timed out after {timeout:.0f} s waiting for {what}; {self.describe()}")
            time.sleep(0.1)

    def settle(self, condition: Callable[[], Any], timeout: float, what: str, notes: dict[str, Any]) -> None:
        """:meth:`wait`, but a deadline passed is noted in ``notes['timed_out']`` (and the state then in
        ``notes['state']``) instead of raised, so that a fault command still counts what was lost."""
        try:
            self.wait(condition, timeout, what)
        except Timeout:
            notes.update(timed_out=f"{what} after {timeout:.0f} s", state=self.describe())

    def idle(self) -> bool:
        """No job pending but the periodic ones (``sync_window``, ``scan_shipments``: with the schedule running
        one of them is nearly always due or waiting for its rate limit)."""
        return not [p for p in self.runtime.store.job_keys_pending(limit=100)
                    if p.key not in PERIODIC]

    def describe(self) -> str:
        store = self.runtime.store
        dead = [(d.job, d.error_code, d.message[:160]) for d in store.dead_letters.list(limit=3)]
        pending = [(p.key, p.attempts, (p.last_error or "")[:120]) for p in store.job_keys_pending(limit=3)]
        return (f"journal {self.journal_counts()}; queues {self.runtime.pending()}; pending {pending}; "
                f"dead letters {dead}")

    def tally(self, order_ids: list[str], *, crashed: int = 0, **extra: Any) -> Tally:
        amazon = self.amazon_statuses(order_ids)
        sage = self.sage_orders()
        lost = [o for o in order_ids if amazon[o] in IN_SAGE and not sage.get(o)]
        cancel_missed = [o for o in order_ids if amazon[o] == "CANCELLED" and 1 in sage.get(o, [])]
        duplicated = sorted(o for o, statuses in sage.items() if len(statuses) > 1)
        crashes = self.crashes + crashed + sum(1 for p in self._processes if p.poll() not in (None, 0, -9))
        crashes += sum(1 for _sink, kind, message in self.webhook_failures()  # erpsync answered 5xx
                       if kind == "HTTPStatusError" and re.search(r"'5\d\d ", message))
        dead = self.runtime.store.dead_letters.list("open", limit=1_000_000)
        return Tally(orders=len(order_ids), in_sage=sum(1 for o in order_ids if sage.get(o)), lost=lost,
                     duplicated=duplicated, cancel_missed=cancel_missed, dead_letters=len(dead),
                     crashed=crashes, extra=extra,
                     dead_letter_kinds=dict(Counter(f"{d.job}/{d.error_code}" for d in dead)))

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                _stop(process)
        if self.web is not None:
            self.web.stop()
        self.control_client.close()
        self._stop_sandbox()
        self.runtime.close()
        self.engine.dispose()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_OPERATIONS = ((re.compile(r"/shipmentConfirmation$"), "confirmShipment"),
               (re.compile(r"^/orders/2026-01-01/orders/[^/]+$"), "getOrder"),
               (re.compile(r"^/orders/2026-01-01/orders$"), "searchOrders"),
               (re.compile(r"^/auth/"), "lwa"), (re.compile(r"^/_sandbox/"), "control"))


def operation_of(path: str) -> str:
    return next((name for pattern, name in _OPERATIONS if pattern.search(path)), path)


class StatusCounter:
    """ASGI middleware of the in-process sandbox: ``record(path, status)`` for every answer it sends."""

    def __init__(self, app, record: Callable[[str, int], None]):
        self.app, self.record = app, record

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                self.record(scope["path"], message["status"])
            await send(message)

        return await self.app(scope, receive, sending)


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM and wait; a process that ignores it is killed (never left behind)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
