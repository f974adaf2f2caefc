"""Notifications (T4): decide when an export's state changed, keep the notice, deliver it.

The run engine calls :func:`on_run_finished` once a run has ended. An export's *state* is the
outcome of its latest real run that ended Successful or Failure — derived from the run history,
not kept separately, so it cannot drift and two runs ending close together are each compared
with the run that really ended before them. Skipped, Canceled and dry runs do not change it.
:func:`segsync.domain.notices.notice_for_transition` says which notice (if any) is due.

A due notice is stored (``notifications`` table, for the web UI) and then delivered to every
configured channel
(:func:`segsync.services.notifications.channels.channels_from_settings`; email goes to the
administrators when ``SEGSYNC_SMTP_RECIPIENTS`` is empty). Delivery never raises into the caller:
each channel's outcome is kept in ``delivered`` and a failed channel is retried later by
:func:`redeliver_pending` (the scheduler loop calls it), with growing pauses, until it succeeds
or :data:`MAX_DELIVERY_ATTEMPTS` attempts were made.

Delivery states per channel: ``sending`` (claimed by a process; a claim older than
:data:`STALE_CLAIM` is taken to be lost and retried), ``ok``, ``error`` (retried from
``next_attempt_at`` on), ``abandoned`` (gave up). A claim is a compare-and-swap on the stored
JSON, so two processes never deliver one notice twice.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from segsync.domain.notices import Notice, NoticeKind, Outcome, notice_for_transition
from segsync.domain.permissions import Role
from segsync.domain.runs import RunStatus
from segsync.errors import FatalError, InputError, PermissionDenied, SegsyncError
from segsync.services.context import ServiceContext
from segsync.services.notifications.channels import Channel, channels_from_settings
from segsync.services.privacy.audit import mask_emails
from segsync.storage.repositories.accounts import UserRepository
from segsync.storage.repositories.notifications import (
    Delivery,
    NotificationRecord,
    NotificationRepository,
)

__all__ = [
    "MAX_DELIVERY_ATTEMPTS",
    "NotificationRecord",
    "configured_channels",
    "list_notifications",
    "mark_read",
    "on_run_finished",
    "redeliver_pending",
]

log = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 10
"""Deliveries tried per channel and notice (the first included) before it is ``abandoned``."""
STALE_CLAIM = timedelta(minutes=15)
"""A ``sending`` claim older than this was lost (the process died): the channel is retried."""
_FIRST_PAUSE = timedelta(minutes=1)
_MAX_PAUSE = timedelta(hours=1)
_OUTCOMES: dict[RunStatus, Outcome] = {RunStatus.SUCCESSFUL: "ok", RunStatus.FAILURE: "failed"}
_CONFIGURATION = "configuration"
"""Pseudo-channel recorded when the channel settings themselves are wrong."""


# ---------------------------------------------------------------- the hook


def on_run_finished(
    ctx: ServiceContext,
    *,
    export_id: int,
    export_name: str,
    run_id: int,
    status: str,
    message: str | None,
    retried_transient: bool = False,
    channels: Sequence[Channel] | None = None,
) -> NotificationRecord | None:
    """Store and deliver the notice this run's end calls for, if any; return it (else None).

    ``status`` is the run's final :class:`~segsync.domain.runs.RunStatus` value. Only
    ``successful`` and ``failure`` can change the export's state; a ``failure`` is a failure for
    good (retries exhausted, or fatal). ``retried_transient`` says the run needed retries
    that succeeded: it is informational — such a run is a success like any other and never
    notifies on its own. ``held`` (the blast-radius hold) notifies every held run, whatever
    the export's state, and leaves that state alone. Calling this twice for one run notifies
    at most once. Dry runs never
    notify. ``channels`` overrides the configured channels (tests).

    Never raises because of delivery: failed channels are kept for :func:`redeliver_pending`.

    Call it after the run's final status is committed and outside any open session: it locks
    the run row (Postgres) and writes in its own transaction. It delivers synchronously (SMTP,
    webhook with backoff), so from async code call it in a worker thread.
    """
    try:
        final = RunStatus(status)
    except ValueError:
        raise InputError(f"status {status!r} is not a run status") from None
    if final not in _OUTCOMES and final is not RunStatus.HELD:
        return None
    now = ctx.now()
    with ctx.db.session() as session:
        repo = NotificationRepository(session)
        facts = repo.run_facts(run_id, lock=True)
        if facts is not None and facts.dry_run:
            return None
        if repo.for_run(run_id) is not None:
            return None
        kind: NoticeKind | None = NoticeKind.EXPORT_HELD
        if final is not RunStatus.HELD:  # a held run notifies every time, like a failure
            ended = facts.ended_at if facts is not None and facts.status.is_final else None
            previous = repo.previous_outcome(export_id, run_id, ended_before=ended)
            kind = notice_for_transition(previous, _OUTCOMES[final])
        if kind is None:
            if retried_transient:
                log.info("run %s of export %r succeeded after retries", run_id, export_name)
            return None
        targets, problem = _channels(ctx, session, channels)
        delivered = {channel.name: _sending(now) for channel in targets}
        if problem is not None:
            delivered[_CONFIGURATION] = _failed({}, problem, now, fatal=True)
        record = repo.add(
            at=now,
            kind=kind.value,
            export_id=export_id,
            export_name=export_name,
            run_id=run_id,
            message=message or _default_message(kind),
            delivered=delivered,
        )
    log.info("notice %s for export %r (run %s)", kind.value, export_name, run_id)
    return _deliver(ctx, record, targets)


def _default_message(kind: NoticeKind) -> str:
    if kind is NoticeKind.EXPORT_FAILED:
        return "The run ended in Failure."
    if kind is NoticeKind.EXPORT_HELD:
        return "The run was held: nothing was sent."
    return "The run ended Successful."


# ---------------------------------------------------------------- channels


def configured_channels(ctx: ServiceContext) -> list[Channel]:
    """The channels the settings turn on, email addressed to the administrators when
    ``SEGSYNC_SMTP_RECIPIENTS`` is empty. ``InputError`` when the settings are wrong."""
    with ctx.db.session() as session:
        return channels_from_settings(ctx.settings, admin_emails=_admin_emails(session))


def _admin_emails(session: Session) -> list[str]:
    users = UserRepository(session).list_active()
    return [user.email for user in users if user.role == Role.ADMINISTRATOR.value]


def _channels(
    ctx: ServiceContext, session: Session, override: Sequence[Channel] | None
) -> tuple[list[Channel], str | None]:
    if override is not None:
        return list(override), None
    try:
        return channels_from_settings(ctx.settings, admin_emails=_admin_emails(session)), None
    except SegsyncError as err:
        log.warning("notification channels are misconfigured: %s", mask_emails(err.message))
        return [], err.message


# ---------------------------------------------------------------- delivery


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _sending(now: datetime, previous: Delivery | None = None) -> Delivery:
    attempts = int((previous or {}).get("attempts", 0))
    return {"status": "sending", "since": _iso(now), "attempts": attempts}


def _failed(claim: Delivery, error: str, now: datetime, *, fatal: bool) -> Delivery:
    attempts = int(claim.get("attempts", 0)) + 1
    if attempts >= MAX_DELIVERY_ATTEMPTS:
        return {"status": "abandoned", "at": _iso(now), "attempts": attempts, "error": error}
    pause = min(_MAX_PAUSE, _FIRST_PAUSE * 2 ** (attempts - 1))
    return {
        "status": "error",
        "at": _iso(now),
        "attempts": attempts,
        "error": error,
        "fatal": fatal,
        "next_attempt_at": _iso(now + pause),
    }


def _notice(record: NotificationRecord) -> Notice:
    return Notice(
        kind=NoticeKind(record.kind),
        export_name=record.export_name,
        run_id=record.run_id if record.run_id is not None else "-",
        message=record.message,
        occurred_at=_utc(record.at),
    )


def _deliver(
    ctx: ServiceContext, record: NotificationRecord, claimed: Iterable[Channel]
) -> NotificationRecord:
    """Send ``record`` to the channels this process claimed and store each outcome."""
    notice = _notice(record)
    results: dict[str, Delivery] = {}
    for channel in claimed:
        claim = record.delivered.get(channel.name, {})
        try:
            channel.send(notice)
        except SegsyncError as err:
            text = mask_emails(err.message)
            log.warning(
                "notice %s for %r not delivered by %s: %s",
                record.kind,
                record.export_name,
                channel.name,
                text,
            )
            fatal = isinstance(err, FatalError)
            results[channel.name] = _failed(claim, text, ctx.now(), fatal=fatal)
        except Exception as err:  # a channel bug must not reach the run engine
            text = mask_emails(f"{type(err).__name__}: {err}")
            log.exception("notice delivery by %s crashed", channel.name)
            results[channel.name] = _failed(claim, text, ctx.now(), fatal=True)
        else:
            attempts = int(claim.get("attempts", 0)) + 1
            results[channel.name] = {"status": "ok", "at": _iso(ctx.now()), "attempts": attempts}
    return _store_results(ctx, record.id, results)


def _store_results(
    ctx: ServiceContext, notification_id: int, results: dict[str, Delivery]
) -> NotificationRecord:
    while True:
        with ctx.db.session() as session:
            repo = NotificationRepository(session)
            current = repo.get(notification_id)
            if not results:
                return current
            updated = {**current.delivered, **results}
            if repo.swap_delivered(notification_id, current.delivered, updated):
                return repo.get(notification_id)


def _due(delivery: Delivery, now: datetime) -> bool:
    status = delivery.get("status")
    try:
        if status == "error":
            return _utc(datetime.fromisoformat(str(delivery["next_attempt_at"]))) <= now
        if status == "sending":
            return _utc(datetime.fromisoformat(str(delivery["since"]))) + STALE_CLAIM <= now
    except (KeyError, ValueError):
        return True
    return False


def redeliver_pending(ctx: ServiceContext, *, channels: Sequence[Channel] | None = None) -> int:
    """Deliver again every channel whose earlier delivery failed (and is due) or was lost;
    return how many deliveries succeeded now. Safe to call from several processes.

    Channels are those configured now (``channels`` overrides, for tests): a channel that was
    removed from the settings is left as it is; when the channel settings were wrong at the
    time of the notice, the notice goes to every channel configured now."""
    now = _utc(ctx.now())
    if channels is not None:
        current = list(channels)
    else:
        try:
            current = configured_channels(ctx)
        except SegsyncError as err:
            log.warning("notification channels are misconfigured: %s", mask_emails(err.message))
            return 0
    by_name = {channel.name: channel for channel in current}
    delivered = 0
    with ctx.db.session() as session:
        pending = NotificationRepository(session).with_unfinished_delivery()
    for record in pending:
        names = [n for n, d in record.delivered.items() if n in by_name and _due(d, now)]
        retry_all = _CONFIGURATION in record.delivered and _due(
            record.delivered[_CONFIGURATION], now
        )
        if retry_all:
            names = sorted(set(names) | {n for n in by_name if n not in record.delivered})
        if not names:
            continue
        claim = dict(record.delivered)
        for name in names:
            claim[name] = _sending(now, record.delivered.get(name))
        if retry_all:
            claim.pop(_CONFIGURATION, None)
        with ctx.db.session() as session:
            if not NotificationRepository(session).swap_delivered(
                record.id, record.delivered, claim
            ):
                continue  # another process claimed it first
        claimed = dataclasses.replace(record, delivered=claim)
        result = _deliver(ctx, claimed, [by_name[name] for name in names])
        delivered += sum(1 for name in names if result.delivered[name].get("status") == "ok")
    return delivered


# ---------------------------------------------------------------- reading


def _require_admin(ctx: ServiceContext) -> None:
    if ctx.actor.role is not Role.ADMINISTRATOR:
        raise PermissionDenied("only administrators read and manage notifications")


def list_notifications(
    ctx: ServiceContext, *, unread_only: bool = False, limit: int | None = None
) -> list[NotificationRecord]:
    """Stored notices, newest first (only unread ones with ``unread_only``). Admins only."""
    _require_admin(ctx)
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    with ctx.db.session() as session:
        return NotificationRepository(session).list(unread_only=unread_only, limit=limit)


def mark_read(ctx: ServiceContext, ids: Iterable[int] | Literal["all"]) -> int:
    """Mark notices read: the given ids, or ``"all"`` unread ones; return how many changed
    (already read ones do not count). ``NotFound`` names unknown ids. Admins only."""
    _require_admin(ctx)
    wanted = None if ids == "all" else list(ids)
    if wanted is not None and not wanted:
        raise InputError("give at least one notification id, or all")
    with ctx.db.session() as session:
        return NotificationRepository(session).mark_read(wanted, now=ctx.now())
