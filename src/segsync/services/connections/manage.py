"""Connections to destinations (C1–C8, R5, R6): add, list, show, test, edit, remove — and
what the run engine needs at run time (:func:`connection_config`, :func:`flag_connection`,
:func:`export_actor`, re-exported from :mod:`segsync.services.connections.runtime`).

Connections are addressed by id; :func:`connection_id` finds the id of a name (the CLI). New
connections and changes come typed (:mod:`segsync.services.connections.inputs`); the type's
settings, defaults and data-privacy statement come from its capabilities
(:mod:`segsync.services.connections.types`).

Administrators manage connections; everyone else sees only the display name and type of the
connections shared with contributors. An API key is checked against the destination (Connect)
before anything is saved, kept Fernet-encrypted (:mod:`segsync.services.privacy.secrets`) and
shown only as a masked hint; it never reaches logs, messages, audit events or outputs. A secret
reference (``env:NAME`` / ``file:PATH``) is resolved each time the key is needed.

Decisions (ours): a new key, secret reference or base URL may point the data at another account,
so such an edit is checked again and needs the agreement again (a new consent record). The export
user (C3) must be an administrator; ``None`` (a connection made by the CLI's local administrator)
means scheduled runs act as the local administrator.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from segsync.destinations.capabilities import DEFAULT_CONTRACT_LIMIT
from segsync.domain.permissions import Action, decide, may_use_connection, require
from segsync.errors import Conflict, FatalError, InputError, PermissionDenied
from segsync.services.connections.checks import HEALTH_SECRET_UNREADABLE, CheckOutcome, check_key
from segsync.services.connections.inputs import UNSET, ConnectionEdit, NewConnection
from segsync.services.connections.runtime import (
    connection_config,
    export_actor,
    flag_connection,
    record_account,
)
from segsync.services.connections.types import connection_type, consent_statement, resolve_type
from segsync.services.connections.validation import (
    audit_connection,
    current_secret,
    export_user_id,
    secret_from_input,
    valid_base_url,
    valid_contract_limit,
    valid_name,
    valid_rate_limit,
)
from segsync.services.connections.views import (
    CheckResult,
    ConnectionDetails,
    ConnectionGroup,
    ConnectionSummary,
    connection_ref,
    details_of,
    summary_of,
    type_display,
    unknown_connection,
)
from segsync.services.context import ServiceContext
from segsync.storage.repositories.connections import ConnectionRecord, ConnectionRepository

__all__ = [
    "CheckResult",
    "ConnectionDetails",
    "ConnectionGroup",
    "ConnectionSummary",
    "add_connection",
    "connection_config",
    "connection_id",
    "connection_ref",
    "edit_connection",
    "export_actor",
    "flag_connection",
    "list_connections",
    "remove_connection",
    "show_connection",
    "test_connection",
    "usable_connections",
]


def _refuse_without_agreement(agree: bool, why: str, statement: str) -> None:
    if not agree:
        raise InputError(f"{why}, agree to this statement (--agree): {statement}")


def _refuse_failed_check(outcome: CheckOutcome) -> None:
    if not outcome.ok:
        reason = outcome.message.split("; edit the connection")[0]
        raise InputError(f"{reason} — nothing was saved")


def _record_consent(ctx: ServiceContext, session: Session, record: ConnectionRecord) -> None:
    statement = consent_statement(record.type)
    ConnectionRepository(session).add_consent(
        connection_id=record.id,
        connection_name=record.name,
        agreed_by=ctx.actor.email,
        at=ctx.now(),
        statement=statement,
    )
    audit_connection(
        ctx,
        session,
        "consent.given",
        record.name,
        f"Agreed to the data-privacy statement for connection {record.name!r}",
        {"statement": statement},
    )


# --- reading -------------------------------------------------------------------------------


def list_connections(ctx: ServiceContext) -> list[ConnectionSummary]:
    """Administrators: every connection with its settings (:class:`ConnectionDetails`).
    Others: the display name and type of the connections shared with contributors (R5)."""
    require(ctx.actor, Action.VIEW)
    admin = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS).allowed
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        records = repo.list()
        if not admin:
            return [summary_of(r) for r in records if r.shared_with_contributors]
        exports = repo.exports_by_connection()
        return [details_of(session, r, exports.get(r.id, []), consent=False) for r in records]


def connection_id(ctx: ServiceContext, name: str) -> int:
    """The id of the connection named ``name`` (one lookup). ``NotFound`` names the connections
    this user may use."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        found = repo.find_by_name(name.strip())
        if found is not None:
            return found.id
        usable = [
            (r.name, r.type)
            for r in repo.list()
            if may_use_connection(ctx.actor, connection_ref(r))
        ]
    raise unknown_connection(f"named {name!r}", usable, name=name)


