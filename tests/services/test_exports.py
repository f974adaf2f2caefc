"""Export use cases (E1–E8, C7, R2–R4, P2) on real SQLite and DuckDB files."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from segsync.domain.emails import normalise_email
from segsync.domain.permissions import Role
from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence, Weekday
from segsync.errors import Conflict, InputError, NotFound, PermissionDenied
from segsync.services import connections, exports
from segsync.services.context import ServiceContext
from segsync.services.exports import (
    DataMatching,
    ExportChange,
    ExportEdit,
    ExportSettings,
    MappingLine,
)
from segsync.storage.models.operations import AuditEvent
from segsync.storage.models.runs import Run
from segsync.storage.models.sync import SyncContact, SyncMembership
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from tests.services.export_fixtures import acting_as, add_connection, add_run, with_sample


@pytest.fixture
def ctx(service_context: ServiceContext) -> ServiceContext:
    with_sample(service_context)
    add_connection(service_context, "Main Autopilot", shared=True)
    add_connection(service_context, "Private Autopilot", shared=False)
    return service_context


def _lines(maps: list[str]) -> list[MappingLine]:
    """``FIELD=ATTR`` texts as typed lines (the test's shorthand)."""
    return [MappingLine(*text.split("=", 1)) for text in maps]


def _id(ctx: ServiceContext, name: str) -> int:
    return exports.export_id(ctx, name)


def _cid(ctx: ServiceContext, name: str) -> int:
    return connections.connection_id(ctx, name)


def _create(
    ctx: ServiceContext,
    name: str = "Weekly",
    *,
    connection: str = "Main Autopilot",
    email: str = "Email",
    first_name: str | None = None,
    last_name: str | None = None,
    maps: list[str] | None = None,
    segments: list[str] | None = None,
    removal: str = "mirror",
    list_prefix: str = "",
    schedule: object = None,
) -> ExportRecord:
    settings = ExportSettings(
        name=name,
        connection_id=_cid(ctx, connection),
        matching=DataMatching(email, first_name, last_name, _lines(maps or [])),
        segments=["Gold", "Subscribed"] if segments is None else segments,
        removal=removal,
        list_prefix=list_prefix,
        schedule=schedule,  # type: ignore[arg-type]  # a dict too: the service coerces it
    )
    return exports.create_export(ctx, settings)


def _edit(ctx: ServiceContext, name: str, **changes: object) -> ExportChange:
    """Edit the export ``name``: ``new_name``, ``connection`` (a name) and ``maps`` (texts) are
    the test's shorthands for ``name``, ``connection_id`` and ``lines``."""
    if "new_name" in changes:
        changes["name"] = changes.pop("new_name")
    if "connection" in changes:
        changes["connection_id"] = _cid(ctx, str(changes.pop("connection")))
    if "maps" in changes:
        changes["lines"] = _lines(changes.pop("maps"))  # type: ignore[arg-type]
    return exports.edit_export(ctx, _id(ctx, name), ExportEdit(**changes))  # type: ignore[arg-type]


def _expected_members(ctx: ServiceContext) -> tuple[int, int, int]:
    rows = ctx.profiles.table("customers").to_pyarrow().to_pylist()
    gold = {r["CustomerId"] for r in rows if r["LoyaltyTier"] == "Gold"}
    subscribed = {r["CustomerId"] for r in rows if r["IsSubscribed"]}
    return len(gold), len(subscribed), len(gold | subscribed)


def _expected_emails(ctx: ServiceContext) -> int:
    """The distinct valid emails of the members of Gold or subscribed customers (what a run
    compares with the contract limit), from the profile rows."""
    rows = ctx.profiles.table("customers").to_pyarrow().to_pylist()
    members = [r for r in rows if r["LoyaltyTier"] == "Gold" or r["IsSubscribed"]]
    emails = {normalise_email(r["Email"])[0] for r in members}
    return len(emails - {None})


def _runs(ctx: ServiceContext) -> list[Run]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Run).order_by(Run.id)))


# ---------------------------------------------------------------- create & validation


