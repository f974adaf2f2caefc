"""A destination's field catalogue: which fields an export's data matching may fill, what values
each takes, how a custom field is keyed on the wire, and which names may never be mapped.

Each destination declares one :class:`FieldCatalogue` (Autopilot's is in
``segsync.destinations.autopilot.fields``); :mod:`segsync.domain.mapping` reads and checks a
mapping against the catalogue it is given. The stored form of a target is segsync's own and the
same for every destination: a standard field by its key (``"Company"``) or a custom field as
``custom:<type>:<Name>`` (``"custom:integer:Review Rating"``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from segsync.errors import InputError

ValueType = Literal["string", "integer", "float", "date", "boolean"]
VALUE_TYPES: tuple[ValueType, ...] = ("string", "integer", "float", "date", "boolean")
"""What values a field takes; which attribute types fit each is in ``domain.mapping``."""

TargetKind = Literal["standard", "custom"]


@dataclass(frozen=True)
class StandardField:
    """A field the destination defines: its ``key`` on the wire (``"Company"``), the ``label``
    people see, and the values it takes."""

    key: str
    label: str
    value_type: ValueType = "string"


@dataclass(frozen=True)
class ReservedName:
    """A name no mapping may target, with the whole refusal ``message`` (``{name}`` in it is
    replaced by what the user typed, quoted). ``prefix``: every name starting with ``name``."""

    name: str
    message: str
    prefix: bool = False

    def matches(self, text: str) -> bool:
        if self.prefix:
            return text.startswith(self.name)
        return text.lower() == self.name.lower()


@dataclass(frozen=True)
class CustomKeys:
    """How a custom field is keyed on the wire: ``template`` with ``{type}`` and ``{name}``;
    ``space`` is what a space in the name becomes (names may then not contain it; ``None``
    keeps spaces); ``max_name`` the longest name allowed; ``type_names`` how the wire writes a
    type when not by segsync's name (Ortto: ``("string", "str")``...); ``lower`` sends the
    name in lower case (Ortto's field ids are)."""

    template: str = "{name}"
    space: str | None = None
    max_name: int = 100
    type_names: tuple[tuple[str, str], ...] = ()
    lower: bool = False


@dataclass(frozen=True)
class Target:
    """A parsed target. ``kind`` is ``"standard"`` (``name`` is the field's key) or
    ``"custom"`` (``name`` is the custom field's name, ``value_type`` its type)."""

    kind: TargetKind
    name: str
    value_type: ValueType = "string"

    @property
    def spec(self) -> str:
        """The stored text form: ``"Company"`` or ``"custom:integer:Review Rating"``."""
        return self.name if self.kind == "standard" else f"custom:{self.value_type}:{self.name}"


@dataclass(frozen=True)
class FieldCatalogue:
    """Everything a mapping needs to know about a destination's fields.

    ``destination`` names it in messages (``"Autopilot"``). ``email_key`` is the field the email
    goes to; ``first_name_key``/``last_name_key`` the fields of the first and last name options
    (``None``: the destination has none). ``standard`` lists the other fields a mapping may
    target. ``custom_types`` are the types a custom field may have (empty: no custom fields).
    ``reserved`` are refused with their own message, before any other check.
    """

    destination: str
    email_key: str
    standard: tuple[StandardField, ...]
    first_name_key: str | None = None
    last_name_key: str | None = None
    custom_types: tuple[ValueType, ...] = ()
    custom_keys: CustomKeys = CustomKeys()
    reserved: tuple[ReservedName, ...] = ()

    def standard_keys(self) -> list[str]:
        return [item.key for item in self.standard]

    def standard_field(self, key: str) -> StandardField | None:
        """The standard field (first and last name included) with this key, any case."""
        wanted = key.lower()
        for item in self._all_standard():
            if item.key.lower() == wanted:
                return item
        return None

    def _all_standard(self) -> tuple[StandardField, ...]:
        names = [
            StandardField(key, key)
            for key in (self.first_name_key, self.last_name_key)
            if key is not None
        ]
        return (*self.standard, *names)

    def parse_target(self, text: str) -> Target:
        """Read a target as a user wrote it (any case, spaces around); :class:`InputError`
        saying what is wrong when this destination cannot take it."""
        raw = text.strip()
        if raw.lower().startswith("custom:"):
            return self._parse_custom(raw)
        for reserved in self.reserved:
            if reserved.matches(raw):
                raise InputError(reserved.message.replace("{name}", repr(raw)))
        if raw.lower() == self.email_key.lower():
            raise InputError(
                f"{self.email_key} is the email mapping: give it with --email, not --map"
            )
        found = self.standard_field(raw)
        if found is not None and found.key in {self.first_name_key, self.last_name_key}:
            option = "--first-name" if found.key == self.first_name_key else "--last-name"
            raise InputError(f"{found.key} has its own option: give it with {option}, not --map")
        if found is None:
            keys = self.standard_keys()
            close = difflib.get_close_matches(raw, keys, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            custom = (
                "; custom fields are written custom:<type>:<Name> with type one of "
                f"{', '.join(self.custom_types)}"
                if self.custom_types
                else f"; {self.destination} takes no custom fields"
            )
            raise InputError(
                f"unknown {self.destination} field {raw!r}{hint} Standard fields: "
                f"{', '.join(keys)}{custom}"
            )
        return Target("standard", found.key, found.value_type)

    def _parse_custom(self, raw: str) -> Target:
        if not self.custom_types:
            raise InputError(f"custom field {raw!r}: {self.destination} takes no custom fields")
        parts = raw.split(":", 2)
        if len(parts) != 3:
            raise InputError(f"custom field {raw!r} must be written custom:<type>:<Name>")
        kind, name = parts[1].strip().lower(), parts[2].strip()
        value_type = next((t for t in self.custom_types if t == kind), None)
        if value_type is None:
            raise InputError(
                f"custom field {raw!r} has unknown type {parts[1]!r}; use one of "
                f"{', '.join(self.custom_types)}"
            )
        if not name:
            raise InputError(f"custom field {raw!r} has no name after the type")
        longest = self.custom_keys.max_name
        if len(name) > longest:
            raise InputError(f"custom field name {name!r} is longer than {longest} characters")
        space = self.custom_keys.space
        if space is not None and space in name:
            raise InputError(
                f"custom field name {name!r} contains {space!r}, which {self.destination} uses "
                "for spaces"
            )
        return Target("custom", " ".join(name.split()), value_type)

    def write_key(self, target: Target) -> str:
        """The key ``target`` is sent under: a standard field's key, or the custom field's key
        built by :attr:`custom_keys` (Autopilot: ``"integer--Review--Rating"``)."""
        if target.kind == "standard":
            return target.name
        keys = self.custom_keys
        name = target.name.replace(" ", keys.space) if keys.space is not None else target.name
        kind = dict(keys.type_names).get(target.value_type, target.value_type)
        return keys.template.format(type=kind, name=name.lower() if keys.lower else name)
