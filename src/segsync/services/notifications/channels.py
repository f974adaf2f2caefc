"""Delivery of notices to administrators: email over SMTP and a signed JSON webhook (T4).

Only delivery lives here. Deciding *when* a notice is due is
:func:`segsync.domain.notices.notice_for_transition`; keeping notices in the metadata DB belongs
to the notifications service.

A channel is anything with a ``name`` and ``send(notice)`` (:class:`Channel`). ``send`` returns
when the notice was accepted, or raises:

* :class:`~segsync.errors.RetriableError` — the receiver is unreachable or busy; try later;
* :class:`~segsync.errors.FatalError` — the channel is misconfigured (login refused, URL answers
  404); retrying will not help until the settings change.

Webhook signatures: each POST carries ``X-Segsync-Signature: sha256=<hex>``, the HMAC-SHA256 of
the raw request body keyed with ``SEGSYNC_WEBHOOK_SECRET``. Receivers check it with
:func:`verify_signature` (or the equivalent few lines shown in docs/notifications.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random as _random
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from segsync.destinations.retry import RetryPolicy, is_retriable_status, parse_retry_after
from segsync.domain.emails import mask_email
from segsync.domain.notices import Notice, NoticeKind
from segsync.domain.outbound import outbound_problem
from segsync.domain.untrusted import clip
from segsync.errors import FatalError, InputError, RetriableError
from segsync.settings import Settings

__all__ = [
    "SIGNATURE_HEADER",
    "Channel",
    "Notice",
    "NoticeKind",
    "SmtpChannel",
    "WebhookChannel",
    "channels_from_settings",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Segsync-Signature"
EVENT_HEADER = "X-Segsync-Event"
DELIVERY_HEADER = "X-Segsync-Delivery"


class Channel(Protocol):
    """Where notices go. Implement ``name`` and ``send``; raise RetriableError or FatalError."""

    @property
    def name(self) -> str: ...

    def send(self, notice: Notice) -> None: ...


# ---------------------------------------------------------------- signatures


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """For receivers: True when ``header`` (the ``X-Segsync-Signature`` value) signs ``body``.

    Pass the raw request body exactly as received, before any JSON parsing. The comparison takes
    constant time. A missing or malformed header is simply not valid.
    """
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


# ---------------------------------------------------------------- email


class SmtpChannel:
    """Plain-text email over SMTP (``smtplib``), optionally with STARTTLS and login.

    With ``starttls`` the server's certificate is verified against the system's CAs, or against
    ``tls_context`` when given (a private CA).
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not recipients:
            raise InputError("smtp_recipients: give at least one address to send notices to")
        self.host, self.port, self.sender = host, port, sender
        self.recipients = list(recipients)
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout
        self.tls_context = tls_context

    def message(self, notice: Notice) -> EmailMessage:
        """The email for ``notice`` (exposed for previews and tests)."""
        msg = EmailMessage()
        msg["Subject"] = notice.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(notice.occurred_at)
        msg["Message-ID"] = make_msgid(domain="segsync")
        msg["X-Segsync-Event"] = notice.kind.value
        msg.set_content(notice.body_text())
        return msg

    def send(self, notice: Notice) -> None:
        where = f"the SMTP server {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls_context or ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(self.message(notice), self.sender, self.recipients)
        except smtplib.SMTPAuthenticationError as err:
            raise FatalError(
                f"{where} refused the login of {self.username!r} ({err.smtp_code}); "
                "check SEGSYNC_SMTP_USERNAME and SEGSYNC_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPRecipientsRefused as err:
            raise FatalError(
                f"{where} refused the recipients {', '.join(sorted(err.recipients))}; "
                "check SEGSYNC_SMTP_RECIPIENTS"
            ) from None
        except smtplib.SMTPNotSupportedError as err:
            raise FatalError(f"{where} does not support what was asked: {err}") from None
        except smtplib.SMTPResponseException as err:
            text = f"{where} answered {err.smtp_code}: {_smtp_text(err.smtp_error)}"
            if 400 <= err.smtp_code < 500:
                raise RetriableError(text) from None
            raise FatalError(text) from None
        except (smtplib.SMTPException, OSError) as err:
            raise RetriableError(f"{where} could not be reached: {err}") from None
        if refused:
            masked = ", ".join(sorted(mask_email(address) for address in refused))
            log.warning("%s refused some recipients: %s", where, masked)  # P5: masked
        log.info("sent %s notice for export %r by email", notice.kind.value, notice.export_name)


def _smtp_text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


# ---------------------------------------------------------------- webhook


class WebhookChannel:
    """A signed JSON ``POST`` to ``url``, retried under the same policy as the Autopilot client
    (:class:`segsync.destinations.retry.RetryPolicy`: exponential backoff with equal jitter).

    Retried: network errors, timeouts, 408, 429 and 5xx. Attempt ``n`` (1-based) that fails waits
    between half and all of ``min(max_delay, base_delay * 2**(n-1))``, or what the receiver's
    ``Retry-After`` asks — seconds or an HTTP date (capped at 300 s). After ``max_attempts`` it
    raises RetriableError; any other answer (3xx, 4xx) raises FatalError at once. Every attempt
    carries the same body, signature and ``X-Segsync-Delivery`` id, so a receiver can drop
    duplicates.

    ``client`` (an ``httpx.Client``), ``sleep``, ``random`` and ``wall_clock`` (epoch seconds,
    for dated ``Retry-After``) are injectable for tests; without a client, one is opened per
    delivery. ``allow`` is the outbound allow-list (``SEGSYNC_OUTBOUND_ALLOW``).
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.Client | None = None,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        random: Callable[[], float] = _random.random,
        wall_clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        allow: Sequence[str] = (),
    ) -> None:
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).hostname:
            raise InputError(f"webhook_url: {_safe(url)!r} is not an http(s) URL")
        problem = outbound_problem(url, allow, what="SEGSYNC_WEBHOOK_URL")
        if problem is not None:
            raise InputError(problem.replace(clip(url), _safe(url)))
        if not secret:
            raise InputError("webhook_secret: give a secret to sign webhook requests with")
        if max_attempts < 1:
            raise InputError(f"max_attempts: {max_attempts} must be at least 1")
        self.url, self.secret, self.client = url, secret, client
        self.sleep, self.wall_clock, self.timeout = sleep, wall_clock, timeout
        self.policy = RetryPolicy(
            max_attempts=max_attempts, base=base_delay, maximum=max_delay, random=random
        )

    def request_parts(self, notice: Notice) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers of a delivery (a fresh delivery id each call)."""
        body = json.dumps(notice.to_payload(), separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "segsync-webhook",
            EVENT_HEADER: notice.kind.value,
            DELIVERY_HEADER: uuid.uuid4().hex,
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        return body, headers

    def send(self, notice: Notice) -> None:
        body, headers = self.request_parts(notice)
        if self.client is not None:
            self._deliver(self.client, body, headers, notice)
            return
        with httpx.Client(timeout=self.timeout) as client:
            self._deliver(client, body, headers, notice)

    def _deliver(
        self, client: httpx.Client, body: bytes, headers: dict[str, str], notice: Notice
    ) -> None:
        where = f"the webhook at {_safe(self.url)}"
        problem = ""
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as err:
                problem = f"could not be reached ({type(err).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    log.info("sent %s notice by webhook", notice.kind.value)
                    return
                if not is_retriable_status(status):
                    raise FatalError(
                        f"{where} answered {status} {clip(response.reason_phrase)}; "
                        "check SEGSYNC_WEBHOOK_URL and the receiver"
                    )
                problem = f"answered {status} {clip(response.reason_phrase)}"
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), now=self.wall_clock()
                )
            if not self.policy.should_retry(attempt):
                raise RetriableError(f"{where} {problem}, {attempt} attempts made")
            self.sleep(self.policy.delay(attempt, retry_after))


