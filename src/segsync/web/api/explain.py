"""``GET /api/v1/explain?email=...`` ("explain a person", docs/explain.md): the profiles that
carry an email and how it was cleaned, their segments (or the first condition that kept them
out), the lists the sync state has them on, and the runs that touched them. Anyone signed in
may ask (the same as viewing runs); a forgotten person is answered with their erasure status
only."""

from __future__ import annotations

import builtins
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from segsync.services import people
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/explain", tags=["explain"])


class FailedOut(BaseModel):
    kind: str = Field(description="condition, related (a related-table rule) or excluded (except)")
    rule: int = Field(description="The rule's number, from 1.")
    path: str = Field(description="Where it is in the definition, e.g. rules[0].conditions.all[1].")
    text: str
    attribute: str | None
    value: Any = Field(description="The profile's value of the attribute (conditions only).")


class SegmentOut(BaseModel):
    segment_id: int
    segment: str
    member: bool
    reason: str | None = Field(description="Why not, in words (non-members).")
    failed: FailedOut | None


class ExportStatusOut(BaseModel):
    export: str
    status: str = Field(description="sent, duplicate, invalid or 'not in its segments'")
    detail: str


class ProfileOut(BaseModel):
    profile_id: str
    attribute: str = Field(description="The attribute the email was found in.")
    raw: str = Field(description="The value as the profile holds it.")
    cleaned: str | None = Field(description="Trimmed and lower-cased; null when invalid.")
    problem: str | None
    cleaning: str
    exports: list[ExportStatusOut]
    segments: list[SegmentOut]


class ListOut(BaseModel):
    segment_id: int
    segment: str
    list: str | None = Field(description="The destination list's title (null: not made yet).")
    state: str = Field(description="known, pending (maybe there) or 'not on it'")


class ExportOut(BaseModel):
    export_id: int
    export: str
    connection: str | None
    contact: str = Field(description="known, pending or 'not on it'")
    synced_at: str | None
    lists: list[ListOut]


class RunTouchOut(BaseModel):
    run_id: int
    export: str
    at: str
    action: str = Field(
        description="added, updated, removed, refused (changes) or invalid, merged, rejected, "
        "forgotten (set aside)"
    )
    list: str | None
    profile_id: str | None
    fields: builtins.list[str] = Field(description="The fields an update changed.")
    detail: str | None


class ErasureOut(BaseModel):
    connection: str | None = Field(description="null for the marker that suppresses the person.")
    status: str = Field(description="pending, done or suppressed")
    requested_at: str
    done_at: str | None


class PersonOut(BaseModel):
    query: str
    email: str | None = Field(description="The email as segsync cleans it; null when invalid.")
    email_problem: str | None
    export: str | None
    forgotten: bool = Field(description="Erased: nothing more about the person is shown.")
    summary: str
    erasures: list[ErasureOut]
    profiles: list[ProfileOut]
    profiles_note: str | None = Field(description="Why profiles could not be read, if so.")
    exports: list[ExportOut]
    runs: list[RunTouchOut]


@router.get("", summary="Explain a person: profiles, segments, lists and runs of one email")
def explain(
    ctx: ApiContextDep,
    email: Annotated[str, Query(min_length=1, max_length=320, description="The email.")],
    export: Annotated[
        str | None, Query(max_length=200, description="Only this export (its name).")
    ] = None,
) -> PersonOut:
    return PersonOut.model_validate(people.explain_person(ctx, email, export=export).to_dict())
