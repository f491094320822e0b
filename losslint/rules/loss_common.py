"""What the LL1xx (loss normalization) rules share beyond the analysis layer: the
pipeline that feeds a loss. How a loss scales with the batch, and where it goes,
is program analysis (``losslint/analysis/scaling.py``); its scopes and bindings
are the one model of ``losslint/analysis/scopes.py``.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from losslint.analysis.scaling import enclosing_loops, loop_iterable

if TYPE_CHECKING:
    from losslint.context import FileContext


# -- the pipeline that feeds a loss (analysis/batching.py: both families read the
# same N, B and drop flags) -----------------------------------------------------

from losslint.analysis.batching import Batching, batching_ids, batching_of, training_pipelines  # noqa: E402


def training_batching(ctx: "FileContext", at: ast.AST) -> Batching | None:
    """The pipeline that feeds the loss computed at ``at``: the loader the enclosing
    loop iterates when it is built in this file, else the only training pipeline
    of the file. None when there is none to see."""
    for loop in enclosing_loops(ctx, at):
        iterable = loop_iterable(ctx, loop)
        if isinstance(iterable, ast.Name):
            value = ctx.values.resolve_name(iterable)
            if isinstance(value, ast.Call) and id(value) in batching_ids(ctx):
                return batching_of(ctx, value)
    candidates = training_pipelines(ctx)
    if len(candidates) == 1:
        return batching_of(ctx, candidates[0])
    return None
