"""Text that came from outside (a form, a file, another server) on its way back out.

Three rules, one place each (docs/security.md, "Bad input"):

* :func:`clip` — a value echoed in a message is cut to :data:`MAX_ECHO` characters;
* :func:`api_key_problem` — what is wrong with an API key as typed, without ever naming the key;
* :func:`spreadsheet_safe` — a CSV cell that a spreadsheet would run as a formula gets a leading
  ``'`` (OWASP's "CSV injection" advice); every CSV download goes through it.
"""

from __future__ import annotations

MAX_ECHO = 200
"""The most characters of an outside value any message repeats."""

MAX_API_KEY_LENGTH = 512

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula."""


def clip(value: object, limit: int = MAX_ECHO) -> str:
    """``value`` as text of at most ``limit`` characters (an ellipsis marks a cut)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_key_problem(key: str) -> str | None:
    """Why ``key`` (already trimmed) cannot be an API key, or None. The message names the
    problem and where it is, never a character of the key itself."""
    if not key:
        return "the API key is empty"
    if len(key) > MAX_API_KEY_LENGTH:
        return f"the API key has {len(key)} characters; at most {MAX_API_KEY_LENGTH}"
    for position, char in enumerate(key, start=1):
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            return (
                f"the API key contains a control character (a line break, tab or NUL) at "
                f"position {position}; paste the key again on one line"
            )
        if char == " ":
            return f"the API key contains a space at position {position}; keys have none"
        if code > 0x7E:
            return (
                f"the API key contains a non-ASCII character at position {position}; keys are "
                "printable ASCII (letters, digits and punctuation)"
            )
    return None


def spreadsheet_safe(value: str) -> str:
    """``value`` with a ``'`` in front when it starts with a formula prefix, so a spreadsheet
    shows it as text. Other values are returned as they are."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value
