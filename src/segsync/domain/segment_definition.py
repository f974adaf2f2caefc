"""The segment definition format of docs/segments.md (YAML or JSON): models, parsing, dumping.

A segment is rules combined in order (union / intersect / except); a rule is a condition tree
(``all`` = AND, ``any`` = OR, nested) over the profile table, or over a related table with
optional ``having`` aggregates. Checking a definition against a catalog lives in
domain/segment_validation.py; the operators in domain/segment_operators.py.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from difflib import get_close_matches
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from segsync.errors import InputError

DefinitionFormat = Literal["yaml", "json"]


class DefinitionError(InputError):
    """A segment definition is wrong. ``errors`` lists ``(path, message)`` pairs, e.g.
    ``("rules[1].conditions.all[0]", "unknown attribute 'Cty' (did you mean 'City'?)")``;
    the message has one ``path: message`` line per error."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        lines = [f"{path}: {message}" if path else message for path, message in self.errors]
        heading = "the segment definition is invalid:" if len(lines) > 1 else ""
        super().__init__("\n".join([heading, *lines]) if heading else lines[0])


class Combine(StrEnum):
    """How a rule's members combine with those of the rules before it."""

    UNION = "union"
    INTERSECT = "intersect"
    EXCEPT = "except"


_STRICT = ConfigDict(extra="forbid", frozen=True)


def _dates_as_iso(value: Any) -> Any:
    """YAML reads ``1980-01-01`` as a date; keep ISO text so YAML and JSON give equal models."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_dates_as_iso(item) for item in value]
    return value


class Condition(BaseModel):
    """``{attribute, op, value}``: compares one attribute to a value."""

    model_config = _STRICT
    attribute: str = Field(min_length=1)
    op: str = Field(min_length=1)
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _yaml_on(cls, op: Any) -> Any:
        # YAML 1.1 reads a bare `op: on` as the boolean true.
        return "on" if op is True else op

    @field_validator("value", mode="before")
    @classmethod
    def _dates_as_iso(cls, value: Any) -> Any:
        return _dates_as_iso(value)


class AllGroup(BaseModel):
    """``{all: [...]}``: every node must hold (AND)."""

    model_config = _STRICT
    all: list[ConditionNode] = Field(min_length=1)


class AnyGroup(BaseModel):
    """``{any: [...]}``: at least one node must hold (OR)."""

    model_config = _STRICT
    any: list[ConditionNode] = Field(min_length=1)


class AggregateCondition(BaseModel):
    """``{aggregate, attribute?, op, value}``: compares an aggregate of the matched related rows.
    ``count`` needs no attribute (with one, it counts the rows where it is not empty)."""

    model_config = _STRICT
    aggregate: str = Field(min_length=1)
    attribute: str | None = None
    op: str = Field(min_length=1)
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _yaml_on(cls, op: Any) -> Any:
        return "on" if op is True else op

    @field_validator("value", mode="before")
    @classmethod
    def _dates_as_iso(cls, value: Any) -> Any:
        return _dates_as_iso(value)


class HavingAll(BaseModel):
    model_config = _STRICT
    all: list[HavingNode] = Field(min_length=1)


class HavingAny(BaseModel):
    model_config = _STRICT
    any: list[HavingNode] = Field(min_length=1)


def _node_kind(value: Any) -> str | None:
    """Which model a raw or built node is: the tag names never collide with field names."""
    if isinstance(value, BaseModel):
        return {
            AllGroup: "<all>",
            AnyGroup: "<any>",
            Condition: "<condition>",
            HavingAll: "<all>",
            HavingAny: "<any>",
            AggregateCondition: "<aggregate>",
        }.get(type(value))
    if isinstance(value, dict):
        for key, tag in (("all", "<all>"), ("any", "<any>"), ("aggregate", "<aggregate>")):
            if key in value:
                return tag
        if "attribute" in value or "op" in value:
            return "<condition>"
    return None


_NODE_HELP = "expected {all: [...]}, {any: [...]} or a condition {attribute, op, value}"
_HAVING_HELP = (
    "expected {all: [...]}, {any: [...]} or an aggregate {aggregate, attribute, op, value}"
)

ConditionNode = Annotated[
    Annotated[AllGroup, Tag("<all>")]
    | Annotated[AnyGroup, Tag("<any>")]
    | Annotated[Condition, Tag("<condition>")],
    Discriminator(_node_kind, custom_error_type="node", custom_error_message=_NODE_HELP),
]
HavingNode = Annotated[
    Annotated[HavingAll, Tag("<all>")]
    | Annotated[HavingAny, Tag("<any>")]
    | Annotated[AggregateCondition, Tag("<aggregate>")],
    Discriminator(_node_kind, custom_error_type="node", custom_error_message=_HAVING_HELP),
]


class Rule(BaseModel):
    """One rule. ``combine`` is required on every rule after the first and refused on the first;
    ``related`` names a related table; ``having`` needs ``related``."""

    model_config = _STRICT
    combine: Combine | None = None
    related: str | None = None
    conditions: ConditionNode | None = None
    having: HavingNode | None = None


class SegmentDefinition(BaseModel):
    """A whole segment: ``name``, optional ``description``, and rules evaluated in order."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    rules: list[Rule] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_is_not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("the name must not be blank")
        return name.strip()


