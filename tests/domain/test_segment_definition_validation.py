# ruff: noqa: E501  (expected messages and the fixture table read best unwrapped)
"""Validation against the catalog: every problem, with the path of its node (S7)."""

from __future__ import annotations

from typing import Any

import pytest

from segsync.domain.catalog import AttrType, Catalog, Relationship, TableInfo
from segsync.domain.segment_definition import DefinitionError, definition_from_dict
from segsync.domain.segment_validation import definition_errors, validate_definition

CATALOG = Catalog(
    profile_table="customers",
    profile_key="CustomerId",
    tables={
        "customers": TableInfo(
            "customers",
            {
                "CustomerId": AttrType.TEXT,
                "City": AttrType.TEXT,
                "LifetimeValue": AttrType.NUMBER,
                "BirthDate": AttrType.DATE,
                "IsSubscribed": AttrType.BOOLEAN,
            },
        ),
        "orders": TableInfo(
            "orders",
            {
                "OrderId": AttrType.TEXT,
                "CustomerId": AttrType.TEXT,
                "OrderDate": AttrType.DATE,
                "Amount": AttrType.NUMBER,
                "Channel": AttrType.TEXT,
            },
        ),
        "returns": TableInfo("returns", {"CustomerId": AttrType.TEXT, "Reason": AttrType.TEXT}),
        "stores": TableInfo("stores", {"StoreId": AttrType.TEXT}),
    },
    relationships=[
        Relationship("orders", "CustomerId", "customers", "CustomerId"),
        Relationship("returns", "CustomerId", "customers", "CustomerId"),
    ],
)


def errors_of(*rules: dict[str, Any]) -> list[tuple[str, str]]:
    return definition_errors(definition_from_dict({"name": "t", "rules": list(rules)}), CATALOG)


