"""`erpsync inventory sync --dry-run --json` on a freshly seeded replica, as a user runs it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from erpsync import config
from erpsync.cli import app
from erpsync.sage500 import availability, replica
from erpsync.sage500.engine import make_engine


def test_dry_run_proposes_an_update_for_every_seeded_item_and_sends_nothing(workdir):
    settings = config.load()
    engine = make_engine(settings.resolve_url(settings.sage500.url))
    replica.seed(engine)
    seeded = {item.item_id for item in availability.items(engine, "SOA")}
    engine.dispose()

    result = CliRunner().invoke(app, ["inventory", "sync", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    dry_run = json.loads(result.stdout)["marketplaces"]["ATVPDKIKX0DER"]
    proposed = dry_run["messages"]
    assert {p["sku"] for p in proposed} == seeded and len(proposed) == len(seeded) == 500
    assert dry_run["excluded"] == {}  # the seed has no kits nor inactive items: nothing is left out
    for p in proposed:
        patch = p["message"]["patches"][0]
        assert patch["path"] == "/attributes/fulfillment_availability"
        assert patch["value"][0]["quantity"] == p["values"]["quantity"] >= 0
    from erpsync.runtime.store import Store
    store = Store.open(settings)
    try:
        assert store.listings.feeds() == [] and store.listings.states("ATVPDKIKX0DER") == {}
    finally:
        store.close()


def test_prices_dry_run_shows_the_sheet_prices(workdir):
    settings = config.load()
    engine = make_engine(settings.resolve_url(settings.sage500.url))
    replica.seed(engine, items=20)
    engine.dispose()
    result = CliRunner().invoke(app, ["prices", "sync", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    proposed = json.loads(result.stdout)["marketplaces"]["ATVPDKIKX0DER"]["messages"]
    assert len(proposed) == 20
    assert all(p["message"]["patches"][0]["path"] == "/attributes/purchasable_offer" for p in proposed)
