"""Fixtures of the sandbox tests: a running sandbox with roomy token buckets and an authorized HTTP client on it.

A module chooses its world by overriding ``sandbox_options`` (keyword arguments of ``server.start``); a module that
needs extra state in the world overrides ``sandbox`` and asks for this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from erpsync.sandbox.server import RunningSandbox, start
from tests.sandbox.helpers import client, roomy


@pytest.fixture
def sandbox_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def sandbox(sandbox_options: dict[str, Any]) -> Iterator[RunningSandbox]:
    with start(**sandbox_options) as running:
        yield roomy(running)


@pytest.fixture
def api(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with client(sandbox) as http:
        yield http
