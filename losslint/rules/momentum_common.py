"""What the LL3xx (momentum without clipping) rules share.

- The optimizer catalogue (docs/semantics.md §4): which constructors of torch, Keras,
  optax and the usual third-party packages keep a running average of past
  gradients, under which argument, with which default. SGD's momentum defaults to
  0 (not a momentum optimizer); the Adam family's β1 to 0.9 (one).
- ``Momentum``: what was found (which optimizer, μ or β1), the message that says
  what a gradient spike does to it, and the severity that follows (docs/semantics.md §4's
  measurements: SGD with momentum carries a bad gradient on for ~1/(1-μ) steps;
  Adam's step is bounded but its inflated second moment shrinks the updates after
  it; Lion and Muon take fixed-size steps in a direction the spike dominates).
- Clipping in every form a call can take (``clip_grad_norm_`` and friends, an
  accelerator's or FSDP's method, Lightning's ``clip_gradients``, a helper such as
  timm's ``loss_scaler(..., clip_grad=...)``, a clamping gradient hook), and the
  gate in front of it: clipping behind ``if args.clip_grad is not None:`` whose
  default is None is no clipping at all, unless the user remembers the flag.
- The fix for a gated clip: give the flag a default (``default=1.0`` on its
  ``add_argument``, ``grad_clip = 1.0``, a parameter default).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from losslint.analysis.calls import call_sites
from losslint.analysis.hierarchy import ancestors, project_classes
from losslint.analysis.names import argument, dotted, keyword, last_part
from losslint.findings import Applicability, Fix, Severity, cst, set_keyword
from losslint.project import UNKNOWN, argparse_dest, family_fact

if TYPE_CHECKING:
    from losslint.analysis.objects import ObjectResolver
    from losslint.context import FileContext
    from losslint.project import ProjectFacts

    Resolver = ObjectResolver

# -- what a momentum optimizer is -----------------------------------------------

SGD, ADAM, SIGN, PLAIN = "sgd", "adam", "sign", "plain"


@dataclass(frozen=True)
class Spec:
    """How a constructor sets its momentum: ``kind`` (SGD-style buffer μ, Adam-style
    β1/β2, Lion/Muon fixed-size steps, or PLAIN: none at all), the argument that
    sets the coefficient (keyword, position) and its default (None: absent means
    no momentum). ``pair``: the argument is a tuple ``(β1, β2, ...)``."""

    kind: str
    arg: str | None = None
    position: int | None = None
    default: float | None = None
    pair: bool = False
    beta2: float | None = None


def _adam(position: int | None = None, b1: float = 0.9, b2: float = 0.999, arg: str = "betas") -> Spec:
    return Spec(ADAM, arg, position, b1, pair=arg == "betas", beta2=b2)


_PLAIN = Spec(PLAIN)

# torch.optim (positions from its signatures) and third-party torch optimizers
# (keyword only: their positions differ).
TORCH_OPTIMIZERS: dict[str, Spec] = {
    "SGD": Spec(SGD, "momentum", 2, 0.0),
    "RMSprop": Spec(SGD, "momentum", 5, 0.0),
    "Adam": _adam(2), "AdamW": _adam(2), "Adamax": _adam(2), "NAdam": _adam(2), "RAdam": _adam(2),
    "SparseAdam": _adam(2),
    "Muon": Spec(SIGN, "momentum", None, 0.95),
    "Adagrad": _PLAIN, "Adadelta": _PLAIN, "ASGD": _PLAIN, "Rprop": _PLAIN, "LBFGS": _PLAIN,
    # third party: apex, DeepSpeed, bitsandbytes, timm, torch_optimizer, schedulefree, ...
    "SGDW": Spec(SGD, "momentum", None, 0.0), "SGDP": Spec(SGD, "momentum", None, 0.0),
    "SGD8bit": Spec(SGD, "momentum", None, 0.0),
    "LARS": Spec(SGD, "momentum", None, 0.9), "Lars": Spec(SGD, "momentum", None, 0.9),
    "MADGRAD": Spec(SGD, "momentum", None, 0.9), "SGDScheduleFree": Spec(SGD, "momentum", None, 0.9),
    "FusedAdam": _adam(), "FusedLAMB": _adam(), "FusedNovoGrad": _adam(b1=0.95, b2=0.98),
    "DeepSpeedCPUAdam": _adam(), "Adam8bit": _adam(), "AdamW8bit": _adam(), "PagedAdam": _adam(),
    "PagedAdamW": _adam(), "PagedAdamW8bit": _adam(), "PagedAdam8bit": _adam(), "AdamW32bit": _adam(),
    "Lamb": _adam(b2=0.999), "LAMB": _adam(), "AdamP": _adam(), "AdaBelief": _adam(), "NovoGrad": _adam(b1=0.95, b2=0.98),
    "Yogi": _adam(), "AdaBound": _adam(), "AdaMod": _adam(), "QHAdam": _adam(b1=0.995), "Nadam": _adam(),
    "Adan": _adam(b1=0.98, b2=0.99), "Sophia": _adam(b1=0.965, b2=0.99), "SophiaG": _adam(b1=0.965, b2=0.99),
    "Ranger": _adam(b1=0.95), "AdamWScheduleFree": _adam(), "RAdamScheduleFree": _adam(), "AdamWLegacy": _adam(),
    "Lion": Spec(SIGN, "betas", None, 0.9, pair=True, beta2=0.99), "Lion8bit": Spec(SIGN, "betas", None, 0.9, pair=True, beta2=0.99),
    "Adafactor": Spec(ADAM, "beta1", None, None),  # transformers: beta1=None; torch.optim's has no β1 at all
}
# Packages whose optimizers are not torch's even when their names are.
NOT_TORCH = ("keras", "tensorflow", "tf_keras", "optax", "jax", "flax", "paddle", "mindspore", "mxnet")

# timm: create_optimizer_v2(model_or_params, opt='sgd', lr=None, weight_decay=0., momentum=0.9, ...)
# 'sgd'/'nesterov'/'momentum' build Nesterov SGD with that momentum.
TIMM_FACTORIES = {"create_optimizer_v2", "create_optimizer"}
_TIMM_SGD_NAMES = {"sgd", "nesterov", "momentum", "sgdp", "sgdw", "nesterovw", "lars", "nlars", "larc", "nlarc"}
_TIMM_PLAIN_NAMES = {"adagrad", "adadelta", "rprop", "adafactor", "asgd", "lbfgs"}

KERAS_OPTIMIZERS: dict[str, Spec] = {
    "SGD": Spec(SGD, "momentum", 1, 0.0),
    "RMSprop": Spec(SGD, "momentum", 2, 0.0),
    "Adam": _adam(1, arg="beta_1"), "Adamax": _adam(1, arg="beta_1"), "Nadam": _adam(1, arg="beta_1"),
    "Lamb": _adam(1, arg="beta_1"), "AdamW": _adam(2, arg="beta_1"), "ScheduleFreeAdamW": _adam(None, arg="beta_1"),
    "Lion": Spec(SIGN, "beta_1", 1, 0.9, beta2=0.99),
    "Muon": Spec(SIGN, "momentum", None, 0.95),
    "Adagrad": _PLAIN, "Adadelta": _PLAIN, "Ftrl": _PLAIN, "Adafactor": _PLAIN,
}
# TensorFlow 1's tf.train optimizers (tf.compat.v1.train in TF 2), stepped by
# ``opt.minimize(loss)`` or ``opt.apply_gradients(grads_and_vars)``; they take no clip
# argument: the gradients are clipped (tf.clip_by_global_norm) between
# compute_gradients and apply_gradients.
TF1_OPTIMIZERS: dict[str, Spec] = {
    "MomentumOptimizer": Spec(SGD, "momentum", 1, None),
    "RMSPropOptimizer": Spec(SGD, "momentum", 2, 0.0),
    "AdamOptimizer": _adam(1, arg="beta1"),
    "AdamWOptimizer": _adam(None, arg="beta1"), "LazyAdamOptimizer": _adam(None, arg="beta1"),
    "GradientDescentOptimizer": _PLAIN, "AdagradOptimizer": _PLAIN, "AdadeltaOptimizer": _PLAIN,
    "FtrlOptimizer": _PLAIN, "ProximalGradientDescentOptimizer": _PLAIN, "ProximalAdagradOptimizer": _PLAIN,
}
# compile(optimizer="adam"): Keras' names for its optimizers with their defaults.
KERAS_STRINGS: dict[str, str] = {
    "sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax", "nadam": "Nadam",
    "lamb": "Lamb", "lion": "Lion", "adagrad": "Adagrad", "adadelta": "Adadelta", "ftrl": "Ftrl", "adafactor": "Adafactor",
}

OPTAX_TRANSFORMS: dict[str, Spec] = {
    "sgd": Spec(SGD, "momentum", 1, None),
    "rmsprop": Spec(SGD, "momentum", 6, None),
    "trace": Spec(SGD, "decay", 0, None),
    "lars": Spec(SGD, "momentum", None, 0.9),
    "sm3": Spec(SGD, "momentum", None, 0.9),
    "adafactor": Spec(ADAM, "momentum", None, None),
    **{name: _adam(1, arg="b1") for name in (
        "adam", "adamw", "nadam", "nadamw", "radam", "adamax", "adamaxw", "amsgrad", "adabelief", "yogi", "lamb",
        "novograd", "adan", "schedule_free_adamw",
    )},
    "scale_by_adam": _adam(0, arg="b1"), "scale_by_amsgrad": _adam(0, arg="b1"), "scale_by_belief": _adam(0, arg="b1"),
    "scale_by_radam": _adam(0, arg="b1"), "scale_by_adamax": _adam(0, arg="b1"), "scale_by_yogi": _adam(1, arg="b1"),
    "lion": Spec(SIGN, "b1", 1, 0.9, beta2=0.99), "scale_by_lion": Spec(SIGN, "b1", 0, 0.9, beta2=0.99),
    "muon": Spec(SIGN, "beta", None, 0.95),
    "adagrad": _PLAIN, "adadelta": _PLAIN, "fromage": _PLAIN, "noisy_sgd": _PLAIN, "polyak_sgd": _PLAIN,
}
OPTAX_DEFAULT_B1 = {"adan": 0.98}
# flax.optim, Flax's optimizer API before optax (removed in Flax 0.6): OptimizerDef
# classes built as ``flax.optim.Momentum(learning_rate, beta=0.9)``, then
# ``.create(params)`` and ``optimizer.apply_gradient(grads)``. It has no clipping of
# its own: a project clips the gradients before apply_gradient, or not at all.
FLAX_OPTIM: dict[str, Spec] = {
    "Momentum": Spec(SGD, "beta", 1, 0.9),
    "LARS": Spec(SGD, "beta", 1, 0.9),
    "Adam": _adam(1, arg="beta1"), "LAMB": _adam(1, arg="beta1"), "AdaBelief": _adam(1, arg="beta1"),
    "Adafactor": Spec(ADAM, "beta1", None, None),
    "GradientDescent": _PLAIN, "Adagrad": _PLAIN, "RMSProp": _PLAIN,
}
# optax transforms that clip (docs/semantics.md §4).
OPTAX_CLIPS = {"clip_by_global_norm", "clip", "clip_by_block_rms", "adaptive_grad_clip", "per_example_global_norm_clip", "per_example_layer_norm_clip"}


@family_fact  # (held inside the family's facts: ModuleMomentum, LightningModuleFacts)
@dataclass(frozen=True, slots=True)
class Momentum:
    """A momentum optimizer as found: plain data, so that it can cross files.
    ``coefficient`` is μ (SGD) or β1 (Adam, Lion), None when it is not known
    statically; ``pending`` names an attribute (``args.momentum``) whose project-wide
    default is still to be looked up."""

    optimizer: str
    kind: str
    coefficient: float | None
    beta2: float | None = None
    note: str = ""
    pending: str = ""

    @property
    def is_momentum(self) -> bool:
        if self.kind == PLAIN:
            return False
        return self.coefficient is None or self.coefficient > 0

    @property
    def severity(self) -> Severity:
        # SGD's momentum spreads a spike over ~1/(1-μ) full-size steps; Adam's step is
        # bounded and Lion's fixed, so those are a weaker risk (docs/semantics.md §4).
        if self.kind == SGD and self.coefficient is not None:
            return Severity.WARNING
        return Severity.INFO

    def resolved(self, project: "ProjectFacts") -> "Momentum":
        """Look up a pending ``args.momentum`` default in the whole project."""
        if not self.pending:
            return self
        value = project.argparse_default(self.pending)
        if value is UNKNOWN:
            value = project.config_default(self.pending)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Momentum(self.optimizer, self.kind, float(value), self.beta2, f" ({self.pending} defaults to {value:g})")
        if value is None and self.kind == SGD:
            return Momentum(self.optimizer, PLAIN, 0.0)
        return Momentum(self.optimizer, self.kind, None, self.beta2, self.note)

    def describe(self) -> str:
        """"SGD with momentum 0.9 carries ..." — what a k-fold gradient spike does."""
        c = self.coefficient
        if self.kind == SGD:
            if c is None:
                return (
                    f"{self.optimizer} with momentum{self.note}: whatever μ is, a gradient spike is carried on "
                    "for ~1/(1-μ) steps"
                )
            steps = 1 / (1 - c) if c < 1 else float("inf")
            return (
                f"{self.optimizer} with momentum {c:g}{self.note} carries a gradient spike on for ~{steps:.0f} steps "
                f"(an 8x spike moves the weights {c + (1 - c) * 8:.2f}x a normal step at once and keeps pushing after it)"
            )
        if self.kind == ADAM:
            b1 = "β1 unknown" if c is None else f"β1={c:g}"
            b2 = self.beta2 if self.beta2 is not None else 0.999
            move = _adam_spike_move(c if c is not None else 0.9, b2)
            return (
                f"{self.optimizer} ({b1}, β2={b2:g}){self.note}: its step is bounded (an 8x spike moves it ~{move:.1f}x), "
                f"but the spike inflates the second moment, which shrinks the updates for ~{1 / (1 - b2):.0f} steps after it"
            )
        beta = self.beta2 if self.beta2 is not None else c
        steps = f"~{1 / (1 - beta):.0f}" if beta is not None and beta < 1 else "many"
        return (
            f"{self.optimizer}{self.note} takes fixed-size steps in the direction of its momentum, which a gradient "
            f"spike dominates for {steps} steps"
        )


_SPIKE = 8.0
_ADAM_MEASURED_MOVE = 1.32  # docs/semantics.md §4: an 8x spike, β1=0.9, β2=0.999, measured


def _adam_spike_move(beta1: float, beta2: float) -> float:
    """How far an 8x gradient spike moves an Adam-type step, relative to a normal one:
    the measured 1.32 at the default betas, scaled by how the betas change the spike
    step's ratio m/sqrt(v) in a steady state, (β1 + 8(1-β1)) / sqrt(β2 + 64(1-β2))."""
    def ratio(b1: float, b2: float) -> float:
        return (b1 + _SPIKE * (1 - b1)) / (b2 + _SPIKE**2 * (1 - b2)) ** 0.5

    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        return _ADAM_MEASURED_MOVE
    return _ADAM_MEASURED_MOVE * ratio(beta1, beta2) / ratio(0.9, 0.999)


