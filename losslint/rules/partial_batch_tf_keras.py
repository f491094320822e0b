"""LL203, LL204: partial last batches in TensorFlow and Keras.

LL203: a training ``tf.data`` pipeline that batches with ``.batch()`` /
``.padded_batch()`` without ``drop_remainder=True``. The pipeline is followed back
through its method chain and the names it was assigned to (``ds = ds.shuffle(...)``)
to its source (``tf.data.Dataset.from_tensor_slices``, ``Dataset.range``,
``tfds.load``), which gives the evidence that it is tf.data and, often, its size.
``.repeat()`` before ``.batch()`` makes batches span epochs (no partial batch), so
that is quiet; ``.batch().repeat()`` repeats the short batch every epoch.

LL204: ``model.fit(x, y, batch_size=B)`` (B defaults to 32) on arrays of known
length N, where the training part (all of N, or floor(N * (1 - validation_split))
since Keras takes the validation split from the tail) is not a multiple of B.
tf.data, generator and Sequence inputs batch themselves, and ``steps_per_epoch``
decides the epoch, so those are left alone. Keras ``fit`` has no drop-last
option: the fix slices x and y to a length whose training part is a multiple of B,
which is unsafe (the samples past the cut are never trained on).
"""

from __future__ import annotations

import ast
import math
from typing import Iterable

from losslint.analysis.batching import BATCHING, SAME_SIZE, pipeline_of, size_sources, source_package, tf_short_batchings
from losslint.analysis.names import argument, has_star_kwargs, last_part
from losslint.analysis.sizes import sample_count
from losslint.context import FileContext
from losslint.findings import Applicability, Finding, Fix, NodeEdit, Severity, Span, cst
from losslint.project import UNKNOWN as NOT_A_PROJECT_DATASET
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.partial_batch_common import (
    describe_last_batch,
    set_flag_fix,
    unless_shuffled,
    unshuffled_note,
)

# Transformations that only a dataset has (evidence for LL204 that x is not an array).
_DATASET_METHODS = {*BATCHING, *SAME_SIZE, "repeat", "take", "skip", "filter", "unbatch", "interleave", "flat_map", "shard", "zip"}


def _at_method_name(ctx: FileContext, call: ast.Call) -> Span:
    """Where ``.batch`` is written: the line a reader looks at in a long chain."""
    span = ctx.span(call.func)
    attr = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    return Span(span.end_line, max(0, span.end_column - len(attr)), span.end_line, span.end_column)


