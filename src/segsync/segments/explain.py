"""Why a profile is, or is not, a member of a segment ("explain a person", docs/explain.md).

For the few profiles asked about, one query per segment evaluates on the profile engine every
rule of the definition and every condition of its rules on the profile table, with the same
expressions the compiler builds (:func:`~segsync.segments.compiler.rule_holds`,
:func:`~segsync.segments.compiler.condition_holds`), so an explanation never disagrees with
the segment's members. The rules are then replayed in order to find what decided:

* a profile outside the segment gets the **first condition that failed** in the rule that
  kept it out: in an ``all`` group the first child that failed, in an ``any`` group (where
  every child failed) the first child; nested groups are followed down to one condition;
* a rule on a related table is reported as a whole (no related row matched its conditions and
  ``having``), and a rule combined with ``except`` that held as the rule that excluded it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segsync.domain.catalog import Catalog
from segsync.domain.segment_definition import (
    AllGroup,
    AnyGroup,
    Combine,
    Condition,
    ConditionNode,
    Rule,
    SegmentDefinition,
)
from segsync.domain.segment_validation import resolve_attribute
from segsync.segments.compiler import TableSource, condition_holds, rule_holds

TEXT_LIMIT = 160
"""A condition's text is cut to this many characters (an ``in`` list may be long)."""

FAILED_CONDITION = "condition"
NO_RELATED_ROW = "related"
EXCLUDED = "excluded"


@dataclass(frozen=True)
class FailedCondition:
    """What kept a profile out of a segment. ``kind``: ``condition`` (a condition on the
    profile table failed: ``value`` is the profile's value of its attribute), ``related`` (a
    rule on a related table did not hold) or ``excluded`` (an ``except`` rule held)."""

    kind: str
    rule: int
    """The rule's number, from 1."""
    path: str
    """Where it is in the definition, e.g. ``rules[0].conditions.all[1]``."""
    text: str
    attribute: str | None = None
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "path": self.path,
            "text": self.text,
            "attribute": self.attribute,
            "value": self.value,
        }

    @property
    def sentence(self) -> str:
        """The reason in words, for pages and the CLI."""
        if self.kind == EXCLUDED:
            return f"excluded by rule {self.rule} (except): {self.text}"
        if self.kind == NO_RELATED_ROW:
            return f"rule {self.rule} did not hold: {self.text}"
        shown = "empty" if self.value is None else json.dumps(self.value, default=str)
        return f"rule {self.rule}: {self.text} failed (the profile's {self.attribute}: {shown})"


@dataclass(frozen=True)
class Verdict:
    """One profile against one segment: ``member``, whether each rule held on its own, and
    for a non-member what kept it out."""

    member: bool
    rules: tuple[bool, ...]
    failed: FailedCondition | None


def condition_text(node: Condition) -> str:
    """``City equals "Lisbon"``: a condition as people read it."""
    text = f"{node.attribute} {node.op}"
    if node.value is not None:
        text += " " + json.dumps(node.value, default=str, ensure_ascii=False)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _rule_text(rule: Rule) -> str:
    if rule.related is not None:
        if rule.having is not None:
            return (
                f"this profile's {rule.related} rows do not meet the rule's conditions and having"
            )
        return f"no {rule.related} row of this profile matches the rule's conditions"
    return "the rule's conditions held"


def _leaves(node: ConditionNode, path: str) -> list[tuple[str, Condition]]:
    if isinstance(node, AllGroup | AnyGroup):
        word, children = ("all", node.all) if isinstance(node, AllGroup) else ("any", node.any)
        found: list[tuple[str, Condition]] = []
        for i, child in enumerate(children):
            found += _leaves(child, f"{path}.{word}[{i}]")
        return found
    return [(path, node)]


def _holds(node: ConditionNode, path: str, truth: Mapping[str, bool]) -> bool:
    if isinstance(node, AllGroup):
        return all(_holds(c, f"{path}.all[{i}]", truth) for i, c in enumerate(node.all))
    if isinstance(node, AnyGroup):
        return any(_holds(c, f"{path}.any[{i}]", truth) for i, c in enumerate(node.any))
    return truth[path]


def _first_failed(node: ConditionNode, path: str, truth: Mapping[str, bool]) -> str:
    """The path of the first condition that made ``node`` fail (``node`` failed)."""
    if isinstance(node, AllGroup):
        for i, child in enumerate(node.all):
            if not _holds(child, f"{path}.all[{i}]", truth):
                return _first_failed(child, f"{path}.all[{i}]", truth)
        raise AssertionError("an all group that failed has a child that failed")
    if isinstance(node, AnyGroup):
        return _first_failed(node.any[0], f"{path}.any[0]", truth)
    return path


