"""`erpsync orders ...` commands (thin: parse arguments, call the library, print)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from erpsync import config as config_mod
from erpsync import errors, mapping, model
from erpsync.commands import config_errors
from erpsync.flows import quality
from erpsync.sage500.draft import StagedOrder
from erpsync.sage500.translate import ItemInfo, resolve_skus, staged_order

app = typer.Typer(no_args_is_help=True, help="orders commands")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # a reason stays one line, whole


@dataclass(frozen=True)
class Preview:
    order: model.Order
    action: mapping.Action
    staged: StagedOrder
    skus: dict[str, mapping.SkuMatch]
    items_from: str  # where item data came from
    not_checked: tuple[str, ...] = ()  # data-quality checks that need a Sage database and had none


def build_preview(payload: Any, settings: config_mod.Settings) -> Preview:
    """A saved getOrder response (``{"order": {...}}`` or the bare Order) -> what would be written to Sage,
    with the data-quality checks the order flow runs (those reading Sage only when there is a Sage database)."""
    from erpsync.amazon.translate import order_from_api

    raw = payload["order"] if isinstance(payload, dict) and isinstance(payload.get("order"), dict) else payload
    order = order_from_api(raw)
    items, known, skus, items_from, evidence = _sage_items(order, settings)
    review = quality.review(order, {sku: m.item_id for sku, m in skus.items()}, settings.quality, evidence)
    wanted = set(settings.quality.checks)
    not_checked = tuple(name for name, value in (("price", evidence.prices), ("quantity", evidence.history))
                        if name in wanted and value is None)
    return Preview(order=order, action=mapping.order_action(order, settings.orders),
                   staged=staged_order(order, settings, items, known_item_ids=known, review=review), skus=skus,
                   items_from=items_from, not_checked=not_checked)


def _sage_items(order: model.Order, settings: config_mod.Settings):
    """Item data (and what the data-quality checks read) from the Sage database when there is one; otherwise the
    SKUs stay unchecked and so do prices and quantities."""
    url = settings.sage500.url
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is not None and not (database if database.is_absolute() else settings.base_dir / database).exists():
        return _unchecked(order, settings, f"no Sage database at {url}")
    from erpsync.sage500.gateway import Sage500Gateway

    try:
        with Sage500Gateway.from_settings(settings) as gateway:
            known = gateway.item_ids()
            skus = resolve_skus(order, settings.mapping, known)
            records = gateway.items({m.item_id for m in skus.values()})
            evidence = quality.evidence(gateway.engine, gateway.company_id, order,
                                        {m.item_id for m in skus.values()}, settings,
                                        sage_now=gateway.clock.to_sage())
    except errors.Retryable as exc:
        return _unchecked(order, settings, f"Sage database unreachable ({exc})")
    items = {r.ItemID: ItemInfo(r.ItemID, r.ShortDesc, r.UnitMeasID or "") for r in records.values()}
    return items, known, skus, f"Sage database {url}", evidence


def _unchecked(order: model.Order, settings: config_mod.Settings, why: str):
    skus = resolve_skus(order, settings.mapping, None)
    items = {m.item_id: ItemInfo(m.item_id, None, "EA") for m in skus.values()}
    return (items, list(items), skus, f"none: {why}; SKUs unchecked, unit of measure shown as EA",
            quality.Evidence())


@app.command()
def preview(
    file: Path = typer.Argument(..., help="A saved Orders API v2026-01-01 getOrder response (JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)"),
) -> None:
    """Show the canonical order and the Sage staging rows an Amazon order would become, without writing."""
    with config_errors():
        settings = config_mod.load(config)
    try:
        payload = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        err.print(f"{file}: cannot read a JSON getOrder response: {exc}", markup=False)
        raise typer.Exit(1)
    try:
        result = build_preview(payload, settings)
    except errors.ConfigError as exc:
        err.print(f"configuration error: {exc}", markup=False)
        raise typer.Exit(2)
    except (errors.Permanent, model.InvalidRecord) as exc:
        err.print(f"{file}: {exc}", markup=False)
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(_as_dict(result), indent=2, default=_plain))
    else:
        _print(result)


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _as_dict(result: Preview) -> dict[str, Any]:
    header = asdict(result.staged)
    lines, notes, review = header.pop("lines"), header.pop("notes"), header.pop("review")
    return {
        "action": {"kind": result.action.kind.value, "reason": result.action.reason},
        "order": result.order.model_dump(mode="json"),
        "items_from": result.items_from,
        "skus": {sku: {"item_id": m.item_id, "how": m.how} for sku, m in result.skus.items()},
        "header": header,
        "lines": lines,
        "totals": {"sage": result.staged.tran_amt,
                   "amazon": result.order.order_total.amount if result.order.order_total else None,
                   "currency": result.order.currency},
        "notes": list(notes),
        "review": {"hold": bool(result.staged.review), "hold_reason": result.staged.HoldReason,
                   "reasons": review, "not_checked": list(result.not_checked)},
    }


def _print(result: Preview) -> None:
    order, staged = result.order, result.staged
    console.print(f"[bold]Amazon order {order.amazon_order_id}[/bold]  {order.status.value}, "
                  f"{order.fulfillment_channel.value}, marketplace {order.marketplace_id}")
    console.print(f"action: [bold]{result.action.kind.value}[/bold] — {result.action.reason}", highlight=False)
    if staged.review:
        console.print(f"[bold red]on hold for review[/bold red] (HoldReason {staged.HoldReason!r}):",
                      highlight=False)
        for reason in staged.review:
            console.print(f"  hold: {reason}", highlight=False, markup=False)
    else:
        console.print("data quality: no reason to hold", highlight=False)
    if result.not_checked:
        console.print(f"not checked without a Sage database: {', '.join(result.not_checked)}", highlight=False)
    amounts = ("item_price", "shipping_price", "shipping_discount", "promotion_discount", "gift_wrap_price",
               "cod_fee", "cod_fee_discount", "other_charges")
    console.print(_columns("Amazon order items (canonical)", [
        {"order_item_id": line.order_item_id, "sku": line.sku, "quantity": line.quantity,
         **{name: getattr(line, name).amount for name in amounts if getattr(line, name) is not None},
         "tax": line.tax_total.amount, "total": line.total.amount} for line in order.lines]))
    header = {k: v for k, v in asdict(staged).items() if k not in ("lines", "notes", "review")}
    console.print(_columns("StgSalesOrder (would be written)", [header]))
    lines = []
    for line in staged.lines:
        row = asdict(line)
        row["SellerSKU"] = f"{line.SellerSKU} ({result.skus[line.SellerSKU].how})"
        lines.append(row)
    console.print(_columns("StgSOLine (would be written)", lines))
    amazon = order.order_total.amount if order.order_total else "(not given)"
    console.print(f"total: Sage {staged.tran_amt} / Amazon {amazon} {order.currency or ''}", highlight=False)
    console.print(f"items from: {result.items_from}", highlight=False, markup=False)
    for note in staged.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


def _columns(title: str, records: list[dict[str, Any]]) -> Table:
    """One row per field, one column per record; fields empty in every record are left out."""
    table = Table(title=title, title_justify="left")
    table.add_column("field", style="bold")
    for number in range(1, len(records) + 1):
        table.add_column(str(number) if len(records) > 1 else "value", overflow="fold")
    for field in dict.fromkeys(key for record in records for key in record):
        values = ["" if record.get(field) is None else str(record.get(field)) for record in records]
        if any(values):
            table.add_row(field, *values)
    return table
