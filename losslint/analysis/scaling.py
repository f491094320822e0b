"""How a loss value scales with the batch size, read off the code: the program
facts the loss-normalization rules (LL1xx) judge.

The question every LL1xx rule asks is "what does this expression's magnitude do
when the batch gets smaller?". ``LossEvaluator`` answers it with a small abstract
interpretation over ``ast`` expressions (docs/semantics.md §1-§2):

- ``Kind.MEAN``: a scalar independent of the batch size (a mean-reduced torch
  loss, ``.mean()`` of a per-sample tensor, a sum divided by the actual batch
  size or by a count taken over the whole batch such as ``num_pos``);
- ``Kind.SUM``: a scalar proportional to the batch size (``reduction='sum'``,
  ``.sum()`` of a per-sample tensor);
- ``Kind.PER_SAMPLE``: a tensor of rank >= 1 whose entries do not depend on the
  batch size (``reduction='none'``, ``y_pred`` in a Keras loss);
- ``Kind.OVER_BATCH_COUNT``: a tensor of rank >= 1 already divided by a count over
  the whole batch (ssd_keras's ``(class_loss + alpha * loc_loss) / n_positive``):
  a framework that averages it over the batch again makes it ~ 1/b (LL102);
- ``Kind.DOUBLE``: a scalar ~ 1/b, normalized twice (what LL101 reports);
- ``Kind.NUMBER`` (a plain weight) and ``Kind.UNKNOWN``.

Divisors are classified separately (``Divisor``): the actual batch size
(``x.size(0)``, ``len(y)``, ``tf.shape(y_pred)[0]``), a nominal one
(``args.batch_size``, ``BATCH_SIZE``), a count over the whole batch, a per-sample
count, a constant. Unknown stays unknown: the rules report only what the code
shows, since real double normalization is rare and a false alarm costs trust.

Names are read through the file's scope model (``scopes.py``): the bindings
that reach a use, flow-sensitively. Loss classes and functions defined anywhere
in the project are summarized by a ``@collector`` into a ``LossFacts`` family
fact, so that ``criterion = FocalLoss()`` in train.py is understood when
``FocalLoss.forward`` returns ``.mean()`` in losses.py (a file sees the facts of
the files within its reach). Where a loss goes (``reaches_backward``,
``is_logged_only``, ``in_evaluation``) is here too: what is a risk, and its fix,
is the rules'.
"""

from __future__ import annotations

import ast
import enum
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from losslint.analysis.names import argument, dotted, has_star_kwargs, identifier_words, last_part
from losslint.analysis.scopes import Binding, position, scopes_of
from losslint.project import ModuleFacts, ProjectFacts, collector, family_fact, file_key

if TYPE_CHECKING:
    from losslint.context import FileContext


class Kind(enum.Enum):
    MEAN = "mean"
    SUM = "sum"
    PER_SAMPLE = "per-sample"
    OVER_BATCH_COUNT = "over-batch-count"
    DOUBLE = "double"
    NUMBER = "number"
    UNKNOWN = "unknown"


class Divisor(enum.Enum):
    ACTUAL_BATCH = "actual batch size"
    NOMINAL_BATCH = "nominal batch size"
    BATCH_COUNT = "count over the whole batch"  # mask.sum(), tf.reduce_sum(positives)
    NAMED_COUNT = "count (by its name)"  # num_pos we cannot resolve: good enough to make a sum a mean
    SAMPLE_COUNT = "per-sample count"  # mask.sum(dim=1): per-sample normalization
    CONSTANT = "constant"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Loss:
    kind: Kind
    evidence: str = ""  # "mean-reduced CrossEntropyLoss"
    detached: bool = False  # .item(), .detach(), float(): only logged, never trained on
    parts: tuple["Loss", ...] = ()  # a tuple of losses returned together
    # a project callable's: (file key, line of its def, its name), for a finding's related location
    defined: tuple[str, int, str] | None = None

    def but(
        self, kind: Kind | None = None, evidence: str | None = None, detached: bool | None = None, defined: tuple[str, int, str] | None = None
    ) -> "Loss":
        return Loss(
            kind if kind is not None else self.kind,
            evidence if evidence is not None else self.evidence,
            self.detached if detached is None else detached,
            self.parts,
            defined if defined is not None else self.defined,
        )


NOTHING = Loss(Kind.UNKNOWN)


@dataclass(frozen=True)
class DivisorInfo:
    kind: Divisor
    text: str
    node: ast.expr | None = None  # for the actual batch size: the batch tensor it measures


# -- framework tables (docs/semantics.md §1) ------------------------------------------

# torch.nn loss classes: all default to reduction='mean'. Value: how many leading
# positional arguments are not reduction-related (weight, margin, ...), so that a
# legacy positional size_average is not mistaken for one.
TORCH_LOSS_CLASSES: dict[str, int] = {
    "L1Loss": 0, "MSELoss": 0, "CrossEntropyLoss": 1, "NLLLoss": 1, "NLLLoss2d": 1, "BCELoss": 1,
    "BCEWithLogitsLoss": 1, "KLDivLoss": 0, "HuberLoss": 0, "SmoothL1Loss": 0, "SoftMarginLoss": 0,
    "MultiLabelSoftMarginLoss": 1, "MultiLabelMarginLoss": 0, "MultiMarginLoss": 0, "CosineEmbeddingLoss": 1,
    "HingeEmbeddingLoss": 1, "MarginRankingLoss": 1, "TripletMarginLoss": 0, "TripletMarginWithDistanceLoss": 0,
    "PoissonNLLLoss": 0, "GaussianNLLLoss": 0, "CTCLoss": 1, "LinearCrossEntropyLoss": 0,
}
# torch.nn.functional losses: name -> number of tensor arguments before the options.
TORCH_LOSS_FUNCTIONS: dict[str, int] = {
    "l1_loss": 2, "mse_loss": 2, "cross_entropy": 2, "nll_loss": 2, "binary_cross_entropy": 2,
    "binary_cross_entropy_with_logits": 2, "kl_div": 2, "huber_loss": 2, "smooth_l1_loss": 2,
    "soft_margin_loss": 2, "multilabel_soft_margin_loss": 2, "multilabel_margin_loss": 2, "multi_margin_loss": 2,
    "cosine_embedding_loss": 3, "hinge_embedding_loss": 2, "margin_ranking_loss": 3, "triplet_margin_loss": 3,
    "triplet_margin_with_distance_loss": 3, "poisson_nll_loss": 2, "gaussian_nll_loss": 3, "ctc_loss": 4,
    "linear_cross_entropy": 3,
}
# Losses elsewhere whose default reduction is not 'mean'.
OTHER_LOSS_FUNCTIONS: dict[str, str] = {
    "torchvision.ops.sigmoid_focal_loss": "none",
    "torchvision.ops.focal_loss.sigmoid_focal_loss": "none",
    "torchvision.ops.generalized_box_iou_loss": "none",
    "torchvision.ops.complete_box_iou_loss": "none",
    "torchvision.ops.distance_box_iou_loss": "none",
}

_TENSOR_LIBS = ("torch", "tensorflow", "tf", "keras", "numpy", "np", "jax", "jnp", "K", "ops", "F")
_SUM_FUNCS = {"sum", "reduce_sum", "nansum"}
_MEAN_FUNCS = {"mean", "reduce_mean", "nanmean"}
_COUNT_FUNCS = {"count_nonzero", "numel", "nelement"}
# Calls that pass their (non-constant) argument through for our purposes.
_PASS_THROUGH = {
    "float", "to_float", "cast", "type_as", "to", "type", "double", "half", "clone", "contiguous", "data",
    "maximum", "clamp", "clamp_", "clamp_min", "clip", "clamp_min_", "max", "minimum", "squeeze", "stop_gradient",
    "convert_to_tensor", "identity", "cuda", "cpu", "abs",
}
_DETACHING = {"item", "detach", "tolist", "numpy"}
_LOGGING_CALLS = {
    "print", "log", "log_dict", "info", "debug", "warning", "add_scalar", "add_scalars", "set_postfix",
    "set_description", "write", "format", "append", "update", "log_metrics", "record", "summary", "scalar",
}

