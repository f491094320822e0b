"""Static values: what number a batch size, a dataset size or a momentum has.

The literal layer over ``analysis/origins.py`` (which follows names, ``self.x``,
dict entries and ``**kwargs``, tuple elements, helpers' returns and parameters
back to the expressions they may hold): it evaluates each origin (literals,
arithmetic, ``int``/``min``/``max``/``math.ceil``, imported constants, argparse
defaults (``args.batch_size``), config and dataclass defaults
(``cfg.batch_size``), keys of the config files the code reads, another file's
call passing a literal or its own ``args.x``, and ``len(...)`` of things whose
size is known: ``losslint.analysis.sizes``) and keeps the value they all agree
on. Never imports or runs the analysed code. A value that cannot be known is
``UNKNOWN``; ambiguity (two origins with different values) is unknown too, never
a guess.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from losslint.analysis.calls import Passed
from losslint.analysis.origins import Origin, Origins, origins_of
from losslint.analysis.scopes import Binding, scopes_of
from losslint.project import UNKNOWN, Literal, ModuleFacts, arithmetic

if TYPE_CHECKING:
    from losslint.analysis.configs import ConfigRef
    from losslint.context import FileContext

_MAX_DEPTH = 25


class ValueResolver:
    """The literal layer over the origin-following core (``analysis/origins.py``):
    an expression's value is the one value every origin of it evaluates to."""

    def __init__(self, ctx: "FileContext") -> None:
        self.ctx = ctx
        self.scopes = scopes_of(ctx)
        self.origins = origins_of(ctx)

    # -- public API ------------------------------------------------------------
    def value(self, node: ast.expr | None, depth: int = 0) -> Literal:
        if node is None or depth > _MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            config = self.config_entry(node)
            if config is not None:  # a key of a config file the code reads (cfg.data.batch_size)
                return config.scalar()
        return self._agreed(self.origins.of(node), depth)

    def _agreed(self, origins: Origins, depth: int) -> Literal:
        """The one value all ``origins`` evaluate to; unknown when one is unknown,
        two differ, or some origin could not be followed."""
        if not origins.complete or not origins.found:
            return UNKNOWN
        agreed: tuple[type, Literal] | None = None
        for origin in origins.found:
            value = self._origin_value(origin, depth)
            if value is UNKNOWN:
                return UNKNOWN
            if agreed is None:
                agreed = (type(value), value)
            elif agreed != (type(value), value):
                return UNKNOWN
        return agreed[1] if agreed is not None else UNKNOWN

    def _origin_value(self, origin: Origin, depth: int) -> Literal:
        node = origin.expr
        if origin.remote is not None:
            passed = origin.remote.passed.get(origin.key) or origin.remote.extra_keywords.get(origin.key)
            return self._passed_elsewhere(origin.remote.path, passed) if passed is not None and not origin.path else UNKNOWN
        if origin.path:  # an element of what a call returns
            return self._returned(node, origin.path, depth) if isinstance(node, ast.Call) else UNKNOWN
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
        if isinstance(node, ast.Name):  # bound by no assignment of the file: an imported constant
            qual = self.ctx.imports.aliases.get(node.id)
            if qual and "." in qual:
                module, _, name = qual.rpartition(".")
                return self.ctx.project.constant(module, name, self._scope)
            return UNKNOWN
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            config = self.config_entry(node)
            if config is not None:
                return config.scalar()
        if isinstance(node, ast.Attribute):
            return self._attribute_value(node)
        if isinstance(node, ast.Subscript):  # a dict this file does not show: the project's config defaults
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return self.ctx.project.config_default(key.value, self._scope)
            return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call_value(node, depth)
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

    def _returned(self, call: ast.Call, path: tuple[int, ...], depth: int) -> Literal:
        """What a helper function of this file returns (the element ``path`` of it):
        unknown unless every function of that name returns one value."""
        returned = self.origins.returns(call, path)
        if not returned or depth + 1 > _MAX_DEPTH:
            return UNKNOWN
        values = {(type(v), v) for v in (self._agreed(origins, depth + 1) for _, origins in returned)}
        if len(values) != 1 or any(v is UNKNOWN for _, v in values):
            return UNKNOWN
        return next(iter(values))[1]

    # -- attributes, subscripts, calls ----------------------------------------
    def _attribute_value(self, node: ast.Attribute) -> Literal:
        """An attribute the origins do not lead past: an imported module's constant,
        else a parser's or a config's default of that name."""
        base = node.value
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
        return self._returned(node, (), depth)
