"""What the LL2xx (partial last batch) rules share: the numbers in their messages
and the fix that sets a ``drop_last``-style flag. What a pipeline is (its N, B and
flags) is analysis: ``losslint.analysis.batching``."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from losslint.findings import Applicability, Fix, NodeEdit, cst, set_keyword

if TYPE_CHECKING:
    from losslint.analysis.batching import Flag
    from losslint.context import FileContext


def describe_last_batch(n: int, b: int) -> str:
    """"N=1000, B=64: the last batch of every epoch has 40 samples (0.62x a full
    batch); with a mean-reduced loss each of its samples weighs 1.6x" """
    r = n % b if n > 0 and b > 0 else 0
    if r == 0:
        return f"N={n}, B={b}"
    weight = b / r
    return (
        f"N={n}, B={b}: the last batch of every epoch has {r} sample{'s' if r != 1 else ''} "
        f"({r / b:.2f}x a full batch); with a mean-reduced loss each of its samples weighs {weight:.1f}x, "
        f"and a loss normalized per batch spikes"
    )


# What dropping the remainder costs when nothing shuffles: said in the message and the fix.
UNSHUFFLED_NOTE = "nothing shuffles this data, so dropping the remainder leaves the same last samples out of every epoch"
UNKNOWN_SHUFFLE_NOTE = (
    "whether this data is shuffled is not known statically; without a shuffle, dropping the remainder leaves the same "
    "last samples out of every epoch"
)


def set_flag_fix(ctx: "FileContext", call: ast.Call, flag: Flag, name: str, description: str) -> Fix | None:
    """Set ``name=True`` on the call: replace the value where the option is given
    (``drop_last=False``, ``drop_last=args.drop_last``, ``{"drop_last": False}``),
    else add the keyword. None when no one edit sets it."""
    if not flag.fixable:
        return None
    if flag.node is not None:
        edit = NodeEdit(ctx.span(flag.node), "BaseExpression", lambda _node: cst.Name("True"))
    else:
        edit = NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, name, "True"))
    return Fix(description, Applicability.SAFE, (edit,))


def unless_shuffled(fix: Fix | None, shuffled: bool | None) -> Fix | None:
    """Dropping the remainder is safe only when the data is shuffled: without a
    shuffle it leaves the same samples out of every epoch, so the fix is unsafe
    (and its description says why)."""
    if fix is None or shuffled:
        return fix
    note = UNSHUFFLED_NOTE if shuffled is False else UNKNOWN_SHUFFLE_NOTE
    return Fix(f"{fix.description} ({note})", Applicability.UNSAFE, fix.edits, fix.imports)


def unshuffled_note(shuffled: bool | None) -> str:
    """The message's word on the fix when it is unsafe."""
    if shuffled:
        return ""
    return f"; {UNSHUFFLED_NOTE if shuffled is False else UNKNOWN_SHUFFLE_NOTE} (the fix is unsafe)"