def cond(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    found: dict[str, Any] = {"attribute": attribute, "op": op}
    if value is not None:
        found["value"] = value
    return found


def test_unknown_attribute_with_a_suggestion_at_its_exact_path() -> None:
    rules = (
        {"conditions": cond("City", "is_empty")},
        {"combine": "union", "conditions": {"all": [cond("Cty", "equals", "Lisbon")]}},
    )
    defn = definition_from_dict({"name": "t", "rules": list(rules)})
    with pytest.raises(DefinitionError) as info:
        validate_definition(defn, CATALOG)
    assert str(info.value) == (
        "rules[1].conditions.all[0]: unknown attribute 'Cty' (did you mean 'City'?)"
    )
    assert info.value.errors == [
        ("rules[1].conditions.all[0]", "unknown attribute 'Cty' (did you mean 'City'?)")
    ]


def test_a_valid_definition_passes() -> None:
    assert errors_of({"conditions": cond("City", "equals", "Lisbon")}) == []
    validate_definition(
        definition_from_dict({"name": "t", "rules": [{"conditions": cond("City", "is_empty")}]}),
        CATALOG,
    )


def test_all_errors_are_collected_one_per_line() -> None:
    rules = [
        {"conditions": {"any": [cond("Cty", "equals", "x"), cond("City", "greater_than", 3)]}},
        {"conditions": cond("LifetimeValue", "greater_than", "abc")},
    ]
    defn = definition_from_dict({"name": "t", "rules": rules})
    with pytest.raises(DefinitionError) as info:
        validate_definition(defn, CATALOG)
    assert str(info.value).splitlines() == [
        "the segment definition is invalid:",
        "rules[0].conditions.any[0]: unknown attribute 'Cty' (did you mean 'City'?)",
        "rules[0].conditions.any[1]: operator 'greater_than' does not fit 'City' of type text; "
        "it takes: equals, not_equals, in, not_in, contains, not_contains, starts_with, "
        "ends_with, is_empty, is_not_empty",
        "rules[1]: missing `combine` (union, intersect or except) on a rule after the first",
        "rules[1].conditions.value: value for 'greater_than' must be a number, got text 'abc'",
    ]


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        (cond("City", "equal", "x"), "", "unknown operator 'equal' (did you mean 'equals'?)"),
        (
            cond("LifetimeValue", "greater_than", "5"),
            ".value",
            "value for 'greater_than' must be a number, got text '5'",
        ),
        (
            cond("LifetimeValue", "equals", True),
            ".value",
            "value for 'equals' must be a number, got boolean true",
        ),
        (
            cond("LifetimeValue", "between", [5]),
            ".value",
            "value for 'between' must be a list [low, high] of two numbers, got a list",
        ),
        (
            cond("LifetimeValue", "between", [9, 5]),
            ".value",
            "value for 'between' must have low <= high, got [9, 5]",
        ),
        (
            cond("BirthDate", "between", ["2024-01-01", "x"]),
            ".value",
            "value for 'between' must be a list [low, high] of two dates like 2024-05-31, got a list",
        ),
        (
            cond("BirthDate", "before", "01/02/1980"),
            ".value",
            "value for 'before' must be a date like 2024-05-31, got text '01/02/1980'",
        ),
        (
            cond("BirthDate", "within_last", 90),
            ".value",
            "value for 'within_last' must be one of {days: N}, {weeks: N} or {months: N} with N a whole number > 0 (at most 36,600 days, 5,220 weeks or 1,200 months), got number 90",
        ),
        (
            cond("BirthDate", "within_last", {"days": -1}),
            ".value",
            "value for 'within_last' must be one of {days: N}, {weeks: N} or {months: N} with N a whole number > 0 (at most 36,600 days, 5,220 weeks or 1,200 months), got a mapping",
        ),
        (
            cond("BirthDate", "not_within_last", {"years": 1}),
            ".value",
            "value for 'not_within_last' must be one of {days: N}, {weeks: N} or {months: N} with N a whole number > 0 (at most 36,600 days, 5,220 weeks or 1,200 months), got a mapping",
        ),
        (cond("City", "in", []), ".value", "value for 'in' must be a non-empty list, got a list"),
        (
            cond("City", "not_in", "Lisbon"),
            ".value",
            "value for 'not_in' must be a non-empty list, got text 'Lisbon'",
        ),
        (cond("City", "in", ["a", ["b"]]), ".value", "value[1] for 'in' must be text, got a list"),
        (cond("City", "equals"), ".value", "operator 'equals' needs a value"),
        (cond("City", "contains", ""), ".value", "value for 'contains' must be non-empty text"),
        (
            cond("City", "is_empty", "x"),
            ".value",
            "operator 'is_empty' takes no value, got text 'x'",
        ),
        (
            cond("IsSubscribed", "is_true", True),
            ".value",
            "operator 'is_true' takes no value, got boolean true",
        ),
        (
            cond("IsSubscribed", "equals", True),
            "",
            "operator 'equals' does not fit 'IsSubscribed' of type boolean; it takes: is_true, is_false, is_empty, is_not_empty",
        ),
        (
            cond("BirthDate", "greater_than", "2024-01-01"),
            "",
            "operator 'greater_than' does not fit 'BirthDate' of type date; it takes: on, equals, before, after, between, within_last, not_within_last, is_empty, is_not_empty",
        ),
        (
            cond("LifetimeValue", "contains", "5"),
            "",
            "operator 'contains' does not fit 'LifetimeValue' of type number; it takes: equals, not_equals, in, not_in, greater_than, greater_or_equal, less_than, less_or_equal, between, is_empty, is_not_empty",
        ),
        (
            cond("orders.Amount", "greater_than", 5),
            "",
            "attribute 'orders.Amount' is in the related table 'orders'; add `related: orders` to this rule to use it",
        ),
        (
            cond("Amount", "greater_than", 5),
            "",
            "unknown attribute 'Amount' in the profile table; the related table 'orders' has it: use 'orders.Amount' with `related: orders`",
        ),
        (
            cond("ordrs.Amount", "greater_than", 5),
            "",
            "unknown table 'ordrs' in attribute 'ordrs.Amount' (did you mean 'orders'?)",
        ),
        (cond("city", "equals", "x"), "", "unknown attribute 'city' (did you mean 'City'?)"),
        (
            cond("customers.Cty", "equals", "x"),
            "",
            "unknown attribute 'customers.Cty' (did you mean 'City'?)",
        ),
    ],
)
def test_condition_errors(condition: dict[str, Any], path: str, message: str) -> None:
    assert errors_of({"conditions": {"all": [cond("City", "is_empty"), condition]}}) == [
        (f"rules[0].conditions.all[1]{path}", message)
    ]


def test_text_accepts_whole_numbers_and_qualified_profile_attributes() -> None:
    assert errors_of({"conditions": cond("customers.City", "in", ["1000", 1100])}) == []


