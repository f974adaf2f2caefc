"""docs/segments.md shows every operator, aggregate and combination, and its examples parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from segsync.domain.segment_definition import Combine, definition_from_dict, parse_definition
from segsync.domain.segment_operators import Aggregate, Op

DOC = Path(__file__).resolve().parents[2] / "docs" / "segments.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text()


def test_every_operator_aggregate_and_combine_has_an_example(text: str) -> None:
    missing = [f"op: {op}" for op in Op if f"op: {op.value}" not in text]
    missing += [f"aggregate: {a}" for a in Aggregate if f"aggregate: {a.value}" not in text]
    missing += [f"combine: {c}" for c in Combine if f"combine: {c.value}" not in text]
    assert missing == []


def test_every_yaml_and_json_block_parses(text: str) -> None:
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 8
    for kind, block in blocks:
        if kind == "json":
            parse_definition(block, "json")
            continue
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "name" in data:
            definition_from_dict(data)
        elif isinstance(data, dict) and "rules" in data:
            definition_from_dict({"name": "doc", **data})
        elif isinstance(data, list) and "attribute" in data[0]:
            definition_from_dict({"name": "doc", "rules": [{"conditions": {"any": data}}]})
        else:
            definition_from_dict(
                {
                    "name": "doc",
                    "rules": [{"conditions": {"attribute": "A", "op": "is_empty"}}, *data],
                }
            )
