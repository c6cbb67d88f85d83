"""Config reload never closes an adapter under a job: a job holding the Amazon client made from the old
erpsync.toml completes its call after a reload made a new one for the next job, and the old client is closed when
that job ends."""

from __future__ import annotations

import threading

from erpsync.amazon.client import AmazonClient
from erpsync.flows import connections
from erpsync.flows.jobs import JobContext, job

HOLDING: dict[str, threading.Event] = {}


@job("test.reload_holder", queue="amazon")
def holder(ctx: JobContext, amazon_order_id: str) -> dict:
    """Takes the Amazon client, waits until the test has reloaded the config, then uses the client."""
    client = connections.amazon(ctx)
    HOLDING["taken"].set()
    assert HOLDING["reloaded"].wait(60), "the test never reloaded the config"
    order = client.orders.get_order(amazon_order_id)
    return {"client": id(client), "status": order.status.value}


@job("test.reload_user", queue="amazon")
def user(ctx: JobContext) -> int:
    return id(connections.amazon(ctx))


def test_a_job_holding_the_old_client_completes_its_call_after_a_reload(pipeline, monkeypatch):
    closed: list[int] = []
    close = AmazonClient.close

    def recording_close(self):
        closed.append(id(self))
        close(self)

    monkeypatch.setattr(AmazonClient, "close", recording_close)
    [oid] = pipeline.generate(1, seed=91)
    runtime = pipeline.runtime
    HOLDING.update(taken=threading.Event(), reloaded=threading.Event())
    outcome = {}
    running = threading.Thread(target=lambda: outcome.update(
        held=runtime.run("test.reload_holder", {"amazon_order_id": oid})))
    running.start()
    try:
        assert HOLDING["taken"].wait(30)
        old = connections.amazon(runtime_ctx(runtime))
        pipeline.configure("amazon", timeout_seconds=11.0)  # erpsync.toml changed: the next job reloads it
        fresh = runtime.run("test.reload_user")
        assert fresh.status == "done" and fresh.value != id(old)  # the next job got a client of the new settings
        assert closed == []  # retired, still in use: open
    finally:
        HOLDING["reloaded"].set()
        running.join(60)
    held = outcome["held"]
    assert held.status == "done", held.error
    assert held.value == {"client": id(old), "status": "Unshipped"}  # the old client's call went through
    assert closed == [id(old)]  # closed when the last job using it ended; the new one stays open


def runtime_ctx(runtime):
    """The settings and store :mod:`erpsync.flows.connections` reads of a job context."""

    class Ctx:
        settings, store = runtime.settings, runtime.store

    return Ctx()


def test_a_dropped_store_finalised_while_an_adapter_is_made_does_not_deadlock():
    """The garbage collector may run a dropped state store's finalizer (which closes its adapters) in the very
    thread that is making an adapter for another store under the module's lock: it must not wait on that lock."""
    import gc
    from types import SimpleNamespace

    class Closable:
        closed = False

        def close(self):
            self.closed = True

    class FakeStore:  # weakly referenced and hashable, as a Store is
        pass

    dropped_store, settings = FakeStore(), object()
    old = Closable()
    connections._get(SimpleNamespace(settings=settings, store=dropped_store), "test", lambda _settings: old)

    def make(_settings):
        nonlocal dropped_store
        dropped_store = None  # the last reference: the finalizer runs now, inside _get's lock
        gc.collect()
        return Closable()

    done = threading.Event()
    live_store = FakeStore()
    worker = threading.Thread(target=lambda: (connections._get(SimpleNamespace(settings=settings, store=live_store),
                                                               "test", make), done.set()), daemon=True)
    worker.start()
    assert done.wait(30), "making an adapter deadlocked on the finalizer of a dropped store"
    assert old.closed  # the dropped store's adapter was closed by its finalizer
    connections.close(live_store)