@register
class TfDataPartialBatch(Rule):
    code = "LL203"
    chain = ChainRole.PARTIAL_BATCH
    name = "tf-data-partial-batch"
    severity = Severity.WARNING
    triggers = (".batch(", "padded_batch(", "ragged_batch(")
    summary = "A training tf.data pipeline that batches without drop_remainder=True."
    why = (
        "Dataset.batch() keeps the remainder (drop_remainder=False): an epoch of N elements ends with a batch of "
        "N % B. A mean-reduced loss weighs each of its samples B/b times as much, a loss normalized per batch "
        "(LL102) spikes there, and momentum carries the step on (LL302). .batch().repeat() repeats the short batch "
        "every epoch ([4, 4, 2, 4, 4, 2]); .repeat().batch() does not ([4, 4, 4, 4, 4]). When N is not known "
        "statically the finding is INFO: unless N is a multiple of B the last batch is short."
    )
    fix_doc = (
        "Adds drop_remainder=True to the .batch()/.padded_batch() call (or sets it where it is False). Safe when the "
        "pipeline shuffles before the batch: every full batch trains exactly as before, and the N % B leftover "
        "elements differ from epoch to epoch. Unsafe without a shuffle: the same last elements are left out of every "
        "epoch (the message says which case applies). It also gives the batches a static batch dimension."
    )
    references = (
        "https://www.tensorflow.org/api_docs/python/tf/data/Dataset#batch",
        "https://www.tensorflow.org/guide/data#batching_dataset_elements",
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
    )
    flagged = (
        Flagged(
            """
            import numpy as np
            import tensorflow as tf

            x_train = np.random.rand(1000, 20).astype("float32")
            y_train = np.random.randint(0, 2, size=(1000,))
            train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
            train_ds = train_ds.shuffle(1000).batch(64).prefetch(tf.data.AUTOTUNE)
            """,
            fixed="""
            import numpy as np
            import tensorflow as tf

            x_train = np.random.rand(1000, 20).astype("float32")
            y_train = np.random.randint(0, 2, size=(1000,))
            train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
            train_ds = train_ds.shuffle(1000).batch(64, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
            """,
            message_contains=("N=1000, B=64", "40 samples"),
        ),
        Flagged(
            """
            import tensorflow as tf
            import tensorflow_datasets as tfds

            (ds_train, ds_test), ds_info = tfds.load(
                "mnist", split=["train", "test"], as_supervised=True, with_info=True
            )
            ds_train = ds_train.map(normalize_img).cache()
            ds_train = ds_train.shuffle(ds_info.splits["train"].num_examples)
            ds_train = ds_train.batch(128)
            ds_test = ds_test.map(normalize_img).batch(128).cache()
            model.fit(ds_train, epochs=6, validation_data=ds_test)
            """,
            fixed="""
            import tensorflow as tf
            import tensorflow_datasets as tfds

            (ds_train, ds_test), ds_info = tfds.load(
                "mnist", split=["train", "test"], as_supervised=True, with_info=True
            )
            ds_train = ds_train.map(normalize_img).cache()
            ds_train = ds_train.shuffle(ds_info.splits["train"].num_examples)
            ds_train = ds_train.batch(128, drop_remainder=True)
            ds_test = ds_test.map(normalize_img).batch(128).cache()
            model.fit(ds_train, epochs=6, validation_data=ds_test)
            """,
            message_contains=("N=60000, B=128", "96 samples"),
        ),
        Flagged(
            """
            import tensorflow as tf

            def make_train_dataset(files, batch_size):
                ds = tf.data.TFRecordDataset(files).map(parse_example)
                return ds.padded_batch(batch_size, padded_shapes=([None], []), drop_remainder=False)
            """,
            fixed="""
            import tensorflow as tf

            def make_train_dataset(files, batch_size):
                ds = tf.data.TFRecordDataset(files).map(parse_example)
                return ds.padded_batch(batch_size, padded_shapes=([None], []), drop_remainder=True)
            """,
            unsafe=True,
            message_contains=("not known statically", "nothing shuffles this data"),
        ),
        Flagged(
            """
            import tensorflow as tf
            import tensorflow_datasets as tfds

            datasets, info = tfds.load(name="mnist", with_info=True, as_supervised=True)
            mnist_train, mnist_test = datasets["train"], datasets["test"]
            BATCH_SIZE = 64
            train_dataset = mnist_train.map(scale).cache().shuffle(10000).batch(BATCH_SIZE)
            eval_dataset = mnist_test.map(scale).batch(BATCH_SIZE)
            """,
            fixed="""
            import tensorflow as tf
            import tensorflow_datasets as tfds

            datasets, info = tfds.load(name="mnist", with_info=True, as_supervised=True)
            mnist_train, mnist_test = datasets["train"], datasets["test"]
            BATCH_SIZE = 64
            train_dataset = mnist_train.map(scale).cache().shuffle(10000).batch(BATCH_SIZE, drop_remainder=True)
            eval_dataset = mnist_test.map(scale).batch(BATCH_SIZE)
            """,
            message_contains=("N=60000, B=64", "32 samples"),
        ),
        Flagged(
            """
            import tensorflow as tf
            dataset = tf.data.Dataset.range(100).shuffle(100).batch(32).repeat()
            """,
            fixed="""
            import tensorflow as tf
            dataset = tf.data.Dataset.range(100).shuffle(100).batch(32, drop_remainder=True).repeat()
            """,
            message_contains=("N=100, B=32", "4 samples"),
        ),
        Flagged(
            """
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64).take(len(x) // 32)
            """,
            fixed="""
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64, drop_remainder=True).take(len(x) // 32)
            """,
            message_contains=("B=64",),
        ),
    )
    quiet = (
        Quiet(
            """
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64, drop_remainder=True)
            """,
            why="drop_remainder=True already",
        ),
        Quiet(
            """
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64).take(len(x) // 64)
            """,
            why="take(len(x) // 64) keeps only the full batches: the short one is never reached",
        ),
        Quiet(
            """
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(1)
            """,
            why="a batch of one is never partial",
        ),
        Quiet(
            """
            import tensorflow as tf
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).repeat().batch(64)
            model.fit(train_ds, steps_per_epoch=100)
            """,
            why=".repeat() before .batch(): batches span epochs, none is partial",
        ),
        Quiet(
            """
            import numpy as np
            import tensorflow as tf
            x_train = np.zeros((1024, 8))
            train_ds = tf.data.Dataset.from_tensor_slices(x_train).shuffle(1024).batch(64)
            """,
            why="N % B == 0: every batch is full",
        ),
        Quiet(
            """
            import tensorflow as tf
            val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(64)
            test_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
            model.evaluate(tf.data.Dataset.from_tensor_slices((xs, ys)).batch(64))
            """,
            why="evaluation pipelines change no weights",
        ),
        Quiet(
            """
            from datasets import load_dataset
            import tensorflow as tf
            ds = load_dataset("imdb", split="train")
            train_batches = ds.batch(32)
            """,
            why="a 🤗 datasets Dataset, not tf.data",
        ),
        Quiet(
            """
            import tensorflow as tf
            ds = tf.data.Dataset.from_tensor_slices(features).batch(32)
            """,
            why="nothing says it trains (no train name, no shuffle, not given to fit)",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for batching in tf_short_batchings(ctx):
            call, n, b, flag = batching.call, batching.n, batching.b, batching.flag
            shuffled = batching.shuffled()
            related = size_sources(ctx, call, n, batching.pipeline.root, b, argument(call, "batch_size", 0))
            fix = unless_shuffled(set_flag_fix(ctx, call, flag, "drop_remainder", "add drop_remainder=True"), shuffled)
            head = f"training tf.data pipeline: .{batching.method}() without drop_remainder=True{flag.note}"
            if n is not None and b is not None:
                finding = ctx.finding(self, call, f"{head}: {describe_last_batch(n, b)}{unshuffled_note(shuffled)}", fix, related=related)
            else:
                size = "the dataset size is not known statically" if n is None else f"N={n}"
                batch = f"B={b}" if b is not None else f"the batch size {ctx.text(argument(call, 'batch_size', 0) or call)} is not known statically"
                message = (
                    f"{head} ({batch}): {size}; unless N is a multiple of B the last batch of every epoch is smaller"
                    f"{unshuffled_note(shuffled)}"
                )
                finding = ctx.finding(self, call, message, fix, severity=Severity.INFO, related=related)
            finding.span = _at_method_name(ctx, call)
            yield finding


# -- LL204: Keras fit on arrays --------------------------------------------------

KERAS_DEFAULT_BATCH_SIZE = 32
# fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
#     shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch, ...)
_FIT_POSITIONS = {"x": 0, "y": 1, "batch_size": 2, "validation_split": 6, "validation_data": 7, "steps_per_epoch": 12}
# Keywords only Keras's fit takes (sklearn, xgboost and lightgbm fits take none of them).
_KERAS_FIT_KEYWORDS = {
    "epochs", "batch_size", "validation_split", "validation_data", "steps_per_epoch", "initial_epoch",
    "validation_steps", "validation_freq", "validation_batch_size",
}


# ImageDataGenerator iterators (keras.preprocessing.image.Iterator: __len__ = ceil(n / batch_size)).
_KERAS_ITERATORS = {"flow_from_directory", "flow_from_dataframe"}
# numpy functions whose result's length is only known at run time.
_RUNTIME_ARRAYS = {"load", "loadtxt", "genfromtxt", "fromfile"}


def _is_keras_fit(ctx: FileContext, call: ast.Call) -> bool:
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "fit"):
        return False
    if not ctx.imports.imports_any("keras", "tensorflow", "tf_keras"):
        return False
    if any(kw.arg in _KERAS_FIT_KEYWORDS for kw in call.keywords):
        return True
    receiver = ctx.text(call.func.value)
    for other in ctx.nodes_of(ast.Call):
        if isinstance(other.func, ast.Attribute) and other.func.attr == "compile" and ctx.text(other.func.value) == receiver:
            return True
    if isinstance(call.func.value, ast.Name):
        value = ctx.values.resolve_name(call.func.value)
        if isinstance(value, ast.Call) and "keras" in (ctx.qualname(value.func) or ""):
            return True
    return False


def _resolved(ctx: FileContext, node: ast.expr) -> ast.expr:
    for _ in range(10):
        if not isinstance(node, ast.Name):
            break
        binding = ctx.values.binding_before(node)
        if binding is None or binding.value is None or binding.path:
            break
        node = binding.value
    return node


def _generator_functions(ctx: FileContext) -> set[str]:
    return {
        f.name
        for f in ctx.nodes_of(ast.FunctionDef)
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) and ctx.enclosing(n, ast.FunctionDef) is f for n in ast.walk(f))
    }


