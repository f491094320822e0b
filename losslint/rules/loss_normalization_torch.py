"""LL101, LL103, LL104: PyTorch-style losses whose magnitude depends on the size
of the batch they were computed on.

- LL101: a loss that is already a batch mean (a mean-reduced ``torch.nn`` loss,
  ``.mean()``, a sum divided by ``num_pos``) divided again by the actual batch
  size: it scales as 1/b, so the small last batch of every epoch spikes.
- LL103: a summed loss divided by a constant nominal batch size: the last,
  smaller batch is under-weighted (its loss is b/B of what it should be).
- LL104: ``loss / accum_steps`` with the optimizer stepping every ``accum_steps``
  micro-batches while the epoch does not split into whole windows: the last
  window is partial (stepped at k/accum scale, or left in ``.grad`` to swell the
  next epoch's first step).

How a value scales is worked out by ``analysis/scaling.py``'s ``LossEvaluator``; the numbers
(N, B, the last batch) come from the partial-batch family's DataLoader analysis,
so LL103/LL104 stay quiet where LL201 would (``drop_last=True``, N % B == 0).
"""

from __future__ import annotations

import ast
from typing import Iterable

from losslint.analysis.calls import call_sites
from losslint.analysis.names import argument, dotted, keyword, last_part
from losslint.context import FileContext
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, NodeEdit, RelatedLocation, Severity, cst
from losslint.project import file_key
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.loss_chain import on_training_paths
from losslint.analysis.batching import Batching, BatchingCounts, project_always_drops, tf_partial_batches
from losslint.analysis.scaling import (
    Divisor,
    DivisorInfo,
    Kind,
    Loss,
    LossEvaluator,
    batch_tensor_names,
    enclosing_loops,
    in_evaluation,
    is_logged_only,
    off_by_default,
    reaches_backward,
)
from losslint.rules.loss_common import training_batching

_TRIGGERS = ("loss", "Loss")


