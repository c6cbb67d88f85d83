"""The distributed shape, proven with real processes: the queue on Redis, the state store on PostgreSQL, three
``erpsync worker --queue amazon`` processes and ``erpsync web`` in "the cloud" (whose config cannot reach Sage), and
one ``erpsync worker --queue sage500`` as the on-premises agent (whose config cannot reach Amazon). Orders notified
by webhook reach Sage exactly once, the warehouse ships them, and every package is confirmed on Amazon exactly once.
``erpsync run`` (everything in one process, the one-machine shape) does the same on the embedded defaults."""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from erpsync.sage500 import warehouse
from tests.flows.conftest import write_toml
from tests.processes import stop

ERPSYNC = str(Path(sys.executable).parent / "erpsync")
ORDERS = 12
UNREACHABLE_SAGE = "postgresql+psycopg://nobody@127.0.0.1:9/no_sage_in_the_cloud"
UNREACHABLE_AMAZON = "http://127.0.0.1:9"  # the discard port: nothing listens


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen, pipeline) -> None:
    def up() -> bool:
        assert process.poll() is None, process.communicate(timeout=10)[0]
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    pipeline.wait(up, timeout=60, what=f"{url}/health")


def ship_everything(pipeline, order_ids: list[str]) -> None:
    """The replica's warehouse ships every written order in one package."""
    for oid in order_ids:
        order = pipeline.sage_order(oid)
        ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [
            {"lines": {line.SOLineKey: line.QtyOrd for line in order.lines},
             "tracking_no": f"1Z999AA1{order.SOKey:010d}"}])
        warehouse.commit_shipment(pipeline.engine, ship_key)


def assert_exactly_once(pipeline, order_ids: list[str]) -> None:
    for oid in order_ids:
        assert pipeline.sage_rows(oid) == (1, 1), oid  # one extension row, one sales order
        assert len(pipeline.confirmed(oid)) == 1, oid  # one package, confirmed once
    assert pipeline.runtime.store.dead_letters.list() == []


@pytest.mark.services
@pytest.mark.slow
def test_three_cloud_workers_web_and_an_on_premises_agent_move_orders_exactly_once(make_pipeline, postgres_url,
                                                                                    redis_url):
    pipeline = make_pipeline(state={"url": postgres_url},
                             queue={"url": str(redis_url), "name": redis_url.prefix, "workers": 2},
                             orders={"shipment_scan_seconds": 1, "sync_interval_seconds": 5})
    cloud = copy.deepcopy(pipeline.sections)
    cloud.setdefault("sage500", {})["url"] = UNREACHABLE_SAGE
    agent = copy.deepcopy(pipeline.sections)
    agent["amazon"].update(sandbox_url=UNREACHABLE_AMAZON, lwa_url=f"{UNREACHABLE_AMAZON}/auth/o2/token")
    agent.setdefault("sage500", {})["url"] = pipeline.settings.sage500.url
    write_toml(pipeline.base / "cloud.toml", cloud)
    write_toml(pipeline.base / "agent.toml", agent)
    port = free_port()
    env = dict(os.environ)

    def spawn(*args: str, config: str) -> subprocess.Popen:
        return subprocess.Popen([ERPSYNC, *args, "--config", str(pipeline.base / config)], cwd=pipeline.base,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    processes = [spawn("web", "--port", str(port), config="cloud.toml")]
    try:
        processes += [spawn("worker", "--queue", "amazon", config="cloud.toml") for _ in range(3)]
        processes.append(spawn("worker", "--queue", "sage500", config="agent.toml"))
        url = f"http://127.0.0.1:{port}"
        wait_up(url, processes[0], pipeline)
        pipeline.webhook_to(f"{url}/notifications")
        order_ids = pipeline.generate(ORDERS, seed=61)
        pipeline.wait_journal(order_ids, "written", timeout=180)
        ship_everything(pipeline, order_ids)
        pipeline.wait_journal(order_ids, "confirmed", timeout=180)
    finally:
        outputs = [stop(process)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    # only the agent could reach Sage and only the cloud could reach Amazon, so every order written and every
    # package confirmed shows the division of labour held
    assert_exactly_once(pipeline, order_ids)


@pytest.mark.slow
def test_erpsync_run_is_the_whole_installation_in_one_process(make_pipeline):
    pipeline = make_pipeline(orders={"shipment_scan_seconds": 1})
    port = free_port()
    process = subprocess.Popen([ERPSYNC, "run", "--port", str(port), "--config", str(pipeline.config_path)],
                               cwd=pipeline.base, env=dict(os.environ), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_up(url, process, pipeline)
        pipeline.webhook_to(f"{url}/notifications")
        order_ids = pipeline.generate(4, seed=62)
        pipeline.wait_journal(order_ids, "written", timeout=120)
        ship_everything(pipeline, order_ids)
        pipeline.wait_journal(order_ids, "confirmed", timeout=120)
        assert httpx.get(f"{url}/").status_code == 401  # the dashboard is served, behind its login
    finally:
        output = stop(process, signal.SIGTERM)[0]
    assert process.returncode == 0 and "erpsync stopped" in output, output
    assert_exactly_once(pipeline, order_ids)
