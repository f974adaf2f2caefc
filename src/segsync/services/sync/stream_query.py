"""A first run's stream's SQL (:mod:`.stream`): every segment's member rows in one DuckDB query,
sorted by email key, and the checks that say whether the stream may stand for the planned run.
:mod:`.compiled` keeps it per export with the settled walk's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from segsync.domain.emails import normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.profiles.sql import quote_identifier
from segsync.services.context import ServiceContext
from segsync.services.sync.batch_hash import column_types
from segsync.services.sync.by_email import ASCII_ONLY, email_key, members_by_email
from segsync.services.sync.compiled import Catalog, member_sqls
from segsync.services.sync.read import MemberReading, SegmentSource
from segsync.services.sync.target import RunTarget


class NotKept(Exception):
    """The stream's SQL was not kept, and a process that never opens the metadata DB asked."""


@dataclass
class StreamQuery:
    """The stream's SQL: every segment's member rows (the email key, the segment key, then the
    row as :func:`.read.scan_members` reads it), by email key; and the profile table's emails."""

    members: str
    emails: str
    column: str

    @classmethod
    def of(
        cls, reader: ServiceContext, segments: Sequence[SegmentSource], mapping: FieldMapping
    ) -> StreamQuery | None:
        reading = MemberReading.of(reader, mapping)
        profile = reading.profile
        if column_types(profile.schema()).get(mapping.email) != "string":
            return None
        members = members_by_email(reading, segments, mapping.email, hashed=False)
        if members is None:
            return None
        emails = str(profile._find_backend().compile(profile.select(mapping.email)))
        return cls(members, emails, mapping.email)

    @classmethod
    def kept(
        cls, reader: ServiceContext, target: RunTarget, catalog: Catalog | None = None
    ) -> tuple[StreamQuery | None, bool]:
        """:meth:`of`, as kept when nothing it is made of has changed (:mod:`.compiled`); and
        whether the settled walk's SQL, for the next run, was kept beside it. With ``catalog``
        (the metadata DB's part of the stamp, read by the run's process): only as kept —
        :class:`NotKept` where it was not, for compiling may read the metadata DB."""
        t = target
        kept = member_sqls(
            reader, t.export_id, ("stream",), t.segments, t.mapping,
            catalog=catalog, compiling=catalog is None,
        )  # fmt: skip
        if "stream" not in kept:
            raise NotKept
        query = kept["stream"]
        return (None if query is None else cls(**query)), "walk" in kept

    def refusal(self, cursor: Any, limit: int) -> str | None:
        """Why the stream could not stand for the planned run, or None: more profiles than
        the contract limit, or an email that is not ASCII and that DuckDB and Python normalise
        apart."""
        (profiles,) = cursor.execute(f"SELECT count(*) FROM ({self.emails}) AS p").fetchone()  # noqa: S608
        if profiles > limit:
            return f"{profiles:,} profiles, more than the contract limit of {limit:,}"
        email = quote_identifier(self.column)
        cursor.execute(
            f"SELECT DISTINCT {email}, {email_key(self.column)} FROM ({self.emails}) AS p "  # noqa: S608
            f"WHERE NOT regexp_matches({email}, {ASCII_ONLY})"
        )
        for raw, key in cursor.fetchall():
            normal, _ = normalise_email(raw)
            if normal is not None and normal != key:
                return "an email DuckDB and Python normalise apart"
        return None


def stream_sql(
    reader: ServiceContext, segments: Sequence[SegmentSource], mapping: FieldMapping
) -> dict[str, str] | None:
    """A first run's stream's SQL (:class:`StreamQuery`) as :mod:`.compiled` keeps it."""
    query = StreamQuery.of(reader, segments, mapping)
    return None if query is None else asdict(query)
