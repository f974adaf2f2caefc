"""Hypothesis strategies for the fuzz suite: segment definitions (as YAML or JSON text), CSV
files (bytes plus a file name) and export data matchings, each mixing valid input with the
hostile kinds issue 14 lists: NUL bytes, control characters, huge and non-finite numbers, deep
nesting, long lists, malformed quoting, duplicate columns, files that lie about their type."""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import yaml
from hypothesis import strategies as st

from segsync.domain.catalog import AttrType
from segsync.domain.segment_operators import (
    LIST_OPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PERIOD_OPS,
    PERIOD_UNITS,
    Op,
)

PROFILE_ATTRIBUTES = [
    "CustomerId", "Email", "FirstName", "City", "Country", "LoyaltyTier", "BirthDate",
    "SignupDate", "IsSubscribed", "LifetimeValue",
]  # fmt: skip
ORDER_ATTRIBUTES = ["OrderId", "OrderDate", "Amount", "Channel"]

_hostile_text = st.sampled_from(
    [
        "", " ", "Gold", "Lisbon", "\x00", "a\x00b", "\r\n", "=HYPERLINK(\"x\")", "'; DROP TABLE",
        "é" * 3, "\u202e", "x" * 2000, "{{7*7}}", "<script>", "../../etc/passwd",
    ]
)  # fmt: skip
_text = st.one_of(st.text(max_size=12), _hostile_text)
_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    _text,
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2024-01-31", "2024-02-30", "1980-01-01T00:00:00"]),
)
_periods = st.dictionaries(
    st.sampled_from(["days", "weeks", "months", "years"]), _numbers, min_size=0, max_size=2
)
_long_lists = st.sampled_from([10, 999, 1000, 1001, 20_000]).map(
    lambda n: [f"v{i}" for i in range(n)]
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4), _periods, _long_lists)

_TYPES = {
    "CustomerId": AttrType.NUMBER, "Email": AttrType.TEXT, "FirstName": AttrType.TEXT,
    "City": AttrType.TEXT, "Country": AttrType.TEXT, "LoyaltyTier": AttrType.TEXT,
    "BirthDate": AttrType.DATE, "SignupDate": AttrType.DATE, "IsSubscribed": AttrType.BOOLEAN,
    "LifetimeValue": AttrType.NUMBER,
}  # fmt: skip
_typed_scalars = {
    AttrType.TEXT: st.one_of(st.sampled_from(["Gold", "Lisbon", "Portugal", "a"]), _text),
    AttrType.NUMBER: st.one_of(st.integers(-1000, 10**6), st.floats(-1e6, 1e6), _numbers),
    AttrType.DATE: st.dates().map(lambda d: d.isoformat()),
    AttrType.BOOLEAN: st.none(),
}


@st.composite
def _typed_condition(draw: st.DrawFn) -> dict[str, Any]:
    """A condition that fits its attribute's type most of the time: what gets past the
    checks, so the fuzz also reaches the compiler and the engine."""
    attribute = draw(st.sampled_from(sorted(_TYPES)))
    kind = _TYPES[attribute]
    op = draw(st.sampled_from(OPS_BY_TYPE[kind]))
    scalar = _typed_scalars[kind]
    if op in NO_VALUE_OPS:
        value = None
    elif op in PERIOD_OPS:
        value = {draw(st.sampled_from(PERIOD_UNITS)): draw(st.integers(1, 2000))}
    elif op is Op.BETWEEN:
        value = sorted(draw(st.lists(scalar, min_size=2, max_size=2)), key=repr)
    elif op in LIST_OPS:
        value = draw(st.one_of(st.lists(scalar, min_size=1, max_size=5), _long_lists))
    else:
        value = draw(scalar)
    return {"attribute": attribute, "op": op.value, "value": value}


_conditions = st.one_of(
    _typed_condition(),
    _typed_condition(),
    st.fixed_dictionaries(
        {
            "attribute": st.one_of(st.sampled_from(PROFILE_ATTRIBUTES + ORDER_ATTRIBUTES), _text),
            "op": st.one_of(st.sampled_from([o.value for o in Op]), _text),
        },
        optional={"value": _values, "extra": _scalars},
    ),
)
_aggregates = st.fixed_dictionaries(
    {
        "aggregate": st.sampled_from(["count", "sum", "avg", "min", "max", "median"]),
        "op": st.sampled_from(["greater_than", "equals", "between", "in", "on"]),
    },
    optional={"attribute": st.sampled_from([*ORDER_ATTRIBUTES, "Nope"]), "value": _values},
)


def _groups(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(children, max_size=3).map(lambda xs: {"any": xs}),
    )


_nodes = st.recursive(_conditions, _groups, max_leaves=8)
_having = st.recursive(_aggregates, _groups, max_leaves=4)
_plain_rules = st.fixed_dictionaries({"conditions": _nodes})
_rules = st.fixed_dictionaries(
    {"conditions": _nodes},
    optional={
        "combine": st.sampled_from(["union", "intersect", "except", "xor"]),
        "related": st.sampled_from(["orders", "customers", "nope"]),
        "having": _having,
    },
)
_definitions = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["Fuzz A", "Fuzz B"]), _text),
        "rules": st.lists(_rules, max_size=3),
    },
    optional={"description": _text, "rulez": _scalars},
)


def _deep_text(depth: int) -> str:
    leaf = '{"attribute": "City", "op": "equals", "value": "Lisbon"}'
    node = '{"any": [' * depth + leaf + "]}" * depth
    return '{"name": "Deep", "rules": [{"conditions": ' + node + "}]}"