def coefficient(ctx: "FileContext", call: ast.Call, spec: Spec, label: str) -> Momentum:
    """Read the momentum coefficient of a constructor call against its spec."""
    node = argument(call, spec.arg, spec.position) if spec.arg else None
    if spec.kind == PLAIN:
        return Momentum(label, PLAIN, 0.0)
    if node is None:
        if any(kw.arg is None for kw in call.keywords) and spec.default is not None and spec.kind == SGD and spec.default == 0:
            return Momentum(label, PLAIN, 0.0)  # **kwargs may or may not carry momentum: no claim
        if spec.default is None:
            return Momentum(label, PLAIN, 0.0)
        return Momentum(label, spec.kind, spec.default, spec.beta2)
    beta2 = spec.beta2
    value_node = node
    if spec.pair:
        if isinstance(node, (ast.Tuple, ast.List)) and node.elts:
            value_node = node.elts[0]
            if len(node.elts) > 1:
                b2 = ctx.values.number(node.elts[-1] if spec.kind != ADAM else node.elts[1])
                beta2 = b2 if b2 is not None else beta2
        else:
            value = ctx.values.value(node)
            if isinstance(value, (tuple, list)) and value:
                return Momentum(label, spec.kind, float(value[0]), beta2)
            return Momentum(label, spec.kind, None, beta2, f" (betas={ctx.text(node)} not known statically)")
    value = ctx.values.value(value_node)
    if value is UNKNOWN:
        value = hparams_default(ctx, value_node)
    if value is None or value is False:
        return Momentum(label, PLAIN, 0.0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        note = "" if isinstance(value_node, ast.Constant) else f" ({ctx.text(value_node)} {_how_set(ctx, value_node)} {value:g})"
        if value <= 0:
            return Momentum(label, PLAIN, 0.0)
        return Momentum(label, spec.kind, float(value), beta2, note)
    if isinstance(value_node, ast.Attribute):
        # args.momentum whose parser lives in a file we cannot see from here (yet)
        return Momentum(label, spec.kind, None, beta2, f" ({ctx.text(value_node)} not known statically)", pending=value_node.attr)
    return Momentum(label, spec.kind, None, beta2, f" ({spec.arg}={ctx.text(value_node)} not known statically)")


def _how_set(ctx: "FileContext", node: ast.expr) -> str:
    """"defaults to" for a flag, a config field or a parameter, whose value a run may
    change; "=" for a plain variable assigned that value (``momentum = 0.9``)."""
    if isinstance(node, ast.Name):
        bindings = ctx.values.bindings(node.id, node)
        if bindings and all(b.value is not None and b.parameter is None for b in bindings):
            return "="
    return "defaults to"


def hparams_default(ctx: "FileContext", node: ast.expr) -> object:
    """``self.hparams.momentum`` / ``self.hparams["momentum"]`` in a LightningModule that
    called ``save_hyperparameters()``: the default of ``__init__``'s ``momentum``."""
    key = None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "hparams":
        key = node.attr
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "hparams":
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            key = node.slice.value
    cls = ctx.enclosing(node, ast.ClassDef)
    if key is None or cls is None:
        return UNKNOWN
    for function in cls.body:
        if isinstance(function, ast.FunctionDef) and function.name == "__init__":
            args = function.args
            positional = [*args.posonlyargs, *args.args]
            defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
            for arg, default in pairs:
                if arg.arg == key and default is not None:
                    return ctx.values.value(default)
    return UNKNOWN


def torch_optimizer(ctx: "FileContext", call: ast.Call) -> Momentum | None:
    """The momentum of a torch optimizer constructor (or timm factory) call; None
    when the call builds no optimizer we know."""
    qual = ctx.qualname(call.func) or ""
    name = last_part(qual)
    if qual.split(".")[0] in NOT_TORCH:
        return None
    if name in TIMM_FACTORIES and (qual.startswith("timm") or "timm" in ctx.source):
        return timm_optimizer(ctx, call, name)
    spec = TORCH_OPTIMIZERS.get(name)
    if spec is not None and qual.split(".")[0] not in _OPTIMIZER_LIBRARIES:
        # ``from optim import Adam``: a project's own Adam has its own defaults
        own = own_optimizer(ctx, call, "torch")
        if own is not None:
            return own
    if spec is None:
        base = project_optimizer_base(ctx, call)
        if base is None or base.split(".")[0] in NOT_TORCH or last_part(base) not in TORCH_OPTIMIZERS:
            return own_optimizer(ctx, call, "torch")
        # a project class deriving from a torch optimizer (``class AdamW(torch.optim.Adam)``,
        # ``class WarmupAdam(Adam)`` in optim.py): its base's momentum; its own signature
        # may differ, so keywords only
        base_spec = TORCH_OPTIMIZERS[last_part(base)]
        keywords = Spec(base_spec.kind, base_spec.arg, None, base_spec.default, base_spec.pair, base_spec.beta2)
        return coefficient(ctx, call, keywords, f"{name} (derived from {last_part(base)})")
    if "." not in qual and not any(m.startswith("torch") for m in ctx.imports.star_modules):
        if not _defined_here(ctx, name):
            return None  # an optimizer-like name we cannot tie to an import
    if name == "Adafactor" and qual.startswith("torch."):
        return Momentum(name, PLAIN, 0.0)
    if name == "Muon" and qual.startswith("torch."):
        spec = Spec(SIGN, "momentum", 3, 0.95)
    return coefficient(ctx, call, spec, name)


# Where a base class named like a catalogue optimizer really is one.
_OPTIMIZER_LIBRARIES = ("torch", "keras", "tensorflow", "tf_keras", "timm", "transformers", "apex", "bitsandbytes", "torch_optimizer")


def project_optimizer_base(ctx: "FileContext", call: ast.Call) -> str | None:
    """The library optimizer a project class derives from, through its bases in this
    file and others (``class AdamWarmup(keras.optimizers.Adam)``, ``class MyAdam(Adam)``
    with ``from torch.optim import Adam``, ``AdamW = extend_with_weight_decay(Adam)``):
    its qualified name (``torch.optim.Adam``), or None."""
    if not last_part(ctx.qualname(call.func))[:1].isupper():
        return None  # a function call, not a class
    for base in sorted(ancestors(ctx, call.func)):
        if last_part(base) in TORCH_OPTIMIZERS or last_part(base) in KERAS_OPTIMIZERS:
            if base.split(".")[0] in _OPTIMIZER_LIBRARIES:
                return base
    return None


# A project's own optimizer implementation derives from a framework's base class.
_BASE_OPTIMIZERS = {
    "torch": ("torch.optim.Optimizer", "torch.optim.optimizer.Optimizer"),
    "keras": ("keras.optimizers.Optimizer", "keras.optimizers.legacy.Optimizer", "keras.optimizer_v2.optimizer_v2.OptimizerV2"),
    "tf1": ("tensorflow.train.Optimizer", "tensorflow.compat.v1.train.Optimizer", "tensorflow.python.training.optimizer.Optimizer"),
}
# Its momentum parameter, as its own ``__init__`` names it: (name, kind, the β2 partner).
_OWN_MOMENTUM_PARAMETERS = (
    ("betas", ADAM, None), ("beta_1", ADAM, "beta_2"), ("beta1", ADAM, "beta2"), ("b1", ADAM, "b2"), ("momentum", SGD, None),
)


@family_fact
@dataclass
class OwnOptimizers:
    """Per module: its classes that implement an optimizer on a framework's base class
    (``class Adam(keras.optimizers.Optimizer)`` in bert4keras, ``class Adam(torch.optim.Optimizer)``
    in fairseq): the framework ("torch", "keras", "tf1") and how the class's own
    ``__init__`` takes its momentum: the parameter, its position for callers (after
    self), its default β1/μ, whether it is a (β1, β2) pair, and the default β2."""

    classes: dict[str, tuple[str, str, str, int, float, bool, float]]


def own_optimizers(ctx: "FileContext") -> dict[str, tuple[str, str, str, int, float, bool, float]]:
    """The classes of this file that ``OwnOptimizers`` records."""
    found = {}
    for cls in ctx.tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        bases = [re.sub(r"^tensorflow\.compat\.v[12]\.", "tensorflow.", ctx.qualname(b) or "") for b in cls.bases]
        framework = next((f for b in bases for f, names in _BASE_OPTIMIZERS.items() if b.endswith(names)), None)
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if framework is None or init is None:
            continue
        positional = [a.arg for a in (*init.args.posonlyargs, *init.args.args)][1:]
        defaults = {
            a.arg: d for a, d in zip([*init.args.posonlyargs, *init.args.args][-len(init.args.defaults):] if init.args.defaults else [], init.args.defaults)
        }
        defaults.update({a.arg: d for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults) if d is not None})
        for name, kind, partner in _OWN_MOMENTUM_PARAMETERS:
            if name not in defaults:
                continue
            value = _signature_default(ctx, defaults[name])
            pair = isinstance(value, (tuple, list))
            first = value[0] if pair and value else value
            second = value[1] if pair and len(value) > 1 else _signature_default(ctx, defaults[partner]) if partner in defaults else 0.999
            if not isinstance(first, (int, float)) or isinstance(first, bool) or not isinstance(second, (int, float)):
                continue
            position = positional.index(name) if name in positional else -1
            found[cls.name] = (framework, kind, name, position, float(first), pair, float(second))
            break
    return found


