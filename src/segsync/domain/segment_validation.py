"""Checking a segment definition against the catalog before anything runs (S7).

Every problem is reported with the path of its node, all at once::

    rules[1].conditions.all[0]: unknown attribute 'Cty' (did you mean 'City'?)

Attribute names: a profile attribute is ``City`` (or ``customers.City``); an attribute of the
rule's related table is ``orders.Amount`` (or plain ``Amount`` when the profile has no such
attribute). Aggregates in ``having`` take attributes of the related table only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches

from segsync.domain.catalog import AttrType, Catalog
from segsync.domain.segment_definition import (
    AggregateCondition,
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    DefinitionError,
    HavingAll,
    HavingAny,
    HavingNode,
    Rule,
    SegmentDefinition,
)
from segsync.domain.segment_operators import (
    AGGREGATE_INPUT_TYPES,
    HAVING_OPS_BY_TYPE,
    OPS_BY_TYPE,
    Aggregate,
    Op,
    value_problem,
)

Errors = list[tuple[str, str]]


@dataclass(frozen=True)
class ResolvedAttribute:
    """Where an attribute name of a definition points: a column of a table, with its type."""

    table: str
    column: str
    type: AttrType


class AttributeProblem(Exception):
    """An attribute name that does not resolve; ``str()`` is the message for the user."""


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    found = get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in candidates}
        found = [lowered[name.lower()]] if name.lower() in lowered else []
    return f" (did you mean '{found[0]}'?)" if found else ""


def related_table_problem(catalog: Catalog, related: str) -> str | None:
    """Why ``related`` cannot be a rule's related table, or None."""
    if related == catalog.profile_table:
        return f"'{related}' is the profile table itself; leave out `related` to use its attributes"
    if related not in catalog.tables:
        others = [t for t in catalog.tables if t != catalog.profile_table]
        return f"unknown related table '{related}'{_did_you_mean(related, others)}"
    if catalog.relationship_to_profile(related) is None:
        return (
            f"table '{related}' has no declared relationship to the profile table "
            f"'{catalog.profile_table}'; declare one with `segsync profiles relate`"
        )
    return None


def resolve_attribute(catalog: Catalog, name: str, related: str | None) -> ResolvedAttribute:
    """Resolve ``name`` as used in a rule related to ``related`` (None: a profile rule).

    Raises :class:`AttributeProblem` with a message naming what is wrong and a close match.
    """
    profile = catalog.profile
    if name in profile.columns:
        return ResolvedAttribute(profile.name, name, profile.columns[name])
    table_name, dot, column = name.partition(".")
    if dot and table_name == profile.name and column in profile.columns:
        return ResolvedAttribute(profile.name, column, profile.columns[column])
    if dot and table_name in catalog.tables and table_name != profile.name:
        table = catalog.tables[table_name]
        if related is None:
            raise AttributeProblem(
                f"attribute '{name}' is in the related table '{table_name}'; "
                f"add `related: {table_name}` to this rule to use it"
            )
        if table_name != related:
            raise AttributeProblem(
                f"attribute '{name}' is in table '{table_name}', but this rule is related "
                f"to '{related}'"
            )
        if column in table.columns:
            return ResolvedAttribute(table_name, column, table.columns[column])
    if not dot and related is not None and related in catalog.tables:
        table = catalog.tables[related]
        if name in table.columns:
            return ResolvedAttribute(related, name, table.columns[name])
    if not dot and related is None:
        for other in catalog.tables.values():
            if other.name != profile.name and name in other.columns:
                raise AttributeProblem(
                    f"unknown attribute '{name}' in the profile table; the related table "
                    f"'{other.name}' has it: use '{other.name}.{name}' with "
                    f"`related: {other.name}`"
                )
    if dot and table_name == profile.name:
        hint = _did_you_mean(column, profile.columns)
        raise AttributeProblem(f"unknown attribute '{name}'{hint}")
    if dot and table_name not in catalog.tables:
        hint = _did_you_mean(table_name, catalog.tables)
        raise AttributeProblem(f"unknown table '{table_name}' in attribute '{name}'{hint}")
    candidates = list(profile.columns)
    if related is not None and related in catalog.tables:
        candidates += [f"{related}.{c}" for c in catalog.tables[related].columns]
    raise AttributeProblem(f"unknown attribute '{name}'{_did_you_mean(name, candidates)}")


def _op_problem(op_name: str, attr_type: AttrType, allowed: tuple[Op, ...], what: str) -> str:
    if op_name not in Op.__members__.values():
        return f"unknown operator '{op_name}'{_did_you_mean(op_name, [o.value for o in Op])}"
    names = ", ".join(o.value for o in allowed)
    return f"operator '{op_name}' does not fit {what} of type {attr_type}; it takes: {names}"


