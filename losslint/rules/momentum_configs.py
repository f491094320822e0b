"""LL306 config-momentum-without-clipping: a momentum optimizer configured in a
Python config system, with the config's gradient clipping off.

- OpenMMLab (mmengine, mmcv 1.x): the effective config of a config that is run
  (a leaf: not in a ``_base_`` folder, inherited by no other config of the run),
  merged onto its ``_base_`` files as mmengine merges them
  (``losslint/analysis/python_configs.py``), has a momentum optimizer and
  ``optim_wrapper.clip_grad`` None or absent (mmcv 1.x: ``optimizer_config.grad_clip``).
  Reported where the fix goes: at ``clip_grad=None``, at the leaf's own
  ``optim_wrapper`` dict when the key is absent, or, when the leaf sets neither and
  takes both from its bases, at its ``_base_`` line (a related location names the
  base's optimizer; the message says how many leaf configs of the run inherit the
  same setting, which a fix in the base would clip at once). Base configs are
  judged only through their leaves.
- yacs / detectron2: ``_C.SOLVER.CLIP_GRADIENTS.ENABLED = False`` in a defaults
  module whose solver has momentum, unless every YAML config that merges onto those
  defaults enables it (``losslint/analysis/yacs_configs.py``).

Whether an optimizer has momentum is the family's catalogue
(``momentum_common.configured_optimizer``): SGD with momentum > 0, the Adam family,
RMSprop with momentum.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from losslint.analysis.python_configs import UNKNOWN_VALUE, Configs, PythonConfig, Setting
from losslint.findings import Applicability, Finding, Fix, NodeEdit, RelatedLocation, Severity, Span, cst, set_keyword
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register

if TYPE_CHECKING:
    from losslint.context import FileContext
    from losslint.rules.momentum_common import Momentum

# The wrappers and hooks whose clip key this rule knows (mmengine's optim
# wrappers take ``clip_grad``; mmcv 1.x's optimizer hooks ``grad_clip``). Others
# (DeepSpeed's wrapper, a project's own hook) clip by their own settings: not judged.
_WRAPPERS = ("OptimWrapper", "AmpOptimWrapper", "ApexOptimWrapper")
_HOOKS = (
    "OptimizerHook", "Fp16OptimizerHook", "GradientCumulativeOptimizerHook", "GradientCumulativeFp16OptimizerHook",
    "DistOptimizerHook",
)
# OpenMMLab's own clip for detectors (mmdetection's configs): max_norm 35, L2 norm.
OPENMMLAB_MAX_NORM = 35


class _Verdict:
    """A leaf config that trains a momentum optimizer unclipped: the wrapper dict
    (``optim_wrapper`` / ``optimizer_config``), the clip key and its setting (None
    when absent), the optimizer's dict and its momentum."""

    def __init__(self, wrapper_key: str, wrapper: Setting, clip_key: str, clip: Setting | None, optimizer: Setting, momentum: "Momentum") -> None:
        self.wrapper_key, self.wrapper, self.clip_key, self.clip = wrapper_key, wrapper, clip_key, clip
        self.optimizer, self.momentum = optimizer, momentum

    @property
    def origin(self) -> str:
        """The file that decides the clip is off: where ``clip_grad=None`` is written,
        or the last file that writes the wrapper without it."""
        return self.clip.path if self.clip is not None else self.wrapper.layers[-1][0]


def _last(name: object) -> object:
    return name.rpartition(".")[2] if isinstance(name, str) else name


def judge(merged: dict[str, Setting]) -> _Verdict | None:
    """Does this effective config train a momentum optimizer with the clip off?"""
    from losslint.rules.momentum_common import configured_optimizer

    wrapper = merged.get("optim_wrapper")
    if wrapper is not None:
        wrapper_key, clip_key = "optim_wrapper", "clip_grad"
        if wrapper.items is None or _last(wrapper.literal("type", "OptimWrapper")) not in _WRAPPERS:
            return None
        optimizer = wrapper.items.get("optimizer")
    else:
        wrapper_key, clip_key = "optimizer_config", "grad_clip"
        wrapper, optimizer = merged.get("optimizer_config"), merged.get("optimizer")
        if wrapper is None or wrapper.items is None or _last(wrapper.literal("type", "OptimizerHook")) not in _HOOKS:
            return None
    if optimizer is None or optimizer.items is None or not optimizer.closed:
        return None
    name = optimizer.literal("type", None)
    if not isinstance(name, str):
        return None
    settings = {
        key: s.node.value if s.node.known and s.items is None else UNKNOWN_VALUE for key, s in optimizer.items.items()
    }
    momentum = configured_optimizer(name, settings)
    if momentum is None or not momentum.is_momentum:
        return None
    clip = wrapper.items.get(clip_key)
    if clip is None and not wrapper.closed:
        return None  # **other may set it
    if clip is not None and not (clip.node.known and clip.items is None and clip.node.value is None):
        return None  # a clip dict, or a value not known statically
    return _Verdict(wrapper_key, wrapper, clip_key, clip, optimizer, momentum)


