"""LL302 keras-momentum-without-clipping: a Keras optimizer with momentum (SGD or
RMSprop with momentum > 0, Adam, AdamW, Nadam, Adamax, Lamb, Lion, ...) built
with none of ``clipnorm``, ``clipvalue``, ``global_clipnorm``, including the
string form ``model.compile(optimizer="adam")``.

Keras clips inside the optimizer, so the fix is an argument: ``global_clipnorm``
for tf.keras (TF 2.4 on); ``clipnorm``, which every Keras accepts, for standalone
``keras`` code (Keras before 2.4 has no global variant) and calls that use the
Keras 2 era's ``lr=``. A string optimizer
becomes a constructor call (``keras.optimizers.Adam(global_clipnorm=1.0)``),
through the ``keras`` or ``tf`` name the file already has, else with
``import keras`` added. A custom training loop that clips with
``tf.clip_by_global_norm`` (or any clipping call) keeps the file quiet.

TensorFlow 1's ``tf.train`` optimizers (``MomentumOptimizer``, ``AdamOptimizer``,
``RMSPropOptimizer(momentum=...)``, also as ``tf.compat.v1.train``) are judged the
same way when the file steps with ``minimize()`` or ``apply_gradients``; they take
no clip argument, so they get no fix. google-research/bert stays quiet: its
``AdamWeightDecayOptimizer`` is a project class (not a known constructor), and
``create_optimizer`` clips with ``tf.clip_by_global_norm`` before
``apply_gradients``.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable

from losslint.analysis.names import argument, keyword, last_part
from losslint.context import FileContext
from losslint.findings import Applicability, Finding, Fix, NodeEdit, Severity, cst, set_keyword
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.momentum_flow import ModuleMomentum
from losslint.rules.momentum_common import (
    KERAS_OPTIMIZERS,
    KERAS_STRINGS,
    TF1_OPTIMIZERS,
    Clip,
    Momentum,
    Spec,
    branch_state,
    clip_of,
    coefficient,
    default_fix_edit,
    gate_of,
    own_optimizer,
    project_optimizer_base,
)

_KERAS_ROOTS = ("keras", "tensorflow.keras", "tf_keras", "tensorflow.python.keras")
_CLIP_ARGS = ("global_clipnorm", "clipnorm", "clipvalue")


def _qualname(ctx: FileContext, node: ast.expr) -> str:
    """The qualified name, with ``tf`` read as TensorFlow where it comes through a star
    import of a project module (``from gcn.layers import *``, which did ``import
    tensorflow as tf``): the conventional alias, bound nowhere else in the file."""
    qual = ctx.qualname(node) or ""
    if qual.startswith("tf.") and "tf" not in ctx.imports.aliases and ctx.imports.star_modules:
        return "tensorflow." + qual[3:]
    return qual


def keras_optimizer(ctx: FileContext, call: ast.Call) -> Momentum | None:
    # tf.compat.v1 / tf.compat.v2 spell the same Keras (``import tensorflow.compat.v2 as tf``);
    # TF 2's ``tf.optimizers`` is ``tf.keras.optimizers``
    qual = re.sub(r"^tensorflow\.compat\.v[12]\.", "tensorflow.", _qualname(ctx, call.func))
    qual = re.sub(r"^tensorflow\.optimizers\.", "tensorflow.keras.optimizers.", qual)
    if ".optimizers." not in qual or not qual.startswith(_KERAS_ROOTS):
        return project_keras_optimizer(ctx, call)
    spec = KERAS_OPTIMIZERS.get(last_part(qual))
    if spec is None:
        return None
    return coefficient(ctx, call, spec, f"keras {last_part(qual)}")


def project_keras_optimizer(ctx: FileContext, call: ast.Call) -> Momentum | None:
    """A project class derived from a Keras optimizer (``class AdamWarmup(keras.optimizers.Adam)``,
    ``AdamW = extend_with_weight_decay(Adam)``): its base's momentum, by keyword only."""
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id == "self":
        return None
    base = project_optimizer_base(ctx, call)
    if base is None:
        return own_optimizer(ctx, call, "keras")
    base = re.sub(r"^tensorflow\.compat\.v[12]\.", "tensorflow.", base)
    spec = KERAS_OPTIMIZERS.get(last_part(base))
    if spec is None or ".optimizers." not in base or not base.startswith(_KERAS_ROOTS):
        return None
    keywords = Spec(spec.kind, spec.arg, None, spec.default, spec.pair, spec.beta2)
    name = last_part(ctx.qualname(call.func) or "")
    return coefficient(ctx, call, keywords, f"{name} (derived from keras {last_part(base)})")


