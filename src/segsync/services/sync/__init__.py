"""The run engine: one attempt of a run, from reading the members to ending the run
(``engine``), with its parts: what the run targets (``target``), reading members
(``members``, ``inputs``), the checkpoint (``checkpoint``), removals (``removals``) and the
run's report (``report``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""
