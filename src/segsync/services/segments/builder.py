"""What the segment builder of the web UI and the API need (S2, S3, S6, S7).

* :func:`vocabulary` — the operators each attribute type accepts, the aggregates and what they
  take, the value shapes: the builder offers only operators that fit (S2) and the right input.
* :func:`estimate_definition` — validate a definition that is not saved yet and count its
  members, so the builder shows the estimated size while the user edits. Problems come back
  as ``(path, message)`` pairs (``rules[0].conditions.all[1]``), never raised.
* :func:`quick_definition` — the one-condition definition of a quick segment (S6).
* :func:`segment_by_id` — segments are addressed by id in URLs (names may hold any character).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from segsync.domain.catalog import AttrType
from segsync.domain.permissions import Action, require
from segsync.domain.segment_definition import (
    Combine,
    DefinitionError,
    definition_from_dict,
    parse_definition,
)
from segsync.domain.segment_operators import (
    AGGREGATE_INPUT_TYPES,
    HAVING_OPS_BY_TYPE,
    LIST_OPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PERIOD_OPS,
    PERIOD_UNITS,
    Aggregate,
    Op,
)
from segsync.domain.segment_validation import definition_errors
from segsync.errors import InputError, SegsyncError
from segsync.segments import evaluate
from segsync.segments.compiler import compile_segment
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository

__all__ = [
    "Estimate",
    "estimate_definition",
    "quick_definition",
    "segment_by_id",
    "vocabulary",
]

UNNAMED = "(unnamed segment)"
MAX_DEFINITION_CHARS = 200_000

_LABELS = {
    Op.EQUALS: "equals",
    Op.NOT_EQUALS: "does not equal",
    Op.IN: "is one of",
    Op.NOT_IN: "is none of",
    Op.CONTAINS: "contains",
    Op.NOT_CONTAINS: "does not contain",
    Op.STARTS_WITH: "starts with",
    Op.ENDS_WITH: "ends with",
    Op.IS_EMPTY: "is empty",
    Op.IS_NOT_EMPTY: "is not empty",
    Op.GREATER_THAN: "is greater than",
    Op.GREATER_OR_EQUAL: "is at least",
    Op.LESS_THAN: "is less than",
    Op.LESS_OR_EQUAL: "is at most",
    Op.BETWEEN: "is between",
    Op.ON: "is on",
    Op.BEFORE: "is before",
    Op.AFTER: "is after",
    Op.WITHIN_LAST: "is within the last",
    Op.NOT_WITHIN_LAST: "is not within the last",
    Op.IS_TRUE: "is true",
    Op.IS_FALSE: "is false",
}


def _value_kind(op: Op) -> str:
    """The shape of the value ``op`` takes: none, list, pair (between), period or scalar."""
    if op in NO_VALUE_OPS:
        return "none"
    if op in LIST_OPS:
        return "list"
    if op is Op.BETWEEN:
        return "pair"
    if op in PERIOD_OPS:
        return "period"
    return "scalar"


def vocabulary() -> dict[str, Any]:
    """The builder's vocabulary, JSON-ready: attribute types, the operators each accepts (with
    a label and the value shape), the ``having`` operators by aggregate result type, the
    aggregates with the attribute types they take, the combine modes and period units."""
    return {
        "types": [t.value for t in AttrType],
        "operators": {op.value: {"label": _LABELS[op], "value": _value_kind(op)} for op in Op},
        "ops_by_type": {t.value: [op.value for op in ops] for t, ops in OPS_BY_TYPE.items()},
        "having_ops_by_type": {
            t.value: [op.value for op in ops] for t, ops in HAVING_OPS_BY_TYPE.items()
        },
        "aggregates": {
            agg.value: [t.value for t in AGGREGATE_INPUT_TYPES[agg]] for agg in Aggregate
        },
        "aggregate_result": {
            "count": AttrType.NUMBER.value,
            "sum": AttrType.NUMBER.value,
            "avg": AttrType.NUMBER.value,
            "min": "same",
            "max": "same",
        },
        "combine": [c.value for c in Combine],
        "period_units": list(PERIOD_UNITS),
    }


@dataclass(frozen=True)
class Estimate:
    """The estimated size of a definition not saved yet: ``count`` is ``None`` when it has
    ``errors`` (``(path, message)`` pairs; path ``""`` for the whole definition)."""

    count: int | None
    errors: list[tuple[str, str]] = field(default_factory=list)
    name: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "name": self.name,
            "errors": [{"path": path, "message": message} for path, message in self.errors],
        }


def _raw(definition: str | Mapping[str, Any]) -> Any:
    if not isinstance(definition, str):
        return dict(definition)
    if len(definition) > MAX_DEFINITION_CHARS:
        raise DefinitionError([("", f"the definition is longer than {MAX_DEFINITION_CHARS:,}")])
    try:
        return yaml.safe_load(definition)
    except yaml.YAMLError:
        parse_definition(definition)  # raises the precise DefinitionError (line, column)
        raise  # pragma: no cover - parse_definition always raises here


def estimate_definition(ctx: ServiceContext, definition: str | Mapping[str, Any]) -> Estimate:
    """Validate ``definition`` (YAML/JSON text, or parsed data) against the profile schema and
    count its members now, without saving anything (the builder's estimated size, S7).

    A missing name is no problem here (the user may not have typed it yet). Who may create
    segments may estimate (the builder is theirs); others get ``PermissionDenied``.
    """
    require(ctx.actor, Action.CREATE_SEGMENT)
    try:
        raw = _raw(definition)
        if isinstance(raw, dict) and not str(raw.get("name") or "").strip():
            raw = {**raw, "name": UNNAMED}
        defn = definition_from_dict(raw)
    except DefinitionError as err:
        return Estimate(None, err.errors)
    name = None if defn.name == UNNAMED else defn.name
    try:
        cat = catalog(ctx)
    except InputError as err:
        return Estimate(None, [("", err.message)], name)
    problems = definition_errors(defn, cat)
    if problems:
        return Estimate(None, list(problems), name)
    try:
        members = compile_segment(defn, cat, ctx.profiles.table, ctx.now())
        return Estimate(evaluate.count(members), [], name)
    except DefinitionError as err:
        return Estimate(None, err.errors, name)
    except SegsyncError as err:
        return Estimate(None, [("", err.message)], name)


def quick_definition(name: str, attribute: str, op: str, value: Any = None) -> str:
    """The JSON text of a one-condition segment (S6): ``attribute op value``. An attribute of a
    related table (``orders.Amount``) makes a related rule over that table."""
    try:
        chosen = Op(op)
    except ValueError:
        raise InputError(f"op: {op!r} is not an operator of the segment format") from None
    condition: dict[str, Any] = {"attribute": attribute, "op": chosen.value}
    if value is not None and chosen not in NO_VALUE_OPS:
        condition["value"] = value
    rule: dict[str, Any] = {"conditions": {"all": [condition]}}
    table, dot, _ = attribute.partition(".")
    if dot:
        rule = {"related": table, **rule}
    return json.dumps({"name": name, "rules": [rule]}, ensure_ascii=False)


def segment_by_id(ctx: ServiceContext, segment_id: int) -> SegmentRecord:
    """The segment with ``segment_id`` (``NotFound`` if none). Anyone may view segments."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return SegmentRepository(session).get(segment_id)
