"""Which lists a run reads before removing pending memberships: those where reading (one
request per page) costs less than removing each pending membership (one request each)."""

from __future__ import annotations

from segsync.services.sync.pending import lists_worth_reading


def test_a_list_is_read_when_its_pending_removals_outnumber_its_pages() -> None:
    pending = {("1", f"p{i}@x.org") for i in range(150)} | {("2", "q@x.org")}
    removals = [*sorted(pending), ("1", "known@x.org")]  # a known one never counts
    sizes = {"1": 10_000, "2": 50}
    # list 1: 150 pending removals against 100 pages; list 2: 1 against 1 page
    assert lists_worth_reading(removals, pending, sizes) == {"1"}
    assert lists_worth_reading(removals, pending, {"1": 15_000, "2": 50}) == set()  # 150 pages


def test_an_empty_or_unknown_list_still_costs_one_page() -> None:
    pending = {("3", "a@x.org"), ("3", "b@x.org")}
    assert lists_worth_reading(sorted(pending), pending, {}) == {"3"}
    assert lists_worth_reading([("3", "a@x.org")], pending, {}) == set()
