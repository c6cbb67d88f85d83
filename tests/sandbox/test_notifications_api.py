"""Notifications API v1 over real HTTP: grantless destinations, seller subscriptions, Amazon's shapes and refusals,
and ORDER_CHANGE delivered through a subscription to a real SQS queue (moto server), filtered by its eventFilter."""

from __future__ import annotations

import httpx
import pytest

from erpsync.sandbox.server import start
from tests.sandbox.helpers import client, drain, generate, grantless_token, roomy
from tests.sandbox.spapi_schema import assert_valid, errors_of, swagger_validator

US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
API = "/notifications/v1"
ARN = "arn:aws:sqs:us-east-1:123456789012:erpsync-orders"


@pytest.fixture(scope="module")
def models(spapi_ref):
    model = spapi_ref / "models" / "notifications.json"
    strict = {name: swagger_validator(model, name) for name in (
        "CreateDestinationResponse", "GetDestinationsResponse", "GetDestinationResponse", "DeleteDestinationResponse",
        "DeleteSubscriptionByIdResponse")}
    strict["errors"] = strict["DeleteDestinationResponse"]  # its only property: the errors of any answer
    # EventFilter is an allOf of small filters: the strict extra-property check would refuse every filter key, so
    # subscriptions are validated without it and their directive is compared with what was sent
    loose = {name: swagger_validator(model, name, strict=False) for name in (
        "CreateSubscriptionResponse", "GetSubscriptionResponse", "GetSubscriptionByIdResponse")}
    return strict | loose


@pytest.fixture
def app_api(sandbox):
    """A client with the application's grantless token (scope sellingpartnerapi::notifications)."""
    with client(sandbox, grantless_token(sandbox.url)) as http:
        yield http


def _refused(response, status, code, mentions, models):
    assert response.status_code == status, response.text
    assert_valid(models["errors"], response.json())
    error = response.json()["errors"][0]
    assert error["code"] == code and mentions in f"{error['message']} {error['details']}", error


