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


def known_sizes(n: int | None, b: int | None) -> tuple[int | None, int | None]:
    """N and B as numbers only where they make sense: a dataset of no samples or a
    batch size below one is something we failed to read, never a number."""
    return (n if n is not None and n > 0 else None), (b if b is not None and b > 0 else None)


def is_partial(n: int | None, b: int | None) -> bool:
    """N and B known, B > 1, and the last batch of a pass short (N > B: an epoch
    that is one batch of all N has no partial batch)."""
    n, b = known_sizes(n, b)
    return n is not None and b is not None and b > 1 and n > b and n % b != 0


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


@dataclass
class Flag:
    """A boolean option of a call such as ``drop_last``: where it is, and its value."""

    node: ast.expr | None  # the value expression, None when the option is absent
    value: object  # True, False, or UNKNOWN
    note: str = ""  # "args.drop_last defaults to False"
    fixable: bool = True  # False: set in several places (a **dict's branches), no one edit sets it


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
        edit = NodeEdit(ctx.span(flag.node), cst.BaseExpression, lambda _node: cst.Name("True"))
    else:
        edit = NodeEdit(ctx.span(call), cst.Call, lambda node: set_keyword(node, name, "True"))
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


# -- keyword arguments handed over as **dicts -----------------------------------

# Methods that read a dict without changing it; any other use of the dict (passed
# to a function, .pop(), .clear()) may change its keys: not followed.
_READING_METHODS = {"get", "items", "keys", "values", "copy", "__contains__"}


def dict_entries(ctx: "FileContext", node: ast.expr, depth: int = 0) -> dict[str, list[ast.expr]] | None:
    """The keys a ``**node`` can carry, each with the values it may have (several
    when branches differ): a literal, ``dict(...)``, ``{**a, **b}``, ``a | b``,
    ``x if c else y``, a local name built by these and changed only by
    ``.update(...)``, ``d[key] = v`` or ``.setdefault(key, v)``. None when it
    cannot be known (a parameter, a call's result, a dict handed to a function)."""
    if depth > 10:
        return None
    entries: dict[str, list[ast.expr]] = {}

    def merge(more: dict[str, list[ast.expr]] | None) -> bool:
        if more is None:
            return False
        for key, values in more.items():
            entries.setdefault(key, []).extend(values)
        return True

    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if key is None:
                if not merge(dict_entries(ctx, value, depth + 1)):
                    return None
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                entries.setdefault(key.value, []).append(value)
            else:
                return None
        return entries
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and "dict" not in ctx.imports.aliases:
        for arg in node.args:
            if not merge(dict_entries(ctx, arg, depth + 1)):
                return None
        for kw in node.keywords:
            if kw.arg is None:
                if not merge(dict_entries(ctx, kw.value, depth + 1)):
                    return None
            else:
                entries.setdefault(kw.arg, []).append(kw.value)
        return entries
    if isinstance(node, ast.IfExp) or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)):
        parts = (node.body, node.orelse) if isinstance(node, ast.IfExp) else (node.left, node.right)
        for part in parts:
            if not merge(dict_entries(ctx, part, depth + 1)):
                return None
        return entries
    if isinstance(node, ast.Name):
        return _name_entries(ctx, node, depth)
    return None


def _name_entries(ctx: "FileContext", name: ast.Name, depth: int) -> dict[str, list[ast.expr]] | None:
    bindings = ctx.values.bindings(name.id, name)
    if not bindings:
        return None
    entries: dict[str, list[ast.expr]] = {}
    for binding in bindings:
        if binding.value is None or binding.path or binding.parameter is not None:
            return None
        found = dict_entries(ctx, binding.value, depth + 1)
        if found is None:
            return None
        for key, values in found.items():
            entries.setdefault(key, []).extend(values)
    scope = bindings[0].scope
    for use in ast.walk(scope):
        if not (isinstance(use, ast.Name) and use.id == name.id and isinstance(use.ctx, ast.Load)):
            continue
        if ctx.enclosing_scope(use) is not scope and ctx.values.bindings(name.id, use) is not bindings:
            continue  # another function's own name
        parent = ctx.parents.get(use)
        if isinstance(parent, ast.keyword) and parent.arg is None:
            continue  # f(**d): read
        if isinstance(parent, ast.Subscript) and parent.value is use:
            if isinstance(parent.ctx, ast.Store):
                key = ctx.values.value(parent.slice)
                statement = ctx.parents.get(parent)
                if not (isinstance(key, str) and isinstance(statement, ast.Assign)):
                    return None
                entries.setdefault(key, []).append(statement.value)
            continue
        if isinstance(parent, ast.Attribute) and parent.value is use:
            call = ctx.parents.get(parent)
            if parent.attr in _READING_METHODS:
                continue
            if parent.attr in ("update", "setdefault") and isinstance(call, ast.Call) and call.func is parent:
                if parent.attr == "setdefault":
                    key = ctx.values.value(call.args[0]) if call.args else None
                    if not isinstance(key, str) or len(call.args) != 2:
                        return None
                    entries.setdefault(key, []).append(call.args[1])
                    continue
                more = {kw.arg: [kw.value] for kw in call.keywords if kw.arg is not None}
                if any(kw.arg is None for kw in call.keywords):
                    return None
                for arg in call.args:
                    found = dict_entries(ctx, arg, depth + 1)
                    if found is None:
                        return None
                    for key, values in found.items():
                        more.setdefault(key, []).extend(values)
                for key, values in more.items():
                    entries.setdefault(key, []).extend(values)
                continue
            return None
        if isinstance(parent, (ast.Compare, ast.If, ast.JoinedStr, ast.FormattedValue)):
            continue
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id in ("print", "len"):
            continue
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) and parent.func.attr == "update":
            continue  # other.update(d): read
        return None
    return entries