def _check_condition(
    cond: Condition, path: str, catalog: Catalog, related: str | None, errors: Errors
) -> None:
    try:
        attr = resolve_attribute(catalog, cond.attribute, related)
    except AttributeProblem as exc:
        errors.append((path, str(exc)))
        return
    allowed = OPS_BY_TYPE[attr.type]
    if cond.op not in allowed:
        errors.append((path, _op_problem(cond.op, attr.type, allowed, f"'{cond.attribute}'")))
        return
    problem = value_problem(Op(cond.op), attr.type, cond.value)
    if problem:
        errors.append((f"{path}.value", problem))


def _check_conditions(
    node: ConditionNode, path: str, catalog: Catalog, related: str | None, errors: Errors
) -> None:
    if isinstance(node, AllGroup | AnyGroup):
        key, children = ("all", node.all) if isinstance(node, AllGroup) else ("any", node.any)
        for i, child in enumerate(children):
            _check_conditions(child, f"{path}.{key}[{i}]", catalog, related, errors)
    else:
        _check_condition(node, path, catalog, related, errors)


def aggregate_result_type(agg: Aggregate, input_type: AttrType | None) -> AttrType:
    """The type an aggregate yields: a number, except ``min``/``max`` of dates."""
    if agg in (Aggregate.MIN, Aggregate.MAX) and input_type is AttrType.DATE:
        return AttrType.DATE
    return AttrType.NUMBER


def _check_aggregate(
    cond: AggregateCondition, path: str, catalog: Catalog, related: str, errors: Errors
) -> None:
    if cond.aggregate not in Aggregate.__members__.values():
        hint = _did_you_mean(cond.aggregate, [a.value for a in Aggregate])
        errors.append((f"{path}.aggregate", f"unknown aggregate '{cond.aggregate}'{hint}"))
        return
    agg = Aggregate(cond.aggregate)
    input_type: AttrType | None = None
    if cond.attribute is None:
        if agg is not Aggregate.COUNT:
            errors.append((path, f"aggregate '{agg}' needs an attribute of '{related}'"))
            return
    else:
        try:
            attr = resolve_attribute(catalog, cond.attribute, related)
        except AttributeProblem as exc:
            errors.append((f"{path}.attribute", str(exc)))
            return
        if attr.table != related:
            errors.append(
                (
                    f"{path}.attribute",
                    f"aggregates run over the rows of '{related}'; '{cond.attribute}' is an "
                    f"attribute of the profile table",
                )
            )
            return
        accepted = AGGREGATE_INPUT_TYPES[agg]
        if attr.type not in accepted:
            kinds = " or ".join(t.value for t in accepted)
            errors.append(
                (
                    f"{path}.attribute",
                    f"aggregate '{agg}' needs a {kinds} attribute; '{cond.attribute}' is "
                    f"{attr.type}",
                )
            )
            return
        input_type = attr.type
    result_type = aggregate_result_type(agg, input_type)
    allowed = HAVING_OPS_BY_TYPE[result_type]
    if cond.op not in allowed:
        errors.append((path, _op_problem(cond.op, result_type, allowed, f"aggregate '{agg}'")))
        return
    problem = value_problem(Op(cond.op), result_type, cond.value)
    if problem:
        errors.append((f"{path}.value", problem))


def _check_having(
    node: HavingNode, path: str, catalog: Catalog, related: str, errors: Errors
) -> None:
    if isinstance(node, HavingAll | HavingAny):
        key, children = ("all", node.all) if isinstance(node, HavingAll) else ("any", node.any)
        for i, child in enumerate(children):
            _check_having(child, f"{path}.{key}[{i}]", catalog, related, errors)
    else:
        _check_aggregate(node, path, catalog, related, errors)


def _check_rule(rule: Rule, index: int, catalog: Catalog, errors: Errors) -> None:
    path = f"rules[{index}]"
    if index == 0 and rule.combine is not None:
        errors.append((f"{path}.combine", "the first rule takes no `combine`; remove it"))
    if index > 0 and rule.combine is None:
        errors.append(
            (path, "missing `combine` (union, intersect or except) on a rule after the first")
        )
    related = rule.related
    if related is not None:
        problem = related_table_problem(catalog, related)
        if problem:
            errors.append((f"{path}.related", problem))
            return
    if rule.conditions is None and related is None:
        errors.append((path, "a rule needs `conditions` (or `related` with optional `having`)"))
    if rule.conditions is not None:
        _check_conditions(rule.conditions, f"{path}.conditions", catalog, related, errors)
    if rule.having is not None:
        if related is None:
            errors.append((f"{path}.having", "`having` needs `related` naming a related table"))
        else:
            _check_having(rule.having, f"{path}.having", catalog, related, errors)


def definition_errors(defn: SegmentDefinition, catalog: Catalog) -> Errors:
    """Every problem of ``defn`` against ``catalog`` as ``(path, message)``; empty when valid."""
    errors: Errors = []
    for index, rule in enumerate(defn.rules):
        _check_rule(rule, index, catalog, errors)
    return errors


def validate_definition(defn: SegmentDefinition, catalog: Catalog) -> None:
    """Raise :class:`DefinitionError` listing every problem of ``defn`` against ``catalog``."""
    errors = definition_errors(defn, catalog)
    if errors:
        raise DefinitionError(errors)
