"""Use cases: the only layer ``web/`` and ``cli/`` call. One package per family:

==================  =====================================================================
``connections/``    connections to destinations: add, edit, test, remove; keys checked
``exports/``        exports: create, edit, duplicate, detach, remove; their settings checked
``segments/``       segments: create, update, refresh; counts, previews, member downloads
``profiles/``       profile data: import, relate, register, sample; files the refresh re-reads
``runs/``           runs as jobs: queue, workers, scheduler, history, cancel, rejects
``sync/``           the run engine: one attempt of a run, from reading members to its end
``notifications/``  failure notices, in the app and by email or webhook
``users/``          users, roles, passwords, API tokens; who is acting
``privacy/``        secrets at rest, erasure, the audit trail
``system/``         status of the installation, the demo
==================  =====================================================================

``context.py`` is the composition root every use case takes first (settings, metadata DB,
clock, acting user, profile engine). docs/design.md tells where everything lives.
"""
