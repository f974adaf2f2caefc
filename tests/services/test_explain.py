"""Explain a person (docs/explain.md) on real SQLite and DuckDB files, after real runs against
the simulator over HTTP: an added, a removed, an invalid, a duplicate-email, an erased person,
and someone in no segment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from segsync.errors import InputError, NotFound
from segsync.services.context import ServiceContext
from segsync.services.people import explain_person
from segsync.services.privacy.erasure import lift_suppression
from segsync.simulator import RunningSimulator
from tests.services.people_support import build
from tests.services.runs_support import ctx, sim

__all__ = ["ctx", "sim"]  # fixtures


@pytest.fixture
def runs(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path) -> list[int]:
    return build(ctx, sim, tmp_path)


def _segments(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["segment"]: s for s in profile["segments"]}


def test_an_added_person(ctx: ServiceContext, runs: list[int]) -> None:
    report = explain_person(ctx, "  P1@Example.com ").to_dict()

    assert report["email"] == "p1@example.com"
    assert report["forgotten"] is False
    [profile] = report["profiles"]
    assert (profile["profile_id"], profile["attribute"], profile["raw"]) == (
        "1",
        "Email",
        "p1@example.com",
    )
    assert profile["cleaning"] == "used as it is"
    assert profile["exports"] == [
        {"export": "Newsletter", "status": "sent", "detail": "its values are the contact's"}
    ]
    segments = _segments(profile)
    assert segments["Seg A"]["member"] is True
    assert segments["Seg B"]["member"] is False
    assert segments["Seg B"]["failed"]["text"] == 'Grp in ["b", "ab"]'
    assert segments["Seg B"]["failed"]["value"] == "a"
    touched = [
        (t["run_id"], t["action"], t["list"], t["fields"], t["detail"]) for t in report["runs"]
    ]
    assert touched == [
        (runs[1], "updated", None, ["FirstName"], 'FirstName: "Ann" → "Anna"'),
        (runs[0], "added", "Seg A", [], "new contact"),
    ]
    [state] = report["exports"]
    assert (state["export"], state["contact"]) == ("Newsletter", "known")
    assert [(line["segment"], line["list"], line["state"]) for line in state["lists"]] == [
        ("Seg A", "Seg A", "known")
    ]


def test_a_removed_person(ctx: ServiceContext, runs: list[int]) -> None:
    report = explain_person(ctx, "p2@example.com", export="Newsletter").to_dict()

    [profile] = report["profiles"]
    assert profile["exports"][0]["status"] == "not in its segments"
    seg_a = _segments(profile)["Seg A"]
    assert seg_a["member"] is False
    assert seg_a["reason"] == 'rule 1: Grp in ["a", "ab"] failed (the profile\'s Grp: empty)'
    [state] = report["exports"]
    assert state["contact"] == "known"  # the contact stays; its membership went
    assert [line["state"] for line in state["lists"]] == ["not on it"]
    touched = [(t["run_id"], t["action"], t["list"], t["profile_id"]) for t in report["runs"]]
    assert touched == [(runs[1], "removed", "Seg A", None), (runs[0], "added", "Seg A", "2")]


def test_an_invalid_email(ctx: ServiceContext, runs: list[int]) -> None:
    report = explain_person(ctx, "Not-An-Email").to_dict()

    assert report["email"] is None
    assert report["email_problem"] == "invalid: no @"
    [profile] = report["profiles"]
    assert profile["profile_id"] == "3"
    assert profile["cleaning"] == "set aside: invalid: no @"
    assert profile["exports"][0]["status"] == "invalid"
    assert report["exports"] == [
        {
            "export_id": report["exports"][0]["export_id"],
            "export": "Newsletter",
            "connection": "Sim",
            "contact": "not on it",
            "synced_at": None,
            "lists": [{"segment_id": 1, "segment": "Seg A", "list": "Seg A", "state": "not on it"}],
        }
    ]
    # Both runs set the profile aside: they are the runs that touched it.
    touched = [(t["run_id"], t["action"], t["profile_id"]) for t in report["runs"]]
    assert touched == [(runs[1], "invalid", "3"), (runs[0], "invalid", "3")]


def test_a_duplicate_email(ctx: ServiceContext, runs: list[int]) -> None:
    report = explain_person(ctx, "dup@example.com").to_dict()

    profiles = {p["profile_id"]: p for p in report["profiles"]}
    assert set(profiles) == {"4", "5"}
    assert profiles["4"]["exports"][0]["status"] == "sent"
    assert profiles["5"]["raw"] == " Dup@Example.com"
    assert profiles["5"]["cleaning"] == "trimmed and lower-cased to dup@example.com"
    merged = profiles["5"]["exports"][0]
    assert merged["status"] == "duplicate"
    assert merged["detail"].startswith("merged: profile 4 has the same email")
    assert report["exports"][0]["lists"][0]["state"] == "known"
    touched = [(t["run_id"], t["action"], t["profile_id"]) for t in report["runs"]]
    assert touched == [(runs[1], "merged", "5"), (runs[0], "added", "4"), (runs[0], "merged", "5")]


def test_an_erased_person_is_only_said_to_be_forgotten(
    ctx: ServiceContext, runs: list[int]
) -> None:
    report = explain_person(ctx, "p6@example.com").to_dict()

    assert report["forgotten"] is True
    assert report["profiles"] == []
    assert report["exports"] == []
    assert report["runs"] == []
    assert sorted(e["status"] for e in report["erasures"]) == ["done", "suppressed"]
    assert "forgotten" in report["summary"]
    assert "p6@" not in str(report["erasures"])


def test_someone_in_no_segment_and_someone_unknown(ctx: ServiceContext, runs: list[int]) -> None:
    outside = explain_person(ctx, "p7@example.com").to_dict()
    [profile] = outside["profiles"]
    assert not any(s["member"] for s in profile["segments"])
    assert outside["exports"] == []  # the export neither holds them nor could
    unknown = explain_person(ctx, "nobody@example.com").to_dict()
    assert unknown["profiles"] == []
    assert unknown["summary"].startswith("no profile carries this email")


def test_bad_input_names_the_field(ctx: ServiceContext, runs: list[int]) -> None:
    with pytest.raises(InputError, match="email: give the email"):
        explain_person(ctx, "  ")
    with pytest.raises(NotFound, match="did you mean 'Newsletter'"):
        explain_person(ctx, "p1@example.com", export="Newsleter")


def test_a_person_whose_suppression_was_lifted_is_explained_with_their_erasure(
    ctx: ServiceContext, runs: list[int]
) -> None:
    assert lift_suppression(ctx, "p6@example.com")
    report = explain_person(ctx, "p6@example.com").to_dict()

    assert report["forgotten"] is False
    assert [e["status"] for e in report["erasures"]] == ["done"]
    [profile] = report["profiles"]
    assert profile["exports"][0]["status"] == "sent"  # a next run sends them again
    assert report["runs"] == []  # their earlier changes went with the erasure


def test_without_profile_data_the_rest_is_still_explained(ctx: ServiceContext) -> None:
    report = explain_person(ctx, "p1@example.com")
    assert report.profiles == []
    assert report.profiles_note is not None
    assert "profile" in report.profiles_note
