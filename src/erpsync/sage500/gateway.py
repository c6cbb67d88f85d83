"""The one door to Sage 500: every read and write erpsync does against the Sage database.

:class:`Sage500Gateway` is the sum of its concerns, one module each: sales orders (:mod:`.orders`), shipments
(:mod:`.shipments`), catalog, stock and prices (:mod:`.catalog`), the general ledger (:mod:`.ledger`) and the
schema check (:mod:`.schema_check`), on the transactions and error translation of :mod:`.database`. The mode
picks the backend (:mod:`.backend`): ``procedure`` calls Sage's own procedures on SQL Server, ``replica`` answers
the same calls with stand-ins on the replica, so the production sequence runs in every test. Every statement
comes from :mod:`erpsync.sage500.sql`. Results are plain dataclasses with Sage's column names; money and
quantities are ``Decimal``; datetimes are timezone-aware UTC, converted from and to Sage's local clock
(``[sage500] timezone``, :mod:`.clock`).

Errors: database unreachable or a lock wait past the timeout → :class:`~erpsync.errors.SageUnavailable` (retry);
another writer holds the order → :class:`~erpsync.errors.RecordLocked`; Sage refuses the order →
:class:`~erpsync.errors.SageRejected`; a value that cannot fit a Sage column or an unknown GL account →
:class:`~erpsync.errors.Permanent`; missing tables → :class:`~erpsync.errors.ConfigError`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from erpsync.config import SageTables, Settings
from erpsync.sage500.backend import Backend, backend_for
from erpsync.sage500.catalog import Catalog, CustomerRecord, ItemRecord
from erpsync.sage500.clock import SageClock
from erpsync.sage500.database import LOCK_TIMEOUT_MS
from erpsync.sage500.engine import engine_from_settings
from erpsync.sage500.ledger import Ledger
from erpsync.sage500.orders import SalesOrder, SalesOrderLine, SalesOrders, VoidOutcome
from erpsync.sage500.schema_check import SchemaCheck, SchemaReport
from erpsync.sage500.shipments import PackageLine, PackageRecord, ShipmentPage, ShipmentRecord, Shipments

__all__ = ["Sage500Gateway", "SalesOrder", "SalesOrderLine", "ShipmentRecord", "ShipmentPage", "PackageRecord",
           "PackageLine", "ItemRecord", "CustomerRecord", "SchemaReport", "VoidOutcome"]


class Sage500Gateway(SalesOrders, Shipments, Catalog, Ledger, SchemaCheck):
    """All Sage access for one company. Thread-safe (an Engine is); one instance per process is enough."""

    def __init__(self, engine: Engine, company_id: str = "SOA", mode: str = "replica",
                 tables: SageTables | None = None, *, user_id: str = "erpsync",
                 lock_timeout_ms: int = LOCK_TIMEOUT_MS, clock: SageClock | None = None,
                 backend: Backend | None = None):
        clock = clock or SageClock()
        super().__init__(engine, company_id, backend or backend_for(mode, clock=clock, user_id=user_id), tables,
                         user_id=user_id, lock_timeout_ms=lock_timeout_ms, clock=clock)
        self._owns_engine = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Sage500Gateway":
        cfg = settings.sage500
        clock = SageClock.named(cfg.timezone)
        gateway = cls(engine_from_settings(settings, create=False),  # a missing replica file is not made empty
                      cfg.company_id, cfg.mode, cfg.tables, user_id=cfg.user_id, lock_timeout_ms=cfg.lock_timeout_ms,
                      clock=clock)
        gateway._owns_engine = True
        return gateway

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> "Sage500Gateway":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
