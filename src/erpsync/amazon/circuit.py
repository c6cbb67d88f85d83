"""Circuit breaker per SP-API operation: stop hammering Amazon when an operation keeps failing (5xx, network).

closed ──(``failures`` consecutive failures)──▶ open ──(``reset_seconds``)──▶ half-open: one trial call
half-open ──trial succeeds──▶ closed;  ──trial fails──▶ open again.
While open (or while the trial is out) calls raise :class:`errors.CircuitOpen` with the seconds to wait; the job is
rescheduled without spending a retry. State is per process: each worker learns on its own after a few failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from erpsync.errors import CircuitOpen


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial_at: float | None = None  # when the half-open trial call went out


class CircuitBreaker:
    def __init__(self, failures: int = 5, reset_seconds: float = 30.0, *, clock: Callable[[], float] = time.monotonic):
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("circuit breaker needs failures >= 1 and reset_seconds > 0")
        self.threshold, self.reset_seconds, self._clock = failures, reset_seconds, clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, operation: str) -> str:
        """``closed``, ``open`` or ``half-open`` (a trial call may go, or is out)."""
        with self._lock:
            circuit = self._circuits.get(operation)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            return "open" if self._clock() - circuit.opened_at < self.reset_seconds else "half-open"

    def before(self, operation: str) -> None:
        """Raise :class:`CircuitOpen` unless a call of ``operation`` may go out now."""
        with self._lock:
            circuit = self._circuits.setdefault(operation, _Circuit())
            if circuit.opened_at is None:
                return
            now = self._clock()
            waited = now - circuit.opened_at
            if waited >= self.reset_seconds and (circuit.trial_at is None
                                                  or now - circuit.trial_at >= self.reset_seconds):
                circuit.trial_at = now  # half-open: this call is the trial (a lost trial is retried later)
                return
            wait = max(self.reset_seconds - waited,
                       0.0 if circuit.trial_at is None else self.reset_seconds - (now - circuit.trial_at), 0.001)
            raise CircuitOpen(f"{operation}: Amazon failed {circuit.failures} times in a row; calls paused, "
                              f"next trial in {wait:.1f}s", retry_after=wait)

    def success(self, operation: str) -> None:
        with self._lock:
            self._circuits[operation] = _Circuit()

    def failure(self, operation: str) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(operation, _Circuit())
            circuit.failures += 1
            if circuit.trial_at is not None or circuit.failures >= self.threshold:
                circuit.opened_at, circuit.trial_at = self._clock(), None
