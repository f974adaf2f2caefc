"""Segment use cases: the S4 lifecycle (draft → refresh → active / failed, history, entered and
left), S5 details (preview, CSV download, exports using it), S6 quick segments, S7 validation
before anything is stored, S8 deletion refused while exports use it, and R2 for viewers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segsync.domain.permissions import Actor, Role
from segsync.domain.segment_definition import DefinitionError
from segsync.errors import Conflict, InputError, NotFound, PermissionDenied
from segsync.services import profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.privacy.audit import list_events
from segsync.services.segments import members as segment_members
from segsync.storage.models.segments import RefreshStatus, SegmentStatus
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.segments import SegmentRepository
from tests.conftest import FROZEN_NOW

LISBON = """
name: Lisbon
description: customers in Lisbon
rules:
  - conditions:
      all:
        - {attribute: City, op: equals, value: lisbon}
"""
GOLD = """
name: Gold
rules:
  - conditions:
      all:
        - {attribute: Tier, op: in, value: [Gold, Platinum]}
"""
CUSTOMERS = (
    "CustomerId,City,Tier,Score\n"
    "1,Lisbon,Gold,10\n"
    "2,Porto,Silver,20\n"
    "3,LISBON,Bronze,30\n"
    "4,Paris,Gold,40\n"
    "5,Lisbon,Platinum,50\n"
)
# 3 moved to Porto (left), 2 moved to Lisbon (entered), 6 is new in Lisbon (entered).
CUSTOMERS_LATER = (
    "CustomerId,City,Tier,Score\n"
    "1,Lisbon,Gold,10\n"
    "2,Lisbon,Silver,20\n"
    "3,Porto,Bronze,30\n"
    "4,Paris,Gold,40\n"
    "5,Lisbon,Platinum,50\n"
    "6,Lisbon,Bronze,60\n"
)
CUSTOMERS_WITHOUT_CITY = "CustomerId,Tier,Score\n1,Gold,10\n2,Silver,20\n4,Gold,40\n"


class Clock:
    """A clock tests move forward by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def _import(ctx: ServiceContext, tmp_path: Path, text: str, *, replace: bool = False) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(text)
    profiles.import_profiles(
        ctx, path, "customers", key="CustomerId", profile=True, replace=replace
    )


@pytest.fixture
def ctx(service_context: ServiceContext, tmp_path: Path) -> ServiceContext:
    _import(service_context, tmp_path, CUSTOMERS)
    return service_context


def _viewer(ctx: ServiceContext) -> None:
    ctx.actor = Actor(user_id=7, email="viewer@example.com", role=Role.VIEWER)


# ---------------------------------------------------------------- create / update / delete


def test_a_new_segment_is_an_inactive_draft_without_members(ctx: ServiceContext) -> None:
    record = segments.create_segment(ctx, LISBON)
    assert (record.name, record.description) == ("Lisbon", "customers in Lisbon")
    assert record.status is SegmentStatus.DRAFT
    assert record.member_count is None
    assert record.last_refreshed_at is None
    assert record.created_by == "local-admin"
    details = segments.show_segment(ctx, "Lisbon")
    assert details.history == []
    assert details.last_refresh is None
    with ctx.db.session() as session:
        assert SegmentRepository(session).get_snapshot(record.id) is None
    events = list_events(ctx)
    assert [(e.action, e.target) for e in events] == [("segment.created", "Lisbon")]


def test_json_definitions_are_accepted_too(ctx: ServiceContext) -> None:
    text = '{"name": "J", "rules": [{"conditions": {"all": [{"attribute": "Score", '
    text += '"op": "greater_than", "value": 25}]}}]}'
    segments.create_segment(ctx, text)
    assert segment_members.count_segment(ctx, "J") == 3


def test_an_invalid_definition_is_refused_with_its_path_and_nothing_is_stored(
    ctx: ServiceContext,
) -> None:
    bad = LISBON.replace("attribute: City", "attribute: Cty")
    with pytest.raises(DefinitionError) as caught:
        segments.create_segment(ctx, bad)
    assert str(caught.value) == (
        "rules[0].conditions.all[0]: unknown attribute 'Cty' (did you mean 'City'?)"
    )
    assert segments.list_segments(ctx) == []
    assert list_events(ctx) == []


def test_segment_names_are_unique(ctx: ServiceContext) -> None:
    segments.create_segment(ctx, LISBON)
    with pytest.raises(Conflict, match="a segment named 'Lisbon' already exists"):
        segments.create_segment(ctx, LISBON.replace("customers in Lisbon", "again"))


