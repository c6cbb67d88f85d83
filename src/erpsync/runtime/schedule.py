"""The schedule: periodic work a worker queues — ``sync_window`` every ``orders.sync_interval_seconds``,
``scan_shipments`` every ``orders.shipment_scan_seconds``, ``sync_settlements`` every
``mapping.settlement.sync_interval_seconds`` — and the recovery of messages lost with a killed worker
(:meth:`Runtime.recover_lost`: an expired lease, or a message gone ``queue.recover_after_seconds`` after it was
due), at start and then every quarter of the shorter of ``queue.lease_seconds`` and that; and the purge of buyer
data past its retention (:func:`erpsync.runtime.pii.purge`) every ``pii.purge_interval_seconds``.

The huey consumers run without huey's own periodic tasks: a schedule queues jobs under fixed identity keys, so
any number of workers may each run one and every job is still queued once at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from erpsync import logs
from erpsync.flows.jobs import registered
from erpsync.runtime import pii
from erpsync.runtime.jobs import Runtime

log = logs.get(__name__)

PERIODIC_JOBS = ("sync_window", "scan_shipments", "sync_settlements")  # their identity key is their name
INVENTORY_JOBS = ("inventory_scan", "reconcile_inventory")  # periodic too when [inventory] enabled


@dataclass
class Entry:
    name: str
    every: float  # seconds
    action: Callable[[], object]
    due: float = 0.0  # on the scheduler's clock; 0: at the first tick


class Scheduler:
    """Call :meth:`tick` (tests) or :meth:`start` a thread that ticks until :meth:`stop`."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.monotonic, tick_seconds: float = 1.0):
        self.runtime, self.clock, self.tick_seconds = runtime, clock, tick_seconds
        settings = runtime.settings
        every = {"sync_window": settings.orders.sync_interval_seconds,
                 "scan_shipments": settings.orders.shipment_scan_seconds,
                 "sync_settlements": settings.mapping.settlement.sync_interval_seconds}
        self.entries = [Entry(name, every[name], lambda name=name: runtime.enqueue(name, key=name))
                        for name in PERIODIC_JOBS if name in registered()]
        if settings.inventory.enabled:  # stock and prices (docs/inventory.md)
            every.update(inventory_scan=settings.inventory.scan_interval_seconds,
                         reconcile_inventory=settings.inventory.reconcile_interval_seconds)
            self.entries += [Entry(name, every[name], lambda name=name: runtime.enqueue(name, key=name))
                             for name in INVENTORY_JOBS if name in registered()]
        lost_after = settings.queue.recover_after_seconds
        self.entries.append(Entry("recover_lost_jobs", min(lost_after, settings.queue.lease_seconds) / 4,
                                  lambda: runtime.recover_lost(timedelta(seconds=lost_after))))
        self.entries.append(Entry("pii_purge", settings.pii.purge_interval_seconds,  # Amazon's data retention
                                  lambda: pii.purge(runtime.store, timedelta(days=runtime.settings.pii.retention_days))))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[str]:
        """Run every entry that is due; returns their names."""
        now, ran = self.clock(), []
        for entry in self.entries:
            if now < entry.due:
                continue
            entry.due = now + entry.every
            try:
                entry.action()
            except Exception as exc:  # noqa: BLE001 - a store or queue hiccup: try again at the next due time
                log.error("schedule.failed", entry=entry.name, error=f"{type(exc).__name__}: {exc}")
                continue
            ran.append(entry.name)
        return ran

    def start(self) -> Scheduler:
        def run() -> None:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(self.tick_seconds)

        self._thread = threading.Thread(target=run, name="erpsync-schedule", daemon=True)
        self._thread.start()
        log.info("schedule.started", entries={e.name: e.every for e in self.entries})
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
