"""Operators of the segment definition format: which fit which attribute type, what value each
takes, and the date arithmetic behind relative dates. Pure: no I/O, `now` is always passed in.

The segment compiler (segments/compiler.py) reads these tables too, so a new operator is added
here (its types and value check) and there (its expression), and nowhere else.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from segsync.domain.catalog import AttrType
from segsync.domain.untrusted import clip


class Op(StrEnum):
    """Every condition operator of the format."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"
    GREATER_THAN = "greater_than"
    GREATER_OR_EQUAL = "greater_or_equal"
    LESS_THAN = "less_than"
    LESS_OR_EQUAL = "less_or_equal"
    BETWEEN = "between"
    ON = "on"
    BEFORE = "before"
    AFTER = "after"
    WITHIN_LAST = "within_last"
    NOT_WITHIN_LAST = "not_within_last"
    IS_TRUE = "is_true"
    IS_FALSE = "is_false"


class Aggregate(StrEnum):
    """Aggregates a related rule's `having` compares to a value."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


_EMPTINESS = (Op.IS_EMPTY, Op.IS_NOT_EMPTY)

#: The operators each attribute type accepts, in the order the docs and error messages list them.
OPS_BY_TYPE: dict[AttrType, tuple[Op, ...]] = {
    AttrType.TEXT: (
        Op.EQUALS,
        Op.NOT_EQUALS,
        Op.IN,
        Op.NOT_IN,
        Op.CONTAINS,
        Op.NOT_CONTAINS,
        Op.STARTS_WITH,
        Op.ENDS_WITH,
        *_EMPTINESS,
    ),
    AttrType.NUMBER: (
        Op.EQUALS,
        Op.NOT_EQUALS,
        Op.IN,
        Op.NOT_IN,
        Op.GREATER_THAN,
        Op.GREATER_OR_EQUAL,
        Op.LESS_THAN,
        Op.LESS_OR_EQUAL,
        Op.BETWEEN,
        *_EMPTINESS,
    ),
    AttrType.DATE: (
        Op.ON,
        Op.EQUALS,
        Op.BEFORE,
        Op.AFTER,
        Op.BETWEEN,
        Op.WITHIN_LAST,
        Op.NOT_WITHIN_LAST,
        *_EMPTINESS,
    ),
    AttrType.BOOLEAN: (Op.IS_TRUE, Op.IS_FALSE, *_EMPTINESS),
}

#: Operators a `having` aggregate may use, by the aggregate's result type.
HAVING_OPS_BY_TYPE: dict[AttrType, tuple[Op, ...]] = {
    AttrType.NUMBER: tuple(
        op for op in OPS_BY_TYPE[AttrType.NUMBER] if op not in (Op.IN, Op.NOT_IN, *_EMPTINESS)
    ),
    AttrType.DATE: tuple(op for op in OPS_BY_TYPE[AttrType.DATE] if op not in _EMPTINESS),
}

#: The attribute types each aggregate accepts (``count`` takes none or any).
AGGREGATE_INPUT_TYPES: dict[Aggregate, tuple[AttrType, ...]] = {
    Aggregate.COUNT: tuple(AttrType),
    Aggregate.SUM: (AttrType.NUMBER,),
    Aggregate.AVG: (AttrType.NUMBER,),
    Aggregate.MIN: (AttrType.NUMBER, AttrType.DATE),
    Aggregate.MAX: (AttrType.NUMBER, AttrType.DATE),
}

#: Operators that are the exact complement of another one (they match empty values too).
NEGATIONS: dict[Op, Op] = {
    Op.NOT_EQUALS: Op.EQUALS,
    Op.NOT_IN: Op.IN,
    Op.NOT_CONTAINS: Op.CONTAINS,
    Op.IS_NOT_EMPTY: Op.IS_EMPTY,
    Op.NOT_WITHIN_LAST: Op.WITHIN_LAST,
}

NO_VALUE_OPS = frozenset({Op.IS_EMPTY, Op.IS_NOT_EMPTY, Op.IS_TRUE, Op.IS_FALSE})
LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
PERIOD_OPS = frozenset({Op.WITHIN_LAST, Op.NOT_WITHIN_LAST})
PERIOD_UNITS = ("days", "weeks", "months")

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Period:
    """A relative period such as ``{days: 90}``."""

    unit: str
    amount: int

    def start(self, now: datetime) -> datetime:
        """The instant ``amount`` units before ``now``; months by the calendar (Mar 31 − 1 month
        = Feb 28/29)."""
        if self.unit == "days":
            return now - timedelta(days=self.amount)
        if self.unit == "weeks":
            return now - timedelta(weeks=self.amount)
        months = now.year * 12 + (now.month - 1) - self.amount
        year, month = divmod(months, 12)
        day = min(now.day, calendar.monthrange(year, month + 1)[1])
        return now.replace(year=year, month=month + 1, day=day)


def as_date(value: Any) -> date | None:
    """A calendar date from an ISO string ``YYYY-MM-DD`` or a date object (YAML gives those)."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def as_period(value: Any) -> Period | None:
    """A :class:`Period` from ``{days|weeks|months: N}`` with N a whole number > 0."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    ((unit, amount),) = value.items()
    if unit not in PERIOD_UNITS or not is_integer(amount) or amount <= 0:
        return None
    if amount > MAX_PERIOD.get(str(unit), 0):
        return None
    return Period(str(unit), int(amount))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_text(value: Any) -> bool:
    """Text values; whole numbers pass too (YAML reads ``value: 1000`` as a number)."""
    return isinstance(value, str) or is_integer(value)


def describe(value: Any) -> str:
    """How a wrong value is named in an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if is_number(value):
        return f"number {value}"
    if isinstance(value, str):
        return f"text {clip(value)!r}"
    if isinstance(value, datetime):
        return f"date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _scalar_check(attr_type: AttrType) -> tuple[str, Any]:
    """(what the value must be, predicate) for single values of a type."""
    if attr_type is AttrType.TEXT:
        return "text", is_text
    if attr_type is AttrType.NUMBER:
        return "a number", is_number
    return "a date like 2024-05-31", lambda v: as_date(v) is not None