class CallArguments:
    """The keyword arguments a call gets: those written, and those of its
    ``**d`` where ``d`` can be read (``complete`` is False when some cannot)."""

    def __init__(self, ctx: "FileContext", call: ast.Call) -> None:
        self.ctx, self.call = ctx, call
        self.unpacked: dict[str, list[ast.expr]] = {}
        self.complete = True
        for kw in call.keywords:
            if kw.arg is not None:
                continue
            found = dict_entries(ctx, kw.value)
            if found is None:
                self.complete = False
                continue
            for key, values in found.items():
                self.unpacked.setdefault(key, []).extend(values)

    def written(self, name: str, position: int | None = None) -> ast.expr | None:
        return argument(self.call, name, position)

    def candidates(self, name: str, position: int | None = None) -> list[ast.expr]:
        """Every expression the argument may be given by (none: absent, when complete)."""
        node = argument(self.call, name, position)
        return [node] if node is not None else list(self.unpacked.get(name, []))

    def single(self, name: str, position: int | None = None) -> ast.expr | None:
        """The one expression that gives the argument; None when absent or when
        branches give it different values."""
        found = self.candidates(name, position)
        if len(found) == 1:
            return found[0]
        if found and len({ast.dump(n) for n in found}) == 1:
            return found[0]
        return None

    def flag(self, name: str, position: int | None) -> Flag:
        """``read_flag`` across ``**d``: False only when no way of passing it can be True."""
        found = self.candidates(name, position)
        if not found:
            return Flag(None, False if self.complete else UNKNOWN)
        if argument(self.call, name, position) is found[0]:
            return read_flag(self.ctx, self.call, name, position)
        values = {self.ctx.values.value(n) for n in found}
        if not values <= {False, None}:
            return Flag(None, UNKNOWN)
        # Set in the dict: the fix sets it there (a keyword beside **d would repeat it).
        return Flag(found[0], False, f" ({self.ctx.text(found[0])} in the keyword dict)", fixable=len(found) == 1)


def related_extra(ctx: "FileContext", key: str) -> list[object]:
    """A family's collected facts from the files within reach of this one (its
    imports, its importers and theirs): an unrelated script never lends a fact."""
    reach = ctx.project.related(ctx.file or None)
    return [
        facts.extra[key] for path, facts in ctx.project.modules.items() if key in facts.extra and (reach is None or path in reach)
    ]


# -- generators that never end --------------------------------------------------


def _loop_breaks(loop: ast.While) -> bool:
    """A ``break`` of this loop or a ``return`` anywhere in it (not in a nested
    function): the loop may end."""
    stack: list[tuple[ast.AST, bool]] = [(child, True) for child in ast.iter_child_nodes(loop)]
    while stack:
        node, own = stack.pop()
        if isinstance(node, ast.Return) or (isinstance(node, ast.Break) and own):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        inner = own and not isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False


def endless_generator(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A generator whose body runs into a ``while True:`` loop that yields and
    neither breaks nor returns: a stream (an RL experience source, fresh noise) with
    no end, so no last batch of an epoch. A loop behind an ``if`` may be skipped: not
    endless."""
    return any(
        isinstance(statement, ast.While)
        and isinstance(statement.test, ast.Constant)
        and bool(statement.test.value)
        and any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(statement))
        and not _loop_breaks(statement)
        for statement in function.body
    )