def show_connection(ctx: ServiceContext, connection_id: int) -> ConnectionSummary:
    """One connection: :class:`ConnectionDetails` (with its latest consent) for administrators,
    a :class:`ConnectionSummary` for others when it is shared with contributors (any other id,
    existing or not, is refused alike: the answer never tells which private connections
    exist)."""
    require(ctx.actor, Action.VIEW)
    settings = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS)
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        if settings.allowed:
            record = repo.get(connection_id)
            return details_of(session, record, repo.exports_using(record.id), consent=True)
        found = repo.find(connection_id)
    if found is None or not found.shared_with_contributors:
        raise PermissionDenied(
            f"this connection is not shared with contributors; {settings.reason}"
        )
    return summary_of(found)


def usable_connections(ctx: ServiceContext) -> list[ConnectionGroup]:
    """The connections the actor may pick for an export, grouped by type (E1, R3). An empty
    list means none is usable: say so."""
    with ctx.db.session() as session:
        records = ConnectionRepository(session).list()
    groups: dict[str, list[ConnectionSummary]] = {}
    for record in records:
        if decide(ctx.actor, Action.USE_CONNECTION, connection_ref(record)).allowed:
            groups.setdefault(record.type, []).append(summary_of(record))
    return [ConnectionGroup(t, type_display(t), items) for t, items in sorted(groups.items())]


# --- changing ------------------------------------------------------------------------------


def add_connection(
    ctx: ServiceContext, new: NewConnection, *, agree: bool = False
) -> ConnectionDetails:
    """Check the key (Connect) and save the connection with its consent (C1, C2, C5, C6, C8).

    Refused, with nothing saved: for an unknown type; without ``agree`` (to the type's
    statement); unless exactly one of ``api_key`` and ``secret_ref`` is given; for an invalid
    name, base URL, rate or contract limit; when the destination rejects the key or cannot be
    reached. Defaults: the type's base URL, rate limit and contract limit, administrators only,
    the creator as export user.
    """
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    caps = resolve_type(new.type)
    _refuse_without_agreement(agree, "to save a connection", caps.consent_statement)
    display_name = valid_name(new.name)
    preset = caps.apply_presets(new.settings).get("base_url")
    url = valid_base_url(
        new.base_url if new.base_url is not None else preset or caps.default_base_url,
        ctx.settings,
    )
    rate = valid_rate_limit(
        new.rate_limit if new.rate_limit is not None else caps.default_rate_limit
    )
    limit = valid_contract_limit(
        new.contract_limit if new.contract_limit is not None else DEFAULT_CONTRACT_LIMIT
    )
    with ctx.db.session() as session:
        if ConnectionRepository(session).find_by_name(display_name) is not None:
            raise Conflict(f"a connection named {display_name!r} already exists; choose another")
        user_id = export_user_id(session, new.export_user_email, ctx.actor)
    secret = secret_from_input(ctx, new.api_key, new.secret_ref)
    outcome = check_key(caps.name, base_url=url, api_key=secret.plain, rate_limit=rate)
    _refuse_failed_check(outcome)
    with ctx.db.session() as session:
        record = ConnectionRepository(session).create(
            name=display_name,
            type_name=caps.name,
            shared_with_contributors=new.share_with_contributors,
            secret_ciphertext=secret.ciphertext,
            secret_ref=secret.ref,
            secret_hint=secret.hint,
            base_url=url,
            rate_limit=rate,
            contract_limit=limit,
            export_user_id=user_id,
            created_by=ctx.actor.email,
            now=ctx.now(),
            health=outcome.health,
            health_message=outcome.message,
            instance_id=outcome.instance_id,
        )
        details = {
            "type": caps.name,
            "base_url": url,
            "rate_limit": rate,
            "contract_limit": limit,
            "shared_with_contributors": new.share_with_contributors,
            "secret_hint": secret.hint,
            "instance": outcome.instance_id,
        }
        summary = f"Added {caps.display_name} connection {record.name!r}"
        audit_connection(ctx, session, "connection.added", record.name, summary, details)
        _record_consent(ctx, session, record)
        return details_of(session, record, [], consent=True)


