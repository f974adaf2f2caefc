"""The run engine's hold stage (docs/exports.md "Blast-radius hold"), between plan and send.

:func:`hold_gate` judges the plan with the export's :class:`~segsync.domain.hold.HoldRule`
(:func:`segsync.domain.hold.judge`) and says whether the run stops here, Held:

* a plan over a threshold holds a real run: its verdict (counts per list, who would leave
  and join, the lists' sizes before and after, the plan's fingerprint) is saved on the run,
  older Held runs of the export are dismissed (this plan replaces theirs), and the engine
  ends the run Held, nothing sent;
* a dry run is never held: its verdict is saved and a warning says it would be;
* an approved run (:mod:`segsync.services.runs.approval` queued it again) sends its plan
  when the plan made now has the approved fingerprint. When the data changed meanwhile the
  new plan is judged afresh, and the run says so: it is sent if within the thresholds, held
  again otherwise. Once an approved run started sending, an attempt that resumes it after a
  crash is not judged again (what is left of a plan is a bigger share of smaller lists).

A plan within the thresholds, with no approval to account for, costs no database call.
"""

from __future__ import annotations

from typing import Any

from segsync.domain.hold import HoldVerdict, judge
from segsync.domain.plan import SyncPlan
from segsync.domain.sync_state import SyncStateView
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.sync.store import RunStore
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.run_holds import RunHoldRepository
from segsync.storage.repositories.runs import RunRecord

__all__ = ["held_message", "hold_gate"]

SENDING = ("sent as approved", "re-planned and sent")
"""Outcomes saved before an approved run sends: a resumed attempt is not judged again."""


async def hold_gate(
    store: RunStore,
    run: RunRecord,
    target: RunTarget,
    plan: SyncPlan,
    state: SyncStateView,
    warnings: list[str],
) -> str | None:
    """The message to end the run Held with, or ``None`` when it goes on (warnings added)."""
    approval = None if run.dry_run else (run.hold or {}).get("approved")
    if target.hold.is_off and approval is None:
        return None
    if approval is not None and (run.hold or {}).get("outcome") in SENDING:
        return None  # an approved run resumed after a crash: the rest of it goes on
    names = {s.key: s.name for s in target.segments}
    verdict = judge(plan, state, target.hold, names)
    if approval is None and not verdict.held:
        return None  # nothing to keep: its fingerprint is never worked out
    record: dict[str, Any] = verdict.to_dict()
    if approval is not None:
        record["approved"] = approval
        if approval.get("fingerprint") == verdict.fingerprint:
            record["outcome"] = "sent as approved"
            warnings.append(
                f"sent the plan {approval.get('by', 'someone')} approved after it was held"
            )
            await _save(store, record, supersede=False)
            return None
        record["replanned"] = True
    if run.dry_run:
        if verdict.held:
            warnings.append(would_hold_warning(verdict))
            await _save(store, record, supersede=False)
        return None
    if not verdict.held:
        if approval is not None:
            record["outcome"] = "re-planned and sent"
            warnings.append(
                "the data changed since the plan was approved: the run planned again, and the "
                "new plan is within the export's hold thresholds, so it was sent"
            )
            await _save(store, record, supersede=False)
        return None
    record.pop("approved", None)
    record["outcome"] = "held"
    await _save(store, record, supersede=True, export_name=target.export_name)
    return held_message(run.id, verdict, replanned=approval is not None)


async def _save(
    store: RunStore, record: dict[str, Any], *, supersede: bool, export_name: str = ""
) -> None:
    await store.call(_write, store.ctx, store.run_id, record, supersede, export_name)


def _write(
    ctx: ServiceContext, run_id: int, record: dict[str, Any], supersede: bool, export_name: str
) -> None:
    with ctx.db.session() as session:
        holds = RunHoldRepository(session)
        holds.set_hold(run_id, record)
        if not supersede:
            return
        now = ctx.now()
        for older in holds.supersede(run_id, now=now):
            audit.record(
                session,
                at=now,
                actor="segsync",
                action="export.run_dismissed",
                target_type="export",
                target=export_name,
                summary=f"dismissed held run {older} of export {export_name!r}: superseded by "
                f"run {run_id}, held with a newer plan; nothing sent",
                details={"run_id": older, "superseded_by": run_id},
            )


def would_hold_warning(verdict: HoldVerdict) -> str:
    return "a real run would be held: " + "; ".join(verdict.reasons)


def held_message(run_id: int, verdict: HoldVerdict, *, replanned: bool = False) -> str:
    """Why the run is Held, and the way out."""
    lead = (
        "held again: the data changed since the plan was approved, and the new plan"
        if replanned
        else "held: the plan"
    )
    return (
        f"{lead} would change too much — {'; '.join(verdict.reasons)}. Nothing was sent. "
        f"See the plan with `segsync runs show {run_id}`, then approve it with `segsync runs "
        f"approve {run_id}` or dismiss it with `segsync runs dismiss {run_id}`"
    )