def test_create_saves_every_setting_and_never_runs(ctx: ServiceContext) -> None:
    record = _create(
        ctx,
        first_name="FirstName",
        last_name="LastName",
        maps=["MailingCity=City", "custom:float:Lifetime Value=LifetimeValue"],
        removal="add-only",
        list_prefix="CDP · ",
        schedule=ExportSchedule(mode=ExportMode.OFF),
    )
    assert record.connection_name == "Main Autopilot"
    assert record.connection_type == "autopilot"
    assert record.segment_names == ["Gold", "Subscribed"]
    assert record.removal_policy == "add_only"
    assert record.list_prefix == "CDP · "
    assert record.schedule["mode"] == "off"
    assert record.mapping["email"] == "Email"
    assert record.mapping["extra"] == [
        ["MailingCity", "City"],
        ["custom:float:Lifetime Value", "LifetimeValue"],
    ]
    assert record.created_by == "local-admin"
    assert _runs(ctx) == []  # E4: saving never starts a run


def test_create_defaults_to_mirror_and_the_system_schedule(ctx: ServiceContext) -> None:
    record = _create(ctx)
    assert record.removal_policy == "mirror"
    assert ExportSchedule.from_dict(record.schedule).mode is ExportMode.WITH_SYSTEM


def test_unknown_email_attribute_suggests_the_close_one(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match=r"email: attribute 'Emial' .*did you mean 'Email'"):
        _create(ctx, email="Emial")


def test_custom_field_of_the_wrong_type_is_refused(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match=r"custom:integer:Tier.*LoyaltyTier.*text"):
        _create(ctx, maps=["custom:integer:Tier=LoyaltyTier"])


def test_unknown_standard_field_is_refused(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match="did you mean Company"):
        _create(ctx, maps=["Compny=City"])


def test_at_least_one_segment_is_required(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match="segments: choose at least one segment"):
        _create(ctx, segments=[])


def test_unknown_segment_is_named(ctx: ServiceContext) -> None:
    with pytest.raises(NotFound, match=r"no segment named 'Golf' \(did you mean 'Gold'\?\)"):
        _create(ctx, segments=["Golf"])


def test_unknown_connection_lists_the_usable_ones(ctx: ServiceContext) -> None:
    with pytest.raises(NotFound, match=r"no connection named 'Nope'; you may use: .*Main"):
        _create(ctx, connection="Nope")
    contributor = acting_as(ctx, Role.CONTRIBUTOR)
    with pytest.raises(NotFound) as caught:
        _create(contributor, connection="Nope")
    assert "Main Autopilot" in caught.value.message
    assert "Private Autopilot" not in caught.value.message


def test_contributor_without_any_usable_connection_is_told_so(
    service_context: ServiceContext,
) -> None:
    with_sample(service_context)
    add_connection(service_context, "Private Autopilot", shared=False)
    contributor = acting_as(service_context, Role.CONTRIBUTOR)
    with pytest.raises(NotFound, match="there is no connection you may use"):
        _create(contributor, connection="Other")


def test_contributors_create_only_on_shared_connections(ctx: ServiceContext) -> None:
    contributor = acting_as(ctx, Role.CONTRIBUTOR, "cora@example.com")
    with pytest.raises(PermissionDenied, match="'Private Autopilot' is not shared"):
        _create(contributor, "Private one", connection="Private Autopilot")
    record = _create(contributor, "Shared one")
    assert record.created_by == "cora@example.com"


