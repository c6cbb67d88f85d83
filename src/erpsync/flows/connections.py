"""The adapters a job uses — one :class:`AmazonClient` and one :class:`Sage500Gateway` per installation (its
state store: one per runtime), made on first use and shared by the runtime's worker threads (both are
thread-safe), closed with :func:`close`. When the runtime re-reads a changed erpsync.toml, the next job gets
adapters made from the new settings."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from erpsync.amazon.client import AmazonClient
from erpsync.sage500.gateway import Sage500Gateway

if TYPE_CHECKING:
    from erpsync.flows.jobs import JobContext
    from erpsync.runtime.store import Store

_lock = threading.Lock()
_open: weakref.WeakKeyDictionary[Store, dict[str, tuple]] = weakref.WeakKeyDictionary()  # name: (settings, adapter)


def _get(ctx: JobContext, name: str, make):
    settings, store = ctx.settings, ctx.store
    with _lock:
        adapters = _open.get(store)
        if adapters is None:
            adapters = _open[store] = {}
            weakref.finalize(store, _close_all, adapters)
        made_from, adapter = adapters.get(name, (None, None))
        if made_from is not settings:
            if adapter is not None:
                adapter.close()
            adapter = make(settings)
            adapters[name] = (settings, adapter)
        return adapter


def amazon(ctx: JobContext) -> AmazonClient:
    return _get(ctx, "amazon", AmazonClient)


def sage(ctx: JobContext) -> Sage500Gateway:
    return _get(ctx, "sage", Sage500Gateway.from_settings)


def close(store: Store) -> None:
    """Close the adapters made for the jobs of the runtime whose state store is ``store`` (the next job makes new
    ones)."""
    with _lock:
        adapters = _open.pop(store, None)
    if adapters:
        _close_all(adapters)


def _close_all(adapters: dict) -> None:
    for _settings, adapter in adapters.values():
        adapter.close()
    adapters.clear()
