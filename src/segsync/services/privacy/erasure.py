"""Erasure (P4): forget a person everywhere segsync exported them.

:func:`forget` looks the (normalised) email up in every export's sync state — the record of
what each destination acknowledged — and groups those exports by the connection their state
describes. For each connection it keeps an erasure row (``pending``) and asks the destination to
delete the contact (Autopilot: ``DELETE /contact/{email}``). When the destination confirms, or
says it has no such contact, the person is removed from the sync state (contacts and list
memberships) of every export on that connection, the row becomes ``done`` and the audit trail
records it. If the destination cannot be reached, is busy or rejects the key, the row stays
``pending`` with the reason and one more attempt counted; :func:`retry_pending_erasures` (the
scheduler loop and ``segsync erasures retry``) tries again until it is done.

What is kept about the person (our decisions):

* while pending, the erasure row holds the email in clear (it is needed to send the delete);
  once done it holds only ``sha256:<hex>`` of the normalised email (:func:`email_digest`), so
  "was this address erased?" can still be answered by hashing it, without keeping the address;
* audit events and logs only ever show the masked email (``j•••@e•••.com``);
* the records runs set aside (rejects: invalid or refused emails, with their raw value) are
  deleted at once for that email, whatever the connection;
* exports whose sync state points at a connection that no longer exists are cleared locally
  (nothing can be sent there);
* the person is suppressed: a marker row (``suppressed``, no connection, the digest only) makes
  every later run set them aside as ``forgotten`` instead of sending them again, even while they
  are still in the profile data. If they come back and agree to be contacted, an administrator
  lifts it with :func:`lift_suppression` (``segsync erasures lift EMAIL``).

Everything here is administrators only (:attr:`Action.FORGET_PERSON`). The functions are
synchronous and run the destination calls with ``asyncio.run``: call them from a worker thread,
not from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from segsync.destinations.base import ConnectionConfig
from segsync.destinations.registry import create_destination
from segsync.domain.emails import email_digest, mask_email, normalise_email
from segsync.domain.permissions import Action, require
from segsync.errors import AuthenticationFailed, InputError, SegsyncError
from segsync.services.connections.checks import HEALTH_KEY_REJECTED
from segsync.services.connections.manage import connection_config, flag_connection
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.storage.repositories.erasures import (
    DONE,
    PENDING,
    SUPPRESSED,
    ErasureRecord,
    ErasureRepository,
    ExportState,
)

__all__ = [
    "ErasureOutcome",
    "ErasureRecord",
    "ErasureReport",
    "email_digest",
    "erasure_view",
    "forget",
    "lift_suppression",
    "list_erasures",
    "retry_pending_erasures",
]

log = logging.getLogger(__name__)

ConfigTuner = Callable[[ConnectionConfig], ConnectionConfig]
"""Adjusts a destination's connection config before use (tests: no real waiting)."""
ERASURE_ATTEMPTS = 3
"""Tries per destination request within one attempt: an erasure that fails stays pending and
is tried again later, so there is no point in waiting long now."""


@dataclass(frozen=True)
class ErasureOutcome:
    """What happened at one connection. ``deleted``: True when the destination deleted the
    contact, False when it had none, None while pending (``error`` says why)."""

    erasure_id: int
    connection: str
    status: str
    deleted: bool | None
    error: str | None
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id,
            "connection": self.connection,
            "status": self.status,
            "deleted": self.deleted,
            "error": self.error,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class ErasureReport:
    """The answer to :func:`forget`. ``email`` is masked."""

    email: str
    outcomes: tuple[ErasureOutcome, ...]
    exports: tuple[str, ...]
    rejects_removed: int
    cleared_locally: tuple[str, ...]

    @property
    def found(self) -> bool:
        """Whether any export's sync state held the person."""
        return bool(self.outcomes or self.cleared_locally)

    @property
    def pending(self) -> bool:
        """Whether some connection has not confirmed yet (it will be retried)."""
        return any(outcome.status == PENDING for outcome in self.outcomes)

    @property
    def message(self) -> str:
        if not self.found:
            text = f"{self.email} was not found in any export's sync state; nothing sent"
        elif self.pending:
            waiting = [o.connection for o in self.outcomes if o.status == PENDING]
            text = (
                f"{self.email}: the erasure is pending at {', '.join(waiting)}; it is retried "
                "until done (`segsync erasures retry`, or the scheduler of `segsync serve`)"
            )
        else:
            text = f"{self.email} was erased from every connection it was exported to"
        if self.rejects_removed:
            text += f"; {self.rejects_removed} set-aside run record(s) deleted"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "found": self.found,
            "pending": self.pending,
            "message": self.message,
            "exports": list(self.exports),
            "connections": [outcome.to_dict() for outcome in self.outcomes],
            "rejects_removed": self.rejects_removed,
            "cleared_locally": list(self.cleared_locally),
        }


