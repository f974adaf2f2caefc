"""No API key is ever echoed (issue 14 §1): canary keys — with a line break, CRLF plus a header,
a NUL byte, a non-ASCII letter, a space, and a clean one the destination rejects — go through
the API, the web pages, the CLI and a secret reference; then every response, every captured log
line, every connection message and audit event, and the metadata DB file are searched for the
canary. Bad keys get a 4xx (exit 2 in the CLI) naming the problem, and nothing is saved."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli.app import app as cli_app
from segsync.services import connections
from segsync.services.privacy.audit import list_events
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from tests.web.conftest import WebHarness, csrf_of

GOOD = "sk-good-4f1c9e2ab7d05536"
CANARY = "CANARYq7z3k"
BAD_KEYS = {
    "newline": f"sk-{CANARY}\nX-Injected: 1",
    "crlf": f"sk-{CANARY}\r\nX-Injected: 1",
    "nul": f"sk-{CANARY}\x00tail",
    "non-ascii": f"sk-{CANARY}é",
    "space": f"sk {CANARY}",
}
REASONS = {
    "newline": "control character",
    "crlf": "control character",
    "nul": "control character",
    "non-ascii": "non-ASCII character",
    "space": "a space",
}
REJECTED = f"sk-{CANARY}-rejected"  # well formed: the destination answers 401


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(Simulator(SimulatorConfig(api_keys=[GOOD], rate_limit=0))) as running:
        yield running


def _db_bytes(web: WebHarness) -> bytes:
    folder = web.settings.data_dir
    return b"".join(p.read_bytes() for p in folder.glob("segsync.db*") if p.is_file())


def _assert_nowhere(web: WebHarness, caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for text in texts:
        assert CANARY not in text
    assert CANARY not in caplog.text
    assert CANARY.encode() not in _db_bytes(web)
    for row in connections.list_connections(web.ctx):
        assert CANARY not in str(row)
    for event in list_events(web.ctx):
        assert CANARY not in str(event.to_dict())


def test_no_canary_key_is_echoed_anywhere(
    web: WebHarness,
    sim: RunningSimulator,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = web.api
    headers = web.bearer(web.api_token("administrator"))
    admin = web.client_as("administrator")
    csrf = csrf_of(admin.get("/admin/connections/add/autopilot").text)
    seen: list[str] = []
    for label, key in BAD_KEYS.items():
        body = {"api_key": key, "base_url": sim.base_url}
        checked = api.post("/api/v1/connections/check", json=body, headers=headers)
        assert checked.status_code == 422, (label, checked.text)
        assert REASONS[label] in checked.text
        added = api.post(
            "/api/v1/connections", json={**body, "name": label, "agree": True}, headers=headers
        )
        assert added.status_code == 422
        page = admin.post("/admin/connections/check", json=body, headers={"X-CSRF-Token": csrf})
        assert page.status_code == 422
        form = admin.post(
            "/admin/connections/add/autopilot",
            data=web.form(
                admin,
                "/admin/connections/add/autopilot",
                name=label,
                api_key=key,
                base_url=sim.base_url,
                agree="true",
                share="contributors",
            ),
        )
        assert form.status_code == 422
        seen += [checked.text, added.text, page.text, form.text]
    rejected = api.post(
        "/api/v1/connections/check",
        json={"api_key": REJECTED, "base_url": sim.base_url},
        headers=headers,
    )
    assert rejected.json()["health"] == "key_rejected"
    seen.append(rejected.text)
    # A saved connection whose key is replaced by a bad one keeps its key and says why.
    saved = api.post(
        "/api/v1/connections",
        json={"name": "Main", "api_key": GOOD, "base_url": sim.base_url, "agree": True},
        headers=headers,
    )
    assert saved.status_code == 201
    changed = api.patch(
        f"/api/v1/connections/{saved.json()['id']}",
        json={"api_key": BAD_KEYS["crlf"], "agree": True},
        headers=headers,
    )
    assert changed.status_code == 422
    seen.append(changed.text)
    # A secret reference to a file holding a bad key.
    secret = tmp_path / "key.txt"
    secret.write_text(BAD_KEYS["newline"])
    by_ref = api.post(
        "/api/v1/connections/check",
        json={"secret_ref": f"file:{secret}", "base_url": sim.base_url},
        headers=headers,
    )
    assert by_ref.json()["health"] == "secret_unreadable"
    assert "control character" in by_ref.text
    seen.append(by_ref.text)
    assert [c.name for c in connections.list_connections(web.ctx)] == ["Main"]
    _assert_nowhere(web, caplog, *seen)


@pytest.mark.parametrize("label", sorted(set(BAD_KEYS) - {"nul"}))  # no NUL in environments
def test_the_cli_refuses_a_bad_key_with_exit_2_and_never_prints_it(
    web: WebHarness, sim: RunningSimulator, caplog: pytest.LogCaptureFixture, label: str
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner(env={"BAD_KEY": BAD_KEYS[label], "SEGSYNC_DATA_DIR": None})
    result = runner.invoke(
        cli_app,
        [
            "--data-dir", str(web.settings.data_dir), "connections", "add", "autopilot",
            "--name", "Cli", "--api-key-env", "BAD_KEY", "--base-url", sim.base_url, "--agree",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert REASONS[label] in " ".join(result.output.split())
    _assert_nowhere(web, caplog, result.stdout, result.stderr)
