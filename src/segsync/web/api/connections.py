"""``/api/v1/connections`` (C1–C8, R5, R6). Administrators manage connections and see their
settings; others see the display name and type of the connections shared with contributors.
No response ever carries a key: only its masked hint or the secret reference. Types are those
of the registry of destination types (``GET /types``); ``type`` left out is the default type,
Autopilot."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel, Field

from segsync.services import connections
from segsync.services.connections import ConnectionEdit, NewConnection, or_unset
from segsync.services.connections import probe as connection_probe
from segsync.services.exports import forms as export_forms
from segsync.web.deps import ApiContextDep, ObjectId, api_router

router = api_router("/connections", tags=["connections"])
MAX_CONTRACT_LIMIT = 1_000_000_000_000


TYPE_FIELD = Field(
    default=None,
    max_length=40,
    description="A destination type (GET /types); left out: the default type, autopilot.",
)
OwnSettings = Annotated[
    dict[str, Annotated[str, Field(max_length=200)]],
    Field(
        default_factory=dict,
        max_length=20,
        description='The type\'s own settings by name (GET /types), e.g. {"region": "eu"}.',
    ),
]


class NewConnectionIn(BaseModel):
    type: str | None = TYPE_FIELD
    name: str = Field(max_length=200, description="The display name.")
    api_key: str | None = Field(default=None, max_length=4096, description="Or secret_ref.")
    secret_ref: str | None = Field(
        default=None, max_length=4096, description="env:NAME or file:PATH instead of a key."
    )
    base_url: str | None = Field(default=None, max_length=2000)
    rate_limit: float | None = Field(
        default=None, gt=0, le=1000, allow_inf_nan=False, description="Requests per second."
    )
    contract_limit: int | None = Field(
        default=None, ge=1, le=MAX_CONTRACT_LIMIT, description="Profiles (default 100,000)."
    )
    share_with_contributors: bool = False
    agree: bool = Field(
        default=False, description="Agreement to the data-privacy statement (GET /consent)."
    )
    export_user_email: str | None = Field(
        default=None, max_length=320, description="An administrator; default: you."
    )
    settings: OwnSettings


class ConnectionChange(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    api_key: str | None = Field(default=None, max_length=4096)
    secret_ref: str | None = Field(default=None, max_length=4096)
    base_url: str | None = Field(default=None, max_length=2000)
    rate_limit: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    contract_limit: int | None = Field(default=None, ge=1, le=MAX_CONTRACT_LIMIT)
    share_with_contributors: bool | None = None
    export_user_email: str | None = Field(default=None, max_length=320)
    settings: OwnSettings
    agree: bool = False


class KeyCheck(BaseModel):
    type: str | None = TYPE_FIELD
    api_key: str | None = Field(default=None, max_length=4096)
    secret_ref: str | None = Field(default=None, max_length=4096)
    base_url: str | None = Field(default=None, max_length=2000)
    rate_limit: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    settings: OwnSettings


@router.get("", summary="List connections")
def list_connections(ctx: ApiContextDep) -> list[dict[str, Any]]:
    return [row.to_dict() for row in connections.list_connections(ctx)]


@router.get("/types", summary="The destination types a connection can have, with their settings")
def list_types(ctx: ApiContextDep) -> list[dict[str, Any]]:
    return [
        {
            "type": kind.name,
            "display_name": kind.display_name,
            "description": kind.description,
            "max_batch_size": kind.max_batch_size,
            "settings": [
                {
                    "name": setting.name,
                    "label": setting.label,
                    "kind": setting.kind,
                    "default": setting.default,
                    "help": setting.help,
                    "secret": setting.secret,
                    "required": setting.required,
                    "choices": list(setting.choices),
                    "sets": setting.sets,
                }
                for setting in kind.settings
            ],
        }
        for kind in connections.connection_types()
    ]


@router.get("/consent", summary="The data-privacy statement to agree to")
def consent(
    type: Annotated[str | None, Query(max_length=40, description="A destination type.")] = None,
) -> dict[str, str]:
    return {"statement": connections.consent_statement(type)}


@router.post("/check", summary="Connect: check a key without saving anything")
def check(ctx: ApiContextDep, body: KeyCheck) -> dict[str, Any]:
    outcome = connection_probe.probe_connection(
        ctx,
        body.type,
        api_key=body.api_key,
        secret_ref=body.secret_ref,
        base_url=body.base_url,
        rate_limit=body.rate_limit,
        settings=body.settings,
    )
    return {"ok": outcome.ok, "health": outcome.health, "message": outcome.message}


@router.post("", status_code=201, summary="Add a connection (checks the key first)")
def add_connection(ctx: ApiContextDep, body: NewConnectionIn) -> dict[str, Any]:
    """Refused (422) for an unknown type, without ``agree``, or when the destination rejects
    the key or cannot be reached: nothing is saved then."""
    new = NewConnection(
        body.name,
        type=body.type,
        api_key=body.api_key,
        secret_ref=body.secret_ref,
        base_url=body.base_url,
        rate_limit=body.rate_limit,
        contract_limit=body.contract_limit,
        share_with_contributors=body.share_with_contributors,
        export_user_email=body.export_user_email,
        settings=body.settings,
    )
    return connections.add_connection(ctx, new, agree=body.agree).to_dict()


@router.get("/{connection_id}", summary="One connection")
def show_connection(ctx: ApiContextDep, connection_id: ObjectId) -> dict[str, Any]:
    """Others than administrators get 403 for any connection not shared with contributors,
    existing or not."""
    return connections.show_connection(ctx, connection_id).to_dict()


@router.get("/{connection_id}/fields", summary="What an export on this connection may map")
def connection_fields(ctx: ApiContextDep, connection_id: ObjectId) -> dict[str, Any]:
    return export_forms.connection_fields(ctx, connection_id).to_dict()


@router.patch("/{connection_id}", summary="Change a connection's settings")
def edit_connection(
    ctx: ApiContextDep, connection_id: ObjectId, body: ConnectionChange
) -> dict[str, Any]:
    """A new key, secret reference or base URL is checked again and needs ``agree``."""
    edit = ConnectionEdit(
        name=or_unset(body.name),
        api_key=or_unset(body.api_key),
        secret_ref=or_unset(body.secret_ref),
        base_url=or_unset(body.base_url),
        rate_limit=or_unset(body.rate_limit),
        contract_limit=or_unset(body.contract_limit),
        share_with_contributors=or_unset(body.share_with_contributors),
        export_user_email=or_unset(body.export_user_email),
        settings=body.settings,
    )
    return connections.edit_connection(ctx, connection_id, edit, agree=body.agree).to_dict()


@router.post("/{connection_id}/test", summary="Connect again with the saved key")
def test_connection(ctx: ApiContextDep, connection_id: ObjectId) -> dict[str, Any]:
    return connections.test_connection(ctx, connection_id).to_dict()


@router.delete("/{connection_id}", status_code=204, summary="Remove a connection")
def remove_connection(ctx: ApiContextDep, connection_id: ObjectId) -> Response:
    """Refused (409, naming them) while exports use it: remove or detach those first."""
    connections.remove_connection(ctx, connection_id)
    return Response(status_code=204)
