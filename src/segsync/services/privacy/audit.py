"""The audit trail (P3): record events inside other use cases' transactions, read and export them.

Every service that changes something calls :func:`record` with the session of its own unit of
work, so the change and its audit event commit together (or neither does)::

    with ctx.db.session() as session:
        ConnectionRepository(session).update(...)
        audit.record(session, at=ctx.now(), actor=ctx.actor, action="connection.edited",
                     target_type="connection", target=name, summary="...", details={...})

What is kept: ``actor`` is the acting user's email (``local-admin`` for the CLI's local
administrator) and ``target`` the name of what was changed, both in full — the trail exists to
say who changed what. Any other email in ``summary`` or in ``details`` is masked
(``j•••@e•••.com``, P5), and details may not carry secrets: keys named like a secret are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from segsync.domain.emails import mask_email
from segsync.domain.permissions import Action, Actor, require
from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.storage.repositories.audit import AuditRecord, AuditRepository

__all__ = ["AuditRecord", "export_jsonl", "list_events", "mask_emails", "parse_since", "record"]

_EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+\.[^\s@'\"<>(),;:]+")
_SECRET_KEY_NAMES = re.compile(r"api_?key|password|secret|token", re.I)
# Keys about a secret, not holding one.
_SAFE_SUFFIXES = ("_hint", "_ref", "_id", "_name", "_source", "_count")
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.I)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def mask_emails(text: str) -> str:
    """Every email-looking part of ``text`` masked (P5)."""
    return _EMAIL.sub(lambda match: mask_email(match.group(0)), text)


def _clean(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return mask_emails(value)
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if _SECRET_KEY_NAMES.search(name) and not name.lower().endswith(_SAFE_SUFFIXES):
                raise ValueError(f"audit details may not carry secrets: {path}{key}")
            cleaned[name] = _clean(item, f"{path}{key}.")
        return cleaned
    if isinstance(value, list | tuple):
        return [_clean(item, path) for item in value]
    return value


def record(
    session: Session,
    *,
    at: datetime,
    actor: Actor | str,
    action: str,
    target_type: str,
    target: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one event in ``session`` (it commits with the caller's unit of work).

    ``action`` is ``<target_type>.<verb>`` in the past tense (``connection.added``,
    ``consent.given``, ``user.role_changed``, ``export.run``...). ``summary`` is one sentence a
    person reads; ``details`` JSON-serialisable facts. Emails in both are masked; a details key
    that names a secret (``api_key``, ``password``, ``token``...) is a programming error.
    """
    who = actor.email if isinstance(actor, Actor) else actor
    return AuditRepository(session).add(
        at=at,
        actor=who,
        action=action,
        target_type=target_type,
        target=target,
        summary=mask_emails(summary),
        details=_clean(details or {}, ""),
    )


def list_events(
    ctx: ServiceContext, since: datetime | None = None, limit: int | None = None
) -> list[AuditRecord]:
    """Events at or after ``since``, oldest first (the newest ``limit`` if given). Admins only."""
    require(ctx.actor, Action.READ_AUDIT)
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    with ctx.db.session() as session:
        return AuditRepository(session).list(since=since, limit=limit)


@contextmanager
def _open_output(destination: Path | IO[str]) -> Iterator[IO[str]]:
    if isinstance(destination, Path):
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            handle = destination.open("w", encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot write the audit export to {destination}: {err}") from None
        with handle:
            yield handle
    else:
        yield destination


def export_jsonl(
    ctx: ServiceContext, destination: Path | IO[str], since: datetime | None = None
) -> int:
    """Write every event at or after ``since`` as JSON lines, oldest first; return how many.

    ``destination`` is a file path (created or replaced) or an open text stream. Admins only.
    """
    require(ctx.actor, Action.READ_AUDIT)
    count = 0
    with _open_output(destination) as out, ctx.db.session() as session:
        for event in AuditRepository(session).iterate(since=since):
            out.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def parse_since(text: str, now: datetime) -> datetime:
    """A ``--since`` value: relative (``30m``, ``24h``, ``7d``, ``2w`` before ``now``), an ISO
    date (midnight UTC) or an ISO date-time (UTC when it has no offset)."""
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"--since {text!r} is neither a relative time (30m, 24h, 7d, 2w) nor an ISO date "
            "or date-time (2025-06-30, 2025-06-30T08:00:00+02:00)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
