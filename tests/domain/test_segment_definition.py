"""The segment definition format: YAML and JSON parsing, round-trips, shape errors with paths."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from segsync.domain.segment_definition import (
    AllGroup,
    AnyGroup,
    Combine,
    Condition,
    DefinitionError,
    SegmentDefinition,
    definition_to_dict,
    dump_definition,
    parse_definition,
)
from segsync.domain.segment_operators import Period, as_date, as_period
from segsync.errors import InputError

SPEC_EXAMPLE = """
name: Lisbon big spenders            # unique; the Autopilot list is titled after it
description: optional text
rules:
  - conditions:
      all:
        - {attribute: City, op: equals, value: Lisbon}
        - any:
            - {attribute: LoyaltyTier, op: in, value: [Gold, Platinum]}
            - {attribute: BirthDate, op: before, value: 1980-01-01}
  - combine: union
    related: orders
    conditions:
      all:
        - {attribute: orders.OrderDate, op: within_last, value: {days: 90}}
    having:
      all:
        - {aggregate: sum, attribute: orders.Amount, op: greater_than, value: 100}
        - {aggregate: count, op: greater_or_equal, value: 2}
"""


def test_parses_the_spec_example() -> None:
    defn = parse_definition(SPEC_EXAMPLE)
    assert defn.name == "Lisbon big spenders"
    first, second = defn.rules
    assert first.combine is None
    assert isinstance(first.conditions, AllGroup)
    assert first.conditions.all[0] == Condition(attribute="City", op="equals", value="Lisbon")
    nested = first.conditions.all[1]
    assert isinstance(nested, AnyGroup)
    # YAML reads 1980-01-01 as a date; the model keeps ISO text, the same as JSON gives.
    assert nested.any[1] == Condition(attribute="BirthDate", op="before", value="1980-01-01")
    assert second.combine is Combine.UNION
    assert second.related == "orders"
    assert second.having is not None


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_dump_and_parse_round_trip(fmt: str) -> None:
    defn = parse_definition(SPEC_EXAMPLE)
    text = dump_definition(defn, fmt)  # type: ignore[arg-type]
    assert parse_definition(text, fmt) == defn  # type: ignore[arg-type]
    assert parse_definition(text) == defn  # format detected


def test_definition_to_dict_is_plain_json_data_without_unset_keys() -> None:
    data = definition_to_dict(parse_definition(SPEC_EXAMPLE))
    assert data["rules"][0] == {
        "conditions": {
            "all": [
                {"attribute": "City", "op": "equals", "value": "Lisbon"},
                {
                    "any": [
                        {"attribute": "LoyaltyTier", "op": "in", "value": ["Gold", "Platinum"]},
                        {"attribute": "BirthDate", "op": "before", "value": "1980-01-01"},
                    ]
                },
            ]
        }
    }
    assert data["rules"][1]["having"]["all"][1] == {
        "aggregate": "count",
        "op": "greater_or_equal",
        "value": 2,
    }
    assert SegmentDefinition.model_validate(data) == parse_definition(SPEC_EXAMPLE)


def test_json_definition() -> None:
    defn = parse_definition(
        '{"name": "n", "rules": [{"conditions": {"attribute": "City", "op": "is_empty"}}]}',
        "json",
    )
    assert defn.rules[0].conditions == Condition(attribute="City", op="is_empty")


def test_shape_errors_are_all_listed_with_their_paths() -> None:
    text = """
name: x
rules:
  - conditions:
      all:
        - {attribute: City, opp: equals, value: Lisbon}
        - {foo: 1}
        - any: []
  - combine: unin
    conditons: {attribute: City, op: is_empty}
"""
    with pytest.raises(DefinitionError) as info:
        parse_definition(text)
    assert info.value.errors == [
        ("rules[0].conditions.all[0]", "missing 'op'"),
        ("rules[0].conditions.all[0]", "unknown key 'opp' (did you mean 'op'?)"),
        (
            "rules[0].conditions.all[1]",
            "expected {all: [...]}, {any: [...]} or a condition {attribute, op, value}",
        ),
        ("rules[0].conditions.all[2].any", "must not be empty"),
        ("rules[1].combine", "must be 'union', 'intersect' or 'except', got 'unin'"),
        ("rules[1]", "unknown key 'conditons' (did you mean 'conditions'?)"),
    ]
    assert str(info.value).splitlines()[0] == "the segment definition is invalid:"
    assert "rules[0].conditions.all[0]: missing 'op'" in str(info.value).splitlines()
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "a segment definition must be a mapping with name and rules"),
        ("name: x\nrules: [", "invalid YAML at line 2 column 9"),
        ('{"name": 1', "invalid JSON at line 1 column 11"),
        ("name: x\nrules: []", "rules: must not be empty"),
        ("rules: [{conditions: {attribute: A, op: is_empty}}]", "missing 'name'"),
        ("name: '  '\nrules: [{conditions: {attribute: A, op: is_empty}}]", "name: the name must"),
        (
            "name: x\nrules: [{having: {any: [{aggregate: count, op: equals}, {x: 1}]}}]",
            "rules[0].having.any[1]: expected {all: [...]}, {any: [...]} or an aggregate",
        ),
    ],
)
def test_unreadable_definitions_say_where(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text)
    assert message in str(info.value)


def test_dates_and_periods() -> None:
    assert as_date("2024-02-29") == date(2024, 2, 29)
    assert as_date(date(2024, 1, 1)) == date(2024, 1, 1)
    assert as_date("2023-02-29") is None
    assert as_date("2024-1-1") is None
    assert as_date(datetime(2024, 1, 1)) is None
    assert as_period({"days": 90}) == Period("days", 90)
    assert as_period({"days": 0}) is None
    assert as_period({"days": True}) is None
    assert as_period({"days": 1, "weeks": 1}) is None
    assert as_period({"years": 1}) is None


@pytest.mark.parametrize(
    ("now", "period", "start"),
    [
        (datetime(2024, 3, 31, 8), Period("months", 1), datetime(2024, 2, 29, 8)),
        (datetime(2023, 3, 31), Period("months", 1), datetime(2023, 2, 28)),
        (datetime(2024, 1, 15), Period("months", 2), datetime(2023, 11, 15)),
        (datetime(2024, 1, 15), Period("months", 25), datetime(2021, 12, 15)),
        (datetime(2024, 6, 10, 12), Period("days", 90), datetime(2024, 3, 12, 12)),
        (datetime(2024, 6, 10), Period("weeks", 2), datetime(2024, 5, 27)),
    ],
)
def test_period_start_uses_calendar_months(now: datetime, period: Period, start: datetime) -> None:
    assert period.start(now) == start


def test_a_bare_yaml_on_is_the_on_operator() -> None:
    defn = parse_definition(
        "name: n\nrules: [{conditions: {attribute: BirthDate, op: on, value: 1980-01-01}}]"
    )
    assert defn.rules[0].conditions == Condition(attribute="BirthDate", op="on", value="1980-01-01")