def _address(email: str) -> str:
    normalised, reason = normalise_email(email)
    if normalised is None:
        raise InputError(f"email {mask_email(str(email))!r} is {reason}")
    return normalised


def _audit_requested(
    ctx: ServiceContext, session: Any, masked: str, summary: str, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        at=ctx.now(),
        actor=ctx.actor,
        action="erasure.requested",
        target_type="person",
        target=masked,
        summary=summary,
        details=details,
    )


def forget(ctx: ServiceContext, email: str, *, tune: ConfigTuner | None = None) -> ErasureReport:
    """Erase ``email`` from every connection it was exported to, and from the sync state.

    See the module docstring. Destinations that fail leave their erasure pending (reported,
    retried later); this never raises for them. ``tune`` adjusts each destination's connection
    config (tests: no real waiting between retries). ``InputError`` for an invalid email,
    ``PermissionDenied`` unless the actor is an administrator.
    """
    require(ctx.actor, Action.FORGET_PERSON)
    address = _address(email)
    masked = mask_email(address)
    with ctx.db.session() as session:
        repo = ErasureRepository(session)
        states = repo.exports_holding(address)
        rejects = repo.remove_rejects(address)
        repo.remove_change_record(address)
        orphans = [state for state in states if state.connection_id is None]
        repo.remove_sync_state(address, [state.export_id for state in orphans])
        by_connection: dict[int, list[ExportState]] = {}
        for state in states:
            if state.connection_id is not None:
                by_connection.setdefault(state.connection_id, []).append(state)
        names = repo.connection_names(by_connection)
        ids: list[int] = []
        for connection_id, held in sorted(by_connection.items()):
            erasure = repo.find_pending(address, connection_id) or repo.create(
                email=address,
                connection_id=connection_id,
                requested_by=ctx.actor.email,
                now=ctx.now(),
            )
            ids.append(erasure.id)
            exports = [state.export_name for state in held]
            _audit_requested(
                ctx,
                session,
                masked,
                f"Erasure of {masked} requested at connection {names[connection_id]!r}",
                {
                    "erasure_id": erasure.id,
                    "connection": names[connection_id],
                    "exports": exports,
                    "run_rejects_removed": rejects,
                },
            )
        if not by_connection:
            summary = f"Erasure of {masked} requested: "
            if orphans:
                summary += "only in the sync state of exports whose connection was removed; "
                summary += "cleared locally, nothing sent"
            else:
                summary += "not found in any export's sync state; nothing sent"
            _audit_requested(
                ctx,
                session,
                masked,
                summary,
                {
                    "connections": 0,
                    "cleared_locally": [state.export_name for state in orphans],
                    "run_rejects_removed": rejects,
                },
            )
        repo.suppress(email_digest(address), requested_by=ctx.actor.email, now=ctx.now())
    outcomes = _attempt(ctx, ids, tune)
    return ErasureReport(
        email=masked,
        outcomes=tuple(outcomes),
        exports=tuple(sorted({state.export_name for state in states})),
        rejects_removed=rejects,
        cleared_locally=tuple(state.export_name for state in orphans),
    )


def retry_pending_erasures(ctx: ServiceContext, *, tune: ConfigTuner | None = None) -> int:
    """Try every pending erasure again; return how many are done now. Administrators only
    (the scheduler acts as the local administrator)."""
    require(ctx.actor, Action.FORGET_PERSON)
    with ctx.db.session() as session:
        ids = ErasureRepository(session).pending_ids()
    outcomes = _attempt(ctx, ids, tune)
    return sum(1 for outcome in outcomes if outcome.status == DONE)


def list_erasures(ctx: ServiceContext, *, status: str | None = None) -> list[ErasureRecord]:
    """Erasure rows, newest first (``status``: ``pending`` or ``done`` only). Admins only."""
    require(ctx.actor, Action.FORGET_PERSON)
    if status is not None and status not in {PENDING, DONE, SUPPRESSED}:
        raise InputError(f"status {status!r} is not one of: {PENDING}, {DONE}, {SUPPRESSED}")
    with ctx.db.session() as session:
        return ErasureRepository(session).list(status=status)