def _safe(url: str) -> str:
    """The URL without path, query or credentials: webhook paths often carry tokens."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…" if parts.scheme else "(not a URL)"


# ---------------------------------------------------------------- from settings


def channels_from_settings(
    settings: Settings, *, admin_emails: Sequence[str] = ()
) -> list[Channel]:
    """The channels the settings configure: email when ``smtp_host`` is set, webhook when
    ``webhook_url`` is set.

    Email goes to ``smtp_recipients``, or when that is empty to ``admin_emails`` (the
    administrators' addresses, which the caller looks up); with neither, no email channel is
    made. A webhook URL without ``webhook_secret`` is an InputError.
    """
    channels: list[Channel] = []
    if settings.smtp_host:
        recipients = list(settings.smtp_recipients) or list(admin_emails)
        if recipients:
            password = settings.smtp_password
            channels.append(
                SmtpChannel(
                    settings.smtp_host,
                    settings.smtp_port,
                    settings.smtp_sender,
                    recipients,
                    username=settings.smtp_username,
                    password=password.get_secret_value() if password else None,
                    starttls=settings.smtp_starttls,
                )
            )
        else:
            log.warning("SEGSYNC_SMTP_HOST is set but there is no one to email notices to")
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        if not secret:
            raise InputError("SEGSYNC_WEBHOOK_SECRET: required when SEGSYNC_WEBHOOK_URL is set")
        channels.append(WebhookChannel(settings.webhook_url, secret, allow=settings.outbound_allow))
    return channels