def _signature_default(ctx: "FileContext", node: ast.expr) -> object:
    """A parameter's default: a literal (``betas=(0.9, 0.98)``), or a constant's value."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ctx.values.value(node)


def own_optimizer(ctx: "FileContext", call: ast.Call, framework: str) -> Momentum | None:
    """The momentum of a project's own optimizer class of ``framework`` built by
    ``call`` (directly, through a subclass or an ``extend_with_*`` factory, in this
    file or another), read against its own ``__init__``."""
    if not last_part(ctx.qualname(call.func) or "")[:1].isupper():
        return None
    for path, name in project_classes(ctx, call.func):
        facts = ctx.project.modules.get(path)
        record = facts.get(OwnOptimizers) if facts is not None else None
        own = record.classes.get(name) if record is not None else None
        if own is None or own[0] != framework:
            continue
        _, kind, arg, position, default, pair, beta2 = own
        spec = Spec(kind, arg, position if position >= 0 else None, default, pair, beta2 if kind == ADAM else None)
        base = {"torch": "torch.optim.Optimizer", "keras": "keras Optimizer", "tf1": "tf.train.Optimizer"}[framework]
        return coefficient(ctx, call, spec, f"{last_part(ctx.qualname(call.func) or '')} (derived from {base})")
    return None


def _defined_here(ctx: "FileContext", name: str) -> bool:
    return any(isinstance(n, ast.ClassDef) and n.name == name for n in ctx.tree.body)


def timm_optimizer(ctx: "FileContext", call: ast.Call, factory: str) -> Momentum | None:
    """timm's factories: the ``opt`` name picks the optimizer (default 'sgd', which
    is Nesterov SGD with ``momentum=0.9``)."""
    kwargs = [kw.value for kw in call.keywords if kw.arg is None]
    from_args = any(
        isinstance(k, ast.Call) and last_part(ctx.qualname(k.func)) == "optimizer_kwargs" for k in kwargs
    )
    if kwargs and not from_args:
        return None  # **kwargs of unknown content may choose the optimizer
    if factory == "create_optimizer" or from_args:
        # create_optimizer(args, model) / create_optimizer_v2(model, **optimizer_kwargs(cfg=args)):
        # the args namespace carries opt and momentum
        opt_value, momentum_value = ctx.project.argparse_default("opt"), ctx.project.argparse_default("momentum")
        momentum_note = f" (args.momentum defaults to {momentum_value})"
    else:
        opt_node = argument(call, "opt", 1)
        opt_value = "sgd" if opt_node is None else ctx.values.value(opt_node)
        momentum_node = argument(call, "momentum", 4)
        momentum_value = 0.9 if momentum_node is None else ctx.values.value(momentum_node)
        momentum_note = ""
        if momentum_node is not None and not isinstance(momentum_node, ast.Constant):
            momentum_note = f" ({ctx.text(momentum_node)} defaults to {momentum_value})"
    if not isinstance(opt_value, str):
        return None  # which optimizer is chosen is not known statically
    opt = opt_value.lower().split("_")[-1]
    label = f"timm {factory}(opt={opt_value!r})"
    if opt in _TIMM_PLAIN_NAMES:
        return Momentum(label, PLAIN, 0.0)
    if opt in _TIMM_SGD_NAMES or opt in ("rmsprop", "rmsproptf"):
        if momentum_value is UNKNOWN:
            return Momentum(label, SGD, None, note=" (momentum not known statically)")
        if not isinstance(momentum_value, (int, float)) or isinstance(momentum_value, bool) or momentum_value <= 0:
            return Momentum(label, PLAIN, 0.0)
        return Momentum(label, SGD, float(momentum_value), note=momentum_note)
    if opt == "lion":
        return Momentum(label, SIGN, 0.9, 0.99)
    return Momentum(label, ADAM, 0.9, 0.999)  # timm's other optimizers all have betas (OptimInfo.has_betas)


_TORCH_BY_LOWER = {name.lower(): spec for name, spec in TORCH_OPTIMIZERS.items()}


def configured_optimizer(name: str, settings: dict[str, object], label: str | None = None) -> Momentum | None:
    """The momentum of a torch optimizer named in a configuration rather than built
    in code (OpenMMLab's ``dict(type='SGD', momentum=0.9)``, detectron2's
    ``SOLVER.OPTIMIZER = "ADAMW"``): ``name`` as the config spells it (a dotted
    path or any case), ``settings`` its keyword arguments as literals (UNKNOWN
    where not known statically). None for a name the catalogue does not know."""
    short = last_part(name)
    spec = TORCH_OPTIMIZERS.get(short) or _TORCH_BY_LOWER.get(short.lower())
    if spec is None:
        return None
    label = label or short
    if spec.kind == PLAIN or spec.arg is None:
        return Momentum(label, PLAIN, 0.0)
    if spec.arg not in settings:
        if spec.default is None or spec.default <= 0:
            return Momentum(label, PLAIN, 0.0)
        return Momentum(label, spec.kind, spec.default, spec.beta2)
    value, beta2 = settings[spec.arg], spec.beta2
    if spec.pair and isinstance(value, (tuple, list)) and value:
        if len(value) > 1 and isinstance(value[1], (int, float)) and not isinstance(value[1], bool):
            beta2 = float(value[1])
        value = value[0]
    if value is None or value is False:
        return Momentum(label, PLAIN, 0.0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Momentum(label, PLAIN, 0.0) if value <= 0 else Momentum(label, spec.kind, float(value), beta2)
    return Momentum(label, spec.kind, None, beta2, f" ({spec.arg} not known statically)")


# -- clipping ---------------------------------------------------------------------

# Keywords through which a helper receives a clipping threshold (timm's
# loss_scaler(..., clip_grad=...), fairseq's clip_norm, Lightning's ...).
CLIP_KEYWORDS = {
    "clip_grad", "grad_clip", "clip_grad_norm", "max_grad_norm", "clip_norm", "gradient_clip_val", "clip_value",
    "clip_grad_value", "grad_clip_norm", "gradient_clipping", "clip_max_norm", "grad_norm_clip", "clip_val",
    "clip_gradients",  # tf.contrib.layers.optimize_loss(..., clip_gradients=5.0)
}
_THRESHOLD_KEYWORDS = ("max_norm", "clip_value", "value", "gradient_clip_val", "clip_val", "max_grad_norm", "clip_norm")


def is_clip_name(name: str) -> bool:
    """``clip_grad_norm_``, ``clip_gradients``, ``dispatch_clip_grad``, ``clip_by_global_norm``."""
    lowered = name.lower()
    return "clip" in lowered and ("grad" in lowered or "norm" in lowered)


@dataclass
class Clip:
    """A clipping call and the threshold expression it receives (if any)."""

    call: ast.Call
    threshold: ast.expr | None


def clip_of(ctx: "FileContext", call: ast.Call) -> Clip | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if is_clip_name(name):
        threshold = None
        for kw_name in _THRESHOLD_KEYWORDS:
            kw = keyword(call, kw_name)
            if kw is not None:
                threshold = kw.value
                break
        else:
            if len(call.args) >= 2 and not any(isinstance(a, ast.Starred) for a in call.args[:2]):
                threshold = call.args[1]
        return Clip(call, threshold)
    for kw in call.keywords:
        if kw.arg in CLIP_KEYWORDS:
            return Clip(call, kw.value)
    return None


def clamping_hook(call: ast.Call) -> bool:
    """``p.register_hook(lambda g: g.clamp(-1, 1))``: clipping by gradient hook."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr in ("register_hook", "register_post_accumulate_grad_hook")):
        return False
    for node in ast.walk(call):
        if isinstance(node, ast.Attribute) and node.attr in ("clamp", "clamp_", "clip", "clip_") or (
            isinstance(node, ast.Name) and "clip" in node.id.lower()
        ):
            return True
    return False