_LOADER_WORDS = {"loader", "dataloader", "dataset", "ds", "dl", "iterator", "iter", "generator", "epoch", "epochs", "batches", "steps"}
_SPLIT_WORDS = {"train", "val", "valid", "test", "training", "validation", "all", "full"}


def is_nominal_batch_name(text: str) -> bool:
    words = identifier_words(text)
    if not words:
        return False
    last = words[-3:]
    return ("batch" in last and ("size" in last or "sz" in last)) or any(w in ("bs", "batchsize", "bsz") for w in last)


class LossEvaluator:
    """Abstract values of loss expressions in one file.

    ``tensor_params``: parameters of functions are tensors of rank >= 1 (inside a
    loss function or ``forward``, where ``y_pred``/``targets`` are batches)."""

    def __init__(self, ctx: "FileContext", tensor_params: bool = True) -> None:
        self.ctx = ctx
        self.tensor_params = tensor_params
        self.scopes = scopes_of(ctx)
        self._memo: dict[int, Loss] = {}
        self._active: set[int] = set()
        self._project_index: dict[str, list[tuple[str, str, ReturnedLoss]]] | None = None

    def reaching(self, name: str, at: ast.AST) -> list[Binding] | None:
        """The bindings of ``name`` that may reach ``at`` (``Scopes.reaching``)."""
        return self.scopes.reaching(name, at)

    # -- losses --------------------------------------------------------------------
    def loss(self, node: ast.expr | None) -> Loss:
        if node is None:
            return NOTHING
        key = id(node)
        if key in self._memo:
            return self._memo[key]
        if key in self._active or len(self._active) > 60:
            return NOTHING
        self._active.add(key)
        try:
            result = self._loss(node)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    def _loss(self, node: ast.expr) -> Loss:
        if isinstance(node, ast.Constant):
            return Loss(Kind.NUMBER) if isinstance(node.value, (int, float)) and not isinstance(node.value, bool) else NOTHING
        if isinstance(node, ast.UnaryOp):
            return self.loss(node.operand)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Compare):
            sides = [self.loss(node.left), *(self.loss(c) for c in node.comparators)]
            return Loss(Kind.PER_SAMPLE) if any(s.kind is Kind.PER_SAMPLE for s in sides) else NOTHING
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            if node.attr == "data":
                return self.loss(node.value)
            if node.attr == "loss" and self._is_model_output(node.value):
                return Loss(Kind.MEAN, "the model's own loss (outputs.loss, a mean over its tokens or samples)")
            if node.attr in ("T", "mT"):
                return self.loss(node.value)
            return NOTHING
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Constant) and node.slice.value == "loss" and self._is_model_output(node.value):
                return Loss(Kind.MEAN, "the model's own loss (outputs['loss'])")
            base = self.loss(node.value)
            if base.parts and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                index = node.slice.value
                return base.parts[index] if -len(base.parts) <= index < len(base.parts) else NOTHING
            if base.kind in (Kind.PER_SAMPLE, Kind.OVER_BATCH_COUNT):
                return base.but(evidence=base.evidence)
            return NOTHING
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Tuple):
            return Loss(Kind.UNKNOWN, parts=tuple(self.loss(e) for e in node.elts))
        if isinstance(node, ast.IfExp):
            a, b = self.loss(node.body), self.loss(node.orelse)
            return a if a.kind is b.kind else NOTHING
        return NOTHING

    def _is_model_output(self, node: ast.expr) -> bool:
        """``outputs`` in ``outputs = model(**batch)``: a call of something named like a model."""
        if isinstance(node, ast.Name):
            bindings = self.reaching(node.id, node)
            if bindings and len(bindings) == 1 and bindings[0].how == "assign" and not bindings[0].path:
                node = bindings[0].value  # type: ignore[assignment]
        if isinstance(node, ast.Call):
            words = identifier_words(self.ctx.text(node.func))
            return any(w.startswith("model") or w in ("net", "module") for w in words)
        return False

    def _name(self, node: ast.Name) -> Loss:
        bindings = self.reaching(node.id, node)
        if bindings is None:
            return NOTHING
        if self.scopes.accumulated(node.id, node) and not isinstance(self.ctx.parents.get(node), ast.AugAssign):
            return NOTHING
        results = [self._binding(b, node) for b in bindings]
        first = results[0]
        if all(r.kind is first.kind and r.parts == first.parts for r in results):
            return first
        return NOTHING

    def _binding(self, binding: Binding, name: ast.Name) -> Loss:
        if binding.how == "param":
            if binding.value is not None:
                return Loss(Kind.NUMBER) if isinstance(binding.value, ast.Constant) else NOTHING
            if self.tensor_params and "loss" not in name.id.lower() and name.id not in ("self", "cls"):
                return Loss(Kind.PER_SAMPLE, f"the batch tensor {name.id}")
            return NOTHING
        if binding.how == "loop":
            if "loss" in name.id.lower():
                return NOTHING
            return Loss(Kind.PER_SAMPLE, f"the batch tensor {name.id}") if self._iterates_batches(binding.iterable) else NOTHING
        if binding.how == "aug":
            stmt = binding.stmt
            assert isinstance(stmt, ast.AugAssign)
            key = ("aug", id(stmt))  # `x /= n` reached again through a loop: no answer, not a recursion
            if key in self._active:
                return NOTHING
            before = self.reaching(name.id, stmt)
            if not before:
                return NOTHING
            self._active.add(key)
            try:
                old = [self._binding(b, name) for b in before]
            finally:
                self._active.discard(key)
            if not all(o.kind is old[0].kind for o in old):
                return NOTHING
            return self._apply(stmt.op, old[0], stmt.value, stmt)
        if binding.how != "assign" or binding.value is None:
            return NOTHING
        value = self.loss(binding.value)
        for index in binding.path:
            if value.parts and -len(value.parts) <= index < len(value.parts):
                value = value.parts[index]
            elif value.kind is Kind.PER_SAMPLE and not value.parts:
                value = Loss(Kind.PER_SAMPLE, value.evidence)  # loc, conf = predictions
            else:
                return NOTHING
        return value

    def _iterates_batches(self, iterable: ast.expr | None) -> bool:
        """A loop over a loader or a batch (not over range(), a list of losses, ...)."""
        if iterable is None:
            return False
        while isinstance(iterable, ast.Call) and last_part(self.ctx.qualname(iterable.func)) in ("enumerate", "tqdm", "zip", "iter"):
            if not iterable.args:
                return False
            iterable = iterable.args[0]
        if isinstance(iterable, ast.Call) and last_part(self.ctx.qualname(iterable.func)) == "range":
            return False
        words = set(identifier_words(self.ctx.text(iterable)))
        return bool(words & {"loader", "dataloader", "batch", "batches", "dataset", "ds", "dl", "data", "iterator", "generator", "gen"})

    def _binop(self, node: ast.BinOp) -> Loss:
        return self._apply(node.op, self.loss(node.left), node.right, node)

    def _apply(self, op: ast.operator, left: Loss, right_node: ast.expr, at: ast.AST) -> Loss:
        """``left <op> right``."""
        if isinstance(op, ast.Div):
            divisor = self.divisor(right_node)
            result = self.divide(left, divisor)
            if result.kind is Kind.OVER_BATCH_COUNT and left.kind is Kind.PER_SAMPLE:
                code = self.ctx.text(at) if isinstance(at, ast.BinOp) else f"{self.ctx.text(at.target)} / {divisor.text}"  # type: ignore[attr-defined]
                result = result.but(evidence=f"`{code}`{self.count_note(right_node)}")
            return result
        if isinstance(op, ast.Mult):
            factor = self.divisor(right_node)
            if factor.kind is Divisor.ACTUAL_BATCH:
                return self.multiply_by_batch(left)
            if isinstance(at, ast.BinOp) and at.right is right_node:
                left_factor = self.divisor(at.left)
                if left_factor.kind is Divisor.ACTUAL_BATCH:
                    return self.multiply_by_batch(self.loss(right_node))
                reciprocal = self._reciprocal(right_node) or self._reciprocal(at.left)
                if reciprocal is not None:
                    other = left if reciprocal is not at.left else self.loss(right_node)
                    return self.divide(other, self.divisor(reciprocal))
            if _is_size_measure(right_node) or (isinstance(at, ast.BinOp) and _is_size_measure(at.left)):
                # mean * len(chunk) is a sum over the chunk (cached/sub-batch weighting): no longer a mean.
                return NOTHING
            right = self.loss(right_node)
            return _combine_product(left, right)
        if isinstance(op, (ast.Add, ast.Sub)):
            return _combine_sum(left, self.loss(right_node))
        if isinstance(op, ast.Pow):
            return left if left.kind is Kind.PER_SAMPLE else NOTHING
        return NOTHING

    def count_note(self, divisor: ast.expr) -> str:
        """", with n_positive = `tf.reduce_sum(positives)`": where a count came from."""
        for name in (n for n in ast.walk(divisor) if isinstance(n, ast.Name)):
            bindings = self.reaching(name.id, divisor)
            if bindings and len(bindings) == 1 and bindings[0].how == "assign" and bindings[0].value is not None and not bindings[0].path:
                if self.loss(bindings[0].value).kind is Kind.SUM:
                    return f", with {name.id} = `{self.ctx.text(bindings[0].value)}` over the whole batch"
        return ""

    def _reciprocal(self, node: ast.expr) -> ast.expr | None:
        """``(1.0 / GLOBAL_BATCH_SIZE)`` -> GLOBAL_BATCH_SIZE."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Constant) and node.left.value == 1:
            return node.right
        return None

    @staticmethod
    def divide(left: Loss, divisor: DivisorInfo) -> Loss:
        d = divisor.kind
        k = left.kind
        if d is Divisor.CONSTANT:
            return left
        if k is Kind.SUM and d in (Divisor.ACTUAL_BATCH, Divisor.BATCH_COUNT, Divisor.NAMED_COUNT, Divisor.NOMINAL_BATCH):
            return left.but(Kind.MEAN, f"{left.evidence} / {divisor.text} (already a mean)")
        if k is Kind.MEAN and d in (Divisor.ACTUAL_BATCH, Divisor.BATCH_COUNT):
            return left.but(Kind.DOUBLE)
        if k is Kind.MEAN and d is Divisor.NOMINAL_BATCH:
            return left  # a constant learning-rate rescale
        if k is Kind.PER_SAMPLE and d is Divisor.BATCH_COUNT:
            return left.but(Kind.OVER_BATCH_COUNT, f"{left.evidence} divided by {divisor.text}")
        if k is Kind.PER_SAMPLE and d in (Divisor.SAMPLE_COUNT,):
            return left
        return NOTHING.but(detached=left.detached)

    @staticmethod
    def multiply_by_batch(left: Loss) -> Loss:
        if left.kind is Kind.OVER_BATCH_COUNT:
            return left.but(Kind.PER_SAMPLE, f"{left.evidence} times the batch size")
        if left.kind is Kind.DOUBLE:
            return left.but(Kind.MEAN)
        if left.kind is Kind.MEAN:
            return left.but(Kind.SUM)
        return NOTHING

    def _call(self, node: ast.Call) -> Loss:
        func = node.func
        qual = self.ctx.qualname(func) or ""
        name = last_part(qual) if qual else (func.attr if isinstance(func, ast.Attribute) else "")
        receiver = func.value if isinstance(func, ast.Attribute) else None
        receiver_is_module = receiver is not None and (dotted(receiver) or "").split(".")[0] in self.ctx.imports.aliases
        # self.criterion(out, y) with self.criterion = nn.CrossEntropyLoss() in the class
        if isinstance(receiver, ast.Name) and receiver.id == "self":
            constructed = self._constructed(func)
            if constructed is not None:
                return self._instance_call(constructed, node)
            callee = self._project_callable(func)
            return callee if callee is not None else NOTHING
        # Methods on a value: x.mean(), x.sum(dim=1), x.item(), x.float()
        if receiver is not None and not receiver_is_module:
            inner = self.loss(receiver)
            if name in _DETACHING:
                return inner.but(detached=True)
            if name in _MEAN_FUNCS or name in _SUM_FUNCS:
                has_axis = bool(node.args) or any(kw.arg in ("dim", "axis") for kw in node.keywords)
                return self._reduce(inner, "mean" if name in _MEAN_FUNCS else "sum", has_axis, f"`{self.ctx.text(node)}`")
            if name in ("numel", "nelement", "count_nonzero"):
                return Loss(Kind.SUM, f".{name}()") if inner.kind is Kind.PER_SAMPLE else NOTHING
            if name in _PASS_THROUGH or name in ("view", "reshape", "flatten", "pow", "exp", "log", "sqrt", "neg", "masked_select", "gather", "squeeze", "unsqueeze", "expand_as", "mul", "sigmoid"):
                if inner.kind is Kind.PER_SAMPLE or name in _PASS_THROUGH:
                    return inner
                return NOTHING
            callee = self._project_callable(func)
            if callee is not None:
                return callee
            return NOTHING
        # tf.nn.compute_average_loss: sum / global_batch_size (default: the batch dimension)
        if name == "compute_average_loss":
            given = argument(node, "global_batch_size", 2)
            if given is None:
                return Loss(Kind.MEAN, "tf.nn.compute_average_loss (divides by the actual batch)")
            return self.divide(Loss(Kind.SUM, "tf.nn.compute_average_loss's sum"), self.divisor(given))
        if qual in OTHER_LOSS_FUNCTIONS:
            return self._torch_loss(node, f"{name}", OTHER_LOSS_FUNCTIONS[qual], 2, functional=True)
        if qual.startswith("torch.nn.functional.") and name in TORCH_LOSS_FUNCTIONS:
            return self._torch_loss(node, f"F.{name}", "mean", TORCH_LOSS_FUNCTIONS[name], functional=True)
        module = qual.rpartition(".")[0].split(".")[0]
        first = node.args[0] if node.args else None
        if module in _TENSOR_LIBS or qual.startswith(("keras.", "tensorflow.", "torch.", "numpy.", "jax.")):
            if name in _MEAN_FUNCS or name in _SUM_FUNCS:
                has_axis = len(node.args) > 1 or any(kw.arg in ("dim", "axis") for kw in node.keywords)
                reduced = self._reduce(self.loss(first), "mean" if name in _MEAN_FUNCS else "sum", has_axis, f"`{self.ctx.text(node)}`")
                # NumPy has no gradients: a NumPy loss is only ever computed, never trained on.
                return reduced.but(detached=True) if qual.startswith("numpy.") else reduced
            if name in ("count_nonzero", "numel"):
                has_axis = len(node.args) > 1 or any(kw.arg in ("dim", "axis") for kw in node.keywords)
                return Loss(Kind.PER_SAMPLE if has_axis else Kind.SUM, f"{qual}()")
            args = [self.loss(a) for a in node.args]
            non_constant = [a for a, n in zip(args, node.args) if not isinstance(n, ast.Constant)]
            if name in ("cast", "to_float", "convert_to_tensor") and args:
                return args[0]
            if name in _PASS_THROUGH and len(non_constant) == 1:
                return non_constant[0]
            if any(a.kind is Kind.PER_SAMPLE for a in args):
                return Loss(Kind.PER_SAMPLE, next(a.evidence for a in args if a.kind is Kind.PER_SAMPLE))
            return NOTHING
        if qual == "sum" and len(node.args) == 1 and isinstance(node.args[0], (ast.ListComp, ast.GeneratorExp, ast.List, ast.Tuple)):
            # sum([criterion(p, y) for p in outputs]): a sum of batch means is still one
            items = node.args[0].elts if isinstance(node.args[0], (ast.List, ast.Tuple)) else [node.args[0].elt]
            kinds = [self.loss(item) for item in items]
            if kinds and all(k.kind is kinds[0].kind for k in kinds) and kinds[0].kind in (Kind.MEAN, Kind.SUM, Kind.DOUBLE):
                return kinds[0].but(evidence=f"the sum of {kinds[0].evidence}" if kinds[0].evidence else "")
            return NOTHING
        if name in ("max", "min", "float") and qual in ("max", "min", "float"):
            args = [(self.loss(a), a) for a in node.args]
            non_constant = [a for a, n in args if not isinstance(n, ast.Constant)]
            return non_constant[0] if len(non_constant) == 1 else NOTHING
        constructed = self._constructed(func)
        if constructed is not None:
            return self._instance_call(constructed, node)
        callee = self._project_callable(func)
        if callee is None:
            reference = self._function_reference(func)
            callee = self._project_callable(reference) if reference is not None else None
        return callee if callee is not None else NOTHING

    def _function_reference(self, func: ast.expr, depth: int = 0) -> ast.Name | None:
        """The function a name stands for: ``criterion = weighted_bce`` or a parameter
        that every call of its function in this file fills with the same function
        (``train_one_epoch(..., criterion, ...)``)."""
        if not isinstance(func, ast.Name) or depth > 3:
            return None
        bindings = self.reaching(func.id, func)
        if bindings is None:
            return func if depth > 0 else None  # an import or a module-level def
        if len(bindings) == 1 and bindings[0].how == "other" and isinstance(bindings[0].stmt, ast.FunctionDef):
            return func if depth > 0 else None
        if len(bindings) != 1:
            return None
        binding = bindings[0]
        if binding.how == "assign" and not binding.path and isinstance(binding.value, ast.Name):
            return self._function_reference(binding.value, depth + 1)
        if binding.how != "param" or binding.value is not None:
            return None
        function = binding.stmt
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or isinstance(self.ctx.parents.get(function), ast.ClassDef):
            return None
        names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
        if func.id not in names:
            return None
        found: list[ast.Name] = []
        for call in self.ctx.nodes_of(ast.Call):
            if isinstance(call.func, ast.Name) and call.func.id == function.name:
                given = argument(call, func.id, names.index(func.id))
                reference = self._function_reference(given, depth + 1) if isinstance(given, ast.Name) else None
                if reference is None:
                    return None
                found.append(reference)
        if found and all(self.ctx.qualname(r) == self.ctx.qualname(found[0]) for r in found):
            return found[0]
        return None

    def _reduce(self, inner: Loss, how: str, has_axis: bool, text: str) -> Loss:
        if has_axis:
            if inner.kind in (Kind.PER_SAMPLE, Kind.UNKNOWN):
                return Loss(Kind.PER_SAMPLE, inner.evidence or text)
            return inner if inner.kind is Kind.OVER_BATCH_COUNT else NOTHING
        if inner.kind in (Kind.MEAN, Kind.SUM, Kind.DOUBLE):
            return inner  # reducing a scalar changes nothing
        if inner.kind is Kind.PER_SAMPLE:
            return inner.but(Kind.MEAN if how == "mean" else Kind.SUM, text)
        if inner.kind is Kind.OVER_BATCH_COUNT:
            return inner.but(Kind.DOUBLE if how == "mean" else Kind.MEAN)
        return NOTHING

    def _torch_loss(self, call: ast.Call, label: str, default: str, tensors: int, functional: bool) -> Loss:
        if has_star_kwargs(call):
            return NOTHING
        if len(call.args) > tensors:
            return NOTHING  # legacy positional options: not worth guessing
        reduction = default
        explicit = False
        source = ""
        for kw in call.keywords:
            if kw.arg == "reduction":
                value = self.ctx.values.value(kw.value)
                if not isinstance(value, str):
                    return NOTHING
                reduction, explicit = value, True
            elif kw.arg == "size_average" and not explicit:
                value = self.ctx.values.value(kw.value)
                if value is False:
                    reduction = "sum"
                elif value is not True and value is not None:
                    return NOTHING
                if value is True and not isinstance(kw.value, ast.Constant):
                    source = f"size_average={self.ctx.text(kw.value)}, which is True"
            elif kw.arg == "reduce" and not explicit:
                value = self.ctx.values.value(kw.value)
                if value is False:
                    reduction = "none"
                elif value is not True and value is not None:
                    return NOTHING
        if reduction in ("mean", "batchmean", "elementwise_mean"):
            how = source or ("reduction='mean' by default" if not explicit else f"reduction='{reduction}'")
            return Loss(Kind.MEAN, f"mean-reduced {label} ({how})")
        if reduction == "sum":
            return Loss(Kind.SUM, f"{label} with reduction='sum'")
        if reduction == "none":
            return Loss(Kind.PER_SAMPLE, f"{label} with reduction='none'")
        return NOTHING

    def _constructed(self, func: ast.expr, depth: int = 0) -> ast.Call | None:
        """The constructor call a loss object came from: ``criterion`` in
        ``criterion = nn.CrossEntropyLoss()``, ``self.crit`` set once in the class, or
        a parameter that every call of its function in this file fills with one
        (``train(loader, model, loss_fn, opt)`` with ``loss_fn = nn.CrossEntropyLoss()``)."""
        if isinstance(func, ast.Call):
            return func  # nn.MSELoss()(a, b)
        if isinstance(func, ast.Name):
            bindings = self.reaching(func.id, func)
            if bindings is None:
                return None
            if len(bindings) == 1 and bindings[0].how == "param" and bindings[0].value is None and depth == 0:
                return self._argument_everywhere(bindings[0].stmt, func.id)
            # criterion = criterion.cuda(): the same object, moved
            moved = [b for b in bindings if _moves_itself(b, func.id)]
            if moved and len(moved) == len(bindings) and depth < 3:
                return self._constructed(moved[0].value.func.value, depth + 1)  # type: ignore[union-attr]
            bindings = [b for b in bindings if b not in moved] or bindings
            if len(bindings) == 1 and bindings[0].how == "assign" and not bindings[0].path and isinstance(bindings[0].value, ast.Name) and depth < 3:
                return self._constructed(bindings[0].value, depth + 1)  # criterion = loss_fn
            values = {id(b.value): b.value for b in bindings if b.how == "assign" and not b.path}
            if len(values) == 1 and len(bindings) == 1:
                value = next(iter(values.values()))
                return value if isinstance(value, ast.Call) else None
            return None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            cls = self.ctx.enclosing(func, ast.ClassDef)
            if cls is None:
                return None
            assigned = [sub.value for sub in self.scopes.self_assignments(cls, func.attr)]
            if len(assigned) == 1 and isinstance(assigned[0], ast.Call):
                return assigned[0]
        return None

    def _argument_everywhere(self, function: ast.AST, param: str) -> ast.Call | None:
        """The loss constructor every call of ``function`` in this file passes as
        ``param``; None when there is no call, or the calls disagree."""
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or isinstance(self.ctx.parents.get(function), ast.ClassDef):
            return None  # methods are called through objects we do not follow
        names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
        if param not in names:
            return None
        position = names.index(param)
        found: list[ast.Call] = []
        for call in self.ctx.nodes_of(ast.Call):
            if not (isinstance(call.func, ast.Name) and call.func.id == function.name):
                continue
            given = argument(call, param, position)
            constructor = self._constructed(given, depth=1) if isinstance(given, (ast.Name, ast.Call)) else None
            if constructor is None:
                return None
            found.append(constructor)
        if found and all(ast.dump(c) == ast.dump(found[0]) for c in found):
            return found[0]
        return None

    def _instance_call(self, constructor: ast.Call, call: ast.Call) -> Loss:
        qual = self.ctx.qualname(constructor.func) or ""
        name = last_part(qual)
        if qual.startswith("torch.nn.") and name in TORCH_LOSS_CLASSES:
            if len(constructor.args) > TORCH_LOSS_CLASSES[name]:
                return NOTHING
            return self._torch_loss(constructor, name, "mean", 99, functional=False)
        if qual.startswith(("tensorflow.", "keras.", "tf_keras.")) and "losses" in qual.split(".") and name[:1].isupper():
            return self._keras_loss_object(constructor, name)
        facts = self.project_callable(qual)
        if facts is not None:
            return facts
        return NOTHING

    def _keras_loss_object(self, constructor: ast.Call, name: str) -> Loss:
        """``tf.keras.losses.SparseCategoricalCrossentropy(reduction=...)`` called on a
        batch: 'sum_over_batch_size' (the default) is a mean, 'none' per sample."""
        given = next((kw.value for kw in constructor.keywords if kw.arg == "reduction"), None)
        if given is None:
            return Loss(Kind.MEAN, f"mean-reduced keras {name} (reduction='sum_over_batch_size' by default)") if not constructor.args else NOTHING
        value = self.ctx.values.value(given)
        word = value.lower() if isinstance(value, str) else given.attr.lower() if isinstance(given, ast.Attribute) else ""
        if word in ("none",):
            return Loss(Kind.PER_SAMPLE, f"keras {name} with reduction=NONE")
        if word == "sum":
            return Loss(Kind.SUM, f"keras {name} with reduction=SUM")
        if word in ("sum_over_batch_size", "auto", "mean"):
            return Loss(Kind.MEAN, f"mean-reduced keras {name}")
        return NOTHING

    def _project_callable(self, func: ast.expr) -> Loss | None:
        """A project loss function (here or imported), or a method of this class."""
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            cls = self.ctx.enclosing(func, ast.ClassDef)
            if cls is not None:
                for stmt in cls.body:
                    if isinstance(stmt, ast.FunctionDef) and stmt.name == func.attr:
                        return self._defined_here(self.returns(stmt), stmt, f"{cls.name}.{stmt.name}")
            return None
        qual = self.ctx.qualname(func)
        if not qual:
            return None
        if isinstance(func, ast.Name):
            local = [s for s in self.ctx.tree.body if isinstance(s, ast.FunctionDef) and s.name == func.id]
            if len(local) == 1:
                return self._defined_here(self.returns(local[0]), local[0], func.id)
        return self.project_callable(qual)

    def _defined_here(self, loss: Loss, function: ast.FunctionDef, name: str) -> Loss:
        """``loss``, computed by ``function`` of this file (``Loss.defined``)."""
        if loss.kind is Kind.UNKNOWN and not loss.parts:
            return loss
        return loss.but(defined=(file_key(self.ctx.file or self.ctx.path), function.lineno, name))

    def project_callable(self, qual: str) -> Loss | None:
        """A loss callable of the project by qualified name, among the files within
        this one's reach (indexed once per file)."""
        if self._project_index is None:
            self._project_index = {}
            project = self.ctx.project
            for key, fact in project.each(LossFacts, scope=self.ctx.file or None):
                for name, value in fact.callables.items():
                    self._project_index.setdefault(name, []).append((key, project.modules[key].module, value))
        module_part, _, name = qual.rpartition(".")
        candidates = self._project_index.get(name, [])
        for wanted in (module_part, self.ctx.module):
            for key, module, value in candidates:
                if module == wanted:
                    return _described(name, key, module, value)
        if len(candidates) == 1:
            return _described(name, *candidates[0])
        return None

    def returns(self, function: ast.FunctionDef) -> Loss:
        """What a function returns, when every return agrees."""
        results = [self.loss(r.value) for r in _own_returns(function)]
        if not results:
            return NOTHING
        first = results[0]
        if all(r.kind is first.kind and [p.kind for p in r.parts] == [p.kind for p in first.parts] for r in results):
            return first
        return NOTHING

    # -- divisors -----------------------------------------------------------------
    def divisor(self, node: ast.expr, depth: int = 0) -> DivisorInfo:
        text = self.ctx.text(node)
        if depth > 12:
            return DivisorInfo(Divisor.UNKNOWN, text)
        if isinstance(node, ast.Constant):
            return DivisorInfo(Divisor.CONSTANT if isinstance(node.value, (int, float)) else Divisor.UNKNOWN, text)
        batch_tensor = self._batch_size_of(node)
        if batch_tensor is not None:
            return DivisorInfo(Divisor.ACTUAL_BATCH, text, batch_tensor)
        if isinstance(node, ast.Call):
            qual = self.ctx.qualname(node.func) or ""
            name = last_part(qual) or (node.func.attr if isinstance(node.func, ast.Attribute) else "")
            args = [a for a in node.args if not isinstance(a, ast.Constant)]
            is_method = isinstance(node.func, ast.Attribute) and (dotted(node.func.value) or "").split(".")[0] not in self.ctx.imports.aliases
            if name in _PASS_THROUGH or name in ("int", "float", "max", "clamp", "maximum"):
                if is_method:
                    inner = node.func.value  # type: ignore[union-attr]
                elif name in ("cast", "to_float", "convert_to_tensor", "int", "float") and node.args:
                    inner = node.args[0]
                else:
                    inner = args[0] if len(args) == 1 else None
                if inner is not None:
                    found = self.divisor(inner, depth + 1)
                    return DivisorInfo(found.kind, text, found.node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add)):
            left, right = self.divisor(node.left, depth + 1), self.divisor(node.right, depth + 1)
            kinds = {left.kind, right.kind}
            if Divisor.NOMINAL_BATCH in kinds and kinds <= {Divisor.NOMINAL_BATCH, Divisor.CONSTANT, Divisor.UNKNOWN} and isinstance(node.op, ast.Mult):
                return DivisorInfo(Divisor.NOMINAL_BATCH, text)
            if Divisor.ACTUAL_BATCH in kinds and kinds <= {Divisor.ACTUAL_BATCH, Divisor.CONSTANT}:
                return DivisorInfo(Divisor.ACTUAL_BATCH, text, left.node or right.node)
        if isinstance(node, ast.Name):
            bindings = self.reaching(node.id, node)
            if bindings:
                found = {self._binding_divisor(b, node, depth) for b in bindings}
                kinds = {f.kind for f in found}
                if len(kinds) == 1:
                    kind = kinds.pop()
                    return DivisorInfo(kind, text, next(iter(found)).node)
                return DivisorInfo(Divisor.UNKNOWN, text)
        if isinstance(node, (ast.Name, ast.Attribute)) and is_nominal_batch_name(text):
            return DivisorInfo(Divisor.NOMINAL_BATCH, text)
        value = self.loss(node)
        if value.kind is Kind.SUM:
            return DivisorInfo(Divisor.BATCH_COUNT, text)
        if value.kind is Kind.PER_SAMPLE and not isinstance(node, (ast.Name, ast.Attribute)):
            return DivisorInfo(Divisor.SAMPLE_COUNT, text)
        if isinstance(node, ast.Attribute) and node.attr in ("num_replicas_in_sync", "world_size"):
            return DivisorInfo(Divisor.CONSTANT, text)
        if _is_size_measure(node) and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("sum", "count_nonzero", "numel"):
            return DivisorInfo(Divisor.NAMED_COUNT, text)  # mask.sum() of a mask we cannot see: some count
        words = set(identifier_words(text))
        if words & {"pos", "positive", "positives", "tokens", "items", "valid", "fg", "count", "npos"} and words & {"num", "n", "count", "total", "npos"}:
            return DivisorInfo(Divisor.NAMED_COUNT, text)
        return DivisorInfo(Divisor.UNKNOWN, text)

    def _binding_divisor(self, binding: Binding, name: ast.Name, depth: int) -> DivisorInfo:
        text = name.id
        if binding.how == "assign" and binding.path and binding.value is not None:
            # n, c, h, w = logit.size(): the first element of a batch tensor's shape
            tensor = self._shape_of(binding.value) if binding.path == (0,) else None
            if tensor is not None and self.is_batch_tensor(tensor):
                return DivisorInfo(Divisor.ACTUAL_BATCH, text, tensor)
            return DivisorInfo(Divisor.UNKNOWN, text)
        if binding.how == "param":
            if binding.value is not None and isinstance(binding.value, ast.Constant) and not is_nominal_batch_name(text):
                return DivisorInfo(Divisor.CONSTANT, text)
            return DivisorInfo(Divisor.UNKNOWN, text)
        if binding.how == "assign" and binding.value is not None and not binding.path:
            found = self.divisor(binding.value, depth + 1)
            if found.kind is Divisor.UNKNOWN and is_nominal_batch_name(text) and self.ctx.values.int_value(binding.value) is not None:
                return DivisorInfo(Divisor.NOMINAL_BATCH, text)
            if found.kind is Divisor.CONSTANT and is_nominal_batch_name(text):
                return DivisorInfo(Divisor.NOMINAL_BATCH, text)
            if found.kind is Divisor.UNKNOWN and is_nominal_batch_name(text) and (
                isinstance(binding.value, ast.Attribute) or _is_constant_product(binding.value)
            ):
                # GLOBAL_BATCH_SIZE = BATCH_SIZE_PER_REPLICA * strategy.num_replicas_in_sync
                return DivisorInfo(Divisor.NOMINAL_BATCH, text)
            return DivisorInfo(found.kind, text, found.node)
        return DivisorInfo(Divisor.UNKNOWN, text)

    def _shape_of(self, node: ast.expr) -> ast.expr | None:
        """The tensor whose whole shape ``node`` is: ``x.size()``, ``x.shape``,
        ``tf.shape(x)``, ``K.int_shape(x)``, ``x.get_shape()``."""
        if isinstance(node, ast.Attribute) and node.attr == "shape":
            return node.value
        if isinstance(node, ast.Call) and not node.keywords:
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("size", "get_shape") and not node.args:
                qual = self.ctx.qualname(node.func) or ""
                if not qual.startswith(("torch.", "tensorflow.", "numpy.")):
                    return node.func.value
            if last_part(self.ctx.qualname(node.func)) in ("shape", "int_shape") and len(node.args) == 1:
                return node.args[0]
        return None

    def _batch_size_of(self, node: ast.expr) -> ast.expr | None:
        """The batch tensor whose first dimension ``node`` measures: ``x.size(0)``,
        ``x.size()[0]``, ``x.shape[0]``, ``len(x)``, ``tf.shape(x)[0]``."""
        tensor: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size":
            if len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0:
                tensor = node.func.value
        elif isinstance(node, ast.Call) and self.ctx.qualname(node.func) == "len" and len(node.args) == 1:
            tensor = node.args[0]
            if not self.is_batch_tensor(tensor, strict=True):
                return None
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == 0:
            base = node.value
            if isinstance(base, ast.Attribute) and base.attr == "shape":
                tensor = base.value
            elif isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute) and base.func.attr == "size" and not base.args:
                tensor = base.func.value
            elif isinstance(base, ast.Call) and last_part(self.ctx.qualname(base.func)) in ("shape", "int_shape") and base.args:
                tensor = base.args[0]
        if tensor is None:
            return None
        return tensor if self.is_batch_tensor(tensor) else None

    def is_batch_tensor(self, node: ast.expr, strict: bool = False) -> bool:
        """Is this one batch (inputs, targets, outputs) rather than a dataset, a loader
        or a list of losses? ``strict`` (for ``len()``): the evidence must be positive."""
        if isinstance(node, ast.Call) and (self.ctx.qualname(node.func) == "next" or last_part(self.ctx.qualname(node.func)) == "Variable"):
            return True  # images, targets = next(batch_iterator); Variable(images.cuda())
        text = self.ctx.text(node)
        words = set(identifier_words(text))
        if words & _LOADER_WORDS or "loss" in text.lower() or "losses" in words:
            return False
        if isinstance(node, ast.Subscript):
            return self.is_batch_tensor(node.value, strict)
        if isinstance(node, ast.Attribute) and node.attr in ("data",):
            return self.is_batch_tensor(node.value, strict)
        if isinstance(node, ast.Compare) and not strict:
            return any(self.is_batch_tensor(side, strict) for side in (node.left, *node.comparators) if isinstance(side, ast.Name))
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("to", "cuda", "float", "long", "view", "reshape", "squeeze", "detach"):
                return self.is_batch_tensor(node.func.value, strict)
            return not strict and self._is_model_call(node)
        if isinstance(node, ast.Name):
            bindings = self.reaching(node.id, node)
            if not bindings:
                return False
            for binding in bindings:
                if binding.how == "loop":
                    if not self._iterates_batches(binding.iterable):
                        return False
                elif binding.how == "param":
                    if binding.value is not None or words & _SPLIT_WORDS or node.id in ("self", "cls"):
                        return False
                elif binding.how == "assign" and binding.value is not None:
                    value = binding.value
                    if isinstance(value, (ast.Tuple, ast.List)) and binding.path and binding.path[0] < len(value.elts):
                        value = value.elts[binding.path[0]]
                    if not (isinstance(value, ast.Name) and value.id != node.id and self.is_batch_tensor(value, strict)) and not (
                        isinstance(value, (ast.Subscript, ast.Call)) and self.is_batch_tensor(value, strict)
                    ):
                        return False
                else:
                    return False
            return True
        return False

    def _is_model_call(self, call: ast.Call) -> bool:
        return any(isinstance(a, (ast.Name, ast.Subscript)) and self.is_batch_tensor(a, strict=True) for a in call.args)


