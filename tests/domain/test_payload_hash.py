"""The payload hash is what the sync state remembers of every contact: its bytes must never
change (a change would resend every contact of every export). Its fast path (orjson) must write
exactly what the standard library's canonical JSON writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.domain.payload import canonical_json, payload_hash
from tests.conftest import examples


def reference(fields: dict[str, Any], custom: dict[str, Any]) -> bytes:
    """The canonical form as it has always been written."""
    text = json.dumps(
        {"custom": custom, "fields": fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates
values = st.one_of(
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits too
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
payloads = st.dictionaries(texts, values, max_size=6)


@given(fields=payloads, custom=payloads)
@settings(max_examples=examples(500), deadline=None)
def test_the_fast_path_writes_the_same_bytes_as_the_standard_library(
    fields: dict[str, Any], custom: dict[str, Any]
) -> None:
    assert canonical_json(fields, custom) == reference(fields, custom)


def test_known_payloads_keep_their_hashes() -> None:
    fields: dict[str, Any] = {
        "FirstName": "Zoë",
        "LastName": 'O"Brien\n',
        "Subscribed": True,
        "Score": None,
    }
    custom = {"integer--Review--Rating": 5, "string--Ciudad": "Lisboa – São"}
    assert payload_hash(fields, custom) == (
        "c13cb9c3477264882b01538135342fb47bb36e0a29bf55d30d5d6d725aa03203"
    )
    fields["Value"] = 1e16  # a float: written 1e+16, as the standard library writes it
    assert payload_hash(fields, custom) == (
        "0e1997b6180726a879af3bfb588282b9e0be3ff91a6d173708b42a833edfcac9"
    )


def test_key_order_does_not_matter() -> None:
    one = payload_hash({"b": 1, "a": "x"}, {"z": True, "y": None})
    assert one == payload_hash({"a": "x", "b": 1}, {"y": None, "z": True})