# -- gates: clipping that happens only when a flag is set -------------------------


@dataclass
class Gate:
    """Why a clip is off with the defaults: ``flag`` (``args.clip_grad``) defaults to
    ``default`` (None, 0, False)."""

    flag: ast.expr
    default: object

    def describe(self, ctx: "FileContext") -> str:
        return f"{ctx.text(self.flag)} defaults to {self.default!r}"


def _truth(ctx: "FileContext", node: ast.expr) -> tuple[object, ast.expr | None]:
    """Static truth of a condition with the defaults: (True/False/UNKNOWN, the flag
    that decided it)."""
    if isinstance(node, ast.BoolOp):
        results = [_truth(ctx, v) for v in node.values]
        if isinstance(node.op, ast.And):
            for value, flag in results:
                if value is False:
                    return False, flag
            return (True, None) if all(v is True for v, _ in results) else (UNKNOWN, None)
        for value, flag in results:
            if value is True:
                return True, flag
        return (False, results[0][1]) if all(v is False for v, _ in results) else (UNKNOWN, None)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value, flag = _truth(ctx, node.operand)
        return (not value if value is not UNKNOWN else UNKNOWN), flag
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = node.left, node.comparators[0]
        a, b = ctx.values.value(left), ctx.values.value(right)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN, None
        flag = left if not isinstance(left, ast.Constant) else right
        op = node.ops[0]
        try:
            if isinstance(op, ast.Is):
                return a is b, flag
            if isinstance(op, ast.IsNot):
                return a is not b, flag
            if isinstance(op, ast.Eq):
                return a == b, flag
            if isinstance(op, ast.NotEq):
                return a != b, flag
            if a is None or b is None:
                return False, flag  # `None > 0` would raise: the clip branch is not taken
            if isinstance(op, ast.Gt):
                return a > b, flag
            if isinstance(op, ast.GtE):
                return a >= b, flag
            if isinstance(op, ast.Lt):
                return a < b, flag
            if isinstance(op, ast.LtE):
                return a <= b, flag
        except TypeError:
            return UNKNOWN, None
        return UNKNOWN, None
    if isinstance(node, (ast.Name, ast.Attribute)):
        value = ctx.values.value(node)
        if value is UNKNOWN:
            return UNKNOWN, None
        return bool(value), node
    return UNKNOWN, None


