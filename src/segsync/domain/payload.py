"""One person's payload: mapped values converted to what their targets take, and its hash.

:func:`convert_value` turns one attribute value into what its target takes, JSON-ready (rules in
:mod:`segsync.domain.mapping`); :func:`payload_hash` is what the sync state remembers of a
contact, so its canonical form must never change (a change would resend every contact).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from segsync.domain.fields import Target
from segsync.errors import RecordRejected


@dataclass(frozen=True)
class ContactPayload:
    """One person's mapped values: the raw email, standard ``fields`` and ``custom`` fields in
    write shape (``{"integer--Review--Rating": 5}``), JSON-ready."""

    email_raw: object
    fields: dict[str, Any]
    custom: dict[str, Any]


def is_missing(value: object) -> bool:
    # None, NaN and pandas' NaT (the last two are unequal to themselves).
    return value is None or (not isinstance(value, str) and value != value)


def _reject(email_raw: object, target: Target, why: str) -> RecordRejected:
    return RecordRejected(f"{target.spec}: {why}", key=str(email_raw))


def _as_whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | decimal.Decimal) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _as_date_text(value: object) -> str | None:
    if isinstance(value, str):
        try:
            value = (
                dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
            )
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def convert_value(value: object, target: Target, email_raw: object = None) -> Any:
    """Convert one non-empty attribute value to what ``target`` takes, JSON-ready.

    Raises :class:`RecordRejected` (key: the raw email) when this value cannot be sent.
    """
    kind = target.value_type
    if kind == "string":
        if isinstance(value, str):
            return value
        whole = _as_whole(value)
        if whole is not None:
            return str(whole)
        if isinstance(value, float | decimal.Decimal) and math.isfinite(value):
            return str(value)
        raise _reject(email_raw, target, f"cannot send {value!r} as text")
    if kind == "integer":
        whole = _as_whole(value)
        if whole is None:
            raise _reject(email_raw, target, f"needs a whole number, got {value!r}")
        return whole
    if kind == "float":
        if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
        raise _reject(email_raw, target, f"needs a finite number, got {value!r}")
    if kind == "date":
        text = _as_date_text(value)
        if text is None:
            raise _reject(email_raw, target, f"needs a date, got {value!r}")
        return text
    if isinstance(value, bool):
        return value
    raise _reject(email_raw, target, f"needs true or false, got {value!r}")


def payload_hash(
    fields: Mapping[str, Any], custom: Mapping[str, Any], *, plain: bool = False
) -> str:
    """SHA-256 (hex) of the canonical JSON of a payload: equal for equal payloads, in any key
    order, in any process, on any run. ``plain``: as for :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(fields, custom, plain=plain)).hexdigest()


def canonical_json(
    fields: Mapping[str, Any], custom: Mapping[str, Any], *, plain: bool = False
) -> bytes:
    """The canonical JSON (UTF-8) of a payload: ``{"custom": …, "fields": …}`` with sorted keys,
    no spaces, non-ASCII characters as they are — exactly what the standard library's
    ``json.dumps(…, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes.

    orjson writes the same bytes for text, whole numbers, booleans and nulls, about ten times
    faster (it is every run's per-contact cost); floats are written differently (``1e16`` where
    the standard library writes ``1e+16``), so a payload holding one, or anything else orjson
    would write differently or refuse, goes through the standard library. ``plain=True`` says
    the caller knows every value is text, a whole number, a boolean or null, with text keys (a
    mapping without float targets), so the check is skipped.
    tests/domain/test_payload_hash.py holds the two to the same bytes."""
    if plain or (_plain(fields) and _plain(custom)):
        try:
            return orjson.dumps({"custom": custom, "fields": fields}, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass  # an integer beyond 64 bits, a lone surrogate: the standard library decides
    canonical = json.dumps(
        {"custom": custom, "fields": fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return canonical.encode("utf-8")


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _plain(values: Mapping[str, Any]) -> bool:
    """Whether every value is text, a whole number, a boolean or null (a key that is not text
    makes orjson refuse, and the standard library decides)."""
    return set(map(type, values.values())) <= _PLAIN_TYPES
