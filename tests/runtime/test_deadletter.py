"""Dead letter → fix the mapping → replay → success; replays that fail again; discard."""

import os

import pytest
from conftest import step

from erpsync import config
from erpsync.runtime import deadletter
from erpsync.runtime.jobs import Runtime

QUEUE = """
[queue]
max_retries = 2
backoff_base_seconds = 0.01
backoff_max_seconds = 0.02
"""
ALIAS = '\n[mapping]\nsku_aliases = { "WIDGET-BLU" = "WIDGET-BLUE" }\n'


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "erpsync.toml"
    path.write_text(QUEUE)
    return path


def fix_mapping(path):
    path.write_text(QUEUE + ALIAS)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a visible change on any fs


def test_a_missing_mapping_dead_letters_and_a_replay_after_the_fix_succeeds_in_the_running_worker(cfg):
    rt = Runtime(config.load(cfg), config_path=cfg)
    with rt.start_consumer(workers=1, poll_seconds=0.1):
        rt.enqueue("test.write_item", sku="WIDGET-BLU")
        assert rt.drain(timeout=10)
        [dead] = rt.store.dead_letters.list()
        assert dead.error_code == "unknown_sku" and dead.payload == {"sku": "WIDGET-BLU"}
        fix_mapping(cfg)  # the worker is not restarted: the replay runs with the current mapping
        replay = deadletter.replay(rt, dead.id)
        assert replay.queued and replay.dead_letter.status == "replayed"
        assert rt.drain(timeout=10)
    dead = rt.store.dead_letters.get(dead.id)
    assert (dead.status, dead.replay_result) == ("replayed", "succeeded")
    [written] = rt.store.audit_list(event="test.written")
    assert written.detail == {"sku": "WIDGET-BLU", "item": "WIDGET-BLUE"}
    assert rt.store.dead_letters.list() == []
    rt.close()


def test_a_replay_that_fails_again_leaves_a_new_dead_letter_linked_to_the_first(cfg):
    rt = Runtime(config.load(cfg), config_path=cfg)
    rt.enqueue("test.write_item", sku="WIDGET-BLU")
    [first] = step(rt)
    deadletter.replay(rt, first.dead_letter_id)
    [second] = step(rt)
    assert second.status == "dead" and second.dead_letter_id != first.dead_letter_id
    old, new = rt.store.dead_letters.get(first.dead_letter_id), rt.store.dead_letters.get(second.dead_letter_id)
    assert (old.status, old.replay_result) == ("replayed", f"failed again: dead letter {new.id}")
    assert (new.status, new.replay_of) == ("open", old.id)
    fix_mapping(cfg)
    replay = deadletter.replay(rt, new.id, now=True)  # run here, not queued
    assert replay.outcome.status == "done" and not replay.queued
    assert rt.store.dead_letters.get(new.id).replay_result == "succeeded"
    rt.close()


def test_discard_and_the_errors_that_protect_a_dead_letter(cfg):
    rt = Runtime(config.load(cfg), config_path=cfg)
    rt.enqueue("test.write_item", sku="A")
    rt.enqueue("test.write_item", sku="B")
    dead_a, dead_b = (o.dead_letter_id for o in step(rt))
    assert deadletter.discard(rt.store, dead_a).status == "discarded"
    with pytest.raises(deadletter.DeadLetterError, match="is discarded, not open"):
        deadletter.replay(rt, dead_a)
    with pytest.raises(deadletter.DeadLetterError, match="does not exist"):
        deadletter.discard(rt.store, 999)
    rt.enqueue("test.write_item", sku="B")  # the same job is pending again
    with pytest.raises(deadletter.DeadLetterError, match="already pending"):
        deadletter.replay(rt, dead_b)
    assert rt.store.dead_letters.get(dead_b).status == "open"
    assert [e.event for e in rt.store.audit_list(event="dead_letter.discarded")] == ["dead_letter.discarded"]
    rt.close()