def tf1_optimizer(ctx: FileContext, call: ast.Call) -> Momentum | None:
    """``tf.train.MomentumOptimizer(lr, 0.9)``, ``tf.compat.v1.train.AdamOptimizer(lr)``,
    ``tf.contrib.opt.AdamWOptimizer(wd, lr)``."""
    qual = re.sub(r"^tensorflow\.compat\.v1\.", "tensorflow.", _qualname(ctx, call.func))
    if not qual.startswith(("tensorflow.train.", "tensorflow.contrib.opt.")):
        return own_optimizer(ctx, call, "tf1")
    spec = TF1_OPTIMIZERS.get(last_part(qual))
    return coefficient(ctx, call, spec, f"tf.train.{last_part(qual)}") if spec is not None else None


def _tf1_steps(ctx: FileContext) -> list[ast.Call]:
    """``opt.minimize(loss)`` / ``opt.apply_gradients(...)``: a TF1 optimizer stepping."""
    return [
        c for c in ctx.nodes_of(ast.Call)
        if isinstance(c.func, ast.Attribute) and c.func.attr in ("minimize", "apply_gradients")
    ]


def _builds_clipping_model(ctx: FileContext) -> bool:
    """The file builds a model of another project file whose ``train_step`` clips
    (``class CustomModel(keras.Model): def train_step(...): ... tf.clip_by_global_norm``):
    ``fit`` then clips whatever the optimizer's arguments say."""
    clipping = {
        name for _key, record in ctx.project.each(ModuleMomentum, scope=ctx.file or None) for name in record.clipping_models
    }
    return bool(clipping) and any(
        isinstance(c.func, (ast.Name, ast.Attribute)) and last_part(ctx.qualname(c.func) or "") in clipping
        for c in ctx.nodes_of(ast.Call)
    )


def _unchosen(ctx: FileContext, call: ast.Call) -> str:
    """", not chosen with the default optimizer='ADAGRAD'" for a constructor in a branch of
    an optimizer choice that the defaults do not take (facenet's ``if optimizer == 'ADAM':``):
    a risk only when that option is chosen, said at lower severity. Empty otherwise."""
    state, flag = branch_state(ctx, call)
    if state is not False or flag is None:
        return ""
    return f", not chosen with the default {ctx.text(flag)}={ctx.values.value(flag)!r},"


def _forwards_to_super(call: ast.Call) -> bool:
    """``super().compile(optimizer=optimizer, ...)`` in a model's own ``compile``: it hands
    on what the model's callers chose, and is judged at their ``compile`` call."""
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    return isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) and receiver.func.id == "super"


def _keras_prefix(ctx: FileContext) -> tuple[str, tuple[str, ...]]:
    """How this file names ``keras.optimizers``, and the import that needs."""
    aliases = ctx.imports.aliases
    for name, target in aliases.items():
        if target in ("keras", "tensorflow.keras", "tf_keras") and name == "keras":
            return "keras.optimizers", ()
    for name, target in aliases.items():
        if target in ("tensorflow", "tensorflow.compat.v1", "tensorflow.compat.v2"):
            return f"{name}.keras.optimizers", ()
    for name, target in aliases.items():
        if target in ("keras", "tensorflow.keras", "tf_keras"):
            return f"{name}.optimizers", ()
    return "keras.optimizers", ("import keras",)


def _clip_argument(ctx: FileContext, call: ast.Call | None) -> str:
    """The clipping argument every Keras this code may run on accepts: global_clipnorm
    exists only from TF/Keras 2.4, so standalone ``keras`` code (Keras 1 and 2 before
    2.4 are standalone) and Keras-2-era calls (``lr=``) get clipnorm, which every
    Keras has; tf.keras code gets global_clipnorm."""
    if call is not None and keyword(call, "lr") is not None:
        return "clipnorm"
    if _tf1_era(ctx):
        return "clipnorm"
    standalone = any(target == "keras" or target.startswith("keras.") for target in ctx.imports.aliases.values())
    return "clipnorm" if standalone and not ctx.imports.imports_any("tensorflow") else "global_clipnorm"


