"""The chaos soak's parts (``scripts/soak.py``; docs/exports.md, "Chaos soak").

- :mod:`soaklib.data`: the profiles, their changes, the segments and the expectation (plain
  Python over the CSV rows, never segsync's engine);
- :mod:`soaklib.sim`: the Autopilot simulator served from the soak's process, counting requests
  in flight, with dropped connections;
- :mod:`soaklib.cli`: segsync's CLI on the soak's data dir, and the ``runs`` table;
- :mod:`soaklib.kills`: runs and workers killed at random moments;
- :mod:`soaklib.chaos`: one phase's loop and its faults;
- :mod:`soaklib.check`, :mod:`soaklib.report`, :mod:`soaklib.baseline`: the comparison, the
  figures, and the crash-free replay behind "extra requests per crash".
"""
