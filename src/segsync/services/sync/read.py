"""The read stage of a run (X2): stream every segment's members with the mapped attributes from
the profile engine, one pass per segment, into the clean stage (:mod:`.clean`).

Memory stays flat in the rows: members arrive in Arrow batches and only one batch at a time
becomes Python objects. The profile engine is held only while the members are read (a DuckDB
file admits one read-write process, and ``serve``, workers and the CLI share it), unless the
caller had it open already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from segsync.domain.mapping import FieldMapping, mapped_attributes
from segsync.domain.segment_definition import parse_definition
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import stream_members
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.services.sync.clean import Cleaner, MemberScan, NeedsPayload
from segsync.services.sync.switching import fewer_collections

log = logging.getLogger(__name__)

STREAM_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class SegmentSource:
    """One segment of the export: its key in the plan (the segment id as text), its name and
    its definition (JSON or YAML text)."""

    key: str
    name: str
    definition: str


def scan_members(
    ctx: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    *,
    needs_payload: NeedsPayload | None = None,
    batch_size: int = STREAM_BATCH_ROWS,
    on_rows: Callable[[int], None] | None = None,
    suppressed: frozenset[str] = frozenset(),
) -> MemberScan:
    """Stream every segment's members through a :class:`Cleaner` and return the distinct valid
    contacts. ``needs_payload`` (default: always) says which payloads to keep; ``on_rows`` is
    told how many rows each Arrow batch held (progress); people whose email digest is in
    ``suppressed`` are set aside as forgotten."""
    cat = catalog(ctx)
    engine = ctx.profiles
    profile = engine.table(cat.profile_table)
    attributes = [a for a in mapped_attributes(mapping) if a != cat.profile_key]
    cleaner = Cleaner(mapping, cat.profile_key, needs_payload, suppressed)
    now = ctx.now()
    for source in segments:
        compiled = compile_segment(parse_definition(source.definition), cat, engine.table, now)
        rows = 0
        for batch in stream_members(compiled, profile, cat.profile_key, attributes, batch_size):
            for row in batch.to_pylist():
                cleaner.row(source.key, row)
            rows += batch.num_rows
            if on_rows is not None:
                on_rows(batch.num_rows)
        cleaner.scan.per_segment[source.key] = rows
        log.info("segment %r: %d members read", source.name, rows)
    scan = cleaner.finish()
    if scan.missing:
        # Merged profiles put contacts on lists whose winning profile's payload was not kept:
        # read those rows again, by profile id.
        ids = list(scan.missing)
        wanted = profile.filter(profile[cat.profile_key].isin(ids)).select(cat.profile_key)
        for batch in stream_members(wanted, profile, cat.profile_key, attributes, batch_size):
            for row in batch.to_pylist():
                cleaner.fill(row)
        log.info("%d merged contacts' payloads read again", len(ids))
    return scan


def read_members(
    ctx: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    needs_payload: NeedsPayload,
    suppressed: frozenset[str],
) -> MemberScan:
    """:func:`scan_members` with :func:`fewer_collections`, holding the profile engine only
    meanwhile. When ``ctx`` has the engine open already, its owner keeps it."""
    reader = (
        ctx
        if ctx.profiles_opened
        else ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=ctx.actor)
    )
    try:
        with fewer_collections():
            return scan_members(
                reader, segments, mapping, needs_payload=needs_payload, suppressed=suppressed
            )
    finally:
        if reader is not ctx and reader.profiles_opened:
            reader.profiles.close()
