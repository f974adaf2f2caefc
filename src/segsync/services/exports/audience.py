"""What a run of an export would find, for the warnings of ``segsync exports show`` (and of
``create`` and ``edit``, which print it): the distinct valid emails that the contract limit is
compared with (X3), and whether the email attribute holds emails at all."""

from __future__ import annotations

from collections.abc import Sequence

from segsync.domain.emails import normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.domain.segment_definition import parse_definition
from segsync.errors import SegsyncError
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import preview
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.services.sync.read import SegmentSource, scan_members
from segsync.storage.repositories.erasures import ErasureRepository

EMAIL_SAMPLE = 1_000
"""How many members (the first by profile id) the email check reads."""

MOSTLY_NOT_EMAILS = 0.5
"""The share of sampled members without a valid email above which the export is warned about."""


def distinct_valid_emails(
    ctx: ServiceContext, segments: Sequence[tuple[int, str, str]], mapping: FieldMapping
) -> int:
    """What a run compares with the contract limit: the distinct valid emails of the members of
    the ``(id, name, definition)`` segments, forgotten people left out, read as a run reads
    them (no payload is kept)."""
    with ctx.db.session() as session:
        suppressed = frozenset(ErasureRepository(session).suppressed_digests())
    sources = [SegmentSource(str(sid), name, definition) for sid, name, definition in segments]
    scan = scan_members(
        ctx, sources, mapping, needs_payload=lambda *_: False, suppressed=suppressed
    )
    return scan.contacts


def email_attribute_warning(
    ctx: ServiceContext, segments: Sequence[tuple[int, str, str]], attribute: str
) -> str | None:
    """A warning when most of the first :data:`EMAIL_SAMPLE` members of the first segment that
    has members hold no valid email in ``attribute`` (e.g. ``--email City``): a run would set
    them all aside as invalid. ``None`` when they mostly are emails, or nothing can be read."""
    try:
        cat = catalog(ctx)
        for _, _, definition in segments:
            members = compile_segment(
                parse_definition(definition), cat, ctx.profiles.table, ctx.now()
            )
            sample = preview(
                members, ctx.profiles.table(cat.profile_table), cat.profile_key, EMAIL_SAMPLE,
                [attribute],
            )  # fmt: skip
            values = sample.column(attribute).to_pylist() if sample.num_rows else []
            if values:
                break
        else:
            return None
    except SegsyncError:
        return None  # the member counts say why, in their own warning
    invalid = sum(1 for value in values if normalise_email(value)[0] is None)
    if invalid <= MOSTLY_NOT_EMAILS * len(values):
        return None
    return (
        f"email: {invalid:,} of the first {len(values):,} members have no valid email in "
        f"attribute {attribute!r}; a run would set them aside as invalid. Is it the attribute "
        "holding the email? Change it with --email ATTR"
    )
