"""Is this data pipeline used for training, or for evaluation?

Partial-batch rules judge training pipelines only: an evaluation loader's last
batch changes no weights. The evidence, most specific first: the name the
pipeline is bound to (``val_loader``), the function that builds or returns it
(``def train_dataloader``), the dataset expression (``test_ds``,
``MNIST(train=False)``), ``shuffle=``, and finally how the file uses it (a loop
over it that calls ``backward()`` or ``step()``). No evidence: not judged.
"""

from __future__ import annotations

import ast
import enum
from typing import TYPE_CHECKING

from losslint.analysis.names import identifier_words, keyword

if TYPE_CHECKING:
    from losslint.context import FileContext


class Role(enum.Enum):
    TRAIN = "train"
    EVAL = "eval"
    UNKNOWN = "unknown"


_EVAL_WORDS = {
    "val", "valid", "validation", "validate", "test", "tests", "testing", "eval", "evaluation", "evaluate",
    "dev", "infer", "inference", "predict", "prediction", "predictions", "calib", "calibration", "holdout",
    "heldout", "benchmark", "demo", "query", "gallery",
}
_EVAL_PREFIXES = ("val", "test", "eval")  # valset, testloader, evalds
_TRAIN_PREFIXES = ("train",)  # train, training, trainset, trainloader


def words_role(text: str) -> Role:
    words = identifier_words(text)
    for word in words:
        if word in _EVAL_WORDS or (word.startswith(_EVAL_PREFIXES) and not word.startswith("value")):
            return Role.EVAL
    for word in words:
        if word.startswith(_TRAIN_PREFIXES) or word in ("tr", "fit", "finetune", "pretrain"):
            return Role.TRAIN
    return Role.UNKNOWN


def bound_name(ctx: "FileContext", node: ast.AST) -> str | None:
    """The name a value is stored under: ``x = node``, ``self.x = node``,
    ``{'x': node}``, ``f(x=node)``, or the function that returns it."""
    parent = ctx.parents.get(node)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return " ".join(ctx.text(t) for t in targets)
    if isinstance(parent, ast.keyword) and parent.arg:
        return parent.arg
    if isinstance(parent, ast.Dict):
        for key, value in zip(parent.keys, parent.values):
            if value is node and isinstance(key, ast.Constant) and isinstance(key.value, str):
                return key.value
    if isinstance(parent, ast.Return):
        function = ctx.enclosing(parent, ast.FunctionDef, ast.AsyncFunctionDef)
        return function.name if function else None
    return None


def _assigned_names(ctx: "FileContext", node: ast.AST) -> list[str]:
    parent = ctx.parents.get(node)
    if isinstance(parent, ast.Call) and len(parent.args) == 1 and parent.args[0] is node and not parent.keywords:
        # loader = accelerator.prepare(DataLoader(...)): the wrapper hands the same loader on
        node, parent = parent, ctx.parents.get(parent)
    if isinstance(parent, ast.Assign):
        return [t.id for t in parent.targets if isinstance(t, ast.Name)] + [
            t.attr for t in parent.targets if isinstance(t, ast.Attribute)
        ]
    if isinstance(parent, ast.AnnAssign) and isinstance(parent.target, (ast.Name, ast.Attribute)):
        return [parent.target.id if isinstance(parent.target, ast.Name) else parent.target.attr]
    return []


def used_for_training(ctx: "FileContext", names: list[str], at: ast.AST | None = None) -> bool:
    """A ``for`` loop over one of ``names`` (directly, or through enumerate/tqdm/zip)
    whose body calls ``backward()`` or ``step()``. With ``at`` (where the pipeline is
    built), only loops that can see that binding count: a loader built inside a
    function is not the ``data_loader`` parameter of another function's loop."""
    if not names:
        return False
    for loop in ctx.nodes_of(ast.For, ast.AsyncFor):
        iterated = {n.id for n in ast.walk(loop.iter) if isinstance(n, ast.Name) and (at is None or _sees(ctx, n, at))} | {
            n.attr for n in ast.walk(loop.iter) if isinstance(n, ast.Attribute)
        }
        if not iterated.intersection(names):
            continue
        for sub in ast.walk(loop):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ("backward", "step"):
                return True
    return False