def _is_size_measure(node: ast.expr) -> bool:
    """``len(x)``, ``x.size(0)``, ``x.shape[0]``, ``x.numel()``: a number of samples or elements."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "len":
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("size", "numel", "nelement", "count_nonzero"):
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr == "sum" and not node.args and not node.keywords:
            return True  # mean * mask.sum(): a sum again
    if isinstance(node, ast.Subscript):
        base = node.value
        return (isinstance(base, ast.Attribute) and base.attr == "shape") or (
            isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute) and base.func.attr == "size"
        )
    return False


def _moves_itself(binding: Binding, name: str) -> bool:
    """``criterion = criterion.cuda()`` / ``.to(device)``: the object stays what it was."""
    value = binding.value
    return (
        binding.how == "assign"
        and not binding.path
        and isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in ("cuda", "to", "cpu", "float", "double", "half", "train")
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id == name
    )


def _is_constant_product(node: ast.expr) -> bool:
    """Names, attributes and numbers multiplied together (no call, no subscript):
    a configured constant such as ``BATCH_SIZE_PER_REPLICA * strategy.num_replicas_in_sync``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _is_constant_product(node.left) and _is_constant_product(node.right)
    return isinstance(node, (ast.Name, ast.Attribute, ast.Constant))


def _combine_sum(a: Loss, b: Loss) -> Loss:
    if a.kind is Kind.NUMBER:
        return b
    if b.kind is Kind.NUMBER:
        return a
    if a.kind is b.kind and a.kind is not Kind.UNKNOWN:
        evidence = a.evidence if a.evidence == b.evidence or not b.evidence else f"{a.evidence} + {b.evidence}"
        return Loss(a.kind, evidence, a.detached and b.detached, (), a.defined or b.defined)
    # A per-sample tensor plus something we cannot see is still per-sample (Keras).
    for x, y in ((a, b), (b, a)):
        if x.kind in (Kind.PER_SAMPLE, Kind.OVER_BATCH_COUNT) and y.kind is Kind.UNKNOWN and not y.parts:
            return x
    return NOTHING


