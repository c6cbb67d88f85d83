"""Every log line carries a correlation id: the Amazon order id on every line of that order's jobs, the request id
on every line of a web request."""

from __future__ import annotations

import json
import re

import httpx
import structlog

from erpsync import logs
from erpsync.flows.binder import apply_key
from erpsync.web.app import start as start_web


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_every_line_of_an_orders_jobs_names_the_order(pipeline, capsys):
    logs.configure(json=True)
    try:
        [oid] = pipeline.generate(1, seed=22, skus=["WIDGET-BLUE-L"], multi_line_share=0)  # ends as a dead letter
        capsys.readouterr()
        runtime = pipeline.runtime
        runtime.run("import_order", {"amazon_order_id": oid, "read": True})
        runtime.run("apply_order", runtime.store.job_key_get(apply_key(oid)).message["payload"], key=apply_key(oid))
        events = lines(capsys)
        assert {"order.handed_over", "dead_letter.captured"} <= {e["event"] for e in events}
        assert [e for e in events if e.get("correlation_id") != oid] == []

        server = start_web(runtime)
        try:
            answer = httpx.get(f"{server.url}/api/status", headers={"Authorization": "Bearer wrong",
                                                                    "X-Request-Id": "req-42"})
            assert answer.status_code == 401 and answer.headers["x-request-id"] == "req-42"
            fresh = httpx.get(f"{server.url}/health")
            assert len(fresh.headers["x-request-id"]) == 16  # one is made when the caller sends none
        finally:
            server.stop()
        refused = [e for e in lines(capsys) if e["event"] == "web.token_refused"]
        assert refused and all(e["correlation_id"] == "req-42" for e in refused)
    finally:
        structlog.contextvars.clear_contextvars()
        logs.configure()


def test_an_unhandled_error_is_one_line_with_the_request_id_and_no_message(pipeline, capsys):
    """A bug in a handler: the log gets one line naming the request, the exception's type and erpsync's frames,
    not a traceback without a correlation id whose message may quote buyer data; the caller gets a 500."""
    logs.configure(json=True)
    server = start_web(pipeline.runtime)
    try:
        def broken():
            raise ValueError("parameters: ('Jane Roe', '42 Quiet Lane')")

        server._server.config.app.add_api_route("/api/broken", broken)
        capsys.readouterr()
        answer = httpx.get(f"{server.url}/api/broken", headers={"Authorization": "Bearer test-api-token",
                                                                 "X-Request-Id": "req-500"})
        assert answer.status_code == 500 and "req-500" in answer.json()["error"]
        assert answer.headers["x-request-id"] == "req-500"
        err = capsys.readouterr().err
        assert "Jane Roe" not in err and "Traceback" not in err
        [line] = [e for e in lines_of(err) if e["event"] == "web.unhandled"]
        assert line["correlation_id"] == "req-500" and line["error"] == "ValueError"
        assert line["frames"] and all(re.fullmatch(r"\w+\.py:\d+ \S+", f) for f in line["frames"])
    finally:
        server.stop()
        structlog.contextvars.clear_contextvars()
        logs.configure()


def lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_line_outside_any_job_names_its_own_record_or_a_dash():
    assert logs._correlation(None, "info", {"event": "x", "amazon_order_id": "111-1"})["correlation_id"] == "111-1"
    assert logs._correlation(None, "info", {"event": "x"})["correlation_id"] == "-"
    assert logs.correlation_id({"order": {"amazon_order_id": "111-2"}}) == "111-2"
    assert logs.correlation_id({"feed_id": "F1", "x": 1}) == "F1"
    assert logs.correlation_id({}, fallback="sync_window") == "sync_window"
