"""The two backends of the gateway: how Sage's own procedures are reached.

The gateway runs one sequence whatever the target (staging rows, ``spSOapiSalesOrdIns`` until ``@oContinue = 0``,
``tdmMigrationLogWrk``, the checks that follow); only the last step, the call of a Sage procedure, is the
backend's:

* :class:`ProcedureBackend` (``[sage500] mode = "procedure"``, a real Sage 500 on SQL Server) ``EXEC``\\ s the
  procedure — the statements ``exec_sales_ord_ins``, ``next_key_mssql``, ``next_key_block_mssql`` of
  :mod:`erpsync.sage500.sql` — and leaves a GL batch for Sage to post.
* :class:`ReplicaBackend` (``mode = "replica"``) answers the same call, with the same parameters and the same
  output columns, from a Python stand-in working on the replica's tables (:mod:`.replica_import`,
  :func:`.replica.next_keys`), and posts a GL batch as Sage would (:func:`.warehouse.post_gl_batch`).

A call is ``backend.call(conn, procedure, params)`` → one row of output parameters (a mapping).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Executable

from erpsync.errors import ConfigError
from erpsync.sage500 import sql
from erpsync.sage500.clock import SageClock
from erpsync.sage500.replica import next_keys
from erpsync.sage500.replica_import import ImportResult, sales_order_import
from erpsync.sage500.warehouse import post_gl_batch

SALES_ORDER_IMPORT = "spSOapiSalesOrdIns"
NEXT_KEY = "spGetNextSurrogateKey"
NEXT_KEY_BLOCK = "spGetNextBlockSurrogateKey"
PROCEDURES = (SALES_ORDER_IMPORT, NEXT_KEY, NEXT_KEY_BLOCK)  # what a real Sage database must have for erpsync

Row = Mapping[str, Any]


class Backend:
    mode: str
    replica_tables: bool  # the target holds the replica-only tables (key counters)
    procedures: tuple[str, ...]  # the stored procedures the target database must have

    def call(self, conn: Connection, procedure: str, params: dict[str, Any]) -> Row:
        raise NotImplementedError

    def next_tran_no(self, conn: Connection, company_id: str) -> str:
        """The next sales-order TranNo, zero-padded to 10, reserved until the transaction ends."""
        raise NotImplementedError

    def batch_written(self, conn: Connection, batch_key: int) -> None:
        """A balanced GL batch was written (Status 4, PostStatus 0) in this transaction."""


class ProcedureBackend(Backend):
    mode, replica_tables, procedures = "procedure", False, PROCEDURES
    statements: dict[str, Callable[[], Executable]] = {
        SALES_ORDER_IMPORT: sql.exec_sales_ord_ins, NEXT_KEY: sql.next_key_mssql, NEXT_KEY_BLOCK: sql.next_key_block_mssql}

    def call(self, conn: Connection, procedure: str, params: dict[str, Any]) -> Row:
        return conn.execute(self.statements[procedure](), params).mappings().one()

    def next_tran_no(self, conn: Connection, company_id: str) -> str:
        highest = conn.execute(sql.max_tran_no_mssql(), {"company_id": company_id}).scalar()
        return f"{int(highest or 0) + 1:010d}"

    # batch_written: nothing — the batch is left for Sage (or the site's partner) to post


class ReplicaBackend(Backend):
    """The replica's stand-ins, answering each call as the procedure would. ``stand_ins`` maps a procedure name to
    ``fn(conn, params) -> row``; a test may replace one to play a procedure that misbehaves."""

    mode, replica_tables, procedures = "replica", True, ()

    def __init__(self, clock: SageClock | None = None, user_id: str = "erpsync"):
        self.clock, self.user_id = clock or SageClock(), user_id
        self.stand_ins: dict[str, Callable[[Connection, dict[str, Any]], Row]] = {
            SALES_ORDER_IMPORT: self._sales_order_import, NEXT_KEY: self._next_key, NEXT_KEY_BLOCK: self._next_key}

    def call(self, conn: Connection, procedure: str, params: dict[str, Any]) -> Row:
        return self.stand_ins[procedure](conn, params)

    def next_tran_no(self, conn: Connection, company_id: str) -> str:
        return f"{next_keys(conn, 'tsoSalesOrder.TranNo'):010d}"

    def batch_written(self, conn: Connection, batch_key: int) -> None:
        post_gl_batch(conn, batch_key, post_date=self.clock.to_sage())

    def _next_key(self, conn: Connection, params: dict[str, Any]) -> Row:
        return {"next_key": next_keys(conn, params["series"], params.get("count", 1))}

    def _sales_order_import(self, conn: Connection, params: dict[str, Any]) -> Row:
        previous = ImportResult(0, params["recs_processed"], params["failed_recs"], params["total_recs"])
        result = sales_order_import(conn, params["session_key"], params["company_id"], previous=previous,
                                    user_id=self.user_id, now=self.clock.to_sage())
        return asdict(result)


def backend_for(mode: str, *, clock: SageClock | None = None, user_id: str = "erpsync") -> Backend:
    if mode == "procedure":
        return ProcedureBackend()
    if mode == "replica":
        return ReplicaBackend(clock, user_id)
    raise ConfigError(f"sage500.mode must be 'replica' or 'procedure', not {mode!r}")