def branch_state(ctx: "FileContext", node: ast.AST) -> tuple[object, ast.expr | None]:
    """Does the code run with the defaults, as far as the ``if``s around ``node`` (up
    to its function) tell: (False, the flag that turns it off), (True, None) when
    every enclosing test is known to take its branch, else (UNKNOWN, None). Used for
    an optimizer chosen by an option: ``if args.adam: Adam(...) else: RMSprop(...)``."""
    state: object = True
    child: ast.AST = node
    parent = ctx.parents.get(node)
    while parent is not None and not isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        if isinstance(parent, (ast.If, ast.IfExp)) and child is not parent.test:
            in_body = child in parent.body if isinstance(parent.body, list) else child is parent.body
            value, flag = _truth(ctx, parent.test)
            if value is UNKNOWN:
                state = UNKNOWN
            elif bool(value) != in_body:
                return False, flag if flag is not None else parent.test
        child, parent = parent, ctx.parents.get(parent)
    return state, None


def gate_of(ctx: "FileContext", clip: Clip, top: ast.AST | None = None, step: ast.AST | None = None) -> Gate | None:
    """The flag that keeps this clip off with the defaults, if one does: an
    enclosing ``if`` whose test is false, or a threshold of None/0 handed to a
    helper that then skips clipping. Of several, the one named for clipping
    (``args.clip_grad`` rather than ``loss_scaler is not None``). An ``if`` that
    also encloses ``step`` (``if args.do_train:`` around the whole loop) decides
    whether training runs at all, not whether the clip runs before the step."""
    gates: list[Gate] = []
    around_step = _ancestors(ctx, step) if step is not None else set()
    node: ast.AST = clip.call
    parent = ctx.parents.get(node)
    while parent is not None and parent is not top:
        if isinstance(parent, (ast.If, ast.IfExp)) and id(parent) not in around_step:
            in_body = node in parent.body if isinstance(parent.body, list) else node is parent.body
            in_else = node in parent.orelse if isinstance(parent.orelse, list) else node is parent.orelse
            if in_body or in_else:
                value, flag = _truth(ctx, parent.test)
                if value is not UNKNOWN and flag is not None and bool(value) != in_body:
                    gates.append(Gate(flag, ctx.values.value(flag)))
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            break
        node, parent = parent, ctx.parents.get(parent)
    if clip.threshold is not None and isinstance(clip.threshold, (ast.Name, ast.Attribute)):
        value = ctx.values.value(clip.threshold)
        if value is None or value is False or (isinstance(value, (int, float)) and value == 0):
            gates.append(Gate(clip.threshold, value))
    if not gates:
        return None
    return max(gates, key=lambda g: is_clip_flag(ctx.text(g.flag)))


