"""The outbound allow-list: which URLs segsync may call (connection base URLs, the webhook).

``SEGSYNC_OUTBOUND_ALLOW`` lists entries, comma-separated (docs/security.md, "Outbound URLs"):

* ``https://*`` — https to any host (the default has it);
* ``https://*.example.com`` or ``https://api.example.com`` — that host (a leading ``*.`` stands
  for any subdomain), any port; ``http://intranet.example.com:8080`` — that port only;
* ``loopback`` — http or https to this machine (``127.0.0.0/8``, ``::1``, ``localhost``; the
  default has it, for the simulator).

A URL is allowed when one entry matches it. The default, :data:`DEFAULT_OUTBOUND_ALLOW`, is https
anywhere and plain http only to loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

from segsync.domain.untrusted import clip

LOOPBACK = "loopback"
DEFAULT_OUTBOUND_ALLOW: tuple[str, ...] = ("https://*", LOOPBACK)
SETTING = "SEGSYNC_OUTBOUND_ALLOW"


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def entry_problem(entry: str) -> str | None:
    """What is wrong with one allow-list entry, or None."""
    if entry == LOOPBACK:
        return None
    parts = urlsplit(entry)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return (
            f"{SETTING}: entry {clip(entry)!r} must be 'loopback' or scheme://host[:port] "
            "with scheme http or https (host may start with '*.', or be '*')"
        )
    if parts.path not in {"", "/"} or parts.query or parts.username:
        return f"{SETTING}: entry {clip(entry)!r} must have no path, query or user name"
    return None


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _matches(entry: str, parts: SplitResult) -> bool:
    host = (parts.hostname or "").lower()
    if entry == LOOPBACK:
        return is_loopback(host)
    want = urlsplit(entry)
    if want.scheme != parts.scheme:
        return False
    pattern = (want.hostname or "").lower()
    if want.port is not None and want.port != (_port(parts) or _default_port(parts.scheme)):
        return False
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def outbound_problem(url: str, allow: Sequence[str], *, what: str) -> str | None:
    """Why ``url`` may not be called under ``allow`` (empty: the default), or None.
    ``what`` names the setting in the message (``base URL``, ``webhook URL``)."""
    entries = tuple(allow) or DEFAULT_OUTBOUND_ALLOW
    parts = urlsplit(url)
    if any(_matches(entry, parts) for entry in entries):
        return None
    host = parts.hostname or ""
    if parts.scheme == "http" and entries == DEFAULT_OUTBOUND_ALLOW:
        return (
            f"{what} {clip(url)!r} uses plain http to {clip(host)!r}, which is not this machine; "
            f"use https, or allow it in {SETTING} (docs/security.md)"
        )
    return (
        f"{what} {clip(url)!r} is not in the outbound allow-list ({SETTING}: "
        f"{clip(', '.join(entries))}); ask the operator to add it (docs/security.md)"
    )
