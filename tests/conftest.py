"""Shared fixtures.

Services (PostgreSQL, Redis) are used for real when reachable on 127.0.0.1. When they are not, tests that need them
skip with the reason — unless ERPSYNC_REQUIRE_SERVICES=1 (CI), where an unreachable service fails the test.
Each fixture makes its own database or key prefix and removes it afterwards: the services outlive the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("ERPSYNC_REQUIRE_SERVICES") == "1"
PG_HOST = os.environ.get("ERPSYNC_TEST_PG_HOST", "127.0.0.1")
REDIS_HOST = os.environ.get("ERPSYNC_TEST_REDIS_HOST", "127.0.0.1")


def spapi_reference() -> Path | None:
    """Amazon's official models and schemas (never copied into the repo)."""
    explicit = os.environ.get("ERPSYNC_SPAPI_REFERENCE")
    candidates = [Path(explicit)] if explicit else []
    candidates += [REPO.parent / "shared" / "reference" / "spapi", REPO.parent.parent / "shared" / "reference" / "spapi"]
    for path in candidates:
        if (path / "models").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def spapi_ref() -> Path:
    path = spapi_reference()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("../shared/reference/spapi is missing: CI must have Amazon's official models")
        pytest.skip("Amazon's official models (../shared/reference/spapi) are not on this machine")
    return path


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and ERPSYNC_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database (SQLAlchemy URL, psycopg 3 driver), dropped afterwards."""
    need_service("PostgreSQL", PG_HOST, 5432)
    import psycopg

    name = f"erpsync_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    """A Redis URL plus a unique key prefix in ``redis_url.prefix``; keys under the prefix are deleted afterwards."""
    need_service("Redis", REDIS_HOST, 6379)
    import redis

    prefix = f"erpsync-test-{uuid.uuid4().hex[:12]}"
    url = f"redis://{REDIS_HOST}:6379/0"

    class _Url(str):
        pass

    value = _Url(url)
    value.prefix = prefix
    try:
        yield value
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture(scope="session")
def moto_endpoint():
    """The URL of an in-process moto server (SQS and the other AWS APIs, in memory) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty directory with no config: the embedded defaults under ./.erpsync/."""
    monkeypatch.chdir(tmp_path)
    for var in ("ERPSYNC_CONFIG", "ERPSYNC_SECRETS_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path