def _between_problem(attr_type: AttrType, value: Any) -> str | None:
    _, ok = _scalar_check(attr_type)
    kind = "numbers" if attr_type is AttrType.NUMBER else "dates like 2024-05-31"
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(ok(v) for v in value):
        return (
            f"value for 'between' must be a list [low, high] of two {kind}, got {describe(value)}"
        )
    low, high = value
    if attr_type is AttrType.DATE:
        low, high = as_date(low), as_date(high)
    if low > high:
        return f"value for 'between' must have low <= high, got [{value[0]}, {value[1]}]"
    return None


MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
"""Whole numbers a value may hold: what the engines' 64-bit integers can compare against."""
MAX_TEXT_LENGTH = 1000
MAX_LIST_VALUES = 1000
"""The most values an ``in`` / ``not_in`` list may hold (docs/segments.md)."""
MAX_PERIOD = {"days": 36_600, "weeks": 5_220, "months": 1_200}
"""The longest relative period: about a hundred years in each unit."""


def _scalar_problem(value: Any) -> str | None:
    """What no value may be, whatever the operator: out-of-range whole numbers, infinite or
    NaN numbers, text with a NUL byte or over :data:`MAX_TEXT_LENGTH` characters."""
    if is_integer(value) and not MIN_INTEGER <= value <= MAX_INTEGER:
        return "whole numbers must be between -2^63 and 2^63-1 (64-bit)"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite (not infinity or NaN)"
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain a NUL byte"
        if len(value) > MAX_TEXT_LENGTH:
            return f"text has {len(value):,} characters; at most {MAX_TEXT_LENGTH:,}"
    return None


def _values_problem(op: Op, value: Any) -> str | None:
    items = value if isinstance(value, list | tuple) else [value]
    if isinstance(value, Mapping):
        items = list(value.values())
    if op in LIST_OPS and isinstance(value, list | tuple) and len(value) > MAX_LIST_VALUES:
        return (
            f"value for '{op}' has {len(value):,} values; at most {MAX_LIST_VALUES:,} "
            "(import longer lists as a related table and use a related rule)"
        )
    for index, item in enumerate(items):
        problem = _scalar_problem(item)
        if problem is not None:
            where = f"value[{index}]" if isinstance(value, list | tuple) else "value"
            return f"{where} for '{op}': {problem}"
    return None


def value_problem(op: Op, attr_type: AttrType, value: Any) -> str | None:
    """What is wrong with ``value`` for ``op`` on an attribute of ``attr_type``, or None if fine.

    Assumes ``op`` fits ``attr_type`` (check that first against :data:`OPS_BY_TYPE`).
    """
    if value is not None:
        problem = _values_problem(op, value)
        if problem is not None:
            return problem
    if op in NO_VALUE_OPS:
        if value is not None:
            return f"operator '{op}' takes no value, got {describe(value)}"
        return None
    if value is None:
        return f"operator '{op}' needs a value"
    if op in PERIOD_OPS:
        if as_period(value) is None:
            return (
                f"value for '{op}' must be one of {{days: N}}, {{weeks: N}} or {{months: N}} "
                f"with N a whole number > 0 (at most {MAX_PERIOD['days']:,} days, "
                f"{MAX_PERIOD['weeks']:,} weeks or {MAX_PERIOD['months']:,} months), "
                f"got {describe(value)}"
            )
        return None
    if op is Op.BETWEEN:
        return _between_problem(attr_type, value)
    what, ok = _scalar_check(attr_type)
    if op in LIST_OPS:
        if not isinstance(value, list | tuple) or not value:
            return f"value for '{op}' must be a non-empty list, got {describe(value)}"
        for i, item in enumerate(value):
            if not ok(item):
                return f"value[{i}] for '{op}' must be {what}, got {describe(item)}"
        return None
    if not ok(value):
        return f"value for '{op}' must be {what}, got {describe(value)}"
    if op in (Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH) and str(value) == "":
        return f"value for '{op}' must be non-empty text"
    return None