AllGroup.model_rebuild()
AnyGroup.model_rebuild()
HavingAll.model_rebuild()
HavingAny.model_rebuild()
Rule.model_rebuild()
SegmentDefinition.model_rebuild()


def format_path(loc: tuple[int | str, ...]) -> str:
    """``("rules", 1, "conditions", "all", 0)`` → ``rules[1].conditions.all[0]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("<"):
            path += f".{part}" if path else part
    return path


_KEYS = (
    "name",
    "description",
    "rules",
    "combine",
    "related",
    "conditions",
    "having",
    "all",
    "any",
    "attribute",
    "op",
    "value",
    "aggregate",
)


def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "missing":
            errors.append((format_path(loc[:-1]), f"missing '{loc[-1]}'"))
        elif err["type"] == "extra_forbidden":
            hint = get_close_matches(str(loc[-1]), _KEYS, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            errors.append((format_path(loc[:-1]), f"unknown key '{loc[-1]}'{did_you_mean}"))
        elif err["type"] == "too_short":
            errors.append((format_path(loc), "must not be empty"))
        elif err["type"] == "enum":
            message = str(err["msg"]).removeprefix("Input should be ")
            errors.append((format_path(loc), f"must be {message}, got {err['input']!r}"))
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            errors.append((format_path(loc), message[:1].lower() + message[1:]))
    return errors


MAX_GROUP_DEPTH = 16
"""How deep ``all`` / ``any`` groups may nest (docs/segments.md)."""
MAX_NESTING = 2 * MAX_GROUP_DEPTH + 8
"""How deep mappings and lists may nest in a whole definition (a group is a mapping holding a
list; a rule and its value add a few levels more)."""


def _shape_problem(raw: Any) -> tuple[str, str] | None:
    """Too deep a nesting, or a NUL byte in any text, found without recursion (a definition
    nested thousands deep must get an error, not a RecursionError)."""
    stack: list[tuple[Any, tuple[int | str, ...], int, int]] = [(raw, (), 0, 0)]
    while stack:
        node, loc, depth, groups = stack.pop()
        if depth > MAX_NESTING or groups > MAX_GROUP_DEPTH:
            return (
                format_path(loc[:8]) + ("…" if len(loc) > 8 else ""),
                f"nested too deep: groups (all/any) nest at most {MAX_GROUP_DEPTH} levels "
                "(docs/segments.md)",
            )
        if isinstance(node, str) and "\x00" in node:
            return (format_path(loc), "text must not contain a NUL byte")
        if isinstance(node, dict):
            grouped = groups + (1 if "all" in node or "any" in node else 0)
            for key, child in node.items():
                if isinstance(key, str) and "\x00" in key:
                    return (format_path(loc), "keys must not contain a NUL byte")
                stack.append((child, (*loc, str(key)), depth + 1, grouped))
        elif isinstance(node, list):
            stack.extend((child, (*loc, i), depth + 1, groups) for i, child in enumerate(node))
    return None


def definition_from_dict(raw: Any) -> SegmentDefinition:
    """Build a definition from parsed YAML/JSON data; raises :class:`DefinitionError` listing
    every shape error (missing or unknown keys, wrong nesting) with its path."""
    if not isinstance(raw, dict):
        raise DefinitionError([("", "a segment definition must be a mapping with name and rules")])
    problem = _shape_problem(raw)
    if problem is not None:
        raise DefinitionError([problem])
    try:
        return SegmentDefinition.model_validate(raw)
    except ValidationError as exc:
        raise DefinitionError(_pydantic_errors(exc)) from None


def parse_definition(text: str, format: DefinitionFormat | None = None) -> SegmentDefinition:
    """Parse a definition from YAML or JSON text (``format=None``: JSON if it starts with ``{``,
    else YAML, a superset). Dates may be ISO strings or YAML dates."""
    import yaml  # here: a run whose SQL is kept parses no definition (some 10 ms of start-up)

    chosen = format or ("json" if text.lstrip().startswith("{") else "yaml")
    try:
        raw = json.loads(text) if chosen == "json" else yaml.safe_load(text)
    except RecursionError:
        raise DefinitionError(
            [("", f"nested too deep: groups (all/any) nest at most {MAX_GROUP_DEPTH} levels")]
        ) from None
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            [("", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise DefinitionError([("", f"invalid YAML{where}: {problem}")]) from None
    return definition_from_dict(raw)


def definition_to_dict(defn: SegmentDefinition) -> dict[str, Any]:
    """The definition as plain JSON-ready data (dates as ISO strings), without unset keys."""
    data: dict[str, Any] = defn.model_dump(mode="json", exclude_none=True)
    return data


def dump_definition(defn: SegmentDefinition, format: DefinitionFormat = "yaml") -> str:
    """YAML or JSON text that :func:`parse_definition` reads back to an equal definition."""
    data = definition_to_dict(defn)
    if format == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
