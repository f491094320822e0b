"""Class ancestry across the project's files and into the frameworks' names:
``class InfiniteDataLoader(BaseLoader)`` in ``utils/loaders.py``, with
``BaseLoader(torch.utils.data.DataLoader)`` in ``utils/base.py``, is a DataLoader.

A class written in the file being judged, whose bases are framework names, is
answered from the file's import table (the fast path, no extra parse). A base that
is a class of another project file is followed with astroid: the file is parsed
into astroid's node model (once per process and text) and the base is looked up
with astroid's scoped name lookup, which sees through import aliases, rebinding
(``Base = DataLoader``) and re-exports (``from .loaders import *`` in a package's
``__init__``). Imports are resolved by losslint's own project model
(``ProjectFacts.resolve``), never by astroid's import machinery: nothing outside
the project is read, and nothing is imported or run.

Framework ancestors are reported by the dotted name the code imports them by
(``torch.utils.data.DataLoader``, ``keras.losses.Loss``): a rule matches those
against its own catalogue.
"""

from __future__ import annotations

import ast
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from losslint.project import file_key

if TYPE_CHECKING:
    import astroid.nodes

    from losslint.context import FileContext
    from losslint.project import ProjectFacts

_MAX_DEPTH = 12  # inheritance chains in real code are a few classes deep


# In a lineage, a project class is "\0<file key>\0<class name>": never a dotted name.
_PROJECT_MARK = "\0"


def _project_mark(path: str, name: str) -> str:
    return f"{_PROJECT_MARK}{path}{_PROJECT_MARK}{name}"


def ancestors(ctx: "FileContext", node: ast.expr) -> frozenset[str]:
    """The dotted names of the framework classes that the class ``node`` names
    (``DataLoader``, ``loaders.InfiniteLoader``, ``self.Loader``) is or derives
    from, as far as the project's files show them. Empty when ``node`` names
    nothing known."""
    return frozenset(name for name in _lineage(ctx, node) if not name.startswith(_PROJECT_MARK))


def project_classes(ctx: "FileContext", node: ast.expr) -> list[tuple[str, str]]:
    """The project classes (file key, class name) that the class ``node`` names is or
    derives from, through the same bases, aliases, ``extend_with_*`` factories and
    imports as ``ancestors``: where their own signatures are."""
    return sorted(
        tuple(name[1:].split(_PROJECT_MARK, 1))  # type: ignore[misc]
        for name in _lineage(ctx, node) if name.startswith(_PROJECT_MARK)
    )


def _lineage(ctx: "FileContext", node: ast.expr) -> frozenset[str]:
    """``ancestors``, with the project classes on the way marked (``_project_mark``)."""
    qual = ctx.qualname(node)
    if qual is None:
        return frozenset()
    local = _local_class(ctx.tree, qual)
    if local is not None:
        found: set[str] = {_project_mark(file_key(ctx.file) if ctx.file else "", qual)}
        for base in local.bases:
            found |= _lineage(ctx, base)
        return frozenset(found)
    key = file_key(ctx.file) if ctx.file else ""
    if "." not in qual and key in ctx.project.modules and _assigned_at_top(ctx.tree, qual):
        # ``Base = DataLoader``, ``AdamW = extend_with_weight_decay(Adam)`` in this file
        module = _parse(ctx.source.encode("utf-8", "surrogatepass"), key, ctx.project.modules[key].module)
        found = set()
        for binding in _bindings(module, qual) if module is not None else ():
            found |= _binding_ancestors(ctx.project, key, binding, 0)
        return frozenset(found or {qual})
    module, _, name = qual.rpartition(".")
    target = ctx.project.resolve(module, ctx.file or None) if module else None
    if target is None:
        return frozenset({qual})  # a framework name (or one no project file defines)
    return frozenset(_project_class_ancestors(ctx.project, target, name, 0))


def derives_from(ctx: "FileContext", node: ast.expr, names: set[str] | frozenset[str]) -> bool:
    """Whether the class ``node`` names is, or derives from, one of the framework
    classes ``names`` (dotted names as imported)."""
    return bool(ancestors(ctx, node) & names)


def _assigned_at_top(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in statement.targets)
        for statement in tree.body
    )


def _local_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    if "." in name:
        return None
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef) and statement.name == name:
            return statement
    return None


def _project_class_ancestors(project: "ProjectFacts", path: str, name: str, depth: int) -> set[str]:
    """Ancestors of the class ``name`` as the project file ``path`` binds it."""
    if depth > _MAX_DEPTH:
        return set()
    module = _astroid_module(project, path)
    if module is None:
        return set()
    found: set[str] = set()
    bindings = _bindings(module, name)
    for binding in bindings:
        found |= _binding_ancestors(project, path, binding, depth)
    if not bindings:  # perhaps re-exported: ``from .loaders import *`` in a package's __init__
        import astroid.nodes as an

        for star in module.nodes_of_class(an.ImportFrom):
            if star.names == [("*", None)]:
                found |= _imported_ancestors(project, path, _absolute(star), [name], depth)
    return found


def _bindings(scope: "astroid.nodes.LocalsDictNodeNG", name: str) -> list["astroid.nodes.NodeNG"]:
    try:
        with _project_only():
            _, assigned = scope.lookup(name)
    except Exception:  # astroid raises on names it cannot place; nothing to follow
        return []
    return list(assigned)


