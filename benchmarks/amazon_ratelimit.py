"""Benchmark: worker processes sharing the rate limiter saturate getOrder on the sandbox's real usage plan.

    .venv/bin/python benchmarks/amazon_ratelimit.py [--workers 4] [--seconds 60] [--time-scale 20] [--stores sqlite,redis]

The sandbox enforces Amazon's plan for Orders v2026-01-01 getOrder (0.5 requests/s, burst 30) × the time scale.
Each worker process runs its own AmazonClient and calls getOrder in a loop as fast as the shared limiter lets it;
a RateLimited (the bucket is empty) is handled as the job queue would — the worker waits the named time and tries
again. Printed per store: calls, 429 answers, and the achieved steady rate (after the initial burst) against the
plan rate × time scale. Targets 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

OPERATION = "getOrder"


def worker(url: str, store_url: str, namespace: str, time_scale: float, order_ids: list[str], seconds: float,
           ready, go, results) -> None:
    from erpsync import logs
    from erpsync.amazon.client import AmazonClient
    from erpsync.amazon.ratelimit import RateLimiter
    from erpsync.config import Settings
    from erpsync.errors import RateLimited, Throttled

    logs.configure("WARNING")
    settings = Settings(base_dir=Path(tempfile.gettempdir()))
    settings.sandbox.time_scale = time_scale
    limiter = RateLimiter(store_url, namespace=namespace, time_scale=time_scale)
    calls: list[float] = []
    throttled = errors = waits = 0
    with AmazonClient(settings, endpoint=url, limiter=limiter) as client:
        client.lwa.access_token()  # warm up outside the measured window
        ready.put(True)
        go.wait()
        deadline = time.time() + seconds
        index = 0
        while time.time() < deadline:
            try:
                client.orders.get_order(order_ids[index % len(order_ids)])
                calls.append(time.time())
                index += 1
            except RateLimited as exc:
                waits += 1
                time.sleep(min(exc.retry_after, max(0.0, deadline - time.time())))
            except Throttled as exc:
                throttled += 1
                time.sleep(min(exc.retry_after, max(0.0, deadline - time.time())))
            except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                errors += 1
                print(f"worker error: {type(exc).__name__}: {exc}", file=sys.stderr)
    limiter.close()
    results.put({"calls": calls, "throttled": throttled, "errors": errors, "waits": waits})


def run(store: str, store_url: str, sandbox, order_ids: list[str], workers: int, seconds: float,
        time_scale: float, start_method: str = "spawn") -> dict:
    from erpsync.amazon.ratelimit import SAFETY, USAGE_PLANS, effective_burst

    sandbox.world.throttler.reset()  # Amazon's buckets start full, as ours do
    context = multiprocessing.get_context(start_method)
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    namespace = f"erpsync-bench-{uuid.uuid4().hex[:8]}"
    processes = [context.Process(target=worker, args=(sandbox.url, store_url, namespace, time_scale, order_ids,
                                                       seconds, ready, go, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    go.set()
    outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    calls = sorted(t for outcome in outcomes for t in outcome["calls"])
    plan_rate, plan_burst = USAGE_PLANS[OPERATION]
    steady = calls[effective_burst(plan_rate * time_scale, plan_burst):]  # after the initial burst
    achieved = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    target = plan_rate * time_scale
    return {
        "store": store, "workers": workers, "seconds": seconds, "calls": len(calls),
        "per_worker": [len(outcome["calls"]) for outcome in outcomes],
        "throttled_429": sum(outcome["throttled"] for outcome in outcomes),
        "errors": sum(outcome["errors"] for outcome in outcomes),
        "rate_limited_waits": sum(outcome["waits"] for outcome in outcomes),
        "achieved_rate": achieved, "plan_rate": target, "limiter_rate": target * SAFETY,
        "deviation": (achieved - target) / target,
        "gap_stdev_ms": statistics.pstdev([b - a for a, b in zip(steady, steady[1:])]) * 1000 if len(steady) > 2
        else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)

    from erpsync.sandbox.scenario import GenerateOrders, generate_orders
    from erpsync.sandbox.server import start

    failed = False
    with start(time_scale=args.time_scale, seed=7) as sandbox, tempfile.TemporaryDirectory() as tmp:
        order_ids = generate_orders(sandbox.world, GenerateOrders(count=50, status="UNSHIPPED", seed=7))
        print(f"sandbox {sandbox.url}, time scale {args.time_scale:g}, {OPERATION} plan 0.5/s burst 30 "
              f"→ {0.5 * args.time_scale:g}/s; {args.workers} worker processes, {args.seconds:g} s per store")
        for store in args.stores.split(","):
            url = f"sqlite:///{tmp}/ratelimit.db" if store == "sqlite" else args.redis_url
            result = run(store, url, sandbox, order_ids, args.workers, args.seconds, args.time_scale)
            ok = result["throttled_429"] == 0 and abs(result["deviation"]) <= 0.05 and result["errors"] == 0
            failed |= not ok
            print(f"[{store:6}] calls {result['calls']} (per worker {result['per_worker']}), "
                  f"429s {result['throttled_429']}, errors {result['errors']}, "
                  f"RateLimited waits {result['rate_limited_waits']}; steady rate {result['achieved_rate']:.3f}/s "
                  f"vs plan {result['plan_rate']:.3f}/s ({result['deviation']:+.2%}; limiter runs at "
                  f"{result['limiter_rate']:.3f}/s), gap stdev {result['gap_stdev_ms']:.1f} ms → "
                  f"{'OK' if ok else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