def _reciprocal_divisor(node: ast.expr) -> ast.expr | None:
    """``(1.0 / b)`` -> b."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Constant) and node.left.value == 1:
        return node.right
    return None


# a / b spelled as a call: torch.div(a, b), tf.math.divide(a, b), ... (rounding_mode= is not this)
_DIVIDE_FUNCTIONS = {
    "torch.div", "torch.divide", "torch.true_divide",
    "tensorflow.divide", "tensorflow.math.divide", "tensorflow.truediv", "tensorflow.math.truediv",
    "tensorflow.realdiv", "tensorflow.math.realdiv",
}
# a.div(b), a.div_(b), a.true_divide(b), a.divide(b); a.mul(1. / b)
_DIVIDE_METHODS = {"div", "div_", "divide", "divide_", "true_divide", "true_divide_"}
_MULTIPLY_METHODS = {"mul", "mul_", "multiply", "multiply_"}


def _call_division(ctx: FileContext, call: ast.Call) -> tuple[ast.expr, ast.expr] | None:
    """(numerator, divisor) of a division spelled as a call, else None."""
    if call.keywords:
        return None
    func = call.func
    if len(call.args) == 2 and ctx.qualname(func) in _DIVIDE_FUNCTIONS:
        return call.args[0], call.args[1]
    if isinstance(func, ast.Attribute) and len(call.args) == 1 and (dotted(func.value) or "").split(".")[0] not in ctx.imports.aliases:
        if func.attr in _DIVIDE_METHODS:
            return func.value, call.args[0]
        divisor = _reciprocal_divisor(call.args[0]) if func.attr in _MULTIPLY_METHODS else None
        if divisor is not None:
            return func.value, divisor
    return None


def _divisions(ctx: FileContext) -> Iterable[tuple[ast.AST, ast.expr]]:
    """Every ``a / b``, ``a /= b`` and ``a * (1. / b)``, and their spellings as calls
    (``torch.div(a, b)``, ``a.div(b)``, ``tf.math.divide(a, b)``, ``a.mul(1. / b)``),
    with the divisor b."""
    if "div" in ctx.source or "mul" in ctx.source:
        for call in ctx.nodes_of(ast.Call):
            found = _call_division(ctx, call)
            if found is not None:
                yield call, found[1]
    for node in ctx.nodes_of(ast.BinOp, ast.AugAssign):
        if isinstance(node.op, ast.Div):
            if isinstance(node, ast.BinOp) and _reciprocal_divisor(node) is not None and _multiplied(ctx, node):
                continue  # the product it sits in is the division
            yield node, (node.right if isinstance(node, ast.BinOp) else node.value)
        elif isinstance(node.op, ast.Mult):
            if isinstance(node, ast.AugAssign):
                factor = node.value
            else:
                factor = node.right if _reciprocal_divisor(node.right) is not None else node.left
            divisor = _reciprocal_divisor(factor)
            if divisor is not None:
                yield node, divisor


def _divisions_by(ctx: FileContext, divisor: ast.expr, loop: ast.For) -> list[tuple[ast.AST, ast.expr]]:
    """The divisions in ``loop``'s body by the same expression as ``divisor``, in
    ``_divisions``' order (the divisors' dumps worked out once per file, the body
    walked once per loop and only if one matches)."""
    dumped = ctx.memo.get("loss.dumped_divisions")
    if dumped is None:
        dumped = ctx.memo["loss.dumped_divisions"] = [(node, d, ast.dump(d)) for node, d in _divisions(ctx)]
    wanted = ast.dump(divisor)
    matching = [(node, d) for node, d, text in dumped if text == wanted]
    if not matching:
        return matching
    body = {id(n) for n in _loop_body(ctx, loop)}
    return [(node, d) for node, d in matching if id(node) in body]


def _multiplied(ctx: FileContext, reciprocal: ast.BinOp) -> bool:
    parent = ctx.parents.get(reciprocal)
    return isinstance(parent, (ast.BinOp, ast.AugAssign)) and isinstance(parent.op, ast.Mult)


def _numerator_node(node: ast.AST) -> ast.expr | None:
    """What is divided: ``a`` in ``a / b``, ``a * (1. / b)``, ``torch.div(a, b)`` and
    ``a.div(b)``; the target of ``a /= b``."""
    if isinstance(node, ast.Call):
        func = node.func
        return func.value if isinstance(func, ast.Attribute) and len(node.args) == 1 else node.args[0]
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Mult):
            return node.left if _reciprocal_divisor(node.right) is not None else node.right
        return node.left
    assert isinstance(node, ast.AugAssign)
    return node.target if isinstance(node.target, ast.Name) else None


def _numerator(evaluator: LossEvaluator, node: ast.AST) -> Loss:
    if isinstance(node, (ast.BinOp, ast.Call)):
        return evaluator.loss(_numerator_node(node))
    assert isinstance(node, ast.AugAssign)
    if isinstance(node.target, ast.Name):
        return evaluator.loss(node.target)
    return Loss(Kind.UNKNOWN)


def _visible(ctx: FileContext, evaluator: LossEvaluator, expression: ast.expr, at: ast.AST) -> bool:
    """Every name of ``expression`` can be read at ``at`` (the loader's batch_size
    expression may name a variable of another function)."""
    for name in (n for n in ast.walk(expression) if isinstance(n, ast.Name)):
        if name.id in ctx.imports.aliases:
            continue
        if evaluator.reaching(name.id, at) is None and not ctx.values.bindings(name.id, ctx.tree):
            return False
    return True


def _where_computed(ctx: FileContext, node: ast.AST, loss: Loss) -> list[RelatedLocation]:
    """Where a loss computed by a project callable is computed (``FocalLoss`` in
    losses.py, a loss function of this file), when that is another function,
    class or file than the one ``node`` is in."""
    if loss.defined is None:
        return []
    key, line, name = loss.defined
    if key != file_key(ctx.file or ctx.path):
        return [RelatedLocation.at(display_path(key), line, f"{name} computes the loss here")]
    function = ctx.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef)
    here = function is not None and function.lineno == line
    return [] if here else [RelatedLocation.at(ctx.path, line, f"{name} computes the loss here")]


def _remove_division(ctx: FileContext, node: ast.AST) -> NodeEdit | None:
    """``a / b`` -> ``a``; ``loss /= b`` and ``loss = loss / b`` -> nothing."""
    if isinstance(node, ast.Call):
        in_place = isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_")
        if not in_place:
            kept = _numerator_node(node)
            return _replace(ctx, node, ctx.text(kept)) if kept is not None else None
        node = ctx.parents.get(node)  # loss.div_(n): the statement goes
        if not isinstance(node, ast.Expr):
            return None
    if isinstance(node, ast.BinOp):
        statement = ctx.parents.get(node)
        kept = _numerator_node(node)
        self_assignment = (
            isinstance(statement, ast.Assign)
            and statement.value is node
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(kept, ast.Name)
            and kept.id == statement.targets[0].id
        )
        if not self_assignment:
            keep_left = kept is node.left
            return NodeEdit(ctx.span(node), "BinaryOperation", lambda n: n.left if keep_left else n.right)
        node = statement
    parent = ctx.parents.get(node)
    siblings = getattr(parent, "body", None) if parent is not None else None
    if isinstance(siblings, list) and node in siblings and len(siblings) == 1:
        return None  # the only statement of its block: removing it would leave the block empty
    kind = "AugAssign" if isinstance(node, ast.AugAssign) else "Expr" if isinstance(node, ast.Expr) else "Assign"
    return NodeEdit(ctx.span(node), kind, lambda n: cst.RemoveFromParent())


def _replace(ctx: FileContext, node: ast.expr, text: str) -> NodeEdit:
    # an operation inside another expression keeps its own parentheses
    inside = isinstance(ctx.parents.get(node), (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Attribute, ast.Subscript, ast.Await))

    def edit(_node: cst.BaseExpression) -> cst.BaseExpression:
        new = cst.parse_expression(text)
        if inside and isinstance(new, (cst.BinaryOperation, cst.BooleanOperation, cst.IfExp)):
            new = new.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return new

    return NodeEdit(ctx.span(node), "BaseExpression", edit)


def _mean_over_batch_of(ctx: FileContext, call: ast.Call) -> ast.expr | None:
    """``x.mean()`` / ``torch.mean(x)`` over every dimension: x, else None."""
    if call.keywords or (isinstance(call.func, ast.Attribute) and call.func.attr != "mean"):
        return None
    if isinstance(call.func, ast.Attribute) and not call.args:
        qual = ctx.qualname(call.func) or ""
        if qual != "torch.mean":
            return call.func.value
    if ctx.qualname(call.func) == "torch.mean" and len(call.args) == 1:
        return call.args[0]
    return None


def _weight(batching: Batching | None) -> str:
    """'; with N=1000, B=64 the last batch of 40 samples is weighted 1.6x'."""
    if batching is None or not batching.last_batch or batching.b is None:
        return ""
    last = batching.last_batch
    return f"; with N={batching.n}, B={batching.b} the last batch of {last} sample{'s' if last != 1 else ''} is weighted {batching.b / last:.1f}x"


def _all_batches_full(batching: Batching | None) -> str:
    """Why every batch is full, or ''."""
    if batching is None:
        return ""
    if batching.drops is True:
        return "drop_last=True" if batching.what == "DataLoader" else "drop_remainder=True"
    if batching.last_batch == 0 and batching.n is not None:
        return f"N={batching.n} is a multiple of B={batching.b}"
    return ""


@register
class MeanLossDividedByBatchSize(Rule):
    code = "LL101"
    chain = ChainRole.SPIKING_LOSS
    name = "mean-loss-divided-by-batch-size"
    severity = Severity.WARNING
    triggers = _TRIGGERS
    fix_applicability = Applicability.SAFE
    summary = "A loss that is already a batch mean divided again by the actual batch size (or by a count over the whole batch)."
    why = (
        "Every torch.nn loss and F.* loss defaults to reduction='mean', so its value does not depend on the batch "
        "size; dividing it again by x.size(0) makes it scale as 1/b. Full batches only see a constant rescale, but "
        "the smaller last batch of every epoch gets a loss and a gradient B/b times too large: a spike once per "
        "pass over the data, which a momentum optimizer carries on for many steps (the ssd_keras failure, in "
        "PyTorch)."
    )
    fix_doc = (
        "Where the loader's nominal batch size is known, divides by it instead (safe: every full batch trains exactly "
        "as before, and the last batch is no longer inflated). Otherwise removes the second division (unsafe: the "
        "loss grows by a constant factor B, so retune the learning rate)."
    )
    references = (
        "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html (reduction='mean')",
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
    )
    flagged = (
        Flagged(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            model = nn.Linear(20, 10)
            criterion = nn.CrossEntropyLoss()
            for images, labels in train_loader:
                loss = criterion(model(images), labels) / images.size(0)
                loss.backward()
            """,
            fixed="""
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            model = nn.Linear(20, 10)
            criterion = nn.CrossEntropyLoss()
            for images, labels in train_loader:
                loss = criterion(model(images), labels) / 64
                loss.backward()
            """,
            message_contains=("mean-reduced CrossEntropyLoss", "images.size(0)", "N=1000, B=64", "40 samples is weighted 1.6x"),
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def train(model, loader, opt):
                for x, y in loader:
                    loss = F.mse_loss(model(x), y)
                    loss /= len(y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            """,
            fixed="""
            import torch.nn.functional as F

            def train(model, loader, opt):
                for x, y in loader:
                    loss = F.mse_loss(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            """,
            unsafe=True,
            message_contains=("F.mse_loss", "len(y)", "retune the learning rate"),
        ),
        Flagged(
            """
            def multibox(loc_p, loc_t, pos, images):
                loss_l = (loc_p - loc_t).abs().sum() / pos.sum()
                batch_size = images.shape[0]
                return loss_l / batch_size
            """,
            fixed="""
            def multibox(loc_p, loc_t, pos, images):
                loss_l = (loc_p - loc_t).abs().sum() / pos.sum()
                batch_size = images.shape[0]
                return loss_l
            """,
            unsafe=True,
            message_contains=("pos.sum()", "batch_size"),
        ),
        Flagged(
            """
            from losses import FocalLoss

            def step(model, batch, optimizer):
                images, targets = batch
                criterion = FocalLoss(gamma=2.0)
                loss = criterion(model(images), targets) / images.size(0)
                loss.backward()
                optimizer.step()
            """,
            files=(
                (
                    "losses.py",
                    """
                    import torch
                    from torch import nn

                    class FocalLoss(nn.Module):
                        def __init__(self, gamma=2.0):
                            super().__init__()
                            self.gamma = gamma

                        def forward(self, logits, targets):
                            ce = nn.functional.cross_entropy(logits, targets, reduction="none")
                            p = torch.exp(-ce)
                            return ((1 - p) ** self.gamma * ce).mean()
                    """,
                ),
            ),
            fixed="""
            from losses import FocalLoss

            def step(model, batch, optimizer):
                images, targets = batch
                criterion = FocalLoss(gamma=2.0)
                loss = criterion(model(images), targets)
                loss.backward()
                optimizer.step()
            """,
            unsafe=True,
            message_contains=("FocalLoss",),
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def sequence_loss(logits, targets):
                mask = (targets != 0).float()
                per_token = F.cross_entropy(logits, targets, reduction="none")
                per_sequence = (per_token * mask).sum(dim=1) / mask.sum()
                return per_sequence.mean()
            """,
            fixed="""
            import torch.nn.functional as F

            def sequence_loss(logits, targets):
                mask = (targets != 0).float()
                per_token = F.cross_entropy(logits, targets, reduction="none")
                per_sequence = (per_token * mask).sum(dim=1) / mask.sum()
                return per_sequence.sum()
            """,
            unsafe=True,
            message_contains=("mask.sum()", "per_sequence.mean()", "averages it over the batch again"),
        ),
        Flagged(
            """
            from torch import nn

            def train(dataloader, model, loss_fn, optimizer):
                for X, y in dataloader:
                    loss = loss_fn(model(X), y)
                    loss = loss / X.size(0)
                    loss.backward()
                    optimizer.step()

            loss_fn = nn.CrossEntropyLoss()
            train(train_dataloader, model, loss_fn, optimizer)
            """,
            fixed="""
            from torch import nn

            def train(dataloader, model, loss_fn, optimizer):
                for X, y in dataloader:
                    loss = loss_fn(model(X), y)
                    loss.backward()
                    optimizer.step()

            loss_fn = nn.CrossEntropyLoss()
            train(train_dataloader, model, loss_fn, optimizer)
            """,
            unsafe=True,
            message_contains=("mean-reduced CrossEntropyLoss", "X.size(0)"),
        ),
        Flagged(
            """
            import torch.nn as nn


            class SegmentationLosses(object):
                def __init__(self, weight=None, size_average=True, batch_average=True):
                    self.weight = weight
                    self.size_average = size_average
                    self.batch_average = batch_average

                def cross_entropy(self, logit, target):
                    n, c, h, w = logit.size()
                    criterion = nn.CrossEntropyLoss(weight=self.weight, size_average=self.size_average)
                    criterion = criterion.cuda()
                    loss = criterion(logit, target.long())
                    if self.batch_average:
                        loss /= n
                    return loss
            """,
            fixed=None,
            message_contains=("size_average=self.size_average, which is True", "divided again by n"),
        ),
        Flagged(
            """
            from losses import weighted_bce


            def train_one_epoch(dataloader, model, criterion, optimizer):
                for batch in dataloader:
                    images = batch["images"]
                    outputs = model(images)
                    loss = sum([criterion(out, batch["labels"]) for out in outputs])
                    loss /= images.shape[0]
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()


            criterion = weighted_bce
            train_one_epoch(train_loader, model, criterion, optimizer)
            """,
            files=(
                (
                    "losses.py",
                    """
                    import torch
                    import torch.nn.functional as F


                    def weighted_bce(preds, edges):
                        mask = (edges > 0.5).float()
                        b, c, h, w = mask.shape
                        losses = F.binary_cross_entropy_with_logits(preds, edges, weight=mask + 0.1, reduction="none")
                        return torch.sum(losses) / b
                    """,
                ),
            ),
            fixed="""
            from losses import weighted_bce


            def train_one_epoch(dataloader, model, criterion, optimizer):
                for batch in dataloader:
                    images = batch["images"]
                    outputs = model(images)
                    loss = sum([criterion(out, batch["labels"]) for out in outputs])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()


            criterion = weighted_bce
            train_one_epoch(train_loader, model, criterion, optimizer)
            """,
            unsafe=True,
            message_contains=("weighted_bce (losses.py", "images.shape[0]"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from bce import PositiveNormalizedBCE

            loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.rand(1000, 4)), batch_size=64, shuffle=True)
            criterion = PositiveNormalizedBCE()
            for x, y in loader:
                loss = criterion(model(x), y) * (1.0 / x.size(0))
                loss.backward()
            """,
            files=(
                (
                    "bce.py",
                    """
                    import torch.nn.functional as F
                    from torch import nn


                    class PositiveNormalizedBCE(nn.Module):
                        def forward(self, logits, targets):
                            per_element = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
                            return per_element.sum() / targets.sum().clamp(min=1)
                    """,
                ),
            ),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from bce import PositiveNormalizedBCE

            loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.rand(1000, 4)), batch_size=64, shuffle=True)
            criterion = PositiveNormalizedBCE()
            for x, y in loader:
                loss = criterion(model(x), y) * (1.0 / 64)
                loss.backward()
            """,
            message_contains=("PositiveNormalizedBCE (bce.py", "x.size(0)", "N=1000, B=64"),
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def train(model, loader, opt):
                for x, y in loader:
                    loss = F.mse_loss(model(x), y)
                    loss *= (1.0 / x.size(0))
                    loss *= 2
                    loss.backward()
            """,
            fixed="""
            import torch.nn.functional as F

            def train(model, loader, opt):
                for x, y in loader:
                    loss = F.mse_loss(model(x), y)
                    loss *= 2
                    loss.backward()
            """,
            unsafe=True,
            message_contains=("F.mse_loss", "x.size(0)"),
        ),
        Flagged(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            train_loader = DataLoader(TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,))), batch_size=64, shuffle=True)
            criterion = nn.CrossEntropyLoss()
            for images, labels in train_loader:
                loss = criterion(model(images), labels).div(images.size(0))
                loss.backward()
            """,
            fixed="""
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            train_loader = DataLoader(TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,))), batch_size=64, shuffle=True)
            criterion = nn.CrossEntropyLoss()
            for images, labels in train_loader:
                loss = criterion(model(images), labels).div(64)
                loss.backward()
            """,
            message_contains=("divided again by images.size(0)", "1.6x"),
        ),
    )
    quiet = (
        Quiet(
            """
            import torch.nn as nn


            class SegmentationLosses(object):
                def __init__(self, weight=None, batch_average=True):
                    self.weight = weight

                def focal_loss(self, logit, target):
                    n, c, h, w = logit.size()
                    loss = nn.CrossEntropyLoss(weight=self.weight)(logit, target.long())
                    if self.batch_average:
                        loss /= n
                    return loss
            """,
            why="a flag the class never stores (self.batch_average): the test raises before the second division could run",
        ),
        Quiet(
            """
            import torch.nn as nn


            class SegmentationLosses(object):
                def __init__(self, size_average=True, batch_average=False):
                    self.size_average = size_average
                    self.batch_average = batch_average

                def cross_entropy(self, logit, target):
                    n, c, h, w = logit.size()
                    loss = nn.CrossEntropyLoss(size_average=self.size_average)(logit, target.long())
                    if self.batch_average:
                        loss /= n
                    return loss
            """,
            why="the second division sits behind a flag that is off by default",
        ),
        Quiet(
            """
            import torch.nn.functional as F
            from torch import nn


            class PositiveSumBCE(nn.Module):
                def forward(self, logits, targets):
                    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")


            criterion = PositiveSumBCE()
            for x, y in train_loader:
                loss = criterion(model(x), y) / x.size(0)
                loss.backward()
            """,
            why="a project loss (whatever its name) that sums: divided once by the batch size is the mean",
        ),
        Quiet(
            """
            def run(loader, heads, backbone, criterion, optimizer):
                for x, y, group in loader:
                    features = backbone(x)
                    loss = 0.0
                    for g in group.unique().tolist():
                        mask = group == g
                        loss = loss + criterion(heads[g](features[mask]), y[mask]) * mask.sum()
                    loss = loss / x.size(0)
                    loss.backward()
            """,
            why="a mean times its sample count is a sum again: divided once by the batch size",
        ),
        Quiet(
            """
            from torch import nn

            def train(dataloader, model, loss_fn, optimizer):
                for X, y in dataloader:
                    loss = loss_fn(model(X), y) / X.size(0)
                    loss.backward()

            train(loader, model, nn.CrossEntropyLoss(reduction="sum"), opt)
            train(loader, model, nn.CrossEntropyLoss(), opt)
            """,
            why="the callers pass different losses: nothing is claimed",
        ),
        Quiet(
            """
            from torch import nn
            criterion = nn.CrossEntropyLoss(reduction="sum")
            for x, y in train_loader:
                loss = criterion(model(x), y) / x.size(0)
                loss.backward()
            """,
            why="a summed loss divided by the actual batch size is the batch mean: correct",
        ),
        Quiet(
            """
            import torch.nn.functional as F
            def forward(self, loc_p, loc_t, conf_p, conf_t, num_pos):
                loss_l = F.smooth_l1_loss(loc_p, loc_t, reduction="sum")
                loss_c = F.cross_entropy(conf_p, conf_t, reduction="sum")
                N = num_pos.data.sum()
                loss_l /= N
                loss_c /= N
                return loss_l, loss_c
            """,
            why="ssd.pytorch's MultiBoxLoss: a sum divided once by the number of positives",
        ),
        Quiet(
            """
            from torch import nn
            criterion = nn.CrossEntropyLoss()
            running_loss = 0.0
            for x, y in train_loader:
                loss = criterion(model(x), y)
                loss.backward()
                running_loss += loss.item()
                print(f"loss {loss.item() / x.size(0):.3f}")
            print(running_loss / len(train_loader))
            """,
            why="logged values are never trained on; running_loss / len(loader) is an average over batches",
        ),
        Quiet(
            """
            import torch.nn.functional as F
            for x, y in train_loader:
                per_sample = F.cross_entropy(model(x), y, reduction="none")
                loss = per_sample.sum() / x.size(0)
                loss.backward()
            """,
            why="per-sample losses summed and divided once by the batch size",
        ),
        Quiet(
            """
            for x, y in train_loader:
                loss = model(x, y)
                loss = loss.mean()  # average over DataParallel replicas
                loss = loss / x.size(0)
                loss.backward()
            """,
            why="the model's loss may be a sum: nothing shows it is already a mean",
        ),
        Quiet(
            """
            import torch
            def total(losses):
                return sum(losses) / len(losses)
            """,
            why="averaging a list of losses, not dividing by a batch size",
        ),
        Quiet(
            """
            import torch.nn.functional as F
            def validate(model, val_loader):
                for x, y in val_loader:
                    per_sample_loss = F.cross_entropy(model(x), y) / x.size(0)
            """,
            why="an evaluation loop changes no weights",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        return on_training_paths(ctx, self._check(ctx))

    def _check(self, ctx: FileContext) -> Iterable[Finding]:
        evaluator = LossEvaluator(ctx, tensor_params=True)
        for node, divisor_node in _divisions(ctx):
            divisor = evaluator.divisor(divisor_node)
            if divisor.kind not in (Divisor.ACTUAL_BATCH, Divisor.BATCH_COUNT):
                continue
            numerator = _numerator(evaluator, node)
            if numerator.kind is not Kind.MEAN or numerator.detached or is_logged_only(ctx, node) or in_evaluation(ctx, node):
                continue
            if off_by_default(ctx, node):
                continue
            yield self._finding(ctx, evaluator, node, divisor_node, numerator, divisor)
        # (per_sample / num_pos).mean(): the mean over the batch is the second division.
        for call in ctx.nodes_of(ast.Call):
            inner = _mean_over_batch_of(ctx, call)
            if inner is None:
                continue
            value = evaluator.loss(inner)
            if value.kind is not Kind.OVER_BATCH_COUNT or value.detached or is_logged_only(ctx, call) or in_evaluation(ctx, call):
                continue
            message = (
                f"{value.evidence} is already divided by a count over the whole batch, and {ctx.text(call)} averages "
                "it over the batch again: the loss scales as 1/batch size; a smaller last batch (N % B != 0 without "
                "drop_last) is weighted B/b times"
            )
            fix = None
            if isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
                edit = NodeEdit(ctx.span(call.func), "Attribute", lambda n: n.with_changes(attr=cst.Name("sum")))
                fix = Fix("sum instead of averaging again", Applicability.UNSAFE, (edit,))
                message += "; summing instead makes the loss B times larger, so retune the learning rate"
            yield ctx.finding(self, call, message, fix)

    def _finding(
        self, ctx: FileContext, evaluator: LossEvaluator, node: ast.AST, divisor_node: ast.expr, numerator: Loss, divisor: DivisorInfo
    ) -> Finding:
        batching = training_batching(ctx, node)
        what = "the actual batch size" if divisor.kind is Divisor.ACTUAL_BATCH else "a count taken over the whole batch, which grows with the batch size"
        message = f"{numerator.evidence} divided again by {divisor.text} ({what}): the loss scales as 1/batch size"
        severity = None
        full = _all_batches_full(batching)
        if full:
            severity = Severity.INFO
            message += f"; every batch is full here ({full}), so today it is only a constant 1/B rescale, but any partial batch will spike"
        elif batching is not None and batching.last_batch:
            message += _weight(batching)
        else:
            message += "; a smaller last batch (N % B != 0 without drop_last) is weighted B/b times"
        fix = None
        nominal = batching.batch_size_node if batching is not None else None
        if divisor.kind is Divisor.ACTUAL_BATCH and nominal is not None and _visible(ctx, evaluator, nominal, node):
            text = ctx.text(nominal)
            fix = Fix(f"divide by the nominal batch size {text}", Applicability.SAFE, (_replace(ctx, divisor_node, text),))
        else:
            edit = _remove_division(ctx, node)
            if edit is not None:
                fix = Fix(f"remove the division by {divisor.text}", Applicability.UNSAFE, (edit,))
                message += "; removing the division makes the loss B times larger, so retune the learning rate"
        return ctx.finding(self, node, message, fix, severity, related=_where_computed(ctx, node, numerator))


@register
class LossDividedByNominalBatchSize(Rule):
    code = "LL103"
    chain = ChainRole.DIPPING_LOSS
    name = "loss-divided-by-nominal-batch-size"
    severity = Severity.WARNING
    triggers = _TRIGGERS
    summary = "A summed loss divided by a constant nominal batch size while the last batch can be smaller."
    why = (
        "A sum over the batch grows with the number of samples in it. Dividing by the nominal batch size B instead "
        "of the actual size b makes the loss of a partial last batch b/B of what its samples deserve: every epoch "
        "ends with an under-weighted step. tf.nn.compute_average_loss(..., global_batch_size=GLOBAL_BATCH_SIZE) "
        "does the same with a constant. Where no pipeline feeding the loss can be seen, whether a batch is ever short "
        "cannot be known and the finding is INFO; a WARNING where every pipeline of the files it imports (its data "
        "module) keeps its short last batch, and quiet where every one drops it."
    )
    fix_doc = (
        "Divides by the actual batch size (x.size(0)), or drops global_batch_size= so that compute_average_loss "
        "divides by the batch it was given (tf.reduce_sum(x) / GLOBAL_BATCH_SIZE, or * (1. / GLOBAL_BATCH_SIZE), "
        "becomes tf.nn.compute_average_loss(x)). Safe: full batches train exactly as before."
    )
    references = (
        "https://www.tensorflow.org/api_docs/python/tf/nn/compute_average_loss",
        "https://pytorch.org/docs/stable/data.html#torch.utils.data.DataLoader (drop_last)",
    )
    flagged = (
        Flagged(
            """
            import argparse
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randint(0, 2, (1000,))), batch_size=args.batch_size, shuffle=True)
            for x, y in train_loader:
                loss_sum = F.cross_entropy(model(x), y, reduction="sum")
                loss = torch.div(loss_sum, args.batch_size)
                loss.backward()
            """,
            fixed="""
            import argparse
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randint(0, 2, (1000,))), batch_size=args.batch_size, shuffle=True)
            for x, y in train_loader:
                loss_sum = F.cross_entropy(model(x), y, reduction="sum")
                loss = torch.div(loss_sum, x.size(0))
                loss.backward()
            """,
            message_contains=("reduction='sum' divided by args.batch_size", "40 samples"),
        ),
        Flagged(
            """
            import argparse
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=args.batch_size, shuffle=True)
            for x, y in train_loader:
                loss = F.mse_loss(model(x), y, reduction="sum") / args.batch_size
                loss.backward()
            """,
            fixed="""
            import argparse
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=args.batch_size, shuffle=True)
            for x, y in train_loader:
                loss = F.mse_loss(model(x), y, reduction="sum") / x.size(0)
                loss.backward()
            """,
            message_contains=("args.batch_size", "N=1000, B=64", "40 samples", "0.62x"),
        ),
        Flagged(
            """
            import tensorflow as tf

            GLOBAL_BATCH_SIZE = 64
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).shuffle(1000).batch(GLOBAL_BATCH_SIZE)

            def compute_loss(labels, predictions):
                per_example_loss = loss_object(labels, predictions)
                return tf.nn.compute_average_loss(per_example_loss, global_batch_size=GLOBAL_BATCH_SIZE)
            """,
            fixed="""
            import tensorflow as tf

            GLOBAL_BATCH_SIZE = 64
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).shuffle(1000).batch(GLOBAL_BATCH_SIZE)

            def compute_loss(labels, predictions):
                per_example_loss = loss_object(labels, predictions)
                return tf.nn.compute_average_loss(per_example_loss)
            """,
            message_contains=("compute_average_loss", "GLOBAL_BATCH_SIZE", "N=1000, B=64"),
        ),
        Flagged(
            """
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            BATCH_SIZE_PER_REPLICA = 64
            GLOBAL_BATCH_SIZE = BATCH_SIZE_PER_REPLICA * strategy.num_replicas_in_sync
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).batch(GLOBAL_BATCH_SIZE)
            loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.NONE)


            def compute_loss(labels, predictions):
                per_example_loss = loss_object(labels, predictions)
                return tf.reduce_sum(per_example_loss) * (1. / GLOBAL_BATCH_SIZE)
            """,
            fixed="""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            BATCH_SIZE_PER_REPLICA = 64
            GLOBAL_BATCH_SIZE = BATCH_SIZE_PER_REPLICA * strategy.num_replicas_in_sync
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).batch(GLOBAL_BATCH_SIZE)
            loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.NONE)


            def compute_loss(labels, predictions):
                per_example_loss = loss_object(labels, predictions)
                return tf.nn.compute_average_loss(per_example_loss)
            """,
            message_contains=("tf.reduce_sum(per_example_loss)", "GLOBAL_BATCH_SIZE", "under-weighted"),
        ),
        Flagged(
            """
            import tensorflow as tf

            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            BATCH_SIZE = 64  # per worker
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).shuffle(1000).batch(BATCH_SIZE)


            def model_fn(labels, logits):
                loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.NONE)(labels, logits)
                loss = tf.reduce_sum(loss) * (1. / BATCH_SIZE)
                return loss
            """,
            fixed="""
            import tensorflow as tf

            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            BATCH_SIZE = 64  # per worker
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).shuffle(1000).batch(BATCH_SIZE)


            def model_fn(labels, logits):
                loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.NONE)(labels, logits)
                loss = tf.reduce_sum(loss) / tf.cast(tf.shape(loss)[0], loss.dtype)
                return loss
            """,
            message_contains=("BATCH_SIZE", "N=1000, B=64"),
        ),
        Flagged(
            """
            import tensorflow as tf
            from data import make_dataset


            class Trainer:
                def __init__(self, batch_size):
                    self.batch_size = batch_size
                    self.loss_object = tf.keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True, reduction=tf.keras.losses.Reduction.NONE)

                def compute_loss(self, labels, predictions):
                    return tf.reduce_sum(self.loss_object(labels, predictions)) * (1. / self.batch_size)
            """,
            fixed="""
            import tensorflow as tf
            from data import make_dataset


            class Trainer:
                def __init__(self, batch_size):
                    self.batch_size = batch_size
                    self.loss_object = tf.keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True, reduction=tf.keras.losses.Reduction.NONE)

                def compute_loss(self, labels, predictions):
                    return tf.nn.compute_average_loss(self.loss_object(labels, predictions))
            """,
            files=(("data.py", """
                import tensorflow as tf


                def make_dataset(batch_size):
                    (x, y), _ = tf.keras.datasets.cifar10.load_data()
                    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(batch_size)
                """),),
            message_contains=("divided by self.batch_size", "under-weighted by b/B"),
        ),
    )
    quiet = (
        Quiet(
            """
            import argparse
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randint(0, 2, (1000,))), batch_size=args.batch_size, shuffle=True)
            for x, y in train_loader:
                loss = F.cross_entropy(model(x), y, reduction="sum").div(x.size(0))
                loss.backward()
                steps = torch.div(len(train_loader.dataset), args.batch_size, rounding_mode="floor")
            """,
            why="a summed loss divided (as a call) by the actual batch size is the batch mean; an integer division of counts is no loss",
        ),
        Quiet(
            """
            import tensorflow as tf
            from data import make_dataset


            class Trainer:
                def __init__(self, batch_size):
                    self.batch_size = batch_size
                    self.loss_object = tf.keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True, reduction=tf.keras.losses.Reduction.NONE)

                def compute_loss(self, labels, predictions):
                    return tf.reduce_sum(self.loss_object(labels, predictions)) * (1. / self.batch_size)
            """,
            files=(("data.py", """
                import tensorflow as tf


                def make_dataset(batch_size):
                    (x, y), _ = tf.keras.datasets.cifar10.load_data()
                    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(batch_size, drop_remainder=True)
                """),),
            why="drop_remainder=True where the data module this file imports batches: every batch is full",
        ),
        Quiet(
            """
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            GLOBAL_BATCH_SIZE = 64 * strategy.num_replicas_in_sync
            train_dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).batch(GLOBAL_BATCH_SIZE, drop_remainder=True)
            loss_object = tf.keras.losses.SparseCategoricalCrossentropy(reduction=tf.keras.losses.Reduction.NONE)


            def compute_loss(labels, predictions):
                return tf.reduce_sum(loss_object(labels, predictions)) * (1. / GLOBAL_BATCH_SIZE)
            """,
            why="drop_remainder=True: every global batch is full",
        ),
        Quiet(
            """
            import tensorflow as tf

            def get_dataset(batch_size):
                dataset = tf.data.Dataset.from_tensor_slices((tf.zeros([1000, 4]), tf.zeros([1000]))).shuffle(1000)
                dataset = dataset.repeat()
                return dataset.batch(batch_size)

            train_dataset = get_dataset(64)

            def compute_loss(labels, predictions, batch_size):
                per_example_loss = loss_object(labels, predictions)
                return tf.nn.compute_average_loss(per_example_loss, global_batch_size=batch_size)
            """,
            why=".repeat() before .batch() (the TPU guide): batches span epochs and none is short, as LL203 judges it",
        ),
        Quiet(
            """
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset
            BATCH_SIZE = 64
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=BATCH_SIZE, shuffle=True, drop_last=True)
            for x, y in train_loader:
                loss = F.mse_loss(model(x), y, reduction="sum") / BATCH_SIZE
                loss.backward()
            """,
            why="drop_last=True: every batch has BATCH_SIZE samples",
        ),
        Quiet(
            """
            import torch
            import torch.nn.functional as F
            from torch.utils.data import DataLoader, TensorDataset
            BATCH_SIZE = 50
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=BATCH_SIZE, shuffle=True)
            for x, y in train_loader:
                loss = F.mse_loss(model(x), y, reduction="sum") / BATCH_SIZE
                loss.backward()
            """,
            why="N % B == 0: every batch is full",
        ),
        Quiet(
            """
            import torch.nn.functional as F
            for x, y in train_loader:
                loss = F.cross_entropy(model(x), y) / args.batch_size
                loss.backward()
            """,
            why="a mean divided by a constant is only a learning-rate rescale",
        ),
        Quiet(
            """
            import tensorflow as tf
            def compute_loss(labels, predictions):
                per_example_loss = loss_object(labels, predictions)
                return tf.nn.compute_average_loss(per_example_loss)
            """,
            why="compute_average_loss divides by the batch it gets",
        ),
        Quiet(
            """
            import numpy as np
            class LossTest:
                def test_sum_over_batch_size(self):
                    expected = np.sum(self.expected_losses) / self.batch_size
                    self.assertAllClose(loss_fn(self.y_true, self.y_pred), expected)
            """,
            why="NumPy values have no gradient: an expected value in a test is never trained on",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        evaluator = LossEvaluator(ctx, tensor_params=True)
        for node, divisor_node in _divisions(ctx):
            divisor = evaluator.divisor(divisor_node)
            if divisor.kind is not Divisor.NOMINAL_BATCH:
                continue
            numerator = _numerator(evaluator, node)
            if numerator.kind is not Kind.SUM or numerator.detached or is_logged_only(ctx, node) or in_evaluation(ctx, node):
                continue
            if off_by_default(ctx, node):
                continue
            batching = self._partial(ctx, node)
            if batching is False:
                continue
            fix = self._divide_by_actual(ctx, evaluator, node, divisor_node)
            message = self._message(f"{numerator.evidence} divided by {divisor.text}", batching)
            yield ctx.finding(self, node, message, fix, self._severity(ctx, batching), related=_where_computed(ctx, node, numerator))
        if "compute_average_loss" in ctx.source:
            for call in ctx.nodes_of(ast.Call):
                if last_part(ctx.qualname(call.func)) != "compute_average_loss":
                    continue
                given = argument(call, "global_batch_size", 2)
                if given is None or evaluator.divisor(given).kind is not Divisor.NOMINAL_BATCH:
                    continue
                batching = self._partial(ctx, call)
                if batching is False:
                    continue
                fix = None
                per_example = call.args[0] if call.args else None
                if keyword(call, "global_batch_size") is not None and _global_batch(ctx, given):
                    fix = Fix("let compute_average_loss divide by the actual batch", Applicability.SAFE, (
                        NodeEdit(ctx.span(call), "Call", _drop_keyword("global_batch_size")),
                    ))
                elif isinstance(per_example, ast.Name) and _per_replica_batch(ctx, given):
                    # a per-replica constant: compute_average_loss's default would also divide
                    # by the replicas, so divide by this replica's actual batch instead
                    fix = Fix("divide by the actual batch of this replica", Applicability.SAFE, (
                        _replace(ctx, given, f"tf.shape({per_example.id})[0]"),
                    ))
                evidence = f"tf.nn.compute_average_loss(..., global_batch_size={ctx.text(given)}) divides the sum by a constant"
                yield ctx.finding(self, call, self._message(evidence, batching), fix, self._severity(ctx, batching))

    def _partial(self, ctx: FileContext, node: ast.AST) -> Batching | None | bool:
        """The pipeline when its last batch may be partial; False when every batch is full."""
        batching = training_batching(ctx, node)
        risky = tf_partial_batches(ctx)
        if risky is not None:
            # tf.data as LL203 judges it: .repeat() before .batch() spans epochs, a loop of
            # steps_per_epoch over an iterator never reaches the short batch.
            if batching is not None and batching.what == "tf.data batch()" and id(batching.call) not in risky:
                return False
            if batching is None and not risky:
                return False
        if batching is not None:
            return False if _all_batches_full(batching) else batching
        # drop_remainder=True where the pipeline is built (another file within reach)
        if project_always_drops(ctx.project) or project_always_drops(ctx.project, scope=ctx.file or None):
            return False
        return None

    @staticmethod
    def _severity(ctx: FileContext, batching: Batching | None) -> Severity | None:
        """INFO where no pipeline feeding the loss can be seen: whether a batch is ever
        short cannot be known (as LL202 says of a loader whose N is unknown). A warning
        where every pipeline of the files within reach (the data module this one
        imports) keeps its short last batch: the training one does too."""
        if batching is not None:
            return None
        counts = [facts for _, facts in ctx.project.each(BatchingCounts, scope=ctx.file or None)]
        keeps = sum(c.keeping for c in counts) > 0 and sum(c.dropping for c in counts) == 0
        return None if keeps and ctx.file else Severity.INFO

    @staticmethod
    def _message(evidence: str, batching: Batching | None) -> str:
        if batching is not None and batching.last_batch and batching.b:
            last, b = batching.last_batch, batching.b
            return (
                f"{evidence}, not by the actual batch size: {batching.numbers()}, whose loss is only "
                f"{last / b:.2f}x what its samples deserve (its samples weigh {last}/{b} of the others)"
            )
        return (
            f"{evidence}, not by the actual batch size: unless N is a multiple of B or the last batch is dropped, "
            "the last batch of every epoch is under-weighted by b/B"
        )

    def _divide_by_actual(self, ctx: FileContext, evaluator: LossEvaluator, node: ast.AST, divisor_node: ast.expr) -> Fix | None:
        """``/ args.batch_size`` -> ``/ x.size(0)``, x the first tensor the training loop binds;
        ``tf.reduce_sum(per_example) / GLOBAL_BATCH_SIZE`` -> ``tf.nn.compute_average_loss(per_example)``."""
        summed = _numerator_node(node)
        tf_alias = next((alias for alias, target in ctx.imports.aliases.items() if target == "tensorflow"), None)
        if (
            tf_alias is not None
            and isinstance(node, ast.BinOp)
            and isinstance(summed, ast.Call)
            and ctx.qualname(summed.func) == "tensorflow.reduce_sum"
            and len(summed.args) == 1
            and not summed.keywords
        ):
            per_example = ctx.text(summed.args[0])
            divisor = _reciprocal_divisor(node.right) if isinstance(node.op, ast.Mult) else node.right
            if divisor is not None and _global_batch(ctx, divisor):
                return Fix("let tf.nn.compute_average_loss divide by the actual (global) batch", Applicability.SAFE, (
                    _replace(ctx, node, f"{tf_alias}.nn.compute_average_loss({per_example})"),
                ))
            if not isinstance(summed.args[0], ast.Name) or divisor is None or not _per_replica_batch(ctx, divisor):
                return None  # per replica or global: not told, so no rewrite
            # a per-replica constant: divide by this replica's actual batch (compute_average_loss
            # would also divide by the number of replicas and change every full batch's scale)
            return Fix("divide by the actual batch size", Applicability.SAFE, (
                _replace(ctx, node, f"{ctx.text(summed)} / {tf_alias}.cast({tf_alias}.shape({per_example})[0], {per_example}.dtype)"),
            ))
        if not ctx.imports.imports_any("torch"):
            return None  # x.size(0) is PyTorch's spelling
        for loop in enclosing_loops(ctx, node):
            names = batch_tensor_names(ctx, loop)
            if names and names[0] != "_":
                return Fix(f"divide by the actual batch size {names[0]}.size(0)", Applicability.SAFE, (
                    _replace(ctx, divisor_node, f"{names[0]}.size(0)"),
                ))
        return None


_GLOBAL_WORDS = ("global", "num_replicas_in_sync", "num_workers", "world_size")


def _global_batch(ctx: FileContext, divisor: ast.expr) -> bool:
    """A batch size counted over every replica (``PER_REPLICA * strategy.num_replicas_in_sync``,
    ``global_batch_size = per_worker * num_workers``), or any batch size where no
    distribution strategy runs (one replica): what ``tf.nn.compute_average_loss``
    divides by when it is given none. A constant under a strategy that says neither
    may be per replica: then there is no safe rewrite into compute_average_loss."""
    if "Strategy" not in ctx.source and "tf.distribute" not in ctx.source:
        return True
    value = ctx.values.resolve_name(divisor) if isinstance(divisor, ast.Name) else divisor
    text = (ctx.text(divisor) + " " + (ctx.text(value) if value is not None else "")).lower()
    return any(word in text for word in _GLOBAL_WORDS)


def _per_replica_batch(ctx: FileContext, divisor: ast.expr) -> bool:
    """A batch size that says it counts one replica or worker (``BATCH_SIZE_PER_REPLICA``,
    ``per_worker_batch_size``, or a ``# per worker`` comment where it is set)."""
    value = ctx.values.resolve_name(divisor) if isinstance(divisor, ast.Name) else None
    text = ctx.text(divisor).lower()
    if value is not None:
        text += " " + ctx.text(value).lower() + " " + ctx.lines[value.lineno - 1].lower()
    return any(word in text for word in ("per_replica", "per_worker", "per replica", "per worker", "per-replica", "per-worker"))


def _drop_keyword(name: str):
    def edit(call: cst.Call) -> cst.Call:
        args = [a for a in call.args if not (a.keyword is not None and a.keyword.value == name)]
        if args:
            args[-1] = args[-1].with_changes(comma=call.args[-1].comma if call.args[-1].keyword is None or call.args[-1].keyword.value != name else cst.MaybeSentinel.DEFAULT)
        return call.with_changes(args=args)

    return edit


class _Window:
    """A gradient-accumulation loop: ``for i, b in enumerate(loader)`` whose body
    steps the optimizer when ``test`` holds (``if (i + 1) % accum == 0:
    optimizer.step()``, or a helper told so: ``loss_scaler(loss, optimizer,
    update_grad=(i + 1) % accum == 0)``). ``gates`` are every expression of the
    loop body that tests the same, each of which a fix must change alike."""

    def __init__(self, ctx: FileContext, loop: ast.For, test: ast.expr, modulo: ast.BinOp, start: int, helper: ast.Call | None = None) -> None:
        self.ctx, self.loop, self.test, self.modulo, self.start, self.helper = ctx, loop, test, modulo, start, helper
        self.accum_node = modulo.right
        assert isinstance(loop.iter, ast.Call)
        self.iterable = loop.iter.args[0]
        if isinstance(self.iterable, ast.Call) and last_part(ctx.qualname(self.iterable.func)) == "tqdm" and self.iterable.args:
            self.iterable = self.iterable.args[0]  # len(loader), not len(tqdm(loader, ...))
        # a wrapper we cannot see (``metric_logger.log_every(loader, ...)``) may have no len()
        self.sized = not isinstance(self.iterable, ast.Call)
        target = loop.target
        assert isinstance(target, ast.Tuple) and isinstance(target.elts[0], ast.Name)
        self.index = target.elts[0].id
        left = modulo.left
        # (i + 1) % accum from 0, or i % accum from 1: windows end on the accum-th micro-batch.
        self.aligned = (self._is_index_plus_one(left) and start == 0) or (self._is_index(left) and start == 1)
        self.misaligned = self._is_index(left) and start == 0
        self.forced_last = any(
            isinstance(n, ast.Call) and ctx.qualname(n.func) == "len" for n in ast.walk(test) if n is not modulo
        )
        dump = ast.dump(test)
        self.gates = [
            n for n in _loop_body(ctx, loop)
            if isinstance(n, ast.expr) and type(n) is type(test) and ast.dump(n) == dump
        ] or [test]

    def _is_index(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id == self.index

    def _is_index_plus_one(self, node: ast.expr) -> bool:
        return (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Add)
            and self._is_index(node.left)
            and isinstance(node.right, ast.Constant)
            and node.right.value == 1
        )

    def mentions_index(self) -> bool:
        return any(isinstance(n, ast.Name) and n.id == self.index for n in ast.walk(self.modulo.left))

    def window_length(self) -> str:
        """The length of the window micro-batch ``i`` belongs to, as code."""
        accum = self.ctx.text(self.accum_node)
        position = self.index if self.start == 0 else f"({self.index} - {self.start})"
        return f"min({accum}, len({self.ctx.text(self.iterable)}) - {position} // {accum} * {accum})"

    def step_on_last(self, extra: str) -> tuple[NodeEdit, ...]:
        """Every gate of the window ``or``-ed with ``extra``."""
        return tuple(_replace_test(self.ctx, gate, extra) for gate in self.gates)

    def zero_grad_before_epoch(self) -> bool:
        """``zero_grad()`` in the enclosing epoch loop (or the per-epoch function) before
        this loop: leftovers are discarded."""
        parent = self.ctx.parents.get(self.loop)
        body = getattr(parent, "body", [])
        for stmt in body:
            if stmt is self.loop:
                return False
            if any(isinstance(n, ast.Attribute) and n.attr == "zero_grad" for n in ast.walk(stmt)):
                return True
        return False

    def skips_partial_window(self) -> bool:
        """``if i // accum >= whole_windows: continue`` (a name bound to ``i // accum``
        too): the micro-batches past the last whole window are never trained."""
        accum_dump = ast.dump(self.accum_node)

        def window_number(node: ast.expr) -> bool:
            if isinstance(node, ast.Name):
                value = self.ctx.values.resolve_name(node)
                node = value if value is not None else node
            return (
                isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv)
                and self._is_index(node.left) and ast.dump(node.right) == accum_dump
            )

        for stmt in self.loop.body:
            if not (isinstance(stmt, ast.If) and len(stmt.body) == 1 and isinstance(stmt.body[0], (ast.Continue, ast.Break))):
                continue
            test = stmt.test
            if (
                isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.GtE, ast.Gt))
                and window_number(test.left)
            ):
                return True
        return False


def _loop_body(ctx: FileContext, loop: ast.For) -> list[ast.AST]:
    """``_loop_body_nodes(loop)`` as a list, once per loop and file (the windows'
    analysis and LL104's divisions each walk it)."""
    key = ("loss.loop_body", id(loop))
    body = ctx.memo.get(key)
    if body is None:
        body = ctx.memo[key] = list(_loop_body_nodes(loop))
    return body


def _loop_body_nodes(loop: ast.For) -> Iterable[ast.AST]:
    stack: list[ast.AST] = list(loop.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.For, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _modulo_of(test: ast.expr) -> ast.BinOp | None:
    return next((n for n in ast.walk(test) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod)), None)


def _accumulation_windows(ctx: FileContext) -> Iterable[_Window]:
    for loop in ctx.nodes_of(ast.For):
        if not (isinstance(loop.iter, ast.Call) and ctx.qualname(loop.iter.func) == "enumerate" and loop.iter.args):
            continue
        if not (isinstance(loop.target, ast.Tuple) and len(loop.target.elts) == 2 and isinstance(loop.target.elts[0], ast.Name)):
            continue
        start_node = argument(loop.iter, "start", 1)
        start = ctx.values.int_value(start_node) if start_node is not None else 0
        if start not in (0, 1):
            continue
        helped: _Window | None = None
        stepped = False
        for node in _loop_body(ctx, loop):
            if isinstance(node, ast.If):
                steps = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step" for s in node.body for n in ast.walk(s))
                modulo = _modulo_of(node.test) if steps else None
                if modulo is not None:
                    stepped = True
                    yield _Window(ctx, loop, node.test, modulo, start)
            elif isinstance(node, ast.Call) and helped is None:
                # a helper that backpropagates the loss and steps when told
                # (timm's NativeScaler: ``loss_scaler(loss, optimizer, update_grad=(i + 1) % accum == 0)``)
                for kw in node.keywords:
                    modulo = _modulo_of(kw.value) if kw.arg is not None else None
                    if modulo is not None:
                        window = _Window(ctx, loop, kw.value, modulo, start, helper=node)
                        if window.mentions_index():
                            helped = window
                            break
        if helped is not None and not stepped:
            yield helped


class _CountedWindow:
    """A window keyed on a counter of micro-batches that runs across epochs: the
    epoch loop's body clears .grad (``zero_grad``) and then runs ``loop``, whose body
    counts ``counter += 1`` and steps under ``if counter % accum == 0``."""

    def __init__(self, loop: ast.For, step_if: ast.If, modulo: ast.BinOp, counter: str, zero_grad: ast.Expr) -> None:
        self.loop, self.step_if, self.modulo, self.counter, self.zero_grad = loop, step_if, modulo, counter, zero_grad
        self.accum_node = modulo.right


def _counted_windows(ctx: FileContext) -> Iterable[_CountedWindow]:
    for step_if in ctx.nodes_of(ast.If):
        modulo = next((n for n in ast.walk(step_if.test) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod)), None)
        if modulo is None or not isinstance(modulo.left, ast.Name):
            continue
        if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step" for s in step_if.body for n in ast.walk(s)):
            continue
        loops = enclosing_loops(ctx, step_if)
        if len(loops) < 2 or ctx.parents.get(loops[0]) is not loops[1]:
            continue  # the batch loop directly in the epoch loop's body
        loop, epoch = loops[0], loops[1]
        counter = modulo.left.id
        if counter in {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}:
            continue  # a per-epoch index (the enumerate windows)
        if not _counts_across_epochs(ctx, counter, loop, epoch):
            continue
        zero_grad = _clears_before(epoch, loop)
        # a step after the batch loop takes the leftovers itself: not this pattern
        after = epoch.body[epoch.body.index(loop) + 1 :]
        if zero_grad is not None and not any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step" and "optim" in ctx.text(n.func.value).lower()
            for s in after for n in ast.walk(s)
        ):
            yield _CountedWindow(loop, step_if, modulo, counter, zero_grad)


