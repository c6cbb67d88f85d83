"""The adapters a job uses — one :class:`AmazonClient` and one :class:`Sage500Gateway` per installation (its
state store: one per runtime), made on first use and shared by the runtime's worker threads (both are
thread-safe), closed with :func:`close`.

When the runtime re-reads a changed erpsync.toml, the next job gets adapters made from the new settings; the old
ones are retired, not closed under a job still using them: each job run takes the adapters it uses within
:func:`in_use` (the runtime wraps every run in it), and a retired adapter is closed when the last run that took
it ends."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from erpsync.amazon.client import AmazonClient
from erpsync.sage500.gateway import Sage500Gateway

if TYPE_CHECKING:
    from erpsync.config import Settings
    from erpsync.flows.jobs import JobContext
    from erpsync.runtime.store import Store


@dataclass(eq=False)
class _Made:
    """An adapter, the settings it was made from, how many job runs use it, and whether newer settings replaced
    it (then it is closed when ``users`` drops to 0)."""

    settings: Settings
    adapter: Any
    users: int = 0
    retired: bool = False


# Reentrant: the garbage collector may run the finalizer of another, dropped state store (``_close_all``) in a thread
# that holds the lock while it makes an adapter; a plain Lock deadlocked that thread and every later job.
_lock = threading.RLock()
_open: weakref.WeakKeyDictionary[Store, dict[str, _Made]] = weakref.WeakKeyDictionary()
_run: ContextVar[list[_Made] | None] = ContextVar("erpsync_connections_run", default=None)


def _get(ctx: JobContext, name: str, make: Callable[[Settings], Any]):
    settings, store = ctx.settings, ctx.store
    held = _run.get()
    retired = None
    with _lock:
        adapters = _open.get(store)
        if adapters is None:
            adapters = _open[store] = {}
            weakref.finalize(store, _close_all, adapters)
        made = adapters.get(name)
        if made is None or made.settings is not settings:
            fresh = _Made(settings, make(settings))  # a config error leaves the adapter in place
            if made is not None:
                made.retired = True
                retired = made if made.users == 0 else None
            made = adapters[name] = fresh
        if held is not None and not any(m is made for m in held):
            made.users += 1
            held.append(made)
    if retired is not None:
        retired.adapter.close()
    return made.adapter


def amazon(ctx: JobContext) -> AmazonClient:
    return _get(ctx, "amazon", AmazonClient)


def sage(ctx: JobContext) -> Sage500Gateway:
    return _get(ctx, "sage", Sage500Gateway.from_settings)


@contextmanager
def in_use() -> Iterator[None]:
    """One job run: the adapters it takes stay open until it ends, even when a config reload replaces them
    meanwhile. (Outside it, an adapter is not counted: a reload may close it under its caller.)"""
    held: list[_Made] = []
    token = _run.set(held)
    try:
        yield
    finally:
        _run.reset(token)
        closing = []
        with _lock:
            for made in held:
                made.users -= 1
                if made.retired and made.users == 0:
                    closing.append(made)
        for made in closing:
            made.adapter.close()


def close(store: Store) -> None:
    """Close the adapters made for the jobs of the runtime whose state store is ``store`` (the next job makes new
    ones); one a job still uses is closed when that run ends."""
    with _lock:
        adapters = _open.pop(store, None)
    if adapters:
        _close_all(adapters)


def _close_all(adapters: dict[str, _Made]) -> None:
    with _lock:
        made = list(adapters.values())
        adapters.clear()
        for m in made:
            m.retired = True
        idle = [m for m in made if m.users == 0]
    for m in idle:
        m.adapter.close()
