"""Scopes and bindings: the one model of which statement gives a local name its value.

Every scope (the module, a function, a lambda) is indexed once, in one walk of
its body (``walk_scope``: nested functions and classes are their own scopes),
into a table of ``Binding``s per name. Both the value resolver (``values.py``:
what number a name holds) and the loss-scaling evaluator (``scaling.py``: how a
loss named ``loss`` scales with the batch) read names through it:

- ``visible(name, at)``: every binding of the innermost scope around ``at`` that
  binds the name (flow-insensitive; a closure sees its outer scope's names);
- ``reaching(name, at)``: the bindings that may reach ``at`` in straight-line
  code: the last one before it, and the other branches of the statement that
  last one sits in;
- ``before(name, at)``: the one binding ``at`` sees when that can be told.

The answers are found by position (a bisection over each name's bindings), not
by looking at every binding of the name, so a script that rebinds ``loss`` and
``model`` in hundreds of top-level cells is analysed in time proportional to
its size.
"""

from __future__ import annotations

import ast
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from losslint.context import FileContext

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_CONDITIONAL = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp, ast.match_case)


class Binding:
    """One way a name gets a value.

    ``stmt``: the node that binds it (an assignment, a loop, a ``with``, a
    ``def``, a ``global``, a walrus, a comprehension; for a parameter, its
    function). ``how``: ``assign`` (``value``, with ``path`` the element of a
    tuple unpacking: (1, 0) for ``c`` in ``(a, b), (c, d) = value``; ``value`` is
    None when unpacked through a star), ``aug`` (``x += v``: ``stmt.value`` is the
    operand), ``loop`` (a loop target: ``iterable`` is what it iterates), ``param``
    (``value`` its default, ``parameter`` its position, None for keyword-only,
    and name) or ``other`` (bound by something that is not followed: ``with``,
    ``def``, ``*args``, ``global``). ``value`` is the expression the name
    holds, or None when that is not one expression."""

    __slots__ = ("stmt", "value", "path", "how", "scope", "parameter", "position")

    def __init__(
        self,
        stmt: ast.AST,
        value: ast.expr | None,
        path: tuple[int, ...],
        how: str,
        scope: ast.AST,
        parameter: tuple[int | None, str] | None = None,
    ) -> None:
        self.stmt, self.value, self.path, self.how, self.scope, self.parameter = stmt, value, path, how, scope, parameter
        self.position = position(stmt)

    @property
    def iterable(self) -> ast.expr | None:
        """For a loop target: the expression the loop iterates."""
        return self.stmt.iter if self.how == "loop" else None  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Binding({self.how}, line {self.position[0]}, path={self.path})"


def position(node: ast.AST) -> tuple[int, int]:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def walk_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of a scope's body, not descending into nested functions, lambdas
    or classes (their names are their own), but yielding their definitions."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        children = []  # ast.iter_child_nodes' order, without its generators (a hot path)
        for field in node._fields:
            value = getattr(node, field, None)
            if value.__class__ is list:
                children.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                children.append(value)
        children.reverse()
        stack.extend(children)


def scope_body(scope: ast.AST) -> list[ast.stmt]:
    return scope.body if isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) else []  # type: ignore[return-value]


class _Name:
    """The bindings of one name in one scope: in the order of the scope's walk,
    and sorted by position (stably) for bisection."""

    __slots__ = ("bindings", "ordered", "keys", "accumulated", "loops", "params")

    def __init__(self) -> None:
        self.bindings: list[Binding] = []
        self.ordered: list[Binding] = []
        self.keys: list[tuple[int, int]] = []
        self.accumulated = False  # ``total += x`` somewhere: a running total
        self.loops: dict[int, list[Binding]] = {}  # id of a loop -> the name's bindings as its target
        self.params: list[Binding] = []  # parameters (and *args, **kwargs)

    def seal(self, scope: ast.AST) -> None:
        self.ordered = sorted(self.bindings, key=lambda b: b.position)
        self.keys = [b.position for b in self.ordered]
        for binding in self.bindings:
            if binding.how == "loop":
                self.loops.setdefault(id(binding.stmt), []).append(binding)
            elif binding.stmt is scope:
                self.params.append(binding)
        self.accumulated = any(b.how == "aug" and isinstance(b.stmt.op, (ast.Add, ast.Sub)) for b in self.bindings)  # type: ignore[attr-defined]