def test_destinations_are_grantless_and_answer_in_the_models_shapes(sandbox, api, app_api, models):
    body = {"name": "erpsync-orders", "resourceSpecification": {"sqs": {"arn": ARN}}}
    created = app_api.post(f"{API}/destinations", json=body)
    assert created.status_code == 200 and created.headers["x-amzn-RateLimit-Limit"] == "1"
    assert_valid(models["CreateDestinationResponse"], created.json())
    destination = created.json()["payload"]
    assert destination["name"] == "erpsync-orders" and destination["resource"] == {"sqs": {"arn": ARN}}
    listed = app_api.get(f"{API}/destinations")
    assert_valid(models["GetDestinationsResponse"], listed.json())
    assert listed.json()["payload"] == [destination]
    got = app_api.get(f"{API}/destinations/{destination['destinationId']}")
    assert_valid(models["GetDestinationResponse"], got.json())
    assert got.json()["payload"] == destination

    _refused(api.post(f"{API}/destinations", json=body), 403, "Unauthorized", "client_credentials", models)
    with client(sandbox, grantless_token(sandbox.url, "sellingpartnerapi::migration")) as migration:
        _refused(migration.get(f"{API}/destinations"), 403, "Unauthorized", "sellingpartnerapi::notifications",
                 models)
    _refused(app_api.post(f"{API}/destinations", json=body), 409, "Conflict", destination["destinationId"], models)
    _refused(app_api.post(f"{API}/destinations", json={**body, "resourceSpecification": {"sqs": {"arn": "queue"}}}),
             400, "InvalidInput", "arn", models)
    event_bridge = {"eventBridge": {"region": "us-east-1", "accountId": "123456789012"}}
    _refused(app_api.post(f"{API}/destinations", json={**body, "resourceSpecification": event_bridge}),
             400, "InvalidInput", "SQS queues only", models)
    _refused(app_api.post(f"{API}/destinations", json={"resourceSpecification": {"sqs": {"arn": ARN}}}),
             400, "InvalidInput", "name is required", models)
    _refused(app_api.delete(f"{API}/destinations/no-such-id"), 404, "NotFound", "no-such-id", models)

    deleted = app_api.delete(f"{API}/destinations/{destination['destinationId']}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_valid(models["DeleteDestinationResponse"], deleted.json())
    _refused(app_api.get(f"{API}/destinations/{destination['destinationId']}"), 404, "NotFound", "does not exist",
             models)
    assert app_api.get(f"{API}/destinations").json() == {"payload": []}


def test_subscriptions_take_the_sellers_token_and_an_existing_destination(sandbox, api, app_api, models):
    destination_id = app_api.post(f"{API}/destinations", json={
        "name": "orders", "resourceSpecification": {"sqs": {"arn": ARN}}}).json()["payload"]["destinationId"]
    directive = {"eventFilter": {"eventFilterType": "ORDER_CHANGE", "marketplaceIds": [US],
                                 "orderChangeTypes": ["OrderStatusChange"]}}
    body = {"payloadVersion": "1.0", "destinationId": destination_id, "processingDirective": directive}
    url = f"{API}/subscriptions/ORDER_CHANGE"

    _refused(app_api.post(url, json=body), 403, "Unauthorized", "refresh_token", models)
    created = api.post(url, json=body)
    assert created.status_code == 200, created.text
    assert_valid(models["CreateSubscriptionResponse"], created.json())
    subscription = created.json()["payload"]
    assert subscription["destinationId"] == destination_id and subscription["processingDirective"] == directive
    got = api.get(url)
    assert_valid(models["GetSubscriptionResponse"], got.json())
    assert got.json()["payload"] == subscription
    assert api.get(url, params={"payloadVersion": "2.0"}).status_code == 404
    by_id = app_api.get(f"{url}/{subscription['subscriptionId']}")
    assert_valid(models["GetSubscriptionByIdResponse"], by_id.json())
    assert by_id.json()["payload"] == subscription

    _refused(api.post(url, json=body), 409, "Conflict", subscription["subscriptionId"], models)
    _refused(app_api.delete(f"{API}/destinations/{destination_id}"), 409, "Conflict", "delete them first", models)
    for wrong, mentions in (
            ({"destinationId": "no-such-destination"}, "createDestination"),
            ({"payloadVersion": "2.0"}, "payloadVersion"),
            ({"processingDirective": {"filterExpression": "x == 1"}}, "filterExpression"),
            ({"processingDirective": {"eventFilter": {**directive["eventFilter"], "marketplaceId": [US]}}},
             "marketplaceId"),  # a misspelled filter key is refused, not ignored
            ({"processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE", "marketplaceIds": ["XX"]}}},
             "XX"),
            ({"processingDirective": {"eventFilter": {"eventFilterType": "ANY_OFFER_CHANGED"}}}, "ANY_OFFER_CHANGED")):
        _refused(api.post(url, json={**body, **wrong}), 400, "InvalidInput", mentions, models)
    _refused(api.post(f"{API}/subscriptions/FEED_PROCESSING_FINISHED", json=body), 400, "InvalidInput",
             "publishes ORDER_CHANGE", models)
    _refused(app_api.get(f"{API}/subscriptions/ANY_OFFER_CHANGED/{subscription['subscriptionId']}"), 404,
             "NotFound", "ANY_OFFER_CHANGED", models)

    deleted = app_api.delete(f"{url}/{subscription['subscriptionId']}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_valid(models["DeleteSubscriptionByIdResponse"], deleted.json())
    _refused(api.get(url), 404, "NotFound", "no subscription", models)
    assert app_api.delete(f"{API}/destinations/{destination_id}").status_code == 200


# --- delivery through a subscription -------------------------------------------------------------------------------


def _arn(sqs, url) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _subscribe(sandbox, arn: str, event_filter: dict) -> str:
    """createDestination(arn) + createSubscription(ORDER_CHANGE, event_filter) over HTTP; the subscription id."""
    with client(sandbox, grantless_token(sandbox.url)) as app_api, client(sandbox) as api:
        destination = app_api.post(f"{API}/destinations", json={
            "name": "orders", "resourceSpecification": {"sqs": {"arn": arn}}}).json()["payload"]["destinationId"]
        created = api.post(f"{API}/subscriptions/ORDER_CHANGE", json={
            "payloadVersion": "1.0", "destinationId": destination,
            "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE", **event_filter}}})
        assert created.status_code == 200, created.text
        return created.json()["payload"]["subscriptionId"]


def test_order_changes_reach_the_subscribed_queue_in_its_marketplaces_only(queue, moto_endpoint, order_change):
    sqs, url = queue
    with start(seed=3, sqs_endpoint_url=moto_endpoint) as sandbox:
        subscription_id = _subscribe(roomy(sandbox), _arn(sqs, url), {"marketplaceIds": [US]})
        canadian = generate(sandbox, count=1, status="UNSHIPPED", marketplace_id=CA, afn_share=0)[0]
        american = generate(sandbox, count=1, status="UNSHIPPED", marketplace_id=US, afn_share=0)[0]
        bodies = drain(sqs, url, 2)  # the US order placed (Pending), then Unshipped
        assert sandbox.world.delivery_failures == []
    changes = [body["Payload"]["OrderChangeNotification"] for body in bodies]
    assert [c["AmazonOrderId"] for c in changes] == [american, american] != [canadian] * 2
    assert [c["Summary"]["OrderStatus"] for c in changes] == ["Pending", "Unshipped"]
    assert all(errors_of(order_change, body) == [] for body in bodies)
    assert {body["NotificationMetadata"]["SubscriptionId"] for body in bodies} == {subscription_id}


def test_order_change_types_filter_what_a_subscription_receives(queue, moto_endpoint):
    sqs, url = queue
    with start(seed=4, sqs_endpoint_url=moto_endpoint) as sandbox:
        _subscribe(roomy(sandbox), _arn(sqs, url), {"orderChangeTypes": ["BuyerRequestedChange"]})
        order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0)[0]
        cancelled = httpx.post(f"{sandbox.url}/_sandbox/orders/{order_id}/cancel",
                               json={"buyer_request": True, "reason": "Ordered twice"})
        assert cancelled.status_code == 200
        bodies = drain(sqs, url, 1)
    assert [b["Payload"]["OrderChangeNotification"]["OrderChangeType"] for b in bodies] == ["BuyerRequestedChange"]
    assert all(item["IsBuyerRequestedCancel"]
               for item in bodies[0]["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"])