def _counts_across_epochs(ctx: FileContext, counter: str, loop: ast.For, epoch: ast.For) -> bool:
    """``counter += 1`` in the batch loop, and no other binding inside the epoch loop
    (it is set before the epochs start, and never reset)."""
    bindings = ctx.values.bindings(counter, loop)
    if not bindings:
        return False
    inside = [b for b in bindings if any(b.stmt is n for n in ast.walk(epoch))]
    counts = [
        b for b in inside
        if b.how == "aug" and isinstance(b.stmt.op, ast.Add) and isinstance(b.stmt.value, ast.Constant)  # type: ignore[attr-defined]
        and b.stmt.value.value == 1 and any(b.stmt is n for n in _loop_body_nodes(loop))  # type: ignore[attr-defined]
    ]
    return len(counts) == 1 and len(inside) == 1


def _clears_before(epoch: ast.For, loop: ast.For) -> ast.Expr | None:
    """``optimizer.zero_grad()`` (or ``model.zero_grad()``) as a statement of the epoch
    loop's body before the batch loop."""
    for stmt in epoch.body:
        if stmt is loop:
            return None
        if (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
            and stmt.value.func.attr == "zero_grad"
        ):
            return stmt
    return None


@register
class PartialAccumulationWindow(Rule):
    code = "LL104"
    chain = ChainRole.ACCUMULATION_WINDOW
    name = "partial-accumulation-window"
    severity = Severity.WARNING
    triggers = ("%", "accumulate(")
    summary = "Gradient accumulation (loss / accum, a step every accum micro-batches) whose last window of an epoch is partial, or whose windows are misaligned."
    why = (
        "Dividing each micro-batch's loss by accum and stepping on (i + 1) % accum == 0 gives a correct mean only for "
        "whole windows. When the number of batches per epoch is not a multiple of accum, the last k micro-batches "
        "either step at k/accum of the right scale (a forced step on the last batch), or stay in .grad and are added "
        "to the next epoch's first window, whose step is then (accum + k)/accum too large. i % accum == 0 with i "
        "counted from 0 steps after the very first micro-batch, at 1/accum scale, and shifts every window. A window "
        "keyed on a step counter that runs across epochs (global_step % accum == 0) is whole, unless zero_grad() at "
        "the start of every epoch clears what an epoch left in .grad: those micro-batches never train, and the next "
        "epoch's first window steps with fewer, still divided by accum."
    )
    fix_doc = (
        "Divides by the actual length of the window, min(accum, len(loader) - i // accum * accum), and steps on the "
        "last batch of the epoch too; a misaligned test becomes (i + 1) % accum. Safe: every whole window trains "
        "exactly as before. Accumulation steps that are an option (1 by default) are reported as info. accelerate's "
        "accumulate() (which divides by the configured steps and forces a step at the end of the dataloader) is "
        "reported without a fix. A counter that runs across epochs keeps its windows whole once the zero_grad() at the "
        "start of the epoch is removed (unsafe: the micro-batches it cleared now train). Only a division whose result "
        "reaches backward() is taken for loss scaling."
    )
    references = (
        "https://huggingface.co/blog/gradient_accumulation (Fixing Gradient Accumulation, 2024)",
        "Lightning loops/optimization/automatic.py (divides by accumulate_grad_batches, steps on is_last_batch)",
    )
    flagged = (
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            accum_steps = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / accum_steps
                loss.backward()
                if (i + 1) % accum_steps == 0 or (i + 1) == len(train_loader):
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            accum_steps = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / min(accum_steps, len(train_loader) - i // accum_steps * accum_steps)
                loss.backward()
                if (i + 1) % accum_steps == 0 or (i + 1) == len(train_loader):
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            message_contains=("N=1000, B=100 gives 10 batches per epoch", "last window has 2 micro-batches", "0.50x"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for epoch in range(10):
                for step, (x, y) in enumerate(train_loader):
                    loss = criterion(model(x), y)
                    loss = loss / ACCUM
                    loss.backward()
                    if (step + 1) % ACCUM == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for epoch in range(10):
                for step, (x, y) in enumerate(train_loader):
                    loss = criterion(model(x), y)
                    loss = loss / min(ACCUM, len(train_loader) - step // ACCUM * ACCUM)
                    loss.backward()
                    if (step + 1) % ACCUM == 0 or step + 1 == len(train_loader):
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            message_contains=("stay in .grad", "1.50x"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            accum = 5
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / accum
                loss.backward()
                if i % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            accum = 5
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=100, shuffle=True)
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            message_contains=("i % accum == 0", "first micro-batch"),
        ),
        Flagged(
            """
            def train(model, train_dataloader, optimizer, batch_size):
                gradient_accumulation_steps = 1
                if batch_size > 16:
                    gradient_accumulation_steps = batch_size // 16
                for step, batch in enumerate(train_dataloader):
                    loss = model(**batch).loss
                    loss = loss / gradient_accumulation_steps
                    loss.backward()
                    if step % gradient_accumulation_steps == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            fixed="""
            def train(model, train_dataloader, optimizer, batch_size):
                gradient_accumulation_steps = 1
                if batch_size > 16:
                    gradient_accumulation_steps = batch_size // 16
                for step, batch in enumerate(train_dataloader):
                    loss = model(**batch).loss
                    loss = loss / min(gradient_accumulation_steps, len(train_dataloader) - step // gradient_accumulation_steps * gradient_accumulation_steps)
                    loss.backward()
                    if (step + 1) % gradient_accumulation_steps == 0 or step + 1 == len(train_dataloader):
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            unsafe=True,
            message_contains=("whenever gradient_accumulation_steps is above 1", "first micro-batch"),
        ),
        Flagged(
            """
            import argparse
            from accelerate import Accelerator

            parser = argparse.ArgumentParser()
            parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
            args = parser.parse_args()
            accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps)
            for epoch in range(3):
                for batch in train_dataloader:
                    with accelerator.accumulate(model):
                        loss = model(**batch).loss
                        accelerator.backward(loss)
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            fixed=None,
            message_contains=("accelerator.accumulate()", "args.gradient_accumulation_steps (now 1) is above 1"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=100, shuffle=True)
            model = torch.nn.Linear(8, 1)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            global_step = 0
            for epoch in range(10):
                model.train()
                optimizer.zero_grad()
                for x, y in train_loader:
                    loss = torch.nn.functional.mse_loss(model(x), y) / ACCUM
                    loss.backward()
                    global_step += 1
                    if global_step % ACCUM == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=100, shuffle=True)
            model = torch.nn.Linear(8, 1)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            global_step = 0
            for epoch in range(10):
                model.train()
                for x, y in train_loader:
                    loss = torch.nn.functional.mse_loss(model(x), y) / ACCUM
                    loss.backward()
                    global_step += 1
                    if global_step % ACCUM == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            unsafe=True,
            message_contains=("global_step counted across epochs", "last 2 micro-batches of the first epoch", "0.50x"),
        ),
        Flagged(
            """
            import argparse

            parser = argparse.ArgumentParser()
            parser.add_argument("--accum_iter", type=int, default=1)
            args = parser.parse_args()


            def train_one_epoch(model, criterion, data_loader, optimizer, loss_scaler, accum_iter):
                optimizer.zero_grad()
                for data_iter_step, (samples, targets) in enumerate(data_loader):
                    loss = criterion(model(samples), targets)
                    loss /= accum_iter
                    loss_scaler(loss, optimizer, update_grad=(data_iter_step + 1) % accum_iter == 0)
                    if (data_iter_step + 1) % accum_iter == 0:
                        optimizer.zero_grad()


            for epoch in range(args.epochs):
                train_one_epoch(model, criterion, data_loader_train, optimizer, loss_scaler, accum_iter=args.accum_iter)
            """,
            fixed="""
            import argparse

            parser = argparse.ArgumentParser()
            parser.add_argument("--accum_iter", type=int, default=1)
            args = parser.parse_args()


            def train_one_epoch(model, criterion, data_loader, optimizer, loss_scaler, accum_iter):
                optimizer.zero_grad()
                for data_iter_step, (samples, targets) in enumerate(data_loader):
                    loss = criterion(model(samples), targets)
                    loss /= min(accum_iter, len(data_loader) - data_iter_step // accum_iter * accum_iter)
                    loss_scaler(loss, optimizer, update_grad=(data_iter_step + 1) % accum_iter == 0 or data_iter_step + 1 == len(data_loader))
                    if (data_iter_step + 1) % accum_iter == 0 or data_iter_step + 1 == len(data_loader):
                        optimizer.zero_grad()


            for epoch in range(args.epochs):
                train_one_epoch(model, criterion, data_loader_train, optimizer, loss_scaler, accum_iter=args.accum_iter)
            """,
            unsafe=True,
            message_contains=("whenever accum_iter is above 1", "discarded by the zero_grad() at the start of the next epoch"),
        ),
        Flagged(
            """
            def train_one_epoch(config, model, criterion, data_loader, optimizer):
                for idx, (samples, targets) in enumerate(data_loader):
                    loss = criterion(model(samples), targets)
                    loss = loss / config.TRAIN.ACCUMULATION_STEPS
                    loss.backward()
                    if (idx + 1) % config.TRAIN.ACCUMULATION_STEPS == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            fixed="""
            def train_one_epoch(config, model, criterion, data_loader, optimizer):
                for idx, (samples, targets) in enumerate(data_loader):
                    loss = criterion(model(samples), targets)
                    loss = loss / min(config.TRAIN.ACCUMULATION_STEPS, len(data_loader) - idx // config.TRAIN.ACCUMULATION_STEPS * config.TRAIN.ACCUMULATION_STEPS)
                    loss.backward()
                    if (idx + 1) % config.TRAIN.ACCUMULATION_STEPS == 0 or idx + 1 == len(data_loader):
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            unsafe=True,
            message_contains=("whenever config.TRAIN.ACCUMULATION_STEPS is above 1", "stay in .grad"),
        ),
    )
    quiet = (
        Quiet(
            """
            import argparse

            parser = argparse.ArgumentParser()
            parser.add_argument("--update_freq", type=int, default=1)
            args = parser.parse_args()


            def train_one_epoch(model, criterion, data_loader, optimizer, num_training_steps_per_epoch, update_freq):
                optimizer.zero_grad()
                for data_iter_step, (samples, targets) in enumerate(data_loader):
                    step = data_iter_step // update_freq
                    if step >= num_training_steps_per_epoch:
                        continue
                    loss = criterion(model(samples), targets)
                    loss /= update_freq
                    loss.backward()
                    if (data_iter_step + 1) % update_freq == 0:
                        optimizer.step()
                        optimizer.zero_grad()


            for epoch in range(args.epochs):
                train_one_epoch(model, criterion, data_loader_train, optimizer, steps_per_epoch, update_freq=args.update_freq)
            """,
            why="the micro-batches past the last whole window are skipped (i // accum >= whole windows: continue): every "
            "window that trains is whole",
        ),
        Quiet(
            """
            import argparse
            import datetime
            import time

            parser = argparse.ArgumentParser()
            parser.add_argument("--n_critic", type=int, default=5)
            opt = parser.parse_args()
            for epoch in range(opt.n_epochs):
                for i, (imgs, _) in enumerate(dataloader):
                    loss_D = -critic(imgs).mean() + critic(generator(z)).mean()
                    loss_D.backward()
                    optimizer_D.step()
                    if i % opt.n_critic == 0:
                        loss_G = -critic(generator(z)).mean()
                        loss_G.backward()
                        optimizer_G.step()
                        time_left = datetime.timedelta(seconds=batches_left * (time.time() - prev_time) / opt.n_critic)
                        print(time_left)
            """,
            why="a GAN's critic schedule: the division by n_critic is a time estimate, never trained on",
        ),
        Quiet(
            """
            from accelerate import Accelerator
            accelerator = Accelerator(gradient_accumulation_steps=1)
            for batch in train_dataloader:
                with accelerator.accumulate(model):
                    accelerator.backward(model(**batch).loss)
                    optimizer.step()
            """,
            why="one micro-batch per window: no accumulation",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            accum_steps = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1600, 8)), batch_size=100, shuffle=True)
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / accum_steps
                loss.backward()
                if (i + 1) % accum_steps == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            why="16 batches per epoch: every window is whole",
        ),
        Quiet(
            """
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y) / args.gradient_accumulation_steps
                loss.backward()
                if (i + 1) % args.gradient_accumulation_steps == 0:
                    optimizer.step()
            """,
            why="accumulation steps not known, and neither an option nor set for some runs only: nothing to show",
        ),
        Quiet(
            """
            for i, (x, y) in enumerate(train_loader):
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                if (i + 1) % 100 == 0:
                    scheduler.step()
            """,
            why="no accumulation: the loss is not divided by the window",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=100, shuffle=True)
            model = torch.nn.Linear(8, 1)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            global_step = 0
            for epoch in range(10):
                model.train()
                for x, y in train_loader:
                    loss = torch.nn.functional.mse_loss(model(x), y) / ACCUM
                    loss.backward()
                    global_step += 1
                    if global_step % ACCUM == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            why="a step counter that runs across epochs with nothing clearing .grad between steps: every window is whole, "
            "some span two epochs",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            ACCUM = 4
            train_loader = DataLoader(TensorDataset(torch.randn(800, 8), torch.randn(800, 1)), batch_size=100, shuffle=True)
            model = torch.nn.Linear(8, 1)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            global_step = 0
            for epoch in range(10):
                model.train()
                optimizer.zero_grad()
                for x, y in train_loader:
                    loss = torch.nn.functional.mse_loss(model(x), y) / ACCUM
                    loss.backward()
                    global_step += 1
                    if global_step % ACCUM == 0:
                        optimizer.step()
                        optimizer.zero_grad()
            """,
            why="8 batches per epoch, a multiple of ACCUM: every epoch ends on a step, so the zero_grad() clears nothing",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        return on_training_paths(ctx, self._check(ctx))

    def _check(self, ctx: FileContext) -> Iterable[Finding]:
        if "accumulate(" in ctx.source:
            yield from self._accelerate_windows(ctx)
        if "step(" not in ctx.source and "zero_grad" not in ctx.source:
            return
        evaluator = LossEvaluator(ctx, tensor_params=True)
        if "zero_grad" in ctx.source:
            yield from self._global_windows(ctx, evaluator)
        if "enumerate" not in ctx.source:
            return
        for window in _accumulation_windows(ctx):
            accum, configurable = _accumulation_steps(ctx, window.accum_node)
            if not configurable and (accum is None or accum <= 1):
                continue
            divisions = _divisions_by(ctx, window.accum_node, window.loop)
            # Only a division whose result is trained on scales the loss (not a time-left print):
            # handed to backward(), or to the helper that backpropagates it and steps.
            divisions = [
                (n, d) for n, d in divisions
                if not (_numerator(evaluator, n).detached or is_logged_only(ctx, n))
                and (reaches_backward(ctx, n) or _handed_to(ctx, n, window.helper))
            ]
            if not divisions or window.skips_partial_window():
                continue
            finding = self._judge(ctx, window, accum if accum is not None and accum > 1 else None, divisions)
            if finding is not None:
                yield finding

    def _global_windows(self, ctx: FileContext, evaluator: LossEvaluator) -> Iterable[Finding]:
        """Windows keyed on a step counter that runs across epochs (``global_step += 1``,
        ``if global_step % accum == 0: optimizer.step()``) while ``zero_grad()`` at the
        start of every epoch clears what the last window of the previous one left in
        .grad: those micro-batches never train, and the first window of the next epoch
        steps with fewer micro-batches at 1/accum scale. (A counter that spans epochs
        without that ``zero_grad()`` keeps every window whole: quiet.)"""
        for window in _counted_windows(ctx):
            accum, configurable = _accumulation_steps(ctx, window.accum_node)
            if not configurable and (accum is None or accum <= 1):
                continue
            divisions = [
                (n, d) for n, d in _divisions_by(ctx, window.accum_node, window.loop)
                if not (_numerator(evaluator, n).detached or is_logged_only(ctx, n)) and reaches_backward(ctx, n)
            ]
            if not divisions or in_evaluation(ctx, window.loop):
                continue
            batching = training_batching(ctx, window.loop)
            batches = batching.batches_per_epoch if batching is not None else None
            accum_text, counter = ctx.text(window.accum_node), window.counter
            if accum is not None and accum > 1 and batches is not None:
                left = batches % accum
                if left == 0:
                    continue  # every epoch ends on a window's last micro-batch
                numbers = (
                    f"N={batching.n}, B={batching.b} gives {batches} batches per epoch; with {accum_text}={accum} the last "  # type: ignore[union-attr]
                    f"{left} micro-batch{'es' if left != 1 else ''} of the first epoch {'are' if left != 1 else 'is'} cleared "
                    f"before {'they are' if left != 1 else 'it is'} stepped, and the second epoch's first window steps "
                    f"with {accum - left}, at {accum - left}/{accum} = {(accum - left) / accum:.2f}x the scale of a whole "
                    f"window; the windows shift by {left} every epoch, so this recurs whenever an epoch does not end on a step"
                )
                severity = None
            else:
                numbers = (
                    f"whenever the number of batches per epoch is not a multiple of {accum_text}, the last micro-batches "
                    "of every epoch are cleared before they are stepped, and the next epoch's first window steps with "
                    f"fewer, still divided by the full {accum_text}"
                )
                severity = Severity.INFO
            message = (
                f"the loss is divided by {accum_text} and the optimizer steps on `{ctx.text(window.step_if.test)}` with "
                f"{counter} counted across epochs, but `{ctx.text(window.zero_grad)}` at the start of every epoch "
                f"clears .grad between two steps: {numbers}"
            )
            fix = Fix(
                "keep the windows whole across epochs: remove the zero_grad() at the start of the epoch",
                Applicability.UNSAFE,
                (NodeEdit(ctx.span(window.zero_grad), "Expr", lambda n: cst.RemoveFromParent()),),
            )
            yield ctx.finding(self, divisions[0][0], message, fix, severity)

    def _accelerate_windows(self, ctx: FileContext) -> Iterable[Finding]:
        """``with accelerator.accumulate(model):`` in a loop over a loader: accelerate
        divides every loss by the configured steps k and forces a step at the end of
        the dataloader, so a last window of fewer than k batches steps at a fraction."""
        for with_node in ctx.nodes_of(ast.With):
            call = next((
                item.context_expr for item in with_node.items
                if isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Attribute)
                and item.context_expr.func.attr == "accumulate" and isinstance(item.context_expr.func.value, ast.Name)
            ), None)
            if call is None:
                continue
            steps = _accelerator_steps(ctx, call.func.value)  # type: ignore[union-attr]
            if steps is None:
                continue
            accum, configurable = _accumulation_steps(ctx, steps)
            if not configurable and (accum is None or accum <= 1):
                continue
            loops = enclosing_loops(ctx, with_node)
            if not loops or in_evaluation(ctx, with_node):
                continue
            backward = next((
                n for n in ast.walk(with_node)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"
            ), None)
            if backward is None:
                continue
            batching = training_batching(ctx, loops[0])
            batches = batching.batches_per_epoch if batching is not None else None
            steps_text = ctx.text(steps)
            if accum is not None and accum > 1 and batches is not None:
                last = batches % accum
                if last == 0:
                    continue
                numbers = (
                    f"N={batching.n}, B={batching.b} gives {batches} batches per epoch; with {steps_text}={accum} the last "  # type: ignore[union-attr]
                    f"window has {last} micro-batch{'es' if last != 1 else ''}, stepped at {last}/{accum} = {last / accum:.2f}x "
                    "the scale of a whole window"
                )
                severity = None
            else:
                default = f" (now {accum})" if accum is not None else ""
                numbers = (
                    f"when {steps_text}{default} is above 1 and the number of batches per epoch is not a multiple of it, "
                    "the last window of every epoch is stepped at a fraction of the scale of a whole window"
                )
                severity = Severity.INFO
            message = (
                f"gradient accumulation with accelerator.accumulate(): accelerate divides every loss by "
                f"gradient_accumulation_steps={steps_text} and forces a step at the end of the dataloader: {numbers}"
            )
            yield ctx.finding(self, backward, message, None, severity)

    def _judge(self, ctx: FileContext, window: _Window, accum: int | None, divisions: list[tuple[ast.AST, ast.expr]]) -> Finding | None:
        node = divisions[0][0]
        accum_text = ctx.text(window.accum_node)
        test_text = ctx.text(window.test)
        if accum is None:
            return self._judge_unknown(ctx, window, divisions)
        if window.misaligned:
            fix = Fix(f"align the window: ({window.index} + 1) % {accum_text}", Applicability.SAFE, tuple(
                _replace(ctx, modulo.left, f"({window.index} + 1)")
                for modulo in (_modulo_of(gate) for gate in window.gates) if modulo is not None
            ))
            message = (
                f"the loss is divided by {accum_text}={accum} but the optimizer steps on `{test_text}` with {window.index} "
                f"counted from 0: it steps after the first micro-batch of every epoch, at 1/{accum} of the scale of a "
                "whole window, and every later window is shifted by one"
            )
            return ctx.finding(self, node, message, fix)
        if not window.aligned:
            return None
        batching = training_batching(ctx, window.loop)
        batches = batching.batches_per_epoch if batching is not None else None
        if batches is not None and batches % accum == 0:
            return None
        loader_text = ctx.text(window.iterable)
        # len(loader) is only sure to exist for a DataLoader we can see (an iterable
        # dataset's loader may have no __len__): otherwise the fix is for review.
        applicability = Applicability.SAFE if batching is not None and batching.what == "DataLoader" else Applicability.UNSAFE
        divides = tuple(_replace(ctx, d, window.window_length()) for _, d in divisions) if window.sized else ()
        if batches is not None:
            last = batches % accum
            counted = f"N={batching.n}, B={batching.b} gives {batches} batches per epoch" if batching else ""
            numbers = f"{counted}; with {accum_text}={accum} the last window has {last} micro-batch{'es' if last != 1 else ''}"
            severity = None
        else:
            last = None
            numbers = f"unless the number of batches per epoch is a multiple of {accum_text}={accum}, the last window of every epoch is partial"
            severity = Severity.INFO
        if window.forced_last:
            scale = f" ({last}/{accum} = {last / accum:.2f}x the scale of a whole window)" if last else ""
            message = (
                f"the loss is divided by {accum_text} while the optimizer also steps on the last batch of the epoch: "
                f"{numbers}, and it is stepped divided by {accum} all the same{scale}"
            )
            fix = Fix("divide by the actual window length", applicability, divides) if divides else None
            return ctx.finding(self, node, message, fix, severity)
        fix = Fix(
            "step on the last batch too, and divide by the actual window length", applicability,
            (*divides, *window.step_on_last(f"{window.index} + 1 == len({loader_text})")),
        ) if divides else None
        if window.zero_grad_before_epoch():
            message = (
                f"the loss is divided by {accum_text} and the optimizer steps on `{test_text}`: {numbers}, and its "
                "gradients are computed, never stepped, and discarded by the zero_grad() at the start of the next epoch"
            )
            return ctx.finding(self, node, message, fix, Severity.INFO)
        grown = f" ({accum + last}/{accum} = {(accum + last) / accum:.2f}x the scale of a whole window)" if last else ""
        message = (
            f"the loss is divided by {accum_text} and the optimizer steps on `{test_text}`: {numbers}, and its gradients "
            f"stay in .grad and are added to the next epoch's first window, whose step is too large{grown}"
        )
        return ctx.finding(self, node, message, fix, severity)

    def _judge_unknown(self, ctx: FileContext, window: _Window, divisions: list[tuple[ast.AST, ast.expr]]) -> Finding | None:
        """Accumulation steps that are an option (1 by default, or set only for large
        batches): the window is wrong whenever the option is used."""
        node = divisions[0][0]
        accum_text = ctx.text(window.accum_node)
        test_text = ctx.text(window.test)
        if window.misaligned:
            fix = None
            if isinstance(window.test, ast.Compare) and window.test.left is window.modulo and window.sized and len(window.gates) == 1:
                # align the window, step on the last batch too, divide by the actual window length
                batching = training_batching(ctx, window.loop)
                applicability = Applicability.SAFE if batching is not None and batching.what == "DataLoader" else Applicability.UNSAFE
                aligned = f"({window.index} + 1) % {accum_text} == 0 or {window.index} + 1 == len({ctx.text(window.iterable)})"
                fix = Fix("align the window, step on the last batch, divide by the actual window length", applicability, (
                    *(_replace(ctx, d, window.window_length()) for _, d in divisions),
                    NodeEdit(ctx.span(window.test), "BaseExpression", lambda _n: cst.parse_expression(aligned)),
                ))
            message = (
                f"the loss is divided by {accum_text} but the optimizer steps on `{test_text}` with {window.index} counted "
                f"from 0: whenever {accum_text} is above 1 it steps after the first micro-batch of every epoch, at "
                f"1/{accum_text} of the scale of a whole window, every later window is shifted by one, and the last "
                "micro-batches of the epoch are added to the next epoch's first window"
            )
            return ctx.finding(self, node, message, fix, Severity.INFO)
        if not window.aligned or window.forced_last:
            return None if not window.forced_last else self._forced_unknown(ctx, window, divisions)
        batching = training_batching(ctx, window.loop)
        applicability = Applicability.SAFE if batching is not None and batching.what == "DataLoader" else Applicability.UNSAFE
        divides = tuple(_replace(ctx, d, window.window_length()) for _, d in divisions)
        step_on_last = window.step_on_last(f"{window.index} + 1 == len({ctx.text(window.iterable)})")
        if window.zero_grad_before_epoch():
            fate = "its gradients are computed, never stepped, and discarded by the zero_grad() at the start of the next epoch"
        else:
            fate = "its gradients stay in .grad, added to the next epoch's first window, whose step is too large"
        message = (
            f"the loss is divided by {accum_text} and the optimizer steps on `{test_text}`: whenever {accum_text} is above "
            f"1 and the number of batches per epoch is not a multiple of it, the last window of every epoch is partial and {fate}"
        )
        fix = Fix("step on the last batch too, and divide by the actual window length", applicability, (*divides, *step_on_last)) if window.sized else None
        return ctx.finding(self, node, message, fix, Severity.INFO)

    def _forced_unknown(self, ctx: FileContext, window: _Window, divisions: list[tuple[ast.AST, ast.expr]]) -> Finding:
        accum_text = ctx.text(window.accum_node)
        batching = training_batching(ctx, window.loop)
        applicability = Applicability.SAFE if batching is not None and batching.what == "DataLoader" else Applicability.UNSAFE
        divides = tuple(_replace(ctx, d, window.window_length()) for _, d in divisions) if window.sized else ()
        message = (
            f"the loss is divided by {accum_text} while the optimizer also steps on the last batch of the epoch: whenever "
            f"{accum_text} is above 1 and the number of batches per epoch is not a multiple of it, that last window is "
            f"stepped divided by the full {accum_text}, at a fraction of the scale of a whole window"
        )
        fix = Fix("divide by the actual window length", applicability, divides) if divides else None
        return ctx.finding(self, divisions[0][0], message, fix, Severity.INFO)


def _accumulation_steps(ctx: FileContext, node: ast.expr) -> tuple[int | None, bool]:
    """The accumulation steps, and whether they may be above 1 whatever their value
    now: a command-line or config option (``args.gradient_accumulation_steps``, default
    1), or a name set to more than one value (``k = 1``, then ``k = batch_size // 16``
    when the batch is too large)."""
    value = ctx.values.int_value(node)
    current: ast.expr | None = node
    for _ in range(4):
        while isinstance(current, ast.Call) and last_part(ctx.qualname(current.func)) in ("int", "float") and len(current.args) == 1:
            current = current.args[0]  # int(args.gradient_accumulation_steps)
        if isinstance(current, ast.Attribute):
            attr = current.attr
            option = any(attr in facts.argparse_defaults or attr in facts.config_defaults for facts in ctx.project.modules.values())
            # a key of a nested config (yacs' config.TRAIN.ACCUMULATION_STEPS, self.args.accum_steps) is set per run
            root = current.value
            while isinstance(root, ast.Attribute):
                root = root.value
            nested = isinstance(current.value, ast.Attribute) and isinstance(root, ast.Name)
            return value, (option or nested) and not isinstance(current.value, ast.Call)
        if not isinstance(current, ast.Name):
            break
        bindings = ctx.values.bindings(current.id, current)
        if not bindings:
            break
        if len(bindings) > 1:
            # a literal default, and a value computed for some runs: may be above 1
            literals = [b.value.value if isinstance(b.value, ast.Constant) and not b.path else None for b in bindings]
            return value, any(v is None or (isinstance(v, int) and v > 1) for v in literals) and not all(v is None for v in literals)
        binding = bindings[0]
        if binding.how == "param" and isinstance(binding.stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # ``def train_one_epoch(..., update_freq=None)`` called with ``update_freq=args.update_freq``
            return value, _passed_an_option(ctx, binding.stmt, current.id)
        if binding.parameter is not None or binding.path or binding.value is None:
            break
        current = binding.value
    return value, False


def _is_option(ctx: FileContext, text: str) -> bool:
    """``args.accum_iter`` (an argparse or config default of the project), or a key of a
    nested config (``config.TRAIN.ACCUMULATION_STEPS``)."""
    parts = text.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return False
    attr = parts[-1]
    return len(parts) > 2 or any(
        attr in facts.argparse_defaults or attr in facts.config_defaults for facts in ctx.project.modules.values()
    )


def _passed_an_option(ctx: FileContext, function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str) -> bool:
    """Some call of ``function`` (in this file or another) passes ``parameter`` an option."""
    for site in call_sites(ctx, function):
        given = site.arguments.get(parameter)
        if given is not None:
            if _is_option(ctx, ctx.text(given)):
                return True
        elif parameter in site.passed and _is_option(ctx, site.passed[parameter].text):
            return True
    return False


def _handed_to(ctx: FileContext, node: ast.AST, helper: ast.Call | None) -> bool:
    """The name a division assigns (``loss /= accum``, ``loss = loss / accum``) is an
    argument of ``helper``, the call that backpropagates it and steps."""
    if helper is None:
        return False
    if isinstance(node, ast.AugAssign):
        target = node.target
    else:
        parent = ctx.parents.get(node)
        target = parent.targets[0] if isinstance(parent, ast.Assign) and len(parent.targets) == 1 else None
    if not isinstance(target, ast.Name):
        return False
    passed = [*helper.args, *(kw.value for kw in helper.keywords)]
    return any(isinstance(a, ast.Name) and a.id == target.id for a in passed)


def _accelerator_steps(ctx: FileContext, accelerator: ast.Name) -> ast.expr | None:
    """``gradient_accumulation_steps=...`` of the ``Accelerator(...)`` a name was built from."""
    value = ctx.values.resolve_name(accelerator)
    if isinstance(value, ast.Call) and last_part(ctx.qualname(value.func)) == "Accelerator":
        given = keyword(value, "gradient_accumulation_steps")
        return given.value if given is not None else None
    return None


def _replace_test(ctx: FileContext, test: ast.expr, extra: str) -> NodeEdit:
    """``if <test>:`` -> ``if <test> or <extra>:``."""

    def edit(node: cst.BaseExpression) -> cst.BaseExpression:
        left = node
        if isinstance(node, (cst.BooleanOperation, cst.IfExp, cst.Lambda, cst.NamedExpr)) and not node.lpar:
            left = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return cst.BooleanOperation(left=left, operator=cst.Or(), right=cst.parse_expression(extra))

    return NodeEdit(ctx.span(test), "BaseExpression", edit)
