"""An :class:`UpsertItem` as what Ortto receives: the person of a ``POST /v1/person/merge`` and,
when the item names an audience, its entry of a ``PUT /v1/audience/subscribe``. The one
serializer of both ``upsert_batch`` and ``preview``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from segsync.destinations.autopilot.contact import json_value
from segsync.destinations.base import UpsertItem
from segsync.destinations.ortto.fields import ORTTO_FIELDS
from segsync.errors import InputError

_FIELD_ID = re.compile(r"^[a-z]{3}:(cm)?:[a-z0-9][a-z0-9-]*$")
_CUSTOM = re.compile(r"^(str|int|bol|dtz):cm:[a-z0-9][a-z0-9-]*$")
_NEVER = frozenset({"bol::p", "bol::sp", "str::email"})
_STANDARD = frozenset(f.key for f in ORTTO_FIELDS.standard) | {"str::first", "str::last"}


def person_json(item: UpsertItem) -> dict[str, Any]:
    """``{"fields": {"str::email": ..., ...}}``: InputError for a field that must not be sent."""
    fields: dict[str, Any] = {"str::email": item.email}
    for key, value in item.fields.items():
        _check_standard(key)
        sent = json_value(value, key)
        fields[key] = {"name": sent} if key.startswith("geo::") and sent is not None else sent
    for key, value in item.custom.items():
        if not _CUSTOM.match(key):
            raise InputError(
                f"the custom field id {key!r} is not in Ortto's shape '<type>:cm:<name>' with a "
                "type of str, int, bol or dtz and a lower-case name"
            )
        fields[key] = json_value(value, key)
    return {"fields": fields}


def membership_json(item: UpsertItem) -> dict[str, Any] | None:
    """The item's entry of an audience subscription, or None when it names no audience."""
    if not item.list_id:
        return None
    return {"audience_id": item.list_id, "email": item.email, "subscribed": True}


def sent_json(item: UpsertItem) -> dict[str, Any]:
    """Everything sent for ``item`` (what ``preview`` shows): the person and the subscription."""
    sent: dict[str, Any] = {"person": person_json(item)}
    membership = membership_json(item)
    if membership is not None:
        sent["subscription"] = membership
    return sent


def _check_standard(key: str) -> None:
    if key in _NEVER:
        raise InputError(
            f"the field {key!r} cannot be mapped: segsync sets the email itself and never sends "
            "Ortto's permission fields (they could re-subscribe people who unsubscribed)"
        )
    if key not in _STANDARD or not _FIELD_ID.match(key):
        raise InputError(f"{key!r} is not an Ortto person field segsync can send")


def audiences_of(items: list[UpsertItem]) -> Mapping[str, list[str]]:
    """The emails to subscribe, by audience id, in the items' order."""
    grouped: dict[str, list[str]] = {}
    for item in items:
        if item.list_id:
            grouped.setdefault(item.list_id, []).append(item.email)
    return grouped
