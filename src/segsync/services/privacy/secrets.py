"""Secrets at rest (C5, docs/design.md "Secrets"): Fernet encryption of API keys, the key file,
secret references, and key rotation.

Where the encryption key comes from, first match wins:

1. ``SEGSYNC_SECRET_KEY`` (``settings.secret_key``): one Fernet key, or several separated by
   commas — the first encrypts, every one of them decrypts (for rotation);
2. the key file ``settings.secret_key_file`` (``<data dir>/secret.key``), one key per line, same
   rule. It is created on first use with mode 0600 (owner read/write only), and refused if group
   or others may read it.

A *secret reference* replaces a stored key: ``env:NAME`` (an environment variable) or
``file:PATH`` (a file holding the key), resolved each time the key is needed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from segsync.domain.permissions import Action, require
from segsync.domain.untrusted import api_key_problem
from segsync.errors import FatalError, InputError
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.settings import Settings
from segsync.storage.repositories.connections import ConnectionRepository

KEY_FILE_MODE = 0o600
ENV_KEY_NAME = "SEGSYNC_SECRET_KEY"


class SecretBox:
    """Encrypts and decrypts secrets with the configured Fernet key(s). Build it with
    :meth:`from_settings`; ``source`` says where the keys came from (for messages)."""

    def __init__(self, keys: Sequence[bytes], *, source: str) -> None:
        if not keys:
            raise FatalError(f"no secret key in {source}")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_count = len(keys)
        self.source = source

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for ``settings``: ``SEGSYNC_SECRET_KEY`` if set, else the key file (created
        0600 if missing)."""
        if settings.secret_key is not None:
            return cls(
                _parse_keys(settings.secret_key.get_secret_value(), ENV_KEY_NAME),
                source=ENV_KEY_NAME,
            )
        path = settings.secret_key_file
        return cls(load_key_file(path, create=True), source=str(path))

    def encrypt(self, plain: str) -> bytes:
        return self._fernet.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes, *, what: str) -> str:
        """The plain secret; ``FatalError`` naming ``what`` if no key of this box opens it."""
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise FatalError(
                f"the stored secret of {what} cannot be decrypted with the key from {self.source}; "
                f"restore the key it was saved with, or enter the secret again"
            ) from None

    def reencrypt(self, token: bytes, *, what: str) -> bytes:
        """The same secret encrypted with this box's first key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise FatalError(
                f"the stored secret of {what} cannot be decrypted with any key from "
                f"{self.source}; nothing was rotated"
            ) from None


def _parse_keys(text: str, source: str) -> list[bytes]:
    keys = [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
    if not keys:
        raise FatalError(f"{source} holds no secret key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise FatalError(
                f"{source}: key {position} is not a Fernet key (32 url-safe base64-encoded "
                "bytes, as made by `cryptography.fernet.Fernet.generate_key()`)"
            ) from None
    return [key.encode("ascii") for key in keys]


def _check_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise FatalError(
            f"the secret key file {path} has mode {mode:04o}: group or others may read it; "
            f"make it readable by its owner only (chmod 600 {path})"
        )


def _write_new_file(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``content``; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_key_file(path: Path, *, create: bool) -> list[bytes]:
    """The keys in the key file; with ``create``, a new file with one fresh key if missing."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # If another process made it first, use theirs.
        with contextlib.suppress(FileExistsError):
            _write_new_file(path, Fernet.generate_key() + b"\n")
    try:
        _check_mode(path)
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise FatalError(f"the secret key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise FatalError(f"cannot read the secret key file {path}: {err}") from None
    return _parse_keys(text, f"the secret key file {path}")


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically with ``keys`` (first = the one that encrypts), mode 0600."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    _write_new_file(temporary, b"".join(key + b"\n" for key in keys))
    os.replace(temporary, path)


def ensure_key(settings: Settings) -> str:
    """Make sure a key is available (creating the key file if needed); say where it is."""
    return SecretBox.from_settings(settings).source


def validate_secret_ref(ref: str) -> str:
    """``ref`` trimmed if it reads ``env:NAME`` or ``file:PATH``; ``InputError`` otherwise."""
    value = ref.strip()
    kind, _, target = value.partition(":")
    if kind not in {"env", "file"} or not target.strip():
        raise InputError(
            f"secret reference {ref!r} must be env:NAME (an environment variable) or "
            "file:PATH (a file holding the key)"
        )
    return value


def resolve_secret_ref(ref: str) -> str:
    """The secret a reference points at, read now. ``FatalError`` naming the reference when the
    variable is unset or empty, or the file is unreadable or empty."""
    value = validate_secret_ref(ref)
    kind, _, target = value.partition(":")
    if kind == "env":
        secret = os.environ.get(target, "").strip()
        if not secret:
            raise FatalError(
                f"secret reference {value!r}: the environment variable {target} is not set or empty"
            )
        return _checked(value, secret)
    try:
        secret = Path(target).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise FatalError(f"secret reference {value!r}: cannot read the file: {reason}") from None
    if not secret:
        raise FatalError(f"secret reference {value!r}: the file is empty")
    return _checked(value, secret)


def _checked(ref: str, secret: str) -> str:
    problem = api_key_problem(secret)
    if problem is not None:
        raise FatalError(f"secret reference {ref!r}: {problem}")
    return secret


@dataclass(frozen=True)
class RotationReport:
    """What :func:`rotate` did: how many stored secrets it re-encrypted, with which key source."""

    connections: int
    source: str
    next_step: str | None


def rotate(ctx: ServiceContext) -> RotationReport:
    """Re-encrypt every stored connection secret with a new key (administrators only).

    With the key file: a new key is generated and put first in the file (the old ones stay as
    decrypt-only keys until every secret is re-encrypted in one transaction, then they are
    dropped), so a crash at any point leaves every secret readable. With ``SEGSYNC_SECRET_KEY``
    the operator supplies the new key: set it to ``NEW,OLD``, run this, then set it to ``NEW``.
    """
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    settings = ctx.settings
    if settings.secret_key is not None:
        box = SecretBox.from_settings(settings)
        if box.key_count < 2:
            raise InputError(
                f"{ENV_KEY_NAME} holds one key: to rotate, set it to 'NEW,OLD' (NEW from "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`), run `segsync secrets rotate`, "
                "then set it to 'NEW' alone"
            )
        count = _reencrypt_all(ctx, box)
        return RotationReport(count, ENV_KEY_NAME, f"now set {ENV_KEY_NAME} to its first key alone")
    path = settings.secret_key_file
    old = load_key_file(path, create=True)
    new = Fernet.generate_key()
    write_key_file(path, [new, *old])
    count = _reencrypt_all(ctx, SecretBox([new, *old], source=str(path)))
    write_key_file(path, [new])
    return RotationReport(count, str(path), None)


def _reencrypt_all(ctx: ServiceContext, box: SecretBox) -> int:
    count = 0
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        for connection in repo.list():
            if connection.secret_ciphertext is None:
                continue
            token = box.reencrypt(
                connection.secret_ciphertext, what=f"connection {connection.name!r}"
            )
            repo.set_ciphertext(connection.id, token)
            count += 1
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="secrets.rotated",
            target_type="system",
            target="secret key",
            summary=f"Re-encrypted {count} stored connection secret(s) with a new key",
            details={"connection_count": count, "key_source": box.source},
        )
    return count
