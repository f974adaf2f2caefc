"""The blast-radius hold (docs/exports.md "Blast-radius hold"): before a run sends anything,
its plan is compared with each list's recorded membership, and a plan that would empty or
flood a list stops the run in status Held until someone approves or dismisses it.

Pure logic: the rule (:class:`HoldRule`, an export's two thresholds), the verdict on a plan
(:func:`judge`) and the plan's fingerprint (:func:`plan_fingerprint`), which says whether a
plan made again after an approval is the very plan that was shown.

The rule, per list:

* **removals**: the plan removes more than ``removals`` (a share, 20% by default) of the
  members the list has now;
* **growth**: the list would end more than ``growth`` times (3× by default) its size now,
  *and* gain at least :data:`GROWTH_MINIMUM` people (a list of 10 growing to 40 is not news);
* a list's **first fill** is never held: a list with no recorded member yet (new, or made
  again after it was deleted by hand) has nothing to compare with.

Either threshold may be off (``None``).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.plan import SyncPlan
from segsync.domain.sync_state import SyncStateView
from segsync.errors import InputError

DEFAULT_REMOVALS = 0.20
DEFAULT_GROWTH = 3.0
GROWTH_MINIMUM = 1_000
"""A list must gain at least this many people for its growth to hold a run."""
SAMPLE_SIZE = 10
"""Emails shown per list of who would leave and who would join."""
OFF = "off"


def _parse_threshold(
    text: str | float | None, *, suffixes: tuple[str, ...], scale: float
) -> float | None:
    """A threshold as given (``None`` or ``"off"``: off), as a number: the text without its
    unit suffix, divided by ``scale``. ``ValueError`` when it is no number."""
    if text is None:
        return None
    if isinstance(text, float | int):
        return float(text)
    raw = text.strip().lower()
    if raw == OFF:
        return None
    for suffix in suffixes:
        raw = raw.removesuffix(suffix)
    return float(raw.strip()) / scale


def parse_removals(text: str | float | None) -> float | None:
    """``"20%"`` → 0.2; ``"off"`` (or ``None``) → off. A share of a list: more than 0%, at
    most 100%. A bare number is read as a percentage (``"20"`` is 20%)."""
    try:
        value = _parse_threshold(text, suffixes=("%",), scale=100)
    except ValueError:
        raise InputError(
            f"hold removals {text!r}: give a share of a list such as 20% (or off)"
        ) from None
    if value is not None and (not math.isfinite(value) or value <= 0 or value > 1):
        raise InputError(f"hold removals {text!r}: give a share above 0% and at most 100% (or off)")
    return value


def parse_growth(text: str | float | None) -> float | None:
    """``"3x"`` → 3.0; ``"off"`` (or ``None``) → off. A factor above 1 (``"3"`` is 3×)."""
    try:
        value = _parse_threshold(text, suffixes=("x", "×"), scale=1)
    except ValueError:
        raise InputError(f"hold growth {text!r}: give a factor such as 3x (or off)") from None
    if value is not None and (not math.isfinite(value) or value <= 1 or value > 1_000_000):
        raise InputError(f"hold growth {text!r}: give a factor above 1, such as 3x (or off)")
    return value


def removals_text(value: float | None) -> str:
    """0.2 → ``"20%"``; off → ``"off"``."""
    return OFF if value is None else f"{value * 100:g}%"


def growth_text(value: float | None) -> str:
    """3.0 → ``"3x"``; off → ``"off"``."""
    return OFF if value is None else f"{value:g}x"


@dataclass(frozen=True)
class HoldRule:
    """An export's thresholds; ``None`` turns one off. On by default."""

    removals: float | None = DEFAULT_REMOVALS
    growth: float | None = DEFAULT_GROWTH

    @property
    def is_off(self) -> bool:
        return self.removals is None and self.growth is None

    def to_dict(self) -> dict[str, str]:
        return {"removals": removals_text(self.removals), "growth": growth_text(self.growth)}

    def describe(self) -> str:
        parts = []
        if self.removals is not None:
            parts.append(f"removing more than {removals_text(self.removals)} of a list")
        if self.growth is not None:
            parts.append(
                f"growing a list more than {growth_text(self.growth)} "
                f"(by at least {GROWTH_MINIMUM:,} people)"
            )
        return "off" if not parts else "when a run would be " + ", or ".join(parts)