# Where yacs defaults name the optimizer (detectron2 has no such key: its
# build_optimizer builds SGD with SOLVER.MOMENTUM).
_OPTIMIZER_KEYS = ("OPTIMIZER", "OPTIMIZER_NAME", "OPTIMIZER_TYPE", "OPTIM", "OPT")


def solver_momentum(values: dict, solver: tuple[str, ...]) -> "Momentum | None":
    """The momentum of the optimizer a yacs solver section configures: its
    optimizer key's name (else SGD, as detectron2 builds) with SOLVER.MOMENTUM and
    SOLVER.BETAS; None when neither a name nor a momentum is set."""
    from losslint.analysis.yacs_configs import is_unknown
    from losslint.rules.momentum_common import configured_optimizer

    name = next((values[(*solver, key)] for key in _OPTIMIZER_KEYS if (*solver, key) in values), None)
    settings = {}
    for key, argument in (("MOMENTUM", "momentum"), ("BETAS", "betas")):
        if (*solver, key) in values:
            value = values[(*solver, key)]
            settings[argument] = UNKNOWN_VALUE if is_unknown(value) else value
    if name is None:
        if "momentum" not in settings:
            return None
        name = "SGD"
    if not isinstance(name, str):
        return None
    return configured_optimizer(name, settings)


def _other_clip(values: dict, solver: tuple[str, ...]) -> bool:
    """Does the solver section hold another clip setting that is on (a project's own
    ``SOLVER.GRAD_CLIP = 1.0`` or ``MAX_GRAD_NORM``)?"""
    for key, value in values.items():
        if len(key) == len(solver) + 1 and key[:-1] == solver and key[-1] != "CLIP_GRADIENTS":
            name = key[-1].upper()
            if ("CLIP" in name or "GRAD_NORM" in name or "MAX_NORM" in name) and (
                value is True or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)
            ):
                return True
    return False


def _display(key: str) -> str:
    from losslint.discovery import display_path

    return display_path(Path(key))


def _related(key: str, span: tuple[int, int, int, int], message: str) -> RelatedLocation:
    line, column, end_line, end_column = span
    return RelatedLocation(_display(key), Span(line, column, end_line, end_column), message)


def _relative(here: str, there: str) -> str:
    return os.path.relpath(there, os.path.dirname(here)).replace(os.sep, "/")


def _node_at(ctx: "FileContext", span: tuple[int, int, int, int], *types: type) -> ast.AST | None:
    for node in ctx.nodes:
        if isinstance(node, types) and (
            node.lineno, node.col_offset, node.end_lineno, node.end_col_offset  # type: ignore[attr-defined]
        ) == span:
            return node
    return None


def _max_norm(ctx: "FileContext") -> str:
    # the project's --clip-max-norm where it set one other than the default, else
    # OpenMMLab's own convention
    value = ctx.settings.clip_max_norm
    return f"{OPENMMLAB_MAX_NORM}" if value == 1.0 else f"{value:g}"


def _clip_code(ctx: "FileContext", replaces: bool) -> str:
    # a base value that is not a dict (clip_grad=None) must be replaced, not merged
    # into: mmengine raises a TypeError for a dict over None
    delete = "_delete_=True, " if replaces else ""
    return f"dict({delete}max_norm={_max_norm(ctx)}, norm_type=2)"


def _replace_expression(span: Span, code: str) -> NodeEdit:
    return NodeEdit(span, "BaseExpression", lambda _node: cst.parse_expression(code))


def _add_keyword(span: Span, name: str, code: str) -> NodeEdit:
    return NodeEdit(span, "Call", lambda node: set_keyword(node, name, code))


def _add_statement_after(span: Span, code: str) -> NodeEdit:
    return NodeEdit(span, "SimpleStatementLine", lambda node: cst.FlattenSentinel([node, cst.parse_statement(code)]))