def fit_array_samples(ctx: FileContext, x: ast.expr) -> int | None:
    """Samples of ``x`` when it is an array (or a slice, a preprocessed copy of one):
    None for tf.data pipelines, generators, Sequence/PyDataset instances, lists of
    inputs, and anything whose size is unknown."""
    value = _resolved(ctx, x)
    if isinstance(value, (ast.List, ast.Tuple, ast.Dict, ast.ListComp, ast.DictComp)):
        return None  # several inputs (or a Python list): not sliced as one array here
    if isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Attribute) and (func.attr in _DATASET_METHODS or func.attr.startswith("flow")):
            return None  # a tf.data chain, ImageDataGenerator.flow(...)
        qual = ctx.qualname(func) or ""
        if qual.startswith(("tensorflow.data", "tensorflow_datasets")) or "_dataset_from_" in qual:
            return None
        if isinstance(func, ast.Name) and (
            func.id in _generator_functions(ctx)
            or any(isinstance(c, ast.ClassDef) and c.name == func.id for c in ctx.nodes_of(ast.ClassDef))
            or ctx.project.dataset_length(func.id, ctx.file or None) is not NOT_A_PROJECT_DATASET
        ):
            return None  # a generator, or an instance of a class (a Sequence / PyDataset)
    pipeline = pipeline_of(ctx, x)
    if any(m in _DATASET_METHODS for m in pipeline.methods()) or source_package(ctx, pipeline.root) == "tf":
        return None
    return sample_count(ctx, x)