@dataclass(frozen=True)
class ListVerdict:
    """One list of the plan: its size now (``before``, the recorded members) and after the
    run, the segment's members now, what the run adds and removes, why it holds (if it
    does), and samples of who would leave and join."""

    segment: str
    before: int
    after: int
    members: int
    to_add: int
    to_remove: int
    first_fill: bool
    reasons: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()
    joining: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": int(self.segment) if self.segment.isdigit() else self.segment,
            "before": self.before,
            "after": self.after,
            "segment_members": self.members,
            "to_add": self.to_add,
            "to_remove": self.to_remove,
            "first_fill": self.first_fill,
            "held": self.held,
            "reasons": list(self.reasons),
            "leaving_sample": list(self.leaving),
            "joining_sample": list(self.joining),
        }


@dataclass(frozen=True)
class HoldVerdict:
    """What the rule says of a plan: the lists that hold it (``held``) and every list's
    figures, plus the plan's fingerprint — worked out when first asked for (a pass over every
    item: 0.1 s of a 100,000-contact first run), as only a held, approved or dry run keeps it."""

    rule: HoldRule
    lists: tuple[ListVerdict, ...]
    plan: SyncPlan = field(repr=False, compare=False)
    reasons: tuple[str, ...] = field(default=())

    @property
    def held(self) -> bool:
        return bool(self.reasons)

    @functools.cached_property
    def fingerprint(self) -> str:
        """:func:`plan_fingerprint` of the plan judged."""
        return plan_fingerprint(self.plan)

    def to_dict(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "rule": self.rule.to_dict(),
            "reasons": list(self.reasons),
            "fingerprint": self.fingerprint,
            "lists": [item.to_dict() for item in self.lists],
        }


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "all"


def judge(
    plan: SyncPlan,
    state: SyncStateView,
    rule: HoldRule,
    names: Mapping[str, str] | None = None,
) -> HoldVerdict:
    """The rule's verdict on ``plan``, built on ``state`` (the recorded memberships, pending
    ones included: they may exist). ``names`` maps segment keys to the names reasons use."""
    names = names or {}
    recorded = state.recorded_per_segment()
    before = {key: recorded[key] for key in plan.segments}
    leaving: dict[str, list[str]] = {key: [] for key in plan.segments}
    for segment, email in plan.removals:
        bucket = leaving.get(segment)
        if bucket is not None and len(bucket) < SAMPLE_SIZE:
            bucket.append(email)
    joining: dict[str, list[str]] = {key: [] for key in plan.segments}
    for item in plan.items():
        if item.segment is None:
            continue
        bucket = joining.get(item.segment)
        if bucket is not None and len(bucket) < SAMPLE_SIZE:
            bucket.append(item.email)
    fresh = set(plan.lists_to_ensure)
    verdicts = []
    all_reasons: list[str] = []
    for key in plan.segments:
        counts = plan.per_list[key]
        first_fill = key in fresh or before[key] == 0
        now = 0 if key in fresh else before[key]
        after = max(0, now + counts.to_add - counts.to_remove)
        reasons: list[str] = []
        name = names.get(key, key)
        if not first_fill:
            if rule.removals is not None and counts.to_remove > rule.removals * now:
                reasons.append(
                    f"list {name!r} would lose {counts.to_remove:,} of its {now:,} members "
                    f"({_share(counts.to_remove, now)}; the export holds above "
                    f"{removals_text(rule.removals)})"
                )
            if (
                rule.growth is not None
                and after > rule.growth * now
                and counts.to_add >= GROWTH_MINIMUM
            ):
                reasons.append(
                    f"list {name!r} would grow from {now:,} to {after:,} members "
                    f"({after / now:.1f}x; the export holds above {growth_text(rule.growth)})"
                )
        verdicts.append(
            ListVerdict(
                segment=key,
                before=now,
                after=after,
                members=counts.members,
                to_add=counts.to_add,
                to_remove=counts.to_remove,
                first_fill=first_fill,
                reasons=tuple(reasons),
                leaving=tuple(leaving[key]),
                joining=tuple(joining[key]),
            )
        )
        all_reasons.extend(reasons)
    return HoldVerdict(
        rule=rule,
        lists=tuple(verdicts),
        plan=plan,
        reasons=tuple(all_reasons),
    )


def plan_fingerprint(plan: SyncPlan) -> str:
    """A digest of everything the plan would send — lists to make, every item (email, list,
    payload hash) and every removal — in the plan's own deterministic order. Two plans with
    one fingerprint send the same requests' contents."""
    digest = hashlib.sha256()
    for key in plan.lists_to_ensure:
        digest.update(f"L\x1f{key}\x1e".encode())
    for item in plan.items():
        digest.update(
            f"I\x1f{item.email}\x1f{item.segment or ''}\x1f{item.payload_hash}\x1e".encode()
        )
    for segment, email in plan.removals:
        digest.update(f"R\x1f{segment}\x1f{email}\x1e".encode())
    return digest.hexdigest()
