"""A connection's base URL never carries credentials (it shows in run messages and logs)."""

from __future__ import annotations

import pytest

from segsync.errors import InputError
from segsync.services.connections.validation import valid_base_url
from segsync.settings import Settings


def test_a_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(InputError) as caught:
        valid_base_url("https://bob:hunter2-secret@proxy.example.com/v1", Settings())
    assert "hunter2-secret" not in caught.value.message
    with pytest.raises(InputError):
        valid_base_url("https://bob@proxy.example.com/v1", Settings())


def test_a_plain_base_url_is_kept_without_its_trailing_slash() -> None:
    assert (
        valid_base_url(" https://api2.autopilothq.com/v1/ ", Settings())
        == "https://api2.autopilothq.com/v1"
    )