def _dump(data: Any, as_yaml: bool) -> str:
    if as_yaml:
        try:
            return yaml.safe_dump(data, allow_unicode=True)
        except yaml.YAMLError:
            return json.dumps(data)
    return json.dumps(data)  # NaN and Infinity written as JavaScript does: a real input


_valid_definitions = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Fuzz A", "Fuzz B"]),
        "rules": st.lists(_plain_rules, min_size=1, max_size=1),
    }
)
segment_texts = st.one_of(
    st.tuples(_valid_definitions, st.booleans()).map(lambda pair: _dump(*pair)),
    st.tuples(_valid_definitions, st.booleans()).map(lambda pair: _dump(*pair)),
    st.tuples(_definitions, st.booleans()).map(lambda pair: _dump(*pair)),
    st.integers(min_value=10, max_value=5000).map(_deep_text),
    st.text(max_size=200),
    st.sampled_from(
        ["[" * 3000, "a: " + "[" * 2000, "{}", "null", "- 1\n- 2", "name: x\nrules: 7"]
    ),
)


# ---------------------------------------------------------------- CSV files

_cells = st.one_of(
    st.integers(min_value=1, max_value=50).map(str),
    st.emails(),
    _text,
    st.sampled_from(['"', '""', 'a"b', '"open', "tab\there", "line\nbreak", "semi;colon"]),
)
_headers = st.lists(
    st.one_of(st.sampled_from(["CustomerId", "Email", "City", "email", "customerid", ""]), _text),
    min_size=1,
    max_size=5,
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file name and its bytes: mostly CSV-ish, sometimes mangled, gzipped or mislabelled."""
    valid = draw(st.booleans())
    header = ["CustomerId", "Email", "City"] if valid else draw(_headers)
    if not valid and draw(st.booleans()):
        header = ["CustomerId", *header]
    rows = draw(st.lists(st.lists(_cells, min_size=len(header), max_size=len(header)), max_size=8))
    if valid or draw(st.booleans()):
        for index, row in enumerate(rows):
            row[0] = str(index + 1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    mangles = ["none", "none", "quote", "nul", "latin1", "cut", "bom"]
    mangle = draw(st.sampled_from(["none", "bom"] if valid else mangles))
    if mangle == "quote" and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + b'"' + data[at:]
    elif mangle == "nul" and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + b"\x00" + data[at:]
    elif mangle == "latin1":
        data += "9,Zürich\n".encode("latin-1")
    elif mangle == "cut" and data:
        data = data[: draw(st.integers(min_value=1, max_value=len(data)))]
    elif mangle == "bom":
        data = b"\xef\xbb\xbf" + data
    names = ["p.csv", "p.csv", "p.tsv", "p.csv.gz", "p.jsonl", "p.parquet"]
    name = draw(st.sampled_from(["p.csv", "p.csv.gz"] if valid else names))
    if valid:
        return name, gzip.compress(data) if name.endswith(".gz") else data
    if name.endswith(".gz") and draw(st.integers(min_value=0, max_value=3)):
        data = gzip.compress(data)
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            data = data[: len(data) // 2]
    elif draw(st.integers(min_value=0, max_value=9)) == 0:
        data = gzip.compress(data)  # gzip behind a plain name
    return name, data


# ---------------------------------------------------------------- data matchings

_targets = st.one_of(
    st.sampled_from(
        [
            "FirstName", "LastName", "Company", "NumberOfEmployees", "unsubscribed", "_NewEmail",
            "custom:string:Tier", "custom:integer:Age", "custom:float:Value", "custom:date:Born",
            "custom:boolean:Subscribed", "custom:nope:X", "custom:string:", "Email",
        ]
    ),
    _text,
)  # fmt: skip
_attributes = st.one_of(st.sampled_from(PROFILE_ATTRIBUTES), _text)

_hostile_matchings = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["Fuzz export"]), _text),
        "email": _attributes,
        "first_name": st.one_of(st.none(), _attributes),
        "last_name": st.one_of(st.none(), _attributes),
        "lines": st.lists(st.tuples(_targets, _attributes), max_size=4),
        "segments": st.lists(st.sampled_from(["Gold", "Nope", ""]), max_size=2),
        "removal": st.sampled_from(["mirror", "add-only", "delete", ""]),
        "list_prefix": _text,
    }
)
_likely_matchings = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Fuzz export", "Fuzz export 2"]),
        "email": st.sampled_from(["Email", "Email", "Email", "Email", "City", "LifetimeValue"]),
        "first_name": st.sampled_from([None, "FirstName", "FirstName", "BirthDate"]),
        "last_name": st.sampled_from([None, "FirstName", "Country"]),
        "lines": st.lists(
            st.sampled_from(
                [("custom:string:Tier", "LoyaltyTier"), ("custom:float:Value", "LifetimeValue"),
                 ("custom:date:Signup", "SignupDate"), ("custom:boolean:Sub", "IsSubscribed"),
                 ("Company", "City"), ("custom:integer:Id", "CustomerId"),
                 ("unsubscribed", "IsSubscribed"), ("custom:boolean:Sub", "FirstName")]
            ),
            max_size=3,
            unique_by=lambda pair: pair[0],
        ),
        "segments": st.sampled_from([["Gold"], ["Gold"], ["Gold"], ["Gold"], [], ["Nope"]]),
        "removal": st.sampled_from(["mirror", "add-only"]),
        "list_prefix": st.sampled_from(["", "fuzz ", "=cmd "]),
    }
)  # fmt: skip
# Three in four likely (Hypothesis leans to its first choices, so the hostile one is the last).
matchings = st.integers(min_value=0, max_value=3).flatmap(
    lambda n: _hostile_matchings if n == 3 else _likely_matchings
)
