"""Where a value can come from: the one origin-following core.

Three layers stand on it: the value resolver (``values.py``: what literal an
expression has), the object resolver (``objects.py``: what object it holds,
with the families' hooks) and the dataset sizes (``sizes.py``: how many samples). Given an expression, ``origins_of(ctx).of(expr)`` says
which expressions it may hold, following the shapes training code hands values
and objects on in:

- a name: the bindings that reach the use (``analysis/scopes.py``: the last one
  before it in straight-line code, every branch's where a branch decides), an
  element of a tuple unpacking (``model, opt = setup()``), a walrus;
- ``self.x``: every assignment to it in the class's methods (also by tuple
  assignment, ``self.a, self.b = ...``) and a class-level default
  (``batch_size: int = 32``);
- ``d["k"]``: the entry of a dict literal, ``dict(k=...)``, ``{**a, **b}``,
  ``a | b``, a dict changed by ``.update(...)``, ``d[k] = v`` or
  ``.setdefault(k, v)`` (``dict_entries``), of a dict handed in as a parameter,
  and of ``**kwargs`` (the keywords the function's calls pass into it);
- ``pair[1]`` and tuple unpacking: the element of a tuple literal, or of a call's
  returned tuple (the call is an origin with a ``path``);
- ``a if c else b``: both;
- a function parameter: what every call of the function passes for it
  (``analysis/calls.py``: this file's calls, the argument expression, with a
  ``Hop`` saying which call; another file's calls, as a ``remote`` origin that
  names the call site), or its default where a call leaves it out or no call is seen;
- ``returns(call, path)``: what the file's helper functions named by a call return.

Calls are origins, not followed: what a call builds is the layer's judgement
(a literal evaluates ``int(...)``/``len(...)``, an object family recognises its
constructors) and a layer asks ``returns`` for a helper's. Anything else
(constants, arithmetic, an attribute of something else, a name bound by an
import) is an origin as it stands. ``complete`` is False when some way the value
may come in cannot be followed (a ``with`` target, a loop variable, a
``*args``/``**kwargs`` call, a bare ``return``): a literal is unknown then; an
object resolver keeps what it found.

Results are memoized per file (``ctx.memo``), except those cut short by the depth
limit or a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from losslint.analysis.calls import CallSite, call_sites
from losslint.analysis.names import last_part
from losslint.analysis.scopes import Binding, scopes_of
from losslint.analysis.walk import statements

if TYPE_CHECKING:
    from losslint.context import FileContext

Function = ast.FunctionDef | ast.AsyncFunctionDef

_MAX_HOPS = 24  # names, attributes, entries and parameters followed from one expression


@dataclass(frozen=True, slots=True, eq=False)
class Hop:
    """An argument handed to ``function``'s parameter at one of this file's call
    sites (``site``): the object layer maps the caller's names to the callee's."""

    function: Function
    site: CallSite


@dataclass(frozen=True, slots=True, eq=False)
class Origin:
    """One expression a value may come from. ``path``: the element of its result
    that is wanted (a call returning a tuple). ``hops``: the call sites it was
    handed through, outermost first. ``remote``: another file's call site that
    passes ``key`` to ``function`` (``expr`` is None then)."""

    expr: ast.expr | None
    path: tuple[int, ...] = ()
    hops: tuple[Hop, ...] = ()
    remote: CallSite | None = None
    function: Function | None = None
    key: str = ""

    def behind(self, hop: Hop) -> "Origin":
        return Origin(self.expr, self.path, (hop, *self.hops), self.remote, self.function, self.key)


class Origins:
    """What an expression may hold: ``found`` origins, each once (an origin reached
    along several call chains is kept with the first: a helper called from many
    places does not multiply), and whether that is all of them (``complete``).
    ``cut``: the depth limit or a cycle stopped the search (not memoized)."""

    __slots__ = ("found", "complete", "cut", "_seen")

    def __init__(self, found: list[Origin] | None = None, complete: bool = True, cut: bool = False) -> None:
        self.found: list[Origin] = []
        self.complete, self.cut = complete, cut
        self._seen: set[tuple[int, tuple[int, ...], int, str]] = set()
        for origin in found or ():
            self.append(origin)

    def append(self, origin: Origin) -> None:
        key = (id(origin.expr), origin.path, id(origin.remote), origin.key)
        if key not in self._seen:
            self._seen.add(key)
            self.found.append(origin)

    def add(self, other: Origins, hop: Hop | None = None) -> None:
        for origin in other.found:
            self.append(origin if hop is None else origin.behind(hop))
        self.complete = self.complete and other.complete
        self.cut = self.cut or other.cut


class OriginFinder:
    """The origins of one file's expressions (see the module's docs); one per file,
    shared by the value and the object resolvers (``origins_of``)."""

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self.scopes = scopes_of(ctx)
        # (id of the node, path) -> (the node, kept alive so that its id is not reused
        # by a node a rule builds on the fly, its origins)
        self._memo: dict[tuple[int, tuple[int, ...]], tuple[ast.AST, Origins]] = {}
        self._active: set[tuple[int, tuple[int, ...]]] = set()
        self._functions: dict[str, list[Function]] | None = None
        self._class_assignments: dict[int, dict[str, list[tuple[ast.expr, tuple[int, ...]]]]] = {}
        self._names_in: dict[int, frozenset[int]] = {}

    # -- public API --------------------------------------------------------------------
    def of(self, expr: ast.expr, path: tuple[int, ...] = ()) -> Origins:
        """The origins of ``expr`` (of the element ``path`` of its value)."""
        return self._follow(expr, path, 0)

    def returns(self, call: ast.Call, path: tuple[int, ...] = ()) -> list[tuple[Function, Origins]]:
        """What this file's functions named by ``call`` (``f(...)``, ``self.f(...)``)
        return (``path``: the element of a returned tuple), one entry per function of
        that name; empty when the call names none."""
        func = call.func
        if isinstance(func, ast.Name):  # a function, never a method
            name, method = last_part(self.ctx.qualname(func) or "") or func.id, False
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            name, method = func.attr, True
        else:
            return []
        parents = self.ctx.parents
        return [
            (function, self._returned(function, path, 0))
            for function in self.functions().get(name, [])
            if isinstance(parents.get(function), ast.ClassDef) is method
        ]

    def functions(self) -> dict[str, list[Function]]:
        """The file's functions and methods by name."""
        if self._functions is None:
            self._functions = {}
            for node in self.ctx.nodes_of(ast.FunctionDef, ast.AsyncFunctionDef):
                self._functions.setdefault(node.name, []).append(node)  # type: ignore[arg-type]
        return self._functions

    # -- the walk ----------------------------------------------------------------------
    def _follow(self, expr: ast.expr, path: tuple[int, ...], depth: int) -> Origins:
        if depth > _MAX_HOPS:
            return Origins([], complete=False, cut=True)
        key = (id(expr), path)
        known = self._memo.get(key)
        if known is not None:
            return known[1]
        if key in self._active:  # a cycle: ``a = b`` ... ``b = a``
            return Origins([], complete=False, cut=True)
        self._active.add(key)
        try:
            found = self._step(expr, path, depth)
        finally:
            self._active.discard(key)
        if not found.cut:
            self._memo[key] = (expr, found)
        return found

    def _step(self, expr: ast.expr, path: tuple[int, ...], depth: int) -> Origins:
        kind = expr.__class__
        if kind is ast.Name:
            return self._name(expr, path, depth)  # type: ignore[arg-type]
        if kind is ast.Attribute and isinstance(expr.value, ast.Name) and expr.value.id == "self":  # type: ignore[attr-defined]
            found = self._self_attribute(expr, path, depth)  # type: ignore[arg-type]
            if found is not None:
                return found
        elif kind is ast.Subscript:
            found = self._subscript(expr, path, depth)  # type: ignore[arg-type]
            if found is not None:
                return found
        elif kind is ast.NamedExpr:
            return self._follow(expr.value, path, depth + 1)  # type: ignore[attr-defined]
        elif kind is ast.IfExp:
            both = Origins([])
            both.add(self._follow(expr.body, path, depth + 1))  # type: ignore[attr-defined]
            both.add(self._follow(expr.orelse, path, depth + 1))  # type: ignore[attr-defined]
            return both
        elif kind is ast.Tuple or kind is ast.List:
            if path:
                elements = expr.elts  # type: ignore[attr-defined]
                if path[0] >= len(elements) or any(isinstance(e, ast.Starred) for e in elements):
                    return Origins([], complete=False)
                return self._follow(elements[path[0]], path[1:], depth + 1)
        if path and kind is not ast.Call:
            return Origins([], complete=False)  # an element of something that is not a tuple we see
        return Origins([Origin(expr, path)])

    # -- names -------------------------------------------------------------------------
    def _name(self, node: ast.Name, path: tuple[int, ...], depth: int) -> Origins:
        bindings = self.scopes.reaching(node.id, node)
        if bindings is None:
            return Origins([Origin(node, path)]) if not path else Origins([], complete=False)
        found = Origins([])
        for binding in bindings:
            scope = binding.scope
            if binding.parameter is not None and isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(self._parameter(scope, binding, path, depth))
                continue
            if binding.value is None:
                found.complete = False
                continue
            if id(node) in self._names_of(binding.value):
                continue  # ``optimizer = wrap(optimizer)`` in a loop: the name's other bindings answer
            found.add(self._follow(binding.value, (*binding.path, *path), depth + 1))
        return found

    def _names_of(self, value: ast.expr) -> frozenset[int]:
        """The ids of the names in a bound value, walked once per file."""
        names = self._names_in.get(id(value))
        if names is None:
            names = self._names_in[id(value)] = frozenset(id(sub) for sub in ast.walk(value) if isinstance(sub, ast.Name))
        return names

    # -- parameters ----------------------------------------------------------------------
    def _parameter(self, function: Function, binding: Binding, path: tuple[int, ...], depth: int) -> Origins:
        """What every call of ``function`` passes for the parameter (this file's as
        expressions, another file's as remote origins); its default where a call
        leaves it out, or where no call is seen."""
        assert binding.parameter is not None
        name = binding.parameter[1]
        found = Origins([])
        sites = call_sites(self.ctx, function)
        for site in sites:
            gives = site.gives(name)
            if gives is None:
                found.complete = False  # a *args or **kwargs may pass it
            elif not gives:
                found.add(self._default(binding, path, depth))
            elif site.call is not None:
                found.add(self._follow(site.arguments[name], path, depth + 1), Hop(function, site))
            else:
                found.append(Origin(None, path, remote=site, function=function, key=name))
        if not sites:
            found.add(self._default(binding, path, depth))
        return found

    def _default(self, binding: Binding, path: tuple[int, ...], depth: int) -> Origins:
        if binding.value is None:
            return Origins([], complete=False)
        return self._follow(binding.value, path, depth + 1)

    def _keywords(self, function: Function, key: str, path: tuple[int, ...], depth: int) -> Origins:
        """``kwargs["optimizer"]`` inside ``def step(batch, **kwargs)``: what the calls of
        the function pass as ``optimizer=`` (a keyword its ``**kwargs`` takes). A call
        that passes no such keyword passes nothing to read; one with ``**d`` may."""
        found = Origins([])
        for site in call_sites(self.ctx, function):
            passed = site.extra_keywords.get(key)
            if passed is None:
                if site.opaque:
                    found.complete = False
            elif site.call is not None:
                found.add(self._follow(passed, path, depth + 1), Hop(function, site))
            else:
                found.append(Origin(None, path, remote=site, function=function, key=key))
        if not found.found:
            found.complete = False
        return found

    # -- attributes ----------------------------------------------------------------------
    def _self_attribute(self, node: ast.Attribute, path: tuple[int, ...], depth: int) -> Origins | None:
        """``self.x``: every assignment of the class to it, and a class-level default;
        None when the class assigns none (the layer reads the attribute as it stands)."""
        cls = self.ctx.enclosing(node, ast.ClassDef)
        if cls is None:
            return None
        assigned = self._assignments(cls).get(node.attr)
        if not assigned:
            return None
        found = Origins([])
        for value, element in assigned:
            found.add(self._follow(value, (*element, *path), depth + 1))
        return found

    def _assignments(self, cls: ast.ClassDef) -> dict[str, list[tuple[ast.expr, tuple[int, ...]]]]:
        """attribute -> (value, element of it) for every ``self.x = value`` (also
        ``self.a, self.b = value``) in the class's methods and every class-level
        ``x: T = value``; indexed once per class."""
        index = self._class_assignments.get(id(cls))
        if index is None:
            index = self._class_assignments[id(cls)] = {}
            for sub in cls.body:
                if isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.value is not None:
                    index.setdefault(sub.target.id, []).append((sub.value, ()))
            for sub in statements(cls):
                if not isinstance(sub, (ast.Assign, ast.AnnAssign)) or sub.value is None:
                    continue
                for target in sub.targets if isinstance(sub, ast.Assign) else [sub.target]:
                    if _is_self_attribute(target):
                        index.setdefault(target.attr, []).append((sub.value, ()))  # type: ignore[attr-defined]
                    elif isinstance(target, ast.Tuple) and not any(isinstance(e, ast.Starred) for e in target.elts):
                        for position, element in enumerate(target.elts):
                            if _is_self_attribute(element):
                                index.setdefault(element.attr, []).append((sub.value, (position,)))  # type: ignore[attr-defined]
        return index

    # -- subscripts ----------------------------------------------------------------------
    def _subscript(self, node: ast.Subscript, path: tuple[int, ...], depth: int) -> Origins | None:
        """``pair[1]``: an element; ``d["k"]``: a dict's entry. None when the base is
        no tuple or dict this file shows (a config read, an array): the layer reads
        the subscript as it stands."""
        key = node.slice
        if not isinstance(key, ast.Constant) or isinstance(key.value, bool):
            return None
        base = node.value
        if isinstance(key.value, int):
            found = self._follow(base, (key.value, *path), depth + 1)
            return found if found.found else None
        if not isinstance(key.value, str):
            return None
        if isinstance(base, ast.Name):
            bindings = self.scopes.reaching(base.id, base)
            if bindings and len(bindings) == 1:
                function = _keywords_parameter_of(bindings[0], base.id)
                if function is not None:
                    return self._keywords(function, key.value, path, depth)
        entries = dict_entries(self.ctx, base)
        if entries is not None:
            return self._entry(entries, key.value, path, depth)
        # a dict handed in (a parameter), stored (``self.cfg``) or returned by a helper
        found, dicts, others = Origins([]), 0, 0
        bases = self._follow(base, (), depth + 1)
        for origin in bases.found:
            entries = dict_entries(self.ctx, origin.expr) if origin.expr is not None and not origin.path else None
            if entries is None:
                others += 1
                continue
            dicts += 1
            entry = self._entry(entries, key.value, path, depth)
            found.add(entry if not origin.hops else _behind(entry, origin.hops))
        if not dicts:
            return None
        if others or not bases.complete:
            found.complete = False
        found.cut = found.cut or bases.cut
        return found

    def _entry(self, entries: dict[str, list[ast.expr]], key: str, path: tuple[int, ...], depth: int) -> Origins:
        values = entries.get(key)
        if not values:
            return Origins([], complete=False)  # a dict we see in full, without the key
        found = Origins([])
        for value in values:
            found.add(self._follow(value, path, depth + 1))
        return found

    # -- helpers' returns ---------------------------------------------------------------
    def _returned(self, function: Function, path: tuple[int, ...], depth: int) -> Origins:
        key = (id(function), (-1, *path))  # (a function is never an expression: its own key)
        known = self._memo.get(key)
        if known is not None:
            return known[1]
        found = Origins([])
        returns = [n for n in _own_statements(function) if isinstance(n, ast.Return)]
        for ret in returns:
            if ret.value is None:
                found.complete = False
            else:
                found.add(self._follow(ret.value, path, depth + 1))
        if not returns:
            found.complete = False
        if not found.cut:
            self._memo[key] = (function, found)
        return found


