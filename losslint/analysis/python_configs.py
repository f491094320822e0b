"""Python config systems: OpenMMLab's (mmengine / mmcv) config files, and their
``_base_`` inheritance merged as mmengine merges it (docs/semantics.md §5).

A config file is a Python module of top-level assignments that mmengine executes
and reads as a dict: ``optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
type='SGD', momentum=0.9), clip_grad=None)``. The collector below records, for
every file that looks like one, its ``_base_`` list and the values of the keys
that decide training (``TRACKED``) with their positions, as plain data
(``PythonConfig``), so that a leaf config is judged with its bases in other files.

``effective`` merges a config onto its bases, recursively, as
``mmengine.Config._merge_a_into_b`` does: bases in order (a key defined by two
bases is an error), then the child's keys over them; a dict merges into the base's
dict key by key, unless it carries ``_delete_=True``, which replaces it; anything
else replaces. A dict over a base value that is not a dict is mmengine's TypeError:
the config does not load, nothing is judged. ``_base_`` paths are relative to the
config's folder; a base outside the run (another package's ``mmdet::`` path, a file
not linted) leaves the config unknown, never guessed.

Not followed: mmengine's "pure Python" configs (``with read_base(): from ... import
*``), values taken from a base with ``{{_base_.x}}`` or ``_base_.x``, and keys
changed after their assignment (``optim_wrapper.update(...)``): those keys are
unknown.
"""

from __future__ import annotations

import ast
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

from losslint.project import ModuleFacts, ProjectFacts, collector, family_fact, file_key

# The top-level keys that decide the LL3xx risk: mmengine's optimizer wrapper, and
# mmcv 1.x's optimizer with its OptimizerHook settings.
TRACKED = ("optim_wrapper", "optimizer", "optimizer_config")
DELETE = "_delete_"


@family_fact
@dataclass(frozen=True)
class ConfigValue:
    """A value in a Python config as written: a literal (``value``: a number,
    string, bool, None, or a tuple of them), a dict (``items``, from ``dict(...)``
    or ``{...}``; ``closed`` False when ``**other`` may add keys), or a value not
    known statically (``known`` False). ``span``: the value's position (ast's
    1-based lines and UTF-8 byte columns); ``key_span``: from its keyword or key to
    the value's end, where it is one."""

    known: bool = True
    value: Any = None
    items: dict[str, "ConfigValue"] | None = None
    is_call: bool = False  # dict(...), which a fix can extend keyword by keyword
    closed: bool = True
    delete: bool = False  # _delete_=True: replaces the base's value instead of merging
    span: tuple[int, int, int, int] = (0, 0, 0, 0)
    key_span: tuple[int, int, int, int] | None = None

    @property
    def is_dict(self) -> bool:
        return self.items is not None


@family_fact
@dataclass(frozen=True)
class PythonConfig:
    """One OpenMMLab-style config file: its ``_base_`` files as written, where that
    assignment is, and the tracked keys' values (a key changed after its
    assignment is recorded as unknown)."""

    bases: tuple[str, ...] = ()
    base_span: tuple[int, int, int, int] | None = None
    values: dict[str, ConfigValue] = field(default_factory=dict)
    defines_model: bool = False  # a top-level ``model = ...``: what a runnable config needs


def _span(node: ast.AST) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)  # type: ignore[attr-defined]