def test_update_revalidates_renames_and_keeps_the_status(ctx: ServiceContext) -> None:
    segments.create_segment(ctx, LISBON)
    segments.create_segment(ctx, GOLD)
    segments.refresh_segments(ctx, ["Lisbon"])
    with pytest.raises(DefinitionError, match=r"rules\[0\]\.conditions\.all\[0\]: operator"):
        segments.update_segment(ctx, "Lisbon", LISBON.replace("op: equals", "op: greater_than"))
    with pytest.raises(Conflict, match="'Gold' already exists"):
        segments.update_segment(ctx, "Lisbon", LISBON.replace("name: Lisbon", "name: Gold"))

    report = segments.update_segment(
        ctx, "Lisbon", LISBON.replace("name: Lisbon", "name: Porto").replace("lisbon", "Porto")
    )
    assert report.renamed_from == "Lisbon"
    assert report.segment.name == "Porto"
    assert report.rules_changed
    assert report.members_stale
    assert report.segment.status is SegmentStatus.ACTIVE
    assert report.segment.member_count == 3  # the old count, until the next refresh
    with pytest.raises(NotFound):
        segments.show_segment(ctx, "Lisbon")
    assert segment_members.count_segment(ctx, "Porto") == 1

    described = segments.update_segment(
        ctx,
        "Porto",
        LISBON.replace("name: Lisbon", "name: Porto")
        .replace("lisbon", "Porto")
        .replace("in Lisbon", "x"),
    )
    assert not described.rules_changed
    assert not described.members_stale


def test_delete_is_refused_while_an_export_uses_the_segment(ctx: ServiceContext) -> None:
    record = segments.create_segment(ctx, LISBON)
    with ctx.db.session() as session:
        ExportRepository(session).create(
            name="Newsletter",
            connection_id=None,
            mapping={"email": "Email"},
            removal_policy="mirror",
            list_prefix="",
            schedule={"mode": "off"},
            segment_ids=[record.id],
            created_by="local-admin",
            now=FROZEN_NOW,
        )
    with pytest.raises(Conflict) as caught:
        segments.delete_segment(ctx, "Lisbon")
    assert "the export uses it: 'Newsletter'" in caught.value.message
    assert "Remove the segment from those exports" in caught.value.message
    assert segments.show_segment(ctx, "Lisbon").exports == ["Newsletter"]

    with ctx.db.session() as session:
        repo = ExportRepository(session)
        repo.delete(repo.get_by_name("Newsletter").id)
    segments.delete_segment(ctx, "Lisbon")
    assert segments.list_segments(ctx) == []
    assert [e.action for e in list_events(ctx)][-1] == "segment.deleted"


# ---------------------------------------------------------------- refresh (S4)


