"""The project's call graph: where a function (or a class, through its
``__init__``) is called, in its own file and in the other files of the project
that may reach it, with each call's arguments bound to the callee's parameters.

The one place that answers "who calls this, with what": the value resolver
(a parameter's value from its call sites), the object resolver (an optimizer
handed to a training function) and the rule families ask it.

API (stable):

- ``call_sites(ctx, function, across_files=True) -> list[CallSite]``: the calls of
  ``function`` (a ``FunctionDef`` of ``ctx``'s file): this file's, then (for a
  module-level function, or a module-level class's ``__init__``) those recorded in
  the other files ``ctx.file`` may borrow from (``ProjectFacts.related``) whose
  imports resolve the called name to this file. Two unrelated scripts that both
  define ``train`` never see each other's calls.
- ``CallSite``: one call. ``path`` (the calling file's key; ``ctx.file`` for this
  file), ``line``, ``call`` (the ``ast.Call``; None for another file's),
  ``record`` (the ``CallRecord``; None for this file's), ``arguments`` (parameter
  name -> the ``ast.expr`` passed, this file's calls), ``passed`` (parameter name
  -> ``Passed``, another file's calls), ``opaque`` (a ``*args``/``**kwargs`` that
  may bind parameters not named), ``local`` (this file's call); ``gives(name)``:
  True when the call passes that parameter, False when it leaves it to its
  default, None when that cannot be told.
- ``bind(function, call, method_call) -> Binding``-like ``Bound``: one call's
  arguments bound to a function's parameters (positional, keyword, ``*args``
  and ``**kwargs`` where statically clear): ``arguments``, ``defaulted``,
  ``opaque``, ``extra_keywords`` (keywords bound to a ``**kwargs`` parameter).
- ``calls_named(ctx, name, attribute=None) -> list[ast.Call]``: this file's calls
  of a name (``f(...)`` with attribute False, ``x.f(...)`` with True, both with
  None), indexed once per file.
- ``project_calls(ctx, name, scope=...) -> list[tuple[str, CallRecord]]``: the
  calls of ``name`` that other files recorded (file key, record), limited to the
  files ``ctx.file`` may borrow from.
- ``ModuleCalls`` (a ``@family_fact``): one file's calls of names it imports from
  modules that are not the standard library's or a known framework's, by called
  name; each a ``CallRecord``: ``name``, ``target`` (the qualified name as the
  calling file's imports resolve it: ``engine.train``), ``line``, ``positional``
  and ``keywords`` (``Passed``: the literal value when the file alone knows it,
  the dotted text of the argument), ``starred`` (a ``*args``), ``unpacked``
  (``**`` dicts: their literal keys), ``unpacked_unread`` (a ``**`` dict whose
  keys the file does not show).
"""

from __future__ import annotations

import ast
import builtins
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from losslint.analysis.names import ImportTable, dotted
from losslint.analysis.walk import tree_index
from losslint.project import UNKNOWN, ModuleFacts, collector, family_fact, file_key, literal_value

if TYPE_CHECKING:
    from losslint.context import FileContext

Function = ast.FunctionDef | ast.AsyncFunctionDef

# Calls of these packages' names are never a project function's: not recorded.
_LIBRARIES = frozenset(sys.stdlib_module_names) | {
    "torch", "torchvision", "torchaudio", "torchtext", "tensorflow", "tf", "keras", "tf_keras", "numpy", "np",
    "jax", "jaxlib", "optax", "flax", "haiku", "sklearn", "scipy", "pandas", "pd", "matplotlib", "plt", "PIL",
    "cv2", "transformers", "datasets", "accelerate", "lightning", "pytorch_lightning", "timm", "tqdm", "wandb",
    "tensorboard", "tensorboardX", "deepspeed", "apex", "horovod", "yaml", "omegaconf", "hydra", "einops",
    "seaborn", "h5py", "peft", "trl", "absl", "six",
}


@family_fact  # (held inside ModuleCalls: registered so the cache may rebuild it)
@dataclass(slots=True)  # (one per argument of every recorded call: a project holds many)
class Passed:
    """What another file's call passes for one argument: its literal value when that
    file alone knows it (``known``), and its dotted text (``args.clip_max_norm``;
    "" for anything else)."""

    value: int | float | bool | str | None = None
    known: bool = False
    text: str = ""


