"""Reading a segment's members live (S5, S6): count, preview, CSV download, quick segments.

None of these change the segment: they evaluate its current definition on the profile engine
now, whatever its status (a draft can be counted and previewed before its first refresh).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from segsync.domain.catalog import AttrType, Catalog
from segsync.domain.names import did_you_mean
from segsync.domain.permissions import Action, require
from segsync.domain.untrusted import FORMULA_PREFIXES, spreadsheet_safe
from segsync.errors import InputError
from segsync.segments import evaluate
from segsync.segments.compiler import compile_segment
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.services.segments.manage import definition_of
from segsync.storage.repositories.segments import SegmentRepository

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "MemberPreview",
    "QuickSegment",
    "count_segment",
    "export_members_csv",
    "preview_segment",
    "suggest",
]

CSV_BATCH_ROWS = 50_000


def _members(ctx: ServiceContext, name: str) -> tuple[ir.Table, Catalog]:
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        record = SegmentRepository(session).get_by_name(name)
    cat = catalog(ctx)
    return compile_segment(definition_of(record), cat, ctx.profiles.table, ctx.now()), cat


def count_segment(ctx: ServiceContext, name: str) -> int:
    """How many members segment ``name`` has now (evaluated live; nothing is stored)."""
    members, _ = _members(ctx, name)
    return evaluate.count(members)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class MemberPreview:
    """The first members by profile id: ``columns`` (the key first) and one dict per row."""

    key: str
    columns: list[str]
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "columns": self.columns,
            "rows": [{k: _jsonable(v) for k, v in row.items()} for row in self.rows],
        }


def preview_segment(
    ctx: ServiceContext, name: str, limit: int = evaluate.PREVIEW_LIMIT
) -> MemberPreview:
    """The first ``limit`` members of segment ``name`` by profile id, with every profile
    attribute (S5)."""
    members, cat = _members(ctx, name)
    table = evaluate.preview(members, ctx.profiles.table(cat.profile_table), cat.profile_key, limit)
    return MemberPreview(cat.profile_key, list(table.column_names), table.to_pylist())


_FORMULA_START = "^[" + re.escape("".join(FORMULA_PREFIXES)) + "]"


def spreadsheet_safe_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """:func:`segsync.domain.untrusted.spreadsheet_safe` over every text column of ``batch``
    (vectorised): a leading ``'`` on cells starting with a formula prefix."""
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.match_substring_regex(column, _FORMULA_START)
            column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def export_members_csv(ctx: ServiceContext, name: str, path: str | Path) -> int:
    """Write every member of segment ``name`` with all profile attributes to a CSV file at
    ``path`` (header row, ordered by profile id); return how many rows were written.

    Members stream in Arrow batches, so memory stays flat; the file appears complete or not at
    all (written beside it, then renamed).
    """
    members, cat = _members(ctx, name)
    profile = ctx.profiles.table(cat.profile_table)
    attributes = [c for c in profile.columns if c != cat.profile_key]
    schema = (
        evaluate.members_with_attributes(members, profile, cat.profile_key, attributes)
        .schema()
        .to_pyarrow()
    )
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    rows = 0
    header = pa.schema([field.with_name(spreadsheet_safe(field.name)) for field in schema])
    try:
        with pa_csv.CSVWriter(str(partial), header) as writer:
            for batch in evaluate.stream_members(
                members, profile, cat.profile_key, attributes, CSV_BATCH_ROWS
            ):
                batch = batch.cast(schema) if batch.schema != schema else batch
                writer.write_batch(spreadsheet_safe_batch(batch, header))
                rows += batch.num_rows
        os.replace(partial, target)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write the members CSV to {target}: {err}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return rows


# ---------------------------------------------------------------- quick segments (S6)


@dataclass(frozen=True)
class QuickSegment:
    """What one attribute holds, to build a one-attribute segment (S6).

    ``suggestion`` has the top 10 values with their counts (text, boolean) or the percentiles
    (number, date). The counts are the estimated sizes of ``ATTRIBUTE equals VALUE``; for
    percentiles, ``at_or_above`` estimates the size of ``ATTRIBUTE greater_or_equal pXX``.
    Sizes count profiles for the profile table, and rows for a related ``table``.
    """

    table: str
    profile_table: str
    suggestion: evaluate.Suggestion
    at_or_above: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        s = self.suggestion
        return {
            "table": self.table,
            "is_profile_table": self.table == self.profile_table,
            "attribute": s.attribute,
            "type": s.type.value,
            "total": s.total,
            "empty": s.empty_count,
            "distinct": s.distinct_count,
            "top_values": [{"value": _jsonable(v.value), "count": v.count} for v in s.top_values],
            "percentiles": {k: _jsonable(v) for k, v in s.percentiles.items()},
            "at_or_above": self.at_or_above,
        }


def _resolve(cat: Catalog, attribute: str) -> tuple[str, str, AttrType]:
    """``City`` (profile table) or ``orders.Amount`` (a related table) → table, column, type."""
    profile = cat.profile
    if attribute in profile.columns:
        return cat.profile_table, attribute, profile.columns[attribute]
    table, dot, column = attribute.partition(".")
    info = cat.tables.get(table) if dot else None
    if info is not None and column in info.columns:
        return table, column, info.columns[column]
    known = list(profile.columns) + [
        f"{t}.{c}" for t, i in cat.tables.items() if t != cat.profile_table for c in i.columns
    ]
    raise InputError(f"unknown attribute '{attribute}'{did_you_mean(attribute, known)}")


def suggest(ctx: ServiceContext, attribute: str) -> QuickSegment:
    """Summarise ``attribute`` of the profile table (or ``table.attribute`` of a related table)
    for a quick segment: top 10 values with counts, or percentiles with estimated sizes."""
    require(ctx.actor, Action.VIEW)
    cat = catalog(ctx)
    table_name, column, kind = _resolve(cat, attribute)
    result = evaluate.suggest(ctx.profiles.table(table_name), column, kind)
    present = result.total - result.empty_count
    at_or_above = {
        name: round(present * (1 - q))
        for name, q in evaluate.PERCENTILES
        if result.percentiles.get(name) is not None
    }
    return QuickSegment(table_name, cat.profile_table, result, at_or_above)