def _ancestors(ctx: "FileContext", node: ast.AST) -> set[int]:
    found: set[int] = set()
    parent = ctx.parents.get(node)
    while parent is not None:
        found.add(id(parent))
        parent = ctx.parents.get(parent)
    return found


def is_clip_flag(text: str) -> bool:
    lowered = text.lower()
    return "clip" in lowered or "grad_norm" in lowered or "max_norm" in lowered


# The old default, and a gloss that says it is off ("default: None, no clipping",
# "default: 0 (disabled)"), which the new default would make false: both are rewritten.
_HELP_DEFAULT = re.compile(
    r"default(\s*(is|:|=)?\s*)(None|0\.0|0|False)(?!\w|\.\d)"
    r"(\s*[,;]\s*(i\.e\.\s*)?(no|not|off|disabled?|none)\b[^)\]\"'.;]*|\s*\(\s*(no|not|off|disabled?)\b[^)]*\))?",
    re.IGNORECASE,
)


def _help_edits(ctx: "FileContext", call: ast.Call, new_value: str) -> tuple | None:
    """The edit that keeps an argparse help text true once the default changes
    (``help="max norm (default: None)"``): () when it does not state the default,
    None when it does in a form we cannot rewrite (the fix is then not offered)."""
    from losslint.findings import NodeEdit

    help_kw = keyword(call, "help")
    if help_kw is None:
        return ()
    literal = ctx.text(help_kw.value)
    if not _HELP_DEFAULT.search(literal):
        return ()
    if not (isinstance(help_kw.value, ast.Constant) and isinstance(help_kw.value.value, str)):
        return None
    updated = _HELP_DEFAULT.sub(lambda m: f"default{m.group(1)}{new_value}", literal)
    try:
        ast.parse(updated, mode="eval")
    except SyntaxError:
        return None
    return (NodeEdit(ctx.span(help_kw.value), "BaseExpression", lambda _n: cst.parse_expression(updated)),)


