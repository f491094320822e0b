"""What the LL2xx (partial last batch) rules share: the numbers in their messages,
reading a ``drop_last``-style flag, and the fix that sets it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from losslint.analysis.names import argument, has_star_kwargs
from losslint.findings import Applicability, Fix, NodeEdit
from losslint.fixes import set_keyword
from losslint.project import UNKNOWN

if TYPE_CHECKING:
    from losslint.context import FileContext


def last_batch(n: int, b: int) -> int:
    return n % b


def describe_last_batch(n: int, b: int) -> str:
    """"N=1000, B=64: the last batch of every epoch has 40 samples (0.62x a full
    batch); with a mean-reduced loss each of its samples weighs 1.6x" """
    r = n % b
    weight = b / r
    return (
        f"N={n}, B={b}: the last batch of every epoch has {r} sample{'s' if r != 1 else ''} "
        f"({r / b:.2f}x a full batch); with a mean-reduced loss each of its samples weighs {weight:.1f}x, "
        f"and a loss normalized per batch spikes"
    )


@dataclass
class Flag:
    """A boolean option of a call such as ``drop_last``: where it is, and its value."""

    node: ast.expr | None  # the value expression, None when the option is absent
    value: object  # True, False, or UNKNOWN
    note: str = ""  # "args.drop_last defaults to False"


def read_flag(ctx: "FileContext", call: ast.Call, name: str, position: int | None) -> Flag:
    node = argument(call, name, position)
    if node is None:
        # **kwargs may carry it: we cannot know.
        return Flag(None, UNKNOWN if has_star_kwargs(call) else False)
    value = ctx.values.value(node)
    if value is None:
        value = False
    if value not in (True, False):
        return Flag(node, UNKNOWN)
    note = ""
    if value is False and not isinstance(node, ast.Constant):
        note = f" ({ctx.text(node)} defaults to False)"
    return Flag(node, value, note)


def set_flag_fix(ctx: "FileContext", call: ast.Call, flag: Flag, name: str, description: str) -> Fix:
    """Set ``name=True`` on the call: replace the value where the option is given
    (``drop_last=False``, ``drop_last=args.drop_last``), else add the keyword."""
    if flag.node is not None:
        edit = NodeEdit(ctx.span(flag.node), cst.BaseExpression, lambda _node: cst.Name("True"))
    else:
        edit = NodeEdit(ctx.span(call), cst.Call, lambda node: set_keyword(node, name, "True"))
    return Fix(description, Applicability.SAFE, (edit,))
