"""The fault suite's short runs: the same scenarios as ``benchmarks/faults.py`` (R1-R4), smaller, with fixed seeds.
Each waits on conditions with deadlines and asserts what the commands print: 0 lost, 0 duplicated, 0 crashed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks.harness and benchmarks.faults


@pytest.fixture(scope="session")
def sage_template(tmp_path_factory) -> Path:
    """A seeded replica, copied for each test (seeding once keeps the tests short)."""
    from benchmarks.harness import seed_replica

    return seed_replica(tmp_path_factory.mktemp("sage") / "sage500.db")


@pytest.fixture
def quiet(monkeypatch):
    """No config or secrets of the caller's; the scenarios' progress lines go nowhere."""
    for var in ("ERPSYNC_CONFIG", "ERPSYNC_SECRETS_FILE", "ERPSYNC_WEBHOOK_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return lambda *_args: None
