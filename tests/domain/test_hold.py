"""The blast-radius hold's rule (docs/exports.md "Blast-radius hold"): thresholds as users
write them, the verdict on a plan at its edges, and the plan's fingerprint."""

from __future__ import annotations

import pytest

from segsync.domain.hold import (
    GROWTH_MINIMUM,
    HoldRule,
    judge,
    parse_growth,
    parse_removals,
    plan_fingerprint,
)
from segsync.domain.plan import Desired, RemovalPolicy, SyncPlan, build_plan
from segsync.domain.sync_state import SyncStateView
from segsync.errors import InputError


def desired(emails: list[str], segment: str = "1", digest: str = "h") -> list[Desired]:
    return [Desired(e, digest, {}, {}, frozenset({segment})) for e in emails]


def emails(n: int, start: int = 0) -> list[str]:
    return [f"p{i:06d}@example.com" for i in range(start, start + n)]


def state_with(members: list[str], segment: str = "1") -> SyncStateView:
    return SyncStateView(
        hashes=dict.fromkeys(members, "h"),
        memberships={(segment, e) for e in members},
        list_ids={segment: "L1"},
    )


def plan_of(wanted: list[str], state: SyncStateView) -> SyncPlan:
    return build_plan(desired(wanted), state, segments=["1"], removal=RemovalPolicy.MIRROR)


@pytest.mark.parametrize(
    ("text", "value"),
    [("20%", 0.2), ("5 %", 0.05), ("100%", 1.0), ("35", 0.35), ("off", None), (" OFF ", None)],
)
def test_removals_thresholds_as_written(text: str, value: float | None) -> None:
    assert parse_removals(text) == value


@pytest.mark.parametrize(
    ("text", "value"), [("3x", 3.0), ("1.5X", 1.5), ("10", 10.0), ("2×", 2.0), ("off", None)]
)
def test_growth_thresholds_as_written(text: str, value: float | None) -> None:
    assert parse_growth(text) == value


@pytest.mark.parametrize("text", ["0%", "-5%", "120%", "lots", "nan", ""])
def test_bad_removal_thresholds_name_the_setting(text: str) -> None:
    with pytest.raises(InputError, match=r"^hold removals"):
        parse_removals(text)


@pytest.mark.parametrize("text", ["1x", "0.5x", "x", "inf", "many"])
def test_bad_growth_thresholds_name_the_setting(text: str) -> None:
    with pytest.raises(InputError, match=r"^hold growth"):
        parse_growth(text)


def test_removing_exactly_the_share_goes_and_one_more_holds() -> None:
    members = emails(100)
    state = state_with(members)
    rule = HoldRule()
    at_limit = judge(plan_of(members[20:], state), state, rule)
    over = judge(plan_of(members[21:], state), state, rule)
    assert not at_limit.held
    assert over.held
    (line,) = over.lists
    assert (line.before, line.after, line.to_remove, line.members) == (100, 79, 21, 79)
    assert line.leaving == tuple(members[:10])
    assert "would lose 21 of its 100 members (21%" in over.reasons[0]


def test_a_verdict_works_out_its_plans_fingerprint_only_when_asked() -> None:
    """A plan within the thresholds keeps no record, so its fingerprint (a pass over every
    item) is left undone; asked for, it is the plan's."""
    members = emails(100)
    state = state_with(members)
    plan = plan_of(members[21:], state)
    verdict = judge(plan, state, HoldRule())
    assert "fingerprint" not in vars(verdict)
    assert verdict.to_dict()["fingerprint"] == plan_fingerprint(plan)
    assert vars(verdict)["fingerprint"] == plan_fingerprint(plan)


def test_pending_memberships_count_in_the_size_before() -> None:
    members = emails(100)
    state = SyncStateView(
        hashes=dict.fromkeys(members, "h"),
        memberships={("1", e) for e in members[:50]},
        pending={("1", e) for e in members[50:]},
        list_ids={"1": "L1"},
    )
    verdict = judge(plan_of(members[15:], state), state, HoldRule())
    assert verdict.lists[0].before == 100
    assert not verdict.held


def test_growth_needs_the_factor_and_a_thousand_people() -> None:
    members = emails(400)
    state = state_with(members)
    rule = HoldRule()
    # 400 → 1,300: 3.25x but 900 join: under the minimum
    assert not judge(plan_of(emails(1300), state), state, rule).held
    # 400 → 1,400: 3.5x and 1,000 join
    verdict = judge(plan_of(emails(1400), state), state, rule)
    assert verdict.held
    assert verdict.lists[0].to_add == GROWTH_MINIMUM
    assert verdict.lists[0].joining == tuple(emails(10, 400))
    # 400 → 1,200: exactly 3x is not more than 3x
    small = state_with(emails(500))
    assert not judge(plan_of(emails(1500), small), small, rule).held


def test_a_first_fill_is_never_held_and_off_never_holds() -> None:
    empty = SyncStateView(list_ids={"1": None})
    assert not judge(plan_of(emails(3_000), empty), empty, HoldRule()).held
    assert judge(plan_of(emails(1500), empty), empty, HoldRule()).lists[0].first_fill
    members = emails(100)
    state = state_with(members)
    everyone_leaves = plan_of([], state)
    assert judge(everyone_leaves, state, HoldRule()).held
    assert not judge(everyone_leaves, state, HoldRule(removals=None, growth=None)).held
    assert HoldRule(None, None).is_off


def test_a_plans_fingerprint_never_changes() -> None:
    """An approval keeps the fingerprint of the plan it approved ("Blast-radius hold" in
    docs/exports.md): a plan's digest must stay what it always was, for a plan with list making,
    joins, updates and removals."""
    wanted = [
        Desired(e, "h" if i % 3 else "other", {}, {}, frozenset({"1", "2"} if i % 5 else {"1"}))
        for i, e in enumerate(emails(25_000))
    ]
    gone = ["gone@example.com"]
    state = SyncStateView(
        hashes=dict.fromkeys(gone, "h"),
        memberships={("1", e) for e in gone},
        list_ids={"1": "L1", "2": None},
    )
    plan = build_plan(wanted, state, segments=["1", "2"], removal=RemovalPolicy.MIRROR)
    assert (plan.counts.items, plan.removals, plan.lists_to_ensure) == (
        45_000,
        [("1", "gone@example.com")],
        ["2"],
    )
    assert plan_fingerprint(plan) == (
        "444d2249920f5ffe4a42905df721373e0fadb79390c1db0bbb6ffc20e5709225"
    )


def test_the_fingerprint_is_the_plan_and_nothing_else() -> None:
    members = emails(100)
    state = state_with(members)
    plan = plan_of(members[30:], state)
    assert plan_fingerprint(plan) == plan_fingerprint(plan_of(members[30:], state))
    assert plan_fingerprint(plan) != plan_fingerprint(plan_of(members[31:], state))
    changed_payload = build_plan(
        desired(members[30:], digest="other"), state, segments=["1"], removal=RemovalPolicy.MIRROR
    )
    assert plan_fingerprint(plan) != plan_fingerprint(changed_payload)


def test_the_rule_reads_back_as_written() -> None:
    assert HoldRule().to_dict() == {"removals": "20%", "growth": "3x"}
    assert HoldRule(0.05, None).to_dict() == {"removals": "5%", "growth": "off"}
    assert HoldRule(None, None).describe() == "off"
    assert "more than 20% of a list" in HoldRule().describe()