def lift_suppression(ctx: ServiceContext, email: str) -> bool:
    """Let a forgotten person be exported again (they came back and agreed). Administrators
    only; audited. False when the person was not suppressed."""
    require(ctx.actor, Action.FORGET_PERSON)
    address = _address(email)
    masked = mask_email(address)
    with ctx.db.session() as session:
        lifted = ErasureRepository(session).lift(email_digest(address)) > 0
        if lifted:
            audit.record(
                session,
                at=ctx.now(),
                actor=ctx.actor,
                action="erasure.lifted",
                target_type="person",
                target=masked,
                summary=f"{masked} may be exported again (suppression after forget lifted)",
            )
    return lifted


def erasure_view(record: ErasureRecord) -> dict[str, Any]:
    """A row as shown to people: the email masked while pending, the digest once done."""
    shown = record.email if record.email.startswith("sha256:") else mask_email(record.email)
    return {
        "id": record.id,
        "email": shown,
        "connection": record.connection_name,
        "status": record.status,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "requested_by": record.requested_by,
        "requested_at": record.requested_at.isoformat(),
        "done_at": None if record.done_at is None else record.done_at.isoformat(),
    }


# ---------------------------------------------------------------- attempts


def _attempt(
    ctx: ServiceContext, ids: Sequence[int], tune: ConfigTuner | None
) -> list[ErasureOutcome]:
    if not ids:
        return []
    return asyncio.run(_attempt_all(ctx, ids, tune))


async def _attempt_all(
    ctx: ServiceContext, ids: Sequence[int], tune: ConfigTuner | None
) -> list[ErasureOutcome]:
    return [await _attempt_one(ctx, erasure_id, tune) for erasure_id in ids]


async def _attempt_one(
    ctx: ServiceContext, erasure_id: int, tune: ConfigTuner | None
) -> ErasureOutcome:
    with ctx.db.session() as session:
        record = ErasureRepository(session).get(erasure_id)
    connection = record.connection_name or f"connection {record.connection_id}"
    if record.status != PENDING or record.connection_id is None:
        return _outcome(record, connection, deleted=None)
    try:
        type_name, config = connection_config(ctx, record.connection_id)
        config = replace(config, max_attempts=min(config.max_attempts, ERASURE_ATTEMPTS))
        if tune is not None:
            config = tune(config)
        async with create_destination(type_name, config) as destination:
            deleted = await destination.forget(record.email)
    except SegsyncError as err:
        if isinstance(err, AuthenticationFailed):
            flag_connection(ctx, record.connection_id, HEALTH_KEY_REJECTED, err.message)
        problem = audit.mask_emails(err.message)
        log.warning(
            "erasure %s of %s at %r is still pending: %s",
            record.id,
            mask_email(record.email),
            connection,
            problem,
        )
        with ctx.db.session() as session:
            repo = ErasureRepository(session)
            repo.record_failure(record.id, problem)
            return _outcome(repo.get(record.id), connection, deleted=None)
    return _complete(ctx, record, connection, deleted)


def _complete(
    ctx: ServiceContext, record: ErasureRecord, connection: str, deleted: bool
) -> ErasureOutcome:
    assert record.connection_id is not None
    masked = mask_email(record.email)
    with ctx.db.session() as session:
        repo = ErasureRepository(session)
        held = [
            s for s in repo.exports_holding(record.email) if s.connection_id == record.connection_id
        ]
        removed = repo.remove_sync_state(record.email, [state.export_id for state in held])
        if repo.complete(record.id, email_digest=email_digest(record.email), now=ctx.now()):
            what = "deleted the contact" if deleted else "had no such contact"
            audit.record(
                session,
                at=ctx.now(),
                actor=ctx.actor,
                action="erasure.completed",
                target_type="person",
                target=masked,
                summary=(
                    f"Erased {masked} at connection {connection!r} (the destination {what}); "
                    f"removed from the sync state of {len(held)} export(s)"
                ),
                details={
                    "erasure_id": record.id,
                    "connection": connection,
                    "deleted_at_destination": deleted,
                    "exports": [state.export_name for state in held],
                    "sync_contacts_removed": removed.contacts,
                    "memberships_removed": removed.memberships,
                },
            )
        final = repo.get(record.id)
    log.info("erasure %s of %s at %r done", record.id, masked, connection)
    return _outcome(final, connection, deleted=deleted)


def _outcome(record: ErasureRecord, connection: str, *, deleted: bool | None) -> ErasureOutcome:
    return ErasureOutcome(
        erasure_id=record.id,
        connection=connection,
        status=record.status,
        deleted=deleted if record.status == DONE else None,
        error=record.last_error if record.status == PENDING else None,
        attempts=record.attempts,
    )
