"""Explaining one profile against a segment: the verdict agrees with the compiled members, and
a non-member gets the first condition that failed (or the rule that kept it out)."""

from __future__ import annotations

from typing import Any

import pytest

from segsync.domain.segment_definition import definition_from_dict
from segsync.segments.explain import (
    EXCLUDED,
    FAILED_CONDITION,
    NO_RELATED_ROW,
    explain_profiles,
)
from tests.segments.conftest import ALL_IDS, NOW, Engine

GOLD_IN_LISBON = {
    "name": "g",
    "rules": [
        {
            "conditions": {
                "all": [
                    {"attribute": "City", "op": "equals", "value": "Lisbon"},
                    {
                        "any": [
                            {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"},
                            {"attribute": "LifetimeValue", "op": "greater_than", "value": 250},
                        ]
                    },
                ]
            }
        }
    ],
}
WITH_EXCEPT_AND_RELATED = {
    "name": "r",
    "rules": [
        {"conditions": {"attribute": "IsSubscribed", "op": "is_true"}},
        {
            "combine": "intersect",
            "related": "orders",
            "conditions": {"attribute": "Channel", "op": "equals", "value": "web"},
        },
        {
            "combine": "except",
            "conditions": {"attribute": "City", "op": "equals", "value": "Evora"},
        },
        {
            "combine": "except",
            "conditions": {"attribute": "Visits", "op": "greater_than", "value": 4},
        },
    ],
}


def _explain(engine: Engine, raw: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    return explain_profiles(definition_from_dict(raw), engine.catalog, engine.table, NOW, ids)


@pytest.mark.parametrize("raw", [GOLD_IN_LISBON, WITH_EXCEPT_AND_RELATED])
def test_verdicts_agree_with_the_compiled_members(engine: Engine, raw: dict[str, Any]) -> None:
    verdicts = _explain(engine, raw, ALL_IDS)
    members = sorted(pid for pid, verdict in verdicts.items() if verdict.member)
    assert members == engine.members(raw)
    assert set(verdicts) == set(ALL_IDS)
    assert all((v.failed is None) == v.member for v in verdicts.values())


def test_the_first_failed_condition_of_an_all_group_with_the_profiles_value(
    engine: Engine,
) -> None:
    verdicts = _explain(engine, GOLD_IN_LISBON, ["C04", "C02", "C05", "C01", "C03"])
    porto = verdicts["C04"].failed
    assert porto is not None
    assert (porto.kind, porto.rule, porto.path) == (
        FAILED_CONDITION,
        1,
        "rules[0].conditions.all[0]",
    )
    assert porto.text == 'City equals "Lisbon"'
    assert (porto.attribute, porto.value) == ("City", "Porto")
    assert porto.sentence == ('rule 1: City equals "Lisbon" failed (the profile\'s City: "Porto")')
    # In Lisbon but Silver with 80.5: the any group failed, its first child is reported.
    silver = verdicts["C02"].failed
    assert silver is not None
    assert silver.path == "rules[0].conditions.all[1].any[0]"
    assert (silver.attribute, silver.value) == ("LoyaltyTier", "Silver")
    empty = verdicts["C05"].failed
    assert empty is not None
    assert empty.value is None
    assert "the profile's City: empty" in empty.sentence
    assert verdicts["C01"].member  # Gold in Lisbon
    assert verdicts["C03"].member  # Platinum with 300 in lisbon (any: the second child)


def test_related_and_except_rules_are_reported_as_rules(engine: Engine) -> None:
    verdicts = _explain(engine, WITH_EXCEPT_AND_RELATED, ["C10", "C01", "C12", "C02", "C99"])
    assert "C99" not in verdicts  # no such profile
    # Subscribed, but only an app order: the related intersect rule kept it out.
    app_only = verdicts["C10"].failed
    assert app_only is not None
    assert (app_only.kind, app_only.rule) == (NO_RELATED_ROW, 2)
    assert app_only.sentence == (
        "rule 2 did not hold: no orders row of this profile matches the rule's conditions"
    )
    # Subscribed with web orders but 5 visits: excluded by the last rule.
    busy = verdicts["C01"].failed
    assert busy is not None
    assert (busy.kind, busy.rule, busy.path) == (EXCLUDED, 4, "rules[3]")
    assert verdicts["C01"].rules == (True, True, False, True)
    assert verdicts["C12"].member  # Évora is not Evora; web order (after NOW counts: no window)
    not_subscribed = verdicts["C02"].failed
    assert not_subscribed is not None
    assert (not_subscribed.kind, not_subscribed.path) == (
        FAILED_CONDITION,
        "rules[0].conditions",
    )
    assert not_subscribed.value is False


def test_no_ids_no_query(engine: Engine) -> None:
    assert _explain(engine, GOLD_IN_LISBON, []) == {}