def _sees(ctx: "FileContext", name: ast.Name, at: ast.AST) -> bool:
    """Does ``name`` (a use) refer to the binding made at ``at``: the same function,
    or, for a binding at module level, a use that no function binds locally?"""
    function = ctx.enclosing(at, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    if function is not None:
        current = ctx.parents.get(name)
        while current is not None and current is not function:
            current = ctx.parents.get(current)
        return current is function
    bindings = ctx.values.bindings(name.id, name)
    return not bindings or all(b.scope is ctx.tree for b in bindings)


def only_first_batch(ctx: "FileContext", call: ast.Call) -> bool:
    """Every use of the loader ``call`` builds is ``next(iter(loader))``: one batch is
    taken (a look at the data, a batch to plot or to initialise with), no pass over
    the data is ever made, so no last batch is ever reached."""
    names = set(_assigned_names(ctx, call))
    if not names:
        return False
    # Lazily: the first use that is not next(iter(...)) answers (a script that
    # rebinds its loader in every cell has every loader's name used everywhere).
    uses = (n for n in ctx.nodes_of(ast.Name) if n.id in names and isinstance(n.ctx, ast.Load) and _sees(ctx, n, call))
    used = False
    for use in uses:
        used = True
        wrapper = ctx.parents.get(use)
        outer = ctx.parents.get(wrapper)
        if not (
            isinstance(wrapper, ast.Call) and isinstance(wrapper.func, ast.Name) and wrapper.func.id == "iter"
            and isinstance(outer, ast.Call) and isinstance(outer.func, ast.Name) and outer.func.id == "next"
        ):
            return False
    return used


_TRAINING_CALLS = {"backward", "step", "fit", "fit_generator", "train_on_batch", "minimize", "apply_gradients", "manual_backward"}


def _file_trains(ctx: "FileContext") -> bool:
    """Anything in the file that trains: backward(), an optimizer step, fit()."""
    if "file_trains" not in ctx.memo:
        ctx.memo["file_trains"] = any(
            isinstance(c.func, ast.Attribute) and c.func.attr in _TRAINING_CALLS for c in ctx.nodes_of(ast.Call)
        )
    return ctx.memo["file_trains"]


def _without_grad(ctx: "FileContext", node: ast.AST) -> bool:
    """Inside ``with torch.no_grad():`` / ``torch.inference_mode()``, or a function
    decorated with one of them."""
    current = ctx.parents.get(node)
    while current is not None:
        if isinstance(current, (ast.With, ast.AsyncWith)):
            for item in current.items:
                expr = item.context_expr
                func = expr.func if isinstance(expr, ast.Call) else expr
                if isinstance(func, (ast.Name, ast.Attribute)) and (func.id if isinstance(func, ast.Name) else func.attr) in ("no_grad", "inference_mode"):
                    return True
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in current.decorator_list:
                func = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(func, (ast.Name, ast.Attribute)) and (func.id if isinstance(func, ast.Name) else func.attr) in ("no_grad", "inference_mode"):
                    return True
        current = ctx.parents.get(current)
    return False


def used_without_training(ctx: "FileContext", names: list[str]) -> bool:
    """Every loop over one of ``names`` runs without gradients (feature extraction,
    a label scan) and none calls backward() or step(): the loader trains nothing,
    whatever its name says. A loader handed to a function of this file
    (``extract_features(model, loader)``) is judged by that function's loops."""
    key = ("used_without_training", frozenset(names))
    if key not in ctx.memo:
        ctx.memo[key] = _trains_nothing(ctx, None, set(names), depth=0) is True
    return ctx.memo[key]


def _nodes_in(ctx: "FileContext", scope: ast.AST | None, types: tuple[type, ...]) -> list:
    """Nodes of ``types`` in ``scope`` (the whole file when None, from the file's
    shared node lists: no walk)."""
    if scope is None:
        return [n for t in types for n in ctx.nodes_of(t)]
    return [n for n in ast.walk(scope) if isinstance(n, types)]


def _loops_over(ctx: "FileContext", scope: ast.AST | None, names: set[str]) -> list[ast.AST]:
    loops = []
    for loop in _nodes_in(ctx, scope, (ast.For, ast.AsyncFor)):
        iterated = {n.id for n in ast.walk(loop.iter) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(loop.iter) if isinstance(n, ast.Attribute)
        }
        if iterated & names:
            loops.append(loop)
    return loops


def _trains_nothing(ctx: "FileContext", scope: ast.AST | None, names: set[str], depth: int) -> bool | None:
    """True when every use of ``names`` in ``scope`` (the file when None) is a loop
    without gradients or a call of a local function that only uses it so; False
    when a use trains; None when there is no use that tells (nothing iterated, or
    handed to code this file does not define)."""
    if not names or depth > 3:
        return None
    verdicts: list[bool | None] = []
    for loop in _loops_over(ctx, scope, names):
        verdicts.append(not _steps(loop) and _without_grad(ctx, loop))
    for call in _nodes_in(ctx, scope, (ast.Call,)):
        for position, arg in enumerate(call.args):
            if isinstance(arg, ast.Name) and arg.id in names:
                parameter = _local_parameter(ctx, call, position)
                if parameter is None:
                    return None  # handed to code we cannot read: nothing to say
                function, parameter_name = parameter
                if _without_grad_function(function):
                    verdicts.append(not _steps(function))
                else:
                    verdicts.append(_trains_nothing(ctx, function, {parameter_name}, depth + 1))
    if False in verdicts:
        return False
    if not verdicts or None in verdicts:
        return None
    return True


def _local_parameter(ctx: "FileContext", call: ast.Call, position: int) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, str] | None:
    """The module-level function of this file that ``call`` calls, and the name of
    its parameter at ``position``."""
    if not isinstance(call.func, ast.Name):
        return None
    for node in ctx.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == call.func.id:
            parameters = node.args.posonlyargs + node.args.args
            if position < len(parameters):
                return node, parameters[position].arg
            return None
    return None


