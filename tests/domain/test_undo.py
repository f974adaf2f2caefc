"""The undo planner (docs/exports.md "Undo a run"): from a run's change record and the sync
state now, the plan that reverses the run — and only what is left of it."""

from __future__ import annotations

from segsync.domain.payload import payload_hash
from segsync.domain.sync_state import SyncStateView
from segsync.domain.undo import Change, build_undo_plan

OLD = {"fields": {"FirstName": "Ann"}, "custom": {}}
NEW = {"fields": {"FirstName": "Anna"}, "custom": {}}
NOW = {"fields": {"FirstName": "Cid"}, "custom": {"Score": 3}}


def digest(values: dict[str, dict[str, object]]) -> str:
    return payload_hash(values["fields"], values["custom"])


RECORD = [
    Change("added", "new@example.com", "1", NEW, None),
    Change("added", "moved@example.com", "2", NEW, OLD),  # joined list 2 and was renamed
    Change("updated", "ann@example.com", None, NEW, OLD),
    Change("updated", "lost@example.com", None, NEW, None),  # values before unknown
    Change("removed", "cid@example.com", "1"),
    Change("removed", "gone@example.com", "9"),  # segment 9 left the export since
    Change("refused", "bad@example.com", "1", NEW, None),
]


def state_after_the_run(**changes: object) -> SyncStateView:
    base: dict[str, object] = {
        "hashes": {
            "new@example.com": digest(NEW),
            "moved@example.com": digest(NEW),
            "ann@example.com": digest(NEW),
            "lost@example.com": digest(NEW),
            "cid@example.com": digest(NOW),
        },
        "memberships": {("1", "new@example.com"), ("2", "moved@example.com")},
        "list_ids": {"1": "L1", "2": "L2"},
    }
    base.update(changes)
    return SyncStateView(**base)  # type: ignore[arg-type]


def test_the_undo_reverses_each_kind_of_change() -> None:
    undo = build_undo_plan(
        RECORD,
        state_after_the_run(),
        segments=["1", "2"],
        current={"cid@example.com": NOW},
    )
    plan = undo.plan
    assert plan.removals == [("2", "moved@example.com"), ("1", "new@example.com")]
    items = {(i.email, i.segment): (dict(i.fields), i.payload_hash) for i in plan.items()}
    assert items == {
        ("ann@example.com", None): (OLD["fields"], digest(OLD)),
        ("moved@example.com", None): (OLD["fields"], digest(OLD)),
        ("cid@example.com", "1"): (NOW["fields"], digest(NOW)),  # back with its values now
    }
    assert undo.unknown_previous == {"lost@example.com"}
    assert undo.other_lists == 1
    assert plan.ordered is not None  # the planner's own order, as the hold gate reads it
    assert list(plan.items()) == sorted(
        (item for batch in plan.batches for item in batch),
        key=lambda item: (item.email, item.segment or ""),
    )
    assert plan.lists_to_ensure == []
    assert (plan.per_list["1"].to_add, plan.per_list["1"].to_remove) == (1, 1)


def test_a_resumed_undo_plans_only_what_is_left() -> None:
    partly = state_after_the_run(
        hashes={
            "ann@example.com": digest(OLD),  # already restored
            "moved@example.com": digest(NEW),
            "cid@example.com": digest(NOW),
        },
        memberships={("1", "cid@example.com"), ("2", "moved@example.com")},  # cid back, new gone
    )
    undo = build_undo_plan(RECORD, partly, segments=["1", "2"], current={"cid@example.com": NOW})
    assert undo.plan.removals == [("2", "moved@example.com")]
    assert [(i.email, i.segment) for i in undo.plan.items()] == [("moved@example.com", None)]


def test_a_list_deleted_by_hand_is_made_again_for_the_people_added_back() -> None:
    state = state_after_the_run(list_ids={"1": None, "2": "L2"}, memberships=set())
    undo = build_undo_plan(RECORD, state, segments=["1", "2"], current={})
    assert undo.plan.lists_to_ensure == ["1"]
    assert ("1", "new@example.com") not in undo.plan.removals  # nothing to remove there
    assert [i.email for i in undo.plan.items() if i.segment == "1"] == ["cid@example.com"]
