"""``/api/v1/erasures`` (P4): forget a person by email — deleted from every Autopilot
connection they were exported to and from the sync state, then never exported again until the
suppression is lifted — list erasures, retry the pending ones, lift a suppression.
Administrators only; others get 403. Responses never hold an email in clear: it is masked
(``j•••@e•••.com``) or, once an erasure is done, only a ``sha256:`` digest.

The destination calls run synchronously (the service uses ``asyncio.run``), so the handlers
are plain ``def``: FastAPI runs them in its thread pool, outside the event loop."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from segsync.services.privacy import erasure
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/erasures", tags=["erasures"])


class PersonIn(BaseModel):
    email: str = Field(min_length=1, max_length=320, description="The person's email address.")


class OutcomeOut(BaseModel):
    erasure_id: int
    connection: str
    status: str = Field(description="done or pending")
    deleted: bool | None = Field(
        description="True: the destination deleted the contact; False: it had none; "
        "null while pending."
    )
    error: str | None = Field(description="Why it is still pending.")
    attempts: int


class ReportOut(BaseModel):
    email: str = Field(description="The person's email, masked.")
    found: bool = Field(description="Whether any export's sync state held the person.")
    pending: bool = Field(description="Whether a connection has not confirmed yet (retried).")
    message: str
    exports: list[str] = Field(description="The exports that had sent the person.")
    connections: list[OutcomeOut]
    rejects_removed: int = Field(description="Set-aside run records deleted for the person.")
    cleared_locally: list[str] = Field(
        description="Exports whose connection was removed: cleared here, nothing sent."
    )


class ErasureOut(BaseModel):
    id: int
    email: str = Field(description="Masked while pending; a sha256: digest once done.")
    connection: str | None = Field(description="null for the suppression marker.")
    status: str = Field(description="pending, done or suppressed")
    attempts: int
    last_error: str | None
    requested_by: str
    requested_at: str
    done_at: str | None


class RetryOut(BaseModel):
    done: int = Field(description="Erasures completed by this retry.")
    pending: int = Field(description="Erasures still pending.")


class LiftOut(BaseModel):
    lifted: bool = Field(description="False when the person was not suppressed.")
    message: str


@router.post("", summary="Forget a person everywhere they were exported (P4)")
def forget(ctx: ApiContextDep, body: PersonIn) -> ReportOut:
    """A destination that cannot be reached leaves its erasure pending (``pending: true``);
    it is retried by ``POST /api/v1/erasures/retry`` and by the scheduler."""
    return ReportOut.model_validate(erasure.forget(ctx, body.email).to_dict())


@router.get("", summary="List erasures, newest first")
def list_erasures(
    ctx: ApiContextDep,
    status: Annotated[
        Literal["pending", "done", "suppressed"] | None, Query(description="Only this status.")
    ] = None,
) -> list[ErasureOut]:
    records = erasure.list_erasures(ctx, status=status)
    return [ErasureOut.model_validate(erasure.erasure_view(record)) for record in records]


@router.post("/retry", summary="Try every pending erasure again now")
def retry(ctx: ApiContextDep) -> RetryOut:
    done = erasure.retry_pending_erasures(ctx)
    left = len(erasure.list_erasures(ctx, status="pending"))
    return RetryOut(done=done, pending=left)


@router.post("/lift", summary="Let a forgotten person be exported again")
def lift(ctx: ApiContextDep, body: PersonIn) -> LiftOut:
    """For a person who came back and agreed to be contacted. Audited."""
    lifted = erasure.lift_suppression(ctx, body.email)
    message = (
        "Lifted: later runs may export this person again."
        if lifted
        else "This person was not suppressed; nothing changed."
    )
    return LiftOut(lifted=lifted, message=message)
