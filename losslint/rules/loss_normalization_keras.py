"""LL102: a Keras loss that returns a per-sample tensor already divided by a count
taken over the whole batch, which Keras then averages over the batch again.

The seed's case (ssd_keras before commit 3526a17): ``SSDLoss.compute_loss``
returned ``(class_loss + alpha * loc_loss) / max(1, n_positive)``, shape (B,),
with ``n_positive`` summed over the whole batch; every Keras generation divides a
rank >= 1 loss by its size (docs/semantics.md §2), so the value is ~ 1/b and the
short last batch of every pass spikes. A scalar return is left alone by every
Keras version; per-sample normalization (each sample by its own count) and a
compensating ``* batch_size`` are correct and stay quiet.

Which functions are Keras losses: a ``keras.losses.Loss`` subclass's ``call``, a
``(y_true, y_pred)`` function or method in a module that uses TensorFlow/Keras,
and anything given to ``compile(loss=...)`` in a file that reaches it by its
imports (the ``LossFacts`` of ``analysis/scaling.py``: ``ssd_loss.compute_loss`` with
``ssd_loss = SSDLoss(...)`` and SSDLoss imported from keras_ssd_loss), so the loss
file is judged even when the ``compile`` is in train.ipynb, and one class's
``compute_loss`` is never taken for another's. The finding goes on the ``return``, where the fix goes.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Iterator

from losslint.analysis.names import last_part
from losslint.analysis.scaling import Kind, LossEvaluator, compiled_loss_entries, compiled_loss_users
from losslint.context import FileContext
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, NodeEdit, Severity, cst
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.project import file_key
from losslint.rules.loss_chain import training_paths

_KERAS_PACKAGES = ("tensorflow", "keras", "tf_keras")


def _params(function: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _is_keras_loss_class(ctx: FileContext, cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        qual = ctx.qualname(base) or ""
        if last_part(qual) in ("Loss", "LossFunctionWrapper") and (
            qual.startswith(_KERAS_PACKAGES) or "losses" in qual.split(".")
        ):
            return True
    return False


def keras_loss_functions(ctx: FileContext) -> Iterator[tuple[ast.FunctionDef, str, list[str]]]:
    """(function, display name, the other files that compile with it, as project
    keys) for every Keras loss here."""
    uses_keras = ctx.imports.imports_any(*_KERAS_PACKAGES)
    own = file_key(ctx.file) if ctx.file else ctx.path
    entries = compiled_loss_entries(ctx.project)
    compiling = bool(entries) or "compile" in ctx.source

    def judge(function: ast.FunctionDef, display: str, loss_class: bool) -> tuple[ast.FunctionDef, str, list[str]] | None:
        users = compiled_loss_users(ctx, display, entries) if compiling else []
        params = _params(function)
        looks_like_loss = uses_keras and len(params) >= 2 and params[0] == "y_true" and params[1] == "y_pred"
        if loss_class or looks_like_loss or users:
            return function, display, [u for u in users if u != own]
        return None

    for stmt in ctx.tree.body:
        if isinstance(stmt, ast.FunctionDef):
            found = judge(stmt, stmt.name, False)
            if found:
                yield found
        elif isinstance(stmt, ast.ClassDef):
            loss_class = _is_keras_loss_class(ctx, stmt)
            for method in stmt.body:
                if isinstance(method, ast.FunctionDef) and len(_params(method)) >= 2:
                    found = judge(method, f"{stmt.name}.{method.name}", loss_class and method.name == "call")
                    if found:
                        yield found


def _batch_size_code(ctx: FileContext, batch_tensor: str, value: ast.expr) -> str | None:
    """``tf.cast(tf.shape(y_pred)[0], total_loss.dtype)`` with the module's own alias."""
    dtype_of = f"{ctx.text(value)}.dtype" if isinstance(value, ast.Name) else None
    aliases = ctx.imports.aliases
    for alias, target in aliases.items():
        if target == "tensorflow":
            return f"{alias}.cast({alias}.shape({batch_tensor})[0], {dtype_of or alias + '.float32'})"
    for alias, target in aliases.items():
        if target == "keras.ops":
            return f"{alias}.cast({alias}.shape({batch_tensor})[0], {dtype_of or repr('float32')})"
    for alias, target in aliases.items():
        if target == "keras.backend":
            return f"{alias}.cast({alias}.shape({batch_tensor})[0], {dtype_of or alias + '.floatx()'})"
    for alias, target in aliases.items():
        if target == "keras":
            return f"{alias}.ops.cast({alias}.ops.shape({batch_tensor})[0], {dtype_of or repr('float32')})"
    return None


