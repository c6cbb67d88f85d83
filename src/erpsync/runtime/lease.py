"""Leases: how the runtime tells a job that is still running from one lost with a killed worker.

Every message carries a token; the identity key of its job (state store ``job_keys``) names the token of the one
message that owns it. A worker that starts a message takes a lease on its key (:meth:`Leases.take`, a
compare-and-set on the token) for ``queue.lease_seconds``, and one heartbeat thread per process renews the leases
of the jobs it runs every third of that. A lease that expires means the worker died: the schedule re-queues a copy
of the message under a new token (:meth:`erpsync.runtime.jobs.Runtime.recover_lost`). A job that runs long with its
heartbeat alive keeps its lease and is never run twice; a stale copy of a message (its key re-queued or taken
over meanwhile) finds another token on the key and is not run.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

from erpsync import logs
from erpsync.runtime.store import Store, utcnow

log = logs.get(__name__)


def new_token() -> str:
    return uuid.uuid4().hex


class Leases:
    """The leases of the jobs running in this process, renewed by one heartbeat thread (started with the first
    lease, stopped by :meth:`close`)."""

    def __init__(self, store: Store, seconds: float):
        if seconds <= 0:
            raise ValueError(f"lease of {seconds}s: queue.lease_seconds must be > 0")
        self.store, self.seconds = store, seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}"[:128]
        self._held: dict[str, str] = {}  # key -> token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, key: str, token: str) -> bool:
        """Lease ``key`` for the message with ``token``; False when another message owns the key (do not run)."""
        if not self.store.job_lease_take(key, token, until=self._until(), by=self.owner):
            return False
        with self._lock:
            self._held[key] = token
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._beat, name="erpsync-heartbeat", daemon=True)
                self._thread.start()
        return True

    def drop(self, key: str) -> None:
        """The run ended (its key released or rescheduled): stop renewing."""
        with self._lock:
            self._held.pop(key, None)

    def held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)

    def renew(self) -> list[str]:
        """One heartbeat: extend every lease held; returns the keys whose lease was lost."""
        held = self.held()
        if not held:
            return []
        lost = self.store.job_leases_renew(held, until=self._until(), by=self.owner)
        for key in lost:
            log.warning("job.lease_lost", key=key, worker=self.owner)
        return lost

    def _until(self):
        return utcnow() + timedelta(seconds=self.seconds)

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - the store hiccups: beat again, the lease has slack
                log.error("job.heartbeat_failed", worker=self.owner, error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