def test_viewers_cannot_create(ctx: ServiceContext) -> None:
    with pytest.raises(PermissionDenied, match="viewers can see exports but not create"):
        _create(acting_as(ctx, Role.VIEWER))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"removal": "sometimes"}, "removal policy 'sometimes': use mirror or add-only"),
        ({"list_prefix": "x" * 101}, "list prefix: 101 characters, at most 100"),
        ({"maps": ["Email=Email"]}, "Email is the email mapping"),
        ({"maps": ["unsubscribed=IsSubscribed"]}, "unsubscribed cannot be mapped"),
        ({"schedule": {"mode": "own", "recurrence": "weekly"}}, "weekdays"),
    ],
)
def test_bad_settings_name_the_field(
    ctx: ServiceContext, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        _create(ctx, **kwargs)
    with ctx.db.session() as session:
        assert ExportRepository(session).list() == []


def test_names_are_unique_and_not_empty(ctx: ServiceContext) -> None:
    _create(ctx)
    with pytest.raises(Conflict, match="an export named 'Weekly' already exists"):
        _create(ctx)
    with pytest.raises(InputError, match="name: give the export a name"):
        _create(ctx, "   ")


# ---------------------------------------------------------------- list


def test_list_searches_export_and_connection_names_and_types(ctx: ServiceContext) -> None:
    add_connection(ctx, "Mailer", type_="otherdest")
    _create(ctx, "Alpha")
    _create(ctx, "Beta", connection="Private Autopilot")
    alpha = exports.get_export(ctx, _id(ctx, "Alpha"))
    with ctx.db.session() as session:  # a type segsync does not know: no service takes it
        ExportRepository(session).create(
            name="Gamma",
            connection_id=_cid(ctx, "Mailer"),
            mapping=alpha.mapping,
            removal_policy="mirror",
            list_prefix="",
            schedule=alpha.schedule,
            segment_ids=alpha.segment_ids,
            created_by="local-admin",
            now=ctx.now(),
        )
    assert [row.name for row in exports.list_exports(ctx, search="alp")] == ["Alpha"]
    assert [row.name for row in exports.list_exports(ctx, search="private")] == ["Beta"]
    assert [row.name for row in exports.list_exports(ctx, search="OTHERDEST")] == ["Gamma"]
    assert [row.name for row in exports.list_exports(ctx, search="autopilot")] == [
        "Alpha",
        "Beta",
    ]


def test_list_rows_show_status_refreshed_and_sort(ctx: ServiceContext) -> None:
    a = _create(ctx, "Alpha", connection="Private Autopilot")
    b = _create(ctx, "Beta")
    _create(ctx, "Gamma")
    old, new = ctx.now() - timedelta(days=2), ctx.now() - timedelta(hours=1)
    add_run(ctx, a.id, "successful", ended_at=new)
    add_run(ctx, b.id, "successful", ended_at=old)
    add_run(ctx, b.id, "failure", ended_at=new, minutes_ago=30)
    add_run(ctx, b.id, "successful", ended_at=ctx.now(), dry_run=True, minutes_ago=10)

    rows = {row.name: row for row in exports.list_exports(ctx)}
    assert rows["Alpha"].status == "successful"
    assert rows["Alpha"].refreshed_at == new
    # The latest real run failed; "Refreshed" is the latest success; dry runs do not count.
    assert rows["Beta"].status == "failure"
    assert rows["Beta"].refreshed_at == old
    assert rows["Gamma"].status is None
    assert rows["Gamma"].refreshed_at is None
    assert rows["Beta"].segments == ["Gold", "Subscribed"]
    assert rows["Beta"].schedule == "With every system refresh"

    def names(**kwargs: object) -> list[str]:
        return [row.name for row in exports.list_exports(ctx, **kwargs)]  # type: ignore[arg-type]

    assert names(sort="name", descending=True) == ["Gamma", "Beta", "Alpha"]
    assert names(sort="refreshed") == ["Beta", "Alpha", "Gamma"]
    assert names(sort="refreshed", descending=True) == ["Alpha", "Beta", "Gamma"]
    assert names(sort="status") == ["Beta", "Alpha", "Gamma"]
    assert names(sort="connection") == ["Beta", "Gamma", "Alpha"]
    with pytest.raises(InputError, match="sort: 'size' is not one of"):
        names(sort="size")


def test_your_permissions_per_role(ctx: ServiceContext) -> None:
    _create(ctx, "On shared")
    _create(ctx, "On private", connection="Private Autopilot")
    _create(ctx, "Detached")
    exports.detach_export(ctx, _id(ctx, "Detached"))

    def labels(role: Role) -> dict[str, str]:
        rows = exports.list_exports(acting_as(ctx, role))
        return {row.name: row.your_permissions for row in rows}

    assert labels(Role.ADMINISTRATOR) == {
        "Detached": "edit",
        "On private": "edit",
        "On shared": "edit",
    }
    assert labels(Role.CONTRIBUTOR) == {
        "Detached": "view",
        "On private": "view",
        "On shared": "edit",
    }
    assert labels(Role.VIEWER) == {"Detached": "view", "On private": "view", "On shared": "view"}
    assert {row.name: row.connection for row in exports.list_exports(ctx)}["Detached"] == (
        "No connection"
    )


# ---------------------------------------------------------------- show


def test_show_counts_members_per_segment_and_the_distinct_total(ctx: ServiceContext) -> None:
    _create(ctx, list_prefix="CDP: ")
    gold, subscribed, total = _expected_members(ctx)
    assert 0 < gold < total
    assert 0 < subscribed < total < gold + subscribed
    details = exports.show_export(ctx, _id(ctx, "Weekly"))
    assert [(s.name, s.members) for s in details.segments] == [
        ("Gold", gold),
        ("Subscribed", subscribed),
    ]
    assert details.distinct_total == total
    assert [s.list_title for s in details.segments] == ["CDP: Gold", "CDP: Subscribed"]
    assert [s.list_id for s in details.segments] == [None, None]
    assert details.contract_limit == 100_000
    assert details.warnings == []
    assert [(m.field, m.attribute) for m in details.mapping] == [("Email", "Email")]


def test_show_lists_the_lists_made_by_runs(ctx: ServiceContext) -> None:
    record = _create(ctx)
    with ctx.db.session() as session:
        ExportRepository(session).save_list(record.id, record.segment_ids[0], "list_123", "Gold")
    details = exports.show_export(ctx, _id(ctx, "Weekly"))
    assert (details.segments[0].list_id, details.segments[0].list_title) == ("list_123", "Gold")
    assert details.segments[1].list_id is None


def test_show_warns_when_the_selection_exceeds_the_contract_limit(
    ctx: ServiceContext,
) -> None:
    add_connection(ctx, "Small", contract_limit=50, shared=True)
    _create(ctx, connection="Small")
    emails = _expected_emails(ctx)
    details = exports.show_export(ctx, _id(ctx, "Weekly"))
    assert len(details.warnings) == 1
    assert f"{emails:,} distinct valid emails" in details.warnings[0]
    assert "contract limit of 50 of connection 'Small'" in details.warnings[0]
    # Contributors get the warning without the connection's settings (R5).
    as_contributor = exports.show_export(acting_as(ctx, Role.CONTRIBUTOR), _id(ctx, "Weekly"))
    assert as_contributor.contract_limit is None
    assert "more than the contract limit of connection 'Small'" in as_contributor.warnings[0]


def test_the_limit_warning_counts_emails_as_a_run_does_not_profiles(ctx: ServiceContext) -> None:
    _, _, profiles = _expected_members(ctx)
    emails = _expected_emails(ctx)
    assert emails < profiles, "the sample must hold profiles without a valid email"
    add_connection(ctx, "Fits", contract_limit=emails, shared=True)
    _create(ctx, connection="Fits")

    details = exports.show_export(ctx, _id(ctx, "Weekly"))

    assert details.distinct_total == profiles  # more profiles than the limit ...
    assert details.warnings == []  # ... but their emails fit: a run would not be skipped


def test_show_warns_when_the_email_attribute_mostly_holds_no_email(ctx: ServiceContext) -> None:
    add_connection(ctx, "Main", shared=True)
    record = _create(ctx, connection="Main", email="City")

    (warning,) = exports.show_export(ctx, record.id).warnings

    assert "have no valid email in attribute 'City'" in warning
    assert "--email ATTR" in warning
    good = _create(ctx, name="Good", connection="Main")
    assert exports.show_export(ctx, good.id).warnings == []


def test_show_without_profile_data_still_shows_the_export(
    service_context: ServiceContext,
) -> None:
    with_sample(service_context)
    add_connection(service_context, "Main Autopilot")
    _create(service_context)
    service_context.profiles.backend.raw_sql("DROP TABLE customers")
    details = exports.show_export(service_context, _id(service_context, "Weekly"))
    assert details.distinct_total is None
    assert "member counts unavailable" in details.warnings[0]


# ---------------------------------------------------------------- edit & duplicate


def test_edit_changes_only_what_is_given(ctx: ServiceContext) -> None:
    _create(ctx, first_name="FirstName", maps=["MailingCity=City"])
    change = _edit(ctx, "Weekly", new_name="Daily", segments=["Subscribed"], removal="add-only")
    record = change.export
    assert record.name == "Daily"
    assert record.segment_names == ["Subscribed"]
    assert record.removal_policy == "add_only"
    assert record.mapping["first_name"] == "FirstName"
    assert record.mapping["extra"] == [["MailingCity", "City"]]
    cleared = _edit(ctx, "Daily", first_name="", maps=[]).export
    assert cleared.mapping["first_name"] is None
    assert cleared.mapping["extra"] == []
    with pytest.raises(InputError, match=r"custom:boolean:Vip.*LifetimeValue"):
        _edit(ctx, "Daily", maps=["custom:boolean:Vip=LifetimeValue"])
    with pytest.raises(InputError, match="nothing to change"):
        _edit(ctx, "Daily")
    assert _runs(ctx) == []


def test_edit_schedule_needs_schedule_permission(ctx: ServiceContext) -> None:
    _create(ctx)
    weekly = exports.schedule_from_options("weekly", days="mon,thu", at="06:30", tz="Europe/Lisbon")
    with pytest.raises(PermissionDenied, match="viewers can see exports but not schedule"):
        _edit(acting_as(ctx, Role.VIEWER), "Weekly", schedule=weekly)
    record = _edit(acting_as(ctx, Role.CONTRIBUTOR), "Weekly", schedule=weekly)
    assert ExportSchedule.from_dict(record.export.schedule) == weekly


def test_contributors_manage_any_export_on_shared_connections_only(ctx: ServiceContext) -> None:
    _create(ctx, "Shared")
    _create(ctx, "Private", connection="Private Autopilot")
    contributor = acting_as(ctx, Role.CONTRIBUTOR)
    assert _edit(contributor, "Shared", removal="add-only").export
    with pytest.raises(PermissionDenied, match="'Private Autopilot', which is not shared"):
        _edit(contributor, "Private", removal="add-only")
    with pytest.raises(PermissionDenied, match="is not shared"):
        _edit(contributor, "Shared", connection="Private Autopilot")
    with pytest.raises(PermissionDenied):
        exports.remove_export(contributor, _id(ctx, "Private"))
    with pytest.raises(PermissionDenied, match="viewers"):
        exports.remove_export(acting_as(ctx, Role.VIEWER), _id(ctx, "Shared"))


def _add_sync_state(ctx: ServiceContext, export_id: int, segment_id: int) -> None:
    with ctx.db.session() as session:
        session.add(
            SyncContact(
                export_id=export_id, email="a@example.com", payload_hash="h", synced_at=ctx.now()
            )
        )
        session.add(
            SyncMembership(export_id=export_id, segment_id=segment_id, email="a@example.com")
        )
        ExportRepository(session).save_list(export_id, segment_id, "list_1", "Gold", now=ctx.now())


def _sync_rows(ctx: ServiceContext, export_id: int) -> tuple[int, int, int]:
    with ctx.db.session() as session:
        contacts = session.scalar(select(func.count()).where(SyncContact.export_id == export_id))
        memberships = session.scalar(
            select(func.count()).where(SyncMembership.export_id == export_id)
        )
        lists = len(ExportRepository(session).lists(export_id))
    return int(contacts or 0), int(memberships or 0), lists


def test_moving_to_another_connection_resets_the_sync_state(ctx: ServiceContext) -> None:
    record = _create(ctx)
    main_id = record.connection_id
    _add_sync_state(ctx, record.id, record.segment_ids[0])
    add_run(ctx, record.id, "successful", connection_id=main_id, ended_at=ctx.now())
    queued = add_run(ctx, record.id, "queued", connection_id=main_id)
    with pytest.raises(Conflict, match=f"run queued \\(run {queued}\\)"):
        _edit(ctx, "Weekly", connection="Private Autopilot")
    with ctx.db.session() as session:
        session.execute(Run.__table__.delete().where(Run.id == queued))
    # Editing other settings keeps the state.
    assert not _edit(ctx, "Weekly", segments=["Gold"]).sync_state_reset
    assert _sync_rows(ctx, record.id) == (1, 1, 1)
    change = _edit(ctx, "Weekly", connection="Private Autopilot")
    assert change.sync_state_reset
    assert change.export.connection_name == "Private Autopilot"
    assert _sync_rows(ctx, record.id) == (0, 0, 0)


def test_duplicate_copies_settings_but_not_sync_state_or_runs(ctx: ServiceContext) -> None:
    source = _create(ctx, maps=["MailingCity=City"], list_prefix="P ")
    _add_sync_state(ctx, source.id, source.segment_ids[0])
    add_run(ctx, source.id, "successful", ended_at=ctx.now())
    copy = exports.duplicate_export(ctx, source.id, "Weekly copy")
    assert copy.id != source.id
    for field in ("connection_id", "mapping", "removal_policy", "list_prefix", "schedule"):
        assert getattr(copy, field) == getattr(source, field)
    assert copy.segment_ids == source.segment_ids
    assert _sync_rows(ctx, copy.id) == (0, 0, 0)
    row = {r.name: r for r in exports.list_exports(ctx)}["Weekly copy"]
    assert row.status is None
    moved = exports.duplicate_export(
        ctx, source.id, "Private copy", connection_id=_cid(ctx, "Private Autopilot")
    )
    assert moved.connection_name == "Private Autopilot"
    with pytest.raises(Conflict):
        exports.duplicate_export(ctx, source.id, "Private copy")
    with pytest.raises(PermissionDenied, match="is not shared"):
        exports.duplicate_export(acting_as(ctx, Role.CONTRIBUTOR), moved.id, "Mine")


# ---------------------------------------------------------------- detach, attach, remove


def test_detach_keeps_settings_and_cancels_queued_runs(ctx: ServiceContext) -> None:
    record = _create(ctx)
    queued = add_run(ctx, record.id, "queued", connection_id=record.connection_id)
    change = exports.detach_export(ctx, _id(ctx, "Weekly"))
    assert change.export.connection_id is None
    assert change.canceled_runs == [queued]
    assert change.export.mapping == record.mapping
    assert change.export.segment_ids == record.segment_ids
    details = exports.show_export(ctx, _id(ctx, "Weekly"))
    assert details.connection == "No connection"
    assert any("has no connection and never runs" in w for w in details.warnings)
    assert [r.status for r in _runs(ctx)] == ["canceled"]
    # A detached export is the administrators' (permissions.py).
    with pytest.raises(PermissionDenied, match="only administrators"):
        exports.attach_export(
            acting_as(ctx, Role.CONTRIBUTOR), _id(ctx, "Weekly"), _cid(ctx, "Main Autopilot")
        )


def test_a_detached_exports_data_matching_waits_for_a_connection(ctx: ServiceContext) -> None:
    record = _create(ctx, first_name="FirstName")
    exports.detach_export(ctx, record.id)
    with pytest.raises(InputError, match="has no connection, and what can be mapped depends"):
        _edit(ctx, "Weekly", maps=["MailingCity=City"])
    assert _edit(ctx, "Weekly", removal="add-only").export.mapping == record.mapping
    lines = exports.show_export(ctx, record.id).mapping
    assert [(m.field, m.attribute) for m in lines] == [
        ("email", "Email"),
        ("first name", "FirstName"),
    ]


def test_reattaching_the_same_connection_keeps_the_sync_state(ctx: ServiceContext) -> None:
    record = _create(ctx)
    _add_sync_state(ctx, record.id, record.segment_ids[0])
    add_run(ctx, record.id, "successful", connection_id=record.connection_id, ended_at=ctx.now())
    exports.detach_export(ctx, _id(ctx, "Weekly"))
    assert _sync_rows(ctx, record.id) == (1, 1, 1)
    back = exports.attach_export(ctx, _id(ctx, "Weekly"), _cid(ctx, "Main Autopilot"))
    assert not back.sync_state_reset
    assert back.export.connection_name == "Main Autopilot"
    assert _sync_rows(ctx, record.id) == (1, 1, 1)
    exports.detach_export(ctx, _id(ctx, "Weekly"))
    other = exports.attach_export(ctx, _id(ctx, "Weekly"), _cid(ctx, "Private Autopilot"))
    assert other.sync_state_reset
    assert _sync_rows(ctx, record.id) == (0, 0, 0)


def test_remove_cancels_queued_runs_and_stops_running_ones(ctx: ServiceContext) -> None:
    record = _create(ctx)
    _add_sync_state(ctx, record.id, record.segment_ids[0])
    done = add_run(ctx, record.id, "successful", ended_at=ctx.now(), minutes_ago=90)
    running = add_run(ctx, record.id, "processing", minutes_ago=5)
    queued = add_run(ctx, record.id, "queued", minutes_ago=1)
    change = exports.remove_export(ctx, _id(ctx, "Weekly"))
    assert change.canceled_runs == [queued]
    assert change.stop_requested == [running]
    runs = {run.id: run for run in _runs(ctx)}
    assert runs[queued].status == "canceled"
    assert runs[queued].ended_at == ctx.now()
    assert runs[queued].message == "canceled: the export was removed"
    assert runs[running].status == "processing"
    assert runs[running].cancel_requested
    assert runs[done].status == "successful"
    assert not runs[done].cancel_requested
    assert all(run.export_id is None for run in runs.values())  # history stays
    assert _sync_rows(ctx, record.id) == (0, 0, 0)
    with pytest.raises(NotFound, match="no export named 'Weekly'"):
        _id(ctx, "Weekly")
    with pytest.raises(NotFound, match=f"no export with id {record.id}"):
        exports.show_export(ctx, record.id)


def test_changes_are_audited(ctx: ServiceContext) -> None:
    _create(ctx)
    _edit(ctx, "Weekly", removal="add-only")
    exports.remove_export(ctx, _id(ctx, "Weekly"))
    with ctx.db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.action, e.target, e.actor) for e in events] == [
        ("export.created", "Weekly", "local-admin"),
        ("export.edited", "Weekly", "local-admin"),
        ("export.removed", "Weekly", "local-admin"),
    ]
    assert json.loads(events[0].details)["segments"] == ["Gold", "Subscribed"]


