"""The circuit breaker on its own, with a hand-driven clock."""

from __future__ import annotations

import pytest

from erpsync.amazon.circuit import CircuitBreaker
from erpsync.errors import CircuitOpen


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_names_the_wait():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        breaker.before("getOrder")
        breaker.failure("getOrder")
    breaker.before("getOrder")  # two failures: still closed
    breaker.success("getOrder")  # a success resets the count
    for _ in range(3):
        breaker.before("getOrder")
        breaker.failure("getOrder")
    assert breaker.state("getOrder") == "open"
    clock.now += 10
    with pytest.raises(CircuitOpen, match="getOrder: Amazon failed 3 times in a row") as caught:
        breaker.before("getOrder")
    assert caught.value.retry_after == pytest.approx(20)
    assert caught.value.spend_retry is False
    breaker.before("searchOrders")  # per operation


def test_half_open_lets_one_trial_through():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=30, clock=clock)
    breaker.failure("getFeed")
    clock.now += 30
    assert breaker.state("getFeed") == "half-open"
    breaker.before("getFeed")  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before("getFeed")  # only one trial at a time
    breaker.failure("getFeed")  # the trial failed: open for another period
    clock.now += 29
    with pytest.raises(CircuitOpen) as caught:
        breaker.before("getFeed")
    assert caught.value.retry_after == pytest.approx(1)
    clock.now += 1
    breaker.before("getFeed")  # next trial
    breaker.success("getFeed")
    assert breaker.state("getFeed") == "closed"
    breaker.before("getFeed")
    breaker.before("getFeed")


def test_a_lost_trial_does_not_block_forever():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.failure("getReport")
    clock.now += 5
    breaker.before("getReport")  # trial goes out and its worker dies: no success, no failure
    clock.now += 5
    breaker.before("getReport")  # another trial is allowed after a reset period


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0)
