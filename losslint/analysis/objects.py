"""What object an expression holds: the one object resolver.

From a use (``optimizer.step()``'s ``optimizer``) back to the calls that may
have built the object, through the shapes training code hands objects on in:

- names and the bindings that reach the use (``analysis/scopes.py``: the last
  binding before it in straight-line code, every branch's where a branch decides;
  a script that rebinds ``optimizer`` in hundreds of cells asks one binding per
  use, not all of them), tuple unpacking (``model, opt = setup()``);
- ``self.x`` set in any method of the class (also by tuple assignment);
- keyword dicts and tuples: ``kwargs["optimizer"]`` of a dict literal or
  ``dict(optimizer=...)``, ``pair[1]`` of a tuple or of a helper's returned tuple;
- helper functions of the file that return the object (``return opt``,
  ``return model, opt``), and the parameters of a function back to what its call
  sites pass (``analysis/calls.py``: this file's calls, and another file's through
  a family's own facts).

What counts as building the object, which calls hand back the object they were
given (wrappers, preparers), and what the family records of other files is the
family's judgement: a subclass of ``ObjectResolver`` answers it in its hooks
(``construct``, ``returned``, ``passed_locally``, ``passed_from_files``,
``built_elsewhere``). Items are the family's own type.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Generic, TypeVar

from losslint.analysis.calls import CallSite, call_sites
from losslint.analysis.names import last_part
from losslint.analysis.scopes import Binding, scopes_of
from losslint.analysis.walk import statements, walk

if TYPE_CHECKING:
    from losslint.context import FileContext

T = TypeVar("T")
Function = ast.FunctionDef | ast.AsyncFunctionDef


class ObjectResolver(Generic[T]):
    """Resolves the objects expressions of one file hold (see the module's docs)."""

    max_depth = 6

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self._functions: dict[str, list[Function]] | None = None
        self._class_assignments: dict[ast.ClassDef, dict[str, list[ast.stmt]]] = {}
        self._own_nodes: dict[int, list[ast.AST]] = {}

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
                for node in nodes:
                    for child in ast.iter_child_nodes(node):
                        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                            nodes.append(child)
            else:
                nodes = walk(scope)
            self._own_nodes[id(scope)] = nodes
        return nodes

    def functions(self) -> dict[str, list[Function]]:
        """The file's functions and methods by name."""
        if self._functions is None:
            self._functions = {}
            for node in self.ctx.nodes_of(ast.FunctionDef, ast.AsyncFunctionDef):
                self._functions.setdefault(node.name, []).append(node)  # type: ignore[arg-type]
        return self._functions

    # -- entry point ---------------------------------------------------------------------
    def resolve(self, expr: ast.expr, depth: int = 0) -> list[T]:
        if depth > self.max_depth:
            return []
        if isinstance(expr, ast.Call):
            return self.call(expr, depth)
        if isinstance(expr, ast.Name):
            return self._name(expr, depth)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            return self._self_attribute(expr, depth)
        if isinstance(expr, ast.NamedExpr):
            return self.resolve(expr.value, depth + 1)
        if isinstance(expr, ast.Subscript):
            return self._subscript(expr, depth)
        return []

    def call(self, call: ast.Call, depth: int, path: tuple[int, ...] = ()) -> list[T]:
        """What a call returns (``path``: the element of a returned tuple)."""
        qual = self.ctx.qualname(call.func) or ""
        name = last_part(qual) or (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        found = self.construct(call, name, depth, path)
        if found is not None:
            return found
        return self._helper_call(call, name, depth, path)

    # -- helpers of this file --------------------------------------------------------------
    def _helper_call(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[T]:
        """A call of a function of this file (``f()``, ``self.f()``) that returns the
        object; else of another file's, as the family's facts tell."""
        if isinstance(call.func, ast.Name) or (
            isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id == "self"
        ):
            for function in self.functions().get(name, []):
                found: list[T] = []
                for ret in (n for n in statements(function) if isinstance(n, ast.Return) and n.value is not None):
                    value: ast.expr | None = ret.value
                    for index in path:
                        value = value.elts[index] if isinstance(value, (ast.Tuple, ast.List)) and index < len(value.elts) else None
                        if value is None:
                            break
                    if value is not None:
                        found.extend(self.returned(self.resolve(value, depth + 1), function, call))
                if found:
                    return found
        return self.built_elsewhere(call, name, depth, path)

    # -- names -----------------------------------------------------------------------------
    def _names_in(self, value: ast.expr) -> set[int]:
        """The ids of the names in a bound value, walked once per file."""
        key = ("objects.names_in", id(value))
        names = self.ctx.memo.get(key)
        if names is None:
            names = self.ctx.memo[key] = {id(sub) for sub in ast.walk(value) if isinstance(sub, ast.Name)}
        return names

    def _name(self, node: ast.Name, depth: int) -> list[T]:
        bindings = scopes_of(self.ctx).reaching(node.id, node)
        if not bindings:
            return []
        found: list[T] = []
        for binding in bindings:
            scope = binding.scope
            if binding.parameter is not None and isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.extend(self.parameter(scope, node.id, depth))
                continue
            if binding.value is None:
                continue
            if isinstance(binding.value, ast.Constant) and binding.value.value is None:
                continue  # `optimizer = None` before the real assignment
            if id(node) in self._names_in(binding.value):
                continue  # `optimizer = wrap(optimizer)`: the name's earlier bindings answer
            found.extend(self._element(binding.value, binding.path, depth))
        return found

    def _element(self, value: ast.expr | None, path: tuple[int, ...], depth: int) -> list[T]:
        """The object at ``path`` of ``value`` (a tuple literal, or a call returning one)."""
        while path and isinstance(value, (ast.Tuple, ast.List)):
            value = value.elts[path[0]] if path[0] < len(value.elts) else None
            path = path[1:]
        if value is None:
            return []
        if path:
            return self.call(value, depth + 1, path) if isinstance(value, ast.Call) else []
        return self.resolve(value, depth + 1)

    def _subscript(self, node: ast.Subscript, depth: int) -> list[T]:
        """``kwargs["optimizer"]`` of a dict literal or ``dict(optimizer=...)``;
        ``pair[1]`` of a tuple or of a call returning one."""
        key = node.slice
        if not (isinstance(key, ast.Constant) and isinstance(key.value, (str, int)) and not isinstance(key.value, bool)):
            return []
        base: ast.expr | None = node.value
        if isinstance(base, ast.Name):
            bindings = scopes_of(self.ctx).reaching(base.id, base)
            if bindings and len(bindings) == 1 and isinstance(key.value, str):
                function = _keywords_parameter_of(bindings[0], base.id)
                if function is not None:
                    return self._keyword_entry(function, key.value, depth)
            if not bindings or len(bindings) != 1 or bindings[0].path or bindings[0].value is None:
                return []
            base = bindings[0].value
        if isinstance(key.value, int):
            return self._element(base, (key.value,), depth)
        entry = _dict_entry(base, key.value) if base is not None else None
        return self.resolve(entry, depth + 1) if entry is not None else []

    def _self_attribute(self, node: ast.Attribute, depth: int) -> list[T]:
        cls = self.ctx.enclosing(node, ast.ClassDef)
        if cls is None:
            return []
        found: list[T] = []
        for sub in self._assignments_to(cls, node.attr):
            if not isinstance(sub, (ast.Assign, ast.AnnAssign)) or sub.value is None:
                continue
            for target in sub.targets if isinstance(sub, ast.Assign) else [sub.target]:
                if _is_self_attribute(target, node.attr):
                    found.extend(self.resolve(sub.value, depth + 1))
                elif isinstance(target, ast.Tuple):
                    for index, element in enumerate(target.elts):
                        if _is_self_attribute(element, node.attr):
                            found.extend(self._element(sub.value, (index,), depth))
        return found

    def _assignments_to(self, cls: ast.ClassDef, attr: str) -> list[ast.stmt]:
        """The class's assignments with a target attribute named ``attr``, indexed once
        per class (a long class resolved attribute by attribute was quadratic)."""
        index = self._class_assignments.get(cls)
        if index is None:
            index = self._class_assignments[cls] = {}
            for sub in statements(cls):
                if not isinstance(sub, (ast.Assign, ast.AnnAssign)):
                    continue
                names: set[str] = set()
                for target in sub.targets if isinstance(sub, ast.Assign) else [sub.target]:
                    if isinstance(target, ast.Attribute):
                        names.add(target.attr)
                    elif isinstance(target, ast.Tuple):
                        names.update(e.attr for e in target.elts if isinstance(e, ast.Attribute))
                for name in names:
                    index.setdefault(name, []).append(sub)
        return index.get(attr, [])

    # -- parameters --------------------------------------------------------------------------
    def parameter(self, function: Function, name: str, depth: int) -> list[T]:
        """A function parameter: what the calls of the function pass for it, in this
        file and (through the family's facts) in the files that import it."""
        found: list[T] = []
        sites = call_sites(self.ctx, function)
        for site in sites:
            if site.call is None:
                continue
            passed = site.arguments.get(name)
            if passed is not None:
                found.extend(self.passed_locally(self.resolve(passed, depth + 1), function, site))
        others = [site for site in sites if site.call is None]
        if others:
            found.extend(self.passed_from_files(function, name, others, depth))
        return found

    def _keyword_entry(self, function: Function, key: str, depth: int) -> list[T]:
        """``kwargs["optimizer"]`` inside ``def train_step(batch, **kwargs)``: what the
        calls of the function pass as ``optimizer=`` (a keyword its ``**kwargs`` takes)."""
        found: list[T] = []
        sites = call_sites(self.ctx, function)
        for site in sites:
            passed = site.extra_keywords.get(key) if site.call is not None else None
            if passed is not None:
                found.extend(self.passed_locally(self.resolve(passed, depth + 1), function, site))
        others = [site for site in sites if site.call is None and key in site.extra_keywords]
        if others:
            found.extend(self.passed_from_files(function, key, others, depth))
        return found


def _keywords_parameter_of(binding: Binding, name: str) -> Function | None:
    """The function whose ``**name`` parameter the binding is, or None."""
    scope = binding.scope
    if binding.how != "other" or binding.stmt is not scope or not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    return scope if scope.args.kwarg is not None and scope.args.kwarg.arg == name else None


def _is_self_attribute(target: ast.expr, attr: str) -> bool:
    return isinstance(target, ast.Attribute) and target.attr == attr and isinstance(target.value, ast.Name) and target.value.id == "self"


def _dict_entry(value: ast.expr, key: str) -> ast.expr | None:
    """The entry ``key`` of a dict literal or a ``dict(key=...)`` call."""
    if isinstance(value, ast.Dict):
        for k, v in zip(value.keys, value.values):
            if isinstance(k, ast.Constant) and k.value == key:
                return v
        return None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
        return next((kw.value for kw in value.keywords if kw.arg == key), None)
    return None
