"""A run's change log as people read it (the run page of docs/web.md, ``runs changes`` of
docs/cli.md): the results per list (added, updated, removed, rejected), the changes one page at a
time (filtered by action and list) and all of them as CSV — who, on which list, with which
profile id, and for an update which fields changed from what to what.

The rows are the change record the run engine writes (docs/exports.md "The change record"),
kept for the last ``SEGSYNC_CHANGE_LOG_RUNS`` runs of each export. Anyone may view them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segsync.domain.permissions import Action, require
from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.services.runs.csv_files import write_csv
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.run_changes import ACTIONS, ChangeRecord, RunChangeRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

CHANGES_PAGE = 50
CHANGE_ACTIONS: tuple[str, ...] = ACTIONS
"""What a change may be: added, updated, removed, refused."""
CHANGE_COLUMNS = (
    "at",
    "action",
    "list",
    "email",
    "profile_id",
    "new_contact",
    "changed_fields",
    "values",
    "previous_values",
)
NO_LIST = "(contact updated, no new list)"


@dataclass(frozen=True)
class ListResult:
    """What a run did on one list (``segment_id`` None: contacts updated without a new list).
    ``updated`` counts contacts whose values changed: updates without a new list, and additions
    to the list of a contact segsync had sent before with other values."""

    segment_id: int | None
    title: str
    added: int
    updated: int
    removed: int
    rejected: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "list": self.title,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class ChangeView:
    """One change with its list's title and the fields it changed."""

    record: ChangeRecord
    title: str | None
    changed: list[str]

    @property
    def summary(self) -> str:
        """The change in words: what fields went from what to what, or "new contact"."""
        r = self.record
        if r.action == "added" and r.new_contact:
            return "new contact"
        if r.previous is None:
            return ""
        return from_to(flat_values(r.previous), flat_values(r.fields), self.changed)

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r.id,
            "at": r.at.isoformat(),
            "action": r.action,
            "segment_id": r.segment_id,
            "list": self.title,
            "email": r.email,
            "profile_id": r.profile_id,
            "new_contact": r.new_contact,
            "changed_fields": self.changed,
            "values": _picked(r.fields, self.changed),
            "previous_values": _picked(r.previous, self.changed),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class ChangePage:
    """A page of changes and the id to ask for the next (``None``: this was the last)."""

    run_id: int
    items: list[ChangeView]
    next_after: int | None
    kept: bool
    """False when the run changed something but its change record is gone (pruned, or a run
    from before segsync kept one)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kept": self.kept,
            "next_after": self.next_after,
            "items": [item.to_dict() for item in self.items],
        }


def flat_values(payload: dict[str, Any] | None) -> dict[str, Any]:
    """A payload's values by field name, ``custom.`` prefixed for custom fields."""
    if not payload:
        return {}
    flat = dict(payload.get("fields") or {})
    flat.update({f"custom.{k}": v for k, v in (payload.get("custom") or {}).items()})
    return flat


def from_to(before: dict[str, Any], after: dict[str, Any], names: Iterable[str]) -> str:
    """``FirstName: "Ann" → "Anna"`` for each of ``names`` (flat values, as
    :func:`flat_values` gives them)."""
    return "; ".join(
        f"{name}: {json.dumps(before.get(name), default=str, ensure_ascii=False)} → "
        f"{json.dumps(after.get(name), default=str, ensure_ascii=False)}"
        for name in names
    )


def _picked(payload: dict[str, Any] | None, names: Iterable[str]) -> dict[str, Any] | None:
    """The values of ``names`` in a payload (``custom.`` prefixed for custom fields)."""
    if payload is None:
        return None
    flat = flat_values(payload)
    return {name: flat.get(name) for name in names}


def list_titles(ctx: ServiceContext, run: RunRecord) -> dict[int, str]:
    """segment id → the title of its list: as the run's plan named it, else the export's."""
    titles: dict[int, str] = {}
    if run.export_id is not None:
        with ctx.db.session() as session:
            lists = ExportRepository(session).lists(run.export_id)
        titles.update({segment_id: title for segment_id, (_, title) in lists.items()})
    for item in (run.plan or {}).get("lists") or []:
        if isinstance(item, dict) and isinstance(item.get("segment_id"), int):
            titles[item["segment_id"]] = str(item.get("title") or item.get("segment"))
    return titles


