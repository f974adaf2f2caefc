"""Pending memberships to remove: look before deleting, when looking is cheaper.

A pending membership (a write-ahead intent whose batch never got an answer) may or may not
exist: the batch may have reached the destination before the crash, or never left. When its
person is no longer in the segment, the mirror removes it — one request per membership, most of
them wasted when the batch never left. Reading the list costs one request per page instead. So,
per list, when the pending memberships to remove outnumber the pages of the list, the run reads
the list first: those not on it are confirmed absent without a request, and only the others are
removed. Known (acknowledged) memberships are always removed directly.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from segsync.destinations.base import Destination
from segsync.domain.drift import PAGE_SIZE, normalised_members
from segsync.errors import NotFound

log = logging.getLogger(__name__)

Membership = tuple[str, str]


@dataclass
class PendingCheck:
    """What looking at the lists decided: the removals still to send, and those confirmed
    absent (the membership never came to exist)."""

    to_send: list[Membership] = field(default_factory=list)
    absent: list[Membership] = field(default_factory=list)
    lists_read: int = 0


def lists_worth_reading(
    removals: Sequence[Membership],
    pending: Collection[Membership],
    list_sizes: Mapping[str, int],
    page_size: int = PAGE_SIZE,
) -> set[str]:
    """The segments whose pending removals outnumber the pages it takes to read their list
    (``list_sizes``: segment key → memberships recorded for it, known and pending)."""
    counts = Counter(segment for segment, email in removals if (segment, email) in pending)
    return {
        segment
        for segment, count in counts.items()
        if count > max(1, -(-list_sizes.get(segment, 0) // page_size))
    }


async def check_pending(
    destination: Destination,
    removals: Sequence[Membership],
    pending: Collection[Membership],
    list_sizes: Mapping[str, int],
    list_ids: Mapping[str, str],
) -> PendingCheck:
    """Read the lists worth reading (:func:`lists_worth_reading`) and split ``removals``."""
    worth = lists_worth_reading(removals, pending, list_sizes)
    on_list: dict[str, set[str]] = {}
    for segment in sorted(worth):
        try:
            pairs = [(m.email, False) async for m in destination.list_members(list_ids[segment])]
        except NotFound:  # the list is gone meanwhile: remove as usual (that copes with it)
            continue
        on_list[segment] = set(normalised_members(pairs))
    check = PendingCheck(lists_read=len(on_list))
    for segment, email in removals:
        members = on_list.get(segment)
        if members is not None and (segment, email) in pending and email not in members:
            check.absent.append((segment, email))
        else:
            check.to_send.append((segment, email))
    if check.absent:
        log.info(
            "%d pending membership(s) to remove were never created (read %d list(s) instead)",
            len(check.absent),
            check.lists_read,
        )
    return check
