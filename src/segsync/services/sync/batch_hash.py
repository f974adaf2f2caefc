"""Payload hashes of member rows computed by the profile engine (DuckDB) as it reads them,
instead of one Python contact at a time (the read stage's fast path; :mod:`.read` decides when
to use it), and emails checked by the same query.

Every run hashes every member's payload to tell unchanged contacts from changed ones. When each
mapped attribute's column already holds what its target sends as it is — text for a text
field, a whole number (at most 64 bits) for an integer field, a boolean for a boolean field —
the payload is nothing but those values under their keys, empty ones left out, and its
canonical JSON (:func:`segsync.domain.payload.canonical_json`: ``{"custom": …, "fields": …}``,
sorted keys, no spaces, non-ASCII as it is) can be written by SQL: each non-empty value is
``to_json`` of the column after its key, joined with commas, keys in the order Python sorts
them; DuckDB takes its SHA-256 in the query that reads the members.

Such a hash is only ever compared with hashes Python made. If the two forms ever wrote a
payload differently, the contact would look changed and take the Python path (built, hashed
and planned as before), never the other way: SQL writes a payload's text only as Python does
(held together by tests/services/sync/test_batch_hash.py for every kind of value), so a hash
equal to a stored one means the same payload. DuckDB's ``to_json`` writes nine control
characters' escapes in capitals (``\\u001B`` where orjson, like the standard library, writes
``\\u001b``): a row with text holding one gets no hash from SQL, and Python hashes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from segsync.domain.emails import ASCII_EMAIL, MAX_LENGTH, MAX_LOCAL_LENGTH, NUMERIC_TLD
from segsync.domain.mapping import FieldMapping, build_contact, contact_hash
from segsync.profiles.sql import quote_identifier, quote_literal
from segsync.segments.rows import RowBatch

if TYPE_CHECKING:
    import ibis

DIGEST_COLUMN = "__segsync_payload_sha256"
EMAIL_AS_IS_COLUMN = "__segsync_email_as_is"
_CAPITAL_ESCAPES = r"[\x0b\x0e\x0f\x1a-\x1f]"
_LENGTHS = (rf"^.{{1,{MAX_LENGTH}}}$", rf"^[^@]{{1,{MAX_LOCAL_LENGTH}}}@")
"""At most :data:`MAX_LENGTH` characters, at most :data:`MAX_LOCAL_LENGTH` before the ``@``."""


def _members(parts: list[str]) -> str:
    return f"concat_ws(',', {', '.join(parts)})" if parts else "''"


def _fits(kind: str, type_name: str) -> bool:
    """Whether values of a column of this type (Ibis's name: ``string``, ``int64``…) go out
    unchanged to a ``kind`` target, as ``build_contact`` sends ``str``, ``int`` and ``bool``."""
    if kind == "string":
        return type_name == "string"
    if kind == "integer":  # 64-bit unsigned values beyond the signed range are left to Python
        return type_name in {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"}
    return kind == "boolean" and type_name == "boolean"


def column_types(schema: ibis.Schema) -> dict[str, str]:
    """Each column's Ibis type name without nullability (``string``, ``int64``…), as
    :func:`digest_sql` takes them."""
    return {name: str(dtype.copy(nullable=True)) for name, dtype in schema.items()}


def digest_sql(mapping: FieldMapping, column_types: Mapping[str, str]) -> str | None:
    """The DuckDB expression of each member row's payload hash for ``mapping`` over the
    attribute columns (``column_types``: attribute → Ibis type name, without nullability),
    NULL for a row Python must hash; ``None`` when some mapped column's values do not go out as
    they are (then Python hashes every row)."""
    columns = mapping.payload_columns()
    if not all(_fits(kind, column_types.get(name, "")) for name, _, _, kind in columns):
        return None
    sections: dict[bool, list[str]] = {True: [], False: []}
    for attribute, key, custom, _ in sorted(columns, key=lambda c: c[1]):
        label = quote_literal(orjson.dumps(key).decode() + ":")  # "Key": as JSON writes it
        sections[custom].append(f"{label} || to_json({quote_identifier(attribute)})")
    text = (
        f"""concat('{{"custom":{{', {_members(sections[True])}, """
        f"""'}},"fields":{{', {_members(sections[False])}, '}}}}')"""
    )
    texts = dict.fromkeys(name for name, _, _, kind in columns if kind == "string")
    rare = " OR ".join(
        f"regexp_matches({quote_identifier(c)}, '{_CAPITAL_ESCAPES}')" for c in texts
    )
    return f"CASE WHEN {rare} THEN NULL ELSE sha256({text}) END" if rare else f"sha256({text})"


def digests_of(batch: RowBatch, mapping: FieldMapping) -> list[str]:
    """The payload hashes of a batch read with :func:`digest_sql` as :data:`DIGEST_COLUMN`,
    Python's for the rows SQL left NULL."""
    return [
        digest if digest is not None else _python_digest(batch, i, mapping)
        for i, digest in enumerate(batch.column(DIGEST_COLUMN))
    ]


def _python_digest(batch: RowBatch, i: int, mapping: FieldMapping) -> str:
    return contact_hash(mapping, build_contact(mapping, batch.row(i)))


def email_as_is_sql(column: str) -> str:
    """The DuckDB expression telling, for each raw email in the text column ``column``,
    whether it is valid and already normalised (trimmed, lower case), so that
    :func:`~segsync.domain.emails.normalise_email` would return it as it is: the common ASCII
    form (:data:`~segsync.domain.emails.ASCII_EMAIL`, for RE2, which DuckDB's regular
    expressions are), at most so long, and a last label not all digits. False or NULL (no
    email) says only "ask Python", which gives the email or the reason."""
    return email_valid_sql(quote_identifier(column))


def email_valid_sql(text: str) -> str:
    """The test of :func:`email_as_is_sql` on the DuckDB expression ``text``: true when it is
    an email :func:`~segsync.domain.emails.normalise_email` takes as it is."""
    tests = [f"regexp_matches({text}, {quote_literal(p)})" for p in (ASCII_EMAIL, *_LENGTHS)]
    tests.append(f"NOT regexp_matches({text}, {quote_literal(NUMERIC_TLD)})")
    return " AND ".join(tests)
