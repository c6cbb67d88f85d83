"""Retry policy: exponential backoff with full jitter, a retry budget, and ``retry_after`` hints honoured.

A :class:`~erpsync.errors.Retryable` whose ``spend_retry`` is False (a record lock, Amazon's 429 or an empty token
bucket, an open circuit, Sage unreachable) is rescheduled without spending the budget: the work was never attempted,
and throttling is not failure — a storm of any length never dead-letters a message. Without a ``retry_after``
it backs off on the number of runs instead, so a lock or an outage that lasts is retried less and less often.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from erpsync.config import QueueSettings


@dataclass(frozen=True)
class Decision:
    """Retry after ``delay`` seconds; ``spent`` is the budget used once this retry is scheduled."""

    spent: int
    delay: float


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base: float
    cap: float

    @classmethod
    def from_settings(cls, queue: QueueSettings) -> RetryPolicy:
        return cls(queue.max_retries, queue.backoff_base_seconds, queue.backoff_max_seconds)

    def backoff(self, spent: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(spent-1))]."""
        ceiling = min(self.cap, self.base * 2 ** max(spent - 1, 0))
        return (rng or random).uniform(0, ceiling)

    def decide(self, exc: BaseException, spent: int, runs: int = 1) -> Decision | None:
        """What to do after a retryable failure when ``spent`` retries were already used in ``runs`` runs; None:
        give up."""
        spends = getattr(exc, "spend_retry", True)
        after = spent + 1 if spends else spent
        if spends and after > self.max_retries:
            return None
        retry_after = getattr(exc, "retry_after", None)
        delay = float(retry_after) if retry_after is not None else self.backoff(after if spends else runs)
        return Decision(spent=after, delay=delay)
