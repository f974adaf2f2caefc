"""Plan before sending: the diff against the sync state, batch packing, and resumability."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.domain.batches import BlockPacker
from segsync.domain.plan import (
    MAX_BATCH,
    NO_LIST,
    Desired,
    RemovalPolicy,
    SyncPlan,
    UpsertItem,
    acknowledged,
    batch_count,
    build_plan,
    list_title,
    pack,
    sample_items,
)
from segsync.domain.sync_state import SyncStateView
from segsync.errors import InputError
from tests.conftest import examples

# ---------------------------------------------------------------- packing


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=8), max_size=400),
    max_batch=st.integers(min_value=1, max_value=120),
)
@settings(max_examples=examples(300), deadline=None)
def test_packing_is_valid_and_minimal(sizes: list[int], max_batch: int) -> None:
    items = [(f"e{g:04d}", k) for g, size in enumerate(sizes) for k in range(size)]
    batches = pack(items, key=lambda item: item[0], max_batch=max_batch)
    placed = [item for batch in batches for item in batch]
    assert sorted(placed) == sorted(items)  # every item exactly once
    assert all(1 <= len(batch) <= max_batch for batch in batches)
    for batch in batches:
        keys = [key for key, _ in batch]
        assert len(keys) == len(set(keys))  # no email twice in one batch
    largest = max(sizes, default=0)
    assert len(batches) == max(math.ceil(len(items) / max_batch), largest)
    assert len(batches) == batch_count(len(items), largest, max_batch)
    # close together: a batch's items lie within 2 × largest × max_batch consecutive items (the
    # sync state's email indexes are then written a few pages at a time)
    position = {item: index for index, item in enumerate(items)}
    for batch in batches:
        spots = [position[item] for item in batch]
        assert max(spots) - min(spots) < 2 * largest * max_batch


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4), max_size=600),
    most=st.integers(min_value=1, max_value=4),
    max_batch=st.integers(min_value=1, max_value=30),
)
@settings(max_examples=examples(300), deadline=None)
def test_packing_a_group_at_a_time_is_valid_and_as_few(
    sizes: list[int], most: int, max_batch: int
) -> None:
    """BlockPacker (a first run sent while it is read) hands out batches as they fill, holding
    two blocks at most, and ends with as many batches as pack() makes of everything."""
    sizes = [min(size, most) for size in sizes]
    groups = [[(f"e{g:04d}", k) for k in range(size)] for g, size in enumerate(sizes)]
    packer: BlockPacker[tuple[str, int]] = BlockPacker(most, max_batch)
    batches: list[list[tuple[str, int]]] = []
    for group in groups:
        batches.extend(packer.add(group))
        assert len(packer._held) < 2 * most * max_batch  # never more than two blocks held
    batches.extend(packer.finish())
    items = [item for group in groups for item in group]
    assert sorted(item for batch in batches for item in batch) == sorted(items)
    assert all(1 <= len(batch) <= max_batch for batch in batches)
    assert all(len({key for key, _ in batch}) == len(batch) for batch in batches)
    everything = pack(items, key=lambda item: item[0], max_batch=max_batch)
    assert (
        len(batches) == len(everything) == batch_count(len(items), max(sizes, default=0), max_batch)
    )


def test_packing_a_group_at_a_time_refuses_a_group_too_big() -> None:
    packer: BlockPacker[str] = BlockPacker(2, 10)
    with pytest.raises(ValueError, match="a group of 3 items, more than 2"):
        packer.add(["a", "a", "a"])
    with pytest.raises(ValueError, match="at least 1"):
        BlockPacker(0, 10)


def test_packing_keeps_each_batch_to_neighbouring_items() -> None:
    items = [(f"e{g:06d}", k) for g in range(10_000) for k in range(1 + (g % 5 == 0))]
    batches = pack(items, key=lambda item: item[0])
    assert len(batches) == math.ceil(len(items) / MAX_BATCH)
    first = sorted(batches[0])
    assert first[0][0] == "e000000"
    assert first[-1][0] <= "e000200"  # not spread over all 10,000


def test_packing_minimum_examples() -> None:
    assert batch_count(0, 0) == 0
    assert batch_count(1, 1) == 1
    assert batch_count(100, 1) == 1
    assert batch_count(101, 1) == 2
    assert batch_count(100_000, 1) == 1_000
    assert batch_count(150, 2) == 2
    assert batch_count(10, 3) == 3  # one email in three lists needs three requests


def test_packing_refuses_ungrouped_items() -> None:
    with pytest.raises(ValueError, match="not sorted"):
        pack([("a", 1), ("b", 1), ("a", 2)], key=lambda item: item[0])
    with pytest.raises(ValueError, match="max_batch"):
        pack([("a", 1)], key=lambda item: item[0], max_batch=0)


# ---------------------------------------------------------------- diff


def desired(email: str, h: str = "h1", *segments: str) -> Desired:
    return Desired(email, h, {"FirstName": email[:1]}, {}, frozenset(segments or ("s1",)))


def plan_of(
    contacts: Iterable[Desired],
    state: SyncStateView | None = None,
    *,
    segments: Iterable[str] = ("s1",),
    removal: RemovalPolicy = RemovalPolicy.MIRROR,
) -> SyncPlan:
    return build_plan(contacts, state or SyncStateView(), segments=list(segments), removal=removal)


def items_of(plan: SyncPlan) -> list[tuple[str, str | None]]:
    return [(item.email, item.segment) for item in plan.items()]


def test_the_plan_names_the_emails_with_several_items() -> None:
    """Only those can be acknowledged more than once: the tally remembers only them."""
    state = SyncStateView(
        {"both@x.io": "h1", "one@x.io": "h0", "same@x.io": "h1"},
        frozenset({("s1", "same@x.io"), ("s2", "same@x.io")}),
        {"s1": "L1", "s2": "L2"},
    )
    contacts = [
        desired("both@x.io", "h1", "s1", "s2"),  # two new memberships: two items
        desired("one@x.io", "h1", "s1", "s2"),  # changed, two new memberships: two items
        desired("new@x.io", "h1", "s1"),  # one item
        desired("same@x.io", "h1", "s1", "s2"),  # nothing to send
    ]
    plan = plan_of(contacts, state, segments=("s1", "s2"))
    assert plan.counts.items == 5
    assert plan.several == {"both@x.io", "one@x.io"}


def test_first_run_sends_everyone_with_their_list() -> None:
    plan = plan_of(desired(f"p{i:03d}@x.io") for i in range(250))
    assert plan.lists_to_ensure == ["s1"]
    assert [len(batch) for batch in plan.batches] == [100, 75, 75]  # a full block, then the rest
    assert plan.counts.added == 250
    assert plan.counts.new_memberships == 250
    assert (plan.counts.updated, plan.counts.unchanged, plan.counts.removals) == (0, 0, 0)
    assert plan.requests_lower_bound == 1 + 3
    assert items_of(plan) == [(f"p{i:03d}@x.io", "s1") for i in range(250)]
    assert plan.per_list["s1"].members == 250
    assert plan.per_list["s1"].to_add == 250


def state_after(plan: SyncPlan, state: SyncStateView, batches: int | None = None) -> SyncStateView:
    """Execute ``plan`` against ``state`` as the runner would (optionally only some batches)."""
    hashes = dict(state.hashes)
    memberships = set(state.memberships)
    list_ids = dict(state.list_ids)
    for key in plan.lists_to_ensure:
        list_ids[key] = f"contactlist_{key}"
        memberships = {m for m in memberships if m[0] != key}
    done = plan.batches if batches is None else plan.batches[:batches]
    for batch in done:
        delta = acknowledged(batch)
        hashes.update(delta.hashes)
        memberships.update(delta.memberships)
    if batches is None:
        memberships.difference_update(plan.removals)
    return SyncStateView(hashes, frozenset(memberships), list_ids)


def test_rerun_without_changes_sends_nothing() -> None:
    contacts = [desired(f"p{i}@x.io") for i in range(120)]
    state = state_after(plan_of(contacts), SyncStateView())
    again = plan_of(contacts, state)
    assert again.is_empty
    assert again.batches == []
    assert again.counts.unchanged == 120
    assert again.counts.items == 0


def test_changed_values_are_updates_only() -> None:
    contacts = [desired(f"p{i}@x.io") for i in range(10)]
    state = state_after(plan_of(contacts), SyncStateView())
    contacts[3] = desired("p3@x.io", "h2")
    plan = plan_of(contacts, state)
    assert items_of(plan) == [("p3@x.io", None)]
    assert (plan.counts.added, plan.counts.updated, plan.counts.unchanged) == (0, 1, 9)
    assert plan.requests_lower_bound == 1
    assert plan.batches[0][0].payload_hash == "h2"


def test_leaving_a_segment_is_one_removal_under_mirror_and_none_under_add_only() -> None:
    contacts = [desired(f"p{i}@x.io") for i in range(5)]
    state = state_after(plan_of(contacts), SyncStateView())
    remaining = contacts[:2] + contacts[3:]
    mirror = plan_of(remaining, state)
    assert mirror.removals == [("s1", "p2@x.io")]
    assert mirror.requests_lower_bound == 1
    assert mirror.per_list["s1"].to_remove == 1
    add_only = plan_of(remaining, state, removal=RemovalPolicy.ADD_ONLY)
    assert add_only.removals == []
    assert add_only.is_empty


def test_pending_memberships_are_sent_again_if_wanted_and_removed_if_not() -> None:
    """A batch was sent but its answer never recorded (a crash): its memberships are pending.
    The data moved on: p1 is still wanted (sent again, which confirms it), p2 left (removed,
    though it may never have been added), p3 was never pending and is known."""
    state = SyncStateView(
        hashes={"p3@x.io": "h1"},
        memberships=frozenset({("s1", "p3@x.io")}),
        list_ids={"s1": "contactlist_1"},
        pending=frozenset({("s1", "p1@x.io"), ("s1", "p2@x.io")}),
    )
    contacts = [desired("p1@x.io"), desired("p3@x.io")]
    mirror = plan_of(contacts, state)
    assert items_of(mirror) == [("p1@x.io", "s1")]
    assert mirror.removals == [("s1", "p2@x.io")]
    add_only = plan_of(contacts, state, removal=RemovalPolicy.ADD_ONLY)
    assert items_of(add_only) == [("p1@x.io", "s1")]
    assert add_only.removals == []  # add-only never removes, pending or not


def test_pending_memberships_of_a_list_made_anew_are_ignored() -> None:
    state = SyncStateView(list_ids={"s1": None}, pending=frozenset({("s1", "gone@x.io")}))
    plan = plan_of([desired("p1@x.io")], state)
    assert plan.removals == []
    assert plan.lists_to_ensure == ["s1"]


def test_overlap_of_two_segments_is_one_contact_in_two_lists_in_two_batches() -> None:
    contacts = [desired("both@x.io", "h", "a", "b"), desired("one@x.io", "h", "a")]
    plan = plan_of(contacts, segments=("a", "b"))
    assert plan.counts.contacts == 2
    assert plan.counts.added == 2
    assert items_of(plan) == [("both@x.io", "a"), ("both@x.io", "b"), ("one@x.io", "a")]
    assert len(plan.batches) == 2
    assert all(len({i.email for i in batch}) == len(batch) for batch in plan.batches)
    assert plan.lists_to_ensure == ["a", "b"]
    assert {k: (c.members, c.to_add) for k, c in plan.per_list.items()} == {
        "a": (2, 2),
        "b": (1, 1),
    }


def test_joining_another_segment_is_one_new_membership_for_an_unchanged_contact() -> None:
    contacts = [desired("p@x.io", "h", "a")]
    state = state_after(plan_of(contacts, segments=("a", "b")), SyncStateView())
    plan = plan_of([desired("p@x.io", "h", "a", "b")], state, segments=("a", "b"))
    assert items_of(plan) == [("p@x.io", "b")]
    assert (plan.counts.unchanged, plan.counts.new_memberships) == (1, 1)
    assert plan.lists_to_ensure == []


def test_a_recreated_list_gets_every_member_again_and_no_removals() -> None:
    contacts = [desired("p@x.io"), desired("q@x.io")]
    state = state_after(plan_of(contacts), SyncStateView())
    reset = SyncStateView(state.hashes, state.memberships, {"s1": None})
    plan = plan_of(contacts[:1], reset)
    assert plan.lists_to_ensure == ["s1"]
    assert items_of(plan) == [("p@x.io", "s1")]
    assert plan.removals == []


def test_memberships_of_segments_no_longer_exported_are_left_alone() -> None:
    contacts = [desired("p@x.io", "h", "old", "s1")]
    state = state_after(plan_of(contacts, segments=("old", "s1")), SyncStateView())
    plan = plan_of([desired("p@x.io", "h", "s1")], state, segments=("s1",))
    assert plan.is_empty
    assert "old" not in plan.per_list


def test_plan_is_the_same_whatever_the_input_order() -> None:
    contacts = [desired(f"p{i}@x.io", "h", *(["a"] if i % 2 else ["a", "b"])) for i in range(300)]
    shuffled = contacts[:]
    random.Random(7).shuffle(shuffled)
    one = plan_of(contacts, segments=("a", "b"))
    two = plan_of(shuffled, segments=("b", "a"))
    assert one.batches == two.batches
    assert one.lists_to_ensure == two.lists_to_ensure == ["a", "b"]


@pytest.mark.parametrize(
    ("contacts", "message"),
    [
        ([desired("p@x.io"), desired("p@x.io")], "duplicate email"),
        ([Desired("p@x.io", "h", {}, {}, frozenset())], "in no segment"),
        ([desired("p@x.io", "h", "zzz")], "unknown segment 'zzz'"),
    ],
)
def test_bad_desired_contacts_are_programming_errors(contacts: list[Desired], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_of(contacts)


def test_unchanged_contacts_are_not_kept_in_the_plan() -> None:
    contacts = [desired(f"p{i}@x.io") for i in range(50)]
    state = state_after(plan_of(contacts), SyncStateView())
    contacts.append(desired("new@x.io"))
    plan = plan_of(iter(contacts), state)
    assert items_of(plan) == [("new@x.io", "s1")]


@pytest.mark.slow  # a plan of 100,000 contacts
def test_one_hundred_thousand_contacts_make_the_minimum_of_requests() -> None:
    contacts = [
        Desired(f"person{i:06d}@example.com", f"{i}", {}, {}, frozenset({"all"}))
        for i in range(100_000)
    ]
    plan = plan_of(iter(contacts), segments=("all",))
    assert len(plan.batches) == 1_000
    assert {len(batch) for batch in plan.batches} == {100}
    assert plan.requests_lower_bound == 1_001
    state = state_after(plan, SyncStateView())
    changed = [
        Desired(c.email, "x", {}, {}, c.segments) if i % 100 == 0 else c
        for i, c in enumerate(contacts)
    ]
    rerun = plan_of(iter(changed), state, segments=("all",))
    assert rerun.counts.updated == 1_000
    assert len(rerun.batches) == 10


# ---------------------------------------------------------------- the sync state converges

EMAILS = [f"u{i}@x.io" for i in range(12)]
SEGMENTS = ["a", "b", "c"]


@st.composite
def populations(draw: st.DrawFn) -> list[Desired]:
    chosen = draw(st.lists(st.sampled_from(EMAILS), unique=True, max_size=len(EMAILS)))
    out = []
    for email in chosen:
        segs = draw(st.frozensets(st.sampled_from(SEGMENTS), min_size=1))
        out.append(Desired(email, draw(st.sampled_from(["h1", "h2"])), {}, {}, segs))
    return out


def _expected_memberships(contacts: list[Desired]) -> set[tuple[str, str]]:
    return {(s, c.email) for c in contacts for s in c.segments}


@given(
    before=populations(),
    after=populations(),
    crash_after=st.integers(min_value=0, max_value=5),
    max_batch=st.integers(min_value=1, max_value=5),
)
@settings(max_examples=examples(150), deadline=None)
def test_state_converges_even_when_a_run_is_interrupted(
    before: list[Desired], after: list[Desired], crash_after: int, max_batch: int
) -> None:
    def plan(contacts: list[Desired], state: SyncStateView) -> SyncPlan:
        return build_plan(
            contacts, state, segments=SEGMENTS, removal=RemovalPolicy.MIRROR, max_batch=max_batch
        )

    state = state_after(plan(before, SyncStateView()), SyncStateView())
    first = plan(after, state)
    assert all(len(batch) <= max_batch for batch in first.batches)
    assert first.ordered is not None  # the planner's own order, not sorted again
    assert list(first.items()) == sorted(  # and it is the batches' items by email, then segment
        (item for batch in first.batches for item in batch),
        key=lambda item: (item.email, item.segment or ""),
    )
    state = state_after(first, state, batches=crash_after)  # the process dies here
    resumed = plan(after, state)
    assert len(resumed.batches) <= len(first.batches)
    state = state_after(resumed, state)
    assert state.memberships == _expected_memberships(after)
    assert all(state.hashes[c.email] == c.payload_hash for c in after)
    assert plan(after, state).is_empty


@given(
    before=populations(),
    after=populations(),
    crash_after=st.integers(min_value=0, max_value=5),
    missing_list=st.sampled_from([None, *SEGMENTS]),
    policy=st.sampled_from(list(RemovalPolicy)),
)
@settings(max_examples=examples(200), deadline=None)
def test_settled_contacts_plan_as_if_they_were_desired(
    before: list[Desired],
    after: list[Desired],
    crash_after: int,
    missing_list: str | None,
    policy: RemovalPolicy,
) -> None:
    """What a rerun hands the plan apart: contacts unchanged against the state with every list
    existing and every membership acknowledged need no Desired of their own."""
    state = state_after(plan_of(before, segments=SEGMENTS), SyncStateView())
    partly = plan_of(after, state, segments=SEGMENTS)
    state = state_after(partly, state, batches=crash_after)  # some of it, no removals
    if missing_list is not None:  # a list deleted by hand
        state = SyncStateView(
            state.hashes, state.memberships, {**state.list_ids, missing_list: None}
        )

    def is_settled(contact: Desired) -> bool:
        return not any(
            state.needs(contact.email, contact.payload_hash, s) for s in contact.segments
        )

    whole = build_plan(after, state, segments=SEGMENTS, removal=policy)
    apart = build_plan(
        [c for c in after if not is_settled(c)],
        state,
        segments=SEGMENTS,
        removal=policy,
        settled=[(c.email, c.segments) for c in after if is_settled(c)],
    )
    assert apart.batches == whole.batches
    assert apart.removals == whole.removals
    assert apart.counts == whole.counts
    assert apart.per_list == whole.per_list
    assert apart.lists_to_ensure == whole.lists_to_ensure


def test_a_settled_contact_in_an_unknown_segment_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"settled contact 'a@x\.io' is in unknown segment 'zz'"):
        build_plan(
            [], SyncStateView(), segments=["s1"], removal=RemovalPolicy.MIRROR,
            settled=[("a@x.io", {"zz"})],
        )  # fmt: skip


def test_rejected_contacts_are_not_recorded_as_sent() -> None:
    batch = [
        UpsertItem("a@x.io", {}, {}, "s1", "ha"),
        UpsertItem("bad@x.io", {}, {}, "s1", "hb"),
        UpsertItem("c@x.io", {}, {}, None, "hc"),
    ]
    delta = acknowledged(batch, rejected={"bad@x.io"})
    assert delta.hashes == {"a@x.io": "ha", "c@x.io": "hc"}
    assert delta.memberships == [("s1", "a@x.io")]


# ---------------------------------------------------------------- dry run and odds and ends


def test_sample_items_per_list() -> None:
    contacts = [
        Desired(f"p{i}@x.io", "h", {"FirstName": f"P{i}"}, {"integer--N": i}, frozenset({"a"}))
        for i in range(5)
    ]
    contacts.append(Desired("z@x.io", "h", {}, {}, frozenset({"a", "b"})))
    state = SyncStateView(list_ids={"a": "contactlist_A", "b": None})
    plan = build_plan(contacts, state, segments=["a", "b"], removal=RemovalPolicy.MIRROR)
    samples = sample_items(plan, per_list=2)
    assert {key: [(i.email, i.segment, lid) for i, lid in v] for key, v in samples.items()} == {
        "a": [("p0@x.io", "a", "contactlist_A"), ("p1@x.io", "a", "contactlist_A")],
        "b": [("z@x.io", "b", "<new list for segment b>")],
    }
    assert samples["a"][0][0].custom == {"integer--N": 0}


def test_sample_items_of_pure_updates() -> None:
    state = SyncStateView({"p@x.io": "old"}, frozenset({("s1", "p@x.io")}), {"s1": "L"})
    plan = plan_of([desired("p@x.io", "new")], state)
    ((item, list_id),) = sample_items(plan)[NO_LIST]
    assert (item.email, item.segment, list_id) == ("p@x.io", None, None)


def test_items_follow_planned_order_across_batches() -> None:
    contacts = [desired(f"p{i:03d}@x.io", "h", "a", "b") for i in range(150)]
    plan = plan_of(contacts, segments=("a", "b"))
    assert len(plan.batches) == 3
    flat = items_of(plan)
    assert flat == sorted(flat)
    assert Counter(email for email, _ in flat) == {c.email: 2 for c in contacts}


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("mirror", RemovalPolicy.MIRROR),
        ("add-only", RemovalPolicy.ADD_ONLY),
        (" ADD_ONLY", RemovalPolicy.ADD_ONLY),
    ],
)
def test_removal_policy_parse(text: str, policy: RemovalPolicy) -> None:
    assert RemovalPolicy.parse(text) is policy


def test_removal_policy_parse_refuses_unknown() -> None:
    with pytest.raises(InputError, match="use mirror or add-only"):
        RemovalPolicy.parse("sometimes")


def test_list_title() -> None:
    assert list_title("Lisbon big spenders") == "Lisbon big spenders"
    assert list_title("Lisbon big spenders", "CDP: ") == "CDP: Lisbon big spenders"
    assert MAX_BATCH == 100
