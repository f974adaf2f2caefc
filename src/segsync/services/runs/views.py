"""Runs as the web UI and the API show them (X8–X11): progress with ETA, the run page's
facts, and rejected contacts a page at a time.

:func:`progress_of` is pure arithmetic over a run record and ``now``: the share of items done
and, once some are done, the time left at the pace so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segsync.domain.permissions import Action, ExportRef, require
from segsync.domain.runs import duration_seconds
from segsync.domain.schedule import ExportMode, ExportSchedule
from segsync.errors import Conflict, InputError
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.runs.history import run_json
from segsync.services.runs.queue import enqueue_run
from segsync.storage.repositories.export_listing import ExportListingRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RejectRecord, RunRecord, RunRepository

__all__ = [
    "Progress",
    "Queued",
    "RunHistory",
    "RunView",
    "enqueue_all",
    "for_pages",
    "progress_of",
    "reject_page",
    "run_history",
    "run_payload",
    "run_view",
    "run_views",
]

REJECTS_PAGE = 50
HISTORY_PAGE = 20


def _aware(moment: datetime, like: datetime) -> datetime:
    """``moment`` comparable with ``like`` (SQLite hands back naive UTC times)."""
    if (moment.tzinfo is None) == (like.tzinfo is None):
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=like.tzinfo)
    return moment.replace(tzinfo=None)


@dataclass(frozen=True)
class Progress:
    """How far a run is: ``percent`` (0–100, ``None`` before the plan is known),
    ``eta_seconds`` (``None`` until an item is done, and once the run ended)."""

    items_done: int
    items_total: int
    percent: float | None
    eta_seconds: float | None
    elapsed_seconds: float | None
    final: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "items_done": self.items_done,
            "items_total": self.items_total,
            "percent": self.percent,
            "eta_seconds": self.eta_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "final": self.final,
        }


def progress_of(run: RunRecord, now: datetime) -> Progress:
    """The run's progress at ``now`` (X9: a live progress bar with ETA)."""
    final = run.status.is_final
    done, total = run.items_done, run.items_total
    percent: float | None = None
    if total > 0:
        percent = round(min(100.0, 100.0 * done / total), 1)
    elif final:
        percent = 100.0
    elapsed: float | None = None
    if run.started_at is not None:
        end = run.ended_at or _aware(now, run.started_at)
        elapsed = max(0.0, (_aware(end, run.started_at) - run.started_at).total_seconds())
    eta: float | None = None
    if not final and elapsed is not None and 0 < done < total:
        eta = round(elapsed / done * (total - done), 1)
    return Progress(done, total, percent, eta, elapsed, final)


@dataclass(frozen=True)
class RunView:
    """One run with what its page shows: the export it belongs to (``None`` once removed),
    progress, duration, and how many rejects of each kind."""

    run: RunRecord
    export: ExportRef | None
    progress: Progress
    duration_seconds: float | None
    reject_counts: dict[str, int]

    @property
    def rejects_total(self) -> int:
        return sum(self.reject_counts.values())


def run_view(ctx: ServiceContext, run_id: int) -> RunView:
    """Run ``run_id`` as its page shows it (``NotFound`` if none). Anyone may view runs."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        runs = RunRepository(session)
        run = runs.get(run_id)
        counts = runs.count_rejects(run_id)
        ref = None
        if run.export_id is not None:
            ref = export_ref(ExportRepository(session).get(run.export_id))
    return _view(run, ref, counts, ctx.now())


def run_views(
    ctx: ServiceContext, *, export_id: int | None = None, limit: int = 50
) -> list[RunView]:
    """The newest ``limit`` runs (of export ``export_id``: ``NotFound`` if there is none) as
    :func:`run_view` shows each, in a fixed number of queries whatever ``limit``: the runs, their
    reject counts and their exports are read a set at a time, never a run at a time."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        exports = ExportRepository(session)
        if export_id is not None:
            exports.get(export_id)
        runs = RunRepository(session)
        records = runs.list(export_id=export_id, limit=max(1, limit))
        counts = runs.reject_counts(run.id for run in records)
        wanted = {run.export_id for run in records if run.export_id is not None}
        listing = ExportListingRepository(session)
        refs = {int(ref.id): ref for ref in listing.export_refs(wanted)}
    now = ctx.now()
    return [
        _view(
            run,
            refs.get(run.export_id) if run.export_id is not None else None,
            counts.get(run.id, {}),
            now,
        )
        for run in records
    ]


