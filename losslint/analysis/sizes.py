"""How many samples a dataset, tensor, array or sequence holds, statically.

Literal shapes (``torch.randn(1000, 20)``, ``np.zeros((1000, 3))``), ``range``,
list literals, ``TensorDataset``, ``random_split``/``Subset``/slices/
``ConcatDataset``, sklearn k-fold index splits, torchvision and Keras datasets of fixed size (docs/semantics.md §3),
the project's own Dataset classes with a constant ``__len__`` or a configured
size. None when it cannot be known.

The length layer over ``analysis/origins.py``, beside ``values.py`` and
``objects.py``: a name, parameter, ``self.x``, dict entry, tuple element or
helper's return is followed by the origins core, and the length every origin
builds is kept when they agree (``_origins_length``); what is judged here is what
a call builds (shapes, splits, k-fold folds, known datasets).
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING

from losslint.analysis.names import argument, dotted, last_part
from losslint.analysis.origins import Origin, Origins, origins_of
from losslint.project import UNKNOWN

if TYPE_CHECKING:
    from losslint.context import FileContext

# Standard splits: (train, test). docs/semantics.md §3; torchvision's are from its docs.
TORCHVISION_SIZES: dict[str, tuple[int, int]] = {
    "MNIST": (60000, 10000),
    "FashionMNIST": (60000, 10000),
    "KMNIST": (60000, 10000),
    "QMNIST": (60000, 60000),
    "CIFAR10": (50000, 10000),
    "CIFAR100": (50000, 10000),
}
KERAS_DATASET_SIZES: dict[str, tuple[int, int]] = {
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "imdb": (25000, 25000),
}

# Constructors whose first argument(s) give the shape, first dimension first.
_SHAPE_FIRST = {
    "randn", "rand", "zeros", "ones", "empty", "full", "normal_", "ones_like",
    "random", "random_sample", "standard_normal",
}
# Random tensors of TensorFlow, Keras and JAX, whose shape comes first (after JAX's key).
_SHAPE_FIRST_RANDOM = {"normal", "uniform", "truncated_normal", "stateless_normal", "stateless_uniform", "stateless_truncated_normal"}
_TENSOR_MODULES = ("torch", "numpy", "np", "jax.numpy", "jnp", "tf", "tensorflow", "numpy.random", "torch.random", "jax.random")


def _without_compat(qual: str) -> str:
    """``tensorflow.compat.v2.random.normal`` -> ``tensorflow.random.normal``: the
    compat modules hold the same functions."""
    for prefix in ("tensorflow.compat.v1.", "tensorflow.compat.v2."):
        if qual.startswith(prefix):
            return "tensorflow." + qual[len(prefix):]
    return qual


def _first_dim(ctx: "FileContext", shape: ast.expr, depth: int) -> int | None:
    if isinstance(shape, (ast.Tuple, ast.List)):
        return ctx.values.int_value(shape.elts[0]) if shape.elts else None
    return ctx.values.int_value(shape)


def length(ctx: "FileContext", node: ast.expr | None, depth: int = 0) -> int | None:
    """Number of samples (first dimension) of ``node``."""
    if node is None or depth > 25:
        return None
    if isinstance(node, ast.Name):
        return _name_length(ctx, node, depth)
    if _held(node):  # self.train_set, data["train"], pair[0]
        return _origins_length(ctx, origins_of(ctx).of(node), depth)
    return _built_length(ctx, node, depth)


def _held(node: ast.expr) -> bool:
    """An expression the origins core follows to what it holds (``self.x``, a
    dict's entry, a tuple's element), not one that builds a value itself."""
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "self"
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and isinstance(key.value, (int, str)) and not isinstance(key.value, bool)
    return False


def _built_length(ctx: "FileContext", node: ast.expr, depth: int) -> int | None:
    """The length of what an expression builds: a literal, a comprehension, a slice, a call."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return None
        return len(node.elts)
    if isinstance(node, ast.ListComp) and len(node.generators) == 1 and not node.generators[0].ifs:
        return length(ctx, node.generators[0].iter, depth + 1)
    if isinstance(node, ast.Subscript):
        return _slice_length(ctx, node, depth)
    if isinstance(node, ast.Call):
        return _call_length(ctx, node, depth)
    return None


