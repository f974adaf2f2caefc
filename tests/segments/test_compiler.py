"""Rules, set operations, nested groups, related rules with aggregates, injection."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import ibis
import pytest

from segsync.domain.segment_definition import DefinitionError
from tests.segments.conftest import ALL_IDS, EVIL_COLUMN, EVIL_VALUE, NOW, Engine


def ids(*numbers: int) -> list[str]:
    return [f"C{n:02d}" for n in numbers]


LISBON = {"attribute": "City", "op": "equals", "value": "lisbon"}  # C01 C02 C03
SUBSCRIBED = {"attribute": "IsSubscribed", "op": "is_true"}  # C01 C04 C06 C08 C10 C12
RECENT_ORDERS = {"attribute": "orders.OrderDate", "op": "within_last", "value": {"days": 90}}
# Orders in the 90 days before NOW, per customer (C99 has no profile; O13 is after NOW):
#   C01: 60, 70   C02: 30   C03: 200, 20, 40   C08: NULL, 15   C10: 150


def segment(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "rules": list(rules)}


def related(having: Any = None, conditions: Any = RECENT_ORDERS, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"related": "orders", **extra}
    if conditions is not None:
        rule["conditions"] = conditions
    if having is not None:
        rule["having"] = having
    return rule


@pytest.mark.parametrize(
    ("combine", "second", "expected"),
    [
        ("union", {"attribute": "Visits", "op": "greater_than", "value": 6}, ids(1, 2, 3, 7)),
        ("intersect", SUBSCRIBED, ids(1)),
        ("except", SUBSCRIBED, ids(2, 3)),
    ],
)
def test_rules_combine_in_order(
    engine: Engine, combine: str, second: dict[str, Any], expected: list[str]
) -> None:
    rules = segment({"conditions": LISBON}, {"combine": combine, "conditions": second})
    assert engine.members(rules) == expected


def test_three_rules_apply_left_to_right_including_a_related_one(engine: Engine) -> None:
    defn = segment(
        {"conditions": LISBON},
        {
            "combine": "union",
            "conditions": {"attribute": "LoyaltyTier", "op": "equals", "value": "platinum"},
        },
        related({"aggregate": "count", "op": "greater_or_equal", "value": 2}, combine="except"),
    )
    assert engine.members(defn) == ids(2, 10)


def test_nested_all_and_any_groups(engine: Engine) -> None:
    defn = segment(
        {
            "conditions": {
                "all": [
                    {"attribute": "City", "op": "in", "value": ["lisbon", "porto"]},
                    {
                        "any": [
                            {"attribute": "LoyaltyTier", "op": "equals", "value": "gold"},
                            {
                                "all": [
                                    {
                                        "attribute": "LifetimeValue",
                                        "op": "greater_than",
                                        "value": 100,
                                    },
                                    {
                                        "attribute": "BirthDate",
                                        "op": "before",
                                        "value": "1990-01-01",
                                    },
                                ]
                            },
                        ]
                    },
                ]
            }
        }
    )
    assert engine.members(defn) == ids(1, 3, 4)


def test_any_group_with_a_nested_all_group(engine: Engine) -> None:
    defn = segment(
        {
            "conditions": {
                "any": [
                    {
                        "all": [
                            {"attribute": "IsSubscribed", "op": "is_false"},
                            {"attribute": "Visits", "op": "greater_or_equal", "value": 3},
                        ]
                    },
                    {"attribute": "LastVisit", "op": "is_empty"},
                ]
            }
        }
    )
    assert engine.members(defn) == ids(5, 7, 9)


def test_the_spec_example_segment(engine: Engine) -> None:
    defn = """
name: Lisbon big spenders
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
    # Rule 1: C01 (Gold), C03 (Platinum). Rule 2: C01 (sum 130, 2 orders), C03 (260, 3).
    assert engine.members(defn) == ids(1, 3)


@pytest.mark.parametrize(
    ("having", "expected"),
    [
        (None, ids(1, 2, 3, 8, 10)),
        ({"aggregate": "count", "op": "greater_or_equal", "value": 2}, ids(1, 3, 8)),
        (
            {
                "aggregate": "count",
                "attribute": "orders.Amount",
                "op": "greater_or_equal",
                "value": 2,
            },
            ids(1, 3),  # C08 has one order without an amount
        ),
        (
            {"aggregate": "sum", "attribute": "orders.Amount", "op": "greater_than", "value": 100},
            ids(1, 3, 10),
        ),
        (
            {"aggregate": "avg", "attribute": "Amount", "op": "greater_or_equal", "value": 65},
            ids(1, 3, 10),
        ),
        (
            {"aggregate": "min", "attribute": "orders.Amount", "op": "less_than", "value": 20},
            ids(8),
        ),
        (
            {"aggregate": "max", "attribute": "orders.Amount", "op": "between", "value": [70, 150]},
            ids(1, 10),
        ),
        (
            {
                "any": [
                    {
                        "aggregate": "sum",
                        "attribute": "orders.Amount",
                        "op": "greater_than",
                        "value": 200,
                    },
                    {
                        "aggregate": "min",
                        "attribute": "orders.Amount",
                        "op": "less_than",
                        "value": 20,
                    },
                ]
            },
            ids(3, 8),
        ),
    ],
    ids=["no-having", "count", "count-attribute", "sum", "avg", "min", "max", "any"],
)
def test_related_rule_with_each_aggregate(engine: Engine, having: Any, expected: list[str]) -> None:
    assert engine.members(segment(related(having))) == expected


