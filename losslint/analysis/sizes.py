"""How many samples a dataset, tensor, array or sequence holds, statically.

Literal shapes (``torch.randn(1000, 20)``, ``np.zeros((1000, 3))``), ``range``,
list literals, ``TensorDataset``, ``random_split``/``Subset``/slices/
``ConcatDataset``, torchvision and Keras datasets of fixed size (SEMANTICS.md §3),
the project's own Dataset classes with a constant ``__len__`` or a configured
size. None when it cannot be known.
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING

from losslint.analysis.names import argument, last_part
from losslint.project import UNKNOWN

if TYPE_CHECKING:
    from losslint.context import FileContext

# Standard splits: (train, test). SEMANTICS.md §3; torchvision's are from its docs.
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
_TENSOR_MODULES = ("torch", "numpy", "np", "jax.numpy", "jnp", "tf", "tensorflow", "numpy.random", "torch.random", "jax.random")


def _first_dim(ctx: "FileContext", shape: ast.expr, depth: int) -> int | None:
    if isinstance(shape, (ast.Tuple, ast.List)):
        return ctx.values.int_value(shape.elts[0]) if shape.elts else None
    return ctx.values.int_value(shape)


def length(ctx: "FileContext", node: ast.expr | None, depth: int = 0) -> int | None:
    """Number of samples (first dimension) of ``node``."""
    if node is None or depth > 25:
        return None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return None
        return len(node.elts)
    if isinstance(node, ast.ListComp) and len(node.generators) == 1 and not node.generators[0].ifs:
        return length(ctx, node.generators[0].iter, depth + 1)
    if isinstance(node, ast.Name):
        return _name_length(ctx, node, depth)
    if isinstance(node, ast.Subscript):
        return _slice_length(ctx, node, depth)
    if isinstance(node, ast.Call):
        return _call_length(ctx, node, depth)
    return None


def _name_length(ctx: "FileContext", node: ast.Name, depth: int) -> int | None:
    bindings = ctx.values.bindings(node.id, node)
    if not bindings:
        return None
    sizes = set()
    for binding in bindings:
        if binding.value is None:
            return None
        if not binding.path:
            size = length(ctx, binding.value, depth + 1)
        else:
            size = _unpacked_length(ctx, binding.value, binding.path, depth)
        if size is None:
            return None
        sizes.add(size)
    return sizes.pop() if len(sizes) == 1 else None


def _unpacked_length(ctx: "FileContext", value: ast.expr, path: tuple[int, ...], depth: int) -> int | None:
    """``a, b = random_split(ds, [800, 200])``; ``(x, y), (xt, yt) = mnist.load_data()``;
    ``x_tr, x_te, y_tr, y_te = train_test_split(...)``; ``a, b = x1, x2``."""
    keras = keras_load_data_length(ctx, value, path)
    if keras is not None:
        return keras
    while len(path) > 1 and isinstance(value, (ast.Tuple, ast.List)) and path[0] < len(value.elts):
        value, path = value.elts[path[0]], path[1:]
    if len(path) != 1:
        return None
    index = path[0]
    if isinstance(value, (ast.Tuple, ast.List)) and index < len(value.elts):
        return length(ctx, value.elts[index], depth + 1)
    if isinstance(value, ast.Call) and last_part(ctx.qualname(value.func)) == "random_split":
        return _random_split_lengths(ctx, value, depth).get(index)
    if isinstance(value, ast.Call) and last_part(ctx.qualname(value.func)) == "train_test_split":
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
    total = length(ctx, node.value, depth + 1)
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
    qual = ctx.qualname(call.func) or ""
    name = last_part(qual)
    module = qual.rpartition(".")[0]
    if name == "range":
        args = [ctx.values.int_value(a) for a in call.args]
        if not args or any(a is None for a in args) or len(args) > 3:
            return None
        return len(range(*args))  # type: ignore[arg-type]
    if name in ("list", "tuple", "sorted", "np.array", "array", "tensor", "as_tensor", "asarray", "from_numpy", "Tensor"):
        return length(ctx, call.args[0], depth + 1) if call.args else None
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
    # The project's own Dataset classes.
    if isinstance(call.func, ast.Name) or isinstance(call.func, ast.Attribute):
        known = ctx.project.dataset_length(name)
        if isinstance(known, int) and not isinstance(known, bool):
            return known
    return None


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
