"""Bulk upsert with isolation of refused contacts: one bad email never sinks its batch.

Autopilot answers a ``POST /contacts`` holding refused addresses with one 400 for the whole
request, e.g. ``{"message": "Rejected email address(es): a@x.org, b@y.org"}``, and stores
nothing. So:

1. the batch's emails named in the message (or contacts named by position, ``contacts[3]``)
   are rejected with that message as their reason, and the rest are sent again;
2. if the message names none of them, the batch is split in halves and each half sent on its
   own, down to single contacts, which are then rejected with the API's message
   (at most 2n - 1 requests for n contacts, only when the API does not say which);
3. a 400 about the request's shape rather than its contacts (no key header, not a list, over
   100, unreadable JSON) is a segsync bug: :class:`~segsync.errors.FatalError`, no bisection;
4. a 400 whose message names a list id the request carries (``_autopilot_list``) says that
   list does not exist (deleted by hand): :class:`~segsync.errors.UnknownList`, no contact is
   refused for it (the run re-creates the list and sends again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from segsync.destinations.autopilot.client import AutopilotClient, Reply, unexpected
from segsync.destinations.autopilot.contact import contact_json
from segsync.destinations.base import BatchResult, RecordOutcome, UpsertItem
from segsync.errors import FatalError, UnknownList

_EMAILISH = re.compile(r"[^\s,;<>()\[\]{}\"]+@[^\s,;<>()\[\]{}\"]+")
_TRIM = ".'`:"
_POSITION = re.compile(r"contacts\[(\d+)\]")
_SHAPE_ERRORS = re.compile(
    r"autopilotapikey|json|more than 100|at most 100|too many contacts|must be (a|an) (list|array)"
    r"|contacts.*(list|array)",
    re.IGNORECASE,
)


def named_emails(message: str, emails: Sequence[str]) -> set[str]:
    """Those of ``emails`` (compared case-insensitively) that ``message`` names."""
    tokens = {token.strip(_TRIM).lower() for token in _EMAILISH.findall(message)}
    return {email for email in emails if email.lower() in tokens}


def named_positions(message: str, size: int) -> set[int]:
    """Positions ``i < size`` the message names as ``contacts[i]``."""
    return {int(n) for n in _POSITION.findall(message) if int(n) < size}


def named_list(message: str, list_ids: Sequence[str | None]) -> str | None:
    """The first of ``list_ids`` that ``message`` names, if any."""
    return next((lid for lid in list_ids if lid and lid in message), None)


def is_request_shape_error(message: str) -> bool:
    return bool(_SHAPE_ERRORS.search(message))


async def upsert_isolating(client: AutopilotClient, items: Sequence[UpsertItem]) -> BatchResult:
    """Upsert ``items`` (≤ 100, distinct emails) and return one outcome per item, in order."""
    contacts = [contact_json(item) for item in items]
    outcomes: dict[int, RecordOutcome] = {}
    requests = 0
    pending: list[list[int]] = [list(range(len(items)))] if items else []
    first = True
    while pending:
        group = pending.pop()
        reply = await client.upsert_contacts([contacts[i] for i in group])
        requests += reply.attempts
        if reply.ok:
            ids = _contact_ids(reply, [items[i].email for i in group])
            for i in group:
                outcomes[i] = RecordOutcome(items[i].email, True, ids.get(items[i].email.lower()))
            first = False
            continue
        if reply.status != 400:
            raise unexpected(reply, "POST /contacts")
        reason = reply.message or "Autopilot refused the contact (400 Bad Request)"
        gone = named_list(reason, [items[i].list_id for i in group])
        if gone is not None:
            raise UnknownList(gone, f"Autopilot has no list {gone} (deleted?): {reason}")
        named = named_emails(reason, [items[i].email for i in group])
        bad = {i for i in group if items[i].email in named}
        bad |= {group[p] for p in named_positions(reason, len(group))}
        if bad:
            rest = [i for i in group if i not in bad]
            for i in bad:
                outcomes[i] = RecordOutcome(items[i].email, False, reason=reason)
            if rest:
                pending.append(rest)
        elif first and is_request_shape_error(reason):
            raise FatalError(
                f"Autopilot could not read the bulk upsert segsync sent (400: {reason}); "
                "this is a bug in segsync, please report it with this message"
            )
        elif len(group) == 1:
            outcomes[group[0]] = RecordOutcome(items[group[0]].email, False, reason=reason)
        else:
            middle = len(group) // 2
            pending.extend([group[middle:], group[:middle]])
        first = False
    return BatchResult([outcomes[i] for i in range(len(items))], requests)


def _contact_ids(reply: Reply, emails: list[str]) -> dict[str, str]:
    """Lower-cased email → contact id, from ``email_contact_map`` or, failing that, from
    ``contact_ids`` when it lines up with the request."""
    data: Any = reply.data if isinstance(reply.data, dict) else {}
    mapping = data.get("email_contact_map")
    ids: dict[str, str] = {}
    if isinstance(mapping, dict):
        ids = {str(k).lower(): str(v) for k, v in mapping.items()}
    positional = data.get("contact_ids")
    if isinstance(positional, list) and len(positional) == len(emails):
        for email, contact_id in zip(emails, positional, strict=True):
            ids.setdefault(email.lower(), str(contact_id))
    return ids
