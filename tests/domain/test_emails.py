"""Email normalisation (X2) and masking (P5, C5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.domain import emails
from segsync.domain.emails import mask_email, mask_secret, normalise_email
from tests.conftest import examples


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM \n", "jane.doe@example.com"),
        ("\u00a0a+tag@sub.example.co.uk\t", "a+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
        ("JOSÉ@bücher.de", "josé@bücher.de"),
        ("a_b-c!#$%&*/=?^`{|}~@e-x.io", "a_b-c!#$%&*/=?^`{|}~@e-x.io"),
        ("1@2.com", "1@2.com"),
    ],
)
def test_valid_emails_are_trimmed_and_lower_cased(raw: str, email: str) -> None:
    assert normalise_email(raw) == (email, None)


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", float("nan")])
def test_empty_values(raw: object) -> None:
    assert normalise_email(raw) == (None, "empty")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("jane.example.com", "invalid: no @"),
        ("jane@@example.com", "invalid: more than one @"),
        ("a@b@example.com", "invalid: more than one @"),
        ("jane doe@example.com", "invalid: contains a space"),
        ("jane@exa mple.com", "invalid: contains a space"),
        ("jane\u200b@example.com", "invalid: contains a control character"),
        ("@example.com", "invalid: nothing before the @"),
        ("jane@", "invalid: nothing after the @"),
        ("jane@localhost", "invalid: the domain 'localhost' has no dot"),
        ("jane@example..com", "invalid: the domain 'example..com' has an empty part"),
        ("jane@example.com.", "invalid: the domain 'example.com.' has an empty part"),
        ("jane@-example.com", "invalid: the domain '-example.com' has a bad part '-example'"),
        ("jane@exa_mple.com", "invalid: the domain 'exa_mple.com' has a bad part 'exa_mple'"),
        ("jane@example.c", "invalid: the domain 'example.c' does not end in a top-level domain"),
        ("jane@10.0.0.1", "invalid: the domain '10.0.0.1' does not end in a top-level domain"),
        ("jane@[10.0.0.1]", "invalid: IP-address domains are not accepted"),
        (".jane@example.com", "invalid: the part before the @ starts or ends with a dot"),
        ("jane.@example.com", "invalid: the part before the @ starts or ends with a dot"),
        ("ja..ne@example.com", "invalid: two dots in a row"),
        ('"jane"@example.com', 'invalid: the part before the @ contains "'),
        ("ja(ne)@example.com", "invalid: the part before the @ contains ( )"),
        ("jane,x@example.com", "invalid: the part before the @ contains ,"),
        ("j" * 65 + "@example.com", "invalid: the part before the @ is longer than 64 characters"),
        ("j@" + "e" * 250 + ".com", "invalid: longer than 254 characters"),
        ("j@" + "e" * 64 + ".com", "invalid: the domain '" + "e" * 64 + ".com' has a bad part"),
        (42, "invalid: not text (int)"),
        (b"jane@example.com", "invalid: not text (bytes)"),
    ],
)
def test_invalid_emails_say_why(raw: object, reason: str) -> None:
    email, why = normalise_email(raw)
    assert email is None
    assert why is not None
    assert why.startswith(reason), why


def test_limits_are_inclusive() -> None:
    local = "j" * 64
    assert normalise_email(f"{local}@example.com") == (f"{local}@example.com", None)
    label = "e" * 63
    assert normalise_email(f"j@{label}.com")[0] == f"j@{label}.com"
    long_ok = "j@" + ".".join(["e" * 62] * 4)[: 254 - 2 - 3] + ".io"
    assert len(long_ok) <= 254
    assert normalise_email(long_ok)[1] is None


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane@example.com", "j•••@e•••.com"),
        ("j@e.io", "j•••@e•••.io"),
        ("john.smith@mail.example.co.uk", "j•••@m•••.uk"),
        ("jane@localhost", "j•••@l•••"),
        ("not-an-email", "n•••"),
        ("", "•••"),
        ("@example.com", "•••@e•••.com"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_masked_email_never_contains_the_local_part_or_domain_name() -> None:
    masked = mask_email("secretperson@hiddencompany.com")
    assert "secretperson" not in masked
    assert "hiddencompany" not in masked


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("0123456789abcdef0123456789ab3f9a", "••••3f9a"),
        ("abcdefgh3f9a", "••••3f9a"),
        ("abcdefg3f9a", "••••"),
        ("shortkey", "••••"),
        ("", "••••"),
    ],
)
def test_mask_secret_shows_at_most_the_last_four_characters(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked


@given(
    st.from_regex(
        r"[a-z0-9.!#$%&'*+/=?^_`{|}~(),;:\"\[\]-]{0,70}@[a-z0-9._\-\[\]]{0,70}", fullmatch=True
    )
    | st.text(max_size=80)
)
@settings(max_examples=examples(2000), deadline=None)
def test_the_fast_path_accepts_only_what_the_full_checks_accept(email: str) -> None:
    if emails._FAST.fullmatch(email) and len(email) <= 254 and email.index("@") <= 64:
        assert emails._checked_problem(email) is None, email


def test_the_fast_path_and_full_checks_agree_on_common_addresses() -> None:
    for email in ["jane@example.com", "a.b+c@mail.example.co.uk", "x_y-z@e-x.io", "1@2.com"]:
        assert emails._FAST.fullmatch(email)
        assert emails._checked_problem(email) is None
    for email in ["jane@example.123", "jane@localhost", "a..b@example.com", "-@-x.com"]:
        assert emails._checked_problem(email) is not None
