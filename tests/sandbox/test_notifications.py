"""ORDER_CHANGE notifications delivered to a real SQS endpoint (moto server) and a webhook, with the fault switches."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from erpsync.sandbox.notifications import SqsSink, WebhookSink, deliver
from erpsync.sandbox.scenario import GenerateOrders, generate_orders
from erpsync.sandbox.server import start
from erpsync.sandbox.world import World
from tests.sandbox.helpers import client, drain, generate
from tests.sandbox.spapi_schema import errors_of


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
        self.send_response(200 if self.headers.get("X-Erpsync-Token") == "s3cret" else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A local HTTP receiver in a thread of its own; what it received is in ``received``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook():
    with _serving(_Hook) as server:
        yield server


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_order_changes_reach_sqs_as_valid_unique_envelopes(queue, moto_endpoint, order_change):
    sqs, url = queue
    with start(seed=3) as sandbox:
        put = httpx.put(f"{sandbox.url}/_sandbox/notifications/sinks",
                        json={"sqs_queue_url": url, "sqs_endpoint_url": moto_endpoint})
        assert put.json() == {"sinks": ["sqs"]}
        order_id = generate(sandbox, count=1, pending_seconds=30, afn_share=0)[0]
        sandbox.world.advance(30)  # Pending -> Unshipped
        with client(sandbox) as api:
            order = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "FULFILLMENT"})
            lines = [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]}
                     for i in order.json()["order"]["orderItems"]]
            shipped = api.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json={
                "marketplaceId": "ATVPDKIKX0DER", "packageDetail": {
                    "packageReferenceId": "1", "carrierCode": "USPS", "trackingNumber": "9400100000000000000000",
                    "shipDate": "2026-01-01T00:00:00Z", "orderItems": lines}})
            assert shipped.status_code == 204
        bodies = drain(sqs, url, 3)
    assert [b["Payload"]["OrderChangeNotification"]["Summary"]["OrderStatus"] for b in bodies] == [
        "Pending", "Unshipped", "Shipped"]
    for body in bodies:
        assert errors_of(order_change, body) == []
        assert body["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == order_id
        assert body["NotificationType"] == "ORDER_CHANGE"
    assert len({b["NotificationMetadata"]["NotificationId"] for b in bodies}) == 3
    summary = bodies[-1]["Payload"]["OrderChangeNotification"]["Summary"]
    assert summary["NumberOfItemsUnshipped"] == 0
    assert all(item["OrderItemStatus"] == "Shipped" for item in summary["OrderItems"])


def test_webhook_gets_envelopes_with_its_auth_header(webhook, order_change):
    with start(seed=4) as sandbox:
        url = f"http://127.0.0.1:{webhook.server_address[1]}/amazon/notifications"
        sandbox.world.notification_sinks.append(WebhookSink(url, {"X-Erpsync-Token": "s3cret"}))
        order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0)[0]
        cancelled = httpx.post(f"{sandbox.url}/_sandbox/orders/{order_id}/cancel", json={"buyer_request": True,
                                                                                         "reason": "Ordered twice"})
        assert cancelled.status_code == 200
        _wait(lambda: len(webhook.received) == 3)
    headers, bodies = zip(*webhook.received)
    assert all(h["x-erpsync-token"] == "s3cret" and h["content-type"] == "application/json" for h in headers)
    assert all(errors_of(order_change, body) == [] for body in bodies)
    last = bodies[-1]["Payload"]["OrderChangeNotification"]
    assert last["OrderChangeType"] == "BuyerRequestedChange"
    assert last["OrderChangeTrigger"]["ChangeReason"] == "Buyer Requested Cancel"
    assert all(item["IsBuyerRequestedCancel"] for item in last["Summary"]["OrderItems"])


def test_a_refusing_webhook_is_recorded_not_fatal(webhook):
    with start(seed=4) as sandbox:
        url = f"http://127.0.0.1:{webhook.server_address[1]}/hook"
        sandbox.world.notification_sinks.append(WebhookSink(url, {"X-Erpsync-Token": "wrong"}))
        generate(sandbox, count=2, status="UNSHIPPED", afn_share=0)
        _wait(lambda: len(sandbox.world.delivery_failures) == 4)
        failures = httpx.get(f"{sandbox.url}/_sandbox/notifications").json()["failures"]
    assert {f["sink"] for f in failures} == {"webhook"} and "401" in failures[0]["message"]


class _Recorder:
    name = "memory"

    def __init__(self):
        self.bodies = []

    def send(self, body):
        self.bodies.append(json.loads(body))


def _faulty(**faults):
    sandbox = start(seed=8)
    recorder = _Recorder()
    sandbox.world.notification_sinks.append(recorder)
    response = httpx.patch(f"{sandbox.url}/_sandbox/faults", json=faults)
    assert response.status_code == 200, response.text
    return sandbox, recorder


def test_duplicate_delivery_repeats_the_same_notification_id(order_change):
    sandbox, recorder = _faulty(duplicate_notifications=1.0)
    with sandbox:
        generate(sandbox, count=3, status="PENDING", pending_seconds=None)
        _wait(lambda: len(recorder.bodies) == 6)
    ids = [b["NotificationMetadata"]["NotificationId"] for b in recorder.bodies]
    assert len(set(ids)) == 3 and all(ids.count(i) == 2 for i in ids)


def test_out_of_order_delivery_reverses_a_batch():
    sandbox, recorder = _faulty(out_of_order_notifications=True)
    with sandbox:
        order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0)[0]  # Pending, Unshipped: one batch
        _wait(lambda: len(recorder.bodies) == 2)
    statuses = [b["Payload"]["OrderChangeNotification"]["Summary"]["OrderStatus"] for b in recorder.bodies]
    assert statuses == ["Unshipped", "Pending"]
    assert {b["Payload"]["OrderChangeNotification"]["AmazonOrderId"] for b in recorder.bodies} == {order_id}


def test_dropped_and_malformed_notifications(order_change):
    sandbox, recorder = _faulty(drop_notifications=1.0)
    with sandbox:
        generate(sandbox, count=4, pending_seconds=None)
        _wait(lambda: len(sandbox.world.published) == 4)
        time.sleep(0.2)
        assert recorder.bodies == []
        httpx.patch(f"{sandbox.url}/_sandbox/faults", json={"drop_notifications": 0, "malformed_notifications": 1})
        generate(sandbox, count=2, pending_seconds=None)
        _wait(lambda: len(recorder.bodies) == 2)
        httpx.delete(f"{sandbox.url}/_sandbox/faults")
        generate(sandbox, count=1, pending_seconds=None)
        _wait(lambda: len(recorder.bodies) == 3)
    assert all(errors_of(order_change, body) for body in recorder.bodies[:2])  # malformed fails the schema
    assert errors_of(order_change, recorder.bodies[2]) == []


def test_sqs_sink_reports_a_missing_queue(moto_endpoint):
    sink = SqsSink(f"{moto_endpoint}/123456789012/no-such-queue", endpoint_url=moto_endpoint)
    with pytest.raises(Exception) as failure:
        sink.send("{}")
    assert "NonExistentQueue" in str(failure.value) or "QueueDoesNotExist" in str(failure.value)


class _Gate(BaseHTTPRequestHandler):
    """Answers 200 only once ``server.gate`` (a barrier) has as many requests waiting at once as it has parties."""

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        try:
            self.server.gate.wait()
            status = 200
        except threading.BrokenBarrierError:
            status = 503
        self.server.received.append(body["Payload"]["OrderChangeNotification"]["AmazonOrderId"])
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gate():
    with _serving(_Gate) as server:
        server.gate = threading.Barrier(4, timeout=5)
        try:
            yield server
        finally:
            server.gate.abort()  # release waiting handlers before the server shuts down


def test_a_sink_has_several_orders_deliveries_in_flight_at_once(gate):
    """Four orders' notifications of one batch are in flight together: the receiver answers none until it holds
    four. One sender after the other, the first would wait in vain (503s, recorded as failures)."""
    world = World.create(seed=5)
    sink = WebhookSink(f"http://127.0.0.1:{gate.server_address[1]}/hook", senders=4)
    world.notification_sinks.append(sink)
    order_ids = generate_orders(world, GenerateOrders(count=4, status="PENDING", pending_seconds=None))
    try:
        assert deliver(world) == 4
    finally:
        sink.close()
    assert world.delivery_failures == []
    assert sorted(gate.received) == sorted(order_ids)


def test_the_sandbox_stops_its_sinks_senders(webhook):
    with start(seed=5) as sandbox:
        url = f"http://127.0.0.1:{webhook.server_address[1]}/hook"
        put = httpx.put(f"{sandbox.url}/_sandbox/notifications/sinks",
                        json={"webhook_url": url, "webhook_headers": {"X-Erpsync-Token": "s3cret"}, "senders": 3})
        assert put.status_code == 200, put.text
        sink = sandbox.world.notification_sinks[0]
        generate(sandbox, count=2, status="PENDING", pending_seconds=None)
        _wait(lambda: len(webhook.received) == 2)
        assert sink.senders == 3 and sink._pool is not None
    assert sink._pool is None and sink._client.is_closed
    assert sandbox.world.delivery_failures == []


def test_the_sinks_refuse_fewer_than_one_sender():
    with start(seed=5) as sandbox:
        refused = httpx.put(f"{sandbox.url}/_sandbox/notifications/sinks",
                            json={"webhook_url": "http://127.0.0.1:9/hook", "senders": 0})
    assert refused.status_code == 400 and "senders" in refused.text
    with pytest.raises(ValueError, match="at least 1 sender"):
        WebhookSink("http://127.0.0.1:9/hook", senders=0)
