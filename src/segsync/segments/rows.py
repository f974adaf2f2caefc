"""A batch of rows as a query engine's driver gives them (:class:`RowBatch`): what reading a
segment's members streams, whether the rows came from DuckDB's driver or through Arrow. Apart
from :mod:`.evaluate` because a run's read stage needs it without Ibis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow is imported where it is used: a run on DuckDB never needs it
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Rows of a query as the engine's driver gives them: a tuple per row, in the order of
    ``names``. Values are the Python values Arrow's ``to_pylist`` gives for the same columns
    (text, whole numbers, booleans, floats, dates and times alike)."""

    names: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        at = self.names.index(name)
        return [row[at] for row in self.rows]

    def row(self, position: int) -> dict[str, Any]:
        return dict(zip(self.names, self.rows[position], strict=True))

    def dicts(self) -> Iterator[dict[str, Any]]:
        names = self.names
        for row in self.rows:
            yield dict(zip(names, row, strict=True))

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch) -> RowBatch:
        columns = [column.to_pylist() for column in batch.columns]
        return cls(tuple(batch.schema.names), list(zip(*columns, strict=True)))
