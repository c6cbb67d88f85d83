"""Runtime test helpers: settings with fast backoff, the test jobs, a stepper that runs queued and scheduled
messages through huey's real storage without waiting for their time."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import erpsync_test_jobs  # noqa: E402,F401  (registers the test.* jobs)
from erpsync.config import QueueSettings, Settings, StateSettings  # noqa: E402
from erpsync.runtime.jobs import Outcome, Runtime  # noqa: E402
from erpsync.runtime.store import utcnow  # noqa: E402

TEST_JOBS = str(Path(__file__).parent)


def make_settings(base: Path, *, queue_url: str = "sqlite:///.erpsync/queue.db",
                  state_url: str = "sqlite:///.erpsync/state.db", name: str = "erpsync",
                  max_retries: int = 3) -> Settings:
    return Settings(base_dir=base, state=StateSettings(url=state_url),
                    queue=QueueSettings(url=queue_url, name=name, max_retries=max_retries, workers=2,
                                        backoff_base_seconds=0.01, backoff_max_seconds=0.02))


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(make_settings(tmp_path))
    yield rt
    rt.close()


def step(rt: Runtime, queues: tuple[str, ...] = ("amazon", "sage500")) -> list[Outcome]:
    """Run every queued and scheduled message once, due or not (huey storage read for real, no consumer)."""
    outcomes = []
    for huey in (rt.queues[q] for q in queues):
        tasks = huey.read_schedule(utcnow().replace(tzinfo=None) + timedelta(days=365))
        while (task := huey.dequeue()) is not None:
            tasks.append(task)
        for task in tasks:
            outcomes.append(task.execute())
    return outcomes


def runs(rt: Runtime, marker: str) -> list[int]:
    """Attempt numbers recorded by the test jobs for ``marker``, in order."""
    events = rt.store.audit_list(event="test.run", limit=1000)
    return sorted(e.detail["attempt"] for e in events if e.detail["marker"] == marker)
