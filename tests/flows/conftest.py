"""The order-to-fulfillment pipeline for tests: a seeded Sage 500 replica (SQLite), the SP-API sandbox over real
HTTP, the state store and SqliteHuey queues in a temporary directory, all configured by a real ``erpsync.toml``
(so ``erpsync`` CLI commands run against the same installation), and in-process huey consumers on demand."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from erpsync import config as config_mod
from erpsync.runtime.jobs import Runtime, load_job_modules
from erpsync.sage500 import replica, schema
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sandbox.server import RunningSandbox, start
from erpsync.web.app import Server
from erpsync.web.app import start as start_web

TIME_SCALE = 60.0  # sandbox seconds per real second: Amazon's usage plans enforced, 60x faster
WEBHOOK_TOKEN = "test-webhook-token"  # also in test_webhook.py
API_TOKEN = "test-api-token"  # /metrics and the dashboard's API need it; also in test_webhook.py, test_orders.py


@pytest.fixture(scope="session")
def sage_template(tmp_path_factory) -> Path:
    """A seeded replica, copied for each test (seeding once keeps the tests fast)."""
    path = tmp_path_factory.mktemp("sage") / "sage500.db"
    engine = make_engine(f"sqlite:///{path}")
    replica.seed(engine)
    engine.dispose()
    return path


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Atomically (a worker re-reading the file must never see it half written)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
                                 + "\n" for name, keys in sections.items()))
    os.replace(temporary, path)


class Pipeline:
    """One erpsync installation under ``base`` talking to ``sandbox``."""

    def __init__(self, base: Path, sandbox: RunningSandbox, sections: dict[str, dict[str, Any]]):
        self.base, self.sandbox = base, sandbox
        self.config_path = base / "erpsync.toml"
        self.sections = sections
        write_toml(self.config_path, sections)
        self.settings = config_mod.load(self.config_path)
        self.runtime = Runtime(self.settings, config_path=self.config_path)
        self.sage_url = self.settings.resolve_url(self.settings.sage500.url)
        self.engine = make_engine(self.sage_url)
        self.gateway = Sage500Gateway(self.engine)

    # configuration ---------------------------------------------------------------------------------------------

    def configure(self, section: str, **keys: Any) -> None:
        """Change erpsync.toml (the runtime re-reads it for the next job)."""
        self.sections.setdefault(section, {}).update(keys)
        time.sleep(0.01)  # a new mtime even on coarse file systems
        write_toml(self.config_path, self.sections)

    # Amazon (the sandbox) --------------------------------------------------------------------------------------

    def control(self, method: str, path: str, **kwargs) -> Any:
        response = httpx.request(method, f"{self.sandbox.url}/_sandbox/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def generate(self, count: int = 1, **options: Any) -> list[str]:
        """Orders from the replica's items (those with stock to ship), Unshipped, notified at once. Items not
        listed yet are listed at the Sage price sheet's prices, as a seller's price sync keeps them (the price check
        of ``[quality]`` holds an order sold far from them); a test lists an item at its own price first."""
        skus = options.setdefault("skus", self.stocked_skus())
        listed = {listing["sku"] for listing in self.control("GET", "listings")["listings"]}
        prices, levels = self.gateway.prices("USD", "MAIN"), self.gateway.stock_levels(["MAIN"])
        self.control("PUT", "listings", json=[
            {"sku": sku, "price": str(prices[sku]), "quantity": max(0, int(levels.get(sku, 0)))}
            for sku in skus if sku in prices and sku not in listed])
        body = {"count": count, "status": "UNSHIPPED", "afn_share": 0, **options}
        return self.control("POST", "orders", json=body)["orderIds"]

    def stocked_skus(self, minimum: int = 60) -> list[str]:
        levels = self.gateway.stock_levels(["MAIN"])
        return sorted(item for item, qty in levels.items() if qty >= minimum)

    def amazon_order(self, order_id: str) -> dict:
        return self.control("GET", f"orders/{order_id}")["order"]

    def confirmed(self, order_id: str | None = None) -> list[dict]:
        return self.control("GET", "shipments", params={"orderId": order_id} if order_id else None)["shipments"]

    def webhook_to(self, url: str, token: str = WEBHOOK_TOKEN) -> None:
        self.control("PUT", "notifications/sinks",
                     json={"webhook_url": url, "webhook_headers": {"X-Erpsync-Token": token}})

    # Sage ------------------------------------------------------------------------------------------------------

    def sage_rows(self, order_id: str) -> tuple[int, int]:
        """(tsoSalesOrderExt_AMZ rows, tsoSalesOrder rows) of the Amazon order."""
        x, so = schema.tsoSalesOrderExt_AMZ, schema.tsoSalesOrder
        with self.engine.connect() as conn:
            ext = conn.execute(select(func.count()).select_from(x).where(x.c.AmazonOrderId == order_id)).scalar()
            orders = conn.execute(select(func.count()).select_from(so)
                                  .where(so.c.TranCmnt.like(f"Amazon {order_id}%"))).scalar()
        return ext, orders

    def sage_order(self, order_id: str):
        return self.gateway.order_by_amazon_id(order_id)

    # running ---------------------------------------------------------------------------------------------------

    @contextmanager
    def workers(self, queues=("amazon", "sage500"), threads: int = 2) -> Iterator[None]:
        consumers = self.runtime.start_consumer(queues, workers=threads, poll_seconds=0.05)
        try:
            yield
        finally:
            consumers.stop()

    def journal(self, order_id: str) -> str | None:
        entry = self.runtime.store.journal_get(order_id)
        return entry.status if entry else None

    def wait(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; {self.describe()}")
            time.sleep(0.05)

    def wait_journal(self, order_ids: list[str], statuses: str | tuple[str, ...], timeout: float = 30.0) -> None:
        wanted = (statuses,) if isinstance(statuses, str) else statuses
        self.wait(lambda: all(self.journal(o) in wanted for o in order_ids), timeout,
                  f"orders {order_ids} to reach {wanted}")

    def describe(self) -> str:
        store = self.runtime.store
        journal: dict[str, int] = {}
        for entry in store.journal_list(limit=100_000):
            journal[entry.status] = journal.get(entry.status, 0) + 1
        dead = [(d.job, d.error_code, d.message[:200]) for d in store.dead_letters.list(limit=5)]
        pending = [(p.key, p.attempts, p.last_error) for p in store.job_keys_pending(limit=5)]
        return f"journal {journal}; queues {self.runtime.pending()}; pending {pending}; dead letters {dead}"

    def close(self) -> None:
        self.runtime.close()
        self.engine.dispose()


def base_sections(sandbox_url: str) -> dict[str, dict[str, Any]]:
    return {
        "queue": {"backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5, "max_retries": 8, "workers": 2},
        "amazon": {"sandbox_url": sandbox_url, "timeout_seconds": 10.0},
        "sandbox": {"time_scale": TIME_SCALE},
        "orders": {"sync_overlap_minutes": 10},
    }


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    running = start(time_scale=TIME_SCALE)
    yield running
    running.stop()


@pytest.fixture
def make_pipeline(tmp_path, sage_template, sandbox, monkeypatch):
    """``make_pipeline(**sections)``: an installation whose erpsync.toml adds ``sections`` to the test defaults."""
    monkeypatch.delenv("ERPSYNC_CONFIG", raising=False)
    monkeypatch.delenv("ERPSYNC_SECRETS_FILE", raising=False)
    monkeypatch.setenv("ERPSYNC_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("ERPSYNC_API_TOKEN", API_TOKEN)
    load_job_modules()
    made: list[Pipeline] = []

    def make(**sections: dict[str, Any]) -> Pipeline:
        data = tmp_path / ".erpsync"
        data.mkdir(exist_ok=True)
        shutil.copy(sage_template, data / "sage500.db")
        merged = base_sections(sandbox.url)
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        pipeline = Pipeline(tmp_path, sandbox, merged)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def pipeline(make_pipeline) -> Pipeline:
    return make_pipeline()


@pytest.fixture
def webhook(pipeline) -> Iterator[Server]:
    """Our web app serving ``pipeline``, with the sandbox posting ORDER_CHANGE to it (right token)."""
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    yield server
    server.stop()
