import random

import pytest

from erpsync.errors import CircuitOpen, RateLimited, RecordLocked, Retryable, Throttled
from erpsync.runtime.retry import RetryPolicy

POLICY = RetryPolicy(max_retries=3, base=2.0, cap=10.0)


def test_full_jitter_stays_within_the_exponential_ceiling_and_the_cap():
    rng = random.Random(1)
    for spent, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)):
        delays = [POLICY.backoff(spent, rng) for _ in range(500)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.9 and min(delays) < ceiling * 0.1  # spread over the whole range


def test_budget_is_spent_one_retry_at_a_time_then_exhausted():
    exc = Retryable("5xx")
    assert [POLICY.decide(exc, spent).spent for spent in range(3)] == [1, 2, 3]
    assert POLICY.decide(exc, 3) is None


@pytest.mark.parametrize("exc", [RecordLocked("locked"), RateLimited("bucket empty", retry_after=1.5)])
def test_errors_that_made_no_attempt_do_not_spend_the_budget(exc):
    decision = POLICY.decide(exc, 3)
    assert decision is not None and decision.spent == 3


def test_retry_after_overrides_the_backoff():
    assert POLICY.decide(Retryable("429", retry_after=42), 0).delay == 42
    assert POLICY.decide(RateLimited("bucket empty", retry_after=0.25), 0).delay == 0.25


def test_a_retry_that_spends_nothing_backs_off_on_its_runs():
    first = [POLICY.decide(RecordLocked("locked"), 0, runs=1).delay for _ in range(200)]
    later = [POLICY.decide(RecordLocked("locked"), 0, runs=3).delay for _ in range(200)]
    assert max(first) <= 2.0 and 2.0 < max(later) <= 8.0


@pytest.mark.parametrize("exc", [Throttled("429 QuotaExceeded", retry_after=0.5),
                                 CircuitOpen("getOrder: calls paused", retry_after=2.0)])
def test_throttling_and_an_open_circuit_never_exhaust_the_budget(exc):
    spent = 0
    for runs in range(1, 1000):  # a storm far longer than any budget
        decision = POLICY.decide(exc, spent, runs)
        assert decision is not None and decision.spent == 0 and decision.delay == exc.retry_after
        spent = decision.spent