@register
class ConfigMomentumWithoutClipping(Rule):
    code = "LL306"
    name = "config-momentum-without-clipping"
    severity = Severity.WARNING
    triggers = ("_base_", "optim_wrapper", "optimizer_config", "CLIP_GRADIENTS")
    fix_applicability = Applicability.UNSAFE
    chain = ChainRole.MOMENTUM
    summary = (
        "an OpenMMLab config (merged with its _base_ files) or yacs/detectron2 defaults whose momentum optimizer "
        "trains with the config's gradient clipping off"
    )
    why = (
        "SGD with momentum, or an Adam-family optimizer, carries one outsized gradient (a partial last batch, a loss "
        "that scales with 1/batch size, a bad sample) on into the next steps; the config systems that build the "
        "optimizer also own the clip, and leave it off by default: mmengine's OptimWrapper(clip_grad=None), mmcv "
        "1.x's OptimizerHook(grad_clip=None), detectron2's SOLVER.CLIP_GRADIENTS.ENABLED=False "
        "(docs/semantics.md §5)."
    )
    fix_doc = (
        "Unsafe (training dynamics change): OpenMMLab: clip_grad=dict(max_norm=35, norm_type=2) (mmcv 1.x: "
        "grad_clip=...), OpenMMLab's own clip for detectors (--clip-max-norm, where set to another value than its "
        "default, gives max_norm); at clip_grad=None, in the leaf's own optim_wrapper dict, or as a new "
        "optim_wrapper = dict(clip_grad=...) line after the leaf's _base_, which mmengine merges onto the base's "
        "wrapper (with _delete_=True where the base writes clip_grad=None: a dict cannot merge into None). yacs: "
        "ENABLED = True, which clips with the defaults' CLIP_TYPE and CLIP_VALUE (detectron2: 'value', 1.0). A dict "
        "written as {...} gets no fix."
    )
    references = (
        "docs/semantics.md §5",
        "mmengine: mmengine/config/config.py (Config._merge_a_into_b), mmengine/optim/optimizer/optimizer_wrapper.py",
        "detectron2: detectron2/config/defaults.py, detectron2/solver/build.py (maybe_add_gradient_clipping)",
    )

    flagged = (
        Flagged(
            code="""
            optim_wrapper = dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
                clip_grad=None)
            model = dict(type='FasterRCNN')
            """,
            fixed="""
            optim_wrapper = dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
                clip_grad=dict(max_norm=35, norm_type=2))
            model = dict(type='FasterRCNN')
            """,
            message_contains=("SGD with momentum 0.9", "optim_wrapper sets clip_grad=None"),
            unsafe=True,
        ),
        Flagged(
            code="""
            optimizer = dict(type='AdamW', lr=1e-4, weight_decay=0.05)
            optim_wrapper = dict(type='AmpOptimWrapper', optimizer=optimizer)
            """,
            fixed="""
            optimizer = dict(type='AdamW', lr=1e-4, weight_decay=0.05)
            optim_wrapper = dict(type='AmpOptimWrapper', optimizer=optimizer, clip_grad=dict(max_norm=35, norm_type=2))
            """,
            message_contains=("AdamW", "sets no clip_grad"),
            unsafe=True,
        ),
        Flagged(  # mmcv 1.x: the OptimizerHook's grad_clip
            code="""
            optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
            optimizer_config = dict(grad_clip=None)
            """,
            fixed="""
            optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
            optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
            """,
            message_contains=("optimizer_config sets grad_clip=None",),
            unsafe=True,
        ),
        Flagged(  # the leaf takes everything from its base: the fix goes after its _base_
            code="""
            _base_ = ['./schedule_1x.py']
            model = dict(type='RetinaNet')
            """,
            fixed="""
            _base_ = ['./schedule_1x.py']
            optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
            model = dict(type='RetinaNet')
            """,
            message_contains=("in schedule_1x.py, inherited by 1 leaf config",),
            unsafe=True,
            files=(("schedule_1x.py", """
                optim_wrapper = dict(
                    type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
                """),),
        ),
        Flagged(  # the base writes grad_clip=None: a dict cannot merge into it, _delete_ replaces it
            code="""
            _base_ = './schedule_1x.py'
            model = dict(type='RetinaNet')
            optimizer = dict(lr=0.01)
            """,
            fixed="""
            _base_ = './schedule_1x.py'
            optimizer_config = dict(grad_clip=dict(_delete_=True, max_norm=35, norm_type=2))
            model = dict(type='RetinaNet')
            optimizer = dict(lr=0.01)
            """,
            message_contains=("optimizer_config sets grad_clip=None in schedule_1x.py",),
            unsafe=True,
            files=(("schedule_1x.py", """
                optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
                optimizer_config = dict(grad_clip=None)
                """),),
        ),
    )
    quiet = (
        Quiet(
            """
            optim_wrapper = dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
                clip_grad=dict(max_norm=35, norm_type=2))
            """,
            "the wrapper clips",
        ),
        Quiet(
            """
            optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, weight_decay=1e-4))
            """,
            "SGD without momentum (its default is 0)",
        ),
        Quiet(
            """
            _base_ = ['./schedule_1x.py']
            optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
            """,
            "the leaf merges a clip into its base's wrapper",
            files=(("schedule_1x.py", """
                optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
                """),),
        ),
        Quiet(
            """
            _base_ = ['./schedule_1x.py']
            optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='Adagrad', lr=0.01))
            """,
            "_delete_=True replaces the base's SGD with an optimizer that has no momentum",
            files=(("schedule_1x.py", """
                optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
                """),),
        ),
        Quiet(
            """
            _base_ = ['mmdet::_base_/schedules/schedule_1x.py']
            model = dict(type='RetinaNet')
            """,
            "the base is another package's config, outside the run: unknown, not guessed",
        ),
        Quiet(
            """
            optim_wrapper = dict(type='DeepSpeedOptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
            """,
            "DeepSpeed clips by its own config (gradient_clipping), not clip_grad",
        ),
        Quiet(
            """
            import torch

            optimizer = dict(type='SGD', lr=0.1, momentum=0.9)
            optimizer_config = dict(grad_clip=None)

            def train(model):
                return torch.optim.SGD(model.parameters(), **optimizer)
            """,
            "a script that keeps an optimizer dict is not a config (it defines functions)",
        ),
    )

    def check(self, ctx: "FileContext") -> Iterable[Finding]:
        if not ctx.file:
            return
        own = ctx.project.own(ctx.file)
        config = own.get(PythonConfig) if own is not None else None
        if config is not None:
            yield from self._openmmlab(ctx, config)
        elif "CLIP_GRADIENTS" in ctx.source:
            yield from self._yacs(ctx)

    # -- yacs / detectron2 ----------------------------------------------------------
    def _yacs(self, ctx: "FileContext") -> Iterable[Finding]:
        from losslint.analysis.yacs_configs import defaults_of, project_root, yaml_overrides

        defaults = defaults_of(ctx.tree)
        for path, (value, node) in defaults.items():
            if path[-2:] != ("CLIP_GRADIENTS", "ENABLED") or value is not False:
                continue
            solver = path[:-2]
            here = {key: found[0] for key, found in defaults.items()}
            if _other_clip(here, solver):
                continue  # a clip of the project's own (SOLVER.GRAD_CLIP = 1.0) beside detectron2's switch
            alone = solver_momentum(here, solver)
            overrides = yaml_overrides(project_root(ctx.file), defaults, lambda p: ctx.settings.excluded(Path(p)))
            unclipped = []
            for yaml_path, flat in overrides:
                merged = {**here, **{key: found[0] for key, found in flat.items()}}
                momentum = solver_momentum(merged, solver)
                if merged.get(path) is False and not _other_clip(merged, solver) and momentum is not None and momentum.is_momentum:
                    unclipped.append((yaml_path, flat, momentum))
            if overrides and not unclipped:
                continue
            momentum = alone if not overrides or (alone is not None and alone.is_momentum) else unclipped[0][2]
            if momentum is None or not momentum.is_momentum:
                continue
            name = ".".join(path)
            if overrides:
                first_path, first_flat, _ = unclipped[0]
                others = f" ({len(unclipped) - 1} more)" if len(unclipped) > 1 else ""
                scope = (
                    f"{len(unclipped)} of the {len(overrides)} YAML configs that merge onto these defaults leave it off "
                    f"({_display(first_path)}{others})"
                )
            else:
                scope = "no YAML config of this project that merges onto these defaults turns it on"
            related = []
            moment = defaults.get((*solver, "MOMENTUM"))
            if moment is not None:
                related.append(ctx.related(moment[1], f"{'.'.join((*solver, 'MOMENTUM'))}: the momentum"))
            if overrides:
                line = first_flat.get(path, (None, 1))[1]
                related.append(RelatedLocation.at(_display(first_path), line, "a YAML config that runs with it off"))
            clip_type = defaults.get((*path[:-1], "CLIP_TYPE"), (None,))[0]
            clip_value = defaults.get((*path[:-1], "CLIP_VALUE"), (None,))[0]
            how = f" (CLIP_TYPE {clip_type!r}, CLIP_VALUE {clip_value!r} from these defaults)" if clip_type is not None and clip_value is not None else ""
            message = f"{momentum.describe()}; yacs defaults {name} = False turn gradient clipping off: {scope}"
            fix = Fix(f"enable {'.'.join(path[:-1])}{how}", Applicability.UNSAFE, (_replace_expression(ctx.span(node), "True"),))
            yield ctx.finding(self, node, message, fix, momentum.severity, related)

    # -- OpenMMLab ------------------------------------------------------------------
    def _verdicts(self, configs: Configs) -> dict[str, _Verdict | None]:
        verdicts = configs.memo.get("LL306")
        if verdicts is None:
            verdicts = configs.memo["LL306"] = {}
            for leaf in configs.leaves():
                merged = configs.effective(leaf)
                verdicts[leaf] = judge(merged) if merged is not None else None
        return verdicts

    def _openmmlab(self, ctx: "FileContext", config: PythonConfig) -> Iterable[Finding]:
        from losslint.project import file_key

        key = file_key(ctx.file)
        configs = Configs.of(ctx.project, key)
        if not configs.is_leaf(key):
            return
        verdicts = self._verdicts(configs)
        verdict = verdicts.get(key)
        if verdict is None:
            return
        wrapper, clip, clip_key = verdict.wrapper, verdict.clip, verdict.clip_key
        momentum = verdict.momentum
        # the clip key written beneath this config's own layer (its bases' dicts since
        # the last _delete_): the new dict must replace it, not merge into it
        replaces = any(clip_key in (node.items or {}) for path, node in wrapper.layers if path != key)
        clip_code = _clip_code(ctx, replaces)
        off = (
            f"{verdict.wrapper_key} sets {clip_key}=None"
            if clip is not None
            else f"{verdict.wrapper_key} sets no {clip_key} (its default None: no clipping)"
        )
        related: list[RelatedLocation] = []
        optimizer_path, optimizer_node = verdict.optimizer.layers[-1]
        type_setting = (verdict.optimizer.items or {}).get("type")
        if type_setting is not None:
            optimizer_path, optimizer_node = type_setting.path, type_setting.node
        if optimizer_path != key:
            related.append(_related(optimizer_path, optimizer_node.key_span or optimizer_node.span, f"{momentum.optimizer} is chosen here"))
        origin = verdict.origin
        where = ""
        if origin != key:
            span = clip.node.key_span if clip is not None and clip.node.key_span else verdict.wrapper.layers[-1][1].span
            related.append(_related(origin, span, f"{verdict.wrapper_key} without a clip, inherited from here"))
            sharing = sum(1 for v in verdicts.values() if v is not None and v.origin == origin)
            where = (
                f" in {_relative(key, origin)}, inherited by {sharing} leaf config{'s' if sharing != 1 else ''} of this "
                "run (a clip there clips them all)"
            )
        message = f"{momentum.describe()}; this OpenMMLab config clips nothing: {off}{where}"
        description = f"clip gradients: {clip_key}={clip_code}"
        if clip is not None and clip.path == key:
            node = _node_at(ctx, clip.node.key_span or clip.node.span, ast.keyword) or _node_at(ctx, clip.node.span, ast.expr)
            value = _node_at(ctx, clip.node.span, ast.expr)
            if node is None or value is None:
                return
            fix = Fix(description, Applicability.UNSAFE, (_replace_expression(ctx.span(value), clip_code),))
            yield ctx.finding(self, node, message, fix, momentum.severity, related)
            return
        own_layer = next((n for path, n in wrapper.layers if path == key), None)
        if own_layer is not None and wrapper.layers[-1][0] == key:
            node = _node_at(ctx, own_layer.span, ast.Call, ast.Dict)
            if node is None:
                return
            fix = Fix(description, Applicability.UNSAFE, (_add_keyword(ctx.span(node), clip_key, clip_code),)) if isinstance(node, ast.Call) else None
            yield ctx.finding(self, node, message, fix, momentum.severity, related)
            return
        if config.base_span is None:
            return
        statement = _node_at(ctx, config.base_span, ast.Assign)
        if statement is None:
            return
        code = f"{verdict.wrapper_key} = dict({clip_key}={clip_code})"
        fix = Fix(f"clip gradients: add {code}", Applicability.UNSAFE, (_add_statement_after(ctx.span(statement), code),))
        yield ctx.finding(self, statement, message, fix, momentum.severity, related)
