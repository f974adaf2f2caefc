"""``segsync connections ...`` and ``segsync secrets rotate`` end to end: the real CLI on a data
dir, against the simulator over loopback. The key never shows in any output or in the DB file."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from segsync.storage.models.exports import Export
from segsync.storage.repositories.connections import ConnectionRepository

KEY = "sk-live-cli-0a1b2c3d4e5f"
Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(api_keys=[KEY], rate_limit=0)) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def invoke(data_dir: Path) -> Invoke:
    runner = CliRunner(
        env={
            "SEGSYNC_DATA_DIR": None,
            "SEGSYNC_DATABASE_URL": None,
            "SEGSYNC_SECRET_KEY": None,
            "AUTOPILOT_KEY": KEY,
            "WRONG_KEY": "sk-wrong-0000000000000",
            "ADMIN_PASSWORD": "a long admin password",
        }
    )

    def run(*args: str) -> Result:
        result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
        assert KEY not in result.stdout
        assert KEY not in result.stderr
        return result

    return run


def flat(text: str) -> str:
    return " ".join(text.split())


def add_main(invoke: Invoke, sim: RunningSimulator, *extra: str) -> Result:
    return invoke(
        "connections", "add", "autopilot", "--name", "Main", "--api-key-env", "AUTOPILOT_KEY",
        "--base-url", sim.base_url, "--agree", *extra,
    )  # fmt: skip


def db_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("segsync.db*") if p.is_file())


def test_add_list_show_test_edit_remove(
    invoke: Invoke, sim: RunningSimulator, data_dir: Path
) -> None:
    added = add_main(invoke, sim, "--rate-limit", "10", "--contract-limit", "500")
    assert added.exit_code == 0, added.output
    assert "••••4e5f" in added.stdout
    assert "Connected and saved Autopilot connection 'Main'" in flat(added.stdout)

    listed = invoke("connections", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["secret"]["hint"], row["rate_limit"], row["contract_limit"]) == (
        "Main",
        "••••4e5f",
        10.0,
        500,
    )
    assert row["health"]["status"] == "ok"

    shown = invoke("connections", "show", "Main")
    assert shown.exit_code == 0, shown.output
    text = flat(shown.stdout)
    assert "API key: ••••4e5f" in text
    assert "Who may use it: administrators only" in text
    assert "personal data" in text

    tested = invoke("connections", "test", "Main", "--json")
    assert tested.exit_code == 0, tested.output
    assert json.loads(tested.stdout)["health"] == "ok"

    edited = invoke("connections", "edit", "Main", "--share-with-contributors", "--json")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.stdout)["shared_with_contributors"] is True

    removed = invoke("connections", "remove", "Main")
    assert removed.exit_code == 0, removed.output
    assert json.loads(invoke("connections", "list", "--json").stdout) == []
    assert KEY.encode() not in db_bytes(data_dir)

    trail = invoke("audit", "--json")
    assert trail.exit_code == 0, trail.output
    assert [e["action"] for e in json.loads(trail.stdout)] == [
        "connection.added",
        "consent.given",
        "connection.tested",
        "connection.edited",
        "connection.removed",
    ]


def test_refusals_exit_2_and_save_nothing(invoke: Invoke, sim: RunningSimulator) -> None:
    no_agree = invoke(
        "connections", "add", "autopilot", "--name", "Main", "--api-key-env", "AUTOPILOT_KEY",
        "--base-url", sim.base_url,
    )  # fmt: skip
    assert no_agree.exit_code == 2
    assert "--agree" in no_agree.stderr

    wrong = invoke(
        "connections", "add", "autopilot", "--name", "Main", "--api-key-env", "WRONG_KEY",
        "--base-url", sim.base_url, "--agree",
    )  # fmt: skip
    assert wrong.exit_code == 2
    assert "API key was rejected (401)" in flat(wrong.stderr)

    unset = invoke(
        "connections", "add", "autopilot", "--name", "Main", "--api-key-env", "NOT_SET_ANYWHERE",
        "--agree",
    )  # fmt: skip
    assert unset.exit_code == 2
    assert "NOT_SET_ANYWHERE" in unset.stderr

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    unreachable = invoke(
        "connections", "add", "autopilot", "--name", "Main", "--api-key-env", "AUTOPILOT_KEY",
        "--base-url", closed, "--agree",
    )  # fmt: skip
    assert unreachable.exit_code == 2
    assert f"could not reach Autopilot at {closed}" in flat(unreachable.stderr)

    unknown = invoke(
        "connections", "add", "mailchimp", "--name", "Main", "--api-key-env", "AUTOPILOT_KEY",
        "--agree",
    )  # fmt: skip
    assert unknown.exit_code == 2
    assert flat(unknown.stderr).endswith(
        "unknown destination type 'mailchimp'; the known types are: autopilot, ortto"
    )

    assert json.loads(invoke("connections", "list", "--json").stdout) == []


def test_a_secret_reference_is_stored_and_shown_as_such(
    invoke: Invoke, sim: RunningSimulator, data_dir: Path
) -> None:
    added = invoke(
        "connections", "add", "autopilot", "--name", "Ref", "--secret-ref", "env:AUTOPILOT_KEY",
        "--base-url", sim.base_url, "--agree", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["secret"] == {
        "kind": "reference",
        "hint": "env:AUTOPILOT_KEY",
        "reference": "env:AUTOPILOT_KEY",
    }
    assert KEY.encode() not in db_bytes(data_dir)


def test_removal_is_refused_while_an_export_uses_it(
    invoke: Invoke, sim: RunningSimulator, data_dir: Path
) -> None:
    assert add_main(invoke, sim).exit_code == 0
    settings = Settings(_env_file=None, data_dir=data_dir, secret_key=None)  # type: ignore[call-arg]
    with open_context(settings) as ctx, ctx.db.session() as session:
        connection = ConnectionRepository(session).get_by_name("Main")
        now = ctx.now()
        session.add(
            Export(
                name="Newsletter",
                connection_id=connection.id,
                mapping="{}",
                created_by="local-admin",
                created_at=now,
                updated_at=now,
            )
        )
    refused = invoke("connections", "remove", "Main")
    assert refused.exit_code == 2
    assert "'Newsletter'" in flat(refused.stderr)


def test_non_administrators_are_refused_and_see_names_only(
    invoke: Invoke, sim: RunningSimulator
) -> None:
    assert add_main(invoke, sim, "--share-with-contributors").exit_code == 0
    assert invoke("users", "add", "v@example.com", "--role", "viewer").exit_code == 0
    assert invoke("users", "add", "c@example.com", "--role", "contributor").exit_code == 0
    for email in ("v@example.com", "c@example.com"):
        refused = invoke("--as", email, "connections", "remove", "Main")
        assert refused.exit_code == 2
        assert "only administrators manage connections" in refused.stderr
        listed = invoke("--as", email, "connections", "list", "--json")
        assert listed.exit_code == 0, listed.output
        assert [set(row) for row in json.loads(listed.stdout)] == [{"id", "name", "type"}]
    viewer_add = invoke(
        "--as", "v@example.com", "connections", "add", "autopilot", "--name", "X",
        "--api-key-env", "AUTOPILOT_KEY", "--base-url", sim.base_url, "--agree",
    )  # fmt: skip
    assert viewer_add.exit_code == 2
    unknown = invoke("--as", "nobody@example.com", "connections", "list")
    assert unknown.exit_code == 2
    assert "no user with the email 'nobody@example.com'" in unknown.stderr


def test_secrets_rotate_keeps_every_key_readable(
    invoke: Invoke, sim: RunningSimulator, data_dir: Path
) -> None:
    assert add_main(invoke, sim).exit_code == 0
    before = (data_dir / "secret.key").read_bytes()
    rotated = invoke("secrets", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["connections"] == 1
    assert (data_dir / "secret.key").read_bytes() != before
    tested = invoke("connections", "test", "Main")
    assert tested.exit_code == 0, tested.output
