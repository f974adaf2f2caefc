"""Partial updates: repository ``update`` methods (and the services' change inputs) take only
the fields to change.

An argument left at :data:`UNSET` keeps its column as it is (``None`` is a value: it clears it).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final, Literal, TypeAlias, TypeVar

T = TypeVar("T")


class Unset(Enum):
    UNSET = "unset"


UNSET: Final = Unset.UNSET
"""Default of ``update`` arguments: leave that field as it is."""

Keep: TypeAlias = T | Literal[Unset.UNSET]
"""``Keep[str]``: a new value, or :data:`UNSET` to leave the current one as it is."""


def or_unset(value: T | None) -> Keep[T]:
    """``value``, or :data:`UNSET` when it is ``None`` (an option or a JSON field left out)."""
    return UNSET if value is None else value


def apply_changes(row: object, changes: Mapping[str, object]) -> None:
    """Set each attribute of ``row`` named in ``changes`` whose value is not :data:`UNSET`."""
    for attribute, value in changes.items():
        if value is not UNSET:
            setattr(row, attribute, value)
