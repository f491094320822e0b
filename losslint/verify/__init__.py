"""losslint verify: prove each fix with a short smoke training before and after.

Modules, in the order a verification uses them:

- ``programs``: lint a script and its local modules; build the variants (the
  original, each fix alone, all fixes) as copies in a sandbox directory;
- ``verifier``: which trainings each fix needs, and the verdict per fix;
- ``harness`` (parent side) and ``worker`` / ``runtime`` (inside the training
  process): run the trainings under instrumentation, record per step the loss,
  gradient norm, update norm, batch size and epoch;
- ``decision``: the spike score S, its threshold T, the outlier judgement;
- ``scenarios``: the built-in scenario programs (``fixtures/scenarios``);
- ``report``: table, JSON and plot; ``command``: the click command.

Nothing here imports torch, keras or matplotlib at module level; see
docs/verify.md for the method.
"""