# TensorFlow 1.x code (TF's own r1 tutorials, `%tensorflow_version 1.x` notebooks): its
# tf.keras optimizers take clipnorm but not global_clipnorm (TF 2.4+).
_TF1_MARKERS = ("tensorflow.compat.v1", "tensorflow_version 1", "enable_eager_execution", "tf.Session(", "tf.placeholder(")


def _tf1_era(ctx: FileContext) -> bool:
    return any(marker in ctx.source for marker in _TF1_MARKERS)


def _uses_keras(ctx: FileContext) -> bool:
    """Imports Keras or TensorFlow, directly or as a project module hands it on
    (``from bert4keras.backend import keras``)."""
    return ctx.imports.imports_any("keras", "tensorflow", "tf_keras") or any(
        name == "keras" or target.endswith(".keras") for name, target in ctx.imports.aliases.items()
    ) or bool(ctx.imports.star_modules and "tf." in ctx.source and "tf" not in ctx.imports.aliases)


def _manual_clip(ctx: FileContext) -> bool:
    """A custom loop that clips the gradients itself (``tf.clip_by_global_norm``)."""
    for call in ctx.nodes_of(ast.Call):
        clip = clip_of(ctx, call)
        if clip is None and last_part(ctx.qualname(call.func)) in ("clip_by_value", "clip_by_norm") and call.args:
            # [(tf.clip_by_value(grad, -1., 1.), var) for grad, var in gvs]: a value clip of gradients
            if "grad" in ctx.text(call.args[0]).lower():
                clip = Clip(call, None)
        if clip is not None and not any(kw.arg in _CLIP_ARGS for kw in call.keywords) and gate_of(ctx, clip) is None:
            return True
    return False


# A project's own Keras optimizer (bert4keras' optimizers.py), for the rule cases.
_OWN_KERAS_ADAM = """
from tensorflow import keras

class Adam(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)

def extend_with_piecewise_linear_lr(BaseOptimizer):
    class NewOptimizer(BaseOptimizer):
        def __init__(self, *args, **kwargs):
            self.lr_schedule = kwargs.pop("lr_schedule", {0: 1})
            super().__init__(*args, **kwargs)
    return NewOptimizer
"""