@family_fact  # (held inside ModuleCalls)
@dataclass(slots=True)
class CallRecord:
    """One call, in the file that makes it, of a name that file imports."""

    name: str  # the called name: ``train`` of ``engine.train(...)``
    target: str  # the qualified name the caller's imports give it: ``engine.train``
    line: int
    positional: tuple[Passed, ...] = ()
    keywords: dict[str, Passed] = field(default_factory=dict)
    starred: bool = False  # a ``*args`` among the positional arguments
    unpacked: tuple[str, ...] = ()  # the literal keys of its ``**`` dicts
    unpacked_unread: bool = False  # a ``**`` dict whose keys cannot be read


@family_fact
@dataclass
class ModuleCalls:
    """A file's calls of imported names, by called name (see ``CallRecord``)."""

    calls: dict[str, list[CallRecord]] = field(default_factory=dict)


@dataclass
class Bound:
    """One call's arguments bound to a function's parameters."""

    arguments: dict[str, ast.expr] = field(default_factory=dict)  # parameter -> the expression passed
    defaulted: set[str] = field(default_factory=set)  # parameters left to their default
    opaque: bool = False  # a ``*args``/``**kwargs`` that may bind the parameters not in ``arguments``
    extra_keywords: dict[str, ast.expr] = field(default_factory=dict)  # keywords a ``**kwargs`` takes
    extra_positional: list[ast.expr] = field(default_factory=list)  # positionals a ``*args`` takes


@dataclass
class CallSite:
    """One call of a function: in this file (``call``, ``arguments``) or in another
    (``record``, ``passed``)."""

    path: str
    line: int
    call: ast.Call | None = None
    record: CallRecord | None = None
    arguments: dict[str, ast.expr] = field(default_factory=dict)
    passed: dict[str, Passed] = field(default_factory=dict)
    defaulted: set[str] = field(default_factory=set)
    opaque: bool = False
    extra_keywords: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.call is not None

    def gives(self, parameter: str) -> bool | None:
        """Does the call pass ``parameter`` (True), leave it to its default (False),
        or may a ``*args``/``**kwargs`` pass it (None)?"""
        if parameter in self.arguments or parameter in self.passed:
            return True
        if parameter in self.defaulted:
            return False
        return None if self.opaque else False


# -- binding -------------------------------------------------------------------------


def _parameters(function: Function) -> tuple[list[str], list[str], str | None, str | None, set[str]]:
    """(positional names, keyword-only names, *args name, **kwargs name, those with defaults)."""
    args = function.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    keyword_only = [a.arg for a in args.kwonlyargs]
    with_default = set(positional[len(positional) - len(args.defaults):]) if args.defaults else set()
    with_default |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
    return (
        positional,
        keyword_only,
        args.vararg.arg if args.vararg else None,
        args.kwarg.arg if args.kwarg else None,
        with_default,
    )


def skips_first(function: Function, method_call: bool) -> bool:
    """Is the first parameter (``self``/``cls``) bound by the call itself (``x.f(...)``,
    ``Cls(...)`` for ``__init__``) rather than written at the call site?"""
    positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    if not positional or positional[0] not in ("self", "cls"):
        return False
    return method_call or function.name == "__init__"


def bind(function: Function, call: ast.Call, method_call: bool) -> Bound:
    """``call``'s arguments bound to ``function``'s parameters, as Python would.
    ``method_call``: the call is ``x.f(...)`` (or ``Cls(...)`` of ``__init__``), so the
    first parameter is bound already."""
    positional, keyword_only, vararg, kwarg, with_default = _parameters(function)
    if skips_first(function, method_call):
        positional = positional[1:]
    bound = Bound()
    index = 0
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            bound.opaque = True  # every positional from here on is unknown
            break
        if index < len(positional):
            bound.arguments[positional[index]] = arg
        elif vararg is not None:
            bound.extra_positional.append(arg)
        index += 1
    for kw in call.keywords:
        if kw.arg is None:
            bound.opaque = True
        elif kw.arg in positional or kw.arg in keyword_only:
            bound.arguments[kw.arg] = kw.value
        elif kwarg is not None:
            bound.extra_keywords[kw.arg] = kw.value
    if not bound.opaque:
        bound.defaulted = {p for p in (*positional, *keyword_only) if p not in bound.arguments and p in with_default}
    return bound