def training_samples(n: int, split: float) -> int:
    """Keras takes validation_split from the tail: the first floor(N * (1 - split)) train."""
    return int(math.floor(n * (1.0 - split)))


def trimmed_length(n: int, b: int, split: float) -> int | None:
    """The largest M <= N whose training part is a positive multiple of B."""
    for m in range(n, 0, -1):
        train = training_samples(m, split)
        if train > 0 and train % b == 0:
            return m
        if train < b:
            return None
    return None


def _sliced(node: cst.CSTNode, m: int) -> cst.CSTNode:
    assert isinstance(node, cst.BaseExpression)
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        # x_train[:1000] -> x_train[:961], not x_train[:1000][:961]
        element = node.slice[0].slice
        if (
            isinstance(element, cst.Slice) and element.lower is None and element.step is None
            and isinstance(element.upper, cst.Integer) and int(element.upper.value) >= m
        ):
            return node.with_changes(slice=[node.slice[0].with_changes(slice=element.with_changes(upper=cst.Integer(str(m))))])
    value = node
    if not isinstance(node, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) and not node.lpar:
        value = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Subscript(value=value, slice=[cst.SubscriptElement(slice=cst.Slice(lower=None, upper=cst.Integer(str(m))))])


def _slice_edit(ctx: FileContext, node: ast.expr, m: int) -> NodeEdit:
    return NodeEdit(ctx.span(node), "BaseExpression", lambda original: _sliced(original, m))


