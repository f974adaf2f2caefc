"""``/api/v1/schema``: the profile tables with their attributes and types, the relationships,
and what the segment builder and the export forms offer for them (operators by type,
aggregates, Autopilot's standard fields and custom field types)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from segsync.services import profiles
from segsync.services.context import ServiceContext
from segsync.services.exports import forms as export_forms
from segsync.services.segments import builder as segment_builder
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/schema", tags=["schema"])


class AttributeOut(BaseModel):
    name: str
    type: str = Field(description="text, number, date or boolean")


class TableOut(BaseModel):
    name: str
    is_profile: bool
    key: str | None
    row_count: int | None
    attributes: list[AttributeOut]


class RelationshipOut(BaseModel):
    child: str
    parent: str


class SchemaOut(BaseModel):
    profile_table: str | None
    tables: list[TableOut]
    relationships: list[RelationshipOut]
    vocabulary: dict[str, Any] = Field(description="Operators by type, aggregates, combine…")
    mapping: dict[str, dict[str, Any]] = Field(
        description="By destination type: its standard fields and custom field types."
    )


@router.get("", summary="Profile schema and the segment builder's vocabulary")
def get_schema(ctx: ApiContextDep) -> SchemaOut:
    return SchemaOut.model_validate(builder_schema(ctx))


def builder_schema(ctx: ServiceContext, *, counts: bool = True) -> dict[str, Any]:
    """The schema as the builder reads it (also served to the web pages' JavaScript, which
    shows no row counts: ``counts=False`` leaves them ``None`` and the tables uncounted)."""
    report = profiles.schema(ctx, counts=counts).to_dict()
    return {
        "profile_table": report["profile_table"],
        "tables": [
            {
                "name": t["name"],
                "is_profile": t["is_profile"],
                "key": t["key"],
                "row_count": t["row_count"],
                "attributes": t["attributes"],
            }
            for t in report["tables"]
        ],
        "relationships": report["relationships"],
        "vocabulary": segment_builder.vocabulary(),
        "mapping": {
            name: choices.to_dict() for name, choices in export_forms.all_mapping_choices().items()
        },
    }
