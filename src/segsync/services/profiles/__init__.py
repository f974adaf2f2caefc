"""Profile data: import, register, sample (``manage``); relationships between tables
(``relationships``); the schema and the catalog (``tables``); files re-read by the system
refresh (``data_sources``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.profiles.manage import import_profiles, load_sample, register_table
from segsync.services.profiles.relationships import describe, parse_column_ref, relate
from segsync.services.profiles.tables import (
    NO_PROFILE_TABLE,
    catalog,
    profile_attributes,
    schema,
)

__all__ = [
    "NO_PROFILE_TABLE",
    "catalog",
    "describe",
    "import_profiles",
    "load_sample",
    "parse_column_ref",
    "profile_attributes",
    "register_table",
    "relate",
    "schema",
]
