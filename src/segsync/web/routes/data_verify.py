"""Data > Exports > Verify (docs/web.md): the Verify and "Verify and repair" buttons of the
export page queue a verify run for the workers, say its expected request cost, and go to the
run page, which shows the drift per list when it ends. Whoever may run the export may press
them (the services check)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Request
from fastapi.responses import RedirectResponse

from segsync.services.exports import verify as verify_service
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash

router = page_router(prefix="/data/exports")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/{export_id}/verify")
def verify(
    request: Request,
    ctx: ContextDep,
    export_id: RecordId,
    repair: Annotated[str, Form(max_length=5)] = "",
) -> RedirectResponse:
    queued = verify_service.enqueue_verify(ctx, export_id, repair=repair in {"1", "true", "on"})
    what = "Verify and repair" if queued.run.kind == "repair" else "Verify"
    flash(
        request,
        f"{what} of {queued.run.export_name!r} queued (run {queued.run.id}): about "
        f"{queued.estimate.requests:,} request(s) to read its lists back.",
    )
    return RedirectResponse(f"/data/runs/{queued.run.id}", status_code=303)
