"""Jobs used by the runtime tests. Importable by name (tests/runtime on sys.path) so a worker process can load
them through ``[queue] job_modules``. Each run records itself in the audit table: visible across processes."""

import time
from pathlib import Path

from erpsync.errors import RecordLocked, Retryable, UnknownSku
from erpsync.flows.jobs import JobContext, job


def _ran(ctx: JobContext, marker: str) -> None:
    ctx.store.audit("test.run", job=ctx.job, marker=marker, attempt=ctx.attempt)


@job("test.flaky", queue="amazon")
def flaky(ctx: JobContext, marker: str, fail_times: int = 0) -> str:
    """Retryable for the first ``fail_times`` runs, then done."""
    _ran(ctx, marker)
    if ctx.attempt <= fail_times:
        raise Retryable(f"run {ctx.attempt} of {marker}: service unavailable")
    return marker


@job("test.locked", queue="sage500")
def locked(ctx: JobContext, marker: str, lock_times: int) -> str:
    """Finds its record locked (a retry that spends no budget) for the first ``lock_times`` runs."""
    _ran(ctx, marker)
    if ctx.attempt <= lock_times:
        raise RecordLocked(f"order {marker} is locked by another job", record=marker)
    return marker


@job("test.write_item", queue="sage500")
def write_item(ctx: JobContext, sku: str) -> str:
    """Needs a SKU alias from the mapping: the dead-letter-then-fix-then-replay path."""
    item = ctx.settings.mapping.sku_aliases.get(sku)
    if item is None:
        raise UnknownSku(f"SKU {sku!r} has no Sage item; add an alias under [mapping] sku_aliases and replay",
                         record=sku)
    ctx.store.audit("test.written", sku=sku, item=item)
    return item


@job("test.bug", queue="amazon")
def bug(ctx: JobContext, marker: str) -> None:
    _ran(ctx, marker)
    raise ZeroDivisionError("division by zero (a bug nobody foresaw)")


@job("test.chain", queue="amazon")
def chain(ctx: JobContext, marker: str) -> None:
    """Queues a follow-up job on the other queue."""
    _ran(ctx, marker)
    ctx.enqueue("test.locked", marker=marker + "-next", lock_times=0)


@job("test.slow", queue="amazon")
def slow(ctx: JobContext, marker: str, release: str, timeout: float = 120.0) -> str:
    """Runs until the file ``release`` exists: a job that outlives its lease, or one a test kills mid-run."""
    _ran(ctx, marker)
    deadline = time.monotonic() + timeout
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise Retryable(f"{marker}: {release} did not appear within {timeout}s")
        time.sleep(0.02)
    return marker