def default_fix_edit(ctx: "FileContext", gate: Gate, max_norm: float):
    """Where the gate's flag gets its default in this file, and the edits that set it
    on: (the node to point at, a tuple of NodeEdits) or None when the default is
    elsewhere (or its help text says the old default in a form we cannot update)."""
    from losslint.findings import NodeEdit  # local: findings imports nothing from here

    flag = gate.flag
    if not is_clip_flag(ctx.text(flag)):
        return None  # `if loss_scaler is not None:` gates it, but that default is not ours to change
    new_value = "True" if isinstance(gate.default, bool) else repr(float(max_norm))
    if isinstance(flag, ast.Attribute) and not (isinstance(flag.value, ast.Name) and flag.value.id == "self"):
        for call in ctx.nodes_of(ast.Call):
            if isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument" and argparse_dest(call) == flag.attr:
                help_edits = _help_edits(ctx, call, new_value)
                if help_edits is None:
                    return None
                default = keyword(call, "default")
                if default is not None:
                    edit = NodeEdit(ctx.span(default.value), "BaseExpression", lambda _n: cst.parse_expression(new_value))
                    return call, (edit, *help_edits)
                if help_edits:
                    return None  # one edit per node: the help and the new keyword would both rewrite the call
                return call, (NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, "default", new_value)),)
        for cls in ctx.nodes_of(ast.ClassDef):
            for stmt in cls.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
                if isinstance(target, ast.Name) and target.id == flag.attr and stmt.value is not None:
                    return stmt, (NodeEdit(ctx.span(stmt.value), "BaseExpression", lambda _n: cst.parse_expression(new_value)),)
        return None
    if isinstance(flag, ast.Name):
        bindings = ctx.values.bindings(flag.id, flag)
        if bindings and len(bindings) == 1 and bindings[0].value is not None and not bindings[0].path:
            value = bindings[0].value
            return value, (NodeEdit(ctx.span(value), "BaseExpression", lambda _n: cst.parse_expression(new_value)),)
    return None


# -- small helpers ----------------------------------------------------------------


def enclosing_statement(ctx: "FileContext", node: ast.AST) -> ast.stmt | None:
    current: ast.AST | None = node
    while current is not None and not isinstance(current, ast.stmt):
        current = ctx.parents.get(current)
    return current  # type: ignore[return-value]


def calls_in(node: ast.AST) -> Iterator[ast.Call]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            yield sub


def is_lightning_module(ctx: "FileContext", cls: ast.ClassDef | None) -> bool:
    if cls is None:
        return False
    for base in cls.bases:
        name = ctx.qualname(base) or ""
        if last_part(name) in ("LightningModule",) or name.endswith("LightningModule"):
            return True
    return False


# -- step sites and the clipping that reaches them (LL301, LL304, the facts) ----------------

_SCALERS = ("GradScaler", "ShardedGradScaler")


# -- step sites ----------------------------------------------------------------------


class StepSite:
    """One ``step()`` of an optimizer: the call, the optimizer expression, the
    GradScaler that steps it (if any) and the closure handed to it (if any)."""

    def __init__(
        self, call: ast.Call, optimizer: ast.expr, scaler: ast.expr | None, closure: ast.expr | None, wrapper_method: bool = False
    ) -> None:
        self.call, self.optimizer, self.scaler, self.closure = call, optimizer, scaler, closure
        # ``optimizer.step_and_update_lr()``: a step only when an object wrapping an optimizer does it
        self.wrapper_method = wrapper_method

    def holds(self, found: list) -> list:
        """What this site steps, of what its receiver may hold."""
        return found if not self.wrapper_method or (found and all(f.wrapped for f in found)) else []


def _is_scaler(ctx: FileContext, node: ast.expr) -> bool:
    text = (dotted(node) or "").lower()
    if "scaler" in text:
        return True
    if isinstance(node, ast.Name):
        value = ctx.values.resolve_name(node)
        return isinstance(value, ast.Call) and last_part(ctx.qualname(value.func)) in _SCALERS
    return False


def _held(node: ast.expr) -> bool:
    """An expression that may hold an optimizer: ``optimizer``, ``self.optimizer``, and
    an entry of a dict or tuple that holds one (``kwargs["optimizer"]``, ``optimizers[0]``)."""
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and isinstance(key.value, (str, int)) and isinstance(node.value, (ast.Name, ast.Attribute))
    return isinstance(node, (ast.Name, ast.Attribute))


def step_sites(ctx: FileContext) -> Iterable[StepSite]:
    for call in ctx.nodes_of(ast.Call):
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        if func.attr == "step" and _held(func.value):
            if isinstance(func.value, (ast.Name, ast.Attribute)) and _is_scaler(ctx, func.value):
                if call.args and _held(call.args[0]):
                    yield StepSite(call, call.args[0], func.value, None)
            else:
                closure = argument(call, "closure", 0)
                yield StepSite(call, func.value, None, closure)
        elif func.attr == "optimizer_step" and call.args and isinstance(call.args[0], (ast.Name, ast.Attribute)):
            yield StepSite(call, call.args[0], None, None)  # torch_xla's xm.optimizer_step(optimizer)
        elif func.attr.startswith("step_") and isinstance(func.value, (ast.Name, ast.Attribute)):
            yield StepSite(call, func.value, None, None, wrapper_method=True)


# -- clipping that reaches a step -------------------------------------------------------


def function_of(ctx: FileContext, node: ast.AST) -> ast.AST:
    return ctx.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef) or ctx.tree


