"""What a run of an export would find, for the warnings of ``segsync exports show`` (and of
``create`` and ``edit``, which print it) and of the web form's live check: the distinct valid
emails that the contract limit is compared with (X3, E3), and whether the email attribute holds
emails at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segsync.destinations.registry import capabilities
from segsync.domain.emails import normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.domain.permissions import Action, decide
from segsync.domain.segment_definition import parse_definition
from segsync.errors import SegsyncError
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.services.sync.read import SegmentSource, scan_members
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.exports import ConnectionSummary

EMAIL_SAMPLE = 1_000
"""How many members (the first by profile id) the email check reads."""

MOSTLY_NOT_EMAILS = 0.5
"""The share of sampled members without a valid email above which the export is warned about."""


def contract_warning(
    total: int, connection: ConnectionSummary, show_limit: bool, *, emails: bool = False
) -> str | None:
    """E3: the warning shown when the selection exceeds the connection's contract limit (named
    only when ``show_limit``). ``emails``: ``total`` counts distinct valid emails, as a run does
    (X3); otherwise it counts distinct profiles, of which a run may find fewer emails."""
    limit, name = connection.contract_limit, connection.name
    if total <= limit:
        return None
    amount = f" of {limit:,}" if show_limit else ""
    if emails:
        return (
            f"the selected segments hold {total:,} distinct valid emails, more than the "
            f"contract limit{amount} of connection {name!r}: runs will be skipped and send "
            "nothing until the selection fits (or an administrator raises the limit)"
        )
    return (
        f"the selected segments hold {total:,} distinct profiles, more than the contract "
        f"limit{amount} of connection {name!r}: a run counts their distinct valid emails, and "
        "is skipped (sending nothing) if those too are more than the limit"
    )


def audience_warnings(
    ctx: ServiceContext,
    segments: Sequence[tuple[int, str, str]],
    matching: Mapping[str, Any],
    connection: ConnectionSummary,
    profiles: int | None,
) -> tuple[str | None, str | None]:
    """The warnings of a live check of the ``(id, name, definition)`` segments sent through
    ``connection`` with the data ``matching`` (an export's stored mapping; ``{"email": ATTR}``
    at least): over the contract limit, counted as a run counts when the ``profiles`` (their
    distinct total) exceed it; and the email attribute mostly holding no email. Returns
    ``(limit warning, email warning)``, each ``None`` when there is nothing to say."""
    show_limit = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS).allowed
    warning = None
    if profiles is not None and profiles > connection.contract_limit:
        try:
            catalogue = capabilities(connection.type).catalogue
            mapping = FieldMapping.from_dict(matching, catalogue)
            count = distinct_valid_emails(ctx, segments, mapping)
            warning = contract_warning(count, connection, show_limit, emails=True)
        except SegsyncError:  # e.g. no such attribute: the profiles are what is known
            warning = contract_warning(profiles, connection, show_limit)
    return warning, email_attribute_warning(ctx, segments, str(matching["email"]))


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
    from segsync.segments.compiler import compile_segment  # Ibis: imported where it reads
    from segsync.segments.evaluate import preview

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