def _combine_product(a: Loss, b: Loss) -> Loss:
    """A loss times a weight (``alpha * loc_loss``, ``loss * mask``) keeps its kind."""
    for x, y in ((a, b), (b, a)):
        if x.kind is not Kind.UNKNOWN and x.kind is not Kind.NUMBER and y.kind in (Kind.NUMBER, Kind.UNKNOWN) and not y.parts:
            return x
    if a.kind is Kind.PER_SAMPLE and b.kind is Kind.PER_SAMPLE:
        return a
    if Kind.PER_SAMPLE in (a.kind, b.kind) and Kind.OVER_BATCH_COUNT in (a.kind, b.kind):
        return a if a.kind is Kind.OVER_BATCH_COUNT else b
    if a.kind is Kind.NUMBER and b.kind is Kind.NUMBER:
        return a
    return NOTHING


def _own_returns(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Return]:
    """The function's ``return value`` statements (not its nested functions'), in
    walk_scope's order; expressions are not entered (a return is a statement)."""
    found: list[ast.Return] = []
    stack: list[ast.AST] = list(reversed(function.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            if node.value is not None:
                found.append(node)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        children = [
            child
            for field in ("body", "handlers", "orelse", "finalbody", "cases")
            for child in getattr(node, field, ())
            if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))
        ]
        stack.extend(reversed(children))
    return found