def test_exports_using_a_segment_or_a_connection_are_named(ctx: ServiceContext) -> None:
    a = _create(ctx, "A", segments=["Gold"])
    _create(ctx, "B", segments=["Subscribed", "Gold"], connection="Private Autopilot")
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        assert repo.using_segment(a.segment_ids[0]) == ["A", "B"]
        assert repo.using_connection(a.connection_id or 0) == ["A"]
        assert repo.get_by_name("B").segment_names == ["Subscribed", "Gold"]


# ---------------------------------------------------------------- schedule options


def test_schedule_options() -> None:
    assert exports.schedule_from_options(None) is None
    daily = exports.schedule_from_options("daily", at="06:00", tz="Europe/Lisbon")
    assert daily is not None
    assert daily.recurrence is Recurrence.DAILY
    assert daily.tz == "Europe/Lisbon"
    weekly = exports.schedule_from_options("weekly", days="mon,thu", at="7:15")
    assert weekly is not None
    assert weekly.weekdays == {Weekday.MON, Weekday.THU}
    every = exports.schedule_from_options("every", hours=6)
    assert every is not None
    assert every.every_hours == 6
    assert every.mode is ExportMode.OWN
    off = exports.schedule_from_options("off", current=weekly)
    assert off is not None
    assert off.mode is ExportMode.OFF
    assert off.weekdays == weekly.weekdays
    assert exports.schedule_from_options("with_system") == ExportSchedule()
    for kind, kwargs, message in [
        ("hourly", {}, "not one of"),
        ("daily", {}, "needs --at"),
        ("weekly", {"at": "06:00"}, "needs --days"),
        ("every", {}, "needs --hours"),
        ("off", {"at": "06:00"}, "do not apply"),
        ("daily", {"at": "06:00", "days": "mon"}, "--days applies only"),
        ("daily", {"at": "06:00", "tz": "Mars/Base"}, "tz"),
        (None, {"at": "06:00"}, "need --schedule"),
    ]:
        with pytest.raises(InputError, match=message):
            exports.schedule_from_options(kind, **kwargs)  # type: ignore[arg-type]
