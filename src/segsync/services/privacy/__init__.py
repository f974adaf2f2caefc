"""What protects people and their data: API keys encrypted at rest (``secrets``), the right to
be forgotten (``erasure``), and the audit trail of what left the system (``audit``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""
