"""Alembic environment. segsync runs migrations programmatically (``Database.migrate``), which
passes its connection in ``config.attributes["connection"]``; the ``alembic`` command line works
too with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from segsync.storage.models import load_all

target_metadata = load_all().metadata
config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///path/segsync.db ...")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
