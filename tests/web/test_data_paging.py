"""Big histories on the Data pages: the export list in pages (search and sort kept across
pages; the API's limit/offset), an export's latest runs with a link to the rest, stored member
counts with "Count now", and the run page's JSON (started, ended, duration)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.mapping import FieldMapping
from segsync.domain.schedule import ExportSchedule
from segsync.errors import InputError
from segsync.services import exports, segments
from segsync.services.exports import views as export_views
from segsync.services.runs import views as run_views
from segsync.storage.models.runs import Run
from segsync.storage.repositories.exports import ExportRepository
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import (  # noqa: F401
    data_web_fixture,
    release,
    sim_fixture,
)

STATUSES = ("successful", "failure", "skipped", "canceled")
MAPPING = FieldMapping(email="Email", catalogue=AUTOPILOT_FIELDS).to_dict()
SCHEDULE = ExportSchedule().to_dict()


def _names(page: str) -> list[str]:
    return re.findall(r'<td><a href="/data/exports/\d+">([^<]+)</a></td>', page)


def _add_exports(web: WebHarness, count: int) -> list[int]:
    """``count`` detached exports "Export 000"… straight through storage (fast); every third
    has no run, the others one finished run of a rotating status."""
    ctx = web.ctx
    now = ctx.now()
    ids = []
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        for i in range(count):
            ids.append(
                repo.create(
                    name=f"Export {i:03d}",
                    connection_id=None,
                    mapping=MAPPING,
                    removal_policy="mirror",
                    list_prefix="",
                    schedule=SCHEDULE,
                    segment_ids=[],
                    created_by="administrator@example.com",
                    now=now,
                ).id
            )
        for i, export_id in enumerate(ids):
            if i % 3 == 0:
                continue
            start = now - timedelta(minutes=count - i)
            session.add(_run(export_id, f"Export {i:03d}", STATUSES[i % 4], start))
    return ids


def _run(export_id: int, name: str, status: str, start: object, **fields: object) -> Run:
    values: dict[str, object] = {
        "export_id": export_id,
        "export_name": name,
        "connection_id": None,
        "status": status,
        "trigger": "manual",
        "actor": "administrator@example.com",
        "dry_run": False,
        "queued_at": start,
        "started_at": start,
        "ended_at": start + timedelta(seconds=42),  # type: ignore[operator]
        "counts": "{}",
        "items_total": 0,
        "items_done": 0,
    }
    values.update(fields)
    return Run(**values)


def _pager_links(page: str) -> dict[str, str]:
    """The export pager's links: text ("Previous", "Next", "2"…) → href."""
    nav = re.search(r'<nav class="pager" aria-label="Export pages">(.*?)</nav>', page, re.S)
    assert nav, "no pager"
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(1))
    return {text: html.unescape(href) for href, text in links}


def test_export_list_shows_fifty_a_page_with_page_links(web: WebHarness) -> None:
    _add_exports(web, 120)
    browser = web.client_as("viewer")
    first = browser.get("/data/exports")
    assert first.status_code == 200
    assert _names(first.text) == [f"Export {i:03d}" for i in range(50)]
    assert "Exports 1–50 of 120" in first.text
    links = _pager_links(first.text)
    assert "Previous" not in links
    assert set(links) >= {"2", "3", "Next"}

    second = browser.get(links["Next"])
    assert _names(second.text) == [f"Export {i:03d}" for i in range(50, 100)]
    assert 'aria-current="page"' in second.text
    assert _names(browser.get(_pager_links(second.text)["Next"]).text) == [
        f"Export {i:03d}" for i in range(100, 120)
    ]
    # Past the last page: the last page; a bad page number is refused.
    assert _names(browser.get("/data/exports?page=99").text)[0] == "Export 100"
    assert browser.get("/data/exports?page=0").status_code == 422
    # One page: no pager.
    assert 'aria-label="Export pages"' not in browser.get("/data/exports?q=Export+00").text


