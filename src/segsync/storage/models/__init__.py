"""The models, one module per concept (profiles, segments, ...).

A new concept adds a module here and a migration under ``segsync/storage/migrations/versions``;
:func:`load_all` imports every module so ``Base.metadata`` knows every table (Alembic
autogenerate and the tests use it).
"""

from __future__ import annotations

import importlib
import pkgutil

from segsync.storage.base import Base


def load_all() -> type[Base]:
    """Import every model module of this package and return the declarative base."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return Base
