"""Member snapshots: the set of profile ids a refresh found, kept to compare with the next one.

A snapshot is a sorted Arrow string array of unique ids, stored as a Parquet file (small: ~10 MB
for a million ids) wherever the caller chooses. Comparing two runs vectorised, never a Python set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segsync.errors import FatalError

_COLUMN = "id"


@dataclass(frozen=True)
class SnapshotDiff:
    """How membership moved between two refreshes."""

    entered: int
    left: int
    stayed: int


def snapshot_from(batches: Iterable[pa.Array]) -> pa.Array:
    """One snapshot from id arrays (e.g. ``evaluate.member_ids``): unique, sorted, strings."""
    chunks = [batch.cast(pa.string()) for batch in batches]
    ids = pa.chunked_array(chunks, type=pa.string()) if chunks else pa.array([], pa.string())
    unique = pc.unique(ids)
    result: pa.Array = pc.take(unique, pc.sort_indices(unique))
    return result


def diff_snapshots(previous: pa.Array | None, current: pa.Array) -> SnapshotDiff:
    """Entered = in ``current`` only; left = in ``previous`` only. No previous: all entered."""
    if previous is None:
        return SnapshotDiff(entered=len(current), left=0, stayed=0)
    stayed = int(pc.sum(pc.is_in(current, value_set=previous)).as_py() or 0)
    return SnapshotDiff(entered=len(current) - stayed, left=len(previous) - stayed, stayed=stayed)


def write_snapshot(ids: pa.Array, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous snapshot in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.table({_COLUMN: ids}), partial)
    partial.replace(path)


def read_snapshot(path: Path) -> pa.Array | None:
    """The snapshot stored at ``path``, or None if there is none yet."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise FatalError(f"the member snapshot {path} cannot be read: {exc}") from exc
    result: pa.Array = table.column(_COLUMN).combine_chunks()
    return result
