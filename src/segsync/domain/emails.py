"""Email normalisation (X2) and masking for logs and pages (P5, C5).

Validation is practical, not RFC 5322-complete: it accepts what mail providers hand out and refuses
what would certainly bounce or be refused by Autopilot. After trimming and lower-casing, an email is
valid when

* it has at most 254 characters, no whitespace and no control characters inside;
* it has exactly one ``@``, with 1–64 characters before it and a domain after it;
* the part before the ``@`` has none of ``( ) < > [ ] , ; : \\ "``, does not start or end with a
  dot and has no two dots in a row (quoted local parts are not accepted);
* the domain has at least two labels separated by dots; each label has 1–63 letters, digits or
  hyphens (letters may be non-ASCII, for internationalised domains) and does not start or end with
  a hyphen; the last label (top-level domain) has at least two characters and is not all digits;
  IP-address domains (``user@[1.2.3.4]``) are refused.

Reasons are ``"empty"`` or ``"invalid: <why>"``, written for the rejects CSV (X10).
"""

from __future__ import annotations

import hashlib
import math
import re

MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64
MAX_LABEL_LENGTH = 63
_LOCAL_FORBIDDEN = frozenset('()<>[],;:\\"')
_MASK = "•••"

# The common case (ASCII, unquoted) as one regex; whatever it accepts, the checks below accept too
# (a test holds the two together). Anything else goes through the checks, which give the reason.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])"
_FAST = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?!\d+\Z){_TLD}")


ASCII_EMAIL = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}$"
"""The common case for regex engines without look-ahead (RE2, as in Arrow and DuckDB). Text it
matches whose last label is not all digits (it does not match :data:`NUMERIC_TLD`), with at
most :data:`MAX_LENGTH` characters and at most :data:`MAX_LOCAL_LENGTH` before the ``@``, is
a valid email already trimmed and in lower case: :func:`normalise_email` returns it as it is."""
NUMERIC_TLD = r"\.[0-9]+$"


def _local_problem(local: str) -> str | None:
    if not local:
        return "nothing before the @"
    if len(local) > MAX_LOCAL_LENGTH:
        return f"the part before the @ is longer than {MAX_LOCAL_LENGTH} characters"
    bad = sorted({ch for ch in local if ch in _LOCAL_FORBIDDEN})
    if bad:
        return f"the part before the @ contains {' '.join(bad)}"
    if local.startswith(".") or local.endswith("."):
        return "the part before the @ starts or ends with a dot"
    if ".." in local:
        return "two dots in a row"
    return None


def _label_ok(label: str) -> bool:
    if not label or len(label) > MAX_LABEL_LENGTH:
        return False
    if label.startswith("-") or label.endswith("-"):
        return False
    return all(ch.isalnum() or ch == "-" for ch in label)


def _domain_problem(domain: str) -> str | None:
    if not domain:
        return "nothing after the @"
    if domain.startswith("["):
        return "IP-address domains are not accepted"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain {domain!r} has no dot"
    if any(not label for label in labels):
        return f"the domain {domain!r} has an empty part (a leading, trailing or double dot)"
    for label in labels:
        if not _label_ok(label):
            return (
                f"the domain {domain!r} has a bad part {label!r} (letters, digits and inner "
                f"hyphens only, at most {MAX_LABEL_LENGTH} characters)"
            )
    tld = labels[-1]
    if len(tld) < 2 or tld.isdigit():
        return f"the domain {domain!r} does not end in a top-level domain"
    return None


def normalise_email(raw: object) -> tuple[str | None, str | None]:
    """Trim and lower-case ``raw``; return ``(email, None)`` or ``(None, reason)``.

    ``None``, NaN and blank text give ``"empty"``; anything else that is not text, or text that
    fails the checks in the module docstring, gives ``"invalid: <why>"``.
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None, "empty"
    if not isinstance(raw, str):
        return None, f"invalid: not text ({type(raw).__name__})"
    email = raw.strip().lower()
    if not email:
        return None, "empty"
    problem = _problem(email)
    if problem is not None:
        return None, f"invalid: {problem}"
    return email, None


def _problem(email: str) -> str | None:
    if len(email) <= MAX_LENGTH and _FAST.fullmatch(email) and email.index("@") <= MAX_LOCAL_LENGTH:
        return None
    return _checked_problem(email)


def _checked_problem(email: str) -> str | None:
    if len(email) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    if any(ch.isspace() for ch in email):
        return "contains a space"
    if any(not ch.isprintable() for ch in email):
        return "contains a control character"
    at_count = email.count("@")
    if at_count == 0:
        return "no @"
    if at_count > 1:
        return "more than one @"
    local, domain = email.split("@")
    return _local_problem(local) or _domain_problem(domain)


def mask_email(email: str) -> str:
    """A log-safe form of an email (P5): ``"jane@example.com"`` → ``"j•••@e•••.com"``.

    Keeps the first character of the local part and of the domain, and the top-level domain.
    Works on anything (also invalid emails, which are masked the same way).
    """
    local, at, domain = email.strip().partition("@")
    masked_local = f"{local[:1]}{_MASK}"
    if not at:
        return masked_local
    head, dot, tld = domain.rpartition(".")
    if not dot:
        return f"{masked_local}@{domain[:1]}{_MASK}"
    return f"{masked_local}@{head[:1]}{_MASK}.{tld}"


SECRET_MASK = "••••"  # noqa: S105 - the mask, not a secret
MIN_SECRET_LENGTH_FOR_HINT = 12


def mask_secret(secret: str) -> str:
    """The only form in which a secret is ever shown (C5): ``"••••3f9a"``.

    Shows the last four characters of secrets of at least 12 characters; shorter ones (where four
    characters would give away too much) are masked entirely: ``"••••"``.
    """
    if len(secret) < MIN_SECRET_LENGTH_FOR_HINT:
        return SECRET_MASK
    return f"{SECRET_MASK}{secret[-4:]}"


def email_digest(email: str) -> str:
    """``sha256:<hex>`` of the trimmed, lower-cased email: what segsync keeps of a person it was
    asked to forget, to recognise them without holding their address."""
    return "sha256:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
