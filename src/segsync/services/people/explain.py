"""Explain a person (docs/explain.md): from one email, the profiles that carry it and how it was
cleaned, what each export makes of them, each segment they are in or the first condition that
kept them out, the lists the sync state has them on, and every run that touched them.

Anyone who may view runs may ask (:attr:`Action.VIEW`). A person forgotten with ``segsync
forget`` is answered with their erasure status only: nothing else about them is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from difflib import get_close_matches
from typing import Any

from segsync.domain.catalog import Catalog
from segsync.domain.emails import email_digest, normalise_email
from segsync.domain.permissions import Action, require
from segsync.domain.segment_definition import parse_definition
from segsync.errors import InputError, NotFound
from segsync.segments.explain import Verdict, explain_profiles
from segsync.services.context import ServiceContext
from segsync.services.people.report import (
    ABSENT,
    DUPLICATE,
    INVALID,
    KNOWN,
    OUTSIDE,
    PENDING,
    SENT,
    ErasureLine,
    ExportState,
    ExportStatus,
    ListState,
    PersonReport,
    ProfileExplained,
    RunTouch,
    SegmentCheck,
)
from segsync.services.profiles.tables import catalog
from segsync.services.runs.changes import flat_values, from_to
from segsync.storage.repositories.erasures import SUPPRESSED
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.people import PersonReject, PersonRepository
from segsync.storage.repositories.run_changes import ChangeRecord, RunChangeRepository
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository

MAX_QUERY = 320
PROFILES_SHOWN = 50
"""At most this many profiles carrying one email are explained."""


def _query(email: str) -> tuple[str, str | None, str | None]:
    """The text to look for (trimmed, lower-cased), the cleaned email and why it is not one."""
    text = (email or "").strip()
    if not text:
        raise InputError("email: give the email address to explain")
    if len(text) > MAX_QUERY or "\x00" in text:
        raise InputError(f"email: at most {MAX_QUERY} characters, without NUL bytes")
    cleaned, problem = normalise_email(text)
    return text.lower(), cleaned, problem


def explain_person(ctx: ServiceContext, email: str, *, export: str | None = None) -> PersonReport:
    """Everything segsync can say about ``email`` (see the module docstring); ``export`` limits
    it to one export (``NotFound`` if there is none)."""
    require(ctx.actor, Action.VIEW)
    key, cleaned, problem = _query(email)
    with ctx.db.session() as session:
        people = PersonRepository(session)
        erasures = people.erasures(key, email_digest(key))
        lines = [
            ErasureLine(e.connection_name, e.status, e.requested_at, e.done_at) for e in erasures
        ]
        forgotten = any(e.status == SUPPRESSED for e in erasures)
        report = PersonReport(email.strip(), cleaned, problem, export, forgotten, lines)
        if forgotten:
            return report
        exports_repo = ExportRepository(session)
        if export is not None:
            chosen = [_export_named(exports_repo, export)]
        else:
            chosen = exports_repo.list()
        segments = SegmentRepository(session).list()
        contacts = {c.export_id: c for c in people.contacts(key)}
        memberships = people.memberships(key)
        titles = people.list_titles([record.id for record in chosen])
    wanted = {sid for record in chosen for sid in record.segment_ids}
    if export is not None:
        segments = [s for s in segments if s.id in wanted]
    profiles, note = _profiles(ctx, key, chosen, segments)
    with ctx.db.session() as session:
        rejects = PersonRepository(session).rejects(key, [p.profile_id for p in profiles])
        changes = RunChangeRepository(session).for_email(key)
    states = _export_states(chosen, contacts, memberships, titles, profiles, export is not None)
    runs = _touches(chosen, titles, changes, rejects, named=export is not None)
    return replace(
        report,
        profiles=profiles,
        profiles_note=note,
        exports=states,
        runs=runs,
    )


def _export_named(repo: ExportRepository, name: str) -> ExportRecord:
    record = repo.find_by_name(name)
    if record is None:
        close = get_close_matches(name, repo.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise NotFound(f"export: no export named {name!r}{hint}")
    return record


def _email_attributes(chosen: Sequence[ExportRecord], cat: Catalog) -> list[str]:
    """The attributes holding emails: the chosen exports' email mappings, or (no export) the
    profile table's columns whose name says email."""
    columns = list(cat.profile.columns)
    named = [str(r.mapping.get("email")) for r in chosen if r.mapping.get("email") in columns]
    if named:
        return list(dict.fromkeys(named))
    return [c for c in columns if "email" in c.lower() or "e_mail" in c.lower()]


def _profiles(
    ctx: ServiceContext,
    key: str,
    chosen: Sequence[ExportRecord],
    segments: Sequence[SegmentRecord],
) -> tuple[list[ProfileExplained], str | None]:
    try:
        cat = catalog(ctx)
    except InputError as err:
        return [], err.message
    engine = ctx.profiles
    profile = engine.table(cat.profile_table)
    found: dict[str, tuple[Any, str, str]] = {}  # profile id → (native id, attribute, raw)
    for attribute in _email_attributes(chosen, cat):
        text = profile[attribute].cast("string")
        rows = (
            profile.filter(text.strip().lower() == key)
            .select(profile[cat.profile_key].name("_key"), text.name("_raw"))
            .order_by("_key")
            .limit(PROFILES_SHOWN)
            .to_pyarrow()
            .to_pylist()
        )
        for row in rows:
            found.setdefault(str(row["_key"]), (row["_key"], attribute, str(row["_raw"])))
    if not found:
        return [], None
    ids = [native for native, _, _ in found.values()]
    verdicts = _verdicts(ctx, cat, segments, ids)
    result = []
    for pid, (_, attribute, raw) in sorted(found.items(), key=lambda item: item[1][0]):
        cleaned, problem = normalise_email(raw)
        checks = []
        for segment in segments:
            verdict, error = verdicts[segment.id]
            one = None if error else verdict.get(pid)
            checks.append(
                SegmentCheck(
                    segment.id,
                    segment.name,
                    bool(one and one.member),
                    None if one is None else one.failed,
                    error,
                )
            )
        result.append(ProfileExplained(pid, attribute, raw, cleaned, problem, [], checks))
    return _with_export_status(result, found, chosen), None