def _bind_record(function: Function, record: CallRecord, method_call: bool) -> CallSite:
    positional, keyword_only, _, kwarg, with_default = _parameters(function)
    if skips_first(function, method_call):
        positional = positional[1:]
    site = CallSite(path="", line=record.line, record=record)
    for name, passed in zip(positional, record.positional):
        site.passed[name] = passed
    for name, passed in record.keywords.items():
        if name in positional or name in keyword_only:
            site.passed[name] = passed
        elif kwarg is not None:
            site.extra_keywords[name] = passed
    site.opaque = record.starred or record.unpacked_unread
    for key in record.unpacked:  # ``**{"lr": 0.1}``: those keys are passed, values unread
        if key in positional or key in keyword_only:
            site.passed.setdefault(key, Passed())
    if not site.opaque:
        site.defaulted = {p for p in (*positional, *keyword_only) if p not in site.passed and p in with_default}
    return site


# -- this file's calls ----------------------------------------------------------------


def calls_named(ctx: "FileContext", name: str, attribute: bool | None = None) -> list[ast.Call]:
    """This file's calls of ``name``: ``name(...)`` (attribute False), ``x.name(...)``
    (True), or both (None). Indexed once per file."""
    index = ctx.memo.get("calls.by_name")
    if index is None:
        index = {}
        for call in ctx.nodes_of(ast.Call):
            func = call.func
            if isinstance(func, ast.Name):
                index.setdefault((func.id, False), []).append(call)
            elif isinstance(func, ast.Attribute):
                index.setdefault((func.attr, True), []).append(call)
        ctx.memo["calls.by_name"] = index
    if attribute is None:
        found = index.get((name, False), []) + index.get((name, True), [])
        return sorted(found, key=lambda c: (c.lineno, c.col_offset))
    return list(index.get((name, attribute), []))


def _owner_class(ctx: "FileContext", function: Function) -> ast.ClassDef | None:
    parent = ctx.parents.get(function)
    return parent if isinstance(parent, ast.ClassDef) else None


def call_sites(ctx: "FileContext", function: Function, across_files: bool = True) -> list[CallSite]:
    """Every call of ``function`` that the project shows (see the module's docs).
    Calls made inside ``function`` itself (recursion) are left out."""
    key = ("calls.sites", id(function), across_files)
    cached = ctx.memo.get(key)
    if cached is not None:
        return cached
    here = ctx.file or ""
    sites: list[CallSite] = []
    cls = _owner_class(ctx, function)
    if cls is not None and function.name == "__init__":
        candidates = [(c, True) for c in calls_named(ctx, cls.name, False)]
        name = cls.name
    elif cls is not None:
        candidates = [(c, True) for c in calls_named(ctx, function.name, True)]
        name = ""  # a method: only this file's calls are followed
    else:
        candidates = [(c, False) for c in calls_named(ctx, function.name, False)]
        name = function.name
    for call, method_call in candidates:
        if ctx.enclosing(call, ast.FunctionDef, ast.AsyncFunctionDef) is function:
            continue
        bound = bind(function, call, method_call)
        sites.append(
            CallSite(here, call.lineno, call, None, bound.arguments, {}, bound.defaulted, bound.opaque, dict(bound.extra_keywords))
        )
    top_level = cls is None and ctx.parents.get(function) is ctx.tree or cls is not None and ctx.parents.get(cls) is ctx.tree
    if across_files and name and top_level and here:
        for path, record in project_calls(ctx, name):
            if path == file_key(here) or not _reaches(ctx, path, record.target):
                continue
            site = _bind_record(function, record, method_call=cls is not None)
            site.path = path
            sites.append(site)
    ctx.memo[key] = sites
    return sites


