"""Dead Letter Channel: a job that can never succeed as it is, or whose retry budget is spent, is parked with its
payload, error class, code, message and attempts. ``replay`` queues it again — the *current* code and mapping
run it, so fixing a SKU alias and replaying is the normal repair; if it fails again, a new dead letter records
that, linked to this one by ``replay_of``. ``discard`` closes it without running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from erpsync import logs
from erpsync.runtime import pii
from erpsync.runtime.store import DeadLetter, Store

if TYPE_CHECKING:
    from erpsync.runtime.jobs import Outcome, Runtime

log = logs.get(__name__)


class DeadLetterError(Exception):
    """A dead letter does not exist or is not in a state that allows the action."""


@dataclass(frozen=True)
class Replay:
    """``queued``: the job went back on its queue; ``outcome``: it was run here and then (``now=True``)."""

    dead_letter: DeadLetter
    queued: bool
    outcome: Outcome | None = None


def capture(store: Store, *, job: str, queue: str, key: str, payload: dict[str, Any], exc: BaseException,
            attempts: int, first_failed_at: datetime, replay_of: int | None = None) -> int:
    """Park a failed job; returns the dead letter id."""
    code = getattr(exc, "code", None) or "unexpected_error"
    dead_id = store.dead_letters.add(
        job=job, queue=queue, key=key, payload=payload, error_class=type(exc).__name__, error_code=code,
        message=str(exc) or repr(exc), record=getattr(exc, "record", None), attempts=attempts,
        first_failed_at=first_failed_at, replay_of=replay_of,
        audit=("dead_letter.captured", {"job": job, "key": key, "error_code": code, "replay_of": replay_of}))
    log.warning("dead_letter.captured", dead_letter=dead_id, job=job, key=key, error_code=code, attempts=attempts)
    return dead_id


def _open(store: Store, dead_id: int) -> DeadLetter:
    dead = store.dead_letters.get(dead_id)
    if dead is None:
        raise DeadLetterError(f"dead letter {dead_id} does not exist (erpsync dlq list shows the open ones)")
    if dead.status != "open":
        raise DeadLetterError(f"dead letter {dead_id} is {dead.status}, not open"
                              + (f" ({dead.replay_result})" if dead.replay_result else ""))
    return dead


def replay(runtime: Runtime, dead_id: int, *, now: bool = False) -> Replay:
    """Queue the dead letter's job again (``now``: run it in this process instead) and mark it replayed.

    The run's result is written back to this dead letter: 'succeeded', or 'failed again: dead letter N'."""
    store = runtime.store
    dead = _open(store, dead_id)
    payload = dead.payload
    if isinstance(payload, dict) and payload.get(pii.PURGED):  # its buyer data is gone: read it again
        try:
            payload = pii.restore(runtime, dead)
        except ValueError as exc:
            raise DeadLetterError(str(exc)) from None
    outcome = None
    if now:
        outcome = runtime.run(dead.job, payload, key=dead.key, replay_of=dead_id)
    elif not runtime.submit(dead.job, payload, key=dead.key, replay_of=dead_id):
        raise DeadLetterError(f"dead letter {dead_id}: job {dead.job!r} with key {dead.key!r} is already pending "
                              f"and will run with the current code; discard this dead letter or replay it later")
    store.dead_letters.mark(dead_id, "replayed", only_from={"open"}, audit=(
        "dead_letter.replayed", {"dead_letter": dead_id, "job": dead.job, "key": dead.key, "now": now}))
    log.info("dead_letter.replayed", dead_letter=dead_id, job=dead.job, key=dead.key, now=now)
    return Replay(store.dead_letters.get(dead_id), queued=outcome is None or outcome.status == "retry",
                  outcome=outcome)


def discard(store: Store, dead_id: int) -> DeadLetter:
    """Close a dead letter without running it."""
    dead = _open(store, dead_id)
    if not store.dead_letters.mark(dead_id, "discarded", only_from={"open"}, audit=(
            "dead_letter.discarded", {"dead_letter": dead_id, "job": dead.job, "key": dead.key})):
        raise DeadLetterError(f"dead letter {dead_id} was replayed or discarded meanwhile")
    log.info("dead_letter.discarded", dead_letter=dead_id, job=dead.job, key=dead.key)
    return store.dead_letters.get(dead_id)
