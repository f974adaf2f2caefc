"""Every operator on every attribute type it accepts, with the exact members on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from segsync.domain.catalog import AttrType
from segsync.domain.segment_definition import DefinitionError
from segsync.domain.segment_operators import OPS_BY_TYPE, Op
from tests.segments.conftest import ALL_IDS, Engine


def ids(*numbers: int) -> list[str]:
    return [f"C{n:02d}" for n in numbers]


def all_but(*numbers: int) -> list[str]:
    return [i for i in ALL_IDS if i not in ids(*numbers)]


def one_condition(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"attribute": attribute, "op": op}
    if value is not None:
        cond["value"] = value
    return {"name": "t", "rules": [{"conditions": cond}]}


# (attribute, op, value, expected members). NOW is 2024-06-10 12:00.
CASES: list[tuple[str, str, Any, list[str]]] = [
    # text: case-insensitive; not_* also match empty values
    ("City", "equals", "lisbon", ids(1, 2, 3)),
    ("City", "equals", "LISBON", ids(1, 2, 3)),
    ("City", "not_equals", "Lisbon", all_but(1, 2, 3)),
    ("City", "in", ["LISBON", "porto"], ids(1, 2, 3, 4)),
    ("City", "not_in", ["lisbon", "Porto"], all_but(1, 2, 3, 4)),
    ("City", "contains", "PORTO", ids(4, 11)),
    ("City", "contains", "lisbo", ids(1, 2, 3, 9)),
    ("City", "contains", "%", []),  # no LIKE wildcards
    ("City", "not_contains", "lisb", all_but(1, 2, 3, 9)),
    ("City", "starts_with", "new", ids(8)),
    ("City", "starts_with", "o'", ids(10)),
    ("City", "starts_with", "_", []),
    ("City", "ends_with", "ON", ids(1, 2, 3, 10)),
    ("City", "equals", "ÉVORA", ids(12)),
    ("City", "is_empty", None, ids(5, 6, 7)),  # NULL, '' and blank
    ("City", "is_not_empty", None, all_but(5, 6, 7)),
    # number: float and integer columns
    ("LifetimeValue", "equals", 50, ids(8, 9)),
    ("LifetimeValue", "not_equals", 50, all_but(8, 9)),
    ("LifetimeValue", "in", [0, 80.5], ids(2, 5)),
    ("LifetimeValue", "not_in", [0, 80.5], all_but(2, 5)),
    ("LifetimeValue", "greater_than", 120, ids(3, 7, 11, 12)),
    ("LifetimeValue", "greater_or_equal", 120, ids(1, 3, 7, 11, 12)),
    ("LifetimeValue", "less_than", 50, ids(5, 6)),
    ("LifetimeValue", "less_or_equal", 50, ids(5, 6, 8, 9)),
    ("LifetimeValue", "between", [50, 120], ids(1, 2, 8, 9, 10)),
    ("LifetimeValue", "is_empty", None, ids(4)),
    ("LifetimeValue", "is_not_empty", None, all_but(4)),
    ("Visits", "equals", 3, ids(8, 9)),
    ("Visits", "greater_than", 4.5, ids(1, 3, 7, 11)),
    ("Visits", "between", [2, 3], ids(2, 8, 9, 12)),
    ("Visits", "in", [0, 10], ids(3, 4)),
    ("Visits", "is_empty", None, ids(5)),
    # date: calendar dates
    ("BirthDate", "on", "1980-01-01", ids(3, 11)),
    ("BirthDate", "equals", "1980-01-01", ids(3, 11)),
    ("BirthDate", "before", "1980-01-01", ids(1, 7, 8, 12)),
    ("BirthDate", "after", "1980-01-01", ids(2, 4, 6, 9, 10)),
    ("BirthDate", "between", ["1979-12-31", "1980-01-02"], ids(3, 7, 9, 11)),
    ("BirthDate", "is_empty", None, ids(5)),
    ("BirthDate", "is_not_empty", None, all_but(5)),
    ("LastVisit", "within_last", {"days": 7}, ids(1, 2)),  # 06-03 .. 06-10; 06-11 is future
    ("LastVisit", "within_last", {"weeks": 1}, ids(1, 2)),
    ("LastVisit", "within_last", {"months": 1}, ids(1, 2, 3, 4, 10)),
    ("LastVisit", "within_last", {"months": 3}, ids(1, 2, 3, 4, 6, 9, 10, 12)),
    ("LastVisit", "not_within_last", {"days": 7}, all_but(1, 2)),
    # date: timestamps (a date means the whole day)
    ("SignupAt", "on", "2024-06-10", ids(1)),
    ("SignupAt", "before", "2024-01-01", ids(3, 8)),
    ("SignupAt", "after", "2023-12-31", ids(1, 2, 4, 6, 7, 9, 10, 11, 12)),
    ("SignupAt", "between", ["2024-01-01", "2024-04-30"], ids(6, 9, 11, 12)),
    ("SignupAt", "within_last", {"days": 1}, ids(1)),
    ("SignupAt", "within_last", {"days": 2}, ids(1, 4)),
    ("SignupAt", "within_last", {"months": 3}, ids(1, 2, 4, 6, 9, 10, 12)),
    ("SignupAt", "not_within_last", {"days": 2}, all_but(1, 4)),
    ("SignupAt", "is_empty", None, ids(5)),
    # boolean: empty is neither true nor false
    ("IsSubscribed", "is_true", None, ids(1, 4, 6, 8, 10, 12)),
    ("IsSubscribed", "is_false", None, ids(2, 7, 9)),
    ("IsSubscribed", "is_empty", None, ids(3, 5, 11)),
    ("IsSubscribed", "is_not_empty", None, all_but(3, 5, 11)),
]


@pytest.mark.parametrize(
    ("attribute", "op", "value", "expected"),
    CASES,
    ids=[f"{a}-{o}-{v}" for a, o, v, _ in CASES],
)
def test_operator_selects_exactly_the_expected_members(
    engine: Engine, attribute: str, op: str, value: Any, expected: list[str]
) -> None:
    assert engine.members(one_condition(attribute, op, value)) == expected


def test_every_operator_of_every_type_is_covered() -> None:
    types = {
        "City": AttrType.TEXT,
        "LifetimeValue": AttrType.NUMBER,
        "Visits": AttrType.NUMBER,
        "BirthDate": AttrType.DATE,
        "LastVisit": AttrType.DATE,
        "SignupAt": AttrType.DATE,
        "IsSubscribed": AttrType.BOOLEAN,
    }
    covered = {(types[a], o) for a, o, _, _ in CASES}
    wanted = {(t, op.value) for t, ops in OPS_BY_TYPE.items() for op in ops}
    assert wanted - covered == set()


REFUSED = [
    (attribute, op.value)
    for attribute, attr_type in [
        ("City", AttrType.TEXT),
        ("LifetimeValue", AttrType.NUMBER),
        ("BirthDate", AttrType.DATE),
        ("IsSubscribed", AttrType.BOOLEAN),
    ]
    for op in Op
    if op not in OPS_BY_TYPE[attr_type]
]


@pytest.mark.parametrize(("attribute", "op"), REFUSED)
def test_operator_that_does_not_fit_the_type_is_refused_before_running(
    duckdb_engine: Engine, attribute: str, op: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        duckdb_engine.compile(one_condition(attribute, op, 1))
    attr_type = duckdb_engine.catalog.profile.columns[attribute]
    assert info.value.errors == [
        (
            "rules[0].conditions",
            f"operator '{op}' does not fit '{attribute}' of type {attr_type}; it takes: "
            + ", ".join(o.value for o in OPS_BY_TYPE[attr_type]),
        )
    ]


NEGATION_PAIRS = [
    ("City", "equals", "not_equals", "lisbon"),
    ("City", "in", "not_in", ["porto", "lisbon"]),
    ("City", "contains", "not_contains", "o"),
    ("City", "is_empty", "is_not_empty", None),
    ("LifetimeValue", "equals", "not_equals", 50),
    ("Visits", "in", "not_in", [3, 5]),
    ("SignupAt", "within_last", "not_within_last", {"months": 1}),
    ("IsSubscribed", "is_empty", "is_not_empty", None),
]


@pytest.mark.parametrize(("attribute", "positive", "negative", "value"), NEGATION_PAIRS)
def test_negated_operator_is_the_exact_complement_including_empty_values(
    engine: Engine, attribute: str, positive: str, negative: str, value: Any
) -> None:
    yes = engine.members(one_condition(attribute, positive, value))
    no = engine.members(one_condition(attribute, negative, value))
    assert sorted(yes + no) == ALL_IDS
    assert yes
    assert no


def test_positive_operators_never_match_empty_values(engine: Engine) -> None:
    # C05 has every attribute empty: no comparison selects it, whatever the operator.
    for attribute, op, value in [
        ("City", "not_contains", "zzz"),  # the complement: matches it
        ("Visits", "less_or_equal", 100),
        ("BirthDate", "before", "2100-01-01"),
        ("SignupAt", "after", "1900-01-01"),
    ]:
        members = engine.members(one_condition(attribute, op, value))
        assert ("C05" in members) == op.startswith("not_"), (attribute, op)
