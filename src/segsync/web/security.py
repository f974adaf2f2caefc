"""Web security (issue 6 §3): signed session cookies, CSRF tokens, sign-in rate limit, headers.

* **Session**: one cookie, ``segsync_session`` — base64url JSON plus an HMAC-SHA256 signature.
  It holds the token of a server-side session (:mod:`segsync.services.users.web_sessions`: only
  its SHA-256 is stored; Sign out, a password or role change and a removal delete it, so a
  copied cookie stops working at once), the user's id and email, the CSRF token, when it was
  issued, and flash messages; never a password, key or role (the role is read from the DB on
  every request). HttpOnly, SameSite=Lax, ``Secure`` with ``SEGSYNC_WEB_SECURE_COOKIES=true``;
  it expires :data:`SESSION_MAX_AGE` seconds after sign-in.
* **Signing key**: HMAC-derived (label ``segsync web session v1``) from the first secret key
  (``SEGSYNC_SECRET_KEY`` or ``<data dir>/secret.key``), so every process sharing the secret key
  accepts the same sessions; rotating the secret key signs everybody out.
* **CSRF**: a random token per session, sent back by every form (hidden ``csrf_token`` field)
  or by our JavaScript (``X-CSRF-Token`` header), compared in constant time on every non-GET page
  request. The JSON API takes bearer tokens only and never reads cookies, so it needs none.
* **Sign-in rate limit**: counted in the metadata DB, shared by every process; from the
  :data:`MAX_SIGN_IN_FAILURES`-th failure in a row per email and client address, attempts are
  refused (HTTP 429) for a minute, doubling with each further failure up to an hour.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segsync.services.privacy.secrets import load_key_file
from segsync.services.users.web_sessions import MAX_SIGN_IN_FAILURES, SESSION_MAX_AGE
from segsync.settings import Settings

__all__ = [
    "COOKIE_NAME",
    "MAX_SIGN_IN_FAILURES",
    "SESSION_MAX_AGE",
    "SecurityMiddleware",
    "SessionCodec",
    "WebSession",
    "session_secret",
]

COOKIE_NAME = "segsync_session"
_MAX_FLASH_LENGTH = 600
_SESSION_LABEL = b"segsync web session v1"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)


def session_secret(settings: Settings) -> bytes:
    """The key that signs session cookies, derived from the first secret key (see above)."""
    if settings.secret_key is not None:
        first = settings.secret_key.get_secret_value().replace(",", "\n").split()[0]
        root = first.encode("ascii")
    else:
        root = load_key_file(settings.secret_key_file, create=True)[0]
    return hmac.new(root, _SESSION_LABEL, hashlib.sha256).digest()


@dataclass
class WebSession:
    """The decoded session of one request. Changing it (sign in/out, flash, a first CSRF token)
    sets ``modified`` and the response carries the new cookie."""

    user_id: int | None = None
    email: str | None = None
    token: str | None = None
    issued_at: float = 0.0
    csrf: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)
    modified: bool = False

    @property
    def csrf_token(self) -> str:
        """This session's CSRF token (created on first use)."""
        if self.csrf is None:
            self.csrf = secrets.token_urlsafe(32)
            self.modified = True
        return self.csrf

    def csrf_matches(self, sent: str | None) -> bool:
        if not sent or self.csrf is None:
            return False
        return hmac.compare_digest(sent.encode("utf-8"), self.csrf.encode("utf-8"))

    def sign_in(self, user_id: int | None, email: str, token: str, at: datetime) -> None:
        """Start a signed-in session (with a fresh CSRF token: no fixation). ``token`` names
        the server-side session."""
        self.user_id, self.email, self.issued_at = user_id, email, at.timestamp()
        self.token = token
        self.csrf = secrets.token_urlsafe(32)
        self.modified = True

    def sign_out(self) -> None:
        self.user_id, self.email, self.issued_at, self.token = None, None, 0.0, None
        self.csrf = secrets.token_urlsafe(32)
        self.modified = True

    def flash(self, text: str, level: str = "info") -> None:
        """A message shown once on the next page (``info``, ``success``, ``error``)."""
        if len(text) > _MAX_FLASH_LENGTH:
            text = text[: _MAX_FLASH_LENGTH - 1] + "…"
        self.flashes.append((level, text))
        self.modified = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        shown, self.flashes = self.flashes, []
        if shown:
            self.modified = True
        return shown


class SessionCodec:
    """Encodes a :class:`WebSession` into a signed cookie value and back."""

    def __init__(self, secret: bytes, now: Callable[[], datetime]) -> None:
        self._secret = secret
        self._now = now

    def _sign(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def encode(self, session: WebSession) -> str:
        data = {
            "u": session.user_id,
            "e": session.email,
            "s": session.token,
            "t": session.issued_at,
            "c": session.csrf,
            "f": session.flashes,
        }
        payload = base64.urlsafe_b64encode(json.dumps(data).encode("utf-8")).rstrip(b"=")
        return f"{payload.decode('ascii')}.{self._sign(payload)}"

    def decode(self, value: str | None) -> WebSession:
        """The session in ``value``; a fresh empty one if it is missing, forged or expired."""
        if not value or "." not in value:
            return WebSession()
        payload, signature = value.rsplit(".", 1)
        expected = self._sign(payload.encode("ascii", "replace")).encode("ascii")
        # bytes, not str: compare_digest raises TypeError on non-ASCII text (a forged cookie)
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return WebSession(modified=True)
        try:
            padded = payload + "=" * (-len(payload) % 4)
            data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
            session = WebSession(
                user_id=data.get("u"),
                email=data.get("e"),
                token=data.get("s") if isinstance(data.get("s"), str) else None,
                issued_at=float(data.get("t") or 0.0),
                csrf=data.get("c"),
                flashes=[(str(level), str(text)) for level, text in data.get("f") or []],
            )
        except (ValueError, TypeError, binascii.Error):
            return WebSession(modified=True)
        if session.email and self._now().timestamp() - session.issued_at > SESSION_MAX_AGE:
            session.sign_out()
        return session


class SecurityMiddleware:
    """Pure ASGI middleware: loads the session of page requests into ``request.state.session``,
    writes it back when changed, and adds :data:`SECURITY_HEADERS` to every response. Requests
    under ``/api/`` get no session (bearer tokens only)."""

    def __init__(self, app: ASGIApp, *, codec: SessionCodec, secure_cookies: bool) -> None:
        self.app = app
        self.codec = codec
        self.secure_cookies = secure_cookies

    def _cookie(self, session: WebSession) -> str:
        parts = [
            f"{COOKIE_NAME}={self.codec.encode(session)}",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            f"Max-Age={SESSION_MAX_AGE}",
        ]
        if self.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session: WebSession | None = None
        if not str(scope.get("path", "")).startswith(("/api/", "/static/")):
            cookie = HTTPConnection(scope).cookies.get(COOKIE_NAME)
            session = self.codec.decode(cookie)
            state: MutableMapping[str, Any] = scope.setdefault("state", {})
            state["session"] = session

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
                if "cache-control" not in headers and session is not None:
                    headers["cache-control"] = "no-store"
                if session is not None and session.modified:
                    headers.append("set-cookie", self._cookie(session))
            await send(message)

        await self.app(scope, receive, send_with_headers)
