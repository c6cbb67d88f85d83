"""The fault suite, as repeatable commands: each prints lost, duplicated, dead-lettered and crashed counts and exits 1
when a target is missed (0 lost, 0 duplicated, 0 crashed, 0 dead letters for sound orders; R4: every bad record a
dead letter or a 4xx with a reason).

    .venv/bin/python benchmarks/faults.py r1 [--orders 1000] [--kills 20] [--workers 2] [--seed 11]
    .venv/bin/python benchmarks/faults.py r2 [--orders 600] [--rate 20] [--outage-minutes 5] [--cancels 30]
    .venv/bin/python benchmarks/faults.py r3 [--orders 600] [--rate 20] [--error-rate 0.05] [--copies 3]
    .venv/bin/python benchmarks/faults.py r4 [--examples 300]

R1  SIGKILL of ``erpsync worker`` processes at random points while orders import; the state store on PostgreSQL
    and the queues on Redis (127.0.0.1), in a database and under a key prefix of the run's own, removed afterwards.
R2  Sage unreachable (its URL names a directory) for N sandbox-minutes while orders stream in, with cancellations
    during the outage: of orders Sage already holds (voided after it) and of orders it has not seen yet.
R3  SP-API answering 5xx to a share of the calls, storms of 429 (every call throttled for a second, then two calm
    seconds), every ORDER_CHANGE delivered ``--copies`` times and each batch in reverse order.
R4  hypothesis fuzzing through the real entry points: the webhook over HTTP, the SQS consumer's per-message step,
    the order translator, the sandbox -> import_order -> apply_order path, and settlement files through
    ``erpsync settlements import``.

The short versions run in the test suite (``tests/faults``) with the same functions and smaller sizes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks.harness`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import REDIS_URL, Rig, Tally, postgres_database, redis_prefix  # noqa: E402

# --- R1: workers killed ------------------------------------------------------------------------------------------


def r1(base: Path, *, orders: int = 1000, kills: int = 20, workers: int = 2, seed: int = 11,
       timeout: float = 600.0, sage_template: Path | None = None, state_url: str | None = None,
       queue_prefix: str | None = None, say=print) -> Tally:
    """Place the orders in ``kills`` batches; after each batch, once the workers write again, wait a random moment
    and SIGKILL a random worker (a fresh one replaces it at once). Then wait until every order is in Sage."""
    rng = random.Random(seed)
    with ExitStack() as made:  # a database and a key prefix of its own unless the caller (a test) gives them
        pg = state_url or made.enter_context(postgres_database())
        prefix = queue_prefix or made.enter_context(redis_prefix())
        rig = made.enter_context(Rig(base, time_scale=500.0, seed=seed, state_url=pg, queue_url=REDIS_URL,
                                     queue_name=prefix, rate_limits=False, sage_template=sage_template))
        rig.start_web()
        live = [rig.spawn_worker(threads=2) for _ in range(workers)]
        ids: list[str] = []
        started = time.monotonic()
        sizes = [orders // kills + (1 if n < orders % kills else 0) for n in range(kills)]
        for number, size in enumerate(sizes, 1):
            if size:
                ids += rig.generate(size, seed=seed * 1000 + number)
            # kill while the workers are writing (a worker still starting up has nothing to lose)
            done = rig.settled(ids, ("written",))
            rig.wait(lambda: rig.settled(ids, ("written",)) > done or done == len(ids), timeout,
                     "the workers to write an order")
            time.sleep(rng.uniform(0.0, 0.5))
            victim = live.pop(rng.randrange(len(live)))
            rig.kill(victim)
            live.append(rig.spawn_worker(threads=2))
            say(f"kill {number}/{kills}: {rig.settled(ids, ('written',))}/{len(ids)} written")
        notes: dict[str, Any] = {}
        rig.settle(lambda: rig.settled(ids, ("written",)) == len(ids), timeout, "every order written", notes)
        seconds = time.monotonic() - started
        if not notes:
            rig.settle(rig.idle, 60, "no job left pending", notes)
        return rig.tally(ids, kills=kills, seconds=round(seconds, 1), **notes)


# --- R2: Sage unreachable ----------------------------------------------------------------------------------------


def stream(rig: Rig, count: int, rate: float, seed: int, during=lambda placed: None) -> list[str]:
    """Place ``count`` orders at ``rate`` per second (batches every 0.25 s), calling ``during(ids)`` between."""
    ids: list[str] = []
    batch = max(1, round(rate / 4))
    started = time.monotonic()
    while len(ids) < count:
        ids += rig.generate(min(batch, count - len(ids)), seed=seed * 100_000 + len(ids))
        during(ids)
        time.sleep(max(0.0, started + len(ids) / rate - time.monotonic()))
    return ids


def settled_against_amazon(rig: Rig, ids: list[str]) -> bool:
    """Every open order in Sage, no cancelled one open there, nothing left to do."""
    tally = rig.tally(ids)
    return not tally.lost and not tally.cancel_missed and rig.idle()


def r2(base: Path, *, orders: int = 600, rate: float = 20.0, outage_minutes: float = 5.0, cancels: int = 30,
       time_scale: float = 60.0, seed: int = 12, timeout: float = 300.0, sage_template: Path | None = None,
       say=print) -> Tally:
    """Stream orders; once a fifth is placed and half of ``cancels`` are in Sage, Sage becomes unreachable for
    ``outage_minutes`` of sandbox time; during it ``cancels`` orders are cancelled on Amazon, half of them already
    in Sage, half not yet."""
    rng = random.Random(seed)
    # a small retry budget: had the outage spent it, the orders would be dead letters
    with Rig(base, time_scale=time_scale, seed=seed, sage_template=sage_template,
             sections={"queue": {"max_retries": 3}}) as rig:
        rig.start_web()
        sage_url = rig.sections["sage500"]["url"]
        outage: dict[str, Any] = {}
        cancelled: list[str] = []

        def during(ids: list[str]) -> None:
            now = rig.sandbox_seconds()
            written = [o for o in ids if rig.journal(o) == "written"] if not outage and len(ids) >= orders // 5 else []
            if written and len(written) >= (cancels + 1) // 2:  # half the cancellations are of orders Sage holds
                rig.configure("sage500", url=f"sqlite:///{rig.data}")  # a directory: SQLite cannot open it
                outage.update(start=now, written=written)
                say(f"Sage down at order {len(ids)} ({len(outage['written'])} in Sage)")
            elif outage and "end" not in outage:
                before = [o for o in outage["written"] if o not in cancelled]
                fresh = [o for o in ids if o not in outage["written"] and o not in cancelled]
                if len(cancelled) < cancels and before and fresh:
                    for pool in (before, fresh):
                        if len(cancelled) < cancels:
                            victim = rng.choice(pool)
                            rig.cancel(victim)
                            cancelled.append(victim)
                if now - outage["start"] >= outage_minutes * 60:
                    rig.configure("sage500", url=sage_url)
                    outage["end"] = now
                    say(f"Sage back after {(now - outage['start']) / 60:.1f} sandbox-minutes, "
                        f"{len(cancelled)} cancelled during the outage")

        with rig.workers():
            ids = stream(rig, orders, rate, seed, during)
            notes: dict[str, Any] = {}
            deadline = time.monotonic() + timeout
            while "end" not in outage:  # the stream ended first: the outage still lasts its minutes
                if time.monotonic() > deadline:
                    notes["timed_out"] = "the outage never began or ended (no order reached Sage?)"
                    outage.setdefault("start", rig.sandbox_seconds())
                    outage["end"] = rig.sandbox_seconds()
                    break
                during(ids)
                time.sleep(0.1)
            rig.settle(lambda: settled_against_amazon(rig, ids), timeout, "every order settled after the outage",
                       notes)
        return rig.tally(ids, cancelled=len(cancelled),
                         outage_sandbox_minutes=round((outage["end"] - outage["start"]) / 60, 1), **notes)


# --- R3: a faulty Amazon -----------------------------------------------------------------------------------------


def r3(base: Path, *, orders: int = 600, rate: float = 20.0, error_rate: float = 0.05, copies: int = 3,
       storm: tuple[float, float] = (1.0, 2.0), time_scale: float = 60.0, seed: int = 13, timeout: float = 300.0,
       recovery: float = 180.0, sage_template: Path | None = None, say=print) -> Tally:
    """Orders streamed while Amazon answers 5xx to ``error_rate`` of the calls, throttles everything for
    ``storm[0]`` s every ``storm[0] + storm[1]`` s, and every notification arrives ``copies`` times, each batch
    in reverse order. Orders not in Sage by ``timeout`` are given ``recovery`` seconds more with the faults off:
    the tally says whether they were late or lost (``written_under_faults``, ``after_faults_stopped``)."""
    with Rig(base, time_scale=time_scale, seed=seed, sage_template=sage_template) as rig:
        rig.start_web(copies=copies)
        rig.control("PATCH", "faults", json={"error_rate": error_rate, "out_of_order_notifications": True})
        calm = threading.Event()
        storms = [0]

        def storming() -> None:
            while not calm.is_set():
                rig.control("PATCH", "faults", json={"throttle_storm_rate": 1.0})
                storms[0] += 1
                calm.wait(storm[0])
                rig.control("PATCH", "faults", json={"throttle_storm_rate": 0.0})
                calm.wait(storm[1])

        stormer = threading.Thread(target=storming, daemon=True)
        stormer.start()
        try:
            with rig.workers():
                ids = stream(rig, orders, rate, seed)
                say(f"{len(ids)} orders placed; {rig.settled(ids, ('written',))} written")
                notes: dict[str, Any] = {}
                rig.settle(lambda: rig.settled(ids, ("written",)) == len(ids), timeout, "every order written",
                           notes)
                calm.set()
                stormer.join()
                rig.control("DELETE", "faults")
                if notes:  # not all in within the deadline: are they late, or lost? Amazon is sound again
                    notes["written_under_faults"] = rig.settled(ids, ("written",))
                    quiet_since = time.monotonic()
                    after: dict[str, Any] = {}
                    rig.settle(lambda: rig.settled(ids, ("written",)) == len(ids), recovery,
                               "every order written once the faults stopped", after)
                    notes["after_faults_stopped"] = (after.get("timed_out") or
                                                     f"all written {time.monotonic() - quiet_since:.0f} s later")
                else:
                    rig.settle(rig.idle, 60, "no job left pending", notes)
        finally:
            calm.set()
        published = rig.control("GET", "state")["notifications_published"]
        say(f"{storms[0]} storms; {published} notifications published, each delivered {copies} times")
        answers = rig.answers
        return rig.tally(ids, storms=storms[0], deliveries=published * copies, **notes,
                         answered_429=sum(n for (op, status), n in answers.items() if status == 429),
                         answered_5xx=sum(n for (op, status), n in answers.items() if status >= 500))


# --- R4: fuzzing -------------------------------------------------------------------------------------------------


def r4(base: Path, *, examples: int = 300, seed: int = 14, sage_template: Path | None = None,
       say=print) -> Tally:
    """Every fuzz target below, ``examples`` inputs each (the import path: a tenth of that, each one a whole
    import); returns the counts, ``crashed`` being any 5xx, exception or dead letter that is not erpsync's."""
    from benchmarks import fuzz

    with Rig(base, time_scale=60.0, seed=seed, sage_template=sage_template) as rig:
        rig.start_web()
        results = {
            "webhook": fuzz.webhook(rig, examples, seed),
            "sqs": fuzz.sqs(rig, examples, seed),
            "translator": fuzz.translator(rig, examples, seed),
            "import": fuzz.import_path(rig, max(5, examples // 10), seed),
            "settlement files": fuzz.settlement_files(rig, examples, seed),
        }
        for name, result in results.items():
            say(f"R4 {name}: {result}")
        tally = rig.tally([], crashed=sum(r.crashed for r in results.values()))
        tally.extra = {name: r.summary() for name, r in results.items()}
        # the dead letters of fuzzed imports are the expected outcome, each checked in fuzz.import_path
        tally.extra["bad records refused with a reason"] = sum(r.refused for r in results.values())
        return tally


# --- command line ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from erpsync import logs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="fault", required=True)
    one = commands.add_parser("r1", help="SIGKILL of workers while orders import (Redis + PostgreSQL)")
    one.add_argument("--orders", type=int, default=1000)
    one.add_argument("--kills", type=int, default=20)
    one.add_argument("--workers", type=int, default=2)
    one.add_argument("--seed", type=int, default=11)
    two = commands.add_parser("r2", help="Sage unreachable while orders stream, cancellations during it")
    two.add_argument("--orders", type=int, default=600)
    two.add_argument("--rate", type=float, default=20.0)
    two.add_argument("--outage-minutes", type=float, default=5.0)
    two.add_argument("--cancels", type=int, default=30)
    two.add_argument("--seed", type=int, default=12)
    three = commands.add_parser("r3", help="5xx, 429 storms, notifications repeated and out of order")
    three.add_argument("--orders", type=int, default=600)
    three.add_argument("--rate", type=float, default=20.0)
    three.add_argument("--error-rate", type=float, default=0.05)
    three.add_argument("--copies", type=int, default=3)
    three.add_argument("--seed", type=int, default=13)
    four = commands.add_parser("r4", help="hypothesis fuzzing through the real entry points")
    four.add_argument("--examples", type=int, default=300)
    four.add_argument("--seed", type=int, default=14)
    args = vars(parser.parse_args(argv))
    fault = args.pop("fault")
    logs.configure(level="CRITICAL")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"erpsync-{fault}-") as tmp:
        tally = {"r1": r1, "r2": r2, "r3": r3, "r4": r4}[fault](Path(tmp), **args)
    print(tally.line(fault.upper()) + f" ({time.monotonic() - started:.0f} s)")
    print(json.dumps({"lost": tally.lost[:20], "duplicated": tally.duplicated[:20],
                      "cancel_missed": tally.cancel_missed[:20]}))
    # R4's dead letters are its bad orders refused, each checked in benchmarks/fuzz.py
    return 0 if tally.ok(dead_letters=tally.dead_letters if fault == "r4" else 0) else 1


if __name__ == "__main__":
    sys.exit(main())