class ScopeTable:
    """Every binding of every local name of one scope, and the names it reads."""

    def __init__(self, scope: ast.AST, binding_expressions: frozenset[int] = frozenset()) -> None:
        self.scope = scope
        # the expressions that hold a walrus or a comprehension (ids): no other
        # expression binds a name, so the walk does not enter them
        self._binding_expressions = binding_expressions
        self.names: dict[str, _Name] = {}
        self._loads: dict[str, list[ast.Name]] | None = None
        self._index()
        for entry in self.names.values():
            entry.seal(scope)

    def bindings(self, name: str) -> list[Binding]:
        entry = self.names.get(name)
        return entry.bindings if entry is not None else []

    def _add(self, name: str, binding: Binding) -> None:
        entry = self.names.get(name)
        if entry is None:
            entry = self.names[name] = _Name()
        entry.bindings.append(binding)

    def _opaque(self, target: ast.AST, stmt: ast.AST) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                self._add(node.id, Binding(stmt, None, (), "other", self.scope))

    def _unpack(self, target: ast.expr, stmt: ast.AST, value: ast.expr | None, how: str, path: tuple[int, ...] = ()) -> None:
        if isinstance(target, ast.Name):
            self._add(target.id, Binding(stmt, value, path, how, self.scope))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):  # a list of the rest: not one element of the value
                    for node in ast.walk(element):
                        if isinstance(node, ast.Name):
                            self._add(node.id, Binding(stmt, None, (), how, self.scope))
                else:
                    self._unpack(element, stmt, value, how, (*path, index))
        elif how == "loop":  # for self.x in ...: the base is read, and bound by nothing followed
            self._opaque(target, stmt)

    def _index(self) -> None:
        scope = self.scope
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = scope.args
            positional = [*args.posonlyargs, *args.args]
            defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            for index, (arg, default) in enumerate(zip(positional, defaults)):
                self._add(arg.arg, Binding(scope, default, (), "param", scope, (index, arg.arg)))
            for arg, default in zip(args.kwonlyargs, args.kw_defaults):
                self._add(arg.arg, Binding(scope, default, (), "param", scope, (None, arg.arg)))
            for arg in (args.vararg, args.kwarg):
                if arg is not None:
                    self._add(arg.arg, Binding(scope, None, (), "other", scope))
        # walk_scope's walk (the same nodes in the same order), dispatching on the
        # node's class: most nodes bind nothing, and this runs once per scope.
        stack: list[ast.AST] = list(reversed(scope_body(scope)))
        pop, extend, binders, opaque_scopes = stack.pop, stack.extend, _BINDERS, _OWN_SCOPES
        expr, entered = ast.expr, self._binding_expressions
        while stack:
            node = pop()
            cls = node.__class__
            if cls in binders:
                self._bind(node, cls)
                if cls in opaque_scopes:
                    continue
            children = []
            for field in node._fields:
                value = getattr(node, field, None)
                if value.__class__ is list:
                    children.extend(item for item in value if isinstance(item, ast.AST) and (not isinstance(item, expr) or id(item) in entered))
                elif isinstance(value, ast.AST) and (not isinstance(value, expr) or id(value) in entered):
                    children.append(value)
            children.reverse()
            extend(children)

    def _bind(self, node: ast.AST, cls: type) -> None:
        scope = self.scope
        if cls is ast.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                self._unpack(target, node, node.value, "assign")  # type: ignore[attr-defined]
        elif cls is ast.AnnAssign:
            if node.value is not None:  # type: ignore[attr-defined]
                self._unpack(node.target, node, node.value, "assign")  # type: ignore[attr-defined]
        elif cls is ast.AugAssign:
            if isinstance(node.target, ast.Name):  # type: ignore[attr-defined]
                self._add(node.target.id, Binding(node, None, (), "aug", scope))  # type: ignore[attr-defined]
        elif cls is ast.For or cls is ast.AsyncFor:
            self._unpack(node.target, node, None, "loop")  # type: ignore[attr-defined]
        elif cls is ast.comprehension:
            self._opaque(node.target, node)  # type: ignore[attr-defined]
        elif cls is ast.With or cls is ast.AsyncWith:
            for item in node.items:  # type: ignore[attr-defined]
                if item.optional_vars is not None:
                    self._opaque(item.optional_vars, node)
        elif cls is ast.NamedExpr:
            self._add(node.target.id, Binding(node, node.value, (), "assign", scope))  # type: ignore[attr-defined]
        elif cls in _OWN_SCOPES:
            if cls is not ast.Lambda:  # a nested def or class binds its name here
                self._add(node.name, Binding(node, None, (), "other", scope))  # type: ignore[attr-defined]
        # Imports are not bindings here: the module's import table resolves them.
        elif cls is ast.Global or cls is ast.Nonlocal:
            for name in node.names:  # type: ignore[attr-defined]
                self._add(name, Binding(node, None, (), "other", scope))

    @property
    def loads(self) -> dict[str, list[ast.Name]]:
        """name -> its reads in this scope (not in nested functions), in walk order."""
        if self._loads is None:
            self._loads = {}
            for node in walk_scope(scope_body(self.scope)):
                if node.__class__ is ast.Name and node.ctx.__class__ is ast.Load:  # type: ignore[attr-defined]
                    self._loads.setdefault(node.id, []).append(node)  # type: ignore[attr-defined]
        return self._loads


