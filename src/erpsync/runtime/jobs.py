"""Jobs: named functions run by queue workers, with identity keys, retries and dead letters.

A flow declares a plain function by name on a queue (:func:`erpsync.flows.jobs.job`); it receives a
:class:`erpsync.flows.jobs.JobContext` (here: :class:`Context`) and JSON kwargs; the runtime queues and runs it::

    runtime = Runtime(settings)
    runtime.enqueue("import_order", key=f"import_order:{order_id}", amazon_order_id=order_id)

Every message goes through one huey task per queue, which looks the job up *by name* when it runs — so a message
(or a dead letter replayed next week) runs the code deployed now. Outcomes of a run:

* success → the identity key is released (the same work may be queued again);
* :class:`~erpsync.errors.Retryable` or an unforeseen exception → rescheduled on huey's schedule after backoff
  with full jitter (or the error's ``retry_after``); ``spend_retry=False`` errors do not use up the budget.
  Workers never sleep on a rate limit: the message waits in the schedule, the worker takes the next one;
* :class:`~erpsync.errors.Permanent` / :class:`~erpsync.errors.ConfigError`, or the budget spent → dead letter.

A worker runs a message under a lease on its key, renewed by a heartbeat (:mod:`erpsync.runtime.lease`): a job
lost with a killed worker is re-queued once its lease expires, a live one never runs twice.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from huey import Huey
from huey.consumer import Consumer

from erpsync import config as config_mod
from erpsync import logs
from erpsync.config import Settings
from erpsync.errors import ConfigError, ErpsyncError, classify
from erpsync.flows import connections
from erpsync.flows.jobs import QUEUES, get, registered
from erpsync.runtime.deadletter import capture
from erpsync.runtime.lease import Leases, new_token
from erpsync.runtime.queue import make_huey
from erpsync.runtime.retry import RetryPolicy
from erpsync.runtime.store import PendingJob, Store, utcnow

log = logs.get(__name__)
logging.getLogger("huey").setLevel(logging.WARNING)  # one structlog event per job outcome instead

# Modules whose import registers jobs; the worker imports those that exist (plus [queue] job_modules).
JOB_MODULES = ("erpsync.flows.orders", "erpsync.flows.shipments", "erpsync.flows.inventory",
               "erpsync.flows.settlements", "erpsync.flows.reconcile")
# A pending identity key whose job was due this long ago lost its message (a killed worker): it may be re-queued.
KEY_STALE_AFTER = timedelta(hours=1)


class WorkerLost(ErpsyncError):
    """The worker running a job died under it (its lease expired) more often than the retry budget allows."""

    code = "worker_lost"


def load_job_modules(extra: Iterable[str] = ()) -> list[str]:
    """Import the modules that register jobs: those of :data:`JOB_MODULES` that exist, and every ``extra`` one."""
    loaded = []
    for name in (*JOB_MODULES, *extra):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name and name in JOB_MODULES:
                continue
            raise ConfigError(f"job module {name!r} cannot be imported: {exc}") from None
        loaded.append(name)
    return loaded


def default_key(name: str, payload: dict[str, Any]) -> str:
    """The identity of a job run: its name and canonical kwargs (hashed when long)."""
    key = f"{name}:{json.dumps(payload, sort_keys=True, separators=(',', ':'))}"
    return key if len(key) <= 255 else f"{name}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class Outcome:
    """How one run ended: 'done' (``value``), 'retry' (after ``delay`` s), 'dead' (``dead_letter_id``), or
    'superseded': another message owns the job's key now (re-queued after a lost lease), this one changes nothing."""

    status: Literal["done", "retry", "dead", "superseded"]
    value: Any = None
    delay: float | None = None
    dead_letter_id: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Context:
    """The :class:`erpsync.flows.jobs.JobContext` of one run: settings (re-read when the config file changed), the
    state store, follow-up jobs. ``attempt`` is 1 on the first run."""

    runtime: Runtime
    job: str
    key: str
    attempt: int

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def store(self) -> Store:
        return self.runtime.store

    def enqueue(self, name: str, key: str | None = None, *, delay: float | None = None, **kwargs: Any) -> bool:
        """Queue a follow-up job. Its key must differ from this job's own, which stays pending until it ends."""
        if (key or default_key(name, kwargs)) == self.key:
            raise ValueError(f"job {self.job!r} cannot queue its own key {self.key!r}: it is pending until this "
                             f"run ends; give the follow-up a key of its own (e.g. with the next page token)")
        return self.runtime.enqueue(name, key, delay=delay, **kwargs)


