"""SQL text for the profile engines: only quoted identifiers are ever put into SQL text (the
S608 waivers where it is built); values travel as parameters or escaped literals."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (DuckDB, PostgreSQL): in double quotes, each double
    quote inside doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a SQL string literal (DuckDB, PostgreSQL): in single quotes, each single
    quote inside doubled."""
    return "'" + text.replace("'", "''") + "'"