_OWN_SCOPES = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda})
_BINDERS = _OWN_SCOPES | {
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension, ast.With, ast.AsyncWith,
    ast.NamedExpr, ast.Global, ast.Nonlocal,
}


# The last tree's scope tables: the fact collectors and the rules of one file each
# make their own FileContext of the same tree, and share these (as walk.tree_index).
_last_tables: tuple[ast.AST | None, dict[int, ScopeTable], list[frozenset[int]]] = (None, {}, [])


def _tables_of(tree: ast.AST) -> tuple[dict[int, ScopeTable], list[frozenset[int]]]:
    global _last_tables
    if _last_tables[0] is not tree:
        _last_tables = (tree, {}, [])
    return _last_tables[1], _last_tables[2]


class Scopes:
    """The scope tables of one file, built on first use (``scopes_of(ctx)``)."""

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self._tables, self._binding_expressions = _tables_of(ctx.tree)
        self._self_attributes: dict[int, dict[str, list[ast.Assign]]] = {}

    def table(self, scope: ast.AST) -> ScopeTable:
        table = self._tables.get(id(scope))
        if table is None:
            if not self._binding_expressions:
                self._binding_expressions.append(self._expressions_that_bind())
            table = self._tables[id(scope)] = ScopeTable(scope, self._binding_expressions[0])
        return table

    def _expressions_that_bind(self) -> frozenset[int]:
        """The expressions (ids) that are or hold a walrus or a comprehension."""
        parents, found = self.ctx.parents, set()
        binders = (ast.NamedExpr, ast.comprehension)
        for node in [n for n in self.ctx.nodes if n.__class__ in binders]:
            current: ast.AST | None = node
            while current is not None and not isinstance(current, ast.stmt) and id(current) not in found:
                found.add(id(current))
                current = parents.get(current)
        return frozenset(found)

    def scope_of(self, node: ast.AST) -> ast.AST:
        """The function (or module) whose local names ``node`` sees first."""
        return self.ctx.enclosing_scope(node)

    def _binding_scope(self, name: str, scope: ast.AST) -> tuple[ast.AST, _Name] | None:
        """The innermost scope from ``scope`` outwards that binds ``name``."""
        tree = self.ctx.tree
        while True:
            entry = self.table(scope).names.get(name)
            if entry is not None:
                return scope, entry
            if scope is tree:
                return None
            scope = self.scope_of(scope)

    # -- flow-insensitive -------------------------------------------------------
    def visible(self, name: str, at: ast.AST) -> list[Binding] | None:
        """Bindings of ``name`` visible from ``at``: those of the innermost scope that
        binds it. None when no scope of this file binds it."""
        found = self._binding_scope(name, self.scope_of(at) if at is not self.ctx.tree else at)
        return found[1].bindings if found is not None else None

    def accumulated(self, name: str, at: ast.AST) -> bool:
        """``total += x`` (or ``-=``) somewhere in the scope of ``at``: ``name`` is a
        running total there, not one step's value."""
        entry = self.table(self.scope_of(at)).names.get(name)
        return entry is not None and entry.accumulated

    def loads(self, scope: ast.AST, name: str) -> list[ast.Name]:
        """The reads of ``name`` in ``scope`` (not in nested functions), in walk order."""
        return self.table(scope).loads.get(name, [])

    # -- flow-sensitive -----------------------------------------------------------
    def reaching(self, name: str, at: ast.AST) -> list[Binding] | None:
        """The bindings of ``name`` that may reach ``at`` (flow-sensitive enough for
        straight-line training code: the last binding before it, and the other
        branches of the statement that binding sits in; a loop target binds before
        the loop's body). None: not bound in any enclosing function (a global, an
        import, a builtin). A closure variable: every binding of the outer scope."""
        own = self.scope_of(at)
        found = self._binding_scope(name, own)
        if found is None:
            return None
        scope, entry = found
        if scope is not own:
            return list(entry.bindings)
        parents = self.ctx.parents
        above: set[int] = set()  # ``at`` and the nodes around it, within its scope
        node: ast.AST | None = at
        while node is not None and node is not scope:
            above.add(id(node))
            node = parents.get(node)
        # targets of the loops around ``at`` (not when ``at`` is in the loop's iterable)
        loops = [b for key in above if key in entry.loops for b in entry.loops[key] if id(b.iterable) not in above]
        loops.sort(key=lambda b: b.position)
        params = entry.params

        def last_before(limit: tuple[int, int], loops_at_limit: bool = False) -> Binding | None:
            """The binding positioned last before ``limit`` that has run by ``at``."""
            best = None
            index = bisect_left(entry.keys, limit) - 1
            while index >= 0:
                binding = entry.ordered[index]
                if binding.stmt is not scope and id(binding.stmt) not in above:
                    best = binding
                    break
                index -= 1
            for binding in loops:
                if (binding.position < limit or loops_at_limit) and (best is None or binding.position > best.position):
                    best = binding
            return best

        where = position(at)
        last = last_before(where, loops_at_limit=True)
        if last is None:
            return list(params) or [b for b in entry.bindings if b.how in ("loop", "other")] or list(entry.bindings)
        outer = None  # the outermost statement around ``last`` that does not hold ``at``
        node = last.stmt
        while node is not None and node is not scope:
            if isinstance(node, ast.stmt) and id(node) not in above:
                outer = node
            node = parents.get(node)
        if outer is None or outer is last.stmt:
            return [last]
        # ``last`` sits in a branch or loop that ``at`` is not in: it may not have run.
        start = position(outer)
        reaching = [
            b
            for b in entry.ordered[bisect_left(entry.keys, start) : bisect_right(entry.keys, last.position)]
            if b.stmt is not scope and id(b.stmt) not in above and self._encloses(outer, b.stmt)
        ]
        earlier = last_before(start)
        if earlier is not None:
            reaching.append(earlier)
        else:
            reaching.extend(params)
        return reaching

    def before(self, name: str, at: ast.AST) -> Binding | None:
        """The binding of ``name`` that ``at`` sees in straight-line order: the last
        one before ``at``'s statement in the innermost scope that binds the name
        (scripts rebind step by step: ``x = x.astype("float32") / 255``). None when
        that cannot be told: no binding before it, a parameter, or a last binding
        inside a branch or loop that does not also hold ``at``."""
        statement = self.ctx.enclosing(at, ast.stmt)
        if statement is None:
            return None
        scope = self.scope_of(at)
        entry = self.table(scope).names.get(name)
        if entry is None:
            if scope is self.ctx.tree:
                return None
            outer = self.visible(name, scope)
            return outer[0] if outer and len(outer) == 1 else None
        # The last binding positioned before it (of one statement's, the last target's:
        # ``x = x = v``), by a statement (not a walrus or a comprehension), not a parameter.
        index = bisect_left(entry.keys, position(statement)) - 1
        while index >= 0 and not (isinstance(entry.ordered[index].stmt, ast.stmt) and entry.ordered[index].stmt is not scope):
            index -= 1
        if index < 0:
            return None  # a parameter, or bound only later
        found = entry.ordered[index]
        # It must run whenever ``statement`` does: every branch or loop around it
        # must also hold ``statement``.
        current = self.ctx.parents.get(found.stmt)
        while current is not None and current is not scope:
            if isinstance(current, _CONDITIONAL) and not self._encloses(current, statement):
                return None
            current = self.ctx.parents.get(current)
        return found

    def _encloses(self, outer: ast.AST, node: ast.AST) -> bool:
        current: ast.AST | None = node
        parents = self.ctx.parents
        while current is not None:
            if current is outer:
                return True
            current = parents.get(current)
        return False

    # -- attributes -------------------------------------------------------------
    def self_assignments(self, cls: ast.ClassDef, attribute: str) -> list[ast.Assign]:
        """The assignments ``self.<attribute> = value`` anywhere in a class's methods."""
        index = self._self_attributes.get(id(cls))
        if index is None:
            index = self._self_attributes[id(cls)] = {}
            for node in ast.walk(cls):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                            index.setdefault(target.attr, []).append(node)
        return index.get(attribute, [])


def scopes_of(ctx: "FileContext") -> Scopes:
    """The file's scope model, shared by everything that asks of its names."""
    scopes = ctx.memo.get("scopes")
    if scopes is None:
        scopes = ctx.memo["scopes"] = Scopes(ctx)
    return scopes