def test_connection(ctx: ServiceContext, connection_id: int) -> CheckResult:
    """Connect again with the saved key and record the outcome as the connection's health
    (``ok``, ``key_rejected``, ``unreachable``, ``secret_unreadable``, ``error``). Passing it
    clears a flag a run left (X12)."""
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    with ctx.db.session() as session:
        record = ConnectionRepository(session).get(connection_id)
    try:
        key = current_secret(ctx, record)
    except FatalError as err:
        outcome = CheckOutcome(HEALTH_SECRET_UNREADABLE, err.message)
    else:
        outcome = check_key(
            record.type, base_url=record.base_url, api_key=key, rate_limit=record.rate_limit
        )
    now = ctx.now()
    with ctx.db.session() as session:
        checked = ConnectionRepository(session).set_health(
            record.id, outcome.health, outcome.message, at=now
        )
        record_account(ctx, session, checked, outcome.instance_id)
        summary = f"Tested connection {record.name!r}: {outcome.health}"
        details = {"health": outcome.health, "message": outcome.message}
        audit_connection(ctx, session, "connection.tested", record.name, summary, details)
    return CheckResult(record.name, outcome.health, outcome.message, now)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _setting_changes(
    session: Session, ctx: ServiceContext, record: ConnectionRecord, edit: ConnectionEdit
) -> dict[str, Any]:
    """The checked settings ``edit`` changes, leaving out those equal to the current ones."""
    wanted: dict[str, Any] = {}
    preset = connection_type(record.type).apply_presets(edit.settings).get("base_url")
    if preset is not None and edit.base_url is UNSET:
        wanted["base_url"] = valid_base_url(preset, ctx.settings)
    if edit.name is not UNSET:
        wanted["name"] = valid_name(edit.name)
    if edit.base_url is not UNSET:
        wanted["base_url"] = valid_base_url(edit.base_url, ctx.settings)
    if edit.rate_limit is not UNSET:
        wanted["rate_limit"] = valid_rate_limit(edit.rate_limit)
    if edit.contract_limit is not UNSET:
        wanted["contract_limit"] = valid_contract_limit(edit.contract_limit)
    if edit.share_with_contributors is not UNSET:
        wanted["shared_with_contributors"] = edit.share_with_contributors
    if edit.export_user_email is not UNSET:
        wanted["export_user_id"] = export_user_id(session, edit.export_user_email, ctx.actor)
    return {key: value for key, value in wanted.items() if getattr(record, key) != value}


def edit_connection(
    ctx: ServiceContext, connection_id: int, edit: ConnectionEdit, *, agree: bool = False
) -> ConnectionDetails:
    """Change the settings ``edit`` gives (:data:`UNSET` ones stay as they are).

    A new key, secret reference or base URL is checked (Connect) before anything is saved and
    needs ``agree`` again (a new consent record). Widening or narrowing the sharing never
    touches the exports on the connection (C4).
    """
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    if edit.api_key is not UNSET and edit.secret_ref is not UNSET:
        raise InputError("give a new API key or a new secret reference, not both")
    with ctx.db.session() as session:
        record = ConnectionRepository(session).get(connection_id)
        changes = _setting_changes(session, ctx, record, edit)
    new_secret = edit.api_key is not UNSET or edit.secret_ref is not UNSET
    if not changes and not new_secret:
        raise InputError(f"nothing to change on connection {record.name!r}; give a new setting")
    outcome: CheckOutcome | None = None
    if new_secret or "base_url" in changes:
        _refuse_without_agreement(
            agree,
            "a new key or base URL may send the data to another account; to save it",
            connection_type(record.type).consent_statement,
        )
        if new_secret:
            secret = secret_from_input(
                ctx,
                None if edit.api_key is UNSET else edit.api_key,
                None if edit.secret_ref is UNSET else edit.secret_ref,
            )
            changes.update(
                secret_ciphertext=secret.ciphertext, secret_ref=secret.ref, secret_hint=secret.hint
            )
            plain = secret.plain
        else:
            plain = current_secret(ctx, record)
        outcome = check_key(
            record.type,
            base_url=changes.get("base_url", record.base_url),
            api_key=plain,
            rate_limit=changes.get("rate_limit", record.rate_limit),
        )
        _refuse_failed_check(outcome)
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        updated = repo.update(record.id, now=ctx.now(), **changes)
        shown = {k: v for k, v in changes.items() if k not in {"secret_ciphertext", "secret_ref"}}
        if outcome is not None:
            updated = repo.set_health(record.id, outcome.health, outcome.message, at=ctx.now())
            record_account(ctx, session, updated, outcome.instance_id)
        summary = f"Edited connection {updated.name!r}: {', '.join(sorted(shown))}"
        details = {"changed": shown, "previous_name": record.name}
        audit_connection(ctx, session, "connection.edited", updated.name, summary, details)
        if outcome is not None:
            _record_consent(ctx, session, updated)
        return details_of(session, updated, repo.exports_using(record.id), consent=True)


def remove_connection(ctx: ServiceContext, connection_id: int) -> None:
    """Remove a connection; refused (``Conflict``, naming them) while exports use it (C7).
    Its consent records stay, with the connection's name."""
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        record = repo.get(connection_id)
        exports = [name for _, name in repo.exports_using(record.id)]
        if exports:
            names = ", ".join(repr(e) for e in exports)
            raise Conflict(
                f"connection {record.name!r} is used by {len(exports)} export(s): {names}; remove "
                "them or detach them (`segsync exports detach NAME`) first"
            )
        repo.delete(record.id)
        details = {"type": record.type, "base_url": record.base_url}
        summary = f"Removed connection {record.name!r}"
        audit_connection(ctx, session, "connection.removed", record.name, summary, details)