def test_aggregate_of_dates_compares_with_date_operators(engine: Engine) -> None:
    having = {
        "aggregate": "max",
        "attribute": "orders.OrderDate",
        "op": "within_last",
        "value": {"days": 7},
    }
    # Latest order: C02 06-05, C03 06-10 11:00 are within; C12's 12:30 order is after NOW.
    assert engine.members(segment(related(having, conditions=None))) == ids(2, 3)


def test_related_rule_without_conditions_keeps_profiles_with_any_related_row(
    engine: Engine,
) -> None:
    assert engine.members(segment(related(conditions=None))) == ids(1, 2, 3, 4, 6, 8, 10, 12)


def test_related_conditions_may_use_profile_attributes(engine: Engine) -> None:
    web_in_lisbon = {
        "all": [{"attribute": "orders.Channel", "op": "equals", "value": "WEB"}, LISBON]
    }
    assert engine.members(segment(related(conditions=web_in_lisbon))) == ids(1, 2, 3)
    big_or_unsubscribed = {
        "any": [
            {"attribute": "orders.Amount", "op": "greater_than", "value": 140},
            {"attribute": "customers.IsSubscribed", "op": "is_false"},
        ]
    }
    assert engine.members(segment(related(conditions=big_or_unsubscribed))) == ids(1, 2, 3, 10)


def test_related_rows_without_a_profile_never_make_members(engine: Engine) -> None:
    only_the_orphan = {"attribute": "orders.Amount", "op": "greater_than", "value": 900}
    assert engine.members(segment(related(conditions=only_the_orphan))) == []


def test_relative_dates_follow_the_injected_now(engine: Engine) -> None:
    rule = {"conditions": {"attribute": "SignupAt", "op": "within_last", "value": {"days": 2}}}
    assert engine.members(segment(rule), now=NOW) == ids(1, 4)
    assert engine.members(segment(rule), now=NOW.replace(tzinfo=UTC)) == ids(1, 4)
    later = NOW.replace(day=11, hour=9)
    assert engine.members(segment(rule), now=later) == ids(1, 7)


def test_a_segment_without_members_is_empty_not_an_error(engine: Engine) -> None:
    rules = segment(
        {"conditions": LISBON},
        {
            "combine": "intersect",
            "conditions": {"attribute": "City", "op": "equals", "value": "Porto"},
        },
    )
    assert engine.members(rules) == []


def test_injection_through_a_value_is_just_a_value(engine: Engine) -> None:
    evil = {"attribute": "City", "op": "equals", "value": "x'; DROP TABLE customers; --"}
    assert engine.members(segment({"conditions": evil})) == []
    assert engine.members(
        segment({"conditions": {"attribute": EVIL_COLUMN, "op": "equals", "value": EVIL_VALUE}})
    ) == ids(1)
    in_list = {"attribute": "City", "op": "in", "value": ["'); DROP TABLE orders; --", "Lisbon"]}
    assert engine.members(segment({"conditions": in_list})) == ids(1, 2, 3)
    assert engine.profile.count().execute() == len(ALL_IDS)
    assert engine.table("orders").count().execute() == 14


def test_injection_through_an_attribute_name_is_refused(duckdb_engine: Engine) -> None:
    evil = {"attribute": "x'; DROP TABLE customers; --", "op": "equals", "value": "a"}
    with pytest.raises(DefinitionError, match="unknown attribute"):
        duckdb_engine.compile(segment({"conditions": evil}))
    assert duckdb_engine.profile.count().execute() == len(ALL_IDS)


def test_compiled_sql_holds_no_definition_text_unquoted(duckdb_engine: Engine) -> None:
    expr = duckdb_engine.compile(
        segment({"conditions": {"attribute": EVIL_COLUMN, "op": "equals", "value": EVIL_VALUE}})
    )
    sql = ibis.to_sql(expr, dialect="duckdb")
    assert "'x''); drop table customers; --'" in sql.lower()  # a quoted literal
    assert '"Nick\'""; DROP TABLE customers; --"' in sql  # a quoted identifier


def test_compile_validates_first(duckdb_engine: Engine) -> None:
    with pytest.raises(DefinitionError) as info:
        duckdb_engine.compile(
            segment({"conditions": {"attribute": "Cty", "op": "equals", "value": "x"}})
        )
    assert str(info.value) == "rules[0].conditions: unknown attribute 'Cty' (did you mean 'City'?)"


def test_members_are_a_single_column_named_after_the_profile_key(engine: Engine) -> None:
    expr = engine.compile(segment({"conditions": LISBON}, related(combine="union")))
    assert expr.columns == ("CustomerId",)
    keys = expr.to_pyarrow().column(0).to_pylist()
    assert len(keys) == len(set(keys)) == 5