# -- project-wide facts: loss callables defined in each module --------------------


@family_fact  # (held inside LossFacts: registered so the cache may rebuild it)
@dataclass(frozen=True)
class ReturnedLoss:
    """What a loss callable returns: how it scales (a ``Kind``'s value), why, the
    parts of a tuple it returns, and the line of its ``def``."""

    kind: str
    evidence: str = ""
    parts: tuple[ReturnedLoss, ...] = ()
    line: int = 0

    @classmethod
    def of(cls, loss: Loss, line: int = 0) -> "ReturnedLoss":
        return cls(loss.kind.value, loss.evidence, tuple(cls.of(p) for p in loss.parts), line)

    def loss(self) -> Loss:
        return Loss(Kind(self.kind), self.evidence, False, tuple(p.loss() for p in self.parts))


@family_fact
@dataclass
class LossFacts:
    """Per module: what its loss callables return (``FocalLoss`` for its
    forward/call, ``SSDLoss.compute_loss``, ``focal``), and what it gives to a
    Keras ``compile(loss=...)`` (see ``keras_compiled_losses``)."""

    callables: dict[str, ReturnedLoss] = field(default_factory=dict)
    compiled: list[str] = field(default_factory=list)


_LOSS_METHODS = ("forward", "call", "__call__")