@register
class KerasFitPartialBatch(Rule):
    code = "LL204"
    chain = ChainRole.PARTIAL_BATCH
    name = "keras-fit-partial-batch"
    severity = Severity.WARNING
    triggers = (".fit(",)
    fix_applicability = Applicability.UNSAFE
    summary = (
        "Keras model.fit on arrays whose training length is not a multiple of batch_size (default 32); INFO on image "
        "iterators or arrays whose length is not known statically."
    )
    why = (
        "fit() batches NumPy arrays itself and keeps the remainder: N training samples at batch size B end every "
        "epoch with a batch of N % B. A mean-reduced loss weighs each of its samples B/b times as much; a loss "
        "that is also normalized per batch (LL102) spikes there, and a momentum optimizer carries the step on "
        "(LL302). validation_split takes the tail, so the training part is floor(N * (1 - validation_split)): "
        "MNIST's 60000 samples at the default batch size 32 are fine, but with validation_split=0.1 the 54000 "
        "training samples leave a last batch of 16."
    )
    fix_doc = (
        "fit() has no drop-last option: the fix slices x and y (and sample_weight) to the largest length M whose "
        "training part is a multiple of B (x_train -> x_train[:M]). Unsafe: the N - M samples past the cut are never "
        "trained on (and with validation_split the validation set moves accordingly). Alternatives: a tf.data "
        "pipeline with .batch(B, drop_remainder=True), or a batch size that divides N. Where N is not known "
        "statically (fit on flow_from_directory, or on arrays read with np.load) the finding is INFO and has no "
        "fix: pass steps_per_epoch=N // B."
    )
    references = (
        "https://keras.io/api/models/model_training_apis/#fit-method",
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
    )
    flagged = (
        Flagged(
            """
            from tensorflow import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
            x_train = x_train.astype("float32") / 255
            model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
            model.fit(x_train, y_train, batch_size=128, epochs=15, validation_split=0.1)
            """,
            fixed="""
            from tensorflow import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
            x_train = x_train.astype("float32") / 255
            model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
            model.fit(x_train[:59876], y_train[:59876], batch_size=128, epochs=15, validation_split=0.1)
            """,
            unsafe=True,
            message_contains=("N=54000, B=128", "112 samples", "validation_split=0.1", "never trained on"),
        ),
        Flagged(
            """
            import keras
            (x_train, y_train), _ = keras.datasets.mnist.load_data()
            model.fit(x_train[:1000], y_train[:1000], batch_size=64, epochs=1, validation_split=0.2)
            """,
            fixed="""
            import keras
            (x_train, y_train), _ = keras.datasets.mnist.load_data()
            model.fit(x_train[:961], y_train[:961], batch_size=64, epochs=1, validation_split=0.2)
            """,
            message_contains=("first 961 samples",),
            unsafe=True,
        ),
        Flagged(
            """
            import numpy as np
            import keras

            x = np.random.rand(1000, 8)
            y = np.random.rand(1000, 1)
            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(loss="mse", optimizer="sgd")
            model.fit(x / 2.0, y, epochs=3, sample_weight=np.ones(1000))
            """,
            fixed="""
            import numpy as np
            import keras

            x = np.random.rand(1000, 8)
            y = np.random.rand(1000, 1)
            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(loss="mse", optimizer="sgd")
            model.fit((x / 2.0)[:992], y[:992], epochs=3, sample_weight=np.ones(1000)[:992])
            """,
            unsafe=True,
            message_contains=("N=1000, B=32", "8 samples", "batch_size=32 (the default)"),
        ),
        Flagged(
            """
            from tensorflow.keras.preprocessing.image import ImageDataGenerator

            datagen = ImageDataGenerator(rescale=1.0 / 255)
            train_generator = datagen.flow_from_directory("data/train", target_size=(150, 150), batch_size=16)
            model.compile(loss="binary_crossentropy", optimizer="rmsprop")
            model.fit(train_generator, epochs=50)
            """,
            fixed=None,
            message_contains=("flow_from_directory", "B=16", "ceil(N / B)"),
        ),
        Flagged(
            """
            import numpy as np
            from tensorflow import keras

            x_train = np.load("x.npy")
            y_train = np.load("y.npy")
            model.compile(loss="mse", optimizer="adam")
            model.fit(x_train, y_train, batch_size=64, epochs=3)
            """,
            fixed=None,
            message_contains=("arrays read at run time", "B=64"),
        ),
        Flagged(
            """
            from sklearn.model_selection import train_test_split
            from tensorflow import keras
            X_train, X_test, y_train, y_test = train_test_split(*load_digits(return_X_y=True), test_size=0.15)
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            model.fit(X_train, y_train, validation_split=0.2, epochs=15, batch_size=32)
            """,
            fixed=None,
            message_contains=("arrays of unknown length (X_train) (the first 0.8 of them with validation_split=0.2) with B=32",),
        ),
    )
    quiet = (
        Quiet(
            """
            from sklearn.model_selection import train_test_split
            from tensorflow import keras
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.15)
            model.compile(optimizer="sgd", loss="mse")
            model.fit(X_train, y_train, batch_size=len(X_train), epochs=100)
            model.fit(X_train, y_train, batch_size=1, epochs=3)
            """,
            why="one batch of all the arrays (batch_size=len(X_train)), or batches of one: every batch is full",
        ),
        Quiet(
            """
            import numpy as np
            from tensorflow import keras
            from tensorflow.keras.preprocessing.image import ImageDataGenerator
            x_train = np.load("x.npy")[:6400]
            model.compile(loss="mse", optimizer="adam")
            model.fit(x_train, x_train, batch_size=64, epochs=3)
            train_generator = ImageDataGenerator().flow_from_directory("data/train", batch_size=32)
            model.fit(train_generator, steps_per_epoch=2000 // 32, epochs=50)
            """,
            why="a slice makes N a multiple of B; steps_per_epoch decides what an epoch of the iterator is",
        ),
        Quiet(
            """
            from tensorflow import keras
            (x_train, y_train), _ = keras.datasets.mnist.load_data()
            model.fit(x_train, y_train, epochs=5)
            """,
            why="60000 % 32 == 0: every batch is full",
        ),
        Quiet(
            """
            import tensorflow as tf
            x = tf.random.normal((1000, 8))
            ds = tf.data.Dataset.from_tensor_slices((x, x)).shuffle(1000).batch(32, drop_remainder=True)
            model.fit(ds, epochs=3)
            model.fit(tf.data.Dataset.from_tensor_slices((x, x)), epochs=3)
            """,
            why="a tf.data input batches itself (LL203 judges it)",
        ),
        Quiet(
            """
            import numpy as np
            from tensorflow import keras
            x = np.ones((8, 4))
            model.compile(loss="mse")
            model.fit(x, x, epochs=2)
            """,
            why="N < B: every epoch is a single batch of all N samples, none is partial",
        ),
        Quiet(
            """
            import numpy as np
            from tensorflow import keras
            x = np.zeros((1000, 8))
            model.fit(x, x, epochs=3, steps_per_epoch=20)
            """,
            why="steps_per_epoch decides what an epoch is",
        ),
        Quiet(
            """
            import numpy as np
            from tensorflow import keras
            class Batches(keras.utils.Sequence):
                def __len__(self):
                    return 10
            def gen():
                while True:
                    yield np.zeros((32, 8)), np.zeros((32, 1))
            model.fit(Batches(), epochs=3)
            model.fit(gen(), epochs=3, steps_per_epoch=10)
            """,
            why="generators and Sequence/PyDataset inputs batch themselves (LL206 judges them)",
        ),
        Quiet(
            """
            import numpy as np
            from tensorflow import keras
            from sklearn.linear_model import LogisticRegression
            X = np.zeros((1000, 8))
            y = np.zeros(1000)
            LogisticRegression().fit(X, y)
            """,
            why="not a Keras model",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for call in ctx.nodes_of(ast.Call):
            if not _is_keras_fit(ctx, call) or has_star_kwargs(call):
                continue
            steps = argument(call, "steps_per_epoch", _FIT_POSITIONS["steps_per_epoch"])
            if steps is not None and not (isinstance(steps, ast.Constant) and steps.value is None):
                continue
            x = argument(call, "x", 0)
            if x is None:
                continue
            n = fit_array_samples(ctx, x)
            if n is None:
                possible = self._possible(ctx, call, x)
                if possible is not None:
                    yield ctx.finding(self, call, possible, severity=Severity.INFO)
                continue
            b_node = argument(call, "batch_size", _FIT_POSITIONS["batch_size"])
            default = b_node is None or (isinstance(b_node, ast.Constant) and b_node.value is None)
            b = KERAS_DEFAULT_BATCH_SIZE if default else ctx.values.int_value(b_node)
            if b is None or b <= 0:
                continue
            split_node = argument(call, "validation_split", _FIT_POSITIONS["validation_split"])
            split = 0.0
            if split_node is not None and argument(call, "validation_data", _FIT_POSITIONS["validation_data"]) is None:
                value = ctx.values.number(split_node)
                if value is None:
                    continue  # the training part cannot be known
                split = value
            n_train = training_samples(n, split)
            if n_train < b or n_train % b == 0:
                continue  # every batch is full, or each epoch is one batch of all N
            m = trimmed_length(n, b, split)
            yield ctx.finding(self, call, self._message(ctx, x, n, n_train, b, default, split, m), self._fix(ctx, call, x, m))

    @staticmethod
    def _possible(ctx: FileContext, call: ast.Call, x: ast.expr) -> str | None:
        """fit on a Keras image iterator (``datagen.flow_from_directory(..., batch_size=B)``:
        its __len__ is ceil(N / B)) or on arrays loaded at run time (``np.load``): N is
        not known statically, the last batch is short unless N is a multiple of B."""
        value = _resolved(ctx, x)
        func = value.func if isinstance(value, ast.Call) else None
        if isinstance(func, ast.Attribute) and func.attr in _KERAS_ITERATORS:
            size = argument(value, "batch_size")
            b = KERAS_DEFAULT_BATCH_SIZE if size is None else ctx.values.int_value(size)
            if b == 1:
                return None
            batch = f"B={b}" if b is not None else f"batch_size={ctx.text(size)} (not known statically)"  # type: ignore[arg-type]
            return (
                f"Keras fit on {ctx.text(func)}(...) ({batch}): its length is ceil(N / B) batches, so unless the "
                "number of images N is a multiple of B the last batch of every epoch is smaller (N is not known "
                "statically; no fix: fit has no drop-last option, pass steps_per_epoch=N // B)"
            )
        qual = (ctx.qualname(func) or "") if func is not None else ""
        if qual.split(".")[0] == "numpy" and last_part(qual) in _RUNTIME_ARRAYS:
            b_node = argument(call, "batch_size", _FIT_POSITIONS["batch_size"])
            b = KERAS_DEFAULT_BATCH_SIZE if b_node is None else ctx.values.int_value(b_node)
            if b == 1 or argument(call, "validation_split", _FIT_POSITIONS["validation_split"]) is not None:
                return None
            batch = f"B={b}" + (" (the default)" if b_node is None else "") if b is not None else "B unknown"
            return (
                f"Keras fit on arrays read at run time ({ctx.text(x)} from {last_part(qual)}) with {batch}: unless "
                "their length N is a multiple of B the last batch of every epoch is smaller (N is not known statically)"
            )
        y = argument(call, "y", _FIT_POSITIONS["y"])
        if y is not None and not (isinstance(y, ast.Constant) and y.value is None):
            # fit(x, y): Keras takes y only with arrays (a dataset, generator or Sequence
            # brings its own targets), so x holds N samples that fit slices into batches
            b_node = argument(call, "batch_size", _FIT_POSITIONS["batch_size"])
            b = KERAS_DEFAULT_BATCH_SIZE if b_node is None or (isinstance(b_node, ast.Constant) and b_node.value is None) else ctx.values.int_value(b_node)
            if b == 1 or (b_node is not None and ctx.text(x) in ctx.text(b_node)):
                return None  # a batch of one, or batch_size=len(x): one full batch
            batch = f"B={b}" + (" (the default)" if b_node is None else "") if b is not None else "B unknown"
            split = argument(call, "validation_split", _FIT_POSITIONS["validation_split"])
            part = f" (the first {1 - ctx.values.number(split):g} of them with validation_split={ctx.text(split)})" if split is not None and ctx.values.number(split) is not None else ""
            return (
                f"Keras fit on arrays of unknown length ({ctx.text(x)}){part} with {batch}: unless the number of training "
                "samples N is a multiple of B the last batch of every epoch is smaller (N is not known statically; no fix: "
                "fit has no drop-last option, slice the arrays to a multiple of B)"
            )
        return None

    @staticmethod
    def _message(ctx: FileContext, x: ast.expr, n: int, n_train: int, b: int, default: bool, split: float, m: int | None) -> str:
        batch = f"batch_size={b}" + (" (the default)" if default else "")
        split_text = f", validation_split={split:g} keeps the first {n_train} for training" if split else ""
        message = f"Keras fit on arrays of {n} samples ({ctx.text(x)}{split_text}) with {batch}: {describe_last_batch(n_train, b)}"
        if m is not None:
            message += (
                f"; the fix slices x and y to the first {m} samples so that every training batch is full: the other "
                f"{n - m} are never trained on"
            )
        return message

    @staticmethod
    def _fix(ctx: FileContext, call: ast.Call, x: ast.expr, m: int | None) -> Fix | None:
        if m is None:
            return None
        edits = [_slice_edit(ctx, x, m)]
        for name, position in (("y", 1), ("sample_weight", None)):
            node = argument(call, name, position)
            if node is not None and not (isinstance(node, ast.Constant) and node.value is None):
                edits.append(_slice_edit(ctx, node, m))
        return Fix(f"slice x and y to the first {m} samples", Applicability.UNSAFE, tuple(edits))
