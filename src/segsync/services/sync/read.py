"""The read stage of a run (X2): stream every segment's members with the mapped attributes from
the profile engine, one pass per segment, into the clean stage (:mod:`.clean`).

Memory stays flat in the rows: members arrive in batches (:class:`RowBatch`) and only one batch
at a time is held. They are read unordered, as the engine finds them: ordered by profile id,
DuckDB held every member row with its payload before the first came out (about 80 bytes a
row: 100 MB of a 1,000,000-profile rerun), and the clean stage decides the same whatever
their order. On DuckDB (the embedded default) they come from its driver as tuples, without
Arrow, which a run then never imports (pyarrow and numpy: some 50 MB). The profile
engine is held only while the members are read (a DuckDB file admits one read-write process,
and ``serve``, workers and the CLI share it), unless the caller had it open already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from segsync.domain.catalog import Catalog
from segsync.domain.mapping import FieldMapping, mapped_attributes
from segsync.domain.segment_definition import parse_definition
from segsync.segments.rows import RowBatch
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.services.sync.batch_hash import (
    DIGEST_COLUMN,
    EMAIL_AS_IS_COLUMN,
    column_types,
    digest_sql,
    digests_of,
    email_as_is_sql,
)
from segsync.services.sync.clean import Cleaner, MemberScan, NeedsPayload
from segsync.services.sync.switching import fewer_collections

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from segsync.services.sync.settled import Settled

log = logging.getLogger(__name__)

STREAM_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class SegmentSource:
    """One segment of the export: its key in the plan (the segment id as text), its name and
    its definition (JSON or YAML text)."""

    key: str
    name: str
    definition: str


@dataclass(frozen=True)
class MemberReading:
    """How a run reads its segments' members: the profile catalog and table, the mapped
    attributes besides the profile key, how payloads are hashed (:class:`Hashing`), and the
    moment relative rules are anchored on. The walk of :mod:`.settled` reads the members the
    same way, so that the rows it holds are what :func:`scan_members` would read."""

    catalog: Catalog
    profile: ir.Table
    attributes: list[str]
    hashing: Hashing
    tables: Callable[[str], ir.Table]
    now: datetime

    @classmethod
    def of(cls, ctx: ServiceContext, mapping: FieldMapping) -> MemberReading:
        cat = catalog(ctx)
        engine = ctx.profiles
        profile = engine.table(cat.profile_table)
        attributes = [a for a in mapped_attributes(mapping) if a != cat.profile_key]
        hashing = Hashing(mapping, profile, cat.profile_key)
        return cls(cat, profile, attributes, hashing, engine.table, ctx.now())

    @property
    def key(self) -> str:
        return self.catalog.profile_key

    def members(self, source: SegmentSource) -> ir.Table:
        """The segment's members (their profile keys), as compiled now."""
        from segsync.segments.compiler import compile_segment  # Ibis: only where it compiles

        definition = parse_definition(source.definition)
        return compile_segment(definition, self.catalog, self.tables, self.now)

    def rows(
        self, members: ir.Table, batch_size: int, *, hashed: bool = True
    ) -> Iterator[RowBatch]:
        """The rows of ``members`` (the key and the mapped attributes; ``hashed``: with the
        payload hashes :class:`Hashing` asks the profile engine for, while it asks), unordered."""
        from segsync.segments.evaluate import member_rows

        computed = self.hashing.sql if hashed else ()
        return member_rows(
            members, self.profile, self.key, self.attributes, batch_size, computed=computed,
            ordered=False,
        )  # fmt: skip

    def query(self, members: ir.Table, *, hashed: bool = True) -> str | None:
        """The query :meth:`rows` runs on DuckDB's own cursor (``hashed``: with the payload
        hashes; None where the rows come through Arrow instead)."""
        from segsync.segments.evaluate import member_query

        computed = self.hashing.sql if hashed else ()
        return member_query(members, self.profile, self.key, self.attributes, computed)


def scan_members(
    ctx: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    *,
    needs_payload: NeedsPayload | None = None,
    batch_size: int = STREAM_BATCH_ROWS,
    on_rows: Callable[[int], None] | None = None,
    suppressed: frozenset[str] = frozenset(),
    known_hashes: Mapping[str, str] | None = None,
    held: Settled | None = None,
) -> MemberScan:
    """Stream every segment's members through a :class:`Cleaner` and return the distinct valid
    contacts. ``needs_payload`` (default: always) says which payloads to keep; ``on_rows`` is
    told how many rows each batch held (progress); people whose email digest is in
    ``suppressed`` are set aside as forgotten; ``known_hashes``: the sync state's payload
    hashes, whose text objects unchanged contacts share (:class:`Cleaner`); ``held``: the rows
    of the members to clean, held already (:mod:`.settled`), instead of every member's."""
    reading: MemberReading | None = None
    if held is None:
        reading = MemberReading.of(ctx, mapping)
        hashing = reading.hashing
    else:  # the rows are held, hashed: no compiling, no Ibis (a run whose SQL was kept)
        hashing = Hashing.held(mapping, held.key)
    cleaner = Cleaner(mapping, hashing.key, needs_payload, suppressed, known_hashes)
    for source in segments:
        if reading is not None:
            batches: Iterable[RowBatch] = reading.rows(reading.members(source), batch_size)
        else:
            assert held is not None
            batches = [RowBatch(held.names, held.unread.get(source.key, []))]
        rows = 0
        for batch in batches:
            hashing.clean(cleaner, source.key, batch)
            rows += batch.num_rows
            if on_rows is not None:
                on_rows(batch.num_rows)
        cleaner.scan.per_segment[source.key] = rows
        log.info("segment %r: %d members read", source.name, rows)
    scan = cleaner.finish()
    if not scan.missing:
        return scan
    # Merged profiles put contacts on lists whose winning profile's payload was not kept: read
    # those rows again, by profile id; or, held, take them from the held rows, where every
    # row of the emails cleaned is.
    if reading is None:
        assert held is not None
        for kept in held.unread.values():
            for row in RowBatch(held.names, kept).dicts():
                cleaner.fill(row)
        log.info("%d merged contacts' payloads taken from the rows held", len(scan.missing))
        return scan
    ids = list(scan.missing)
    profile, key = reading.profile, reading.key
    wanted = profile.filter(profile[key].isin(ids)).select(key)
    for batch in reading.rows(wanted, batch_size, hashed=False):
        for row in batch.dicts():
            cleaner.fill(row)
    log.info("%d merged contacts' payloads read again", len(ids))
    return scan