def test_search_and_sort_are_kept_across_pages(web: WebHarness) -> None:
    _add_exports(web, 120)
    browser = web.client_as("viewer")
    expected = [
        row.name
        for row in export_views.list_exports(
            web.ctx, search="export 1", sort="status", descending=True
        )
    ]
    assert len(expected) == 20  # Export 100…119
    first = browser.get("/data/exports?q=export+1&sort=status&dir=desc")
    assert 'aria-label="Export pages"' not in first.text  # 20 rows fit one page
    assert _names(first.text) == expected

    everything = [
        row.name for row in export_views.list_exports(web.ctx, sort="status", descending=True)
    ]
    first = browser.get("/data/exports?q=export&sort=status&dir=desc")
    assert _names(first.text) == everything[:50]
    next_page = _pager_links(first.text)["Next"]
    assert "q=export" in next_page
    assert "sort=status" in next_page
    assert "dir=desc" in next_page
    second = browser.get(next_page)
    assert _names(second.text) == everything[50:100]
    assert 'aria-sort="descending"' in second.text
    # Rows without a run stay last in both directions.
    never = {f"Export {i:03d}" for i in range(0, 120, 3)}
    assert set(everything[-len(never) :]) == never


def test_the_api_list_takes_limit_and_offset_and_stays_compatible(web: WebHarness) -> None:
    ids = _add_exports(web, 60)
    api, headers = web.api, web.bearer(web.api_token("viewer"))
    everything = api.get("/api/v1/exports", headers=headers).json()
    assert [row["name"] for row in everything] == [f"Export {i:03d}" for i in range(60)]
    assert [row["id"] for row in everything] == ids
    sliced = api.get("/api/v1/exports?limit=5&offset=50", headers=headers).json()
    assert [row["name"] for row in sliced] == [f"Export {i:03d}" for i in range(50, 55)]
    assert set(sliced[0]) == set(everything[0])
    desc = api.get("/api/v1/exports?sort=name&descending=true&limit=2", headers=headers).json()
    assert [row["name"] for row in desc] == ["Export 059", "Export 058"]
    assert api.get("/api/v1/exports?limit=-1", headers=headers).status_code == 422


def test_the_list_costs_a_fixed_number_of_queries(web: WebHarness) -> None:
    """No query per export: the same number for 10 exports and for 130."""
    _add_exports(web, 10)
    ctx = web.ctx
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        export_views.page_exports(ctx, sort="status")
        few = len(statements)
        _add_exports_after(web, 120)
        statements.clear()
        page = export_views.page_exports(ctx, sort="status")
        assert len(statements) == few
        assert (page.total, len(page.rows), page.pages) == (130, 50, 3)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)


def _add_exports_after(web: WebHarness, count: int) -> None:
    ctx = web.ctx
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        for i in range(count):
            record = repo.create(
                name=f"More {i:03d}",
                connection_id=None,
                mapping=MAPPING,
                removal_policy="mirror",
                list_prefix="",
                schedule=SCHEDULE,
                segment_ids=[],
                created_by="administrator@example.com",
                now=ctx.now(),
            )
            session.add(_run(record.id, record.name, "failure", ctx.now()))


def test_page_exports_checks_its_arguments(web: WebHarness) -> None:
    with pytest.raises(InputError, match="per_page"):
        export_views.page_exports(web.ctx, per_page=0)
    with pytest.raises(InputError, match="offset"):
        export_views.list_exports(web.ctx, offset=-1)


# ---------------------------------------------------------------- one export's page


@pytest.fixture
def news(data_web: WebHarness) -> int:
    return exports.export_id(data_web.ctx, "News")