@register
class KerasLossAveragedTwice(Rule):
    code = "LL102"
    chain = ChainRole.SPIKING_LOSS
    name = "keras-loss-averaged-twice"
    severity = Severity.WARNING
    triggers = ("loss", "Loss")
    fix_applicability = Applicability.UNSAFE
    summary = "A Keras loss returns a per-sample tensor already divided by a count over the whole batch; Keras averages it over the batch again."
    why = (
        "Keras reduces a loss of rank >= 1 by dividing by its size (Keras 2.0-2.2 by the batch size, tf.keras and "
        "Keras 3 by the number of elements). A (B,) loss already divided by a count summed over the whole batch (the "
        "number of positive boxes, of tokens) is therefore divided by a batch-wide quantity twice and scales as 1/b: "
        "the smaller last batch of every pass over the data spikes. This is the ssd_keras SSDLoss bug (fixed in "
        "commit 3526a17 by multiplying the loss by the batch size), reported as spikes every 1390 steps on Stack "
        "Overflow 47824598."
    )
    fix_doc = (
        "Multiplies the returned tensor by the batch size taken from y_pred (tf.shape(y_pred)[0]), as ssd_keras's "
        "author did, so that Keras's average gives sum / count. Unsafe: the loss of a full batch grows by a factor "
        "B, so retune the learning rate (or return the scalar sum / count instead)."
    )
    references = (
        "ssd_keras commit 3526a17341f26bb8934f7017704e654f62321a74 (\"fix: Make loss independent of batch size\")",
        "https://stackoverflow.com/questions/47824598",
        "https://keras.io/api/losses/ (reduction='sum_over_batch_size')",
    )
    flagged = (
        Flagged(
            """
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(y_true[:, :, 0] > 0, tf.float32)
                per_sample = tf.reduce_sum(tf.square(y_true - y_pred)[:, :, 0] * mask, axis=-1)
                n_valid = tf.reduce_sum(mask)
                total = per_sample / tf.maximum(1.0, n_valid)
                return total

            model.compile(optimizer="sgd", loss=masked_loss)
            """,
            fixed="""
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(y_true[:, :, 0] > 0, tf.float32)
                per_sample = tf.reduce_sum(tf.square(y_true - y_pred)[:, :, 0] * mask, axis=-1)
                n_valid = tf.reduce_sum(mask)
                total = per_sample / tf.maximum(1.0, n_valid)
                return total * tf.cast(tf.shape(y_pred)[0], total.dtype)

            model.compile(optimizer="sgd", loss=masked_loss)
            """,
            unsafe=True,
            message_contains=("masked_loss", "tf.maximum(1.0, n_valid)", "1/batch size", "retune the learning rate"),
        ),
        Flagged(
            """
            from keras import ops

            class TokenLoss:
                def compute_loss(self, y_true, y_pred):
                    per_token = ops.sum(ops.abs(y_true - y_pred), axis=-1)
                    return ops.sum(per_token, axis=-1) / ops.sum(ops.ones_like(per_token))
            """,
            files=(("fit_model.py", "from train import TokenLoss\nmodel.compile(optimizer='adam', loss=TokenLoss().compute_loss)\n"),),
            fixed="""
            from keras import ops

            class TokenLoss:
                def compute_loss(self, y_true, y_pred):
                    per_token = ops.sum(ops.abs(y_true - y_pred), axis=-1)
                    return (ops.sum(per_token, axis=-1) / ops.sum(ops.ones_like(per_token))) * ops.cast(ops.shape(y_pred)[0], 'float32')
            """,
            unsafe=True,
            message_contains=("TokenLoss.compute_loss", "compile(loss=...) in fit_model.py"),
        ),
    )
    quiet = (
        Quiet(
            """
            from keras import ops

            class TokenLoss:
                def compute_loss(self, labels, logits):
                    per_token = ops.sum(ops.abs(labels - logits), axis=-1)
                    return ops.sum(per_token, axis=-1) / ops.sum(ops.ones_like(per_token))
            """,
            files=(
                ("fit_model.py", "from other_loss import OtherLoss\nmodel.compile(optimizer='adam', loss=OtherLoss().compute_loss)\n"),
                ("other_loss.py", "class OtherLoss:\n    def compute_loss(self, y_true, y_pred):\n        return y_pred\n"),
            ),
            why="the compute_loss given to compile is OtherLoss's (resolved through fit_model.py's import), not this class's",
        ),
        Quiet(
            """
            import tensorflow as tf
            def scalar_loss(y_true, y_pred):
                per_sample = tf.reduce_sum(tf.square(y_true - y_pred), axis=-1)
                return tf.reduce_sum(per_sample) / tf.maximum(1.0, tf.reduce_sum(y_true))
            """,
            why="a scalar return is left alone by every Keras version",
        ),
        Quiet(
            """
            import tensorflow as tf
            def per_sample_normalized(y_true, y_pred):
                positives = tf.reduce_max(y_true, axis=-1)
                n_pos = tf.reduce_sum(positives, axis=-1)
                loss = tf.reduce_sum(tf.square(y_true - y_pred), axis=-1)
                return tf.reduce_sum(loss * positives, axis=-1) / tf.maximum(1.0, n_pos)
            """,
            why="each sample divided by its own count: per-sample normalization, then Keras's batch mean",
        ),
        Quiet(
            """
            import tensorflow as tf
            class SSDLoss:
                def compute_loss(self, y_true, y_pred):
                    batch_size = tf.shape(y_pred)[0]
                    positives = tf.reduce_max(y_true[:, :, 1:-12], axis=-1)
                    n_positive = tf.reduce_sum(positives)
                    loss = tf.reduce_sum(tf.square(y_true - y_pred)[:, :, 0] * positives, axis=-1)
                    total_loss = loss / tf.maximum(1.0, n_positive)
                    total_loss = total_loss * tf.cast(batch_size, tf.float32)
                    return total_loss
            """,
            why="ssd_keras after its fix: multiplied back by the batch size",
        ),
        Quiet(
            """
            import keras
            def mse(y_true, y_pred):
                return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)
            """,
            why="a plain per-sample loss: Keras's batch mean is the only normalization",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        evaluator = LossEvaluator(ctx, tensor_params=True)
        for function, display, users in keras_loss_functions(ctx):
            for ret in (n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None):
                if ctx.enclosing(ret, ast.FunctionDef) is not function:
                    continue  # a nested helper's return (tf.cond branches)
                value = evaluator.loss(ret.value)
                if value.kind is not Kind.OVER_BATCH_COUNT:
                    continue
                yield self._finding(ctx, function, display, users, ret.value, value.evidence)

    def _finding(self, ctx: FileContext, function: ast.FunctionDef, display: str, users: list[str], value: ast.expr, evidence: str) -> Finding:
        where = f" (given to compile(loss=...) in {', '.join(display_path(Path(u)) for u in users)})" if users else ""
        message = (
            f"Keras loss {display}{where} returns a per-sample tensor already divided by a count over the whole batch "
            f"({evidence}); Keras averages it over the batch again, so the loss scales as 1/batch size and the short "
            "last batch of every pass spikes (a last batch of b samples weighs B/b)"
        )
        fix = None
        params = _params(function)
        batch_tensor = params[1] if len(params) >= 2 else params[0] if params else None
        code = _batch_size_code(ctx, batch_tensor, value) if batch_tensor else None
        if code is not None:
            def edit(node: cst.BaseExpression) -> cst.BaseExpression:
                left = node
                if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation, cst.IfExp)) and not node.lpar:
                    if not (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply)):
                        left = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                return cst.BinaryOperation(left=left, operator=cst.Multiply(), right=cst.parse_expression(code))

            fix = Fix("multiply by the batch size, as ssd_keras did", Applicability.UNSAFE, (NodeEdit(ctx.span(value), "BaseExpression", edit),))
            message += "; multiplying by the batch size makes a full batch's loss B times larger, so retune the learning rate"
        finding = ctx.finding(self, value, message, fix)
        finding.training_modules = training_paths(ctx, users)
        return finding