def _origins_length(ctx: "FileContext", origins: Origins, depth: int) -> int | None:
    """The one length every origin has (as ``values.py`` agrees on one value):
    None when one is unknown, two differ, or some origin could not be followed."""
    if not origins.complete or not origins.found or depth > 25:
        return None
    agreed: int | None = None
    for origin in origins.found:
        size = _origin_length(ctx, origin, depth)
        if size is None or (agreed is not None and size != agreed):
            return None
        agreed = size
    return agreed


def _origin_length(ctx: "FileContext", origin: Origin, depth: int) -> int | None:
    node = origin.expr
    if node is None:
        return None  # another file's call: its argument is not at hand
    if origin.path:  # an element of what a call returns
        return _returned_element_length(ctx, node, origin.path, depth) if isinstance(node, ast.Call) else None
    return _built_length(ctx, node, depth + 1)


# sklearn splitters whose n_splits test folds partition N with sizes differing by at
# most one (their docs); group splitters follow the groups' sizes, so are not here.
_KFOLD_SPLITTERS = {"KFold", "StratifiedKFold", "RepeatedKFold", "RepeatedStratifiedKFold"}


def _target_path(target: ast.expr, name: str) -> tuple[int, ...] | None:
    if isinstance(target, ast.Name):
        return () if target.id == name else None
    if isinstance(target, (ast.Tuple, ast.List)):
        for index, element in enumerate(target.elts):
            inner = _target_path(element, name)
            if inner is not None:
                return (index, *inner)
    return None


def _fold_length(ctx: "FileContext", node: ast.Name, depth: int) -> int | None:
    """``for fold, (train_ids, test_ids) in enumerate(KFold(n_splits=5).split(data))``:
    a test fold has N / k samples and a training fold the rest; known when every fold
    has the same size (N a multiple of k)."""
    loop = ctx.parents.get(node)
    while loop is not None and not (isinstance(loop, (ast.For, ast.AsyncFor)) and _target_path(loop.target, node.id) is not None):
        loop = ctx.parents.get(loop)
    if loop is None or any(
        isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and any(
            isinstance(t, ast.Name) and t.id == node.id for target in (n.targets if isinstance(n, ast.Assign) else [n.target]) for t in ast.walk(target)
        )
        for n in ast.walk(loop)
    ):
        return None  # rebound in the loop: not the fold any more
    path = _target_path(loop.target, node.id)
    split = loop.iter
    if isinstance(split, ast.Call) and isinstance(split.func, ast.Name) and split.func.id == "enumerate" and split.args:
        split, path = split.args[0], path[1:] if path and path[0] == 1 else None
    if path != (0,) and path != (1,):
        return None
    if not (isinstance(split, ast.Call) and isinstance(split.func, ast.Attribute) and split.func.attr == "split" and split.args):
        return None
    splitter = split.func.value
    if isinstance(splitter, ast.Name):
        splitter = ctx.values.resolve_name(splitter)
    if not (isinstance(splitter, ast.Call) and last_part(ctx.qualname(splitter.func)) in _KFOLD_SPLITTERS):
        return None
    k = ctx.values.int_value(argument(splitter, "n_splits", 0)) if argument(splitter, "n_splits", 0) is not None else 5
    total = length(ctx, split.args[0], depth + 1)
    if total is None or not k or k < 2 or total % k:
        return None
    return total - total // k if path == (0,) else total // k


def _name_length(ctx: "FileContext", node: ast.Name, depth: int) -> int | None:
    fold = _fold_length(ctx, node, depth)
    if fold is not None:
        return fold
    # the bindings that reach the use: a script that reuses ``x`` for its batches
    # (``for x, y in loader``) after ``x, y = make_data(1000)``: a use before that loop sees the first
    return _origins_length(ctx, origins_of(ctx).of(node), depth)


def _returned_element_length(ctx: "FileContext", value: ast.Call, path: tuple[int, ...], depth: int) -> int | None:
    """``a, b = random_split(ds, [800, 200])``; ``(x, y), (xt, yt) = mnist.load_data()``;
    ``x_tr, x_te, y_tr, y_te = train_test_split(...)``; a helper's returned tuple."""
    keras = keras_load_data_length(ctx, value, path)
    if keras is not None:
        return keras
    if len(path) != 1:
        return None
    index = path[0]
    returned = _returned_length(ctx, value, path, depth)
    if returned is not None:
        return returned
    if last_part(ctx.qualname(value.func)) == "random_split":
        return _random_split_lengths(ctx, value, depth).get(index)
    if last_part(ctx.qualname(value.func)) == "train_test_split":
        total = length(ctx, value.args[0], depth + 1) if value.args else None
        test = ctx.values.number(argument(value, "test_size"))
        train = ctx.values.number(argument(value, "train_size"))
        if total is None or (test is None and train is None):
            return None
        n_test = (math.ceil(test * total) if test < 1 else int(test)) if test is not None else total - (
            math.floor(train * total) if train < 1 else int(train)
        )
        # sklearn returns x_train, x_test, y_train, y_test, ...
        return total - n_test if index % 2 == 0 else n_test
    return None