def _interesting(loss: Loss) -> bool:
    return loss.kind in (Kind.MEAN, Kind.SUM, Kind.PER_SAMPLE, Kind.OVER_BATCH_COUNT, Kind.DOUBLE) or any(_interesting(p) for p in loss.parts)


@collector
def loss_facts(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Per module: what each loss class (its forward/call) and loss function
    returns, and which callables are given to a Keras ``compile(loss=...)``."""
    if not any(word in source for word in ("loss", "Loss", "mean(", "sum(", "cross_entropy")):
        return
    from losslint.config import Settings
    from losslint.context import FileContext

    # Loss functions, and the loss-computing methods of loss classes (FocalLoss.forward,
    # SSDLoss.compute_loss). A loss is what is trained on, whatever it is called
    # (PositiveNormalizedBCE): any function or forward/call that reduces a loss or a
    # tensor counts too, but only for what makes it a loss, a scalar (``named`` False).
    candidates: list[tuple[str, ast.FunctionDef, bool]] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            candidates.append((stmt.name, stmt, "loss" in stmt.name.lower()))
        elif isinstance(stmt, ast.ClassDef):
            loss_class = "loss" in stmt.name.lower() or any("Loss" in (dotted(b) or "") for b in stmt.bases)
            for method in stmt.body:
                if not isinstance(method, ast.FunctionDef):
                    continue
                if method.name in _LOSS_METHODS:
                    candidates.append((stmt.name, method, loss_class))
                elif "loss" in method.name.lower():
                    candidates.append((f"{stmt.name}.{method.name}", method, True))
    ctx = FileContext(facts.module, facts.module, source, tree, ProjectFacts(), Settings())
    if any(not named for _, _, named in candidates):
        reducing = _reducing_call_lines(ctx) if _REDUCING_TEXT.search(source) else []
        candidates = [(key, function, named) for key, function, named in candidates if named or _reduces(function, reducing)]
    has_compile = "compile" in source
    if not candidates and not has_compile:
        return
    evaluator = LossEvaluator(ctx, tensor_params=True)
    callables: dict[str, ReturnedLoss] = {}
    for key, function, named in candidates:
        loss = evaluator.returns(function)
        if _interesting(loss) if named else loss.kind in (Kind.MEAN, Kind.SUM, Kind.DOUBLE):
            callables.setdefault(key, ReturnedLoss.of(loss, function.lineno))
    compiled = sorted(keras_compiled_losses(ctx)) if has_compile else []
    if callables or compiled:
        facts.put(LossFacts(callables, compiled))


_REDUCING_CALLS = _MEAN_FUNCS | _SUM_FUNCS | set(TORCH_LOSS_FUNCTIONS) | set(TORCH_LOSS_CLASSES) | {"compute_average_loss"}


_REDUCING_TEXT = re.compile(r"\b(?:" + "|".join(sorted(_REDUCING_CALLS)) + r")\s*\(")


def _reducing_call_lines(ctx: "FileContext") -> list[int]:
    """The lines, sorted, on which a call of a reduction or a torch loss starts."""
    lines = set()
    for call in ctx.nodes:  # (one pass; the collector's context has no type index to share)
        if call.__class__ is not ast.Call:
            continue
        func = call.func  # type: ignore[attr-defined]
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in _REDUCING_CALLS:
            lines.add(call.lineno)
    return sorted(lines)


def _reduces(function: ast.FunctionDef, reducing: list[int]) -> bool:
    """The function (its decorators included) calls a reduction or a torch loss: a
    cheap test before evaluating it (a call that starts within its lines is its)."""
    first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
    index = bisect_left(reducing, first)
    return index < len(reducing) and reducing[index] <= (function.end_lineno or function.lineno)


def keras_compiled_losses(ctx: "FileContext") -> set[str]:
    """What this file gives to ``model.compile(loss=...)``, by qualified name: the
    method of an object built from a class (``keras_ssd_loss.SSDLoss.compute_loss``
    for ``ssd_loss.compute_loss`` with ``ssd_loss = SSDLoss(...)`` and SSDLoss
    imported from keras_ssd_loss; ``SSDLoss.compute_loss`` for a class of this
    file), a function (``losses.focal``, ``focal``); ``?compute_loss`` where the
    object cannot be traced to its class."""
    names: set[str] = set()
    if "compile" not in ctx.source:
        return names
    for call in ctx.nodes_of(ast.Call):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "compile"):
            continue
        loss = argument(call, "loss", 1)
        if loss is None:
            continue
        items = loss.values if isinstance(loss, ast.Dict) else loss.elts if isinstance(loss, (ast.List, ast.Tuple)) else [loss]
        for item in items:
            if isinstance(item, ast.Name):
                names.add(ctx.qualname(item) or item.id)
            elif isinstance(item, ast.Attribute):
                receiver = item.value
                built = ctx.values.resolve_name(receiver) if isinstance(receiver, ast.Name) else receiver
                cls = ctx.qualname(built.func) if isinstance(built, ast.Call) else None
                if cls is None and isinstance(receiver, ast.Name) and ctx.imports.aliases.get(receiver.id):
                    names.add(ctx.qualname(item) or item.attr)  # losses.focal: a function of an imported module
                else:
                    names.add(f"{cls}.{item.attr}" if cls else f"?{item.attr}")
    return names


def _described(name: str, key: str, module: str, returned: ReturnedLoss) -> Loss:
    """A project callable's loss, its evidence naming it and its module, and where
    it is defined (``Loss.defined``)."""
    loss = returned.loss()
    where = module.replace(".", "/") + ".py"
    defined = (key, returned.line, name) if returned.line else None
    if loss.parts:
        parts = tuple(
            p.but(evidence=f"{name}'s output {i} ({where}: {p.evidence})" if p.evidence else f"{name}'s output {i} ({where})")
            for i, p in enumerate(loss.parts)
        )
        return Loss(loss.kind, f"{name} ({where})", False, parts, defined)
    what = f"{name} ({where} returns {loss.evidence})" if loss.evidence else f"{name} ({where})"
    return loss.but(evidence=what, defined=defined)


def compiled_loss_entries(project: ProjectFacts) -> list[tuple[str, list[str]]]:
    """(file key, what it gives to ``compile(loss=...)``) for every file that compiles a model."""
    return [(key, fact.compiled) for key, fact in project.each(LossFacts) if fact.compiled]


def compiled_loss_users(ctx: "FileContext", local_name: str, entries: list[tuple[str, list[str]]]) -> list[str]:
    """The files that give the callable ``local_name`` of this file (``SSDLoss.compute_loss``,
    ``my_loss``) to ``compile(loss=...)`` (``entries``: ``compiled_loss_entries``),
    this file included, as project keys. A
    qualified name must resolve to this file through the user's imports (so one
    file's ``compute_loss`` is never taken for another class's); an untraced
    ``?compute_loss`` counts only in files within this one's reach."""
    from losslint.project import file_key

    project = ctx.project
    if not ctx.file or file_key(ctx.file) not in project.modules:
        return [ctx.path] if local_name in _local_qualnames(keras_compiled_losses(ctx)) else []
    me = file_key(ctx.file)
    method = local_name.rpartition(".")[2]
    related = project.related(ctx.file) or frozenset()
    users = []
    for user, compiled in entries:
        for entry in compiled:
            if entry.startswith("?"):
                found = entry[1:] == method and "." in local_name and user in related
            elif entry == local_name:
                found = user == me or me in project.imports_of(user)  # here, or by `from losses import *`
            else:
                found = entry.endswith("." + local_name) and _module_file(project, entry[: -len(local_name) - 1], user) == me
            if found:
                users.append(user)
                break
    return sorted(users)


