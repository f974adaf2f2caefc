"""What the export use cases take, typed and the same for the CLI, the web UI and the API: a new
export's settings (:class:`ExportSettings`) and the changes to one (:class:`ExportEdit`), with
the data matching as :class:`MappingLine` values (never ``FIELD=ATTR`` text to parse).

In an :class:`ExportEdit` a field left at :data:`UNSET` keeps the setting as it is; ``None`` (or
``""``) clears the first or last name, ``""`` the list prefix, and ``lines=()`` every extra field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from segsync.domain.schedule import ExportSchedule
from segsync.storage.repositories.changes import UNSET, Keep, or_unset

__all__ = ["UNSET", "DataMatching", "ExportEdit", "ExportSettings", "MappingLine", "or_unset"]


@dataclass(frozen=True)
class MappingLine:
    """One extra field of the data matching: the destination ``field`` (a standard field's key
    such as ``Company``, or ``custom:<type>:<Name>``) and the profile ``attribute`` filling it."""

    field: str
    attribute: str


@dataclass(frozen=True)
class DataMatching:
    """Which profile attributes fill the email, the first and last name, and the extra
    fields."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    lines: Sequence[MappingLine] = ()


@dataclass(frozen=True)
class ExportSettings:
    """A new export: its name, the connection it sends to (by id), its data matching, its
    segments (by name, in order), removal policy (``mirror`` or ``add-only``), list prefix and
    schedule (``None``: with every system refresh)."""

    name: str
    connection_id: int
    matching: DataMatching
    segments: Sequence[str]
    removal: str = "mirror"
    list_prefix: str = ""
    schedule: ExportSchedule | None = None
    hold_removals: str = "20%"
    """The blast-radius hold's removals threshold (``20%``, ``off``): docs/exports.md."""
    hold_growth: str = "3x"
    """The blast-radius hold's growth threshold (``3x``, ``off``)."""


@dataclass(frozen=True)
class ExportEdit:
    """Changes to an export; :data:`UNSET` leaves a setting as it is. ``lines`` and
    ``segments`` replace the whole set."""

    name: Keep[str] = UNSET
    connection_id: Keep[int] = UNSET
    email: Keep[str] = UNSET
    first_name: Keep[str | None] = UNSET
    last_name: Keep[str | None] = UNSET
    lines: Keep[Sequence[MappingLine]] = UNSET
    segments: Keep[Sequence[str]] = UNSET
    removal: Keep[str] = UNSET
    list_prefix: Keep[str] = UNSET
    schedule: Keep[ExportSchedule] = UNSET
    hold_removals: Keep[str] = UNSET
    hold_growth: Keep[str] = UNSET

    def given(self) -> list[str]:
        """The names of the fields that are set."""
        return [item.name for item in fields(self) if getattr(self, item.name) is not UNSET]

    def changes_matching(self) -> bool:
        return any(
            value is not UNSET
            for value in (self.email, self.first_name, self.last_name, self.lines)
        )
