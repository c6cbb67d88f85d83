"""One dead letter per problem (issue 8, item 3): an order erpsync cannot translate is dead-lettered once for each
state of it Amazon reports (its LastUpdateDate), however often the sync window and repeated notifications read it
again; a newer state is news and gets a dead letter of its own."""

from __future__ import annotations

from erpsync.sandbox.world import iso


def break_order(world, oid: str, quantity: object = "lots") -> None:
    """Amazon changes the order (a newer LastUpdateDate) into something erpsync cannot translate."""
    with world.lock:
        order = world.orders[oid]
        order["orderItems"][0]["quantityOrdered"] = quantity
        order["lastUpdatedTime"] = iso(world.now())


def open_dead_letters(pipeline, oid: str) -> list:
    return [d for d in pipeline.runtime.store.dead_letters.list() if d.record == oid]


def test_an_untranslatable_order_is_one_dead_letter_per_state_however_often_it_is_read(pipeline):
    world, runtime = pipeline.sandbox.world, pipeline.runtime
    [oid] = pipeline.generate(1, seed=31)  # no webhook: the window finds it
    world.advance(5)
    break_order(world, oid)
    world.advance(180)  # searchOrders shows orders two minutes after their last update
    with pipeline.workers(queues=("amazon",)):
        for _ in range(3):  # three windows over the same state (today: a dead letter from each)
            assert runtime.run("sync_window").status == "done"
            assert runtime.drain(30), pipeline.describe()
            world.advance(60)
        [first] = open_dead_letters(pipeline, oid)
        assert first.job == "import_order" and oid in first.message and "quantityOrdered" in first.message
        assert pipeline.journal(oid) == "failed"
        # a notification of the same state reads it and finds it answered for by its dead letter
        again = runtime.run("import_order", {"amazon_order_id": oid, "status": "Unshipped"})
        assert (again.status, again.value) == ("done", "settled")
        assert len(open_dead_letters(pipeline, oid)) == 1

        # Amazon changes the order, still unreadable: news, one more dead letter, and again only one
        break_order(world, oid, quantity="many")
        world.advance(180)
        for _ in range(2):
            assert runtime.run("sync_window").status == "done"
            assert runtime.drain(30), pipeline.describe()
            world.advance(60)
    letters = open_dead_letters(pipeline, oid)
    assert len(letters) == 2 and "'many'" in max(letters, key=lambda d: d.id).message