def _without_grad_function(function: ast.AST) -> bool:
    for decorator in getattr(function, "decorator_list", []):
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(func, (ast.Name, ast.Attribute)) and (func.id if isinstance(func, ast.Name) else func.attr) in ("no_grad", "inference_mode"):
            return True
    return False


def _steps(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("backward", "step") for n in ast.walk(node))


def only_read_without_steps(ctx: "FileContext", call: ast.Call) -> bool:
    """Every use of the loader ``call`` builds, in this file, is a loop that neither
    steps nor calls backward, and it is handed to nothing: with ``shuffle=False``
    that is a pass that precomputes something over the data (reference log-probs,
    features, statistics), not training."""
    names = _assigned_names(ctx, call)
    loops = _loops_over(ctx, ctx.tree, set(names)) if names else []
    if not loops or any(_steps(loop) for loop in loops):
        return False
    wrappers = {id(n) for loop in loops for n in ast.walk(loop.iter)}  # tqdm(loader), enumerate(loader)
    return not any(
        isinstance(arg, ast.Name) and arg.id in names
        for node in ctx.nodes_of(ast.Call)
        if id(node) not in wrappers
        for arg in [*node.args, *(k.value for k in node.keywords)]
    )


def _unshuffled_read(ctx: "FileContext", call: ast.Call) -> bool:
    shuffle = keyword(call, "shuffle")
    return shuffle is not None and ctx.values.value(shuffle.value) is False and only_read_without_steps(ctx, call)


def pipeline_role(ctx: "FileContext", call: ast.Call, dataset: ast.expr | None) -> Role:
    """Role of the pipeline built by ``call`` (a DataLoader, a tf.data chain, ...),
    asked by several rules for each pipeline: answered once per file."""
    key = ("pipeline_role", id(call), id(dataset))
    if key not in ctx.memo:
        ctx.memo[key] = _pipeline_role(ctx, call, dataset)
    return ctx.memo[key]


def _pipeline_role(ctx: "FileContext", call: ast.Call, dataset: ast.expr | None) -> Role:
    """Role of the pipeline built by ``call`` (a DataLoader, a tf.data chain, ...).
    How the file uses it decides first: a loader iterated only without gradients
    (or, unshuffled, only by loops that never step) is not for training, whatever
    its name."""
    if used_without_training(ctx, _assigned_names(ctx, call)) or _unshuffled_read(ctx, call):
        return Role.EVAL
    if only_first_batch(ctx, call) or (not _file_trains(ctx) and only_read_without_steps(ctx, call)):
        return Role.EVAL  # never a pass over the data, or read by a file that trains nothing
    name = bound_name(ctx, call)
    if name:
        role = words_role(name)
        if role is not Role.UNKNOWN:
            return role
    function = ctx.enclosing(call, ast.FunctionDef, ast.AsyncFunctionDef)
    if function is not None:
        role = words_role(function.name)
        if role is not Role.UNKNOWN:
            return role
    if dataset is not None:
        role = dataset_role(ctx, dataset)
        if role is not Role.UNKNOWN:
            return role
    shuffle = keyword(call, "shuffle")
    if shuffle is not None and keyword(call, "sampler") is None:  # a sampler needs shuffle=False
        value = ctx.values.value(shuffle.value)
        if value is True:
            return Role.TRAIN
        if value is False:
            return Role.EVAL
    if used_for_training(ctx, _assigned_names(ctx, call), at=call):
        return Role.TRAIN
    return Role.UNKNOWN


def dataset_role(ctx: "FileContext", dataset: ast.expr, depth: int = 0) -> Role:
    """Role told by a dataset expression: its words, ``train=False``, ``split='test'``,
    or (one step back) what the name it came from was assigned."""
    role = words_role(ctx.text(dataset))
    if role is not Role.UNKNOWN or depth > 2:
        return role
    if isinstance(dataset, ast.Call):
        for arg_name in ("train", "split", "subset", "mode", "phase"):
            kw = keyword(dataset, arg_name)
            if kw is None:
                continue
            value = ctx.values.value(kw.value)
            if value is False or (isinstance(value, str) and words_role(value) is Role.EVAL):
                return Role.EVAL
            if value is True or (isinstance(value, str) and words_role(value) is Role.TRAIN):
                return Role.TRAIN
    if isinstance(dataset, ast.Name):
        value = ctx.values.resolve_name(dataset)
        if value is not None:
            return dataset_role(ctx, value, depth + 1)
    return Role.UNKNOWN
