"""Reading segment members live (S5, S6): counts equal a direct count on sample data, previews
by profile id, CSV downloads with every member, quick-segment suggestions."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pa_csv
import pytest

from segsync.errors import InputError
from segsync.services import profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.segments import members as segment_members
from tests.services.test_segments import CUSTOMERS, LISBON, _import


@pytest.fixture
def ctx(service_context: ServiceContext, tmp_path: Path) -> ServiceContext:
    _import(service_context, tmp_path, CUSTOMERS)
    return service_context


@pytest.fixture
def sample(service_context: ServiceContext) -> ServiceContext:
    profiles.load_sample(service_context, profiles=300, seed=7)
    return service_context


SAMPLE_SEGMENT = """
name: Subscribed Gold
rules:
  - conditions:
      any:
        - {attribute: LoyaltyTier, op: equals, value: gold}
        - {attribute: IsSubscribed, op: is_true}
"""


def _direct_members(ctx: ServiceContext) -> list[int]:
    rows = ctx.profiles.table("customers").to_pyarrow().to_pylist()
    return sorted(
        r["CustomerId"]
        for r in rows
        if (r["LoyaltyTier"] or "").lower() == "gold" or r["IsSubscribed"] is True
    )


def test_refresh_count_equals_a_direct_count_on_sample_data(sample: ServiceContext) -> None:
    segments.create_segment(sample, SAMPLE_SEGMENT)
    [outcome] = segments.refresh_segments(sample, ["Subscribed Gold"])
    expected = _direct_members(sample)
    assert 0 < len(expected) < 300
    assert outcome.member_count == len(expected) == outcome.entered
    assert segment_members.count_segment(sample, "Subscribed Gold") == len(expected)


def test_preview_is_the_first_members_by_id_with_every_attribute(sample: ServiceContext) -> None:
    segments.create_segment(sample, SAMPLE_SEGMENT)
    preview = segment_members.preview_segment(sample, "Subscribed Gold", limit=5)
    assert preview.key == "CustomerId"
    assert preview.columns[0] == "CustomerId"
    assert set(preview.columns) == set(sample.profiles.table("customers").columns)
    assert [r["CustomerId"] for r in preview.rows] == _direct_members(sample)[:5]
    default = segment_members.preview_segment(sample, "Subscribed Gold")
    assert len(default.rows) == min(100, len(_direct_members(sample)))


def test_members_csv_has_every_member_in_id_order(sample: ServiceContext, tmp_path: Path) -> None:
    segments.create_segment(sample, SAMPLE_SEGMENT)
    target = tmp_path / "out" / "members.csv"
    target.parent.mkdir()
    rows = segment_members.export_members_csv(sample, "Subscribed Gold", target)
    table = pa_csv.read_csv(target)
    assert rows == table.num_rows == segment_members.count_segment(sample, "Subscribed Gold")
    assert table.column("CustomerId").to_pylist() == _direct_members(sample)
    assert table.column_names[0] == "CustomerId"
    assert "Email" in table.column_names
    assert sorted(p.name for p in target.parent.iterdir()) == ["members.csv"]


def test_members_csv_of_an_empty_segment_has_just_the_header(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    segments.create_segment(ctx, LISBON.replace("lisbon", "Tokyo"))
    target = tmp_path / "none.csv"
    assert segment_members.export_members_csv(ctx, "Lisbon", target) == 0
    assert target.read_text().splitlines() == ['"CustomerId","City","Tier","Score"']


def test_suggest_gives_top_values_or_percentiles_with_estimated_sizes(ctx: ServiceContext) -> None:
    city = segment_members.suggest(ctx, "City")
    assert city.table == "customers"
    assert next((v.value, v.count) for v in city.suggestion.top_values) == ("Lisbon", 2)
    assert city.suggestion.total == 5
    assert city.suggestion.percentiles == {}
    score = segment_members.suggest(ctx, "Score")
    assert score.suggestion.top_values == []
    assert score.suggestion.percentiles["min"] == 10
    assert score.suggestion.percentiles["max"] == 50
    assert score.suggestion.percentiles["p50"] == pytest.approx(30)
    assert score.at_or_above == {"p25": 4, "p50": 2, "p75": 1, "p90": 0}
    assert score.to_dict()["at_or_above"]["p25"] == 4
    with pytest.raises(InputError, match="unknown attribute 'Cty' \\(did you mean 'City'\\?\\)"):
        segment_members.suggest(ctx, "Cty")


def test_suggest_reads_related_tables_too(sample: ServiceContext) -> None:
    channel = segment_members.suggest(sample, "orders.Channel")
    assert channel.table == "orders"
    assert {v.value for v in channel.suggestion.top_values} <= {"web", "store", "app", "phone"}
    assert sum(v.count for v in channel.suggestion.top_values) == channel.suggestion.total
