"""The benchmark's claim, shortened: four worker processes sharing the limiter ask getOrder for more than the
sandbox's real usage plan (time-scaled) gives, and never exceed it: the sandbox, which enforces the plan, answers not
a single 429. The achieved rate against the plan is a figure of benchmarks/amazon_ratelimit.py, not of this test: it
is measured on the workers' clocks, and on a loaded machine it strays a few percent either way."""

from __future__ import annotations

import pytest

from benchmarks.amazon_ratelimit import run
from erpsync.sandbox.scenario import GenerateOrders, generate_orders
from erpsync.sandbox.server import start

TIME_SCALE = 60.0  # getOrder: 0.5/s burst 30 → 30 requests per real second


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_four_processes_saturate_get_order_without_a_429(store, tmp_path, request):
    url = f"sqlite:///{tmp_path}/ratelimit.db" if store == "sqlite" else str(request.getfixturevalue("redis_url"))
    with start(time_scale=TIME_SCALE, seed=3) as sandbox:
        order_ids = generate_orders(sandbox.world, GenerateOrders(count=10, status="UNSHIPPED", seed=3))
        result = run(store, url, sandbox, order_ids, workers=4, seconds=3.0, time_scale=TIME_SCALE,
                     start_method="fork")
    assert result["errors"] == 0, result
    assert result["throttled_429"] == 0, result
    assert result["rate_limited_waits"] > 0  # the workers did ask for more than the plan gives
    assert all(count > 0 for count in result["per_worker"])  # every process got its share of the one bucket
