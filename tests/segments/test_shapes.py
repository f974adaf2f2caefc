"""The shape of the compiled SQL (issue 11, target 6), and that the shape changes no member.

The compiler emits what a person would write: ``SELECT key FROM profile WHERE ...`` with no
DISTINCT, no COALESCE around a comparison a filter reads directly, a related rule as
``key IN (SELECT ... GROUP BY ... HAVING ...)``, and the member stream as one filtered scan of
the profile table. The property test checks that dropping those COALESCEs and DISTINCTs
changed no member: any tree of conditions and any chain of rules selects exactly the profiles
that combining each condition's own members (pinned by test_operators.py) with the documented
AND / OR / union / intersect / except selects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import reduce
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segsync.segments.compiler import INLINE_IN_VALUES, profile_rows
from segsync.segments.evaluate import (
    count,
    member_query,
    member_rows,
    members_with_attributes,
    stream_members,
)
from tests.conftest import examples
from tests.segments.conftest import ALL_IDS, ENGINES, Engine

KEY = "CustomerId"
LEAVES: list[dict[str, Any]] = [
    {"attribute": "City", "op": "equals", "value": "lisbon"},
    {"attribute": "City", "op": "not_equals", "value": "Lisbon"},
    {"attribute": "City", "op": "in", "value": ["porto", "LISBOA", "new york"]},
    {"attribute": "City", "op": "not_in", "value": ["porto", "lisbon"]},
    {"attribute": "City", "op": "not_contains", "value": "o"},
    {"attribute": "City", "op": "is_empty"},
    {"attribute": "City", "op": "is_not_empty"},
    {"attribute": "LoyaltyTier", "op": "in", "value": ["gold", "platinum"]},
    {"attribute": "LifetimeValue", "op": "greater_than", "value": 60},
    {"attribute": "LifetimeValue", "op": "not_equals", "value": 50},
    {"attribute": "Visits", "op": "not_in", "value": [0, 3]},
    {"attribute": "IsSubscribed", "op": "is_true"},
    {"attribute": "IsSubscribed", "op": "is_false"},
    {"attribute": "IsSubscribed", "op": "is_not_empty"},
    {"attribute": "BirthDate", "op": "before", "value": "1980-01-02"},
    {"attribute": "SignupAt", "op": "not_within_last", "value": {"months": 3}},
]
RELATED: list[dict[str, Any]] = [
    {
        "related": "orders",
        "conditions": {"attribute": "orders.OrderDate", "op": "within_last", "value": {"days": 90}},
        "having": {
            "aggregate": "sum",
            "attribute": "orders.Amount",
            "op": "greater_than",
            "value": 50,
        },
    },
    {
        "related": "orders",
        "conditions": {
            "all": [
                {"attribute": "orders.Channel", "op": "not_equals", "value": "web"},
                {"attribute": "City", "op": "is_not_empty"},  # a profile attribute: a join
            ]
        },
    },
]


def segment(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "rules": list(rules)}


def _trees() -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(range(len(LEAVES)))
    return st.recursive(
        leaf,
        lambda children: st.tuples(
            st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3)
        ),
        max_leaves=6,
    )


def _conditions(tree: Any) -> dict[str, Any]:
    if isinstance(tree, int):
        return LEAVES[tree]
    kind, children = tree
    return {kind: [_conditions(child) for child in children]}


_rules = st.one_of(
    _trees().map(lambda tree: ("tree", tree)),
    st.sampled_from(range(len(RELATED))).map(lambda i: ("related", i)),
)


class Reference:
    """Members worked out from each condition's (and each related rule's) own members."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cache: dict[str, frozenset[str]] = {}

    def alone(self, rule: dict[str, Any]) -> frozenset[str]:
        text = json.dumps(rule, sort_keys=True)
        if text not in self.cache:
            self.cache[text] = frozenset(self.engine.members(segment(rule)))
        return self.cache[text]

    def tree(self, tree: Any) -> frozenset[str]:
        if isinstance(tree, int):
            return self.alone({"conditions": LEAVES[tree]})
        kind, children = tree
        sets = [self.tree(child) for child in children]
        join = frozenset.intersection if kind == "all" else frozenset.union
        return reduce(join, sets)

    def rule(self, rule: tuple[str, Any]) -> frozenset[str]:
        kind, value = rule
        return self.tree(value) if kind == "tree" else self.alone(RELATED[value])


