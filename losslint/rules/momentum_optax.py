"""LL303 optax-momentum-without-clipping: an optax transform with momentum
(``adam``, ``adamw``, ``lion``, ``sgd(momentum=0.9)``, ``trace``,
``scale_by_adam``, ...) that no clip transform precedes.

optax clips as a link of the chain (``optax.chain(optax.clip_by_global_norm(1.0),
optax.adam(lr))``); any of the clip transforms (``clip_by_global_norm``, ``clip``,
``clip_by_block_rms``, ``adaptive_grad_clip``, ``per_example_global_norm_clip``)
anywhere in the file counts, since the chain is often assembled from named pieces.
The fix puts ``optax.clip_by_global_norm(1.0)`` first in the chain the transform
is already in, or wraps the transform in a new chain.

Flax's old ``flax.optim`` (``optim.Momentum(lr, beta=0.9).create(params)``,
``optimizer.apply_gradient(grads)``) has no clipping of its own: its momentum
optimizers are flagged unless the file clips gradients by hand (a call named for
clipping), with no fix.
"""

from __future__ import annotations

import ast
from typing import Iterable

from losslint.analysis.names import last_part
from losslint.context import FileContext
from losslint.findings import Applicability, Finding, Fix, NodeEdit, Severity, cst
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.momentum_common import (
    FLAX_OPTIM,
    OPTAX_CLIPS,
    OPTAX_DEFAULT_B1,
    OPTAX_TRANSFORMS,
    Momentum,
    Spec,
    coefficient,
    is_clip_name,
)

# What a file that trains with an optax transform shows: updates applied to parameters
# (``apply_gradient(`` is flax.optim's).
_TRAINING_WORDS = ("apply_updates", "apply_gradients", "TrainState", "Optimizer(", "optimizer.update(", "apply_gradient(")


def optax_transform(ctx: FileContext, call: ast.Call) -> Momentum | None:
    qual = ctx.qualname(call.func) or ""
    if not qual.startswith("optax."):
        return None
    name = last_part(qual)
    spec = OPTAX_TRANSFORMS.get(name)
    if spec is None:
        return None
    if name in OPTAX_DEFAULT_B1:
        spec = Spec(spec.kind, spec.arg, spec.position, OPTAX_DEFAULT_B1[name], spec.pair, spec.beta2)
    return coefficient(ctx, call, spec, f"optax.{name}")


def flax_optimizer(ctx: FileContext, call: ast.Call) -> Momentum | None:
    """``flax.optim.Momentum(lr, beta=0.9)``, ``optim.Adam(lr)`` (``from flax import optim``)."""
    qual = ctx.qualname(call.func) or ""
    if not qual.startswith("flax.optim."):
        return None
    spec = FLAX_OPTIM.get(last_part(qual))
    return coefficient(ctx, call, spec, f"flax.optim.{last_part(qual)}") if spec is not None else None


def _clips_by_hand(ctx: FileContext, calls: list[ast.Call]) -> bool:
    """flax.optim code clips the gradients itself (``clip_grads(grads, 1.0)``,
    ``optax.clip_by_global_norm``) before ``apply_gradient``."""
    for call in calls:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if is_clip_name(name):
            return True
    return False


def _optax_name(ctx: FileContext) -> tuple[str, tuple[str, ...]]:
    for name, target in ctx.imports.aliases.items():
        if target == "optax":
            return name, ()
    return "optax", ("import optax",)


def _enclosing_chain(ctx: FileContext, call: ast.Call) -> ast.Call | None:
    parent = ctx.parents.get(call)
    if isinstance(parent, ast.Call) and call in parent.args and (ctx.qualname(parent.func) or "") == "optax.chain":
        return parent
    return None