def _local_qualnames(entries: set[str]) -> set[str]:
    return {e for e in entries if not e.startswith("?")}


def _module_file(project: ProjectFacts, module: str, importer: str) -> str | None:
    """The file ``import module`` reaches from ``importer``; a module of a folder
    without ``__init__.py`` (``keras_loss_function.keras_ssd_loss``, known to the
    project as ``keras_ssd_loss``) by its last part, when only one file has it."""
    found = project.resolve(module, importer)
    if found is not None:
        return found
    last = module.rpartition(".")[2]
    candidates = [key for key, facts in project.modules.items() if facts.module == last]
    return candidates[0] if len(candidates) == 1 else None


# -- where the loss is computed: the training loop and its data -----------------


def is_logged_only(ctx: "FileContext", node: ast.AST) -> bool:
    """The value is built inside a logging call or an f-string: never trained on."""
    current = ctx.parents.get(node)
    while current is not None and not isinstance(current, ast.stmt):
        if isinstance(current, ast.JoinedStr):
            return True
        if isinstance(current, ast.Call):
            name = current.func.attr if isinstance(current.func, ast.Attribute) else getattr(current.func, "id", "")
            if name in _LOGGING_CALLS:
                return True
        current = ctx.parents.get(current)
    return False


_GRADIENT_CALLS = {"backward", "manual_backward", "gradient", "minimize", "scale"}


