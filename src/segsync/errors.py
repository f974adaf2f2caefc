"""The one exception tree of segsync, grouped by what the caller should do next.

    SegsyncError                      root: anything segsync raises on purpose
    ├── InputError                    bad usage or input; fix the input (CLI exit 2, HTTP 422)
    │   ├── NotFound                  the named thing does not exist (HTTP 404)
    │   └── Conflict                  it clashes with what exists (HTTP 409)
    ├── PermissionDenied              this user may not do this (CLI exit 2, HTTP 403)
    ├── FatalError                    the job cannot go on; do not retry (CLI exit 1)
    │   ├── AuthenticationFailed      the destination rejected the credentials (401/403)
    │   └── UnknownList               a list the request named does not exist (any more)
    ├── RetriableError                transient; retry with backoff
    │   └── RateLimited               the destination asked us to slow down (429)
    └── RecordRejected                one record was refused; skip it, keep its reason

Third-party errors (httpx, SQLAlchemy, DuckDB ...) are translated into this tree at the
boundary of the module that talks to them, so callers only ever handle these.
"""

from __future__ import annotations


class SegsyncError(Exception):
    """Root of every error segsync raises on purpose. ``str(err)`` is the user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(SegsyncError):
    """The input is wrong: a field, a file, a definition. The message names what and where."""


class NotFound(InputError):
    """The named object does not exist."""


class Conflict(InputError):
    """The request clashes with existing state (duplicate name, object still in use)."""


class PermissionDenied(SegsyncError):
    """The acting user may not do this."""


class FatalError(SegsyncError):
    """The job cannot continue and retrying will not help."""


class AuthenticationFailed(FatalError):
    """The destination rejected the credentials (HTTP 401 or 403)."""


class UnknownList(FatalError):
    """The destination has no list ``list_id`` (deleted by hand, say): a request naming it was
    refused as a whole and nothing of it was stored. A run re-creates the list and sends again
    (docs/exports.md); anywhere else it stops the job."""

    def __init__(self, list_id: str, message: str | None = None) -> None:
        super().__init__(message or f"the destination has no list {list_id} (deleted?)")
        self.list_id = list_id


class RetriableError(SegsyncError):
    """A transient failure: try again later, with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(RetriableError):
    """The destination answered 429 Too Many Requests."""


class RecordRejected(SegsyncError):
    """One record was refused by the destination; the rest of its batch goes on."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key