def _random_split_lengths(ctx: "FileContext", call: ast.Call, depth: int) -> dict[int, int]:
    lengths = argument(call, "lengths", 1)
    if not isinstance(lengths, (ast.List, ast.Tuple)):
        return {}
    values = [ctx.values.number(e) for e in lengths.elts]
    if any(v is None for v in values):
        return {}
    if all(v is not None and v <= 1 for v in values) and any(isinstance(v, float) and not v.is_integer() for v in values):
        total = length(ctx, argument(call, "dataset", 0), depth + 1)
        if total is None:
            return {}
        # torch.utils.data.random_split: floor each fraction, then hand out the
        # remainder one by one from the first subset.
        sizes = [math.floor(total * v) for v in values]  # type: ignore[operator]
        for i in range(total - sum(sizes)):
            sizes[i % len(sizes)] += 1
        return dict(enumerate(sizes))
    return {i: int(v) for i, v in enumerate(values)}  # type: ignore[arg-type]


def _slice_length(ctx: "FileContext", node: ast.Subscript, depth: int) -> int | None:
    key = node.slice
    if not isinstance(key, ast.Slice) or key.step is not None:
        if isinstance(key, ast.Tuple) and key.elts and isinstance(key.elts[0], ast.Slice):
            key = key.elts[0]  # x[:800, :] -> rows
        else:
            return None
    return _sliced_length(ctx, key, length(ctx, node.value, depth + 1))


def _sliced_length(ctx: "FileContext", key: ast.Slice, total: int | None) -> int | None:
    """Length of ``x[lower:upper]`` for an ``x`` of ``total`` samples (None: unknown)."""
    lower = ctx.values.int_value(key.lower) if key.lower is not None else 0
    upper = ctx.values.int_value(key.upper) if key.upper is not None else total
    if lower is None or upper is None:
        return None
    if lower < 0 or upper < 0:
        if total is None:
            return None
        lower, upper = (lower + total if lower < 0 else lower), (upper + total if upper < 0 else upper)
    if total is not None:
        upper = min(upper, total)
    return max(0, upper - lower)


# Methods that keep a tensor's or array's first dimension.
_SAME_LENGTH_METHODS = {
    "astype", "float", "double", "half", "long", "int", "bool", "to", "cuda", "cpu", "numpy", "clone",
    "detach", "copy", "type", "contiguous", "requires_grad_", "pin_memory", "squeeze", "flatten", "values",
}


