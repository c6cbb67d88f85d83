"""ORDER_CHANGE envelopes: our validation agrees with Amazon's schema (OrderChangeNotification.json, read from the
reference folder); the SQS consumer deletes a message only after its handler returned (moto server)."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import jsonschema
import pytest

from erpsync import model
from erpsync.amazon.notifications import SqsConsumer, parse_notification
from erpsync.errors import InvalidData
from erpsync.sandbox.notifications import SqsSink
from erpsync.sandbox.scenario import GenerateOrders, generate_orders

SCHEMA = "schemas/notifications/OrderChangeNotification.json"


@pytest.fixture(scope="module")
def schema(spapi_ref):
    return json.loads((spapi_ref / SCHEMA).read_text())


@pytest.fixture
def example(schema):
    return copy.deepcopy(schema["examples"][0])


def _schema_accepts(schema, body) -> bool:
    return jsonschema.Draft7Validator(schema).is_valid(body)


def _walk(node, path=()):
    """(path, subschema) for every property the schema describes."""
    for name, sub in node.get("properties", {}).items():
        yield path + (name,), sub
        yield from _walk(sub, path + (name,))
    if "items" in node:
        yield from _walk(node["items"], path + (0,))


def _parent(body, path):
    for step in path[:-1]:
        body = body[step]
    return body


def test_the_official_example_parses(example):
    change = parse_notification(json.dumps(example).encode())
    assert change.notification_id == "d0e9e693-c3ad-4373-979f-ed4ec98dd746"
    assert (change.amazon_order_id, change.marketplace_id) == ("903-8868176-2219830", "ATVPDKIKX0DER")
    assert change.order_status is model.OrderStatus.UNSHIPPED
    assert change.fulfillment_channel is model.FulfillmentChannel.MERCHANT
    assert change.change_type == "BuyerRequestedChange" and change.change_reason == "Buyer Requested Cancel"
    assert change.event_time.isoformat() == "2020-01-11T00:09:53.109000+00:00"
    assert change.items[0].sku == "SellerSKUID1" and change.items[0].buyer_requested_cancel
    assert parse_notification(example) == change == parse_notification(json.dumps(example))


def test_every_required_field_the_schema_names_is_required_by_us(schema, example):
    required = [(path + (name,)) for path, sub in [((), schema), *_walk(schema)] for name in sub.get("required", [])]
    assert len(required) >= 20
    for path in required:
        body = copy.deepcopy(example)
        del _parent(body, path)[path[-1]]
        assert not _schema_accepts(schema, body), path
        with pytest.raises(InvalidData) as caught:
            parse_notification(body)
        assert ".".join(map(str, path)) + ": is missing" in str(caught.value), path


def test_every_enum_the_schema_names_is_enforced_by_us(schema, example):
    enums = [(path, sub["enum"]) for path, sub in _walk(schema) if "enum" in sub]
    checked = 0
    for path, _allowed in enums:
        body = copy.deepcopy(example)
        try:
            parent = _parent(body, path)
            parent[path[-1]]
        except (KeyError, IndexError):
            continue
        parent[path[-1]] = "NotAnAllowedValue"
        assert not _schema_accepts(schema, body), path
        with pytest.raises(InvalidData, match=".".join(map(str, path))):
            parse_notification(body)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("path, value", [
    (("Payload", "OrderChangeNotification", "Summary", "OrderItems", 0, "Quantity"), "10"),
    (("Payload", "OrderChangeNotification", "Summary", "OrderItems", 0, "IsBuyerRequestedCancel"), "true"),
    (("Payload", "OrderChangeNotification", "AmazonOrderId"), 903),
    (("Payload", "OrderChangeNotification", "Summary", "OrderItems"), {"OrderItemId": "1"}),
    (("NotificationMetadata",), "d0e9e693"),
])
def test_wrong_types_are_refused_as_the_schema_does(schema, example, path, value):
    _parent(example, path)[path[-1]] = value
    assert not _schema_accepts(schema, example)
    with pytest.raises(InvalidData, match=r"ORDER_CHANGE notification .* is invalid: ") as caught:
        parse_notification(example)
    assert ".".join(map(str, path)) in str(caught.value)


def test_nullable_fields_may_be_null(schema, example):
    notification = example["Payload"]["OrderChangeNotification"]
    notification["OrderChangeTrigger"]["TimeOfOrderChange"] = None
    notification["Summary"]["DestinationPostalCode"] = None
    notification["Summary"]["OrderItems"][0]["SupplySourceId"] = None
    assert _schema_accepts(schema, example)
    assert parse_notification(example).amazon_order_id == "903-8868176-2219830"


def test_other_notification_types_and_garbage_are_refused(example):
    example["NotificationType"] = "FEED_PROCESSING_FINISHED"
    with pytest.raises(InvalidData, match="NotificationType"):
        parse_notification(example)
    with pytest.raises(InvalidData, match=r"\(no NotificationId\) is invalid"):
        parse_notification(b"{not json")
    with pytest.raises(InvalidData):
        parse_notification(b"[]")


def test_the_sandboxes_envelopes_parse_and_its_malformed_ones_do_not(sandbox):
    world = sandbox.world
    ids = generate_orders(world, GenerateOrders(count=3, status="UNSHIPPED", seed=4))
    from erpsync.sandbox.notifications import _malformed, envelope

    events = world.take_outbox()
    changes = [parse_notification(envelope(world, event)) for event in events]
    assert {change.amazon_order_id for change in changes} == set(ids)
    with pytest.raises(InvalidData, match=r"AmazonOrderId: is missing.*OrderStatus: is missing"):
        parse_notification(_malformed(envelope(world, events[0])))


# --- SQS ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def queue(moto_endpoint):
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    url = sqs.create_queue(QueueName=f"erpsync-{uuid.uuid4().hex[:8]}",
                           Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


def _consumer(moto_endpoint, url) -> SqsConsumer:
    return SqsConsumer(url, endpoint_url=moto_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                       wait_seconds=0)


def _counts(sqs, url) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def _envelope(example, order_id: str) -> str:
    body = copy.deepcopy(example)
    body["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = order_id
    body["NotificationMetadata"]["NotificationId"] = str(uuid.uuid4())
    return json.dumps(body)


def test_a_message_is_deleted_only_after_its_handler_returned(queue, moto_endpoint, example):
    sqs, url = queue
    good, flaky = _envelope(example, "111-0000000-0000001"), _envelope(example, "111-0000000-0000002")
    garbage = '{"NotificationType": "ORDER_CHANGE"}'
    for body in (good, garbage, flaky):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    handled, in_flight = [], []

    def handler(change):
        in_flight.append(_counts(sqs, url)[1])
        if change.amazon_order_id.endswith("2"):
            raise RuntimeError("the job queue is down")
        handled.append(change.amazon_order_id)

    assert _consumer(moto_endpoint, url).consume(handler, max_polls=1) == 1
    assert handled == ["111-0000000-0000001"]
    assert min(in_flight) >= 1  # while the handler runs, its message is held, not deleted
    assert _counts(sqs, url) == (0, 2)  # the garbage and the failed one wait for their visibility timeout

    time.sleep(1.1)  # visible again
    parked = []
    deleted = _consumer(moto_endpoint, url).consume(
        lambda change: handled.append(change.amazon_order_id),
        on_invalid=lambda body, error: parked.append((body, str(error))), max_polls=1)
    assert deleted == 2 and handled[-1] == "111-0000000-0000002"
    assert [body for body, _ in parked] == [garbage] and "Payload: is missing" in parked[0][1]
    assert _counts(sqs, url) == (0, 0)


def test_a_failing_dead_letter_keeps_the_message(queue, moto_endpoint):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="not json at all")

    def broken_park(body, error):
        raise OSError("state store is down")

    stop = threading.Event()
    stop.set()
    assert _consumer(moto_endpoint, url).consume(lambda change: None, stop=stop) == 0  # a set stop: no poll at all
    assert _consumer(moto_endpoint, url).consume(lambda change: None, on_invalid=broken_park, max_polls=1) == 0
    assert _counts(sqs, url) == (0, 1)


def test_orders_from_the_sandbox_arrive_through_sqs(queue, moto_endpoint, sandbox):
    sqs, url = queue
    sandbox.world.notification_sinks.append(SqsSink(url, endpoint_url=moto_endpoint))
    ids = generate_orders(sandbox.world, GenerateOrders(count=3, status="PENDING", pending_seconds=None, seed=6))
    seen = []
    consumer = _consumer(moto_endpoint, url)
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        consumer.consume(lambda change: seen.append(change), max_polls=1)
    assert {change.amazon_order_id for change in seen} == set(ids)
    assert {change.order_status for change in seen} == {model.OrderStatus.PENDING}
    assert len({change.notification_id for change in seen}) == 3


def test_the_connectors_subscription_brings_order_changes_through_sqs(queue, moto_endpoint, sandbox, client):
    """createDestination (grantless) + createSubscription against the sandbox's Notifications API; an order placed
    afterwards arrives in the subscribed queue and the consumer reads it."""
    sqs, url = queue
    sandbox.world.sqs_endpoint_url = moto_endpoint  # where the sandbox finds the queues its destinations name
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    destination = client.notifications.create_destination("erpsync-orders", arn)
    subscription = client.notifications.create_subscription(destination)
    order_id = generate_orders(sandbox.world, GenerateOrders(count=1, status="PENDING", pending_seconds=None,
                                                             seed=7))[0]
    seen = []
    consumer = _consumer(moto_endpoint, url)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        consumer.consume(seen.append, max_polls=1)
    assert [(change.amazon_order_id, change.order_status, change.subscription_id) for change in seen] == [
        (order_id, model.OrderStatus.PENDING, subscription)]
    assert sandbox.world.delivery_failures == [] and _counts(sqs, url) == (0, 0)


def test_subscribe_keeps_what_is_there_and_leaves_another_destinations_subscription_alone(sandbox, client):
    """Notifications.subscribe over HTTP: a subscription already going to another queue is reported, not moved
    (Amazon allows one per type); the other types are created with their payload versions, then kept."""
    from erpsync.amazon.notifications import PAYLOAD_VERSIONS

    ours, theirs = "arn:aws:sqs:us-east-1:123456789012:erpsync", "arn:aws:sqs:us-east-1:123456789012:other-tool"
    other = client.notifications.create_destination("other-tool", theirs)
    kept_elsewhere = client.notifications.create_subscription(other)  # ORDER_CHANGE to another tool's queue
    first = {r["type"]: r for r in client.notifications.subscribe(ours)}
    assert first["ORDER_CHANGE"]["outcome"] == "elsewhere"
    assert first["ORDER_CHANGE"]["subscription_id"] == kept_elsewhere and other in first["ORDER_CHANGE"]["message"]
    assert {t: (r["outcome"], r["payload_version"]) for t, r in first.items() if t != "ORDER_CHANGE"} == {
        t: ("created", v) for t, v in PAYLOAD_VERSIONS.items() if t != "ORDER_CHANGE"}
    again = client.notifications.subscribe(ours, types=["LISTINGS_ITEM_ISSUES_CHANGE"])
    assert [(r["outcome"], r["subscription_id"]) for r in again] == [
        ("kept", first["LISTINGS_ITEM_ISSUES_CHANGE"]["subscription_id"])]
    assert len([d for d in client.notifications.destinations() if d["resource"]["sqs"]["arn"] == ours]) == 1
    with pytest.raises(ValueError, match="ANY_OFFER_CHANGED"):
        client.notifications.subscribe(ours, types=["ANY_OFFER_CHANGED"])
