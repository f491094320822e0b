"""LL306 config-momentum-without-clipping: a momentum optimizer configured in a
Python config system, with the config's gradient clipping off.

- OpenMMLab (mmengine, mmcv 1.x): the effective config of a config that is run
  (a leaf: not in a ``_base_`` folder, inherited by no other config of the run),
  merged onto its ``_base_`` files as mmengine merges them
  (``losslint/analysis/python_configs.py``), has a momentum optimizer and
  ``optim_wrapper.clip_grad`` None or absent (mmcv 1.x: ``optimizer_config.grad_clip``).
  Reported once, in the file that decides: where ``clip_grad=None`` is written, or
  the file whose ``optim_wrapper`` dict the others merge onto (a base schedule that
  hundreds of leaves inherit is one finding there: the message says how many leaf
  configs of the run train with it and names a few, related locations point at
  some). A leaf that replaces the wrapper (``_delete_=True``: its own optimizer) or
  writes its own ``clip_grad=None`` decides for itself and is reported alone. Base configs are
  judged through the leaves that inherit them: a base no leaf of the run inherits
  is not reported.
- yacs / detectron2: ``_C.SOLVER.CLIP_GRADIENTS.ENABLED = False`` in a defaults
  module whose solver has momentum, unless every YAML config that merges onto those
  defaults enables it (``losslint/analysis/yacs_configs.py``).

Whether an optimizer has momentum is the family's catalogue
(``momentum_common.configured_optimizer``): SGD with momentum > 0, the Adam family,
RMSprop with momentum.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from losslint.analysis.python_configs import UNKNOWN_VALUE, Configs, PythonConfig, Setting
from losslint.analysis.yacs_configs import YacsDefaults
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
# A finding in a base names this many of the leaf configs that inherit it (and
# points at this many as related locations): the count says how many there are.
_NAMED_LEAVES = 3
_RELATED_LEAVES = 5


class _Verdict:
    """A leaf config that trains a momentum optimizer unclipped: the wrapper dict
    (``optim_wrapper`` / ``optimizer_config``), the clip key and its setting (None
    when absent), the optimizer's dict and its momentum."""

    def __init__(self, wrapper_key: str, wrapper: Setting, clip_key: str, clip: Setting | None, optimizer: Setting, momentum: "Momentum") -> None:
        self.wrapper_key, self.wrapper, self.clip_key, self.clip = wrapper_key, wrapper, clip_key, clip
        self.optimizer, self.momentum = optimizer, momentum

    @property
    def origin(self) -> str:
        """The file that decides the clip is off, where one fix clips every config
        built on it: where ``clip_grad=None`` is written, else the file whose wrapper
        dict the others merge onto (the first layer since the last ``_delete_``)."""
        return self.clip.path if self.clip is not None else self.wrapper.layers[0][0]


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
        "default, gives max_norm); in the file that decides: at clip_grad=None, or in the optim_wrapper dict that "
        "leaves it out (a base schedule's fix clips every leaf that inherits it; _delete_=True where a file beneath "
        "writes clip_grad=None: a dict cannot merge into None). yacs: "
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
        Flagged(  # a base schedule the leaves take their wrapper from: one finding, in the base
            code="""
            optim_wrapper = dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
            """,
            fixed="""
            optim_wrapper = dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
                clip_grad=dict(max_norm=35, norm_type=2))
            """,
            message_contains=("sets no clip_grad", "2 leaf configs of this run inherit it (retinanet.py, ssd.py)"),
            unsafe=True,
            files=(
                ("retinanet.py", "_base_ = ['./train.py']\nmodel = dict(type='RetinaNet')\n"),
                ("ssd.py", "_base_ = ['./train.py']\nmodel = dict(type='SSD')\ntrain_dataloader = dict(batch_size=8)\n"),
            ),
        ),
        Flagged(  # a leaf that writes grad_clip=None over its base's clip decides for itself; _delete_
            # because a dict cannot merge into the base's dict and keep only what it says
            code="""
            _base_ = './schedule_1x.py'
            model = dict(type='RetinaNet')
            optimizer_config = dict(grad_clip=None)
            """,
            fixed="""
            _base_ = './schedule_1x.py'
            model = dict(type='RetinaNet')
            optimizer_config = dict(grad_clip=dict(_delete_=True, max_norm=35, norm_type=2))
            """,
            message_contains=("optimizer_config sets grad_clip=None",),
            unsafe=True,
            files=(("schedule_1x.py", """
                optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
                optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
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
            optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
            """,
            "a base schedule whose only leaf merges a clip into its wrapper: no config of the run trains unclipped",
            files=(("retinanet.py", """
                _base_ = ['./train.py']
                model = dict(type='RetinaNet')
                optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
                """),),
        ),
        Quiet(
            """
            optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
            """,
            "the leaf writes its own optimizer without momentum over its base's wrapper: it decides, and trains no momentum",
            files=(("retinanet.py", """
                _base_ = ['./train.py']
                model = dict(type='RetinaNet')
                optim_wrapper = dict(optimizer=dict(type='Adagrad', lr=0.01))
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
        elif own is not None and own.get(YacsDefaults) is not None:
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
        """One finding in the file that decides the clip is off (``origin``), for
        every leaf config of the run that trains with that decision: a base schedule
        inherited by hundreds of leaves is one finding there, naming how many."""
        from losslint.project import file_key

        key = file_key(ctx.file)
        configs = Configs.of(ctx.project, key)
        verdicts = self._verdicts(configs)
        decided = [(leaf, v) for leaf, v in sorted(verdicts.items()) if v is not None and v.origin == key]
        if not decided:
            return
        leaves = [leaf for leaf, _ in decided]
        verdict = next((v for leaf, v in decided if leaf == key), decided[0][1])
        momenta = [v.momentum for _, v in decided]
        momentum = max(momenta, key=lambda m: (m.severity == Severity.WARNING, momenta.count(m)))
        wrapper, clip, clip_key = verdict.wrapper, verdict.clip, verdict.clip_key
        # the clip key written in the layers beneath this file's (its bases' dicts since
        # the last _delete_): a new dict must replace it, not merge into it
        own_index = 0 if clip is None else max((i for i, (path, _) in enumerate(wrapper.layers) if path == key), default=len(wrapper.layers))
        below = wrapper.layers[:own_index] if clip is None or clip.path != key else [
            (path, node) for path, node in wrapper.layers[:own_index] if path != key
        ]
        replaces = any(clip_key in (node.items or {}) for _, node in below)
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
        others = [leaf for leaf in leaves if leaf != key]
        where = ""
        if others:
            shown = ", ".join(_display(leaf) for leaf in others[:_NAMED_LEAVES]) + (", ..." if len(others) > _NAMED_LEAVES else "")
            where = (
                f"; {len(others)} leaf config{'s' if len(others) != 1 else ''} of this run inherit{'s' if len(others) == 1 else ''} "
                f"it ({shown}): a clip here clips them all"
            )
            for leaf in others[:_RELATED_LEAVES]:
                related.append(RelatedLocation.at(_display(leaf), 1, f"a config that is run with it ({verdicts[leaf].momentum.optimizer})"))
        message = f"{momentum.describe()}; this OpenMMLab config clips nothing: {off}{where}"
        description = f"clip gradients: {clip_key}={clip_code}"
        severity = Severity.WARNING if any(m.severity == Severity.WARNING for m in momenta) else momentum.severity
        if clip is not None and clip.path == key:
            node = _node_at(ctx, clip.node.key_span or clip.node.span, ast.keyword) or _node_at(ctx, clip.node.span, ast.expr)
            value = _node_at(ctx, clip.node.span, ast.expr)
            if node is None or value is None:
                return
            fix = Fix(description, Applicability.UNSAFE, (_replace_expression(ctx.span(value), clip_code),))
            yield ctx.finding(self, node, message, fix, severity, related)
            return
        own_layer = wrapper.layers[own_index][1] if own_index < len(wrapper.layers) else None
        if own_layer is None:
            return
        node = _node_at(ctx, own_layer.span, ast.Call, ast.Dict)
        if node is None:
            return
        fix = Fix(description, Applicability.UNSAFE, (_add_keyword(ctx.span(node), clip_key, clip_code),)) if isinstance(node, ast.Call) else None
        yield ctx.finding(self, node, message, fix, severity, related)