# --- the inventory and listing types -------------------------------------------------------------------------------

LISTING_TYPES = {"FBA_INVENTORY_AVAILABILITY_CHANGES": "1.0", "LISTINGS_ITEM_STATUS_CHANGE": "1.0",
                 "LISTINGS_ITEM_ISSUES_CHANGE": "2023-12-13"}


def test_listing_types_take_their_own_payload_version_and_no_event_filter(sandbox, api, app_api, models):
    destination_id = app_api.post(f"{API}/destinations", json={
        "name": "listings", "resourceSpecification": {"sqs": {"arn": ARN}}}).json()["payload"]["destinationId"]
    for notification_type, version in LISTING_TYPES.items():
        url = f"{API}/subscriptions/{notification_type}"
        wrong = "1.0" if version != "1.0" else "2023-12-13"
        _refused(api.post(url, json={"payloadVersion": wrong, "destinationId": destination_id}), 400,
                 "InvalidInput", f"use {version}", models)
        # Amazon's eventFilter names ORDER_CHANGE, ANY_OFFER_CHANGED and SHIPMENT_TRACKING_MILESTONE_CHANGED only
        directive = {"eventFilter": {"eventFilterType": "ORDER_CHANGE", "marketplaceIds": [US]}}
        _refused(api.post(url, json={"payloadVersion": version, "destinationId": destination_id,
                                     "processingDirective": directive}), 400, "InvalidInput", "does not filter",
                 models)
        created = api.post(url, json={"payloadVersion": version, "destinationId": destination_id})
        assert created.status_code == 200, created.text
        assert_valid(models["CreateSubscriptionResponse"], created.json())
        assert created.json()["payload"]["payloadVersion"] == version
        assert api.get(url, params={"payloadVersion": version}).json()["payload"] == created.json()["payload"]


def test_listing_events_reach_the_queue_of_their_subscription(queue, moto_endpoint, spapi_ref):
    from tests.sandbox.spapi_schema import json_schema_validator

    sqs, url = queue
    schemas = spapi_ref / "schemas" / "notifications"
    fba_schema = json_schema_validator(schemas / "FBAInventoryAvailabilityChangeNotification.json")
    with start(seed=5, sqs_endpoint_url=moto_endpoint) as sandbox:
        roomy(sandbox)
        with client(sandbox, grantless_token(sandbox.url)) as app_api, client(sandbox) as api:
            destination = app_api.post(f"{API}/destinations", json={
                "name": "listings", "resourceSpecification": {"sqs": {"arn": _arn(sqs, url)}}}).json()["payload"]
            subscribed = {}
            for notification_type in ("FBA_INVENTORY_AVAILABILITY_CHANGES", "LISTINGS_ITEM_ISSUES_CHANGE"):
                created = api.post(f"{API}/subscriptions/{notification_type}", json={
                    "payloadVersion": LISTING_TYPES[notification_type],
                    "destinationId": destination["destinationId"]})
                subscribed[notification_type] = created.json()["payload"]["subscriptionId"]
        control = f"{sandbox.url}/_sandbox/listings"
        httpx.put(control, json=[{"sku": s, "price": "9.99", "quantity": 5} for s in ("TENT-1", "TENT-2")])
        assert httpx.post(f"{control}/TENT-1/fba", json={"quantity": 7}).status_code == 200
        assert httpx.post(f"{control}/TENT-2/status", json={"status": ["DISCOVERABLE"]}).status_code == 200
        assert httpx.post(f"{control}/TENT-2/issues", json={"message": "Missing image"}).status_code == 200
        bodies = drain(sqs, url, 2)  # no subscription to LISTINGS_ITEM_STATUS_CHANGE: the status change stays out
        assert sandbox.world.delivery_failures == []
    by_type = {body["NotificationType"]: body for body in bodies}
    assert set(by_type) == set(subscribed) and len(bodies) == 2
    for notification_type, body in by_type.items():
        assert body["NotificationMetadata"]["SubscriptionId"] == subscribed[notification_type]
        assert body["PayloadVersion"] == LISTING_TYPES[notification_type]
    fba = by_type["FBA_INVENTORY_AVAILABILITY_CHANGES"]["Payload"]
    assert fba["SKU"] == "TENT-1" and fba["FulfillmentInventoryByMarketplace"][0]["FulfillmentInventory"][
        "Fulfillable"] == 7
    assert errors_of(fba_schema, by_type["FBA_INVENTORY_AVAILABILITY_CHANGES"]) == []
    issues = by_type["LISTINGS_ITEM_ISSUES_CHANGE"]["Payload"]
    assert (issues["Sku"], issues["Severities"], issues["EnforcementActions"]) == \
        ("TENT-2", ["ERROR"], ["LISTING_SUPPRESSED"])
