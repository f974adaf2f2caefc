"""People: "explain a person" — from one email, the profiles, segments, lists and runs that
concern them (``explain``; the answer's records in ``report``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.people.explain import explain_person, export_choices
from segsync.services.people.report import PersonReport

__all__ = ["PersonReport", "explain_person", "export_choices"]