@register
class OptaxMomentumWithoutClipping(Rule):
    code = "LL303"
    chain = ChainRole.MOMENTUM
    name = "optax-momentum-without-clipping"
    severity = Severity.WARNING
    triggers = ("optax", "optim")
    fix_applicability = Applicability.UNSAFE
    summary = (
        "An optax transform with momentum (adam, adamw, lion, sgd(momentum=...), trace, ...) with no clip transform "
        "before it; a flax.optim (old API) momentum optimizer with no clipping in its file."
    )
    why = (
        "The transform keeps a running average of gradients, so one bad batch keeps moving the parameters: "
        "~1/(1-μ) steps for momentum μ; for Adam a bounded step followed by ~1/(1-b2) steps shrunk by the "
        "inflated second moment. optax clips only when a clip transform is part of the chain."
    )
    fix_doc = (
        "Puts optax.clip_by_global_norm(1.0) first in the transform's optax.chain, or wraps the transform in "
        "optax.chain(optax.clip_by_global_norm(1.0), ...). The optimizer state then is the chain's tuple; code "
        "that indexes into the state by hand must follow. No fix for inject_hyperparams(...) (its state's "
        "hyperparams would move), nor for flax.optim (no clip of its own: clip the gradients before "
        "apply_gradient, or move to optax). The norm is [tool.losslint] clip-max-norm. Unsafe: training changes."
    )
    references = ("https://optax.readthedocs.io/en/latest/api/transformations.html#optax.clip_by_global_norm",)
    flagged = (
        Flagged(
            """
            import optax

            tx = optax.adam(learning_rate=1e-3)
            opt_state = tx.init(params)
            updates, opt_state = tx.update(grads, opt_state)
            params = optax.apply_updates(params, updates)
            """,
            fixed="""
            import optax

            tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate=1e-3))
            opt_state = tx.init(params)
            updates, opt_state = tx.update(grads, opt_state)
            params = optax.apply_updates(params, updates)
            """,
            message_contains=("optax.adam", "second moment"),
            unsafe=True,
        ),
        Flagged(
            """
            import optax

            tx = optax.chain(
                optax.add_decayed_weights(1e-4),
                optax.sgd(0.1, momentum=0.9, nesterov=True),
            )
            state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
            """,
            fixed="""
            import optax

            tx = optax.chain(
                optax.clip_by_global_norm(1.0),
                optax.add_decayed_weights(1e-4),
                optax.sgd(0.1, momentum=0.9, nesterov=True),
            )
            state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
            """,
            message_contains=("momentum 0.9",),
            unsafe=True,
        ),
        Flagged(
            """
            from flax.training import train_state
            from optax import lion

            state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=lion(1e-4))
            """,
            fixed="""
            from flax.training import train_state
            from optax import lion
            import optax

            state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.chain(optax.clip_by_global_norm(1.0), lion(1e-4)))
            """,
            message_contains=("fixed-size steps",),
            unsafe=True,
        ),
        Flagged(
            """
            import jax
            from flax import optim

            optimizer_def = optim.Momentum(learning_rate=0.1, beta=0.9)
            optimizer = optimizer_def.create(params)
            grads = jax.grad(loss_fn)(optimizer.target)
            optimizer = optimizer.apply_gradient(grads)
            """,
            fixed=None,
            message_contains=("flax.optim.Momentum", "momentum 0.9", "flax.optim has no clip"),
        ),
        Flagged(
            """
            import optax

            b1 = 0.5
            tx = optax.adam(1e-3, b1)
            params = optax.apply_updates(params, updates)
            """,
            fixed="""
            import optax

            b1 = 0.5
            tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3, b1))
            params = optax.apply_updates(params, updates)
            """,
            message_contains=("β1=0.5", "(b1 = 0.5)", "an 8x spike moves it ~3.5x"),
            unsafe=True,
        ),
    )
    quiet = (
        Quiet(
            """
            import optax
            tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-4, weight_decay=0.1))
            """,
            why="clip_by_global_norm first in the chain",
        ),
        Quiet(
            """
            import optax
            clip = optax.clip(1.0)
            base = optax.adam(1e-3)
            tx = optax.chain(clip, base)
            """,
            why="the chain is assembled from named pieces and clips",
        ),
        Quiet(
            """
            import optax
            tx = optax.sgd(1e-2)
            tx2 = optax.adam(1e-3, b1=0.0)
            tx3 = optax.adagrad(1e-2)
            """,
            why="optax.sgd's momentum defaults to None; b1=0 keeps no average; adagrad has none",
        ),
        Quiet(
            """
            import optax
            tx = optax.chain(optax.adaptive_grad_clip(0.01), optax.sgd(0.1, momentum=0.9))
            """,
            why="adaptive gradient clipping",
        ),
        Quiet(
            """
            import optax
            def my_optimizer(learning_rate, b1=0.9):
                return optax.chain(optax.scale_by_adam(b1=b1), optax.scale_by_learning_rate(learning_rate))
            """,
            why="a library composing transforms: nothing in the file applies updates to parameters",
        ),
        Quiet(
            """
            import jax
            import jax.numpy as jnp
            from flax import optim

            def clip_grads(grads, max_norm):
                norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(grads)))
                return jax.tree_util.tree_map(lambda g: g * jnp.minimum(1.0, max_norm / norm), grads)

            optimizer = optim.Momentum(learning_rate=0.1, beta=0.9).create(params)
            grads = jax.grad(loss_fn)(optimizer.target)
            optimizer = optimizer.apply_gradient(clip_grads(grads, 1.0))
            """,
            why="flax.optim (the old API) with the gradients clipped by hand before apply_gradient",
        ),
        Quiet(
            """
            from flax import optim
            optimizer = optim.GradientDescent(learning_rate=0.1).create(params)
            optimizer = optimizer.apply_gradient(grads)
            """,
            why="flax.optim's GradientDescent keeps no running average",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        if not any(word in ctx.source for word in _TRAINING_WORDS):
            return  # a library composing transforms, or tests: nothing here trains
        calls = list(ctx.nodes_of(ast.Call))
        if any(last_part(ctx.qualname(c.func)) in OPTAX_CLIPS and (ctx.qualname(c.func) or "").startswith("optax") for c in calls):
            return
        yield from self._flax_optim(ctx, calls)
        optax_name, imports = _optax_name(ctx)
        max_norm = repr(float(ctx.settings.clip_max_norm))
        clip_code = f"{optax_name}.clip_by_global_norm({max_norm})"
        fixed_chains: set[int] = set()
        for call in calls:
            momentum = self._momentum(ctx, call)
            if momentum is None or not momentum.is_momentum:
                continue
            chain = _enclosing_chain(ctx, call)
            fix = None
            if chain is not None:
                if id(chain) not in fixed_chains:
                    fixed_chains.add(id(chain))
                    edit = NodeEdit(ctx.span(chain), "Call", lambda node: _prepend(node, clip_code))
                    fix = Fix(f"put {clip_code} first in the chain", Applicability.UNSAFE, (edit,), imports)
            elif not isinstance(call.func, ast.Call):  # inject_hyperparams(optax.adam)(...): its state would move
                edit = NodeEdit(ctx.span(call), "Call", lambda node: _wrap(node, optax_name, clip_code))
                fix = Fix(f"wrap in {optax_name}.chain({clip_code}, ...)", Applicability.UNSAFE, (edit,), imports)
            message = f"{momentum.optimizer} with no clip transform before it: {momentum.describe()}"
            yield ctx.finding(self, call, message, fix, severity=momentum.severity)

    def _flax_optim(self, ctx: FileContext, calls: list[ast.Call]) -> Iterable[Finding]:
        """flax.optim optimizers: no clip argument or transform to add, so no fix."""
        if "flax" not in ctx.source or _clips_by_hand(ctx, calls):
            return
        for call in calls:
            momentum = flax_optimizer(ctx, call)
            if momentum is None:
                continue
            momentum = momentum.resolved(ctx.project)
            if momentum.is_momentum:
                message = (
                    f"{momentum.optimizer} with no gradient clipping before apply_gradient (flax.optim has no clip "
                    f"of its own; clip the gradients, or move to optax with clip_by_global_norm): {momentum.describe()}"
                )
                yield ctx.finding(self, call, message, None, severity=momentum.severity)

    def _momentum(self, ctx: FileContext, call: ast.Call) -> Momentum | None:
        if isinstance(call.func, ast.Call) and last_part(ctx.qualname(call.func.func)) == "inject_hyperparams" and call.func.args:
            inner = call.func.args[0]
            name = last_part(ctx.qualname(inner))
            if (ctx.qualname(inner) or "").startswith("optax.") and name in OPTAX_TRANSFORMS:
                spec = OPTAX_TRANSFORMS[name]
                return coefficient(ctx, call, Spec(spec.kind, spec.arg, None, spec.default, spec.pair, spec.beta2), f"optax.{name} (inject_hyperparams)").resolved(ctx.project)
            return None
        momentum = optax_transform(ctx, call)
        return momentum.resolved(ctx.project) if momentum is not None else None


def _prepend(chain: cst.Call, clip_code: str) -> cst.Call:
    """The clip goes first, laid out like the chain's first argument (its own line
    in a one-argument-per-line chain)."""
    layout = chain.whitespace_before_args
    after = layout if isinstance(layout, cst.ParenthesizedWhitespace) else cst.SimpleWhitespace(" ")
    first = cst.Arg(cst.parse_expression(clip_code), comma=cst.Comma(whitespace_after=after))
    return chain.with_changes(args=[first, *chain.args])


def _wrap(node: cst.Call, optax_name: str, clip_code: str) -> cst.Call:
    return cst.Call(
        func=cst.parse_expression(f"{optax_name}.chain"),
        args=[
            cst.Arg(cst.parse_expression(clip_code), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(node),
        ],
    )