def _called_functions(ctx: FileContext, scope: ast.AST, functions: dict[str, list], resolver: Resolver) -> list[ast.AST]:
    """The functions ``scope`` calls, or hands to a call (``optimizer.step(closure)``);
    worked out once per scope and file (a script of many training cells asks for its
    module at every step)."""
    key = ("momentum_torch.called_functions", id(scope))
    called = ctx.memo.get(key)
    if called is None:
        called = []
        for call in resolver.own_nodes(scope):
            if isinstance(call, ast.Call):
                name = call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else None
                names = [name, *(a.id for a in call.args if isinstance(a, ast.Name))]
                called.extend(f for n in names for f in functions.get(n or "", []) if f is not scope)
        ctx.memo[key] = called
    return called


def _callers(ctx: "FileContext", function: ast.AST) -> list[ast.AST]:
    """The functions (or the module) of this file that call ``function``."""
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    return [function_of(ctx, site.call) for site in call_sites(ctx, function, across_files=False) if site.call is not None]


def scopes_reaching(ctx: FileContext, resolver: Resolver, site_node: ast.AST) -> list[ast.AST]:
    """The code on the way to a step: its function, the functions that function
    calls (two levels), its callers and what they call (one level). The same for
    every step of one function: worked out once per function."""
    function = function_of(ctx, site_node)
    key = ("momentum_torch.scopes_reaching", id(function))
    cached = ctx.memo.get(key)
    if cached is not None:
        return cached
    functions = resolver.functions()
    scopes: list[ast.AST] = [function]
    listed: set[int] = {id(function)}
    frontier = [function]
    for _ in range(2):
        reached = []
        for scope in frontier:
            for f in _called_functions(ctx, scope, functions, resolver):
                if id(f) not in listed:
                    listed.add(id(f))
                    reached.append(f)
        frontier = reached
        scopes.extend(frontier)
    for caller in _callers(ctx, function):
        if id(caller) not in listed:
            listed.add(id(caller))
            scopes.append(caller)
            for f in _called_functions(ctx, caller, functions, resolver):
                if id(f) not in listed:
                    listed.add(id(f))
                    scopes.append(f)
    ctx.memo[key] = scopes
    return scopes


def _clips_in(ctx: FileContext, resolver: Resolver, scope: ast.AST) -> list[Clip]:
    key = ("momentum_torch.clips_in", id(scope))
    clips = ctx.memo.get(key)
    if clips is None:
        clips = [clip for call in resolver.own_nodes(scope) if isinstance(call, ast.Call) and (clip := clip_of(ctx, call)) is not None]
        ctx.memo[key] = clips
    return clips


@family_fact
@dataclass
class ClippingFunctions:
    """Per module: its functions and methods that clip the gradients whatever they
    are passed (``def do_gradient_ops(self): clip_grad_norm_(self.parameters(), 3)``),
    by name; a call of one from another file, on the way to a step, clips."""

    names: list[str]


# Names too common to tell one project's function from another's.
_GENERIC_NAMES = {"step", "__call__", "forward", "backward", "update", "train", "run", "fit", "main", "__init__", "zero_grad"}


def clipping_functions(ctx: "FileContext") -> list[str]:
    """The functions of this file whose own body clips with no flag that keeps the
    clip off (see ``ClippingFunctions``); clip-named ones are found by name anyway."""
    found = []
    for function in ctx.nodes_of(ast.FunctionDef):
        if function.name in _GENERIC_NAMES or is_clip_name(function.name):
            continue
        clips = [
            Clip(call, None) for call in calls_in(function)
            if is_clip_name(call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", ""))
        ]
        if clips and any(gate_of(ctx, clip, top=function) is None for clip in clips):
            found.append(function.name)
    return found


def _calls_clipping_function(ctx: FileContext, resolver: Resolver, scope: ast.AST) -> list[Clip]:
    """Calls in ``scope`` of another file's clipping function (``model.do_gradient_ops()``)."""
    if "momentum.clipping_functions" not in ctx.memo:
        own = set(resolver.functions())
        ctx.memo["momentum.clipping_functions"] = {
            name for key, fact in ctx.project.each(ClippingFunctions, scope=ctx.file or None) if key != ctx.file for name in fact.names
        } - own
    names = ctx.memo["momentum.clipping_functions"]
    if not names:
        return []
    return [
        Clip(call, None) for call in resolver.own_nodes(scope)
        if isinstance(call, ast.Call) and isinstance(call.func, (ast.Attribute, ast.Name))
        and (call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id) in names
    ]


def clips_reaching(ctx: FileContext, resolver: Resolver, site_node: ast.AST) -> list[Clip]:
    """Clipping calls on the way to the step (another file's clipping function
    called there included), and clamping hooks anywhere in the file."""
    clips: list[Clip] = []
    seen: set[int] = set()
    for scope in scopes_reaching(ctx, resolver, site_node):
        for clip in [*_clips_in(ctx, resolver, scope), *_calls_clipping_function(ctx, resolver, scope)]:
            if id(clip.call) not in seen:
                seen.add(id(clip.call))
                clips.append(clip)
    hooks = ctx.memo.get("momentum_torch.clamping_hooks")
    if hooks is None:
        hooks = [Clip(call, None) for call in ctx.nodes_of(ast.Call) if clamping_hook(call)]
        ctx.memo["momentum_torch.clamping_hooks"] = hooks
    clips.extend(hooks)
    return clips


_BACKWARDS = ("backward", "manual_backward")


def trains_on_data(ctx: FileContext, resolver: Resolver, site_node: ast.AST) -> bool:
    """Is this step part of training: gradients from a ``backward()`` on the way to
    it (not set by hand, as optimizer unit tests do), in a function that is not a
    test?"""
    function = function_of(ctx, site_node)
    if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name.startswith("test"):
        return False
    return any(_backward_in(ctx, resolver, scope) for scope in scopes_reaching(ctx, resolver, site_node))


def _backward_in(ctx: FileContext, resolver: Resolver, scope: ast.AST) -> bool:
    key = ("momentum_torch.backward_in", id(scope))
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = any(
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _BACKWARDS
            for call in resolver.own_nodes(scope)
        )
    return found


def gate_fix(ctx: FileContext, gate: Gate, rule_description: str) -> tuple[ast.AST | None, Fix | None]:
    located = default_fix_edit(ctx, gate, ctx.settings.clip_max_norm)
    if located is None:
        return None, None
    node, edits = located
    value = "True" if isinstance(gate.default, bool) else repr(float(ctx.settings.clip_max_norm))
    return node, Fix(f"default {ctx.text(gate.flag)} to {value} so that {rule_description}", Applicability.UNSAFE, edits)