def _replay(rules: Sequence[Rule], held: Sequence[bool]) -> list[bool]:
    """Membership after each rule, combining them in order as the compiler does."""
    member = [held[0]]
    for rule, holds in zip(rules[1:], held[1:], strict=True):
        if rule.combine is Combine.UNION:
            member.append(member[-1] or holds)
        elif rule.combine is Combine.INTERSECT:
            member.append(member[-1] and holds)
        else:
            member.append(member[-1] and not holds)
    return member


def _deciding_rule(rules: Sequence[Rule], held: Sequence[bool], member: list[bool]) -> int:
    """For a non-member: the index of the rule that kept it out (an ``intersect`` rule that
    failed, an ``except`` rule that held, or else the first rule), walking back from the last."""
    index = len(rules) - 1
    while index > 0:
        combine = rules[index].combine
        if combine is Combine.INTERSECT and not held[index]:
            return index
        if combine is Combine.EXCEPT and held[index] and member[index - 1]:
            return index
        index -= 1
    return 0


def _narrowed(tables: TableSource, catalog: Catalog, ids: list[Any]) -> Callable[[str], Any]:
    """The tables as the compiler asks for them, cut down to what these profiles need: the
    profile table to their rows, and a related table keyed on the profile key to the rows of
    these profiles (a rule on it groups by that key, so their groups are whole). The engine
    then reads a handful of rows, not every related row of every profile."""
    get: Callable[[str], Any] = tables.__getitem__ if isinstance(tables, Mapping) else tables
    key = catalog.profile_key
    profile = get(catalog.profile_table)
    cut = {catalog.profile_table: profile.filter(profile[key].isin(ids))}

    def table(name: str) -> Any:
        if name not in cut:
            found = get(name)
            rel = catalog.relationship_to_profile(name)
            if rel is not None and rel.parent_column == key:
                column = found[rel.child_column]
                if column.type() == profile[key].type():
                    found = found.filter(column.isin(ids))
            cut[name] = found
        return cut[name]

    return table


def explain_profiles(
    defn: SegmentDefinition,
    catalog: Catalog,
    tables: TableSource,
    now: datetime,
    profile_ids: Sequence[Any],
) -> dict[str, Verdict]:
    """Each of ``profile_ids`` (profile keys) against ``defn`` (validated), by the key as
    text. One query on the profile engine, over these profiles' rows only; ids that are not in
    the profile table are left out of the answer."""
    if not profile_ids:
        return {}
    get = _narrowed(tables, catalog, list(profile_ids))
    profile = get(catalog.profile_table)
    columns: dict[str, Any] = {"_key": profile[catalog.profile_key]}
    leaves: dict[int, list[tuple[str, Condition]]] = {}
    for i, rule in enumerate(defn.rules):
        columns[f"_r{i}"] = rule_holds(rule, catalog, get, now)
        if rule.related is None and rule.conditions is not None:
            leaves[i] = _leaves(rule.conditions, f"rules[{i}].conditions")
            for j, (_, leaf) in enumerate(leaves[i]):
                columns[f"_c{i}_{j}"] = condition_holds(leaf, catalog, profile, now)
                column = resolve_attribute(catalog, leaf.attribute, None).column
                columns[f"_v{i}_{j}"] = profile[column]
    rows = profile.select(**columns).to_pyarrow().to_pylist()
    verdicts: dict[str, Verdict] = {}
    for row in rows:
        held = tuple(bool(row[f"_r{i}"]) for i in range(len(defn.rules)))
        verdicts[str(row["_key"])] = _verdict(defn, held, leaves, row)
    return verdicts


def _verdict(
    defn: SegmentDefinition,
    held: tuple[bool, ...],
    leaves: Mapping[int, list[tuple[str, Condition]]],
    row: Mapping[str, Any],
) -> Verdict:
    member = _replay(defn.rules, held)
    if member[-1]:
        return Verdict(True, held, None)
    index = _deciding_rule(defn.rules, held, member)
    excluded = index > 0 and defn.rules[index].combine is Combine.EXCEPT
    rule = defn.rules[index]
    path = f"rules[{index}]"
    if excluded:
        return Verdict(False, held, FailedCondition(EXCLUDED, index + 1, path, _rule_text(rule)))
    if index not in leaves:
        failed = FailedCondition(NO_RELATED_ROW, index + 1, path, _rule_text(rule))
        return Verdict(False, held, failed)
    truth = {p: bool(row[f"_c{index}_{j}"]) for j, (p, _) in enumerate(leaves[index])}
    assert rule.conditions is not None
    leaf_path = _first_failed(rule.conditions, f"{path}.conditions", truth)
    j, leaf = next((j, c) for j, (p, c) in enumerate(leaves[index]) if p == leaf_path)
    failed = FailedCondition(
        FAILED_CONDITION,
        index + 1,
        leaf_path,
        condition_text(leaf),
        leaf.attribute,
        row[f"_v{index}_{j}"],
    )
    return Verdict(False, held, failed)