def _call_length(ctx: "FileContext", call: ast.Call, depth: int) -> int | None:
    if isinstance(call.func, ast.Attribute) and call.func.attr in _SAME_LENGTH_METHODS:
        if call.func.attr not in ("squeeze", "flatten") or not call.args:  # squeeze(0) / flatten(0) may change it
            size = length(ctx, call.func.value, depth + 1)
            if size is not None:
                return size
    qual = _without_compat(ctx.qualname(call.func) or "")
    name = last_part(qual)
    module = qual.rpartition(".")[0]
    if name == "range":
        args = [ctx.values.int_value(a) for a in call.args]
        if not args or any(a is None for a in args) or len(args) > 3:
            return None
        return len(range(*args))  # type: ignore[arg-type]
    if name in ("list", "tuple", "sorted", "np.array", "array", "tensor", "as_tensor", "asarray", "from_numpy", "Tensor"):
        return length(ctx, call.args[0], depth + 1) if call.args else None
    if name in ("unsqueeze", "expand_dims"):
        # torch.unsqueeze(x, dim=1), x.unsqueeze(1), np.expand_dims(x, -1): a new axis
        # after the first keeps the number of samples
        function_form = module.split(".")[-1] in ("torch", "np", "numpy", "jnp", "tf", "tensorflow")
        array = call.args[0] if function_form and call.args else call.func.value if isinstance(call.func, ast.Attribute) and not function_form else None
        axis = ctx.values.int_value(argument(call, "axis" if name == "expand_dims" else "dim", 1 if function_form else 0))
        return length(ctx, array, depth + 1) if array is not None and axis is not None and axis != 0 else None
    if name in ("TensorDataset", "StackDataset"):
        sizes = [length(ctx, a, depth + 1) for a in call.args]
        known = [s for s in sizes if s is not None]
        return known[0] if known else None
    if name == "Subset":
        return length(ctx, argument(call, "indices", 1), depth + 1)
    if name == "ConcatDataset":
        parts = argument(call, "datasets", 0)
        if isinstance(parts, (ast.List, ast.Tuple)):
            sizes = [length(ctx, e, depth + 1) for e in parts.elts]
            return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]
        return None
    if name in ("arange", "linspace") and module.split(".")[-1] in ("torch", "np", "numpy", "jnp", "tf"):
        if name == "linspace":
            return ctx.values.int_value(argument(call, "steps" if module == "torch" else "num", 2))
        args = [ctx.values.number(a) for a in call.args]
        if not args or any(a is None for a in args):
            return None
        start, stop, step = (0.0, args[0], 1.0) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1.0)
        return max(0, math.ceil((stop - start) / step)) if step else None  # type: ignore[operator]
    if name == "randint" and module.split(".")[-1] in ("torch", "random"):
        shape = argument(call, "size", 2 if module == "torch" else None)
        return _first_dim(ctx, shape, depth) if shape is not None else None
    if name in _SHAPE_FIRST and (module in _TENSOR_MODULES or module.endswith(("numpy.random", "np.random"))):
        shape = argument(call, "size") or argument(call, "shape")
        if shape is not None:
            return _first_dim(ctx, shape, depth)
        if name in ("normal_", "ones_like"):
            return None
        if call.args:
            return _first_dim(ctx, call.args[0], depth)
        return None
    if name in _SHAPE_FIRST_RANDOM and module in ("tensorflow.random", "keras.random", "tensorflow.keras.random", "jax.random"):
        # tf.random.normal(shape, ...), keras.random.uniform(shape), jax.random.normal(key, shape)
        shape = argument(call, "shape", 1 if module == "jax.random" else 0)
        return _first_dim(ctx, shape, depth) if shape is not None else None
    if name in ("normal", "uniform", "choice", "integers") and module.endswith("random"):
        shape = argument(call, "size")
        return _first_dim(ctx, shape, depth) if shape is not None else None
    if name in TORCHVISION_SIZES and "torchvision" in qual:
        train = argument(call, "train", 1)
        is_train = ctx.values.value(train) if train is not None else True
        if is_train is UNKNOWN:
            return None
        return TORCHVISION_SIZES[name][0 if is_train else 1]
    if name == "from_tensor_slices":
        arg = call.args[0] if call.args else None
        if isinstance(arg, (ast.Tuple, ast.List)) and arg.elts:
            return length(ctx, arg.elts[0], depth + 1)
        if isinstance(arg, ast.Dict) and arg.values:
            return length(ctx, arg.values[0], depth + 1)
        return length(ctx, arg, depth + 1)
    returned = _returned_length(ctx, call, (), depth)
    if returned is not None:
        return returned
    # The project's own Dataset classes.
    if isinstance(call.func, ast.Name) or isinstance(call.func, ast.Attribute):
        known = ctx.project.dataset_length(name, ctx.file or None)
        if isinstance(known, int) and not isinstance(known, bool):
            return known
    return None


def _returned_length(ctx: "FileContext", call: ast.Call, path: tuple[int, ...], depth: int) -> int | None:
    """``make_data(1000)`` where this file's ``def make_data(n)`` returns
    ``TensorDataset(torch.randn(n, 8), ...)``: the one length every function of
    that name returns (element ``path`` of a returned tuple: ``x, y =
    make_data(1000)``), by the origins core. Its parameters are read from all its
    calls, so a helper called with two sizes gives none. None for a generator or a
    function not of this file."""
    returned = origins_of(ctx).returns(call, path)
    if not returned or any(isinstance(n, (ast.Yield, ast.YieldFrom)) for function, _ in returned for n in ast.walk(function)):
        return None
    sizes = {_origins_length(ctx, origins, depth + 1) for _, origins in returned}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def keras_load_data_length(ctx: "FileContext", value: ast.expr, path: tuple[int, ...]) -> int | None:
    """``(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()``:
    the length of the array at unpacking ``path`` ((0, 0) is x_train)."""
    if not isinstance(value, ast.Call):
        return None
    qual = ctx.qualname(value.func) or ""
    parts = qual.split(".")
    if len(parts) >= 2 and parts[-1] == "load_data" and parts[-2] in KERAS_DATASET_SIZES and path:
        return KERAS_DATASET_SIZES[parts[-2]][path[0]] if path[0] in (0, 1) else None
    return None