@register
class KerasMomentumWithoutClipping(Rule):
    code = "LL302"
    chain = ChainRole.MOMENTUM
    name = "keras-momentum-without-clipping"
    severity = Severity.WARNING
    triggers = ("optimizers", "compile(", "Optimizer(")
    fix_applicability = Applicability.UNSAFE
    summary = (
        "A Keras optimizer with momentum (SGD(momentum>0), Adam, ...) without clipnorm, clipvalue or global_clipnorm; "
        "a TF1 tf.train momentum optimizer (MomentumOptimizer, AdamOptimizer, ...) stepped with no tf.clip_by_global_norm."
    )
    why = (
        "The optimizer's running average of gradients carries one bad batch (a short last batch, a loss averaged "
        "twice) on for many steps: ~1/(1-μ) for SGD with momentum μ; for Adam the bounded step is followed by "
        "~1/(1-β2) steps shrunk by the inflated second moment. This is the ssd_keras case: SGD with momentum 0.9 "
        "and a loss spike once per epoch. Keras clips inside the optimizer when given clipnorm, clipvalue or "
        "global_clipnorm."
    )
    fix_doc = (
        "Adds global_clipnorm=1.0 to a tf.keras optimizer (clipnorm=1.0, which every Keras accepts, for standalone "
        "keras code, which may be a Keras before 2.4 without global_clipnorm, for TensorFlow 1.x code "
        "(tensorflow.compat.v1, %tensorflow_version 1.x) and for calls using lr=); a string "
        "optimizer in compile() becomes the constructor call with the argument, importing keras when the file "
        "has no keras or tf name. For clipnorm=args.clipnorm whose default is None, sets the default. The norm "
        "is [tool.losslint] clip-max-norm. Unsafe: training changes. No fix for TF1's tf.train optimizers: they "
        "take no clip argument; split minimize() into compute_gradients, tf.clip_by_global_norm, apply_gradients."
    )
    references = (
        "https://keras.io/api/optimizers/#base-optimizer-class",
        "ssd_keras issue: loss spikes once per epoch (SGD momentum 0.9, no clipping)",
    )
    flagged = (
        Flagged(
            """
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(10)])
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="mse")
            """,
            fixed="""
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(10)])
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, global_clipnorm=1.0), loss="mse")
            """,
            message_contains=("momentum 0.9", "~10 steps"),
            unsafe=True,
        ),
        Flagged(
            """
            import tensorflow.compat.v1 as tf
            model = tf.keras.models.Sequential([tf.keras.layers.Dense(10, activation=tf.nn.softmax)])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.fit(x_train, y_train, epochs=5)
            """,
            fixed="""
            import tensorflow.compat.v1 as tf
            model = tf.keras.models.Sequential([tf.keras.layers.Dense(10, activation=tf.nn.softmax)])
            model.compile(optimizer=tf.keras.optimizers.Adam(clipnorm=1.0), loss="sparse_categorical_crossentropy")
            model.fit(x_train, y_train, epochs=5)
            """,
            unsafe=True,
        ),
        Flagged(
            """
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            """,
            fixed="""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
            model.compile(optimizer=tf.keras.optimizers.Adam(global_clipnorm=1.0), loss="sparse_categorical_crossentropy")
            """,
            message_contains=("Adam", "second moment"),
            unsafe=True,
        ),
        Flagged(
            """
            from keras.optimizers import SGD

            sgd = SGD(lr=1e-3, momentum=0.9, decay=0.0, nesterov=False)
            """,
            fixed="""
            from keras.optimizers import SGD

            sgd = SGD(lr=1e-3, momentum=0.9, decay=0.0, nesterov=False, clipnorm=1.0)
            """,
            unsafe=True,
        ),
        Flagged(
            """
            import tensorflow.compat.v2 as tf

            optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3, clipnorm=None, clipvalue=None)
            """,
            fixed="""
            import tensorflow.compat.v2 as tf

            optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3, clipnorm=None, clipvalue=None, global_clipnorm=1.0)
            """,
            message_contains=("keras Adam",),
            unsafe=True,
        ),
        Flagged(
            """
            import tensorflow as tf

            optimizer = tf.train.MomentumOptimizer(learning_rate=0.01, momentum=0.9)
            train_op = optimizer.minimize(loss, global_step=tf.train.get_global_step())
            """,
            fixed=None,
            message_contains=("tf.train.MomentumOptimizer", "minimize/apply_gradients at line 4", "momentum 0.9"),
        ),
        Flagged(
            """
            import tensorflow.compat.v1 as tf

            optimizer = tf.train.AdamOptimizer(1e-4, beta1=0.5)
            train_op = optimizer.minimize(loss)
            """,
            fixed=None,
            message_contains=("tf.train.AdamOptimizer (β1=0.5",),
        ),
        Flagged(
            """
            import keras

            def train(model, x, y, optimizer="adam", epochs=10):
                model.compile(optimizer=optimizer, loss="mse")
                model.fit(x, y, epochs=epochs)

            train(build_model(), x_train, y_train)
            """,
            fixed=None,
            message_contains=('compile(optimizer=optimizer) builds Adam (optimizer is "adam" with the defaults)',),
        ),
        Flagged(
            """
            import keras

            class Distiller(keras.Model):
                def compile(self, optimizer, metrics=None):
                    super().compile(optimizer=optimizer, metrics=metrics)

            distiller = Distiller()
            distiller.compile(optimizer="adam", metrics=["acc"])
            """,
            fixed="""
            import keras

            class Distiller(keras.Model):
                def compile(self, optimizer, metrics=None):
                    super().compile(optimizer=optimizer, metrics=metrics)

            distiller = Distiller()
            distiller.compile(optimizer=keras.optimizers.Adam(clipnorm=1.0), metrics=["acc"])
            """,
            message_contains=('compile(optimizer="adam")',),
            unsafe=True,
        ),
        Flagged(
            """
            from keras.optimizers import Adam
            from bert4keras.optimizers import extend_with_weight_decay

            AdamW = extend_with_weight_decay(Adam)
            model.compile(loss="mse", optimizer=AdamW(learning_rate=1e-5, weight_decay_rate=0.01))
            """,
            fixed=None,
            message_contains=("AdamW (derived from keras Adam)",),
        ),
        Flagged(
            """
            from keras.layers import Dense
            from optimizers import Adam, extend_with_piecewise_linear_lr

            AdamLR = extend_with_piecewise_linear_lr(Adam)
            model.compile(loss="mse", optimizer=AdamLR(learning_rate=1e-4, lr_schedule={1000: 1}))
            model.fit(train_generator.forfit(), epochs=10)
            """,
            fixed=None,
            files=(("optimizers.py", _OWN_KERAS_ADAM),),
            message_contains=("AdamLR (derived from keras Optimizer)", "β1=0.9"),
        ),
        Flagged(
            """
            import tensorflow as tf
            from absl import flags

            flags.DEFINE_enum("optimizer", "adagrad", ["adagrad", "momentum"], "Optimizer to use.")
            flags.DEFINE_float("momentum", 0.9, "Momentum parameter.")
            FLAGS = flags.FLAGS

            def build_train_op(loss, learning_rate):
                if FLAGS.optimizer == "momentum":
                    optimizer = tf.train.MomentumOptimizer(learning_rate, FLAGS.momentum, use_nesterov=True)
                else:
                    optimizer = tf.train.AdagradOptimizer(learning_rate)
                return optimizer.minimize(loss)
            """,
            fixed=None,
            message_contains=(
                "tf.train.MomentumOptimizer, not chosen with the default FLAGS.optimizer='adagrad',",
                "momentum 0.9 (FLAGS.momentum defaults to 0.9)",
            ),
        ),
        Flagged(
            """
            from layers import *

            class GCN(Model):
                def __init__(self, placeholders, **kwargs):
                    self.optimizer = tf.train.AdamOptimizer(learning_rate=0.01)

                def build(self):
                    self.opt_op = self.optimizer.minimize(self.loss)
            """,
            fixed=None,
            files=(("layers.py", "import tensorflow as tf\n\nclass Layer(object):\n    pass\n"),),
            message_contains=("tf.train.AdamOptimizer steps",),
        ),
        Flagged(
            """
            import tensorflow as tf

            optimizer = tf.optimizers.Adam(learning_rate)
            for step, (batch_x, batch_y) in enumerate(train_data.take(training_steps), 1):
                with tf.GradientTape() as g:
                    loss = cross_entropy(conv_net(batch_x), batch_y)
                gradients = g.gradient(loss, conv_net.trainable_variables)
                optimizer.apply_gradients(zip(gradients, conv_net.trainable_variables))
            """,
            fixed="""
            import tensorflow as tf

            optimizer = tf.optimizers.Adam(learning_rate, global_clipnorm=1.0)
            for step, (batch_x, batch_y) in enumerate(train_data.take(training_steps), 1):
                with tf.GradientTape() as g:
                    loss = cross_entropy(conv_net(batch_x), batch_y)
                gradients = g.gradient(loss, conv_net.trainable_variables)
                optimizer.apply_gradients(zip(gradients, conv_net.trainable_variables))
            """,
            message_contains=("keras Adam without clipnorm",),
            unsafe=True,
        ),
    )
    quiet = (
        Quiet(
            """
            from layers import *

            class GCN(Model):
                def __init__(self, placeholders, **kwargs):
                    self.optimizer = tf.train.AdamOptimizer(learning_rate=0.01)

                def build(self):
                    grads, variables = zip(*self.optimizer.compute_gradients(self.loss))
                    grads, _ = tf.clip_by_global_norm(grads, 5.0)
                    self.opt_op = self.optimizer.apply_gradients(zip(grads, variables))
            """,
            files=(("layers.py", "import tensorflow as tf\n\nclass Layer(object):\n    pass\n"),),
            why="tf (TensorFlow through a project module's star import) clips with tf.clip_by_global_norm before apply_gradients",
        ),
        Quiet(
            """
            from keras.layers import Dense
            from optimizers import Adam, extend_with_piecewise_linear_lr

            AdamLR = extend_with_piecewise_linear_lr(Adam)
            model.compile(loss="mse", optimizer=AdamLR(learning_rate=1e-4, clipnorm=1.0))
            model.compile(loss="mse", optimizer=Adam(1e-4, beta_1=0.0))
            """,
            files=(("optimizers.py", _OWN_KERAS_ADAM),),
            why="the project's own Adam (on keras' base Optimizer) given clipnorm, or built with beta_1=0.0: no momentum",
        ),
        Quiet(
            """
            import tensorflow.compat.v2 as tf
            optimizer = tf.keras.optimizers.SGD(0.01, clipnorm=None)
            adam = tf.keras.optimizers.Adam(1e-3, clipnorm=None, global_clipnorm=1.0)
            """,
            why="compat.v2 spelling: SGD without momentum, and an Adam clipped by global_clipnorm beside clipnorm=None",
        ),
        Quiet(
            """
            import keras
            model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss="mse")
            opt = keras.optimizers.SGD(0.1, momentum=0.9, clipnorm=5.0)
            opt2 = keras.optimizers.AdamW(clipvalue=0.5)
            """,
            why="global_clipnorm, clipnorm and clipvalue",
        ),
        Quiet(
            """
            import keras
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
            model.compile(optimizer="sgd", loss="mse")
            model.compile(optimizer="rmsprop", loss="mse")
            model.compile(optimizer="adagrad", loss="mse")
            """,
            why="SGD and RMSprop default to momentum 0; Adagrad has none",
        ),
        Quiet(
            """
            import tensorflow as tf
            optimizer = tf.keras.optimizers.Adam(1e-3)
            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                grads, _ = tf.clip_by_global_norm(grads, 1.0)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
            why="a custom loop that clips with tf.clip_by_global_norm",
        ),
        Quiet(
            """
            model.compile(optimizer="adam", loss="mse")
            """,
            why="no Keras import: not known to be Keras",
        ),
        Quiet(
            """
            import tensorflow as tf
            optimizer = tf.compat.v1.train.MomentumOptimizer(learning_rate=0.01, momentum=0.9)
            grads_and_vars = optimizer.compute_gradients(loss)
            grads, variables = zip(*grads_and_vars)
            grads, _ = tf.clip_by_global_norm(grads, clip_norm=1.0)
            train_op = optimizer.apply_gradients(zip(grads, variables), global_step=global_step)
            """,
            why="TF1: gradients clipped with tf.clip_by_global_norm between compute_gradients and apply_gradients",
        ),
        Quiet(
            """
            import tensorflow as tf
            optimizer = tf.train.RMSPropOptimizer(0.001, decay=0.9)
            sgd = tf.train.GradientDescentOptimizer(0.1)
            train_op = optimizer.minimize(loss)
            train_op2 = sgd.minimize(loss)
            """,
            why="TF1 RMSProp's momentum defaults to 0.0; plain gradient descent keeps no average",
        ),
        Quiet(
            """
            import keras

            def train(model, x, y, optimizer="sgd", epochs=10):
                model.compile(optimizer=optimizer, loss="mse")
                model.fit(x, y, epochs=epochs)

            train(build_model(), x_train, y_train)
            """,
            why='a parameter whose default is "sgd" (momentum 0) names the optimizer',
        ),
        Quiet(
            """
            from tensorflow import keras

            class AdamWarmup(keras.optimizers.Adam):
                def __init__(self, warmup_steps, **kwargs):
                    super().__init__(**kwargs)

            model.compile(loss="mse", optimizer=AdamWarmup(1000, learning_rate=1e-3, global_clipnorm=1.0))
            """,
            why="a project class derived from Keras Adam, built with global_clipnorm",
        ),
        Quiet(
            """
            import keras
            from models import ClippedModel

            model = ClippedModel(inputs, outputs)
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
            model.fit(x, y, epochs=10)
            """,
            files=(
                (
                    "models.py",
                    """
                    import keras
                    import tensorflow as tf

                    class ClippedModel(keras.Model):
                        def train_step(self, data):
                            x, y = data
                            with tf.GradientTape() as tape:
                                loss = self.compute_loss(y=y, y_pred=self(x, training=True))
                            grads = tape.gradient(loss, self.trainable_variables)
                            grads, _ = tf.clip_by_global_norm(grads, 1.0)
                            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                            return {"loss": loss}
                    """,
                ),
            ),
            why="the model's own train_step (in another file) clips with tf.clip_by_global_norm",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        if not _uses_keras(ctx) or _manual_clip(ctx) or _builds_clipping_model(ctx):
            return
        max_norm = repr(float(ctx.settings.clip_max_norm))
        steps = None
        for call in ctx.nodes_of(ast.Call):
            tf1 = tf1_optimizer(ctx, call)
            if tf1 is not None:
                tf1 = tf1.resolved(ctx.project)
                steps = _tf1_steps(ctx) if steps is None else steps
                if tf1.is_momentum and steps:
                    unchosen, severity = _unchosen(ctx, call), tf1.severity
                    message = (
                        f"{tf1.optimizer}{unchosen} steps (minimize/apply_gradients at line {steps[0].lineno}) with no "
                        f"tf.clip_by_global_norm on the way: {tf1.describe()}"
                    )
                    yield ctx.finding(self, call, message, None, severity=Severity.INFO if unchosen else severity)
                continue
            momentum = keras_optimizer(ctx, call)
            if momentum is not None:
                momentum = momentum.resolved(ctx.project)
                if momentum.is_momentum:
                    finding = self._judge_constructor(ctx, call, momentum, max_norm)
                    if finding is not None:
                        yield finding
                continue
            if isinstance(call.func, ast.Attribute) and call.func.attr == "compile" and not _forwards_to_super(call):
                yield from self._judge_string(ctx, call, max_norm)

    def _judge_constructor(self, ctx: FileContext, call: ast.Call, momentum: Momentum, max_norm: str) -> Finding | None:
        if any(kw.arg is None for kw in call.keywords):
            return None  # **kwargs may carry a clip
        # clipnorm=None is Keras' own default: no clipping
        present = [
            kw for name in _CLIP_ARGS
            if (kw := keyword(call, name)) is not None and not (isinstance(kw.value, ast.Constant) and kw.value.value is None)
        ]
        if present:
            gates = [gate_of(ctx, Clip(call, kw.value)) for kw in present]
            if any(g is None for g in gates):
                return None
            gate = next(g for g in gates if g is not None)
            located = default_fix_edit(ctx, gate, ctx.settings.clip_max_norm)
            node, fix = (located[0], Fix(f"default {ctx.text(gate.flag)} to {max_norm}", Applicability.UNSAFE, located[1])) if located else (call, None)
            message = (
                f"{momentum.optimizer} clips only when {ctx.text(gate.flag)} is set, and {gate.describe(ctx)}: with the "
                f"defaults nothing is clipped. {momentum.describe()}"
            )
            return ctx.finding(self, node, message, fix, severity=momentum.severity)
        unchosen = _unchosen(ctx, call)
        severity = Severity.INFO if unchosen else momentum.severity
        message = f"{momentum.optimizer}{unchosen} without clipnorm/clipvalue/global_clipnorm: {momentum.describe()}"
        if "(derived from" in momentum.optimizer:
            # a project class: whether its __init__ passes clipnorm on to Keras is not known
            return ctx.finding(self, call, message, None, severity=severity)
        argument_name = _clip_argument(ctx, call)
        edit = NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, argument_name, max_norm))
        fix = Fix(f"add {argument_name}={max_norm}", Applicability.UNSAFE, (edit,))
        return ctx.finding(self, call, message, fix, severity=severity)

    def _judge_string(self, ctx: FileContext, call: ast.Call, max_norm: str) -> Iterable[Finding]:
        node = argument(call, "optimizer", 0)
        if node is None:
            return
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
        # compile(optimizer=optimizer) with ``def train(model, optimizer="adam")``: the
        # value resolver follows the parameter to its default and call sites
        value = node.value if literal else ctx.values.value(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        if not isinstance(value, str):
            return
        class_name = KERAS_STRINGS.get(value.lower())
        spec = KERAS_OPTIMIZERS.get(class_name or "")
        if spec is None or spec.default in (None, 0.0) or spec.kind == "plain":
            return
        momentum = Momentum(f"keras {class_name}", spec.kind, spec.default, spec.beta2)
        if not literal:
            # the name may be chosen by callers: replacing it here, or its default with an
            # object shared by every call, is not a safe edit; say where to clip instead
            message = (
                f'compile(optimizer={ctx.text(node)}) builds {class_name} ({ctx.text(node)} is "{value}" with the '
                f'defaults) with no clipping; pass keras.optimizers.{class_name}({_clip_argument(ctx, None)}={max_norm}) '
                f"instead: {momentum.describe()}"
            )
            yield ctx.finding(self, node, message, None, severity=momentum.severity)
            return
        prefix, imports = _keras_prefix(ctx)
        replacement = f"{prefix}.{class_name}({_clip_argument(ctx, None)}={max_norm})"
        edit = NodeEdit(ctx.span(node), "BaseExpression", lambda _n: cst.parse_expression(replacement))
        fix = Fix(f"use {replacement}", Applicability.UNSAFE, (edit,), imports)
        message = f'compile(optimizer="{node.value}") builds {class_name} with its defaults and no clipping: {momentum.describe()}'
        yield ctx.finding(self, node, message, fix, severity=momentum.severity)
