"""Near-miss names: the "did you mean" of exports, segments, connections, tables, attributes."""

from __future__ import annotations

from segsync.domain.names import closest, did_you_mean

KNOWN = ["Newsletter audiences", "Loyal big spenders", "Lisbon and Porto customers"]


def test_a_near_miss_gets_the_closest_name() -> None:
    assert closest("Newsletter audience", KNOWN) == "Newsletter audiences"
    assert closest("Loyal big spender", KNOWN) == "Loyal big spenders"
    assert did_you_mean("Newsleter audiences", KNOWN) == " (did you mean 'Newsletter audiences'?)"


def test_a_name_differing_only_in_case_or_spaces_is_found_first() -> None:
    assert closest("  loyal  BIG spenders ", KNOWN) == "Loyal big spenders"
    assert closest("customers", ["Customer", "customers_x", "CUSTOMERS"]) == "CUSTOMERS"


def test_nothing_close_says_nothing() -> None:
    assert closest("Weekly", KNOWN) is None
    assert did_you_mean("Weekly", KNOWN) == ""
    assert did_you_mean("anything", []) == ""
