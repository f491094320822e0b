"""What object an expression holds: the object layer over the origin-following core.

From a use (``optimizer.step()``'s ``optimizer``) back to the calls that may have
built the object: ``analysis/origins.py`` follows the expression through names and
the bindings that reach the use, ``self.x``, keyword dicts and ``**kwargs``,
tuple elements, conditional expressions and parameters (this file's call sites,
and another file's as remote origins); this layer judges the calls it arrives at,
and follows the file's helper functions that return the object (``return opt``,
``return model, opt``).

What counts as building the object, which calls hand back the object they were
given (wrappers, preparers), and what the family records of other files is the
family's judgement: a subclass of ``ObjectResolver`` answers it in its hooks
(``construct``, ``returned``, ``passed_locally``, ``passed_from_files``,
``built_elsewhere``). Items are the family's own type.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Generic, TypeVar

from losslint.analysis.calls import CallSite
from losslint.analysis.names import last_part
from losslint.analysis.origins import Hop, Origins, origins_of
from losslint.analysis.walk import walk

if TYPE_CHECKING:
    from losslint.context import FileContext

T = TypeVar("T")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
Function = ast.FunctionDef | ast.AsyncFunctionDef


# The last tree's own-node lists: each rule and fact collector makes its own resolver
# of the same tree, and they share these (as walk.tree_index and scopes' tables).
_last_own_nodes: tuple[ast.AST | None, dict[int, list[ast.AST]]] = (None, {})


def _own_nodes_of(tree: ast.AST) -> dict[int, list[ast.AST]]:
    global _last_own_nodes
    if _last_own_nodes[0] is not tree:
        _last_own_nodes = (tree, {})
    return _last_own_nodes[1]


class ObjectResolver(Generic[T]):
    """Resolves the objects expressions of one file hold (see the module's docs)."""

    max_depth = 6

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self.origins = origins_of(ctx)
        self._own_nodes = _own_nodes_of(ctx.tree)

    # -- hooks: the family's judgement ---------------------------------------------------
    def construct(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[T] | None:
        """What ``call`` builds or hands back (``path``: the element of its result that
        is wanted), or None when it is none of the family's calls (then a helper of
        the file that returns the object is followed)."""
        return None

    def returned(self, found: list[T], function: Function, call: ast.Call) -> list[T]:
        """Items a helper ``function`` returned, as seen by its caller at ``call``."""
        return found

    def passed_locally(self, found: list[T], function: Function, site: CallSite) -> list[T]:
        """Items passed to ``function``'s parameter at one of this file's call sites."""
        return found

    def passed_from_files(self, function: Function, parameter: str, sites: list[CallSite], depth: int) -> list[T]:
        """Items other files pass to ``function``'s ``parameter`` (``sites``: those calls)."""
        return []

    def built_elsewhere(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[T]:
        """Items a function of another file returns (``call`` calls it)."""
        return []

    # -- shared indexes ------------------------------------------------------------------
    def own_nodes(self, scope: ast.AST) -> list[ast.AST]:
        """The nodes of a function, or of a module's own statements: not the bodies of
        the functions and classes it defines (a script that calls one helper from its
        top level does not run every function of the file)."""
        nodes = self._own_nodes.get(id(scope))
        if nodes is None:
            if isinstance(scope, ast.Module):
                nodes = [scope]
                append = nodes.append
                for node in nodes:  # ast.iter_child_nodes' order, without its generators
                    for name in node._fields:
                        value = getattr(node, name, None)
                        if value.__class__ is list:
                            for child in value:
                                if isinstance(child, ast.AST) and not isinstance(child, _DEFINITIONS):
                                    append(child)
                        elif isinstance(value, ast.AST) and not isinstance(value, _DEFINITIONS):
                            append(value)
            else:
                nodes = walk(scope)
            self._own_nodes[id(scope)] = nodes
        return nodes

    def functions(self) -> dict[str, list[Function]]:
        """The file's functions and methods by name."""
        return self.origins.functions()

    # -- entry point ---------------------------------------------------------------------
    def resolve(self, expr: ast.expr, depth: int = 0) -> list[T]:
        if depth > self.max_depth:
            return []
        if isinstance(expr, ast.Call):
            return self.call(expr, depth)
        return self._items(self.origins.of(expr), depth + 1)

    def call(self, call: ast.Call, depth: int, path: tuple[int, ...] = ()) -> list[T]:
        """What a call returns (``path``: the element of a returned tuple): the
        family's construction, else what a helper of this file returns, else what
        the family's facts say another file's function returns."""
        qual = self.ctx.qualname(call.func) or ""
        name = last_part(qual) or (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        found = self.construct(call, name, depth, path)
        if found is not None:
            return found
        if depth <= self.max_depth:
            for function, origins in self.origins.returns(call, path):
                items = self._items(origins, depth + 1)
                if items:
                    return self.returned(items, function, call)
        return self.built_elsewhere(call, name, depth, path)

    def _items(self, origins: Origins, depth: int) -> list[T]:
        """The family's items at ``origins``: a call's, through the hops it was handed
        along; another file's arguments asked of the family's facts, one question per
        parameter (in the place of its first call site)."""
        if depth > self.max_depth:
            return []
        slots: list[list[T] | tuple[Function, str, tuple[Hop, ...]]] = []
        remote: dict[tuple[int, str, tuple[int, ...]], list[CallSite]] = {}
        for origin in origins.found:
            if origin.remote is not None:
                if origin.path or origin.function is None:
                    continue
                group = (id(origin.function), origin.key, tuple(id(hop.site) for hop in origin.hops))
                if group not in remote:
                    remote[group] = []
                    slots.append((origin.function, origin.key, origin.hops))
                remote[group].append(origin.remote)
            elif isinstance(origin.expr, ast.Call):
                slots.append(self._through(self.call(origin.expr, depth, origin.path), origin.hops))
        found: list[T] = []
        for slot in slots:
            if isinstance(slot, list):
                found.extend(slot)
            else:
                function, key, hops = slot
                sites = remote[(id(function), key, tuple(id(hop.site) for hop in hops))]
                found.extend(self._through(self.passed_from_files(function, key, sites, depth), hops))
        return found

    def _through(self, found: list[T], hops: tuple[Hop, ...]) -> list[T]:
        """Items as the outermost caller sees them: each call site they were handed
        through, innermost first."""
        for hop in reversed(hops):
            if not found:
                break
            found = self.passed_locally(found, hop.function, hop.site)
        return found
