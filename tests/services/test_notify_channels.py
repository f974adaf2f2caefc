"""Notice delivery against real local receivers: an SMTP sink and an HTTP server (T4)."""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import json
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from segsync.domain.notices import Notice, NoticeKind
from segsync.errors import FatalError, InputError, RetriableError
from segsync.services.notifications.channels import (
    SmtpChannel,
    WebhookChannel,
    channels_from_settings,
    verify_signature,
)
from segsync.settings import Settings
from tests.tls_support import self_signed

DOCS = Path(__file__).resolve().parents[2] / "docs"
SECRET = "whsec-test-1234"

NOTICE = Notice(
    kind=NoticeKind.EXPORT_FAILED,
    export_name="Newsletter",
    run_id=17,
    message="Autopilot answered 503 five times; the run stopped after batch 3 of 9",
    occurred_at=dt.datetime(2026, 3, 29, 6, 0, tzinfo=dt.UTC),
    url="http://segsync.example/runs/17",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- SMTP sink


class Sink:
    """An aiosmtpd handler that keeps every message and can refuse chosen recipients."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def message(self, index: int = 0) -> Message:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        return email.message_from_bytes(content)


def accept_ops(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ops", b"pa55")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=accept_ops, auth_require_tls=False
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def test_email_notice_reaches_every_recipient(smtp_sink: tuple[Sink, int]) -> None:
    sink, port = smtp_sink
    channel = SmtpChannel(
        "127.0.0.1", port, "segsync@example.org", ["ops@example.org", "cto@example.org"]
    )
    channel.send(NOTICE)

    assert len(sink.envelopes) == 1
    envelope = sink.envelopes[0]
    assert envelope.mail_from == "segsync@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "cto@example.org"]
    message = sink.message()
    assert message["Subject"] == "[segsync] Export 'Newsletter' failed"
    assert message["From"] == "segsync@example.org"
    assert message["To"] == "ops@example.org, cto@example.org"
    assert message["X-Segsync-Event"] == "export_failed"
    assert message.get_content_type() == "text/plain"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "The export 'Newsletter' failed" in text
    assert "Run: 17" in text
    assert "the run stopped after batch 3 of 9" in text
    assert "Details: http://segsync.example/runs/17" in text


def test_email_login_and_its_refusal(smtp_sink: tuple[Sink, int]) -> None:
    sink, port = smtp_sink
    args = ("127.0.0.1", port, "segsync@example.org", ["ops@example.org"])
    SmtpChannel(*args, username="ops", password="pa55").send(NOTICE)
    assert len(sink.envelopes) == 1
    with pytest.raises(FatalError, match=r"refused the login of 'ops' \(535\).*SMTP_PASSWORD"):
        SmtpChannel(*args, username="ops", password="wrong").send(NOTICE)
    assert len(sink.envelopes) == 1


def test_refused_recipients_are_fatal(smtp_sink: tuple[Sink, int]) -> None:
    sink, port = smtp_sink
    sink.refuse = {"nobody@example.org"}
    channel = SmtpChannel("127.0.0.1", port, "segsync@example.org", ["nobody@example.org"])
    with pytest.raises(FatalError, match=r"refused the recipients nobody@example\.org"):
        channel.send(NOTICE)
    assert sink.envelopes == []


def test_an_unreachable_smtp_server_is_retriable() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), "s@example.org", ["ops@example.org"])
    with pytest.raises(RetriableError, match=r"the SMTP server 127\.0\.0\.1:\d+ could not be"):
        channel.send(NOTICE)


def test_starttls_then_login_with_a_verified_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    sink, port = Sink(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=accept_ops,
    )
    controller.start()
    try:
        args = ("127.0.0.1", port, "segsync@example.org", ["ops@example.org"])
        trusting = ssl.create_default_context(cafile=str(cert_file))
        SmtpChannel(
            *args, username="ops", password="pa55", starttls=True, tls_context=trusting
        ).send(NOTICE)
        assert len(sink.envelopes) == 1
        # An untrusted certificate is not accepted silently.
        with pytest.raises(RetriableError, match="could not be reached"):
            SmtpChannel(*args, starttls=True).send(NOTICE)
        # Without STARTTLS, this server refuses to go on (530): fatal, fix the settings.
        with pytest.raises(FatalError, match="answered 530"):
            SmtpChannel(*args).send(NOTICE)
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


# ---------------------------------------------------------------- webhook receiver


@dataclass
class Receiver:
    """A tiny HTTP server: answers each POST with the next scripted status (then 200)."""

    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            status, headers = state.script.pop(0) if state.script else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/segsync/T0KEN"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def webhook(url: str, sleeps: list[float], **kwargs: Any) -> WebhookChannel:
    return WebhookChannel(url, SECRET, sleep=sleeps.append, random=lambda: 0.5, **kwargs)


def test_webhook_posts_signed_json_that_the_receiver_verifies(receiver: Receiver) -> None:
    sleeps: list[float] = []
    webhook(receiver.url, sleeps).send(NOTICE)

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Segsync-Event"] == "export_failed"
    signature = headers["X-Segsync-Signature"]
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert verify_signature(SECRET, body, signature)
    assert not verify_signature("another secret", body, signature)
    assert not verify_signature(SECRET, body.replace(b"Newsletter", b"NewsletteR"), signature)
    assert not verify_signature(SECRET, body, None)
    assert json.loads(body) == {
        "event": "export_failed",
        "export": "Newsletter",
        "run_id": 17,
        "message": NOTICE.message,
        "occurred_at": "2026-03-29T06:00:00+00:00",
        "url": "http://segsync.example/runs/17",
    }
    assert sleeps == []


def test_a_500_then_200_is_retried_once_after_the_backoff(receiver: Receiver) -> None:
    receiver.script = [(500, {})]
    sleeps: list[float] = []
    webhook(receiver.url, sleeps, base_delay=2.0).send(NOTICE)

    assert len(receiver.requests) == 2
    assert sleeps == [2.0 * 0.75]  # the shared policy: half the base, + half of it × random()
    (first_headers, first_body), (second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert first_headers["X-Segsync-Delivery"] == second_headers["X-Segsync-Delivery"]
    assert verify_signature(SECRET, second_body, second_headers["X-Segsync-Signature"])


def test_backoff_doubles_and_delivery_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.script = [(503, {})] * 4 + [(200, {})]
    sleeps: list[float] = []
    channel = webhook(receiver.url, sleeps, max_attempts=4, base_delay=1.0, max_delay=3.0)
    with pytest.raises(RetriableError, match="answered 503 Service Unavailable, 4 attempts") as err:
        channel.send(NOTICE)
    assert "T0KEN" not in str(err.value)  # the URL's path may carry a token: never shown
    assert len(receiver.requests) == 4
    assert sleeps == [0.75, 1.5, 2.25]  # 1, 2, then capped at 3; each × (1 + 0.5) / 2


def test_429_waits_as_long_as_retry_after_asks(receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "7"})]
    sleeps: list[float] = []
    webhook(receiver.url, sleeps).send(NOTICE)
    assert sleeps == [7.0]
    assert len(receiver.requests) == 2


def test_client_errors_are_fatal_and_not_retried(receiver: Receiver) -> None:
    receiver.script = [(404, {})]
    sleeps: list[float] = []
    with pytest.raises(FatalError, match="answered 404 Not Found; check SEGSYNC_WEBHOOK_URL"):
        webhook(receiver.url, sleeps).send(NOTICE)
    assert len(receiver.requests) == 1
    assert sleeps == []


def test_an_unreachable_webhook_is_retried_then_retriable() -> None:
    sleeps: list[float] = []
    channel = webhook(f"http://127.0.0.1:{free_port()}/hook", sleeps, max_attempts=3)
    with pytest.raises(RetriableError, match=r"could not be reached \(ConnectError.*3 attempts"):
        channel.send(NOTICE)
    assert sleeps == [0.75, 1.5]


def test_a_dated_retry_after_is_honoured_like_the_autopilot_clients(receiver: Receiver) -> None:
    # RFC 9110 allows Retry-After as an HTTP date; the old loop read only seconds and fell back
    # to its backoff. Both senders now share destinations.retry.
    now = 1_800_000_000.0
    when = email.utils.formatdate(now + 42, usegmt=True)
    receiver.script = [(503, {"Retry-After": when})]
    sleeps: list[float] = []
    WebhookChannel(
        receiver.url, SECRET, sleep=sleeps.append, random=lambda: 0.5, wall_clock=lambda: now
    ).send(NOTICE)
    assert sleeps == [42.0]
    assert len(receiver.requests) == 2


def test_the_webhook_url_must_pass_the_outbound_allow_list() -> None:
    with pytest.raises(InputError, match=r"plain http .* SEGSYNC_OUTBOUND_ALLOW") as err:
        WebhookChannel("http://hooks.example.org/T0KEN", SECRET)
    assert "T0KEN" not in str(err.value)
    WebhookChannel("https://hooks.example.org/T0KEN", SECRET)  # https: allowed by default
    WebhookChannel("http://127.0.0.1:9/hook", SECRET)  # loopback: allowed by default
    with pytest.raises(InputError, match="not in the outbound allow-list"):
        WebhookChannel("https://other.example.org/h", SECRET, allow=["https://*.example.com"])
    WebhookChannel("http://hooks.example.org/h", SECRET, allow=["http://hooks.example.org"])


def test_bad_webhook_configuration_is_refused() -> None:
    with pytest.raises(InputError, match=r"webhook_url: .* is not an http"):
        WebhookChannel("ftp://example.org/hook", SECRET)
    with pytest.raises(InputError, match="webhook_secret: give a secret"):
        WebhookChannel("https://example.org/hook", "")


def test_the_verification_snippet_in_the_docs_works(receiver: Receiver) -> None:
    webhook(receiver.url, []).send(NOTICE)
    headers, body = receiver.requests[0]
    text = (DOCS / "notifications.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert snippet, "docs/notifications.md has a Python verification example"
    namespace: dict[str, Any] = {}
    exec(snippet.group(1), namespace)
    check = namespace["is_from_segsync"]
    assert check(SECRET.encode(), body, headers["X-Segsync-Signature"]) is True
    assert check(b"wrong", body, headers["X-Segsync-Signature"]) is False


# ---------------------------------------------------------------- settings


def test_no_channels_by_default() -> None:
    assert channels_from_settings(Settings(_env_file=None)) == []


def test_channels_from_settings(
    smtp_sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, port = smtp_sink
    monkeypatch.setenv("SEGSYNC_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SEGSYNC_SMTP_PORT", str(port))
    monkeypatch.setenv("SEGSYNC_SMTP_RECIPIENTS", "ops@example.org, cto@example.org")
    monkeypatch.setenv("SEGSYNC_SMTP_USERNAME", "ops")
    monkeypatch.setenv("SEGSYNC_SMTP_PASSWORD", "pa55")
    monkeypatch.setenv("SEGSYNC_WEBHOOK_URL", "https://hooks.example.org/segsync")
    monkeypatch.setenv("SEGSYNC_WEBHOOK_SECRET", SECRET)
    settings = Settings()
    assert settings.smtp_recipients == ["ops@example.org", "cto@example.org"]
    assert SECRET not in repr(settings)
    assert "pa55" not in repr(settings)

    email_channel, hook = channels_from_settings(settings)
    assert isinstance(email_channel, SmtpChannel)
    assert isinstance(hook, WebhookChannel)
    assert (hook.url, hook.secret) == ("https://hooks.example.org/segsync", SECRET)
    email_channel.send(NOTICE)
    assert sink.envelopes[0].rcpt_tos == ["ops@example.org", "cto@example.org"]
    assert sink.envelopes[0].mail_from == "segsync@localhost"


def test_without_recipients_email_goes_to_the_administrators() -> None:
    settings = Settings(_env_file=None, smtp_host="mail.example.org")
    (channel,) = channels_from_settings(settings, admin_emails=["admin@example.org"])
    assert isinstance(channel, SmtpChannel)
    assert channel.recipients == ["admin@example.org"]
    assert channels_from_settings(settings) == []  # no one to send to


def test_a_webhook_without_a_secret_is_refused() -> None:
    settings = Settings(_env_file=None, webhook_url="https://hooks.example.org/x")
    with pytest.raises(InputError, match="SEGSYNC_WEBHOOK_SECRET: required"):
        channels_from_settings(settings)
