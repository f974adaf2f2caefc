"""SQL text for the profile engines (profiles/sql.py), read back by DuckDB: what goes in comes
out, quotes and all."""

from __future__ import annotations

import duckdb

from segsync.profiles.sql import quote_identifier, quote_literal


def test_a_quoted_identifier_and_literal_come_back_as_written() -> None:
    name, text = 'odd "column"', "it's a 'test' \\ with\nlines"
    sql = f"SELECT {quote_literal(text)} AS {quote_identifier(name)}"
    cursor = duckdb.connect().execute(sql)
    assert cursor.description is not None
    assert cursor.description[0][0] == name
    assert cursor.fetchall() == [(text,)]
