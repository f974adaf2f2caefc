"""An export's data matching (E1, E2): which profile attribute fills which destination field.

Targets are read against the destination's :class:`~segsync.domain.fields.FieldCatalogue`: its
standard fields, or custom fields written ``custom:<type>:<Name>`` with one of its custom types.
The email, the first and the last name have their own options; the catalogue's reserved names
(Autopilot: ``unsubscribed`` and every ``_``-prefixed control key, X13) can never be mapped.

Which attribute types fit which targets (``validate_mapping``), our decisions:

==================================  ========================================================
target                              attribute types
==================================  ========================================================
email                               text
text fields, first/last             text, or number (sent as text: whole numbers without
name, ``custom:string``             ".0" — postal codes and phone numbers are often numeric)
integer fields (Autopilot's         number; each value must be a whole number, checked per
``NumberOfEmployees``),             value when the contact is built (a fraction rejects that
``custom:integer``                  contact with the reason, the run goes on)
``custom:float``                    number
``custom:date``                     date (dates as ``YYYY-MM-DD``, timestamps in UTC as
                                    ISO-8601 with ``Z``; naive timestamps are taken as UTC)
``custom:boolean``                  boolean
==================================  ========================================================

Dates and booleans are refused for text targets: map them to a custom date/boolean field.

Empty values (``None``/NaN) are **omitted** from the contact, so the destination keeps what it
had: a cleared attribute is not cleared there (omitting is the only safe choice, since Autopilot
has no "unset" and sending ``""`` to a typed field would be refused). Empty text ``""`` is sent.
Value conversion and the payload hash are in :mod:`segsync.domain.payload`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.catalog import AttrType
from segsync.domain.fields import FieldCatalogue, Target
from segsync.domain.payload import (
    ContactPayload,
    convert_value,
    is_missing,
    payload_hash,
)
from segsync.errors import InputError

__all__ = [
    "ContactPayload",
    "FieldMapping",
    "build_contact",
    "contact_hash",
    "mapped_attributes",
    "payload_hash",
    "validate_mapping",
]


# The Python type a value of each target type already has when it goes out unchanged: such a
# value skips the conversion (``convert_value`` would return it as it is). Floats and dates
# always convert (a float must be finite; a date becomes text).
_UNCHANGED: dict[str, type] = {"string": str, "integer": int, "boolean": bool}


@dataclass(frozen=True)
class _Planned:
    """A mapped field ready to fill: its label in messages, attribute, target and wire key."""

    label: str
    attribute: str
    target: Target
    key: str


@dataclass(frozen=True)
class FieldMapping:
    """Which profile attribute fills which field of the destination whose ``catalogue`` it is
    read against. ``extra`` holds ``(target, attribute)`` pairs; targets are canonicalised on
    creation (``InputError`` if unknown, forbidden or given twice)."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    catalogue: FieldCatalogue = field(kw_only=True, repr=False)
    _planned: tuple[_Planned, ...] = field(init=False, repr=False, compare=False, default=())
    _fill: tuple[tuple[str, str, bool, type | None, Target], ...] = field(
        init=False, repr=False, compare=False, default=()
    )  # _planned as build_contact's loop unpacks it: attribute, key, custom?, type sent as is
    plain: bool = field(init=False, repr=False, compare=False, default=True)
    """Whether every value a contact can carry is text, a whole number or a boolean (no float
    target): its payload hash then needs no check of value types."""

    def __post_init__(self) -> None:
        if not self.email or not self.email.strip():
            raise InputError("the email mapping is required: name the attribute holding emails")
        catalogue = self.catalogue
        pairs: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for target_text, attribute in self.extra:
            target = catalogue.parse_target(target_text)
            clash = target.name.lower() if target.kind == "custom" else target.name
            if clash in seen:
                raise InputError(f"{target.spec} is mapped twice (also as {seen[clash]})")
            seen[clash] = target.spec
            pairs.append((target.spec, attribute))
        object.__setattr__(self, "extra", tuple(pairs))
        planned: list[_Planned] = []
        named = (
            ("first name", self.first_name, catalogue.first_name_key),
            ("last name", self.last_name, catalogue.last_name_key),
        )
        for label, chosen, key in named:
            if not chosen:
                continue
            if key is None:
                raise InputError(
                    f"{label}: {catalogue.destination} has no {label} field; leave it empty"
                )
            planned.append(_Planned(label, chosen, Target("standard", key), key))
        for spec, attribute in pairs:
            target = catalogue.parse_target(spec)
            planned.append(_Planned(spec, attribute, target, catalogue.write_key(target)))
        object.__setattr__(self, "_planned", tuple(planned))
        fill = tuple(
            (
                p.attribute,
                p.key,
                p.target.kind != "standard",
                _UNCHANGED.get(p.target.value_type),
                p.target,
            )
            for p in planned
        )
        object.__setattr__(self, "_fill", fill)
        object.__setattr__(self, "plain", all(p.target.value_type != "float" for p in planned))

    def payload_columns(self) -> list[tuple[str, str, bool, str]]:
        """``(attribute, key, custom?, value type)`` of every field a contact can carry: the
        attribute it comes from, its key in the payload (custom fields in write shape), whether
        it goes under ``custom``, and its target's value type (``"string"``, ``"integer"``…)."""
        return [(a, key, custom, target.value_type) for a, key, custom, _, target in self._fill]

    def targets(self) -> list[tuple[str, str, Target]]:
        """``(label, attribute, target)`` for every mapped field but the email."""
        return [(item.label, item.attribute, item.target) for item in self._planned]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for storage (the same for every destination)."""
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "extra": [[target, attribute] for target, attribute in self.extra],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], catalogue: FieldCatalogue) -> FieldMapping:
        """The inverse of :meth:`to_dict`, read against ``catalogue``; ``InputError`` on a
        malformed dict or a target the destination cannot take."""
        try:
            extra = tuple((str(t), str(a)) for t, a in data.get("extra") or ())
            return cls(
                email=str(data["email"]),
                first_name=data.get("first_name"),
                last_name=data.get("last_name"),
                extra=extra,
                catalogue=catalogue,
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


def build_contact(mapping: FieldMapping, row: Mapping[str, Any]) -> ContactPayload:
    """Build one person's payload from a row of mapped attributes (see :func:`mapped_attributes`).

    Empty values are omitted (module docstring). Raises :class:`RecordRejected` when a value cannot
    be sent (e.g. 12.5 for an integer field): the runner sets that person aside with the reason.
    """
    email_raw = row.get(mapping.email)
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    # Every run builds every member's contact: values that go out unchanged (the common case)
    # skip the general conversion.
    for attribute, key, is_custom, unchanged, target in mapping._fill:
        value = row.get(attribute)
        if type(value) is not unchanged:
            if is_missing(value):
                continue
            value = convert_value(value, target, email_raw)
        (custom if is_custom else fields)[key] = value
    return ContactPayload(email_raw, fields, custom)


def contact_hash(mapping: FieldMapping, contact: ContactPayload) -> str:
    """:func:`payload_hash` of a contact built with ``mapping``, skipping the check of value
    types where the mapping rules out floats (:attr:`FieldMapping.plain`)."""
    return payload_hash(contact.fields, contact.custom, plain=mapping.plain)
