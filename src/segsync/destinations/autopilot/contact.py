"""An :class:`UpsertItem` as an Autopilot contact object (the write shape): the one serializer
of both ``upsert_batch`` and ``preview``.

``{"Email": email, **fields, "custom": {...}, "_autopilot_list": list_id}`` — ``custom`` only when
there are custom fields, ``_autopilot_list`` only when a list is set, and always *inside* the
contact (at the top level of the request Autopilot silently ignores it).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.destinations.base import UpsertItem
from segsync.errors import InputError

CUSTOM_TYPES = frozenset(AUTOPILOT_FIELDS.custom_types)

# Keys the caller may not set through ``fields``: the email and the custom map are built here;
# ``unsubscribed`` would re-subscribe people who unsubscribed in Autopilot (never send it);
# underscore keys (_NewEmail, _autopilot_list, ...) and ``notify`` change what a save does.
_RESERVED = frozenset({"email", "custom", "custom_fields", "unsubscribed", "notify"})


def contact_json(item: UpsertItem) -> dict[str, Any]:
    """The contact object for ``item``; raises InputError for a field that must not be sent."""
    contact: dict[str, Any] = {"Email": item.email}
    for name, value in item.fields.items():
        _check_field(name)
        contact[name] = json_value(value, name)
    if item.custom:
        custom: dict[str, Any] = {}
        for key, value in item.custom.items():
            _check_custom_key(key)
            custom[key] = json_value(value, key)
        contact["custom"] = custom
    if item.list_id:
        contact["_autopilot_list"] = item.list_id
    return contact


@functools.cache  # a mapping's few names, checked once per process instead of once per contact
def _check_field(name: str) -> None:
    if name.lower() == "unsubscribed":
        raise InputError(
            f"the field {name!r} may not be sent to Autopilot: it would re-subscribe people "
            "who unsubscribed there; remove it from the export's mapping"
        )
    if name.lower() in _RESERVED or name.startswith("_"):
        raise InputError(
            f"the field {name!r} cannot be mapped: segsync sets it itself or it changes how "
            "Autopilot saves a contact; map to another field"
        )


@functools.cache
def _check_custom_key(key: str) -> None:
    kind, sep, name = key.partition("--")
    if not sep or kind not in CUSTOM_TYPES or not name:
        raise InputError(
            f"the custom field key {key!r} is not in Autopilot's write shape '<type>--<Name>' "
            f"with a type of {', '.join(sorted(CUSTOM_TYPES))}"
        )


_AS_IS = frozenset({str, bool, int})
"""The types sent as they are, looked up first: every contact's every field comes here."""


def json_value(value: Any, name: str) -> Any:
    """``value`` as JSON: dates in ISO-8601, decimals as numbers; NaN and infinities refused."""
    if value is None or type(value) in _AS_IS or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise InputError(f"the value of {name!r} is {value}, which JSON cannot carry")
        return int(number) if isinstance(value, Decimal) and number.is_integer() else number
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        raise InputError(f"the value of {name!r} is a {type(value).__name__}; map a single value")
    return str(value)
