"""The run page's results per list and change log, their CSV, and the API's: after the runs
of tests/services/people_support.py (the simulator over HTTP). The second run updated
profile 1's first name and removed p2@example.com from Seg A."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from segsync.services.runs import run_export
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.run_changes import RunChangeRepository
from segsync.storage.repositories.runs import RunRepository
from tests.services.people_support import build
from tests.services.runs_support import fast, people, setup, sim
from tests.web.conftest import WebHarness

__all__ = ["sim"]  # fixture


@pytest.fixture
def runs(web: WebHarness, sim: RunningSimulator, tmp_path: Path) -> list[int]:
    return build(web.ctx, sim, tmp_path)


def test_the_run_page_shows_results_per_list_and_the_change_log(
    web: WebHarness, runs: list[int]
) -> None:
    viewer = web.client_as("viewer")
    page = viewer.get(f"/data/runs/{runs[1]}")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="list-results"' in html
    assert "(contact updated, no new list)" in html
    assert 'data-action="updated"' in html
    assert 'data-action="removed"' in html
    assert "FirstName: &#34;Ann&#34; → &#34;Anna&#34;" in html
    assert f'href="/data/runs/{runs[1]}/changes.csv"' in html
    # Each email opens "explain a person" for that export.
    assert 'href="/data/explain?email=p2%40example.com&amp;export=Newsletter"' in html

    first = viewer.get(f"/data/runs/{runs[0]}").text
    # The first run set profiles aside: its warning points at the page, not at the CLI.
    assert "listed under “Rejected and set-aside contacts”" in first
    main = first.split("<main", 1)[1]
    assert "`segsync" not in main
    # p1, p2, dup (profile 4), =sum; p6's rows went with its erasure.
    assert first.count('data-action="added"') == 4


def test_the_change_log_filters_and_pages(web: WebHarness, runs: list[int]) -> None:
    viewer = web.client_as("viewer")
    removed = viewer.get(f"/data/runs/{runs[1]}", params={"action": "removed"}).text
    assert 'data-action="removed"' in removed
    assert 'data-action="updated"' not in removed
    on_list = viewer.get(f"/data/runs/{runs[0]}", params={"segment": "1", "action": ""}).text
    assert on_list.count('data-action="added"') == 4
    assert viewer.get(f"/data/runs/{runs[1]}", params={"action": "dropped"}).status_code == 422


def test_the_csv_escapes_formulas_and_keeps_the_profile_ids(
    web: WebHarness, runs: list[int]
) -> None:
    viewer = web.client_as("viewer")
    response = viewer.get(f"/data/runs/{runs[0]}/changes.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["email"], r["profile_id"], r["list"]) for r in rows} == {
        ("p1@example.com", "1", "Seg A"),
        ("p2@example.com", "2", "Seg A"),
        ("dup@example.com", "4", "Seg A"),
        ("'=sum@example.com", "8", "Seg A"),
    }
    updated = viewer.get(f"/data/runs/{runs[1]}/changes.csv", params={"action": "updated"})
    [row] = list(csv.DictReader(io.StringIO(updated.text)))
    assert (row["action"], row["changed_fields"]) == ("updated", "FirstName")
    assert row["previous_values"] == '{"FirstName": "Ann"}'
    assert row["values"] == '{"FirstName": "Anna"}'


def test_the_api_gives_results_per_list_and_pages_of_changes(
    web: WebHarness, runs: list[int]
) -> None:
    headers = web.bearer(web.api_token("viewer"))
    run = web.api.get(f"/api/v1/runs/{runs[1]}", headers=headers).json()
    by_list = {item["list"]: item for item in run["lists"]}
    assert by_list["Seg A"]["removed"] == 1
    assert by_list["(contact updated, no new list)"]["updated"] == 1
    first = web.api.get(f"/api/v1/runs/{runs[0]}/changes", params={"size": 2}, headers=headers)
    body = first.json()
    assert len(body["items"]) == 2
    assert body["next_after"] == body["items"][-1]["id"]
    rest = web.api.get(
        f"/api/v1/runs/{runs[0]}/changes",
        params={"after": body["next_after"]},
        headers=headers,
    ).json()
    emails = [i["email"] for i in body["items"] + rest["items"]]
    assert len(emails) == len(set(emails)) == 4
    assert rest["next_after"] is None
    csv_text = web.api.get(f"/api/v1/runs/{runs[0]}/changes.csv", headers=headers).text
    assert "'=sum@example.com" in csv_text


def test_a_refused_contact_shows_its_profile_id_everywhere(
    web: WebHarness, sim: RunningSimulator, tmp_path: Path
) -> None:
    ctx = web.ctx
    setup(ctx, sim, tmp_path, people(3))
    sim.simulator.faults.reject_emails(r"^p3@")
    run = run_export(ctx, "Newsletter", tune=fast)
    viewer = web.client_as("viewer")

    page = viewer.get(f"/data/runs/{run.id}").text
    [results] = re.findall(r'<tr data-list="1">(.*?)</tr>', page)
    assert re.findall(r'class="num">(\d+)<', results) == ["2", "0", "0", "1"]
    [refused] = re.findall(r'<tr data-action="refused">(.*?)</tr>', page)
    assert "p3@example.com" in refused
    assert "<td>3</td>" in refused  # the profile id
    rejects = list(csv.DictReader(io.StringIO(viewer.get(f"/data/runs/{run.id}/rejects.csv").text)))
    assert [(r["email"], r["profile_id"], r["kind"]) for r in rejects] == [
        ("p3@example.com", "3", "rejected")
    ]
    explained = viewer.get("/data/explain", params={"email": "p3@example.com"}).text
    assert "<td>Refused</td>" in explained
    assert "<td>Rejected</td>" in explained


def test_a_run_whose_change_log_was_pruned_says_so(web: WebHarness, runs: list[int]) -> None:
    ctx = web.ctx
    with ctx.db.session() as session:
        export_id = RunRepository(session).get(runs[0]).export_id
        assert export_id is not None
        RunChangeRepository(session).prune(export_id, 1)  # keep the newest run's only
    viewer = web.client_as("viewer")
    page = viewer.get(f"/data/runs/{runs[0]}").text
    assert "change log is no longer kept" in page
    assert 'id="change-log"' not in page
    headers = web.bearer(web.api_token("viewer"))
    body = web.api.get(f"/api/v1/runs/{runs[0]}/changes", headers=headers).json()
    assert (body["kept"], body["items"]) == (False, [])
    assert web.api.get(f"/api/v1/runs/{runs[0]}", headers=headers).json()["lists"] is None
    assert 'id="change-log"' in viewer.get(f"/data/runs/{runs[1]}").text