def _node(expr: ast.expr, names: dict[str, ConfigValue], key_span: tuple[int, int, int, int] | None = None) -> ConfigValue:
    """The config value an expression writes, with the file's earlier top-level
    names (``optimizer=optimizer``, ``lr=base_lr``) substituted."""
    span = _span(expr)
    if isinstance(expr, ast.Constant) and (expr.value is None or isinstance(expr.value, (bool, int, float, str))):
        return ConfigValue(value=expr.value, span=span, key_span=key_span)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant):
        if isinstance(expr.operand.value, (int, float)) and not isinstance(expr.operand.value, bool):
            return ConfigValue(value=-expr.operand.value, span=span, key_span=key_span)
    if isinstance(expr, (ast.Tuple, ast.List)):
        parts = [_node(e, names) for e in expr.elts]
        if all(p.known and not p.is_dict for p in parts):
            return ConfigValue(value=tuple(p.value for p in parts), span=span, key_span=key_span)
        return ConfigValue(known=False, span=span, key_span=key_span)
    if isinstance(expr, ast.Name) and expr.id in names:
        found = names[expr.id]
        return ConfigValue(found.known, found.value, found.items, found.is_call, found.closed, found.delete, span, key_span)
    items: dict[str, ConfigValue] = {}
    closed = True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict" and not expr.args:
        for kw in expr.keywords:
            if kw.arg is None:
                closed = False
            else:
                items[kw.arg] = _node(kw.value, names, (kw.lineno, kw.col_offset, *_span(kw.value)[2:]))
        is_call = True
    elif isinstance(expr, ast.Dict):
        for key, value in zip(expr.keys, expr.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                items[key.value] = _node(value, names, (key.lineno, key.col_offset, *_span(value)[2:]))
            else:
                closed = False
        is_call = False
    else:
        return ConfigValue(known=False, span=span, key_span=key_span)
    delete = items.pop(DELETE, None)
    return ConfigValue(
        items=items, is_call=is_call, closed=closed, delete=bool(delete is not None and delete.value is True),
        span=span, key_span=key_span,
    )


def _base_paths(expr: ast.expr) -> tuple[str, ...] | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return (expr.value,)
    if isinstance(expr, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in expr.elts):
        return tuple(e.value for e in expr.elts)  # type: ignore[attr-defined]
    return None


def _changed_names(stmt: ast.stmt) -> set[str]:
    """Top-level names a statement changes in place: ``x.update(...)``, ``x['k'] = ...``,
    ``x.k.j = ...``, ``del x['k']``."""
    changed = set()
    for node in ast.walk(stmt):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            target = node.value
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            target = target.value
        if isinstance(target, ast.Name):
            changed.add(target.id)
    return changed


def read_config(tree: ast.Module) -> PythonConfig | None:
    """The config a module writes, if it looks like an OpenMMLab config: a ``_base_``
    list or string, or a top-level name assigned a dict or a list, in a module that defines no
    function or class (a training script that keeps an ``optimizer = dict(...)`` is
    not a config)."""
    names: dict[str, ConfigValue] = {}
    values: dict[str, ConfigValue] = {}
    bases: tuple[str, ...] = ()
    base_span = None
    containers = False  # a top-level dict or list: what every config file, a base of lists too, writes
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return None
        if isinstance(stmt, ast.With) and any("read_base" in ast.dump(item.context_expr) for item in stmt.items):
            return None  # mmengine's pure-Python configs: inheritance through imports (not followed)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name == "_base_":
                paths = _base_paths(stmt.value)
                if paths is None:
                    return None
                bases, base_span = paths, _span(stmt)
                continue
            names[name] = _node(stmt.value, names)
            containers = containers or names[name].is_dict or isinstance(stmt.value, (ast.List, ast.Tuple))
            if name in TRACKED:
                values[name] = names[name]
            continue
        for name in _changed_names(stmt) & set(values):
            values[name] = ConfigValue(known=False, span=values[name].span)
    if not bases and not containers:
        return None  # (a base config without tracked keys is still one: its leaves must find it)
    return PythonConfig(bases, base_span, values, "model" in names)


@collector
def _collect_python_config(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if "dict(" not in source and "_base_" not in source:
        return
    config = read_config(tree)
    if config is not None:
        facts.put(config)


# -- merging -----------------------------------------------------------------------


@dataclass
class Setting:
    """A value of the merged config and the file that set it (``path``, a project
    key); a dict's ``items`` merged from every layer, its ``layers`` the dicts
    written for it, base first (``closed`` False when a layer may add unknown keys)."""

    node: ConfigValue
    path: str
    items: dict[str, "Setting"] | None = None
    layers: list[tuple[str, ConfigValue]] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return all(node.closed for _, node in self.layers)

    def literal(self, key: str, missing: object = None) -> object:
        """The literal value of a key of this dict (``missing`` when absent; the
        ``unknown`` marker when not known statically)."""
        if self.items is None or key not in self.items:
            return missing if self.closed else UNKNOWN_VALUE
        found = self.items[key]
        return found.node.value if found.node.known and found.items is None else UNKNOWN_VALUE


UNKNOWN_VALUE = object()


class MergeError(Exception):
    """The config would not load (mmengine raises), or is not known."""


def _setting(node: ConfigValue, path: str) -> Setting:
    if not node.is_dict:
        return Setting(node, path)
    return Setting(node, path, {k: _setting(v, path) for k, v in (node.items or {}).items()}, [(path, node)])


def merge(child: dict[str, ConfigValue], path: str, base: dict[str, Setting]) -> dict[str, Setting]:
    """``mmengine.Config._merge_a_into_b(child, base)`` with provenance."""
    merged = dict(base)
    for key, node in child.items():
        below = merged.get(key)
        if node.is_dict and below is not None and not node.delete:
            if below.items is None:
                raise MergeError(f"{key} is a dict over a base value that is not one")
            inner = merge(node.items or {}, path, below.items)
            merged[key] = Setting(node, path, inner, [*below.layers, (path, node)])
        else:
            merged[key] = _setting(node, path)
    return merged


def base_key(config_key: str, base: str) -> str | None:
    """The project key of a ``_base_`` entry: relative to the config's folder (None
    for a package path such as ``mmdet::_base_/x.py``)."""
    if "::" in base:
        return None
    return file_key(os.path.join(os.path.dirname(config_key), base))


_LAST: tuple | None = None  # (a weak reference to the project, its fingerprint, its Configs)


class Configs:
    """The project's Python configs: which are leaves, and each one merged onto its
    bases (computed once per project and kept on it)."""

    def __init__(self, project: ProjectFacts) -> None:
        self.configs: dict[str, PythonConfig] = {
            key: config for key, facts in project.modules.items() if (config := facts.get(PythonConfig)) is not None
        }
        self.inherited: set[str] = set()
        for key, config in self.configs.items():
            for base in config.bases:
                found = base_key(key, base)
                if found is not None:
                    self.inherited.add(found)
        self._merged: dict[str, dict[str, Setting] | None] = {}
        self.memo: dict = {}  # what a rule works out once for every config of the run

    @staticmethod
    def of(project: ProjectFacts, key: str) -> "Configs":
        """The configs of this project, worked out once per project (and again when
        the facts of the file asking have changed: a file being fixed)."""
        global _LAST
        own = project.modules.get(key)
        fact = own.get(PythonConfig) if own is not None else None
        fingerprint = (id(project.modules), len(project.modules))
        if _LAST is not None and _LAST[0]() is project and _LAST[1] == fingerprint and _LAST[2].configs.get(key) is fact:
            return _LAST[2]
        found = Configs(project)
        _LAST = (weakref.ref(project), fingerprint, found)
        return found

    def is_leaf(self, key: str) -> bool:
        """A config that is run: not in a ``_base_`` folder, and either inherited by
        no config of the run or a whole config itself (it has a ``model``, which every
        OpenMMLab runner needs: mmdetection's ``faster-rcnn_r50_fpn_1x_coco.py`` is
        run and inherited alike; ``common/ms_3x_coco.py``, a schedule without a
        model, is only inherited)."""
        parts = os.path.normpath(key).split(os.sep)
        if key not in self.configs or "_base_" in parts[:-1]:
            return False
        return key not in self.inherited or self._has_model(key, ())

    def _has_model(self, key: str, stack: tuple[str, ...]) -> bool:
        config = self.configs.get(key)
        if config is None or key in stack or len(stack) > 32:
            return False
        if config.defines_model:
            return True
        return any(
            found is not None and self._has_model(found, (*stack, key)) for found in (base_key(key, b) for b in config.bases)
        )

    def effective(self, key: str, _stack: tuple[str, ...] = ()) -> dict[str, Setting] | None:
        """A config's tracked keys as mmengine would load them; None when a base is
        missing or the merge fails."""
        if key in self._merged:
            return self._merged[key]
        if key in _stack or len(_stack) > 32:
            return None
        config = self.configs.get(key)
        result: dict[str, Setting] | None = None
        if config is not None:
            self._merged[key] = None  # (a cycle reads None)
            base = self._bases(key, config, (*_stack, key))
            if base is not None:
                try:
                    result = merge(config.values, key, base)
                except MergeError:
                    result = None
        self._merged[key] = result
        return result

    def _bases(self, key: str, config: PythonConfig, stack: tuple[str, ...]) -> dict[str, Setting] | None:
        merged: dict[str, Setting] = {}
        for base in config.bases:
            found = base_key(key, base)
            layer = self.effective(found, stack) if found is not None else None
            if layer is None:
                return None
            if set(layer) & set(merged):
                return None
            merged.update(layer)
        return merged

    def leaves(self) -> list[str]:
        return sorted(key for key in self.configs if self.is_leaf(key))
