"""Running the messages of a runtime's queues here, without a worker, through huey's real storage."""

from __future__ import annotations

from datetime import timedelta

from erpsync.runtime.store import utcnow


def run_all(runtime, queues=("amazon", "sage500")) -> list:
    """Run every message of ``queues`` once, queued or scheduled, due or not; returns their outcomes."""
    outcomes = []
    for huey in (runtime.queues[q] for q in queues):
        tasks = huey.read_schedule((utcnow() + timedelta(days=365)).replace(tzinfo=None))
        while (task := huey.dequeue()) is not None:
            tasks.append(task)
        outcomes += [task.execute() for task in tasks]
    return outcomes