def _reaches(ctx: "FileContext", caller: str, target: str) -> bool:
    """Does ``target`` (``engine.train``), as the file ``caller`` imports it, name
    something of ``ctx``'s file?"""
    owner, _, name = target.rpartition(".")
    if not owner:
        return False
    here = file_key(ctx.file)
    resolved = ctx.project.resolve(owner, caller)
    if resolved is None:
        # a module the run does not hold by that name: its last part must name this file
        return owner.rpartition(".")[2] == ctx.module.rpartition(".")[2]
    if resolved == here:
        return True
    # a re-export: ``from utils import train`` where utils/__init__.py does
    # ``from .train_utils import train``
    facts = ctx.project.modules.get(resolved)
    return facts is not None and any(
        imported.rpartition(".")[2] == name and ctx.project.resolve(imported.rpartition(".")[0], resolved) == here
        for imported in facts.imports
    )


def project_calls(ctx: "FileContext", name: str) -> list[tuple[str, CallRecord]]:
    """The calls of ``name`` recorded by the files ``ctx.file`` may borrow from."""
    return [
        (path, record)
        for path, calls in ctx.project.each(ModuleCalls, scope=ctx.file or None)
        for record in calls.calls.get(name, ())
    ]


# -- the project-wide facts ----------------------------------------------------------------


def _passed(node: ast.expr, constants: dict[str, Any]) -> Passed:
    value = literal_value(node, constants)
    text = dotted(node) or ""
    if value is UNKNOWN:
        return Passed(None, False, text)
    return Passed(value, True, text)


def _unpacked_keys(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[str] | None:
    """The keys of a ``**`` argument: a dict literal, ``dict(a=...)``, or a name the
    module assigns once from one. None when they cannot be read."""
    if isinstance(node, ast.Name) and len(assigned.get(node.id, ())) == 1:
        node = assigned[node.id][0]
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        return [k.value for k in node.keys]  # type: ignore[union-attr]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if all(kw.arg is not None for kw in node.keywords):
            return [kw.arg for kw in node.keywords]  # type: ignore[misc]
    return None


def record_call(call: ast.Call, name: str, target: str, constants: dict[str, Any], assigned: dict[str, list[ast.expr]]) -> CallRecord:
    record = CallRecord(name, target, call.lineno)
    positional = []  # (the record keeps tuples: a project holds a record per call)
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            record.starred = True
            break
        positional.append(_passed(arg, constants))
    unpacked: list[str] = []
    for kw in call.keywords:
        if kw.arg is not None:
            record.keywords[kw.arg] = _passed(kw.value, constants)
            continue
        keys = _unpacked_keys(kw.value, assigned)
        if keys is None:
            record.unpacked_unread = True
        else:
            unpacked.extend(k for k in keys if k not in unpacked)
    record.positional, record.unpacked = tuple(positional), tuple(unpacked)
    return record


@collector
def _collect_calls(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Calls of names imported from other modules (``train(model, optimizer)`` after
    ``from engine import train``; ``engine.train(...)``; ``Trainer(...)``)."""
    imports = ImportTable(tree, facts.module)
    imported = {
        alias: qual for alias, qual in imports.aliases.items() if qual.partition(".")[0] not in _LIBRARIES
    }
    star = [m for m in imports.star_modules if m.partition(".")[0] not in _LIBRARIES]
    if not imported and not star:
        return
    # a plain name under ``from utils import *`` is the star module's when it is
    # neither a builtin nor defined here
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    calls: dict[str, list[CallRecord]] = {}
    assigned: dict[str, list[ast.expr]] = {}
    pending: list[tuple[ast.Call, str, str]] = []
    for node in tree_index(tree)[0]:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
            continue
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        text = dotted(func)
        if text is None:
            continue
        head, _, rest = text.partition(".")
        if head in imported:
            qual = f"{imported[head]}.{rest}" if rest else imported[head]
        elif len(star) == 1 and not rest and head not in own and head not in assigned and not hasattr(builtins, head):
            qual = f"{star[0]}.{head}"
        else:
            continue
        if "." not in qual:
            continue
        pending.append((node, qual.rpartition(".")[2], qual))
    for call, name, qual in pending:
        calls.setdefault(name, []).append(record_call(call, name, qual, facts.constants, assigned))
    if calls:
        facts.put(ModuleCalls(calls))