class Hashing:
    """How each batch of members reaches the cleaner: hashed by the profile engine with only
    the rows whose payload the run needs made into contacts (:mod:`.batch_hash`), or every
    row as a Python dict, built and hashed one by one.

    The first is the fast path when the engine is DuckDB (the embedded default), the mapped
    columns go out as they are and most members are unchanged (a rerun). When most rows need
    their payload anyway (a first run) it would build them all after hashing them in SQL, so
    once a batch in which more than half did has been read, the rest of the read takes the
    second (the engine may still hash the rest of that segment; the hashes go unused)."""

    def __init__(self, mapping: FieldMapping, profile: ir.Table | None, key: str) -> None:
        self.mapping = mapping
        self.key = key
        self.sql: list[tuple[str, str]] = []
        """The columns (name, SQL) the profile engine is asked for beside each member row."""
        self.hashed = False
        """Whether batches come hashed by the engine (where they hold :data:`DIGEST_COLUMN`)."""
        if profile is None:
            return
        if profile._find_backend().name == "duckdb" and DIGEST_COLUMN not in profile.columns:
            types = column_types(profile.schema())
            expression = digest_sql(mapping, types)
            if expression is not None:
                self.sql.append((DIGEST_COLUMN, expression))
                if types.get(mapping.email) == "string":
                    self.sql.append((EMAIL_AS_IS_COLUMN, email_as_is_sql(mapping.email)))
        self.hashed = bool(self.sql)

    @classmethod
    def held(cls, mapping: FieldMapping, key: str) -> Hashing:
        """The hashing of rows read already with the engine's hashes (those :mod:`.settled`
        holds), ``key`` being the profile key's column: nothing to ask the engine."""
        hashing = cls(mapping, None, key)
        hashing.hashed = True
        return hashing

    def clean(self, cleaner: Cleaner, segment: str, batch: RowBatch) -> None:
        if not self.hashed or DIGEST_COLUMN not in batch.names:
            for row in batch.dicts():
                cleaner.row(segment, row)
            return
        digests = digests_of(batch, self.mapping)
        ids = batch.column(self.key)
        emails = batch.column(self.mapping.email)
        ready = (
            batch.column(EMAIL_AS_IS_COLUMN)
            if EMAIL_AS_IS_COLUMN in batch.names
            else [False] * batch.num_rows
        )
        wanted = cleaner.hashed(segment, ids, emails, digests, ready)
        for position, email in wanted:
            cleaner.complete(batch.row(position), email)
        if 2 * len(wanted) > batch.num_rows:
            self.sql, self.hashed = [], False


def read_members(
    ctx: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    needs_payload: NeedsPayload,
    suppressed: frozenset[str],
    known_hashes: Mapping[str, str] | None = None,
    held: Settled | None = None,
) -> MemberScan:
    """:func:`scan_members` with :func:`fewer_collections`, holding the profile engine only
    meanwhile (:func:`profile_reader`). With ``held`` (:mod:`.settled`), the rows it holds of
    the unsettled emails' members are cleaned instead of every member's, and the scan counts
    the settled contacts too (:meth:`MemberScan.settled_apart`)."""
    with profile_reader(ctx) as reader, fewer_collections():
        scan = scan_members(
            reader,
            segments,
            mapping,
            needs_payload=needs_payload,
            suppressed=suppressed,
            known_hashes=known_hashes,
            held=held,
        )
    if held is not None:
        scan.settled_apart(held.contacts, held.per_segment, held.rows)
    return scan


@contextmanager
def profile_reader(ctx: ServiceContext) -> Iterator[ServiceContext]:
    """``ctx`` when it has the profile engine open already (its owner keeps it), else a
    context of its own whose engine is closed afterwards: a DuckDB file admits one read-write
    process, and ``serve``, workers and the CLI share it."""
    reader = (
        ctx
        if ctx.profiles_opened
        else ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=ctx.actor)
    )
    try:
        yield reader
    finally:
        if reader is not ctx and reader.profiles_opened:
            reader.profiles.close()
