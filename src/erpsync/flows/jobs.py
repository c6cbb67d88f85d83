"""Job declarations: a flow names a plain function as a job on a queue; the runtime runs it.

    @job("import_order", queue="amazon")
    def import_order(ctx: JobContext, amazon_order_id: str) -> str: ...

The registry maps names to functions, so a message — or a dead letter replayed next week — runs the code deployed
now. :class:`JobContext` is what a job may use of the process that runs it; ``erpsync.runtime.jobs`` provides it
and executes the jobs (flows declare, the runtime runs: the arrows point down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from erpsync.errors import Permanent

if TYPE_CHECKING:
    from erpsync.config import Settings
    from erpsync.runtime.store import Store

QUEUES = ("amazon", "sage500")  # amazon: SP-API work; sage500: work next to SQL Server (an on-premises agent)

F = TypeVar("F", bound=Callable[..., Any])


class UnknownJob(Permanent):
    code = "unknown_job"


@dataclass(frozen=True)
class Job:
    name: str
    queue: str
    func: Callable[..., Any]


_REGISTRY: dict[str, Job] = {}


def job(name: str, *, queue: str) -> Callable[[F], F]:
    """Register ``func(ctx, **kwargs)`` as the job ``name`` on ``queue`` ('amazon' or 'sage500')."""
    if queue not in QUEUES:
        raise ValueError(f"job {name!r}: unknown queue {queue!r}; erpsync has {', '.join(QUEUES)}")

    def register(func: F) -> F:
        known = _REGISTRY.get(name)
        where = f"{func.__module__}.{func.__qualname__}"
        if known and f"{known.func.__module__}.{known.func.__qualname__}" != where:
            raise ValueError(f"job name {name!r} is taken by {known.func.__module__}.{known.func.__qualname__}")
        _REGISTRY[name] = Job(name, queue, func)
        return func

    return register


def get(name: str) -> Job:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownJob(f"no job named {name!r} is registered in this process (registered: "
                         f"{', '.join(sorted(_REGISTRY)) or 'none'}); is its module in JOB_MODULES or "
                         f"[queue] job_modules?", record=name) from None


def registered() -> dict[str, Job]:
    return dict(_REGISTRY)


class Host(Protocol):
    """What the process running the flows offers them: settings (re-read when the config file changed), the state
    store, and queueing a job (``False``: the same key is pending). The web app's and the worker's runtime is one."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    def enqueue(self, name: str, key: str | None = None, *, delay: float | None = None, **kwargs: Any) -> bool: ...


class JobContext(Host, Protocol):
    """What a running job may use: the :class:`Host` and which run this is — ``job`` (its name), ``key`` (its
    identity key, pending until the run ends: a follow-up needs a key of its own), ``attempt`` (1 on the first
    run)."""

    @property
    def job(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def attempt(self) -> int: ...
