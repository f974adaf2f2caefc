"""The change record (docs/exports.md "The change record"): one row per change a run made in
the destination — a membership added or removed, a contact's mapped values updated, an item
refused — written by the run engine in the same transaction as the sync state it describes.

Bulk writes go through the driver (one statement, many parameter rows), as the sync state's do."""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from segsync.storage.models.run_changes import RunChange
from segsync.storage.models.runs import Run
from segsync.storage.repositories.driver import bind_value, execute_many, in_lists, select_rows

ACTIONS = ("added", "updated", "removed", "refused")
# Plain driver SQL: run per commit of the run engine, with an IN list of up to a commit's emails
_EARLIER_IN_RUN = (
    "SELECT email, previous, new_contact FROM run_changes WHERE run_id = ? "
    "AND action IN ('added', 'updated') AND email IN ({marks})"
)
_LAST_SENT = (
    "SELECT email, payload FROM sync_contacts WHERE export_id = ? AND payload_hash <> '' "
    "AND email IN ({marks})"
)
_INSERT = (
    "INSERT INTO run_changes (run_id, export_id, segment_id, email, profile_id, action, fields, "
    "previous, new_contact, at) VALUES ($1, $2, ?, ?, ?, ?, ?, ?, ?, $3)"
)


def payload_json(fields: Any, custom: Any) -> str:
    """The canonical JSON of a mapped payload, as the change record and the sync state keep it."""
    return orjson.dumps({"custom": custom, "fields": fields}, option=orjson.OPT_SORT_KEYS).decode()


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(orjson.loads(text))


class ChangeRow(NamedTuple):
    """A change to record. ``fields``/``previous`` are canonical payload JSON (or None). (A
    named tuple: a run makes one per item it sends.)"""

    action: str
    email: str
    segment_id: int | None = None
    profile_id: str | None = None
    fields: str | None = None
    previous: str | None = None
    new_contact: bool = False


@dataclass(frozen=True)
class ChangeRecord:
    """A recorded change; ``fields``/``previous`` are ``{"fields": {...}, "custom": {...}}``."""

    id: int
    run_id: int
    export_id: int | None
    segment_id: int | None
    email: str
    profile_id: str | None
    action: str
    fields: dict[str, Any] | None
    previous: dict[str, Any] | None
    new_contact: bool
    at: datetime

    @classmethod
    def of(cls, row: RunChange) -> ChangeRecord:
        return cls(
            id=row.id,
            run_id=row.run_id,
            export_id=row.export_id,
            segment_id=row.segment_id,
            email=row.email,
            profile_id=row.profile_id,
            action=row.action,
            fields=_loads(row.fields),
            previous=_loads(row.previous),
            new_contact=row.new_contact,
            at=row.at,
        )

    def changed_fields(self) -> list[str]:
        """The mapped fields whose values this change set (``custom.`` prefixed for custom
        fields): all that were sent for a new contact, else those that differ."""
        sent = self.fields or {}
        before = self.previous or {}
        names: list[str] = []
        for part, prefix in (("fields", ""), ("custom", "custom.")):
            new, old = sent.get(part) or {}, before.get(part) or {}
            for key in sorted(set(new) | set(old)):
                if self.previous is None or new.get(key) != old.get(key):
                    names.append(prefix + key)
        return names


class RunChangeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        run_id: int,
        export_id: int,
        rows: Sequence[ChangeRow],
        *,
        now: datetime,
        before: Mapping[str, tuple[str | None, bool]] | None = None,
    ) -> None:
        """Add ``rows`` as changes of ``run_id``. With ``before`` (what :meth:`before_run`
        returns), the previous values and new-contact flag of each row whose email it has come
        from it instead of the row."""
        stamp = bind_value(self.session, RunChange.__table__.c.at, now)
        prior = before or {}
        params = [
            (r.segment_id, r.email, r.profile_id, r.action, r.fields,
             *prior.get(r.email, (r.previous, r.new_contact)))
            for r in rows
        ]  # fmt: skip
        execute_many(self.session, _INSERT, params, shared=(run_id, export_id, stamp))

    def before_run(
        self, run_id: int, export_id: int, emails: Iterable[str]
    ) -> dict[str, tuple[str | None, bool]]:
        """email → (previous payload JSON, new contact?) as they were before ``run_id``: from the
        run's own earlier rows for the email (an earlier batch or attempt of the same run), else
        from the sync state's payload last acknowledged (new when the state has no
        acknowledged contact)."""
        wanted = builtins.list(dict.fromkeys(emails))
        found: dict[str, tuple[str | None, bool]] = {}
        for marks, chunk in in_lists(wanted):
            query = _EARLIER_IN_RUN.format(marks=marks)
            for email, previous, new in select_rows(self.session, query, run_id, *chunk):
                found.setdefault(email, (previous, bool(new)))
        rest = [e for e in wanted if e not in found]
        for marks, chunk in in_lists(rest):
            query = _LAST_SENT.format(marks=marks)
            for email, payload in select_rows(self.session, query, export_id, *chunk):
                found[email] = (payload, False)
        for email in rest:
            found.setdefault(email, (None, True))
        return found

    def for_run(
        self,
        run_id: int,
        *,
        action: str | None = None,
        segment_id: int | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[ChangeRecord]:
        """A page of the run's changes in order (keyset paging: ids after ``after_id``)."""
        query = select(RunChange).where(RunChange.run_id == run_id, RunChange.id > after_id)
        if action is not None:
            query = query.where(RunChange.action == action)
        if segment_id is not None:
            query = query.where(RunChange.segment_id == segment_id)
        rows = self.session.scalars(query.order_by(RunChange.id).limit(limit))
        return [ChangeRecord.of(row) for row in rows]

    def iter_run(self, run_id: int, *, chunk: int = 2_000) -> Iterator[ChangeRecord]:
        """Every change of the run, in order, read a chunk at a time."""
        after = 0
        while page := self.for_run(run_id, after_id=after, limit=chunk):
            yield from page
            after = page[-1].id

    def per_list(self, run_id: int) -> dict[int | None, Counter[str]]:
        """segment id (None: contact-only updates) → action → count, in one query."""
        rows = self.session.execute(
            select(RunChange.segment_id, RunChange.action, func.count())
            .where(RunChange.run_id == run_id)
            .group_by(RunChange.segment_id, RunChange.action)
        )
        counts: dict[int | None, Counter[str]] = {}
        for segment_id, action, n in rows:
            counts.setdefault(segment_id, Counter())[action] = int(n)
        return counts

    def updated_on_add(self, run_id: int) -> dict[int | None, int]:
        """segment id → how many of the run's additions also changed the values of a contact
        sent before (``previous`` set and not what was sent), in one query."""
        rows = self.session.execute(
            select(RunChange.segment_id, func.count())
            .where(
                RunChange.run_id == run_id,
                RunChange.action == "added",
                RunChange.previous.is_not(None),
                RunChange.previous != RunChange.fields,
            )
            .group_by(RunChange.segment_id)
        )
        return {segment_id: int(n) for segment_id, n in rows}

    def for_email(self, email: str) -> list[ChangeRecord]:
        """Every recorded change of ``email`` (normalised), newest first."""
        rows = self.session.scalars(
            select(RunChange).where(RunChange.email == email).order_by(RunChange.id.desc())
        )
        return [ChangeRecord.of(row) for row in rows]

    def touched_after(
        self,
        export_id: int,
        run_id: int,
        emails: Iterable[str],
        *,
        exclude_run: int | None = None,
    ) -> set[str]:
        """Those of ``emails`` that a later run of the export changed (refusals aside), but
        ``exclude_run`` (an undo resuming does not count its own earlier attempts)."""
        touched: set[str] = set()
        for _, chunk in in_lists(builtins.list(dict.fromkeys(emails))):
            query = select(RunChange.email).where(
                RunChange.export_id == export_id,
                RunChange.run_id > run_id,
                RunChange.email.in_(chunk),
                RunChange.action != "refused",
            )
            if exclude_run is not None:
                query = query.where(RunChange.run_id != exclude_run)
            rows = self.session.scalars(query.distinct())
            touched.update(rows)
        return touched

    def has_run(self, run_id: int) -> bool:
        """Whether any change of the run is still kept."""
        found = self.session.scalar(select(RunChange.id).where(RunChange.run_id == run_id).limit(1))
        return found is not None

    def prune(self, export_id: int, keep_runs: int) -> int:
        """Keep the changes of the export's newest ``keep_runs`` runs that recorded any; delete
        the older ones. Returns how many rows went. Reads the export's runs (one index probe
        each), never its change rows."""
        older = self.runs_kept(export_id)[max(keep_runs, 0) :]
        if not older:
            return 0
        result = self.session.execute(
            delete(RunChange)
            .where(RunChange.run_id.in_(older))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def forget_email(self, email: str) -> int:
        """Delete every recorded change of ``email`` (an erasure)."""
        result = self.session.execute(
            delete(RunChange)
            .where(RunChange.email == email)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def runs_kept(self, export_id: int) -> builtins.list[int]:
        """The ids of the export's runs whose changes are kept, newest first."""
        recorded = select(RunChange.id).where(RunChange.run_id == Run.id).exists()
        rows = self.session.scalars(
            select(Run.id).where(Run.export_id == export_id, recorded).order_by(Run.id.desc())
        )
        return builtins.list(rows)


__all__ = ["ACTIONS", "ChangeRecord", "ChangeRow", "RunChangeRepository", "payload_json"]
