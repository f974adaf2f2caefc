"""The profile engine: Ibis over DuckDB by default (or Postgres, ...), file import, sample data.

Entry point: :class:`segsync.profiles.engine.ProfileEngine`.
"""
