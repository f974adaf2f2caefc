"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the real app
(uvicorn on a loopback port) with the Autopilot simulator beside it.

    def test_something(page: Page, site: Site) -> None:
        sign_in(page, "administrator")
        page.get_by_role("link", name="Connections").click()

Everything here lives for the whole ``tests/browser`` package (one browser, one simulator, one
app on one seeded data dir), so tests name what they create uniquely. Each test gets a fresh
browser context (its own cookies). Without /usr/bin/chromium the tests skip, or fail under
``SEGSYNC_TEST_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from segsync.services.context import open_context
from segsync.services.runs.worker import Worker
from segsync.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from segsync.web.app import create_app
from tests.browser.harness import (
    CHROMIUM,
    LAUNCH_ARGS,
    Gate,
    Site,
    require_chromium,
    seed,
    serve_app,
)
from tests.conftest import fresh_settings

TIMEOUT_MS = 10_000


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="package")
def simulator(gate: Gate) -> Iterator[RunningSimulator]:
    """The simulator on a loopback port, no rate limit; its requests pass through ``gate``."""
    config = SimulatorConfig(rate_limit=0, seed=11, latency_ms=1, sleep=gate.sleep)
    with serve_in_thread(config) as running:
        yield running


@pytest.fixture(scope="package")
def site(
    tmp_path_factory: pytest.TempPathFactory, simulator: RunningSimulator, gate: Gate
) -> Iterator[Site]:
    """The real app on a seeded data dir, served by uvicorn in a thread, and a worker thread
    that executes the runs the Run buttons queue."""
    data_dir: Path = tmp_path_factory.mktemp("browser") / "data"
    settings = fresh_settings(data_dir)
    seed(settings)
    with open_context(settings) as worker_ctx, serve_app(create_app(settings)) as base_url:
        worker = Worker(worker_ctx, poll_interval=0.1)
        thread = threading.Thread(target=worker.run, name="segsync-test-worker", daemon=True)
        thread.start()
        try:
            yield Site(base_url=base_url, settings=settings, simulator=simulator, gate=gate)
        finally:
            gate.open()
            worker.stop()
            thread.join(timeout=30)


def open_page(browser: Browser, site: Site, width: int, height: int) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies) of this viewport on the site, closed after
    (for a fixture to yield from)."""
    context = browser.new_context(
        base_url=site.base_url, viewport={"width": width, "height": height}
    )
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh browser context (no cookies) at 1280×900 on the site."""
    yield from open_page(browser, site, 1280, 900)