def _view(run: RunRecord, ref: ExportRef | None, counts: dict[str, int], now: datetime) -> RunView:
    return RunView(
        run=run,
        export=ref,
        progress=progress_of(run, now),
        duration_seconds=duration_seconds(run.started_at, run.ended_at),
        reject_counts=counts,
    )


def run_payload(view: RunView) -> dict[str, Any]:
    """The API's run: the run record plus export, trigger, dry run, progress, warnings, the
    plan (dry runs: counts per list and sample payloads) and reject counts."""
    run = view.run
    return {
        **run_json(run),
        "export_id": run.export_id,
        "export_name": run.export_name,
        "trigger": run.trigger,
        "kind": run.kind,
        "actor": run.actor,
        "dry_run": run.dry_run,
        "status_label": run.status.label,
        "final": run.status.is_final,
        "queued_at": run.queued_at.isoformat(),
        "duration_seconds": view.duration_seconds,
        "cancel_requested": run.cancel_requested,
        "warnings": run.warnings,
        "plan": run.plan,
        "hold": run.hold,
        "undo_of": run.undo_of,
        "progress": view.progress.to_dict(),
        "rejects": view.reject_counts,
    }


def reject_page(
    ctx: ServiceContext, run_id: int, *, page: int = 1, size: int = REJECTS_PAGE
) -> tuple[list[RejectRecord], int]:
    """Page ``page`` (from 1) of the run's rejects with their reasons, and how many in all."""
    require(ctx.actor, Action.VIEW)
    page = max(1, page)
    size = max(1, min(size, 1000))
    with ctx.db.session() as session:
        runs = RunRepository(session)
        total = sum(runs.count_rejects(run_id).values())
        rows = list(runs.rejects(run_id, limit=size, offset=(page - 1) * size))
    return rows, total


_CLI_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"; (?:list them with|see) `segsync runs rejects[^`]*`"),
        "; they are listed under “Rejected and set-aside contacts” (Download CSV)",
    ),
    (re.compile(r"`segsync erasures lift EMAIL`"), "Admin › Privacy (Lift)"),
    (re.compile(r"`segsync forget`"), "an erasure (Admin › Privacy)"),
    (
        re.compile(r"check it with `segsync connections test [^`]*`"),
        "check it with Test on the connection's page (Admin › Connections)",
    ),
    (re.compile(r"`segsync runs show \d+`"), "the run's page"),
)


def for_pages(text: str) -> str:
    """A run's message or warning as web pages show it: the CLI commands it names (written
    when the run ended, for every reader) become the page or button that does the same."""
    for pattern, words in _CLI_HINTS:
        text = pattern.sub(words, text)
    return text


@dataclass(frozen=True)
class RunHistory:
    """A page of an export's runs (dry runs too), newest first, and how many it has in all."""

    runs: list[RunRecord]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def run_history(
    ctx: ServiceContext, export_id: int, *, page: int = 1, per_page: int = HISTORY_PAGE
) -> RunHistory:
    """Page ``page`` (from 1) of export ``export_id``'s runs, newest first (``NotFound`` if the
    export does not exist). One query for the page, one for the count. Anyone may view."""
    require(ctx.actor, Action.VIEW)
    page = max(1, page)
    per_page = max(1, min(per_page, 500))
    with ctx.db.session() as session:
        ExportRepository(session).get(export_id)
        total = ExportListingRepository(session).count_runs(export_id)
        records = RunRepository(session).list(
            export_id=export_id, limit=per_page, offset=(page - 1) * per_page
        )
    return RunHistory(runs=records, total=total, page=page, per_page=per_page)


@dataclass(frozen=True)
class Queued:
    """One export of "Run all": the run queued for it, or why it was not (``reason``)."""

    export: str
    run_id: int | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"export": self.export, "run_id": self.run_id, "reason": self.reason}


def enqueue_all(ctx: ServiceContext) -> list[Queued]:
    """X1 "Run all" for the web UI and the API: queue a run of every export whose schedule is
    on, for the workers, without waiting. Administrators only. Exports that cannot run
    (no connection, a run already in progress) are reported with the reason."""
    require(ctx.actor, Action.RUN_ALL)
    with ctx.db.session() as session:
        records = ExportRepository(session).list()
    result: list[Queued] = []
    for record in records:
        if ExportSchedule.from_dict(record.schedule).mode is ExportMode.OFF:
            continue
        if record.connection_id is None:
            result.append(Queued(record.name, None, "no connection; not run"))
            continue
        try:
            queued = enqueue_run(ctx, record.name, trigger="run_all")
        except (Conflict, InputError) as err:
            result.append(Queued(record.name, None, err.message))
            continue
        result.append(Queued(record.name, queued.run.id))
    return result