def _binding_ancestors(project: "ProjectFacts", path: str, binding: "astroid.nodes.NodeNG", depth: int) -> set[str]:
    import astroid.nodes as an

    if isinstance(binding, an.ClassDef):
        found: set[str] = {_project_mark(path, binding.name)} if isinstance(binding.parent, an.Module) else set()
        for base in binding.bases:
            found |= _expression_ancestors(project, path, binding.parent.scope(), base, depth + 1)
        return found
    if isinstance(binding, (an.ImportFrom, an.Import)):
        return set()  # reached through _expression_ancestors, which knows the name asked for
    if isinstance(binding, an.AssignName) and isinstance(binding.parent, an.Assign):
        value = binding.parent.value
        if isinstance(value, an.Call) and value.args and _dotted_parts(value.func)[-1:] and _dotted_parts(value.func)[-1].startswith("extend_with"):
            value = value.args[0]  # a class factory: ``AdamW = extend_with_weight_decay(Adam)`` (bert4keras, TF Addons)
        return _expression_ancestors(project, path, binding.scope(), value, depth + 1)
    return set()


def _expression_ancestors(project: "ProjectFacts", path: str, scope, expression, depth: int) -> set[str]:
    """Ancestors of the class an expression of file ``path`` names (a base in a
    class statement, the value of ``Base = ...``)."""
    import astroid.nodes as an

    if depth > _MAX_DEPTH:
        return set()
    parts = _dotted_parts(expression)
    if not parts:
        return set()
    head, rest = parts[0], parts[1:]
    bindings = _bindings(scope, head)
    if not bindings:
        return {".".join(parts)}  # a builtin or an unbound name: as written
    found: set[str] = set()
    for binding in bindings:
        if isinstance(binding, an.ImportFrom):
            module = _absolute(binding)
            # the name as the other module calls it (``from m import A as B``), or the
            # same name through ``from m import *``
            real = next((name for name, alias in binding.names if (alias or name) == head), head)
            found |= _imported_ancestors(project, path, module, [real, *rest], depth)
        elif isinstance(binding, an.Import):
            # ``import a.b as m`` binds m to a.b; ``import a.b`` binds a
            aliased = next((name for name, alias in binding.names if alias == head), None)
            found |= _imported_ancestors(project, path, None, [*(aliased or head).split("."), *rest], depth)
        elif not rest:
            found |= _binding_ancestors(project, path, binding, depth)
    return found


def _imported_ancestors(project: "ProjectFacts", path: str, module: str | None, parts: list[str], depth: int) -> set[str]:
    """``from module import parts[0]`` (or ``import parts...``), then attributes:
    the longest prefix that is a project module holds the class; else it is a
    framework name."""
    full = ([module] if module else []) + parts
    for cut in range(len(full) - 1, 0, -1):
        target = project.resolve(".".join(full[:cut]), path)
        if target is not None:
            if cut == len(full) - 1:
                return _project_class_ancestors(project, target, full[-1], depth + 1)
            return set()  # a class nested in a module attribute: beyond this model
    return {".".join(full)}


def _absolute(node) -> str:
    """The absolute module name of an ``ImportFrom`` (a package's ``__init__`` is
    its own package, which astroid's module knows)."""
    if not node.level:
        return node.modname
    try:
        return node.root().relative_to_absolute_name(node.modname, node.level)
    except Exception:  # more levels than packages: nothing to follow
        return ""


def _dotted_parts(expression) -> list[str]:
    import astroid.nodes as an

    parts: list[str] = []
    while isinstance(expression, an.Attribute):
        parts.append(expression.attrname)
        expression = expression.expr
    if isinstance(expression, an.Name):
        parts.append(expression.name)
        return parts[::-1]
    return []


def _astroid_module(project: "ProjectFacts", path: str):
    text = project.unsaved.get(path)
    if text is not None:
        data = text.encode("utf-8", "surrogatepass")
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
    return _parse(data, path, project.modules[path].module)


class _NoModule(frozenset):
    """astroid's module deny-list while losslint builds a tree: every name is
    denied, so ``from x import *`` never makes astroid read another module (imports
    are losslint's to resolve, within the project)."""

    def __contains__(self, name: object) -> bool:
        return True


@contextmanager
def _project_only():
    """astroid makes a manager wherever it needs one, each reading the shared
    brain: deny every module in both while losslint uses astroid."""
    import astroid
    from astroid.manager import AstroidManager

    manager, brain = astroid.MANAGER, AstroidManager.brain
    denied = brain["module_denylist"]
    manager.module_denylist = brain["module_denylist"] = _NoModule()
    try:
        yield
    finally:
        manager.module_denylist = brain["module_denylist"] = denied


@lru_cache(maxsize=256)
def _parse(data: bytes, path: str, module_name: str):
    """astroid's tree of one project file (kept per process by its text)."""
    import astroid

    with _project_only():
        try:
            module = astroid.parse(data.decode("utf-8", "replace"), module_name=module_name, path=path)
        except Exception:  # a file astroid cannot build: its classes stay unknown
            return None
    # astroid keeps what it builds by module name; project files share names (many
    # ``main``), and losslint resolves imports itself: keep it out of astroid's cache
    if astroid.MANAGER.astroid_cache.get(module_name) is module:
        del astroid.MANAGER.astroid_cache[module_name]
    return module
