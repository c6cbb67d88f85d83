"""The shared token buckets: plan seeding, header adaptation, 429 handling, sharing across processes (SQLite file
and Redis). Plans here are small made-up ones so a test runs in about a second of real time."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from erpsync.amazon.ratelimit import SAFETY, USAGE_PLANS, RateLimiter
from erpsync.errors import ConfigError, RateLimited

PLANS = {"fast": (10.0, 3), "slow": (1.0, 2)}
SELLER = "A1SELLER"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ratelimit.db", "erpsync:test"
    redis_url = request.getfixturevalue("redis_url")
    return str(redis_url), redis_url.prefix


def _limiter(store, **options) -> RateLimiter:
    url, namespace = store
    return RateLimiter(url, namespace=namespace, plans=PLANS, **options)


def _take_until_limited(limiter: RateLimiter, operation: str = "fast") -> tuple[int, float]:
    taken = 0
    while True:
        try:
            limiter.acquire(SELLER, operation)
        except RateLimited as exc:
            return taken, exc.retry_after
        taken += 1


def test_the_plan_seeds_the_bucket_minus_a_reserve_token(store_url):
    limiter = _limiter(store_url)
    taken, wait = _take_until_limited(limiter)
    assert taken == 2  # burst 3, one kept in reserve for requests that reach Amazon out of order
    assert wait == pytest.approx(1 / (10 * SAFETY), abs=0.02)  # one token at 98 % of 10/s
    time.sleep(wait)
    limiter.acquire(SELLER, "fast")  # the wait it named was enough
    other_seller, _ = _take_until_limited(limiter, "slow")
    assert other_seller == 1  # buckets are per (seller, operation)
    limiter.close()


def test_a_lower_rate_header_lowers_the_bucket_for_every_process(store_url):
    first, second = _limiter(store_url), _limiter(store_url)  # two workers sharing the store
    assert first.rate(SELLER, "fast") == 10.0
    first.observe(SELLER, "fast", "2.5")
    assert first.rate(SELLER, "fast") == 2.5
    assert second.rate(SELLER, "fast") == 2.5  # a fresh process reads the shared rate
    _, wait = _take_until_limited(second)
    assert wait == pytest.approx(1 / (2.5 * SAFETY), abs=0.03)
    first.observe(SELLER, "fast", "50")  # never above the plan
    assert first.rate(SELLER, "fast") == 10.0
    first.observe(SELLER, "fast", "not a number")  # best-effort header: ignored
    first.observe(SELLER, "fast", None)
    assert first.rate(SELLER, "fast") == 10.0
    first.close(), second.close()


def test_a_429_empties_the_bucket_and_backs_off_with_jitter(store_url):
    fractions = iter([0.0, 1.0, 0.5, 0.0])
    limiter = _limiter(store_url, random_fraction=lambda: next(fractions))
    limiter.acquire(SELLER, "fast")  # one token left
    emission = 1 / (10 * SAFETY)
    assert limiter.throttled(SELLER, "fast") == pytest.approx(emission)  # streak 1, no jitter drawn (0.0)
    with pytest.raises(RateLimited):
        limiter.acquire(SELLER, "fast")  # Amazon's bucket is empty: ours too, without a call
    assert limiter.throttled(SELLER, "fast") == pytest.approx(2 * emission * 1.5)  # streak 2, full jitter
    assert limiter.throttled(SELLER, "fast") == pytest.approx(4 * emission * 1.25)  # streak 3
    limiter.observe(SELLER, "fast", None)  # an answer that was not a 429 ends the streak
    assert limiter.throttled(SELLER, "fast") == pytest.approx(emission)
    limiter.close()


def test_disabled_limiter_admits_everything(tmp_path):
    limiter = RateLimiter("sqlite:///unused", enabled=False, plans=PLANS)
    for _ in range(100):
        limiter.acquire(SELLER, "slow")
    assert not (tmp_path / "unused").exists()
    assert limiter.throttled(SELLER, "slow") >= 1 / SAFETY  # still a backoff for the job


def test_configuration_errors_are_named(tmp_path):
    with pytest.raises(ConfigError, match="neither redis://"):
        RateLimiter("postgresql://x/y")
    limiter = RateLimiter(f"sqlite:///{tmp_path}/r.db", plans=PLANS)
    with pytest.raises(ValueError, match="'getFoo' has no usage plan"):
        limiter.acquire(SELLER, "getFoo")


def test_time_scale_multiplies_the_plans(tmp_path):
    limiter = RateLimiter(f"sqlite:///{tmp_path}/r.db", time_scale=100)
    assert limiter.rate(SELLER, "getOrder") == pytest.approx(USAGE_PLANS["getOrder"][0] * 100)


def _hammer(url: str, namespace: str, seconds: float, results) -> None:
    limiter = RateLimiter(url, namespace=namespace, plans={"shared": (20.0, 5)})
    admitted = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        before = time.time()
        try:
            limiter.acquire(SELLER, "shared")
            admitted.append((before, time.time()))  # the admission happened somewhere in this interval
        except RateLimited as exc:
            time.sleep(min(exc.retry_after, max(0.0, deadline - time.time())))
    results.put(admitted)


def test_processes_sharing_the_store_stay_within_the_plan(store_url):
    url, namespace = store_url
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    seconds = 1.5
    workers = [context.Process(target=_hammer, args=(url, namespace, seconds, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    admitted = sorted(t for _ in workers for t in results.get(timeout=30))
    for worker in workers:
        worker.join(timeout=10)
    # a token bucket's promise: in any window of length w, at most burst + rate × w calls (burst 4 after reserve).
    # Admissions i..j (ordered by when their call started) all happened between the start of call i and the latest
    # return among them, so that span bounds their true window from above, however loaded the machine is.
    rate = 20.0 * SAFETY
    for i, (start, _) in enumerate(admitted):
        latest = start
        for j in range(i, len(admitted)):
            latest = max(latest, admitted[j][1])
            assert j - i + 1 <= 4 + rate * (latest - start), (i, j)
    span = admitted[-1][1] - admitted[0][1]
    assert len(admitted) >= 4 + rate * span * 0.9  # and the processes together use what the plan gives