def reaches_backward(ctx: "FileContext", node: ast.AST, depth: int = 0) -> bool:
    """Is the value of ``node`` (an expression, or the target of an augmented
    assignment) trained on: handed to ``backward()`` (``loss.backward()``,
    ``accelerator.backward(loss)``, ``scaler.scale(loss).backward()``,
    ``tape.gradient(loss, ...)``), directly or through the names it is assigned to,
    or returned to the caller? A division in a print is not loss scaling."""
    current: ast.AST = node
    parent = ctx.parents.get(current)
    while isinstance(parent, ast.expr):
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) and parent.func.attr in _GRADIENT_CALLS:
            return True
        current, parent = parent, ctx.parents.get(parent)
    if isinstance(parent, ast.Return):
        return True
    if isinstance(node, ast.AugAssign):
        target = node.target
    elif isinstance(parent, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and getattr(parent, "value", None) is current:
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        target = targets[0] if len(targets) == 1 else None
        if isinstance(parent, ast.AugAssign):
            return False  # total += loss / k: a running total
    else:
        return False
    if not isinstance(target, ast.Name) or depth > 3:
        return False
    statement = parent if not isinstance(node, ast.AugAssign) else node
    where = position(statement)
    later = [n for n in scopes_of(ctx).loads(ctx.enclosing_scope(statement), target.id) if position(n) > where]
    return any(reaches_backward(ctx, use, depth + 1) for use in later)


def off_by_default(ctx: "FileContext", node: ast.AST) -> bool:
    """Behind a flag that is off unless asked for: ``if self.batch_average:`` with
    ``batch_average=False`` the constructor default (or the else branch of one that is on)."""
    from losslint.project import UNKNOWN as _UNKNOWN

    child: ast.AST = node
    current = ctx.parents.get(node)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
        if isinstance(current, (ast.If, ast.IfExp)):
            in_body = child is current.body or (isinstance(current.body, list) and child in current.body)
            if in_body and _never_set_flag(ctx, current.test):
                return True  # raises AttributeError before it could divide
            value = ctx.values.value(current.test)
            if value is not _UNKNOWN and isinstance(value, (bool, int, type(None))):
                if bool(value) != in_body and child is not current.test:
                    return True
        child, current = current, ctx.parents.get(current)
    return False


_PLAIN_BASES = {"", "object", "Module", "nn.Module", "torch.nn.Module"}


def _never_set_flag(ctx: "FileContext", test: ast.expr) -> bool:
    """``if self.batch_average:`` in a class (on ``object`` or ``nn.Module`` alone)
    that never sets ``batch_average``: the test raises, its branch never runs (a
    constructor that takes the flag and forgets to store it)."""
    if not (isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "self"):
        return False
    cls = ctx.enclosing(test, ast.ClassDef)
    if cls is None or cls.decorator_list or any((dotted(b) or "?") not in _PLAIN_BASES for b in cls.bases) or cls.keywords:
        return False
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and node.attr == test.attr and isinstance(node.ctx, (ast.Store, ast.Del)):
            return False
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node in cls.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == test.attr for t in targets):
                return False  # a class attribute
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "vars") or (
            isinstance(node, ast.Attribute) and node.attr in ("__dict__", "__setattr__")
        ):
            return False  # set by name: cannot tell
    return True


def in_evaluation(ctx: "FileContext", node: ast.AST) -> bool:
    """Computed in an evaluation loop or function (``for x in val_loader``,
    ``def validate``): it changes no weights."""
    from losslint.analysis.roles import Role, words_role

    for loop in enclosing_loops(ctx, node):
        if words_role(ctx.text(loop_iterable(ctx, loop))) is Role.EVAL:
            return True
    function = ctx.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef)
    while function is not None:
        if words_role(function.name) is Role.EVAL:
            return True
        function = ctx.enclosing(function, ast.FunctionDef, ast.AsyncFunctionDef)
    return False


def enclosing_loops(ctx: "FileContext", node: ast.AST) -> list[ast.For]:
    loops = []
    current = ctx.parents.get(node)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        if isinstance(current, ast.For):
            loops.append(current)
        current = ctx.parents.get(current)
    return loops


def loop_iterable(ctx: "FileContext", loop: ast.For) -> ast.expr:
    """``enumerate(tqdm(loader), 1)`` -> ``loader``."""
    iterable = loop.iter
    while isinstance(iterable, ast.Call) and last_part(ctx.qualname(iterable.func)) in ("enumerate", "tqdm", "iter") and iterable.args:
        iterable = iterable.args[0]
    return iterable


def batch_tensor_names(ctx: "FileContext", loop: ast.For) -> list[str]:
    """Names the loop binds to parts of a batch, in order (``for i, (x, y) in
    enumerate(loader)`` -> ["x", "y"])."""
    target = loop.target
    if isinstance(loop.iter, ast.Call) and last_part(ctx.qualname(loop.iter.func)) == "enumerate":
        if isinstance(target, ast.Tuple) and len(target.elts) == 2:
            target = target.elts[1]
        else:
            return []
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


