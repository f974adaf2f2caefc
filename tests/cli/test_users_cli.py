"""``segsync init --admin-email``, ``users``, ``tokens``, ``audit`` and ``--as`` end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app

PASSWORD = "a long admin password"
Invoke = Callable[..., Result]


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
            "ADMIN_PASSWORD": PASSWORD,
            "SHORT_PASSWORD": "short",
        }
    )

    def run(*args: str) -> Result:
        result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
        assert PASSWORD not in result.stdout + result.stderr
        return result

    return run


def test_init_creates_the_first_administrator_and_the_key_file(
    invoke: Invoke, data_dir: Path
) -> None:
    result = invoke(
        "init",
        "--admin-email",
        "Root@Example.com",
        "--admin-password-env",
        "ADMIN_PASSWORD",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["admin"] == {"email": "root@example.com", "created": True}
    assert report["secret_key"] == str(data_dir / "secret.key")
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    again = invoke("init", "--admin-email", "root@example.com")
    assert again.exit_code == 0, again.output
    assert "Already there: administrator root@example.com" in again.stdout
    other = invoke("init", "--admin-email", "other@example.com")
    assert other.exit_code == 2
    assert "an administrator already exists" in other.stderr
    users = json.loads(invoke("users", "list", "--json").stdout)
    assert [(u["email"], u["role"], u["has_password"]) for u in users] == [
        ("root@example.com", "administrator", True)
    ]


def test_init_refuses_a_short_password(invoke: Invoke) -> None:
    result = invoke(
        "init", "--admin-email", "a@example.com", "--admin-password-env", "SHORT_PASSWORD"
    )
    assert result.exit_code == 2
    assert "use at least 12" in result.stderr


def test_users_add_list_set_role_remove(invoke: Invoke) -> None:
    assert invoke("users", "add", "boss@example.com", "--role", "administrator").exit_code == 0
    added = invoke("users", "add", "Jane@Example.com", "--role", "contributor", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["email"] == "jane@example.com"
    assert invoke("users", "set-role", "jane@example.com", "viewer").exit_code == 0
    listed = {u["email"]: u["role"] for u in json.loads(invoke("users", "list", "--json").stdout)}
    assert listed == {"boss@example.com": "administrator", "jane@example.com": "viewer"}
    last = invoke("users", "remove", "boss@example.com")
    assert last.exit_code == 2
    assert "last administrator" in last.stderr
    assert invoke("users", "remove", "jane@example.com").exit_code == 0
    bad_role = invoke("users", "add", "x@example.com", "--role", "owner")
    assert bad_role.exit_code == 2
    assert "role 'owner' is not one of" in bad_role.stderr


def test_as_a_viewer_every_change_is_refused_with_exit_2(invoke: Invoke) -> None:
    assert invoke("users", "add", "v@example.com", "--role", "viewer").exit_code == 0
    for args in (
        ["users", "add", "x@example.com", "--role", "viewer"],
        ["users", "set-role", "v@example.com", "administrator"],
        ["users", "remove", "v@example.com"],
        ["users", "list"],
        ["audit"],
        ["secrets", "rotate"],
    ):
        result = invoke("--as", "v@example.com", *args)
        assert result.exit_code == 2, args
        assert "only administrators" in result.stderr, args


def test_tokens_belong_to_users(invoke: Invoke) -> None:
    local = invoke("tokens", "create", "ci")
    assert local.exit_code == 2
    assert "--as EMAIL" in " ".join(local.stderr.split())
    assert invoke("users", "add", "dev@example.com", "--role", "contributor").exit_code == 0
    created = invoke("--as", "dev@example.com", "tokens", "create", "ci", "--json")
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)
    assert token["token"].startswith("ssk_")
    listed = invoke("--as", "dev@example.com", "tokens", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["hint"] == "••••" + token["token"][-4:]
    assert token["token"] not in listed.stdout
    revoked = invoke("--as", "dev@example.com", "tokens", "revoke", str(token["id"]))
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(invoke("--as", "dev@example.com", "tokens", "list", "--json").stdout)[0][
        "revoked_at"
    ]


def test_audit_lists_filters_and_exports(invoke: Invoke, tmp_path: Path) -> None:
    assert invoke("users", "add", "a@example.com", "--role", "viewer").exit_code == 0
    assert invoke("users", "set-role", "a@example.com", "contributor").exit_code == 0
    table = invoke("audit")
    assert table.exit_code == 0, table.output
    assert "user.added" in table.stdout
    assert "Audit trail" in table.stdout
    recent = json.loads(invoke("audit", "--since", "1h", "--json").stdout)
    assert [e["action"] for e in recent] == ["user.added", "user.role_changed"]
    assert json.loads(invoke("audit", "--since", "2999-01-01", "--json").stdout) == []
    out = tmp_path / "audit.jsonl"
    exported = invoke("audit", "--jsonl", str(out))
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line)["action"] for line in out.read_text().splitlines()] == [
        "user.added",
        "user.role_changed",
    ]
    bad = invoke("audit", "--since", "last tuesday")
    assert bad.exit_code == 2
