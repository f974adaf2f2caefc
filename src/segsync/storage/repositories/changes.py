"""Partial updates: repository ``update`` methods take only the fields to change.

An argument left at :data:`UNSET` keeps its column as it is (``None`` is a value: it clears it).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final


class Unset(Enum):
    UNSET = "unset"


UNSET: Final = Unset.UNSET
"""Default of ``update`` arguments: leave that field as it is."""


def apply_changes(row: object, changes: Mapping[str, object]) -> None:
    """Set each attribute of ``row`` named in ``changes`` whose value is not :data:`UNSET`."""
    for attribute, value in changes.items():
        if value is not UNSET:
            setattr(row, attribute, value)
