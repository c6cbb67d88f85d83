"""Data-quality checks on an order before it is written: what a person should look at, never a refusal.

* **price** — a unit price (Amazon's item price ÷ quantity, before promotions) more than
  ``[quality] price_tolerance_percent`` away from the Sage price sheet's ListPrice in the order's currency (the
  warehouse's own sheet first). An item without a price in force gets no verdict.
* **quantity** — the order's units of an item far above its history: the units per earlier Sage order of the
  item over ``quantity_history_days``, robustly summarised by their median and MAD (median absolute deviation,
  scaled by 1.4826 to estimate a standard deviation and floored at one unit), flagged above
  ``median + quantity_mad_factor × scale``. Fewer than ``quantity_min_history`` earlier orders: no verdict.
* **ship_to** — a US ship-to that ``usaddress`` reads as ambiguous (two street numbers, no street line …).
* **label** — a ship-to that does not fit Sage's address columns; found by the translator
  (:func:`erpsync.sage500.address.fit`), listed with these.

The order flow writes an order with any reason on hold (``[quality] hold_reason``) and records every reason in the
audit event ``order.held``; ``erpsync orders preview`` shows them. :func:`review` is pure; :func:`evidence` reads
what it needs from Sage.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from erpsync import logs, mapping, model
from erpsync.config import QualitySettings, Settings
from erpsync.sage500 import address as addresses
from erpsync.sage500 import history
from erpsync.sage500.draft import StagedOrder, WrittenOrder
from erpsync.sage500.translate import HOLD_REASON

if TYPE_CHECKING:
    from erpsync.runtime.store import Store

log = logs.get(__name__)

MAD_TO_SIGMA = Decimal("1.4826")  # a normal distribution's standard deviation is 1.4826 × its MAD
PERCENT = Decimal("0.1")


@dataclass(frozen=True)
class Evidence:
    """What Sage says about the order's items: ListPrice and units per earlier order (newest first) per ItemID.
    ``None``: not read (no Sage database at hand), so those checks are not made."""

    prices: Mapping[str, Decimal] | None = None
    history: Mapping[str, list[Decimal]] | None = None


def check(engine: Engine, company_id: str, order: model.Order, known_item_ids: Iterable[str],
          settings: Settings, *, sage_now: datetime | None = None) -> list[str]:
    """:func:`review` with the evidence read from Sage (the order flow, before it writes)."""
    item_ids = item_ids_of(order, settings, known_item_ids)
    return review(order, item_ids, settings.quality,
                  evidence(engine, company_id, order, item_ids.values(), settings, sage_now=sage_now))


def held(written: WrittenOrder, staged: StagedOrder) -> tuple[str, dict[str, Any]]:
    """The reasons of an order written on hold, kept where a dashboard finds them: the audit event ``order.held``
    (the Sage HoldReason only has room for ``[quality] hold_reason``). Reasons name SKUs, items, amounts and what
    is wrong with a ship-to, never the address itself. The caller writes it with the journal's 'written' (one
    transaction), or alone with :func:`record`."""
    return "order.held", {"amazon_order_id": written.AmazonOrderId, "so_key": written.SOKey,
                          "tran_no": written.TranNo, "hold_reason": staged.HoldReason,
                          "reasons": list(staged.review)}


def log_held(written: WrittenOrder, staged: StagedOrder) -> None:
    log.warning("order.held", amazon_order_id=written.AmazonOrderId, so_key=written.SOKey,
                checks=sorted({reason.split(":", 1)[0] for reason in staged.review}))


def record(store: Store, written: WrittenOrder, staged: StagedOrder) -> None:
    """:func:`held` in a transaction of its own."""
    event, detail = held(written, staged)
    store.audit(event, **detail)
    log_held(written, staged)


def held_for_review(engine: Engine, amazon_order_id: str) -> str | None:
    """The HoldReason of a Sage order on hold for anything but Amazon's Pending (a review hold, or one a person
    put): erpsync does not release those. None when the order is not on hold or waits only for payment."""
    found = history.hold(engine, amazon_order_id)
    if found is None or not found[0] or found[1] == HOLD_REASON:
        return None
    return found[1] or "(no reason given)"


def review(order: model.Order, item_ids: Mapping[str, str], settings: QualitySettings,
           evidence: Evidence) -> list[str]:
    """The reasons to hold ``order`` for review (empty: none). ``item_ids``: SellerSKU -> Sage ItemID."""
    checks = set(settings.checks)
    reasons: list[str] = []
    if "price" in checks and evidence.prices is not None:
        reasons += _prices(order, item_ids, settings, evidence.prices)
    if "quantity" in checks and evidence.history is not None:
        reasons += _quantities(order, item_ids, settings, evidence.history)
    if "ship_to" in checks and order.ship_to is not None:
        why = addresses.ambiguity(order.ship_to)
        if why:
            reasons.append(f"ship-to ambiguous: {why}; check the address with the buyer or in Seller Central")
    return reasons


def evidence(engine: Engine, company_id: str, order: model.Order, item_ids: Iterable[str],
             settings: Settings, *, sage_now: datetime | None = None) -> Evidence:
    """Read the price sheet and the quantity history of the order's items (only what the checks need).
    ``sage_now``: now on Sage's clock (naive local time, ``gateway.clock.to_sage()``), which the price sheets'
    EffectiveDate and the orders' TranDate are in; None: now in UTC."""
    checks, wanted = set(settings.quality.checks), sorted(set(item_ids))
    prices = history_ = None
    if "price" in checks:
        warehouse = settings.mapping.warehouses.get(order.fulfillment_channel.value)
        prices = history.list_prices(engine, company_id, order.currency or "", wanted, warehouse_id=warehouse,
                                     now=sage_now)
    if "quantity" in checks:
        history_ = history.quantities(engine, company_id, wanted, days=settings.quality.quantity_history_days,
                                      now=sage_now)
    return Evidence(prices=prices, history=history_)