class _Consumer(Consumer):
    def _set_signal_handlers(self) -> None:
        """The embedding process (CLI worker, demo, tests) owns its signals; several consumers share it."""


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM instead of an exception, so a signal that arrives while a worker
    is still starting (or stopping) cannot leave its consumer threads running behind a dead main thread."""
    stop = threading.Event()

    def _set(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _set)
    signal.signal(signal.SIGTERM, _set)
    return stop


class Consumers:
    """Running huey consumers (thread workers) for some queues. ``stop()`` lets running jobs finish."""

    def __init__(self, consumers: dict[str, Consumer]):
        self.consumers = consumers

    def stop(self) -> None:
        for consumer in self.consumers.values():
            consumer.stop(graceful=True)
        for consumer in self.consumers.values():
            consumer.huey.storage.close()

    def run_until(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (see :func:`stop_on_signals`), then stop gracefully."""
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> Consumers:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Runtime:
    """Queues, state store and retry policy for one process. ``config_path``: re-read settings for jobs when that
    file changes (a fixed mapping applies to the next run without restarting workers)."""

    def __init__(self, settings: Settings, *, config_path: str | Path | None = None, store: Store | None = None):
        self._settings = settings
        self._config_path = Path(config_path) if config_path is not None else None
        self._config_mtime = self._mtime()
        self._reload_lock = threading.Lock()
        self._owns_store = store is None
        self.store = store or Store.open(settings)
        self.policy = RetryPolicy.from_settings(settings.queue)
        self.leases = Leases(self.store, settings.queue.lease_seconds)
        self.queues: dict[str, Huey] = {}
        self._tasks = {}
        for queue in QUEUES:
            huey = make_huey(settings, queue)
            # huey's own retry only covers a failure of the runtime itself (state store down mid-outcome).
            self._tasks[queue] = huey.task(name="erpsync_job", retries=settings.queue.max_retries,
                                           retry_delay=settings.queue.backoff_max_seconds)(self.execute)
            self.queues[queue] = huey

    # settings --------------------------------------------------------------------------------------------------

    def _mtime(self) -> int | None:
        try:
            return self._config_path.stat().st_mtime_ns if self._config_path else None
        except FileNotFoundError:
            return None

    @property
    def settings(self) -> Settings:
        if self._config_path is not None and self._mtime() != self._config_mtime:
            with self._reload_lock:
                mtime = self._mtime()
                if mtime != self._config_mtime:
                    try:
                        self._settings = config_mod.load(self._config_path)
                        log.info("config.reloaded", path=str(self._config_path))
                    except ConfigError as exc:
                        log.error("config.reload_failed", path=str(self._config_path), error=str(exc))
                    # only now: a thread reading meanwhile waits on the lock instead of getting the old settings
                    self._config_mtime = mtime
        return self._settings

    # queueing --------------------------------------------------------------------------------------------------

    def enqueue(self, name: str, key: str | None = None, *, delay: float | None = None, **kwargs: Any) -> bool:
        """Queue job ``name`` with ``kwargs``; False when the same ``key`` (default: name + kwargs) is pending."""
        return self.submit(name, kwargs, key=key, delay=delay)

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None, delay: float | None = None,
               replay_of: int | None = None) -> bool:
        """:meth:`enqueue` with the kwargs as a dict; ``replay_of`` links the run to the dead letter it replays."""
        message = self._message(name, payload, key, replay_of)
        due = utcnow() + timedelta(seconds=delay or 0)
        if not self.store.job_key_claim(message["key"], job=name, queue=message["queue"], due_at=due,
                                        stale_after=KEY_STALE_AFTER, message=message):
            log.info("job.already_pending", job=name, key=message["key"])
            return False
        try:
            self._put(message, delay)
        except BaseException:
            self.store.job_key_release(message["key"])
            raise
        log.info("job.queued", job=name, key=message["key"], queue=message["queue"], delay=delay)
        return True

    def run(self, name: str, payload: dict[str, Any] | None = None, *, key: str | None = None,
            replay_of: int | None = None) -> Outcome:
        """Run a job here and now, with the same outcomes as in a worker (a retry goes onto its queue). It runs
        without a lease: a pending job of the same key is not checked."""
        return self._execute(self._message(name, payload or {}, key, replay_of), leased=False)

    def _message(self, name: str, payload: dict[str, Any], key: str | None, replay_of: int | None) -> dict:
        spec = get(name)
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"job {name!r}: kwargs must be JSON values ({exc})") from None
        return {"job": name, "queue": spec.queue, "key": key or default_key(name, payload), "payload": payload,
                "spent": 0, "runs": 0, "first_failed_at": None, "replay_of": replay_of, "token": new_token()}

    def _put(self, message: dict, delay: float | None) -> None:
        """Onto the queue, or straight into huey's schedule when delayed (no worker handles it before its time)."""
        wrapper = self._tasks[message["queue"]]
        if delay:
            wrapper.huey.add_schedule(wrapper.s(message, delay=delay))
        else:
            wrapper(message)

    def replace_settings(self, settings: Settings) -> None:
        """Run the next jobs with ``settings`` (the guided demo's repair button; an installation edits its config
        file, which is re-read on its own)."""
        with self._reload_lock:
            self._settings = settings

    # running ---------------------------------------------------------------------------------------------------

    def execute(self, message: dict) -> Outcome:
        """Run one message (what a worker does with it) under a lease on its key, and record the outcome."""
        return self._execute(message, leased=True)

    def _execute(self, message: dict, *, leased: bool) -> Outcome:
        name, key = message["job"], message["key"]
        logs.correlate(logs.correlation_id(message["payload"], fallback=key))  # on every line of this run
        token = message.get("token") if leased else None  # None: run outside the queues, or queued before 0004
        if token is not None and not self.leases.take(key, token):
            log.warning("job.superseded", job=name, key=key)  # re-queued after a lost lease, or taken over
            return Outcome("superseded")
        runs = message["runs"] + 1
        try:
            spec = get(name)
            with connections.in_use():  # a config reload never closes an adapter this run holds
                value = spec.func(Context(self, name, key, runs), **message["payload"])
        except Exception as exc:  # every failure becomes a retry or a dead letter
            self.leases.drop(key)
            return self._failed(message, runs, exc, token)
        self.leases.drop(key)
        if not self.store.job_key_release(key, token) and token is not None:
            log.warning("job.done_after_lease_lost", job=name, key=key, run=runs)
        if message["replay_of"] is not None:
            self.store.dead_letters.mark(message["replay_of"], result="succeeded")
        log.info("job.done", job=name, key=key, run=runs)
        return Outcome("done", value=value)

    def _failed(self, message: dict, runs: int, exc: Exception, token: str | None = None) -> Outcome:
        name, key, queue = message["job"], message["key"], message["queue"]
        now = utcnow()
        error = f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "code", "unexpected_error")
        if not isinstance(exc, ErpsyncError):
            log.warning("job.unexpected_error", job=name, key=key, run=runs, exc_info=exc)
        decision = self.policy.decide(exc, message["spent"], runs) if classify(exc) == "retryable" else None
        if decision is not None:
            retry = {**message, "spent": decision.spent, "runs": runs, "token": new_token(),
                     "first_failed_at": message["first_failed_at"] or now.isoformat()}
            if not self.store.job_key_note(key, job=name, queue=queue, attempts=runs, token=token,
                                           due_at=now + timedelta(seconds=decision.delay), error=error,
                                           message=retry):
                log.warning("job.superseded", job=name, key=key, run=runs, error_code=code)
                return Outcome("superseded", error=error)
            self._put(retry, decision.delay)
            log.info("job.retry", job=name, key=key, run=runs, error_code=code, delay=round(decision.delay, 3),
                     budget_spent=decision.spent, budget=self.policy.max_retries)
            return Outcome("retry", delay=decision.delay, error=error)
        owner = self.store.job_key_get(key) if token is not None else None
        if token is not None and (owner is None or owner.token != token):
            log.warning("job.superseded", job=name, key=key, run=runs, error_code=code)
            return Outcome("superseded", error=error)
        first = message["first_failed_at"]
        dead_id = capture(self.store, job=name, queue=queue, key=key, payload=message["payload"], exc=exc,
                          attempts=runs, first_failed_at=datetime.fromisoformat(first) if first else now,
                          replay_of=message["replay_of"])
        self.store.job_key_release(key, token)
        if message["replay_of"] is not None:
            self.store.dead_letters.mark(message["replay_of"], result=f"failed again: dead letter {dead_id}")
        return Outcome("dead", dead_letter_id=dead_id, error=error)

    # workers ---------------------------------------------------------------------------------------------------

    def start_consumer(self, queues: Iterable[str] = QUEUES, *, workers: int | None = None,
                       poll_seconds: float = 1.0) -> Consumers:
        """Start huey consumers (``workers`` threads each, default ``[queue] workers``) for ``queues`` in this
        process; idle workers poll at most ``poll_seconds`` apart (Redis and PostgreSQL wake up on new work)."""
        consumers = {}
        for queue in queues:
            if queue not in self.queues:
                raise ConfigError(f"unknown queue {queue!r}; erpsync has {', '.join(QUEUES)}")
            consumer = _Consumer(self.queues[queue], workers=workers or self.settings.queue.workers,
                                 periodic=False, max_delay=poll_seconds)
            consumer.start()
            consumers[queue] = consumer
        log.info("worker.started", queues=list(consumers), workers=workers or self.settings.queue.workers,
                 jobs=sorted(registered()))
        return Consumers(consumers)

    def pending(self) -> dict[str, dict[str, int]]:
        """Messages waiting per queue: {'amazon': {'queued': n, 'scheduled': m}, ...}."""
        return {name: {"queued": huey.pending_count(), "scheduled": huey.scheduled_count()}
                for name, huey in self.queues.items()}

    def recover_lost(self, older_than: timedelta, *, limit: int = 1000) -> list[str]:
        """Re-queue the jobs whose message was lost; returns their keys. huey deletes a message when a worker
        takes it, so a worker killed mid-job leaves a pending key whose lease expires (its heartbeat stopped): it
        is re-queued at once. A key that is not running, due more than ``older_than`` ago, whose message is
        neither queued nor scheduled (a process died between claiming the key and queueing) is re-queued too.

        The copy gets a new token, set on the key in a compare-and-set with what was read: a live job (its lease
        renewed) is never re-queued, and a stale message that still turns up is not run."""
        now = utcnow()
        lost = self.store.job_keys_lost(now=now, unleased_due_before=now - older_than, limit=limit, messages=False)
        present: set[tuple[str | None, str | None]] = set()
        if any(p.leased_until is None for p in lost):
            present = {(task.args[0].get("key"), task.args[0].get("token")) for huey in self.queues.values()
                       for task in (*huey.pending(), *huey.scheduled())
                       if task.args and isinstance(task.args[0], dict)}
        recovered = []
        for candidate in lost:
            if candidate.leased_until is None and (candidate.key, candidate.token) in present:
                continue
            pending = self.store.job_key_get(candidate.key)  # its message, read for the keys re-queued only
            if pending is None or pending.message is None or (pending.token, pending.due_at) != (
                    candidate.token, candidate.due_at):
                continue  # finished or re-queued since the scan
            message = {**pending.message, "token": new_token()}
            died = pending.leased_until is not None
            if died:  # the run counts: a message that kills every worker running it ends as a dead letter
                message.update(runs=message.get("runs", 0) + 1, spent=message.get("spent", 0) + 1)
            if not self.store.job_key_requeue(pending, message, now=now):
                continue  # renewed, finished or re-queued meanwhile
            if died and message["spent"] > self.policy.max_retries:
                self._killed_too_often(pending, message)
                continue
            self._put(message, None)
            log.warning("job.recovered", job=pending.job, key=pending.key, queue=pending.queue,
                        lost_since=(pending.leased_until or pending.due_at).isoformat(),
                        worker=pending.leased_by)
            recovered.append(pending.key)
        return recovered

    def _killed_too_often(self, pending: PendingJob, message: dict) -> None:
        exc = WorkerLost(f"job {pending.job} ({pending.key}): its worker died under it {message['runs']} times "
                         f"(last {pending.leased_by}); a message that kills the worker running it is parked here: "
                         f"find the cause in that worker's log, then replay this dead letter",
                         record=pending.key)
        first = message.get("first_failed_at")
        capture(self.store, job=pending.job, queue=pending.queue, key=pending.key, payload=message["payload"],
                exc=exc, attempts=message["runs"], replay_of=message.get("replay_of"),
                first_failed_at=datetime.fromisoformat(first) if first else utcnow())
        self.store.job_key_release(pending.key, message["token"])

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no job is pending (queued, scheduled or running); False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.store.job_keys_pending(limit=1) and not any(
                    sum(counts.values()) for counts in self.pending().values()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        """Close the queues, the adapters the jobs made (:mod:`erpsync.flows.connections`) and an own store."""
        self.leases.close()
        connections.close(self.store)
        for huey in self.queues.values():
            huey.storage.close()
        if self._owns_store:
            self.store.close()
