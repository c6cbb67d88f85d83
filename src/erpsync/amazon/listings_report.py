"""The All Listings Report (``GET_MERCHANT_LISTINGS_ALL_DATA``, tab-separated) read by header name: one
:class:`ListingRow` per SKU. Columns may come in any order and extra ones are ignored; the ones read are
``seller-sku``, ``quantity``, ``price``, ``fulfillment-channel``, ``status`` and ``asin1``."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from erpsync.errors import InvalidData

REQUIRED = ("seller-sku", "quantity", "fulfillment-channel")


@dataclass(frozen=True)
class ListingRow:
    sku: str
    quantity: int | None  # None: Amazon-fulfilled (Amazon counts the units) or left empty
    price: Decimal | None
    fulfillment_channel: str  # DEFAULT = seller-fulfilled; AMAZON_NA, AMAZON_EU … = FBA
    status: str
    asin: str | None

    @property
    def seller_fulfilled(self) -> bool:
        return self.fulfillment_channel == "DEFAULT"


def parse(text: str, *, report_id: str = "(report)") -> list[ListingRow]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or ())]
    if missing:
        raise InvalidData(f"listings report {report_id} has no column {', '.join(missing)} (columns: "
                          f"{', '.join(reader.fieldnames or ())})", record=report_id)
    rows = []
    for number, row in enumerate(reader, 2):
        sku = (row.get("seller-sku") or "").strip()
        if not sku:
            continue
        try:
            quantity = int(row["quantity"]) if (row.get("quantity") or "").strip() else None
            price = Decimal(row["price"].replace(",", ".")) if (row.get("price") or "").strip() else None
        except (ValueError, InvalidOperation):
            raise InvalidData(f"listings report {report_id} line {number} (SKU {sku!r}): quantity "
                              f"{row.get('quantity')!r} or price {row.get('price')!r} is not a number",
                              record=report_id) from None
        rows.append(ListingRow(sku, quantity, price, (row.get("fulfillment-channel") or "DEFAULT").strip(),
                               (row.get("status") or "").strip(), (row.get("asin1") or "").strip() or None))
    return rows