# -- samples of arrays as training scripts reshape them (flow-sensitive) --------

# keras.datasets whose load_data() splits a fixed total at test_split=0.2 (the
# training part is int(total * (1 - test_split)); docs/semantics.md §3, keras docs).
KERAS_SPLIT_DATASETS: dict[str, int] = {"reuters": 11228, "boston_housing": 506, "california_housing": 20640}

# tensorflow_datasets standard splits (the tfds catalog).
TFDS_SIZES: dict[str, dict[str, int]] = {
    "mnist": {"train": 60000, "test": 10000},
    "fashion_mnist": {"train": 60000, "test": 10000},
    "cifar10": {"train": 50000, "test": 10000},
    "cifar100": {"train": 50000, "test": 10000},
    "imdb_reviews": {"train": 25000, "test": 25000},
}

# Module functions that keep the first dimension of their first argument.
_SAME_SAMPLES_FUNCTIONS = {
    "to_categorical", "asarray", "array", "float32", "float64", "float16", "uint8", "int32", "int64",
    "convert_to_tensor", "constant", "cast", "preprocess_input", "normalize", "ascontiguousarray", "tensor",
    "as_tensor", "from_numpy", "squeeze_last", "pad_sequences",
}


def sample_count(ctx: "FileContext", node: ast.expr | None, depth: int = 0) -> int | None:
    """Samples (first dimension) of an array as a script prepares it: like
    ``length``, but a name is followed to the assignment it sees in straight-line
    order (``x = x.astype("float32") / 255`` reads the previous ``x``), and the
    shape-keeping steps of preprocessing are followed: arithmetic with a scalar,
    ``astype``, ``reshape(-1, ...)``, ``np.expand_dims(x, -1)``, ``x[..., None]``,
    ``to_categorical(y)``, ``pad_sequences(seqs)``, ``np.concatenate([a, b])``."""
    if node is None or depth > 25:
        return None
    if isinstance(node, ast.Name):
        binding = ctx.values.binding_before(node)
        if binding is None:
            return length(ctx, node, depth)
        if binding.value is None:
            return None
        if not binding.path:
            return sample_count(ctx, binding.value, depth + 1)
        value, path = binding.value, binding.path
        while path and isinstance(value, (ast.Tuple, ast.List)) and path[0] < len(value.elts):
            value, path = value.elts[path[0]], path[1:]
        if not path:
            return sample_count(ctx, value, depth + 1)
        return keras_split_load_data_length(ctx, value, path) or _origins_length(ctx, origins_of(ctx).of(value, path), depth + 1)
    if isinstance(node, ast.Subscript):
        return _subscript_samples(ctx, node, depth)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.Mod)):
        if isinstance(node.left, (ast.List, ast.Tuple)) or isinstance(node.right, (ast.List, ast.Tuple)):
            return None  # list repetition or concatenation
        left, right = sample_count(ctx, node.left, depth + 1), sample_count(ctx, node.right, depth + 1)
        if left is not None and right is not None:
            return left if left == right and not isinstance(node.op, ast.Add) else None
        known = left if left is not None else right
        other = node.right if left is not None else node.left
        # Elementwise with a scalar: x / 255, 1.0 - x, (x - mean) / std.
        return known if ctx.values.number(other) is not None or isinstance(other, (ast.Name, ast.Attribute)) else None
    if isinstance(node, ast.Call):
        return _call_samples(ctx, node, depth)
    return length(ctx, node, depth)


def _subscript_samples(ctx: "FileContext", node: ast.Subscript, depth: int) -> int | None:
    key = node.slice
    first = key.elts[0] if isinstance(key, ast.Tuple) and key.elts else key
    if isinstance(first, ast.Constant) and first.value is Ellipsis:
        return sample_count(ctx, node.value, depth + 1)  # x[..., None]
    if not isinstance(first, ast.Slice) or first.step is not None:
        return length(ctx, node, depth)
    return _sliced_length(ctx, first, sample_count(ctx, node.value, depth + 1))


