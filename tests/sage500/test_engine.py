"""Engines on the replica: the gateway opens an existing SQLite file only; creating one is for the replica commands
and ``erpsync check``. A worker that reaches Sage before ``check`` gets a retryable error naming the file and the
fix, and leaves nothing behind that ``check`` would then mistake for a seeded replica."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from erpsync.config import Settings
from erpsync.errors import SageUnavailable, classify
from erpsync.commands.check import check_sage500
from erpsync.sage500 import replica
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway

FIX = r"run `erpsync check` \(creates and seeds it\) or `erpsync sage500 replica create`"


def test_worker_before_check_gets_a_retryable_error_and_check_still_seeds(tmp_path, make_order):
    settings = Settings(base_dir=tmp_path)
    path = tmp_path / ".erpsync" / "sage500.db"
    with Sage500Gateway.from_settings(settings) as gateway:
        for access in (gateway.item_ids, gateway.check_schema,
                       lambda: gateway.create_sales_order(make_order("113-0000001-0000009"))):
            with pytest.raises(SageUnavailable, match=f"replica file {path} does not exist: {FIX}") as caught:
                access()
            assert classify(caught.value) == "retryable" and caught.value.spend_retry
        assert not path.exists()  # nothing created for `check` to mistake for a replica

        result = check_sage500(settings)
        assert result.ok and "created the replica and seeded company SOA" in result.detail, result
        assert "WIDGET-BLU-L" in gateway.item_ids()  # the same gateway (a running worker) now reaches it
        written = gateway.create_sales_order(make_order("113-0000001-0000009"))
        assert gateway.order_by_amazon_id("113-0000001-0000009").SOKey == written.SOKey


def test_replica_create_makes_the_file_the_gateway_then_opens(tmp_path):
    url = f"sqlite:///{tmp_path / 'sage.db'}"
    engine = make_engine(url)  # what `erpsync sage500 replica create` uses: creates the file
    try:
        assert replica.create(engine)
    finally:
        engine.dispose()
    existing = make_engine(url, create=False)
    try:
        assert Sage500Gateway(existing).check_schema() == []
    finally:
        existing.dispose()


def test_open_existing_only_handles_awkward_paths_and_memory(tmp_path):
    path = tmp_path / "my replica #1 (100%).db"  # characters a SQLite URI must escape
    created = make_engine(f"sqlite:///{path}")
    with created.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    created.dispose()
    existing = make_engine(f"sqlite:///{path}", create=False)
    try:
        with existing.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))  # read-write, not read-only
            assert conn.execute(text("SELECT sum(x) FROM t")).scalar_one() == 3
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        existing.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no second file under an unescaped name
    memory = make_engine("sqlite://", create=False)
    with memory.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    memory.dispose()