def test_export_page_shows_stored_counts_and_count_now_counts_live(
    data_web: WebHarness, news: int
) -> None:
    browser = data_web.client_as("viewer")
    page = browser.get(f"/data/exports/{news}").text
    # Lisbon was never refreshed: no stored count yet, and no live counting on view.
    assert f'data-members="{_segment_id(data_web, "Lisbon")}">—<' in page
    assert "never refreshed" in page
    assert f'href="/data/exports/{news}?counts=live" data-count-now' in page
    live = browser.get(f"/data/exports/{news}/counts")
    assert live.status_code == 200
    body = live.json()
    assert [(s["name"], s["members"]) for s in body["segments"]] == [("Lisbon", 3)]
    assert body["segments"][0]["counted_at"] is None  # counted now, not at a refresh
    assert body["distinct_total"] == 3
    # Without JavaScript the button's link counts live.
    assert (
        f'data-members="{_segment_id(data_web, "Lisbon")}">3<'
        in browser.get(f"/data/exports/{news}?counts=live").text
    )

    ctx = data_web.ctx
    try:
        segments.refresh_segments(ctx, ["Lisbon"])
    finally:
        release(data_web, ctx)
    stored = browser.get(f"/data/exports/{news}").text
    assert f'data-members="{_segment_id(data_web, "Lisbon")}">3<' in stored
    assert "never refreshed" not in stored
    details = exports.show_export(data_web.ctx, news, live_counts=False)
    assert details.segments[0].counted_at == data_web.clock()
    assert details.live_counts is False


def _segment_id(web: WebHarness, name: str) -> int:
    return next(s.id for s in segments.list_segments(web.ctx) if s.name == name)


def test_export_page_shows_the_latest_twenty_runs_and_links_to_all(
    data_web: WebHarness, news: int
) -> None:
    now = data_web.clock()
    with data_web.ctx.db.session() as session:
        for i in range(45):
            session.add(_run(news, "News", "successful", now - timedelta(hours=45 - i)))
    browser = data_web.client_as("viewer")
    page = browser.get(f"/data/exports/{news}").text
    shown = [int(i) for i in re.findall(r'<a href="/data/runs/(\d+)">', page)]
    newest = run_views.run_history(data_web.ctx, news, per_page=45).runs
    assert shown == [run.id for run in newest[:20]]
    assert f'href="/data/exports/{news}/runs">All 45 runs' in page
    everything = browser.get(f"/data/exports/{news}/runs").text
    assert [int(i) for i in re.findall(r'<a href="/data/runs/(\d+)">', everything)] == [
        run.id for run in newest
    ]
    assert "45 runs, newest first" in everything
    history = run_views.run_history(data_web.ctx, news, page=3, per_page=20)
    assert ([r.id for r in history.runs], history.pages) == ([r.id for r in newest[40:]], 3)


# ---------------------------------------------------------------- the run page's JSON


def test_run_json_has_started_ended_and_duration(data_web: WebHarness, news: int) -> None:
    start = data_web.clock() - timedelta(minutes=5)
    with data_web.ctx.db.session() as session:
        done = _run(news, "News", "successful", start)
        queued = _run(news, "News", "queued", start, started_at=None, ended_at=None)
        session.add_all([done, queued])
        session.flush()
        done_id, queued_id = done.id, queued.id
    browser = data_web.client_as("viewer")

    finished = browser.get(f"/data/runs/{done_id}.json").json()
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S")
    assert finished["started_at"] == f"{stamp}Z"
    assert finished["ended_at"] == (start + timedelta(seconds=42)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert finished["duration_seconds"] == 42.0
    assert finished["final"] is True

    waiting = browser.get(f"/data/runs/{queued_id}.json").json()
    assert (waiting["started_at"], waiting["ended_at"]) == (None, None)
    assert waiting["duration_seconds"] is None
    assert waiting["final"] is False
    # The page has what the script updates in place.
    admin = data_web.client_as("administrator").get(f"/data/runs/{queued_id}").text
    for hook in ('id="run-started"', 'id="run-ended"', 'id="run-duration"', 'id="cancel-form"'):
        assert hook in admin
    assert 'id="cancel-form"' not in browser.get(f"/data/runs/{done_id}").text
