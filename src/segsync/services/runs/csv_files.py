"""CSV files of runs (rejects, changes): one way to write them, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from segsync.domain.untrusted import spreadsheet_safe
from segsync.errors import InputError


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write ``columns`` then ``rows`` to ``path`` (its folder made if needed); return how many
    rows. A cell a spreadsheet would run as a formula is written with a leading ``'``;
    ``InputError`` names the path when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", newline="", encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err}") from None
    count = 0
    with handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
            count += 1
    return count
