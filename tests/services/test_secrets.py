"""Secrets at rest: the key file, SEGSYNC_SECRET_KEY, references and rotation (C5)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from segsync.errors import FatalError, InputError
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit, secrets
from segsync.settings import Settings
from segsync.storage.repositories.connections import ConnectionRepository

KEY = "sk-live-4f1c9e2ab7d05536"


def test_the_key_file_is_created_with_mode_0600_and_reused(settings: Settings) -> None:
    box = secrets.SecretBox.from_settings(settings)
    path = settings.secret_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = box.encrypt(KEY)
    assert KEY.encode() not in token
    assert secrets.SecretBox.from_settings(settings).decrypt(token, what="x") == KEY
    assert box.source == str(path)


def test_a_key_file_readable_by_others_is_refused(settings: Settings) -> None:
    secrets.ensure_key(settings)
    settings.secret_key_file.chmod(0o644)
    with pytest.raises(FatalError, match=r"mode 0644.*chmod 600"):
        secrets.SecretBox.from_settings(settings)


def test_a_key_file_with_garbage_is_refused(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    settings.secret_key_file.write_text("not a key\n")
    settings.secret_key_file.chmod(0o600)
    with pytest.raises(FatalError, match="key 1 is not a Fernet key"):
        secrets.SecretBox.from_settings(settings)


def test_the_environment_key_wins_and_no_file_is_made(settings: Settings) -> None:
    key = Fernet.generate_key().decode()
    env_settings = settings.model_copy(update={"secret_key": SecretStr(key)})
    box = secrets.SecretBox.from_settings(env_settings)
    assert Fernet(key.encode()).decrypt(box.encrypt(KEY)).decode() == KEY
    assert box.source == "SEGSYNC_SECRET_KEY"
    assert not settings.secret_key_file.exists()
    bad = settings.model_copy(update={"secret_key": SecretStr("nope")})
    with pytest.raises(FatalError, match="SEGSYNC_SECRET_KEY: key 1 is not a Fernet key"):
        secrets.SecretBox.from_settings(bad)


def test_a_token_from_another_key_names_what_cannot_be_decrypted(settings: Settings) -> None:
    foreign = Fernet(Fernet.generate_key()).encrypt(KEY.encode())
    with pytest.raises(FatalError, match="connection 'Main' cannot be decrypted") as refused:
        secrets.SecretBox.from_settings(settings).decrypt(foreign, what="connection 'Main'")
    assert KEY not in refused.value.message


def test_references_resolve_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGSYNC_TEST_REF", f"  {KEY}\n")
    assert secrets.resolve_secret_ref("env:SEGSYNC_TEST_REF") == KEY
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    assert secrets.resolve_secret_ref(f"file:{key_file}") == KEY


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("env:SEGSYNC_TEST_UNSET", FatalError, "'env:SEGSYNC_TEST_UNSET'.*not set or empty"),
        ("env:SEGSYNC_TEST_EMPTY", FatalError, "not set or empty"),
        ("file:/nonexistent/key", FatalError, "'file:/nonexistent/key': cannot read the file"),
        ("vault:secret/x", InputError, "must be env:NAME"),
        ("env:", InputError, "must be env:NAME"),
    ],
)
def test_unreadable_references_are_named(
    monkeypatch: pytest.MonkeyPatch, ref: str, error: type[Exception], message: str
) -> None:
    monkeypatch.delenv("SEGSYNC_TEST_UNSET", raising=False)
    monkeypatch.setenv("SEGSYNC_TEST_EMPTY", "  ")
    with pytest.raises(error, match=message):
        secrets.resolve_secret_ref(ref)


def test_an_empty_key_file_reference_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(FatalError, match="the file is empty"):
        secrets.resolve_secret_ref(f"file:{empty}")


def _store(ctx: ServiceContext, name: str, plain: str) -> int:
    box = secrets.SecretBox.from_settings(ctx.settings)
    with ctx.db.session() as session:
        return (
            ConnectionRepository(session)
            .create(
                name=name,
                type_name="autopilot",
                shared_with_contributors=False,
                secret_ciphertext=box.encrypt(plain),
                secret_ref=None,
                secret_hint="••••",
                base_url="http://127.0.0.1:9/v1",
                rate_limit=5,
                contract_limit=10,
                export_user_id=None,
                created_by="local-admin",
                now=ctx.now(),
            )
            .id
        )


def _ciphertext(ctx: ServiceContext, connection_id: int) -> bytes:
    with ctx.db.session() as session:
        token = ConnectionRepository(session).get(connection_id).secret_ciphertext
    assert token is not None
    return token


def test_rotation_with_the_key_file_reencrypts_every_secret(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    ids = [_store(ctx, "A", KEY), _store(ctx, "B", "sk-other-999999999999")]
    old_key = ctx.settings.secret_key_file.read_bytes()
    before = [_ciphertext(ctx, i) for i in ids]

    report = secrets.rotate(ctx)

    assert (report.connections, report.next_step) == (2, None)
    new_key = ctx.settings.secret_key_file.read_bytes()
    assert new_key != old_key
    assert len(new_key.splitlines()) == 1
    assert stat.S_IMODE(ctx.settings.secret_key_file.stat().st_mode) == 0o600
    after = [_ciphertext(ctx, i) for i in ids]
    assert after != before
    box = secrets.SecretBox.from_settings(ctx.settings)
    assert [box.decrypt(t, what="x") for t in after] == [KEY, "sk-other-999999999999"]
    with pytest.raises(FatalError):
        box.decrypt(before[0], what="the old token")
    assert [e.action for e in audit.list_events(ctx)] == ["secrets.rotated"]


def test_rotation_with_the_environment_key_needs_new_and_old(
    service_context: ServiceContext,
) -> None:
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    ctx = service_context
    ctx.settings = ctx.settings.model_copy(update={"secret_key": SecretStr(old)})
    connection_id = _store(ctx, "A", KEY)
    with pytest.raises(InputError, match="'NEW,OLD'"):
        secrets.rotate(ctx)
    ctx.settings = ctx.settings.model_copy(update={"secret_key": SecretStr(f"{new},{old}")})
    report = secrets.rotate(ctx)
    assert report.connections == 1
    assert report.next_step is not None
    assert "first key alone" in report.next_step
    token = _ciphertext(ctx, connection_id)
    assert Fernet(new.encode()).decrypt(token).decode() == KEY
