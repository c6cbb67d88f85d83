"""``erpsync demo --serve``: after the cycle, the sandbox, the workers and the dashboard keep running; a demo login
is printed, and the dashboard's Demo page has buttons for the sandbox's control calls (:class:`SandboxControls`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
from rich.console import Console

from erpsync.runtime.access import Access
from erpsync.runtime.jobs import Runtime, stop_on_signals
from erpsync.sage500 import warehouse
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.web import demo as demo_page

UNKNOWN_SKU, ITS_ITEM = "WIDGET-BLUE-L", "WIDGET-BLU-L"  # a seller SKU the replica lacks, and the item it means
DEMO_USER = "demo"


class SandboxControls:
    """The demo page's buttons, as calls to the sandbox's control API and the replica's warehouse."""

    actions = {"orders": "Place 5 orders", "unknown-sku": f"Place an order with SKU {UNKNOWN_SKU}",
               "map-sku": f"Map {UNKNOWN_SKU} to Sage item {ITS_ITEM}", "ship": "Ship everything Sage holds open",
               "cancel": "Cancel the newest open order", "fault-throttle": "Inject a 429 storm on getOrder",
               "fault-errors": "Inject 5xx answers (30%)", "clear-faults": "Clear faults"}

    def __init__(self, runtime: Runtime, sandbox_url: str, gateway: Sage500Gateway,
                 ship: Callable[[object, object, int], int]):
        self.runtime, self.gateway, self._ship = runtime, gateway, ship
        self.control = httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=30)
        self.shipped = 0

    def _stocked(self) -> list[str]:
        return sorted(item for item, qty in self.gateway.stock_levels(["MAIN"]).items() if qty >= 60)

    def _place(self, **body) -> list[str]:
        answer = self.control.post("/orders", json={"status": "UNSHIPPED", "afn_share": 0, **body})
        answer.raise_for_status()
        return answer.json()["orderIds"]

    def _open_orders(self) -> list[str]:
        return [e.amazon_order_id for e in self.runtime.store.journal_list("written", limit=100_000)]

    def act(self, action: str) -> str:
        if action == "orders":
            return "placed " + ", ".join(self._place(count=5, skus=self._stocked()))
        if action == "unknown-sku":
            [oid] = self._place(count=1, skus=[UNKNOWN_SKU], multi_line_share=0)
            return f"placed {oid} with SKU {UNKNOWN_SKU}: watch it become a dead letter"
        if action == "map-sku":
            settings = self.runtime.settings
            aliases = {**settings.mapping.sku_aliases, UNKNOWN_SKU: ITS_ITEM}
            mapping = settings.mapping.model_copy(update={"sku_aliases": aliases})
            self.runtime.replace_settings(settings.model_copy(update={"mapping": mapping}))
            return f"[mapping] sku_aliases now maps {UNKNOWN_SKU} to {ITS_ITEM}: replay the dead letter"
        if action == "ship":
            shipped, packages = [], 0
            for oid in self._open_orders():
                order = self.gateway.order_by_amazon_id(oid)
                try:
                    packages += self._ship(self.gateway.engine, order, self.shipped)
                except warehouse.WarehouseError as exc:
                    return f"shipped {len(shipped)} order(s); {oid} could not ship: {exc}"
                self.shipped += 1
                shipped.append(oid)
            return f"shipped {len(shipped)} order(s) in {packages} package(s)" if shipped else "nothing open to ship"
        if action == "cancel":
            open_orders = self._open_orders()
            if not open_orders:
                return "no open order to cancel: place some first"
            oid = open_orders[-1]
            self.control.post(f"/orders/{oid}/cancel", json={"reason": "Buyer canceled",
                                                             "buyer_request": True}).raise_for_status()
            return f"cancelled {oid} on Amazon: erpsync voids it in Sage"
        if action == "fault-throttle":
            self.control.patch("/faults", json={"throttle_storm_rate": 0.6, "operations": ["getOrder"]})
            return "getOrder now answers 429 six times in ten: jobs wait and retry"
        if action == "fault-errors":
            self.control.patch("/faults", json={"error_rate": 0.3})
            return "Amazon now answers 5xx three times in ten: the circuit breaker and retries absorb it"
        if action == "clear-faults":
            self.control.delete("/faults").raise_for_status()
            return "faults cleared"
        raise ValueError(f"unknown demo action {action!r}")


def serve(console: Console, runtime: Runtime, app, url: str, sandbox_url: str, gateway: Sage500Gateway,
          ship) -> None:
    """Add the demo page and a demo login to the running web app, then wait for Ctrl-C or SIGTERM."""
    stop = stop_on_signals()
    password = secrets.token_urlsafe(12)
    Access(runtime.store).add_user(DEMO_USER, password, replace=DEMO_USER in dict(Access(runtime.store).users()))
    demo_page.install(app, SandboxControls(runtime, sandbox_url, gateway, ship))
    console.print(f"\nThe demo keeps running: open {url}/demo and log in as [bold]{DEMO_USER}[/bold] with "
                  f"password [bold]{password}[/bold]. Ctrl-C stops.", soft_wrap=True, highlight=False)
    console.file.flush()
    while not stop.wait(0.5):
        pass