def test_refresh_activates_counts_and_keeps_history_with_entered_and_left(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    clock = Clock(FROZEN_NOW)
    service_context.now = clock
    _import(service_context, tmp_path, CUSTOMERS)
    segments.create_segment(service_context, LISBON)

    clock.advance(minutes=1)
    [first] = segments.refresh_segments(service_context, ["Lisbon"])
    assert first.ok
    assert first.status is SegmentStatus.ACTIVE
    assert (first.member_count, first.entered, first.left) == (3, 3, 0)
    record = segments.show_segment(service_context, "Lisbon").segment
    assert record.status is SegmentStatus.ACTIVE
    assert record.member_count == 3 == segment_members.count_segment(service_context, "Lisbon")
    assert record.last_refreshed_at == clock()

    _import(service_context, tmp_path, CUSTOMERS_LATER, replace=True)
    clock.advance(days=1)
    [second] = segments.refresh_segments(service_context, ["Lisbon"])
    assert (second.member_count, second.entered, second.left) == (4, 2, 1)

    details = segments.show_segment(service_context, "Lisbon")
    assert [(h.member_count, h.entered, h.left) for h in details.history] == [
        (4, 2, 1),
        (3, 3, 0),
    ]
    assert details.last_refresh is not None
    assert details.last_refresh.entered == 2
    assert details.segment.last_refreshed_at == clock()
    with service_context.db.session() as session:
        snapshot = SegmentRepository(session).get_snapshot(details.segment.id)
    assert snapshot is not None
    assert snapshot.profile_ids == ["1", "2", "5", "6"]


def test_a_failing_segment_is_marked_failed_and_the_others_still_refresh(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    segments.create_segment(ctx, LISBON)
    segments.create_segment(ctx, GOLD)
    segments.refresh_segments(ctx, all_segments=True)
    _import(ctx, tmp_path, CUSTOMERS_WITHOUT_CITY, replace=True)

    seen: list[tuple[str, int, int]] = []
    outcomes = segments.refresh_segments(
        ctx, ["Lisbon", "Gold"], progress=lambda *args: seen.append(args)
    )
    assert seen == [("Lisbon", 0, 2), ("Gold", 1, 2), ("", 2, 2)]
    lisbon, gold = outcomes
    assert not lisbon.ok
    assert lisbon.status is SegmentStatus.FAILED
    assert lisbon.error == "rules[0].conditions.all[0]: unknown attribute 'City'"
    assert lisbon.member_count == 3  # the last good count stays
    assert gold.ok
    assert (gold.member_count, gold.entered, gold.left) == (2, 0, 1)

    details = segments.show_segment(ctx, "Lisbon")
    assert details.segment.status is SegmentStatus.FAILED
    assert details.history[0].status is RefreshStatus.FAILED
    assert details.last_error == lisbon.error
    assert details.last_refresh is not None
    assert details.last_refresh.member_count == 3


def test_every_segment_fails_with_the_reason_when_the_profile_table_is_gone(
    ctx: ServiceContext,
) -> None:
    segments.create_segment(ctx, LISBON)
    segments.create_segment(ctx, GOLD)
    ctx.profiles.drop_table("customers")
    outcomes = segments.refresh_segments(ctx, all_segments=True)
    assert [o.status for o in outcomes] == [SegmentStatus.FAILED, SegmentStatus.FAILED]
    for outcome in outcomes:
        assert outcome.error is not None
        assert "the profile table 'customers' is missing" in outcome.error
    assert {s.status for s in segments.list_segments(ctx)} == {SegmentStatus.FAILED}


def test_refresh_all_includes_drafts_unless_active_only(ctx: ServiceContext) -> None:
    segments.create_segment(ctx, LISBON)
    segments.create_segment(ctx, GOLD)
    assert segments.refresh_segments(ctx, all_segments=True, active_only=True) == []
    assert [o.name for o in segments.refresh_segments(ctx, ["Gold"])] == ["Gold"]
    scheduled = segments.refresh_segments(ctx, all_segments=True, active_only=True)
    assert [o.name for o in scheduled] == ["Gold"]
    assert segments.show_segment(ctx, "Lisbon").segment.status is SegmentStatus.DRAFT
    everything = segments.refresh_segments(ctx, all_segments=True)
    assert [o.name for o in everything] == ["Gold", "Lisbon"]
    with pytest.raises(InputError, match="name one or more segments"):
        segments.refresh_segments(ctx)
    with pytest.raises(NotFound, match="no segment named 'Nope'"):
        segments.refresh_segments(ctx, ["Nope"])


def test_relative_dates_are_evaluated_with_the_context_clock(
    service_context: ServiceContext,
) -> None:
    clock = Clock(datetime(2025, 6, 30, 12, tzinfo=UTC))
    service_context.now = clock
    profiles.load_sample(service_context, profiles=300, seed=7)
    segments.create_segment(
        service_context,
        "name: Recent\nrules:\n  - conditions: {all: [{attribute: SignupDate, op: within_last,"
        " value: {days: 365}}]}\n",
    )
    [now] = segments.refresh_segments(service_context, ["Recent"])
    clock.advance(days=3650)
    [later] = segments.refresh_segments(service_context, ["Recent"])
    assert now.member_count
    assert now.member_count > 0
    assert later.member_count == 0
    assert later.left == now.member_count


# ---------------------------------------------------------------- permissions (R2)


@pytest.mark.parametrize(
    ("use_case", "verb"),
    [
        (lambda c: segments.create_segment(c, GOLD), "create"),
        (lambda c: segments.update_segment(c, "Lisbon", GOLD), "edit"),
        (lambda c: segments.refresh_segments(c, ["Lisbon"]), "refresh"),
        (lambda c: segments.delete_segment(c, "Lisbon"), "delete"),
    ],
)
def test_viewers_cannot_change_or_refresh_segments(
    ctx: ServiceContext, use_case: Callable[[ServiceContext], object], verb: str
) -> None:
    segments.create_segment(ctx, LISBON)
    _viewer(ctx)
    with pytest.raises(PermissionDenied, match=f"viewers can see segments but not {verb} them"):
        use_case(ctx)
    assert [s.name for s in segments.list_segments(ctx)] == ["Lisbon"]
    assert segments.show_segment(ctx, "Lisbon").segment.status is SegmentStatus.DRAFT
    assert segment_members.count_segment(ctx, "Lisbon") == 3  # viewing is allowed


def test_contributors_manage_segments(ctx: ServiceContext) -> None:
    ctx.actor = Actor(user_id=3, email="c@example.com", role=Role.CONTRIBUTOR)
    record = segments.create_segment(ctx, LISBON)
    assert record.created_by == "c@example.com"
    assert segments.refresh_segments(ctx, ["Lisbon"])[0].ok
    segments.delete_segment(ctx, "Lisbon")
