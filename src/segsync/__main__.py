"""``python -m segsync``: the same as the ``segsync`` command."""

from __future__ import annotations

from segsync.cli import main

if __name__ == "__main__":
    main()
