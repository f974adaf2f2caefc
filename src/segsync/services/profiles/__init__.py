"""Profile data: import, relate, register, sample, schema (``manage``); files re-read by the
system refresh (``data_sources``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.profiles.manage import (
    NO_PROFILE_TABLE,
    catalog,
    describe,
    import_profiles,
    load_sample,
    parse_column_ref,
    register_table,
    relate,
    schema,
)

__all__ = [
    "NO_PROFILE_TABLE",
    "catalog",
    "describe",
    "import_profiles",
    "load_sample",
    "parse_column_ref",
    "register_table",
    "relate",
    "schema",
]
