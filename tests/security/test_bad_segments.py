"""Bad segment definitions are refused at save with their path and a clear reason, and nothing
is stored (issue 14 §2, §3): deep nesting, out-of-range whole numbers, NUL bytes, infinite
numbers, over-long ``in`` lists, absurd periods. Values echoed back are cut to 200 characters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from segsync.domain.segment_definition import MAX_GROUP_DEPTH, DefinitionError, parse_definition
from segsync.domain.segment_operators import MAX_LIST_VALUES
from segsync.services import profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.segments import members as segment_members
from segsync.storage.repositories.segments import SegmentRepository

CUSTOMERS = "CustomerId,City,Score,Joined\n1,Lisbon,10,2024-01-02\n2,Porto,20,2024-03-04\n"


@pytest.fixture
def ctx(service_context: ServiceContext, tmp_path: Path) -> ServiceContext:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS)
    profiles.import_profiles(service_context, path, "customers", key="CustomerId", profile=True)
    return service_context


def _definition(condition: dict[str, Any]) -> str:
    return json.dumps({"name": "Probe", "rules": [{"conditions": {"all": [condition]}}]})


def _nested(depth: int) -> str:
    # Written as text: json.dumps itself cannot nest this deep.
    node = '{"attribute": "City", "op": "equals", "value": "Lisbon"}'
    node = '{"any": [' * depth + node + "]}" * depth
    return '{"name": "Deep", "rules": [{"conditions": ' + node + "}]}"


def _stored(ctx: ServiceContext) -> list[str]:
    with ctx.db.session() as session:
        return [record.name for record in SegmentRepository(session).list()]


BAD_VALUES = [
    ({"attribute": "Score", "op": "equals", "value": 10**30}, "between -2^63 and 2^63-1"),
    ({"attribute": "Score", "op": "greater_than", "value": float("inf")}, "must be finite"),
    ({"attribute": "City", "op": "equals", "value": "Lis\x00bon"}, "NUL byte"),
    ({"attribute": "City", "op": "in", "value": ["a", "b\x00"]}, "NUL byte"),
    (
        {"attribute": "City", "op": "in", "value": [str(i) for i in range(MAX_LIST_VALUES + 1)]},
        f"at most {MAX_LIST_VALUES:,}",
    ),
    ({"attribute": "Joined", "op": "within_last", "value": {"months": 10**18}}, "at most"),
    ({"attribute": "City", "op": "equals", "value": "x" * 5000}, "at most 1,000"),
]


@pytest.mark.parametrize(("condition", "reason"), BAD_VALUES)
def test_bad_values_are_refused_at_save_and_nothing_is_stored(
    ctx: ServiceContext, condition: dict[str, Any], reason: str
) -> None:
    # json.dumps writes inf as Infinity, which Python's JSON reader reads back: a real input.
    with pytest.raises(DefinitionError, match=r"rules\[0\].conditions.all\[0\]") as caught:
        segments.create_segment(ctx, _definition(condition))
    assert reason in caught.value.message
    assert _stored(ctx) == []


def test_a_definition_nested_a_thousand_deep_is_an_error_not_a_traceback(
    ctx: ServiceContext,
) -> None:
    for depth in (MAX_GROUP_DEPTH + 1, 1_000, 100_000):
        with pytest.raises(DefinitionError, match=f"nest at most {MAX_GROUP_DEPTH} levels"):
            segments.create_segment(ctx, _nested(depth))
    with pytest.raises(DefinitionError, match="nest at most"):
        parse_definition("a: " + "[" * 5000 + "]" * 5000)  # YAML too
    assert _stored(ctx) == []
    segments.create_segment(ctx, _nested(MAX_GROUP_DEPTH))  # the documented limit itself works
    assert segment_members.count_segment(ctx, "Deep") == 1


def test_an_in_list_at_the_limit_saves_and_counts(ctx: ServiceContext) -> None:
    values = ["Lisbon", *(f"city {i}" for i in range(MAX_LIST_VALUES - 1))]
    segments.create_segment(ctx, _definition({"attribute": "City", "op": "in", "value": values}))
    assert segment_members.count_segment(ctx, "Probe") == 1


def test_a_huge_value_is_echoed_cut_to_200_characters(ctx: ServiceContext) -> None:
    condition = {"attribute": "Score", "op": "equals", "value": "9" * 900 + "z"}
    with pytest.raises(DefinitionError) as caught:
        segments.create_segment(ctx, _definition(condition))
    assert "must be a number" in caught.value.message
    assert "9" * 201 not in caught.value.message
