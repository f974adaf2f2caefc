"""Near-miss names: "did you mean …?" for a name that matches nothing (an export, a segment, a
connection, a table or an attribute)."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``: one that differs only in case or spacing, else the
    nearest by :func:`difflib.get_close_matches` (similarity 0.6 or more), else ``None``."""
    names = list(dict.fromkeys(known))
    folded = _folded(name)
    for candidate in names:
        if _folded(candidate) == folded:
            return candidate
    close = get_close_matches(name, names, n=1)
    return close[0] if close else None


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest known name, or ``""`` when none is close."""
    match = closest(name, known)
    return "" if match is None else f" (did you mean {match!r}?)"
