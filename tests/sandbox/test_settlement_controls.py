"""Scenario controls for settlements: POST /_sandbox/settlements chooses this file's format (locale, format change)
whatever the fault switches say, and POST /_sandbox/ledger books any amount into the next settlement."""

from __future__ import annotations

import httpx

from erpsync.sandbox import documents
from erpsync.sandbox.settlement import EXTRA_COLUMN


def _file(sandbox, closed: dict) -> list[list[str]]:
    document = sandbox.world.report_documents[closed["reportDocumentId"]]
    return [line.split("\t") for line in documents.content_of(document).decode().splitlines()]


def test_close_chooses_the_format_of_this_file(sandbox):
    control = f"{sandbox.url}/_sandbox"
    booked = httpx.post(f"{control}/ledger", json={"transaction_type": "other-transaction",
                                                   "amount_type": "other-transaction",
                                                   "amount_description": "Vine Enrollment Fee", "amount": "-1234.5"})
    assert booked.status_code == 201 and booked.json()["amount"] == "-1234.50"
    eu = httpx.post(f"{control}/settlements", json={"locale": "EU"}).json()
    rows = _file(sandbox, eu)
    header, summary = rows[0], rows[1]
    assert summary[header.index("total-amount")] == eu["totalAmount"].replace(".", ",")
    assert summary[header.index("settlement-start-date")][2] == "."  # dd.mm.yyyy
    vine = [r for r in rows[2:] if r[header.index("amount-description")] == "Vine Enrollment Fee"]
    assert [r[header.index("amount")] for r in vine] == ["-1234,50"]

    changed = httpx.post(f"{control}/settlements", json={"formatChange": True}).json()
    header = _file(sandbox, changed)[0]
    assert EXTRA_COLUMN in header and header.index("amount") < header.index("amount-description")
    httpx.patch(f"{control}/faults", json={"settlement_locale": "EU"}).raise_for_status()
    httpx.post(f"{control}/ledger", json={"transaction_type": "ServiceFee", "amount_type": "Subscription",
                                          "amount_description": "Subscription Fee", "amount": "-12.30"})
    us = httpx.post(f"{control}/settlements", json={"locale": "US"}).json()
    rows = _file(sandbox, us)
    assert rows[1][rows[0].index("total-amount")] == "-12.30" == us["totalAmount"]  # US despite the EU switch
    assert EXTRA_COLUMN not in rows[0]


def test_ledger_refuses_an_unknown_marketplace(sandbox):
    answer = httpx.post(f"{sandbox.url}/_sandbox/ledger", json={
        "transaction_type": "x", "amount_type": "y", "amount_description": "z", "amount": "1",
        "marketplace_id": "NOPE"})
    assert answer.status_code == 400 and "NOPE" in answer.text
