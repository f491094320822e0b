"""Static values: what number a batch size, a dataset size or a momentum has.

Resolves literals, arithmetic, local and module assignments, function parameter
defaults, imported constants, argparse defaults (``args.batch_size``), config and
dataclass defaults (``cfg.batch_size``), ``self.x`` set once in a class, and
``len(...)`` of things whose size is known (``losslint.analysis.sizes``). Never
imports or runs the analysed code. A value that cannot be known is ``UNKNOWN``;
ambiguity (two different assignments) is unknown too, never a guess.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from losslint.analysis.calls import Passed, call_sites
from losslint.analysis.scopes import Binding, scopes_of
from losslint.project import UNKNOWN, Literal, ModuleFacts, arithmetic

if TYPE_CHECKING:
    from losslint.analysis.configs import ConfigRef
    from losslint.context import FileContext

_MAX_DEPTH = 25


class ValueResolver:
    """Names are read through the file's scope model (``analysis/scopes.py``); a
    parameter's value comes from the call sites when the file calls its function."""

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self.scopes = scopes_of(ctx)

    # -- public API ------------------------------------------------------------
    def value(self, node: ast.expr | None, depth: int = 0) -> Literal:
        if node is None or depth > _MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand, depth + 1)
            if isinstance(node.op, ast.USub) and isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand
            if isinstance(node.op, ast.Not) and isinstance(operand, bool):
                return not operand
            return operand if isinstance(node.op, ast.UAdd) else UNKNOWN
        if isinstance(node, ast.BinOp):
            return arithmetic(node.op, self.value(node.left, depth + 1), self.value(node.right, depth + 1))
        if isinstance(node, ast.Name):
            return self._name_value(node, depth)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            config = self.config_entry(node)
            if config is not None:  # a key of a config file the code reads (cfg.data.batch_size)
                return config.scalar()
        if isinstance(node, ast.Attribute):
            return self._attribute_value(node, depth)
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                local = self._dict_literal_entry(node.value, key.value, depth)
                if local is not None:
                    return self.value(local, depth + 1) if isinstance(local, ast.expr) else UNKNOWN
                return self.ctx.project.config_default(key.value, self._scope)
            return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call_value(node, depth)
        if isinstance(node, ast.IfExp):
            a, b = self.value(node.body, depth + 1), self.value(node.orelse, depth + 1)
            return a if a == b else UNKNOWN
        return UNKNOWN

    def int_value(self, node: ast.expr | None) -> int | None:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        return value

    def number(self, node: ast.expr | None) -> float | None:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def config_entry(self, node: ast.expr) -> "ConfigRef | None":
        """The place in a config file ``node`` stands for (``cfg.trainer`` after
        ``cfg = OmegaConf.load("conf/train.yaml")``, ``cfg["data"]["batch_size"]``),
        or None when it reads no config (analysis/configs.py)."""
        from losslint.analysis import configs

        if not configs.has_reads(self.ctx):
            return None
        return configs.config_ref(self.ctx, node, lambda name: self.bindings(name.id, name) or [])

    def bindings(self, name: str, at: ast.AST) -> list[Binding] | None:
        """Bindings of ``name`` visible from ``at``: those of the innermost scope that
        binds it. None when no scope of this file binds it."""
        return self.scopes.visible(name, at)

    def resolve_name(self, node: ast.Name) -> ast.expr | None:
        """The single expression a name was assigned from (not unpacked), if any."""
        bindings = self.bindings(node.id, node)
        if bindings and len(bindings) == 1 and not bindings[0].path:
            return bindings[0].value
        return None

    def binding_before(self, node: ast.Name) -> Binding | None:
        """The binding of ``node.id`` that ``node`` sees in straight-line order
        (``Scopes.before``); None when that cannot be told. Callers then fall back
        to the flow-insensitive ``bindings``."""
        return self.scopes.before(node.id, node)

    # -- names -----------------------------------------------------------------
    def _name_value(self, node: ast.Name, depth: int) -> Literal:
        bindings = self.bindings(node.id, node)
        if bindings is None:
            qual = self.ctx.imports.aliases.get(node.id)
            if qual and "." in qual:
                module, _, name = qual.rpartition(".")
                return self.ctx.project.constant(module, name, self._scope)
            return UNKNOWN
        values = set()
        for binding in bindings:
            value = self._binding_value(binding, depth)
            if value is UNKNOWN:
                return UNKNOWN
            values.add((type(value), value))
        if len(values) == 1:
            return next(iter(values))[1]
        return UNKNOWN

    def _binding_value(self, binding: Binding, depth: int) -> Literal:
        if binding.parameter is not None and isinstance(binding.scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self._parameter_value(binding, depth)
        if binding.value is None:
            return UNKNOWN
        value: ast.expr = binding.value
        for index in binding.path:
            if not (isinstance(value, (ast.Tuple, ast.List)) and index < len(value.elts)):
                return UNKNOWN
            value = value.elts[index]
        return self.value(value, depth + 1)

    def _parameter_value(self, binding: Binding, depth: int) -> Literal:
        """A parameter's value: what every call of the function passes, in this file
        and in the other files within its reach (the default where a call leaves it
        out); the default only when no call is seen. Unknown when any call passes
        something unknown or two calls disagree. ``get_loaders(args.batch_size)``
        makes ``batch_size`` known; ``Sampler(ds, batch_size=cfg.bs)`` in another
        file makes a ``batch_size=1`` default unknown, not 1."""
        function = binding.scope
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and binding.parameter is not None
        _, name = binding.parameter
        values = set()
        for site in call_sites(self.ctx, function):
            gives = site.gives(name)
            if gives is None:
                return UNKNOWN  # a *args or **kwargs may pass it
            if not gives:
                value = self.value(binding.value, depth + 1) if binding.value is not None else UNKNOWN
            elif site.local:
                value = self.value(site.arguments[name], depth + 1)
            else:
                value = self._passed_elsewhere(site.path, site.passed[name])
            if value is UNKNOWN:
                return UNKNOWN
            values.add((type(value), value))
            if len(values) > 1:
                return UNKNOWN
        if values:
            return next(iter(values))[1]
        return self.value(binding.value, depth + 1) if binding.value is not None else UNKNOWN

    def _passed_elsewhere(self, path: str, passed: Passed) -> Literal:
        """What another file's call passes: the literal that file alone knows, or
        ``opt.quad`` / ``args.batch_size`` read from that file's own argparse
        defaults (yolov5's ``create_dataloader(..., quad=opt.quad)``)."""
        if passed.known:
            return passed.value
        head, _, attr = passed.text.partition(".")
        if head and attr and "." not in attr:
            facts = self.ctx.project.own(path)
            if facts is not None and attr in facts.argparse_defaults:
                return facts.argparse_defaults[attr]
        return UNKNOWN

    def _dict_literal_entry(self, base: ast.expr, key: str, depth: int) -> ast.expr | object | None:
        """``config["batch_size"]`` where ``config`` is a dict literal of this file (also
        a parameter every call in this file passes one): the entry's expression, or
        UNKNOWN when the dict lacks the key or the calls disagree. None when ``base``
        is no such dict (the project's config defaults decide then)."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(base, ast.Dict):
            for k, v in zip(base.keys, base.values):
                if isinstance(k, ast.Constant) and k.value == key:
                    return v
            return UNKNOWN if all(k is not None for k in base.keys) else None
        if not isinstance(base, ast.Name):
            return None
        bindings = self.bindings(base.id, base)
        if not bindings or len(bindings) != 1 or bindings[0].path:
            return None
        binding = bindings[0]
        if binding.parameter is None:
            return self._dict_literal_entry(binding.value, key, depth + 1) if binding.value is not None else None
        function = binding.scope
        _, name = binding.parameter
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or isinstance(self.ctx.parents.get(function), ast.ClassDef):
            return None
        entries = []
        for site in call_sites(self.ctx, function, across_files=False):
            passed = site.arguments.get(name)
            if passed is None and site.gives(name) is None:
                return None
            entry = self._dict_literal_entry(passed, key, depth + 1) if passed is not None else None
            if entry is None:
                return None
            entries.append(entry)
        if not entries:
            return None
        if any(e is UNKNOWN for e in entries) or len({ast.dump(e) for e in entries}) != 1:  # type: ignore[arg-type]
            return UNKNOWN
        return entries[0]

    # -- attributes, subscripts, calls ----------------------------------------
    def _attribute_value(self, node: ast.Attribute, depth: int) -> Literal:
        base = node.value
        if isinstance(base, ast.Name) and base.id == "self":
            value = self._self_attribute_value(node, depth)
            if value is not UNKNOWN or self._class_assigns(node):
                # the class's own ``self.batch_size = batch_size`` decides: a parameter
                # its callers pass unknowns to is unknown, not a parser default of that name
                return value
        qual = self.ctx.qualname(node)
        if qual and "." in qual and isinstance(base, ast.Name) and base.id in self.ctx.imports.aliases:
            module, _, name = qual.rpartition(".")
            value = self.ctx.project.constant(module, name, self._scope)
            if value is not UNKNOWN:
                return value
        # args.batch_size, opt.bs, cfg.train.batch_size, self.hparams.batch_size:
        # this module's parser first, then those of the modules it imports, then a
        # default that every file within its reach agrees on (ProjectFacts.related).
        for facts in self._nearby_modules():
            if node.attr in facts.argparse_defaults:
                return facts.argparse_defaults[node.attr]
        value = self.ctx.project.argparse_default(node.attr, self._scope)
        if value is UNKNOWN:
            value = self.ctx.project.config_default(node.attr, self._scope)
        return value

    @property
    def _scope(self) -> str | None:
        return self.ctx.file or None

    def _nearby_modules(self) -> list[ModuleFacts]:
        """This module's facts, then those of the project modules it imports."""
        project = self.ctx.project
        own = project.own(self.ctx.file) if self.ctx.file else project.modules.get(self.ctx.module)
        found = [own] if own is not None else []
        for target in self.ctx.imports.aliases.values():
            for candidate in (target, target.rpartition(".")[0]):
                facts = project.imported(candidate, self._scope)
                if facts is not None and all(facts is not f for f in found):
                    found.append(facts)
        return found

    def _class_assigns(self, node: ast.Attribute) -> bool:
        cls = self.ctx.enclosing(node, ast.ClassDef)
        return cls is not None and bool(self.scopes.self_assignments(cls, node.attr))

    def _self_attribute_value(self, node: ast.Attribute, depth: int) -> Literal:
        cls = self.ctx.enclosing(node, ast.ClassDef)
        if cls is None:
            return UNKNOWN
        assigned = [sub.value for sub in self.scopes.self_assignments(cls, node.attr)]
        assigned += [  # a class-level default: ``batch_size: int = 32``
            sub.value
            for sub in cls.body
            if isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.target.id == node.attr and sub.value is not None
        ]
        if len(assigned) != 1:
            return UNKNOWN
        return self.value(assigned[0], depth + 1)

    def _call_value(self, node: ast.Call, depth: int) -> Literal:
        name = self.ctx.qualname(node.func) or ""
        args = [self.value(a, depth + 1) for a in node.args] if not node.keywords else None
        if name in ("int", "float") and args and len(args) == 1 and isinstance(args[0], (int, float)):
            return int(args[0]) if name == "int" else float(args[0])
        if name in ("min", "max") and args and all(isinstance(a, (int, float)) for a in args) and len(args) > 1:
            return min(args) if name == "min" else max(args)
        if name in ("math.ceil", "math.floor") and args and len(args) == 1 and isinstance(args[0], (int, float)):
            import math

            return math.ceil(args[0]) if name == "math.ceil" else math.floor(args[0])
        if name == "len" and len(node.args) == 1:
            from losslint.analysis.sizes import length

            size = length(self.ctx, node.args[0], depth + 1)
            return size if size is not None else UNKNOWN
        return UNKNOWN