def item_ids_of(order: model.Order, settings: Settings, known_item_ids: Iterable[str] | None) -> dict[str, str]:
    skus = mapping.SkuMapper(settings.mapping, known_item_ids)
    return {line.sku: skus.resolve(line.sku, order_id=order.amazon_order_id).item_id for line in order.lines}


def robust_limit(history_: list[Decimal], factor: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(median, scale, limit): scale = max(1.4826 × MAD, 1 unit); limit = median + factor × scale."""
    median = Decimal(statistics.median(history_))
    mad = Decimal(statistics.median([abs(q - median) for q in history_]))
    scale = max(MAD_TO_SIGMA * mad, Decimal(1))
    return median, scale, median + factor * scale


def _prices(order: model.Order, item_ids: Mapping[str, str], settings: QualitySettings,
            prices: Mapping[str, Decimal]) -> list[str]:
    reasons = []
    tolerance = settings.price_tolerance_percent
    for line in order.lines:
        item_id = item_ids.get(line.sku, line.sku)
        sheet = prices.get(item_id)
        if not sheet or sheet <= 0:
            continue
        unit = line.item_price.amount / line.quantity
        off = (unit - sheet) / sheet * 100
        if abs(off) > tolerance:
            direction = "above" if off > 0 else "below"
            reasons.append(
                f"price: SKU {line.sku} (item {item_id}) sells at {_money(unit)} {order.currency or ''} a unit, "
                f"{abs(off).quantize(PERCENT, ROUND_HALF_UP)}% {direction} the Sage price sheet's {_money(sheet)} "
                f"(more than [quality] price_tolerance_percent {tolerance}); check the listing price on Amazon")
    return reasons


def _quantities(order: model.Order, item_ids: Mapping[str, str], settings: QualitySettings,
                history_: Mapping[str, list[Decimal]]) -> list[str]:
    ordered: dict[str, tuple[Decimal, list[str]]] = {}
    for line in order.lines:
        item_id = item_ids.get(line.sku, line.sku)
        units, skus = ordered.get(item_id, (Decimal(0), []))
        ordered[item_id] = (units + line.quantity, skus + [line.sku])
    reasons = []
    for item_id, (units, skus) in ordered.items():
        earlier = history_.get(item_id, [])
        if len(earlier) < settings.quantity_min_history:
            continue
        median, scale, limit = robust_limit(earlier, settings.quantity_mad_factor)
        if units > limit:
            reasons.append(
                f"quantity: {_units(units)} units of item {item_id} (SKU {', '.join(dict.fromkeys(skus))}) against "
                f"a median of {_units(median)} over its last {len(earlier)} Sage orders (limit {_units(limit)} = "
                f"median + [quality] quantity_mad_factor {settings.quantity_mad_factor} × {_units(scale)}); check "
                f"the order is not a typing error or a reseller")
    return reasons


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def _units(value: Decimal) -> str:
    return str(value.normalize().quantize(Decimal(1)) if value == value.to_integral_value()
               else value.quantize(Decimal("0.01"), ROUND_HALF_UP))
