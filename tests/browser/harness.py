"""What the browser tests drive: the real web app served by uvicorn on a loopback port, the
Autopilot simulator beside it, and a data dir seeded through the services.

    with serve_app(create_app(settings)) as base_url:   # http://127.0.0.1:PORT
        ...

The data dir holds sample profiles, two refreshed segments (:data:`SEGMENTS`) and one user per
role (``<role>@example.com``, password :data:`PASSWORD`).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import shutil
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from segsync.domain.emails import normalise_email
from segsync.services import profiles, segments, users
from segsync.services.context import open_context
from segsync.services.segments import members as segment_members
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, serve_app_in_thread

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
"""Chromium's flags here (docs/contributing.md, "Browser tests"): without the networking ones it
keeps dialling Google's hosts, which this machine's closed network refuses. Playwright gives every
launch a fresh, empty user-data dir of its own."""

PASSWORD = "correct horse battery"
ROLES = ("administrator", "contributor", "viewer")
PROFILES = 400
SEGMENTS = {
    "Subscribed customers": {"attribute": "IsSubscribed", "op": "is_true"},
    "Gold customers": {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"},
}
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
STARTUP_TIMEOUT = 15.0


def require_chromium() -> None:
    """Skip (or fail under ``SEGSYNC_TEST_REQUIRE_ALL=1``) without Debian's chromium."""
    if CHROMIUM.exists():
        return
    reason = (
        f"{CHROMIUM} is missing: install Debian's chromium package "
        "(`make test` does it when run as root: apt-get install chromium)"
    )
    if os.environ.get("SEGSYNC_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (SEGSYNC_TEST_REQUIRE_ALL=1)")
    pytest.skip(reason)


def serve_app(app: FastAPI, host: str = "127.0.0.1") -> AbstractContextManager[str]:
    """Serve ``app`` with a real uvicorn server in a background thread on a free port; the
    context yields its root URL. On exit the server is asked to stop and its thread joined."""
    return serve_app_in_thread(app, host)


def seed(settings: Settings) -> None:
    """Sample profiles, the two segments of :data:`SEGMENTS` (refreshed, so active with
    members) and one user per role, all made through the services."""
    with open_context(settings) as ctx:
        profiles.load_sample(ctx, profiles=PROFILES, seed=7)
        for name, condition in SEGMENTS.items():
            definition = {"name": name, "rules": [{"conditions": {"all": [condition]}}]}
            segments.create_segment(ctx, json.dumps(definition))
        segments.refresh_segments(ctx, list(SEGMENTS))
        for role in ROLES:
            users.add_user(ctx, f"{role}@example.com", role, PASSWORD)


def expected_contacts(settings: Settings, segment_names: list[str], tmp: Path) -> set[str]:
    """The distinct valid emails (trimmed, lower-cased) of the members of ``segment_names``:
    who a first run must have sent, computed from the members, not from the runner."""
    emails: set[str] = set()
    with open_context(settings) as ctx:
        for name in segment_names:
            path = tmp / f"{name}.csv"
            segment_members.export_members_csv(ctx, name, path)
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    email, _ = normalise_email(row["Email"] or None)
                    if email is not None:
                        emails.add(email)
    return emails


class Gate:
    """The simulator's injected "latency": every ``/v1`` request takes a permit first.

    Open (the default), requests pass at once. :meth:`hold` stops them; :meth:`allow` lets
    ``n`` more through; :meth:`open` lets everything through again. A test uses it to see a
    run part-way through — deterministically, without timing anything.
    """

    def __init__(self) -> None:
        self._permits = threading.Semaphore(0)
        self._open = True

    async def sleep(self, _seconds: float) -> None:
        if not self._open:
            await asyncio.to_thread(self._permits.acquire, True, STARTUP_TIMEOUT * 4)

    def hold(self) -> None:
        self._open = False

    def allow(self, n: int = 1) -> None:
        self._permits.release(n)

    def open(self) -> None:
        self._open = True
        self._permits.release(1_000)


@dataclass
class Site:
    """The running stack one browser session talks to."""

    base_url: str
    settings: Settings
    simulator: RunningSimulator
    gate: Gate

    def url(self, path: str) -> str:
        return self.base_url + path

    def sim_contacts(self) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.simulator.root_url}/_sim/contacts", timeout=10)
        reply.raise_for_status()
        contacts: list[dict[str, Any]] = reply.json()["contacts"]
        return contacts

    def sim_lists(self) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.simulator.root_url}/_sim/lists", timeout=10)
        reply.raise_for_status()
        lists: list[dict[str, Any]] = reply.json()["lists"]
        return lists


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``test-artifacts/screenshots/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def copy_screenshots(names: list[str], target: Path) -> list[Path]:
    """Copy the named artifacts into ``target`` (``scripts/screenshots.py`` → docs)."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        source = ARTIFACTS / f"{name}.png"
        if source.exists():
            copied.append(Path(shutil.copy2(source, target / source.name)))
    return copied


def sign_in(page: Page, role: str, then: str = "/account") -> None:
    """Sign in through the sign-in form as ``<role>@example.com``, landing on ``then``."""
    page.goto(f"/sign-in?next={then}")
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/sign-in"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
