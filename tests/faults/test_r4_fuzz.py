"""R4, short: hypothesis fuzzing (derandomized: the same inputs every run) through the real entry points. Every bad
record is a 4xx with a reason, an InvalidData or one dead letter of erpsync's own naming the order; never a 5xx, an
exception of another kind or a Sage row."""

from __future__ import annotations

import pytest

from benchmarks import fuzz
from benchmarks.harness import Rig
from erpsync.amazon.translate import order_from_api
from erpsync.errors import InvalidData


@pytest.fixture
def rig(tmp_path, sage_template, quiet):
    with Rig(tmp_path, time_scale=60.0, seed=14, sage_template=sage_template) as made:
        made.start_web()
        yield made


@pytest.mark.parametrize("target, examples", [(fuzz.webhook, 40), (fuzz.sqs, 40), (fuzz.translator, 60),
                                              (fuzz.import_path, 8), (fuzz.settlement_files, 40)])
def test_fuzzed_input_is_refused_with_a_reason_never_a_crash(rig, target, examples):
    result = target(rig, examples, 14)
    assert result.examples == examples
    assert result.crashed == 0, result.failures
    assert result.refused > 0 and result.accepted + result.refused == examples  # it did spoil, and the spoilt
    # inputs that were still sound went through


@pytest.mark.parametrize("spoil", [
    lambda order: order["fulfillment"].update(fulfillmentStatus=["UNSHIPPED"]),  # unhashable: was a TypeError
    lambda order: order["orderItems"][0]["product"].update(price=["9.99"]),  # a list for the object: was AttributeError
])
def test_an_order_field_of_the_wrong_json_type_is_invalid_data_naming_the_order(rig, spoil):
    """R4 found these: the translator raised TypeError / AttributeError, so the job's dead letter read as a bug."""
    [oid] = rig.generate(1, seed=15)
    order = rig.control("GET", f"orders/{oid}")["order"]
    spoil(order)
    with pytest.raises(InvalidData, match=f"order {oid}: ") as caught:
        order_from_api(order)
    assert caught.value.record == oid