def _title(titles: dict[int, str], segment_id: int | None) -> str:
    if segment_id is None:
        return NO_LIST
    return titles.get(segment_id, f"segment {segment_id}")


def list_results(ctx: ServiceContext, run: RunRecord) -> list[ListResult] | None:
    """The run's results per list, from its change record (``None`` when none is kept). Lists
    in the plan's order, then the contact-only updates."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        changes = RunChangeRepository(session)
        counts = changes.per_list(run.id)
        updated_on_add = changes.updated_on_add(run.id) if counts else {}
    if not counts:
        return None
    titles = list_titles(ctx, run)
    order = [*titles, *sorted(k for k in counts if k is not None and k not in titles)]
    rows = []
    for segment_id in [*order, None]:
        c = counts.get(segment_id)
        if c is None:
            continue
        rows.append(
            ListResult(
                segment_id,
                _title(titles, segment_id),
                c["added"],
                c["updated"] + updated_on_add.get(segment_id, 0),
                c["removed"],
                c["refused"],
            )
        )
    return rows


def _check_filters(action: str | None) -> None:
    if action is not None and action not in ACTIONS:
        raise InputError(f"action: must be one of {', '.join(ACTIONS)}, got {action!r}")


def change_page(
    ctx: ServiceContext,
    run_id: int,
    *,
    action: str | None = None,
    segment_id: int | None = None,
    after: int = 0,
    size: int = CHANGES_PAGE,
) -> ChangePage:
    """The run's changes after id ``after`` (keyset paging), at most ``size`` (1–1000), of one
    ``action`` and one list (``segment_id``) if given. ``NotFound`` for an unknown run."""
    require(ctx.actor, Action.VIEW)
    _check_filters(action)
    size = max(1, min(size, 1000))
    with ctx.db.session() as session:
        run = RunRepository(session).get(run_id)
        changes = RunChangeRepository(session)
        rows = changes.for_run(
            run_id, action=action, segment_id=segment_id, after_id=max(0, after), limit=size + 1
        )
        kept = bool(rows) or changes.has_run(run_id) or not _changed_anything(run)
    titles = list_titles(ctx, run) if rows else {}
    items = [_view(record, titles) for record in rows[:size]]
    next_after = items[-1].record.id if len(rows) > size else None
    return ChangePage(run_id, items, next_after, kept)


def _changed_anything(run: RunRecord) -> bool:
    """Whether the run's counts say it changed a contact or a list (then an empty change log
    means it was pruned, or written before segsync kept one)."""
    if run.dry_run or run.kind != "sync":
        return False
    c = run.counts
    return c.added + c.updated + c.removed > 0


def _view(record: ChangeRecord, titles: dict[int, str]) -> ChangeView:
    changed = record.changed_fields() if record.action in ("added", "updated") else []
    title = None if record.segment_id is None else _title(titles, record.segment_id)
    return ChangeView(record, title, changed)


def iter_changes(
    ctx: ServiceContext, run_id: int, *, action: str | None = None, segment_id: int | None = None
) -> Iterator[ChangeView]:
    """Every change of the run (of one action and list if given), a page at a time."""
    after = 0
    while True:
        page = change_page(
            ctx, run_id, action=action, segment_id=segment_id, after=after, size=1000
        )
        yield from page.items
        if page.next_after is None:
            return
        after = page.next_after


def _json(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


def write_changes_csv(
    ctx: ServiceContext,
    run_id: int,
    path: Path,
    *,
    action: str | None = None,
    segment_id: int | None = None,
) -> int:
    """Write the run's changes as CSV (:data:`CHANGE_COLUMNS`); return how many. A cell a
    spreadsheet would run as a formula is written with a leading ``'``."""
    _check_filters(action)
    with ctx.db.session() as session:
        RunRepository(session).get(run_id)  # NotFound before creating the file
    return write_csv(path, CHANGE_COLUMNS, _csv_rows(ctx, run_id, action, segment_id))


def _csv_rows(
    ctx: ServiceContext, run_id: int, action: str | None, segment_id: int | None
) -> Iterator[list[str]]:
    for view in iter_changes(ctx, run_id, action=action, segment_id=segment_id):
        data = view.to_dict()
        yield [
            data["at"],
            data["action"],
            data["list"] or "",
            data["email"],
            data["profile_id"] or "",
            "yes" if data["new_contact"] else "no",
            " ".join(data["changed_fields"]),
            _json(data["values"]),
            _json(data["previous_values"]),
        ]