@pytest.mark.parametrize(
    ("rule", "errors"),
    [
        (
            {"related": "ordrs", "conditions": cond("orders.Amount", "greater_than", 1)},
            [("rules[0].related", "unknown related table 'ordrs' (did you mean 'orders'?)")],
        ),
        (
            {"related": "stores"},
            [
                (
                    "rules[0].related",
                    "table 'stores' has no declared relationship to the profile table "
                    "'customers'; declare one with `segsync profiles relate`",
                )
            ],
        ),
        (
            {"related": "customers", "conditions": cond("City", "is_empty")},
            [
                (
                    "rules[0].related",
                    "'customers' is the profile table itself; leave out `related` to use its "
                    "attributes",
                )
            ],
        ),
        (
            {"related": "returns", "conditions": cond("orders.Amount", "greater_than", 1)},
            [
                (
                    "rules[0].conditions",
                    "attribute 'orders.Amount' is in table 'orders', but this rule is related "
                    "to 'returns'",
                )
            ],
        ),
        (
            {"related": "orders", "conditions": cond("orders.Amont", "greater_than", 1)},
            [
                (
                    "rules[0].conditions",
                    "unknown attribute 'orders.Amont' (did you mean 'orders.Amount'?)",
                )
            ],
        ),
        (
            {
                "having": {"aggregate": "count", "op": "greater_than", "value": 1},
                "conditions": cond("City", "is_empty"),
            },
            [("rules[0].having", "`having` needs `related` naming a related table")],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "aggregate": "sum",
                    "attribute": "orders.Channel",
                    "op": "greater_than",
                    "value": 1,
                },
            },
            [
                (
                    "rules[0].having.attribute",
                    "aggregate 'sum' needs a number attribute; 'orders.Channel' is text",
                )
            ],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "aggregate": "avg",
                    "attribute": "orders.OrderDate",
                    "op": "greater_than",
                    "value": 1,
                },
            },
            [
                (
                    "rules[0].having.attribute",
                    "aggregate 'avg' needs a number attribute; 'orders.OrderDate' is date",
                )
            ],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "all": [
                        {
                            "aggregate": "total",
                            "attribute": "orders.Amount",
                            "op": "greater_than",
                            "value": 1,
                        }
                    ]
                },
            },
            [("rules[0].having.all[0].aggregate", "unknown aggregate 'total'")],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "aggregate": "summ",
                    "attribute": "orders.Amount",
                    "op": "greater_than",
                    "value": 1,
                },
            },
            [("rules[0].having.aggregate", "unknown aggregate 'summ' (did you mean 'sum'?)")],
        ),
        (
            {"related": "orders", "having": {"aggregate": "sum", "op": "greater_than", "value": 1}},
            [("rules[0].having", "aggregate 'sum' needs an attribute of 'orders'")],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "aggregate": "max",
                    "attribute": "LifetimeValue",
                    "op": "greater_than",
                    "value": 1,
                },
            },
            [
                (
                    "rules[0].having.attribute",
                    "aggregates run over the rows of 'orders'; 'LifetimeValue' is an attribute of the profile table",
                )
            ],
        ),
        (
            {
                "related": "orders",
                "having": {"aggregate": "count", "op": "greater_than", "value": "2"},
            },
            [("rules[0].having.value", "value for 'greater_than' must be a number, got text '2'")],
        ),
        (
            {"related": "orders", "having": {"aggregate": "count", "op": "is_empty"}},
            [
                (
                    "rules[0].having",
                    "operator 'is_empty' does not fit aggregate 'count' of type number; it takes: equals, not_equals, greater_than, greater_or_equal, less_than, less_or_equal, between",
                )
            ],
        ),
        (
            {
                "related": "orders",
                "having": {
                    "aggregate": "max",
                    "attribute": "orders.OrderDate",
                    "op": "greater_than",
                    "value": 1,
                },
            },
            [
                (
                    "rules[0].having",
                    "operator 'greater_than' does not fit aggregate 'max' of type date; it takes: on, equals, before, after, between, within_last, not_within_last",
                )
            ],
        ),
        (
            {"combine": "union", "conditions": cond("City", "is_empty")},
            [("rules[0].combine", "the first rule takes no `combine`; remove it")],
        ),
        (
            {},
            [("rules[0]", "a rule needs `conditions` (or `related` with optional `having`)")],
        ),
    ],
)
def test_rule_errors(rule: dict[str, Any], errors: list[tuple[str, str]]) -> None:
    assert errors_of(rule) == errors


def test_related_rules_accept_related_and_profile_attributes() -> None:
    rule = {
        "related": "orders",
        "conditions": {
            "all": [
                cond("orders.OrderDate", "within_last", {"days": 90}),
                cond("Channel", "equals", "web"),
                cond("City", "equals", "Lisbon"),
            ]
        },
        "having": {
            "any": [
                {"aggregate": "count", "op": "greater_or_equal", "value": 2},
                {"aggregate": "count", "attribute": "orders.Amount", "op": "equals", "value": 1},
                {"aggregate": "min", "attribute": "Amount", "op": "between", "value": [1, 2]},
                {
                    "aggregate": "max",
                    "attribute": "orders.OrderDate",
                    "op": "after",
                    "value": "2024-01-01",
                },
            ]
        },
    }
    assert errors_of(rule) == []
