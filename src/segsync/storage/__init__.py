"""The metadata store: SQLAlchemy models, repositories and Alembic migrations.

The only layer that writes SQL to the metadata DB. Open it with
:meth:`segsync.storage.db.Database.open`; migrations apply on open.
"""