_references: dict[str, Reference] = {}


def _tries(n: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``n`` generated definitions (fewer in the fast tier), each with a fresh fixture."""

    def wrap(test: Callable[..., None]) -> Callable[..., None]:
        tries = settings(
            max_examples=examples(n),
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        return tries(_GIVEN(test))

    return wrap


_GIVEN = given(
    rules=st.lists(_rules, min_size=2, max_size=4),
    combines=st.lists(st.sampled_from(["union", "intersect", "except"]), min_size=3, max_size=3),
)
SPARK_EXAMPLES = 8
"""Examples on Spark, where each costs several small Spark jobs (about 1.5 s an example): the
property runs there too, with fewer tries (its conformance is the operator tests' work)."""


@pytest.mark.parametrize("engine", ENGINES[:2], indirect=True)  # Spark: the test below
@_tries(60)
def test_any_definition_selects_what_its_parts_select(
    engine: Engine, rules: list[tuple[str, Any]], combines: list[str]
) -> None:
    _selects_what_its_parts_select(engine, rules, combines)


@_tries(SPARK_EXAMPLES)
def test_any_definition_selects_what_its_parts_select_on_spark(
    spark_engine: Engine, rules: list[tuple[str, Any]], combines: list[str]
) -> None:
    _selects_what_its_parts_select(spark_engine, rules, combines)


def _selects_what_its_parts_select(
    engine: Engine, rules: list[tuple[str, Any]], combines: list[str]
) -> None:
    reference = _references.setdefault(engine.name, Reference(engine))
    expected = reference.rule(rules[0])
    raw_rules = []
    for i, rule in enumerate(rules):
        kind, value = rule
        raw = {"conditions": _conditions(value)} if kind == "tree" else dict(RELATED[value])
        if i:
            raw["combine"] = combines[i - 1]
            part = reference.rule(rule)
            if combines[i - 1] == "union":
                expected = expected | part
            elif combines[i - 1] == "intersect":
                expected = expected & part
            else:
                expected = expected - part
        raw_rules.append(raw)
    definition = segment(*raw_rules)
    assert engine.members(definition) == sorted(expected), json.dumps(definition)
    assert count(engine.compile(definition)) == len(expected)


def _sql(expr: Any) -> str:
    return " ".join(ibis.to_sql(expr, dialect="duckdb").split())


LISBON = {"attribute": "City", "op": "equals", "value": "lisbon"}
RICH = {"attribute": "LifetimeValue", "op": "greater_than", "value": 100}
SUBSCRIBED = {"attribute": "IsSubscribed", "op": "is_true"}


def test_a_profile_segment_is_one_filter_of_the_profile_table(duckdb_engine: Engine) -> None:
    members = duckdb_engine.compile(
        segment(
            {"conditions": {"all": [LISBON, RICH]}},
            {"combine": "union", "conditions": SUBSCRIBED},
        )
    )
    sql = _sql(members)
    assert "DISTINCT" not in sql
    assert "JOIN" not in sql
    assert "UNION" not in sql
    assert sql.count('FROM "customers"') == 1
    # Comparisons stand bare: the engine can push them into its scan.
    assert "COALESCE" not in sql
    assert '"LifetimeValue" > 100' in sql
    assert '"IsSubscribed" = TRUE' in sql
    assert profile_rows(members, duckdb_engine.profile) is not None


def test_a_negation_stays_true_on_empty_values(duckdb_engine: Engine) -> None:
    """``not_equals`` is NOT of a two-valued comparison, so it matches an empty city; an
    ``except`` rule is made two-valued before it is negated."""
    not_lisbon = {"attribute": "City", "op": "not_equals", "value": "lisbon"}
    sql = _sql(duckdb_engine.compile(segment({"conditions": not_lisbon})))
    assert re.search(r"NOT \( ?COALESCE\(", sql), sql
    assert "C05" in duckdb_engine.members(segment({"conditions": not_lisbon}))
    minus = segment({"conditions": SUBSCRIBED}, {"combine": "except", "conditions": RICH})
    assert re.search(r"NOT \( ?COALESCE\(", _sql(duckdb_engine.compile(minus)))
    # C04 is subscribed with no lifetime value: not rich, so it stays.
    assert duckdb_engine.members(minus) == ["C04", "C06", "C08", "C10"]


def test_a_related_rule_is_key_in_its_grouped_rows(duckdb_engine: Engine) -> None:
    members = duckdb_engine.compile(segment(RELATED[0]))
    sql = _sql(members)
    assert re.search(r'"CustomerId" IN \( ?SELECT', sql), sql
    assert "GROUP BY" in sql
    assert "DISTINCT" not in sql
    assert "JOIN" not in sql  # aggregated first; IN keeps the keys of profiles
    assert duckdb_engine.members(segment(RELATED[0])) == ["C01", "C03", "C10"]


def test_the_member_stream_reads_the_profile_table_once(duckdb_engine: Engine) -> None:
    members = duckdb_engine.compile(segment({"conditions": LISBON}))
    table = members_with_attributes(members, duckdb_engine.profile, KEY, ["City"])
    sql = _sql(table)
    assert "JOIN" not in sql
    assert sql.count('FROM "customers"') == 1
    assert table.to_pyarrow().to_pylist() == [
        {KEY: "C01", "City": "Lisbon"},
        {KEY: "C02", "City": "LISBON"},
        {KEY: "C03", "City": "lisbon"},
    ]


def test_members_from_elsewhere_are_joined_back(duckdb_engine: Engine) -> None:
    """A member table the compiler did not make (a list of ids) still streams, by a join."""
    wanted = ibis.memtable(pa.table({KEY: ["C12", "C02", "C99"]}))
    assert profile_rows(wanted, duckdb_engine.profile) is None
    batches = stream_members(wanted, duckdb_engine.profile, KEY, ["City"])
    rows = pa.Table.from_batches(list(batches)).to_pylist()
    assert rows == [{KEY: "C02", "City": "LISBON"}, {KEY: "C12", "City": "Évora"}]
    # as a run reads them: an in-memory table exists only where Ibis registered it, so such
    # members are read through Ibis, never as SQL on DuckDB's own cursor
    assert member_query(wanted, duckdb_engine.profile, KEY, ["City"]) is None
    read = member_rows(wanted, duckdb_engine.profile, KEY, ["City"])
    assert [row for batch in read for row in batch.rows] == [("C02", "LISBON"), ("C12", "Évora")]


def test_a_filter_of_another_table_is_not_taken_for_profile_rows(duckdb_engine: Engine) -> None:
    orders = duckdb_engine.table("orders")
    other = orders.filter(orders["Amount"] > 100).select(KEY)
    assert profile_rows(other, duckdb_engine.profile) is None
    everyone = duckdb_engine.compile(
        segment({"conditions": {"attribute": KEY, "op": "is_not_empty"}})
    )
    assert count(everyone) == len(ALL_IDS)


@pytest.mark.parametrize("rule", RELATED)
def test_related_rules_keep_only_profiles(engine: Engine, rule: dict[str, Any]) -> None:
    """Orders of C99 (no profile) never make a member, though IN reads the grouped keys."""
    assert "C99" not in engine.members(segment(rule))


def test_a_long_in_list_is_a_join_with_its_values_and_selects_the_same(engine: Engine) -> None:
    """Past INLINE_IN_VALUES values an ``in`` list is a table the column is looked up in, not
    a comparison per value, made by the query itself; the members are those of the short lists
    it is made of."""
    cities = ["lisbon", "PORTO"] + [f"nowhere {i}" for i in range(INLINE_IN_VALUES * 4)]
    ids = [*range(-500, 0), 1, 2, 3]  # CustomerId: only 1, 2 and 3 can match
    for attribute, values, short in (
        ("City", cities, ["lisbon", "porto"]),
        ("CustomerId", ids, [1, 2, 3]),
    ):
        for op in ("in", "not_in"):
            long_rule = {"conditions": {"attribute": attribute, "op": op, "value": values}}
            short_rule = {"conditions": {"attribute": attribute, "op": op, "value": short}}
            assert engine.members(segment(long_rule)) == engine.members(segment(short_rule))
    sql = _sql(engine.compile(segment({"conditions": {"attribute": "City", "op": "in",
                                                      "value": cities}})))  # fmt: skip
    # the values are one array the query unnests into a table of its own (not a comparison
    # per value, nor an in-memory table that exists only on the connection that registered it)
    assert "UNNEST(" in sql.upper()
    assert "memtable" not in sql
    assert sql.count("nowhere 7'") == 1