def _behind(origins: Origins, hops: tuple[Hop, ...]) -> Origins:
    """``origins`` as seen through ``hops`` (outermost first)."""
    result = Origins([], origins.complete, origins.cut)
    for origin in origins.found:
        for hop in reversed(hops):
            origin = origin.behind(hop)
        result.append(origin)
    return result


def _own_statements(function: Function) -> list[ast.AST]:
    """The statements of a function, not those of the functions and classes it defines."""
    out: list[ast.AST] = list(function.body)
    for current in out:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in current._fields:
            value = getattr(current, name, None)
            if value.__class__ is list:
                out.extend(item for item in value if isinstance(item, (ast.stmt, ast.excepthandler, ast.match_case)))
    return out


def _keywords_parameter_of(binding: Binding, name: str) -> Function | None:
    """The function whose ``**name`` parameter the binding is, or None."""
    scope = binding.scope
    if binding.how != "other" or binding.stmt is not scope or not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    return scope if scope.args.kwarg is not None and scope.args.kwarg.arg == name else None


def _is_self_attribute(target: ast.expr) -> bool:
    return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"


def origins_of(ctx: "FileContext") -> OriginFinder:
    """The file's origin finder, shared by everything that follows values in it."""
    finder = ctx.memo.get("origins")
    if finder is None:
        finder = ctx.memo["origins"] = OriginFinder(ctx)
    return finder


# -- keyword dicts ----------------------------------------------------------------------

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
                entries[key.value] = [value]  # a later key wins: {**a, "batch_size": 32}
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
    # one answer per name and scope: the scan below walks the whole scope
    key = ("origins.name_entries", name.id, id(bindings))
    if key not in ctx.memo:
        ctx.memo[key] = _scan_name_entries(ctx, name, bindings, depth)
    return ctx.memo[key]


def _scan_name_entries(ctx: "FileContext", name: ast.Name, bindings: list[Binding], depth: int) -> dict[str, list[ast.expr]] | None:
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
        if isinstance(parent, ast.Dict) and any(k is None and v is use for k, v in zip(parent.keys, parent.values)):
            continue  # {**d, ...}: read (a copy; changes to the copy leave d as it is)
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
