"""An export's data matching (E1, E2): which profile attribute fills which Autopilot field.

Targets are Autopilot's standard contact fields (:data:`STANDARD_FIELDS`) or custom fields written
``custom:<type>:<Name>`` with type ``string``, ``integer``, ``float``, ``date`` or ``boolean``.
``Email`` is the email mapping itself; ``FirstName``/``LastName`` have their own options;
``unsubscribed`` and every ``_``-prefixed control key can never be mapped (X13).

Which attribute types fit which targets (``validate_mapping``), our decisions:

==================================  ========================================================
target                              attribute types
==================================  ========================================================
email                               text
standard text fields, first/last    text, or number (sent as text: whole numbers without
name, ``custom:string``             ".0" — postal codes and phone numbers are often numeric)
``NumberOfEmployees``,              number; each value must be a whole number, checked per
``custom:integer``                  value when the contact is built (a fraction rejects that
                                    contact with the reason, the run goes on)
``custom:float``                    number
``custom:date``                     date (dates as ``YYYY-MM-DD``, timestamps in UTC as
                                    ISO-8601 with ``Z``; naive timestamps are taken as UTC)
``custom:boolean``                  boolean
==================================  ========================================================

Dates and booleans are refused for text targets: map them to a custom date/boolean field.

Empty values (``None``/NaN) are **omitted** from the contact, so Autopilot keeps what it had: a
cleared attribute is not cleared in Autopilot (omitting is the only safe choice, since Autopilot
has no "unset" and sending ``""`` to a typed field would be refused). Empty text ``""`` is sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.catalog import AttrType
from segsync.errors import InputError, RecordRejected

#: Autopilot's standard contact fields that a mapping may target (FirstName/LastName through
#: their own options). ``Email`` and ``unsubscribed`` are deliberately absent.
STANDARD_FIELDS: tuple[str, ...] = (
    "Salutation",
    "Company",
    "NumberOfEmployees",
    "Title",
    "Industry",
    "Phone",
    "MobilePhone",
    "Fax",
    "Website",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "owner_name",
    "LeadSource",
    "Status",
    "LinkedIn",
    "Twitter",
)
INTEGER_STANDARD_FIELDS = frozenset({"NumberOfEmployees"})
CUSTOM_TYPES: tuple[str, ...] = ("string", "integer", "float", "date", "boolean")
MAX_CUSTOM_NAME = 100

_BY_LOWER = {name.lower(): name for name in (*STANDARD_FIELDS, "FirstName", "LastName")}
_CONTROL_KEYS = frozenset({"notify"})


@dataclass(frozen=True)
class Target:
    """A parsed target: ``kind`` is ``"standard"`` (``name`` is the PascalCase field) or
    ``"custom"`` (``ctype`` is its type)."""

    kind: str
    name: str
    ctype: str = "string"

    @property
    def spec(self) -> str:
        """The canonical text form: ``"Company"`` or ``"custom:integer:Review Rating"``."""
        return self.name if self.kind == "standard" else f"custom:{self.ctype}:{self.name}"

    @property
    def write_key(self) -> str:
        """The key in the contact (standard) or in its ``custom`` object (custom fields)."""
        if self.kind == "standard":
            return self.name
        return f"{self.ctype}--{self.name.replace(' ', '--')}"

    @property
    def value_type(self) -> str:
        """``string``, ``integer``, ``float``, ``date`` or ``boolean``: what values it takes."""
        if self.kind == "standard":
            return "integer" if self.name in INTEGER_STANDARD_FIELDS else "string"
        return self.ctype


def parse_target(text: str) -> Target:
    """Parse a target of ``--map``; raise :class:`InputError` saying what is wrong."""
    raw = text.strip()
    if raw.lower().startswith("custom:"):
        return _parse_custom(raw)
    if raw.lower() == "unsubscribed":
        raise InputError(
            "unsubscribed cannot be mapped: segsync never sends it, since it could re-subscribe "
            "a person who unsubscribed in Autopilot (X13)"
        )
    if raw.lower() == "email":
        raise InputError("Email is the email mapping: give it with --email, not --map")
    if raw.startswith("_") or raw in _CONTROL_KEYS:
        raise InputError(
            f"{raw!r} is an Autopilot control key (like _autopilot_list or _NewEmail) and cannot "
            "be mapped"
        )
    canonical = _BY_LOWER.get(raw.lower())
    if canonical in {"FirstName", "LastName"}:
        option = "--first-name" if canonical == "FirstName" else "--last-name"
        raise InputError(f"{canonical} has its own option: give it with {option}, not --map")
    if canonical is None:
        close = difflib.get_close_matches(raw, STANDARD_FIELDS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise InputError(
            f"unknown Autopilot field {raw!r}{hint} Standard fields: {', '.join(STANDARD_FIELDS)}; "
            "custom fields are written custom:<type>:<Name> with type one of "
            f"{', '.join(CUSTOM_TYPES)}"
        )
    return Target("standard", canonical)


def _parse_custom(raw: str) -> Target:
    parts = raw.split(":", 2)
    if len(parts) != 3:
        raise InputError(f"custom field {raw!r} must be written custom:<type>:<Name>")
    ctype, name = parts[1].strip().lower(), parts[2].strip()
    if ctype not in CUSTOM_TYPES:
        raise InputError(
            f"custom field {raw!r} has unknown type {parts[1]!r}; use one of "
            f"{', '.join(CUSTOM_TYPES)}"
        )
    if not name:
        raise InputError(f"custom field {raw!r} has no name after the type")
    if len(name) > MAX_CUSTOM_NAME:
        raise InputError(f"custom field name {name!r} is longer than {MAX_CUSTOM_NAME} characters")
    if "--" in name:
        raise InputError(
            f"custom field name {name!r} contains '--', which Autopilot uses for spaces"
        )
    return Target("custom", " ".join(name.split()), ctype)


def parse_map_option(text: str) -> tuple[str, str]:
    """Parse ``"FIELD=ATTR"`` (``--map``) into ``(canonical target, attribute)``."""
    target, sep, attribute = text.partition("=")
    if not sep:
        raise InputError(f"--map {text!r}: write FIELD=ATTRIBUTE, e.g. Company=CompanyName")
    if not target.strip():
        raise InputError(f"--map {text!r}: the Autopilot field before '=' is missing")
    if not attribute.strip():
        raise InputError(f"--map {text!r}: the profile attribute after '=' is missing")
    return parse_target(target).spec, attribute.strip()


@dataclass(frozen=True)
class FieldMapping:
    """Which profile attribute fills which Autopilot field. ``extra`` holds ``(target,
    attribute)`` pairs; targets are canonicalised on creation (``InputError`` if unknown,
    forbidden or given twice)."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    _targets: tuple[tuple[str, str, Target], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not self.email or not self.email.strip():
            raise InputError("the email mapping is required: name the attribute holding emails")
        pairs: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for target_text, attribute in self.extra:
            target = parse_target(target_text)
            clash = target.name.lower() if target.kind == "custom" else target.name
            if clash in seen:
                raise InputError(f"{target.spec} is mapped twice (also as {seen[clash]})")
            seen[clash] = target.spec
            pairs.append((target.spec, attribute))
        object.__setattr__(self, "extra", tuple(pairs))
        parsed: list[tuple[str, str, Target]] = []
        if self.first_name:
            parsed.append(("first name", self.first_name, Target("standard", "FirstName")))
        if self.last_name:
            parsed.append(("last name", self.last_name, Target("standard", "LastName")))
        parsed.extend((spec, attribute, parse_target(spec)) for spec, attribute in pairs)
        object.__setattr__(self, "_targets", tuple(parsed))

    def targets(self) -> list[tuple[str, str, Target]]:
        """``(label, attribute, target)`` for every mapped field but the email."""
        return list(self._targets)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for storage."""
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "extra": [[target, attribute] for target, attribute in self.extra],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMapping:
        """The inverse of :meth:`to_dict`; ``InputError`` on a malformed dict."""
        try:
            extra = tuple((str(t), str(a)) for t, a in data.get("extra") or ())
            return cls(
                email=str(data["email"]),
                first_name=data.get("first_name"),
                last_name=data.get("last_name"),
                extra=extra,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed field mapping {dict(data)!r}: {exc}") from exc


def mapped_attributes(mapping: FieldMapping) -> list[str]:
    """The profile attributes to read for this export, email first, each once (P3)."""
    names = [mapping.email, *(attribute for _, attribute, _ in mapping.targets())]
    return list(dict.fromkeys(names))


_FITS: dict[str, frozenset[AttrType]] = {
    "string": frozenset({AttrType.TEXT, AttrType.NUMBER}),
    "integer": frozenset({AttrType.NUMBER}),
    "float": frozenset({AttrType.NUMBER}),
    "date": frozenset({AttrType.DATE}),
    "boolean": frozenset({AttrType.BOOLEAN}),
}


def _missing_attribute(label: str, attribute: str, columns: Mapping[str, AttrType]) -> InputError:
    by_lower = {name.lower(): name for name in columns}
    close = [by_lower[attribute.lower()]] if attribute.lower() in by_lower else []
    close = close or difflib.get_close_matches(attribute, list(columns), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return InputError(f"{label}: attribute {attribute!r} is not on the profile table{hint}")


def validate_mapping(mapping: FieldMapping, profile_columns: Mapping[str, AttrType]) -> None:
    """Check every mapped attribute exists on the profile table and fits its target.

    Raises :class:`InputError` naming the field and what is wrong.
    """
    if mapping.email not in profile_columns:
        raise _missing_attribute("email", mapping.email, profile_columns)
    if profile_columns[mapping.email] is not AttrType.TEXT:
        raise InputError(
            f"email: attribute {mapping.email!r} is {profile_columns[mapping.email]}, "
            "but emails must be text"
        )
    for label, attribute, target in mapping.targets():
        if attribute not in profile_columns:
            raise _missing_attribute(label, attribute, profile_columns)
        attr_type = profile_columns[attribute]
        value_type = target.value_type
        if attr_type not in _FITS[value_type]:
            fits = " or ".join(sorted(_FITS[value_type]))
            suggestion = {
                AttrType.DATE: "; map it to a custom:date:<Name> field",
                AttrType.BOOLEAN: "; map it to a custom:boolean:<Name> field",
                AttrType.NUMBER: "; map it to a custom:float:<Name> field",
                AttrType.TEXT: "; map it to a text field",
            }[attr_type]
            raise InputError(
                f"{label}: attribute {attribute!r} is {attr_type}, but {target.spec} takes "
                f"{value_type} values ({fits} attributes){suggestion}"
            )


@dataclass(frozen=True)
class ContactPayload:
    """One person's mapped values: the raw email, standard ``fields`` and ``custom`` fields in
    write shape (``{"integer--Review--Rating": 5}``), JSON-ready."""

    email_raw: object
    fields: dict[str, Any]
    custom: dict[str, Any]


def _is_missing(value: object) -> bool:
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


def build_contact(mapping: FieldMapping, row: Mapping[str, Any]) -> ContactPayload:
    """Build one person's payload from a row of mapped attributes (see :func:`mapped_attributes`).

    Empty values are omitted (module docstring). Raises :class:`RecordRejected` when a value cannot
    be sent (e.g. 12.5 for an integer field): the runner sets that person aside with the reason.
    """
    email_raw = row.get(mapping.email)
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for _, attribute, target in mapping._targets:
        value = row.get(attribute)
        if _is_missing(value):
            continue
        converted = convert_value(value, target, email_raw)
        (fields if target.kind == "standard" else custom)[target.write_key] = converted
    return ContactPayload(email_raw, fields, custom)


def payload_hash(fields: Mapping[str, Any], custom: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a payload: equal for equal payloads, in any key
    order, in any process, on any run."""
    canonical = json.dumps(
        {"custom": custom, "fields": fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def contact_object(
    email: str,
    fields: Mapping[str, Any],
    custom: Mapping[str, Any],
    list_id: str | None = None,
) -> dict[str, Any]:
    """The Autopilot contact object for ``POST /contacts``: ``Email``, the standard fields, a
    ``custom`` object when there are custom fields, and ``_autopilot_list`` when ``list_id``.

    Never carries ``unsubscribed`` (X13), whatever ``fields`` hold.
    """
    contact: dict[str, Any] = {
        key: value
        for key, value in fields.items()
        if key.lower() not in {"unsubscribed", "email"} and not key.startswith("_")
    }
    contact["Email"] = email
    if custom:
        contact["custom"] = dict(custom)
    if list_id is not None:
        contact["_autopilot_list"] = list_id
    return contact
