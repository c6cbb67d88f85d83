"""The Prometheus alert rules shipped in deploy/prometheus: valid for promtool, firing as their unit tests say, and
reading metrics that erpsync web really exports (or that the rules file names as coming from other flows)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from erpsync.runtime import deadletter
from tests.conftest import REPO
from tests.web.conftest import API_TOKEN

RULES = REPO / "deploy" / "prometheus" / "erpsync-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "erpsync-rules.test.yml"
# series the rules read that other flows export once merged (listed in the rules file's header)
FROM_OTHER_FLOWS: set[str] = set()  # every metric the rules read is exported by erpsync now


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_rules_fire_as_their_unit_tests_expect(promtool):
    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            timeout=60, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_rules_read_is_exported(web):
    class Refused(Exception):
        code, record = "unknown_sku", "113-0000000-0000001"

    class ClosedPeriod(Exception):
        code, record = "closed_period", "2026-03"

    deadletter.capture(web.runtime.store, job="apply_order", queue="sage500", key="apply:1", payload={},
                       exc=Refused("SKU"), attempts=1, first_failed_at=datetime.now(timezone.utc))
    deadletter.capture(web.runtime.store, job="post_settlement", queue="sage500", key="post_settlement:1234",
                       payload={}, exc=ClosedPeriod("fiscal period 2026-03 is closed in Sage"), attempts=1,
                       first_failed_at=datetime.now(timezone.utc))
    text = httpx.get(f"{web.url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).text
    exported = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    exprs = re.findall(r"expr: (.+)", RULES.read_text())
    used = {name for expr in exprs for name in re.findall(r"\b(erpsync_\w+)", expr)}
    assert used - FROM_OTHER_FLOWS <= exported, sorted(used - FROM_OTHER_FLOWS - exported)
    assert {"erpsync_sync_lag_seconds", "erpsync_dead_letters_open", "erpsync_jobs_retrying",
            "erpsync_settlements_rejected"} <= used
    # the settlement the ledger misses is counted; the order's dead letter is not a settlement
    assert re.search(r"^erpsync_settlements_rejected 1\.0$", text, re.M), text


def test_the_oldest_unfinished_feed_is_exported_for_the_stuck_feed_alert(web):
    """ErpsyncFeedStuck reads erpsync_feed_oldest_unfinished_seconds{feed_type}: 0 with no feed open, then the
    age of the oldest feed not finished (queued, IN_QUEUE, IN_PROGRESS); finished ones do not count."""
    from erpsync.runtime.store import listing_feeds, utcnow

    def exported() -> float:
        text = httpx.get(f"{web.url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).text
        found = re.search(r'^erpsync_feed_oldest_unfinished_seconds\{feed_type="JSON_LISTINGS_FEED"\} (\S+)$',
                          text, re.M)
        assert found, "erpsync_feed_oldest_unfinished_seconds{feed_type} is not exported"
        return float(found.group(1))

    assert exported() == 0.0
    store = web.runtime.store.listings
    [old, new] = store.record_scan("ATVPDKIKX0DER", {}, {"A": {"quantity": 1}, "B": {"quantity": 2}}, {}, 1)
    three_hours_ago = utcnow() - timedelta(hours=3)
    with web.runtime.store.engine.begin() as conn:
        conn.execute(listing_feeds.update().where(listing_feeds.c.id == old).values(created_at=three_hours_ago))
    store.feed_update(old, status="IN_PROGRESS", feed_id="50001", submitted_at=three_hours_ago)
    assert 3 * 3600 <= exported() < 4 * 3600  # over the rule's 2 h: the alert would fire
    store.feed_update(old, status="DONE", finished_at=utcnow())
    assert exported() < 3600  # only the newer feed, queued just now, is open
    store.feed_update(new, status="FATAL", finished_at=utcnow())
    assert exported() == 0.0