def _verdicts(
    ctx: ServiceContext, cat: Catalog, segments: Sequence[SegmentRecord], ids: list[Any]
) -> dict[int, tuple[dict[str, Verdict], str | None]]:
    now = ctx.now()
    result: dict[int, tuple[dict[str, Verdict], str | None]] = {}
    for segment in segments:
        try:
            defn = parse_definition(segment.definition, "json")
            result[segment.id] = (explain_profiles(defn, cat, ctx.profiles.table, now, ids), None)
        except InputError as err:
            result[segment.id] = ({}, err.message)
    return result


def _with_export_status(
    profiles: list[ProfileExplained],
    found: dict[str, tuple[Any, str, str]],
    chosen: Sequence[ExportRecord],
) -> list[ProfileExplained]:
    """What each export makes of each profile, as the run's clean stage decides it: among the
    profiles in the export's segments with a valid email, the lowest profile id is sent."""
    for record in chosen:
        inside = [
            p
            for p in profiles
            if any(c.member and c.segment_id in record.segment_ids for c in p.segments)
        ]
        valid = [p for p in inside if p.cleaned is not None]
        winner = min(valid, key=lambda p: found[p.profile_id][0]) if valid else None
        for p in profiles:
            if p not in inside:
                status = ExportStatus(record.name, OUTSIDE, "in none of the export's segments")
            elif p.cleaned is None:
                status = ExportStatus(record.name, INVALID, f"set aside: {p.problem}")
            elif p is winner:
                status = ExportStatus(record.name, SENT, "its values are the contact's")
            else:
                assert winner is not None
                status = ExportStatus(
                    record.name,
                    DUPLICATE,
                    f"merged: profile {winner.profile_id} has the same email and its values "
                    "are sent; this profile's segments count for the contact too",
                )
            p.exports.append(status)
    return profiles


def _export_states(
    chosen: Sequence[ExportRecord],
    contacts: dict[int, Any],
    memberships: Sequence[Any],
    titles: dict[int, dict[int, str]],
    profiles: Sequence[ProfileExplained],
    named: bool,
) -> list[ExportState]:
    """The person in each export's sync state; exports that neither hold them nor have one of
    their profiles in a segment are left out (unless the export was ``named``)."""
    result = []
    for record in chosen:
        held = {m.segment_id: m.pending for m in memberships if m.export_id == record.id}
        contact = contacts.get(record.id)
        touched = any(
            s.status != OUTSIDE for p in profiles for s in p.exports if s.export == record.name
        )
        if not named and contact is None and not held and not touched:
            continue
        names = dict(zip(record.segment_ids, record.segment_names, strict=True))
        lines = []
        for segment_id in [*record.segment_ids, *sorted(set(held) - set(record.segment_ids))]:
            state = ABSENT if segment_id not in held else PENDING if held[segment_id] else KNOWN
            lines.append(
                ListState(
                    segment_id,
                    names.get(segment_id, f"segment {segment_id} (no longer exported)"),
                    titles[record.id].get(segment_id),
                    state,
                )
            )
        result.append(
            ExportState(
                record.id,
                record.name,
                record.connection_name,
                ABSENT if contact is None else PENDING if contact.pending else KNOWN,
                None if contact is None else contact.synced_at,
                lines,
            )
        )
    return result


def export_choices(ctx: ServiceContext) -> list[str]:
    """The export names the explain page offers, sorted."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return ExportRepository(session).names()


def _touches(
    chosen: Sequence[ExportRecord],
    titles: dict[int, dict[int, str]],
    changes: Sequence[ChangeRecord],
    rejects: Sequence[PersonReject],
    *,
    named: bool,
) -> list[RunTouch]:
    """The runs that touched the person: the changes they made and the records they set
    aside, newest first (of the named export only, if one was named)."""
    names = {record.id: record.name for record in chosen}
    touches = []
    for change in changes:
        if named and change.export_id not in names:
            continue
        export_name = names.get(change.export_id or 0, f"export {change.export_id} (removed)")
        lists = titles.get(change.export_id or 0, {})
        title = None
        if change.segment_id is not None:
            title = lists.get(change.segment_id, f"segment {change.segment_id}")
        changed = change.changed_fields() if change.action in ("added", "updated") else []
        detail = None
        if change.action == "added" and change.new_contact:
            changed, detail = [], "new contact"
        elif changed and change.previous is not None:
            detail = from_to(flat_values(change.previous), flat_values(change.fields), changed)
        elif change.action == "refused":
            detail = "refused by the destination"
        touches.append(
            RunTouch(
                change.run_id,
                export_name,
                change.at,
                change.action,
                title,
                change.profile_id,
                changed,
                detail,
            )
        )
    for r in rejects:
        if named and r.export_id not in names:
            continue
        touches.append(
            RunTouch(r.run_id, r.export_name, r.at, r.kind, None, r.profile_id, [], r.reason)
        )
    touches.sort(key=lambda t: (t.run_id, t.at), reverse=True)
    return touches