def _call_samples(ctx: "FileContext", call: ast.Call, depth: int) -> int | None:
    func = call.func
    qual = ctx.qualname(func) or ""
    name = last_part(qual)
    # x.astype(...) is a method of an array; np.expand_dims(...) a module's function.
    if isinstance(func, ast.Attribute) and (dotted(func.value) or "").split(".")[0] not in ctx.imports.aliases:
        receiver = func.value
        if func.attr in _SAME_LENGTH_METHODS and (func.attr not in ("squeeze", "flatten") or not call.args):
            return sample_count(ctx, receiver, depth + 1)
        if func.attr == "reshape":
            return _reshape_samples(ctx, receiver, call.args, depth)
        return length(ctx, call, depth)
    if name == "reshape" and call.args:
        return _reshape_samples(ctx, call.args[0], call.args[1:], depth)
    if name == "expand_dims" and call.args:
        axis = ctx.values.int_value(argument(call, "axis", 1))
        return sample_count(ctx, call.args[0], depth + 1) if axis is not None and axis != 0 else None
    if name in ("concatenate", "vstack", "stack", "concat") and call.args:
        axis = argument(call, "axis", 1)
        if name != "stack" and axis is not None and ctx.values.int_value(axis) != 0:
            return None
        parts = call.args[0]
        if not isinstance(parts, (ast.List, ast.Tuple)):
            return None
        if name == "stack":
            return None if axis is not None and ctx.values.int_value(axis) != 0 else len(parts.elts)
        sizes = [sample_count(ctx, p, depth + 1) for p in parts.elts]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]
    if name in _SAME_SAMPLES_FUNCTIONS and call.args and not any(isinstance(a, ast.Starred) for a in call.args):
        return sample_count(ctx, call.args[0], depth + 1)
    return length(ctx, call, depth)


def _reshape_samples(ctx: "FileContext", array: ast.expr, shape_args: list[ast.expr], depth: int) -> int | None:
    """``x.reshape(-1, 28, 28, 1)`` / ``x.reshape((60000, 784))`` / ``x.reshape(len(x), -1)``."""
    dims = list(shape_args[0].elts) if len(shape_args) == 1 and isinstance(shape_args[0], (ast.Tuple, ast.List)) else shape_args
    if len(dims) < 2:
        return None  # flattening: no sample axis left
    first = dims[0]
    value = ctx.values.int_value(first)
    if value is not None and value >= 0:
        return value
    keeps = value == -1 or (
        isinstance(first, ast.Subscript) and isinstance(first.value, ast.Attribute) and first.value.attr == "shape"
    ) or (isinstance(first, ast.Call) and isinstance(first.func, ast.Name) and first.func.id == "len")
    return sample_count(ctx, array, depth + 1) if keeps else None


def keras_split_load_data_length(ctx: "FileContext", value: ast.expr, path: tuple[int, ...]) -> int | None:
    """``(x, y), (xt, yt) = keras.datasets.reuters.load_data(test_split=0.2)``: sizes
    of the datasets that load_data splits itself, and tfds.load splits by name
    (``(ds_train, ds_test), info = tfds.load("mnist", split=["train", "test"], with_info=True)``)."""
    if not isinstance(value, ast.Call) or not path:
        return None
    qual = ctx.qualname(value.func) or ""
    parts = qual.split(".")
    if len(parts) >= 2 and parts[-1] == "load_data" and parts[-2] in KERAS_SPLIT_DATASETS and path[0] in (0, 1):
        split = ctx.values.number(argument(value, "test_split")) if argument(value, "test_split") else 0.2
        if split is None:
            return None
        total = KERAS_SPLIT_DATASETS[parts[-2]]
        train = int(total * (1 - split))
        return train if path[0] == 0 else total - train
    if qual.startswith("tensorflow_datasets") and parts[-1] == "load":
        return tfds_split_length(ctx, value, path)
    return keras_load_data_length(ctx, value, path)


def tfds_split_length(ctx: "FileContext", call: ast.Call, path: tuple[int, ...] = ()) -> int | None:
    """Size of ``tfds.load(name, split=...)`` for a standard split of a known dataset
    (at unpacking ``path``: with_info=True returns (datasets, info))."""
    name = ctx.values.value(argument(call, "name", 0))
    sizes = TFDS_SIZES.get(name) if isinstance(name, str) else None
    if sizes is None:
        return None
    if ctx.values.value(argument(call, "with_info")) is True:
        if not path or path[0] != 0:
            return None
        path = path[1:]
    split = argument(call, "split", 1)
    if isinstance(split, (ast.List, ast.Tuple)):
        if len(path) != 1 or path[0] >= len(split.elts):
            return None
        split = split.elts[path[0]]
    elif path:
        return None
    value = ctx.values.value(split)
    return sizes.get(value) if isinstance(value, str) else None
