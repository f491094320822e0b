"""LL206: hand-written batch generators and Keras Sequences whose last batch of a
pass over the data is short.

Three shapes of the same thing, found in training code:

- a generator that walks the data in steps of the batch size and yields the slice
  ``X[i:i + bs]`` for ``i in range(0, len(X), bs)`` (the last slice is short);
- the while-loop style of ssd_keras's DataGenerator: ``batch = X[current:current +
  batch_size]; current += batch_size``, rewinding only once ``current >= len(X)``,
  that is after the short slice has been yielded;
- a ``keras.utils.Sequence`` / ``PyDataset`` whose ``__len__`` rounds up
  (``math.ceil(len(x) / batch_size)``, the Keras docs' example), so its last
  ``__getitem__`` slice is short.

A fourth: a torch batch sampler that cuts its indices into bins of the batch size
once (``[ids[i:i + bs] for i in range(0, len(ids), bs)]``) and yields them; its
fix is unsafe, as the bins are fixed and the same ids would be left out of every
epoch. And a training call, in another file, of a project class's generator method
with a short last batch is reported where it chooses the batch size.

Quiet: generators that wrap around (modulo indexing, rewinding before a short
slice), that yield only full batches (``range(0, len(X) - bs + 1, bs)``,
``len(x) // bs``), that serve evaluation, and generators with no sign of
training (plain chunking utilities: no shuffle, no train name, not given to
``fit``). Fixes trim the range, rewind before a short slice, or round ``__len__``
down; all safe (every full batch is the same as before).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from losslint.analysis.batching import is_partial, known_sizes
from losslint.analysis.names import argument, last_part
from losslint.analysis.roles import Role, bound_name, words_role
from losslint.analysis.sizes import sample_count
from losslint.context import FileContext
from losslint.findings import Applicability, Finding, Fix, NodeEdit, Severity, cst
from losslint.project import ModuleFacts, ProjectFacts, collector, family_fact
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.partial_batch_common import describe_last_batch, unless_shuffled, unshuffled_note

_SHUFFLERS = {"shuffle", "permutation", "randperm", "permuted", "sample"}
_TRAINING_CALLS = {"fit", "fit_generator", "train_on_batch", "backward", "apply_gradients", "step"}


# -- small expression helpers ----------------------------------------------------


def _same(ctx: FileContext, a: ast.AST | None, b: ast.AST | None) -> bool:
    """The same expression, as written (a loop's Store target equals its Load uses)."""
    return a is not None and b is not None and type(a) is type(b) and ast.unparse(a) == ast.unparse(b)


def _is_sum_of(ctx: FileContext, node: ast.expr, a: ast.expr, b: ast.expr) -> bool:
    """``a + b`` or ``b + a``."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and (
        (_same(ctx, node.left, a) and _same(ctx, node.right, b)) or (_same(ctx, node.left, b) and _same(ctx, node.right, a))
    )


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a function or loop, not those of functions or classes nested in it."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _yields(node: ast.AST) -> bool:
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(node))


def _parenthesized(ctx: FileContext, node: ast.expr) -> str:
    text = ctx.text(node)
    if isinstance(node, (ast.BinOp, ast.BoolOp, ast.IfExp, ast.Compare, ast.Lambda, ast.UnaryOp)):
        return f"({text})"
    return text


def _unfloat(node: ast.expr) -> ast.expr:
    """``float(bs)`` -> ``bs`` (written to force true division in Python 2)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float" and len(node.args) == 1:
        return node.args[0]
    return node


def ceil_division(ctx: FileContext, node: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """(numerator, denominator) of a division rounded up: ``math.ceil(a / b)``,
    ``int(np.ceil(a / float(b)))``, ``(a + b - 1) // b``, ``-(-a // b)``, ``a // b + 1``,
    ``a // b + (a % b > 0)``."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        name = last_part(ctx.qualname(node.func))
        inner = node.args[0]
        if name == "int":
            return ceil_division(ctx, inner)
        if name == "ceil" and isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Div):
            return inner.left, _unfloat(inner.right)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
        top, b = node.left, node.right
        # (a + b - 1) // b, (a + (b - 1)) // b
        if isinstance(top, ast.BinOp) and isinstance(top.op, ast.Sub) and isinstance(top.right, ast.Constant) and top.right.value == 1:
            if isinstance(top.left, ast.BinOp) and isinstance(top.left.op, ast.Add) and _same(ctx, top.left.right, b):
                return top.left.left, b
        if isinstance(top, ast.BinOp) and isinstance(top.op, ast.Add) and isinstance(top.right, ast.BinOp):
            minus_one = top.right
            if isinstance(minus_one.op, ast.Sub) and _same(ctx, minus_one.left, b):
                return top.left, b
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = node.operand
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.FloorDiv) and isinstance(inner.left, ast.UnaryOp):
            if isinstance(inner.left.op, ast.USub):
                return inner.left.operand, inner.right
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.left, ast.BinOp):
        floor = node.left
        if isinstance(floor.op, ast.FloorDiv):
            extra = node.right
            if isinstance(extra, ast.Constant) and extra.value == 1:
                return floor.left, floor.right
            if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) for n in ast.walk(extra)):
                return floor.left, floor.right
    return None


def _floor_text(ctx: FileContext, numerator: ast.expr, denominator: ast.expr) -> str:
    return f"{_parenthesized(ctx, numerator)} // {_parenthesized(ctx, denominator)}"


def _replace_expression(ctx: FileContext, node: ast.expr, code: str, description: str) -> Fix:
    return Fix(description, Applicability.SAFE, (NodeEdit(ctx.span(node), "BaseExpression", lambda _old: cst.parse_expression(code)),))


def _samples(ctx: FileContext, node: ast.expr) -> int | None:
    """N from ``len(X)`` or a number."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1:
        return sample_count(ctx, node.args[0])
    return ctx.values.int_value(node)


# -- is it a training generator? ---------------------------------------------------


def _used_for_training(ctx: FileContext, name: str) -> bool:
    """A call of ``name`` given to fit/fit_generator, or iterated by a loop that
    trains (backward, step, train_on_batch, apply_gradients)."""
    def calls_it(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Name):
            binding = ctx.values.binding_before(node)
            node = binding.value if binding is not None and not binding.path else None
        return isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )

    for node in ctx.nodes_of(ast.Call, ast.For):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("fit", "fit_generator"):
                first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in ("x", "generator")), None)
                if calls_it(first):
                    return True
        elif calls_it(node.iter) or (isinstance(node.iter, ast.Call) and any(calls_it(a) for a in node.iter.args)):
            if any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _TRAINING_CALLS
                for n in ast.walk(node)
            ):
                return True
    return False


def generator_role(ctx: FileContext, function: ast.FunctionDef) -> Role:
    """TRAIN: a train name (the function, or the class it is a method of), a shuffle
    in the function itself, a ``shuffle`` parameter, or a use that trains. EVAL: an
    evaluation name. The evidence is the generator's own: a chunking helper nested
    in a class that shuffles elsewhere is not a training generator."""
    owner = ctx.parents.get(function)
    for name in (function.name, owner.name if isinstance(owner, ast.ClassDef) else ""):
        role = words_role(name)
        if role is not Role.UNKNOWN:
            return role
    if any(a.arg == "shuffle" for a in [*function.args.args, *function.args.kwonlyargs]):
        return Role.TRAIN
    for node in _own_nodes(function):
        if isinstance(node, ast.Call) and last_part(ctx.qualname(node.func)) in _SHUFFLERS:
            return Role.TRAIN
    if _used_for_training(ctx, function.name):
        return Role.TRAIN
    return Role.UNKNOWN


# -- the three shapes ------------------------------------------------------------------


@dataclass
class ShortLastBatch:
    node: ast.AST  # where the finding points
    what: str  # the code that yields the short batch, in words
    n: int | None
    b: int | None
    fix: Fix | None
    shuffled: bool = True  # the data is reshuffled between passes: the samples left out differ
    batch_name: str | None = None  # the name that gives the batch size (a parameter, for callers)
    keeps_unshuffled: bool = False  # the fix changes only shuffled passes (evaluation keeps every sample)


def _name_of(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _slice_at(loop: ast.AST, lower_ok, upper_ok) -> ast.Slice | None:
    """The first such slice in the code (the one a reader meets first)."""
    for node in sorted((n for n in _own_nodes(loop) if isinstance(n, ast.Subscript)), key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Tuple) and key.elts:
                key = key.elts[0]
            if isinstance(key, ast.Slice) and key.step is None and key.lower is not None and key.upper is not None:
                if lower_ok(key.lower) and upper_ok(key.upper):
                    return key
    return None


def _upper_is(ctx: FileContext, loop: ast.AST, upper: ast.expr, index: ast.expr, step: ast.expr) -> bool:
    """``i + bs``, ``min(i + bs, n)``, or a name the loop binds to one of these."""
    if isinstance(upper, ast.Name):
        for node in _own_nodes(loop):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == upper.id for t in node.targets):
                upper = node.value
                break
    if isinstance(upper, ast.Call) and isinstance(upper.func, ast.Name) and upper.func.id == "min":
        return any(_is_sum_of(ctx, a, index, step) for a in upper.args)
    return _is_sum_of(ctx, upper, index, step)


def _skips_short(ctx: FileContext, loop: ast.AST, size: ast.expr) -> bool:
    """The loop leaves a short batch out before yielding it: ``if len(batch) < bs:
    continue`` (or ``!= bs``, ``break``, ``return``)."""
    for node in _own_nodes(loop):
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1):
            continue
        left, op, right = node.test.left, node.test.ops[0], node.test.comparators[0]
        if isinstance(op, (ast.Gt, ast.NotEq)) and _same(ctx, left, size):
            left, right = right, left  # bs > len(batch)
        elif not isinstance(op, (ast.Lt, ast.NotEq)):
            continue
        measured = isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len"
        if measured and _same(ctx, right, size) and any(isinstance(n, (ast.Continue, ast.Break, ast.Return)) for n in node.body):
            return True
    return False


def _divides(ctx: FileContext, step: ast.expr, stop: ast.expr) -> bool:
    """The batch is a share of the whole: ``minibatch_size = batch_size // num_minibatches``
    (PPO's minibatches of a rollout), chosen to divide it."""
    wanted = ctx.text(step)
    for node in ctx.nodes_of(ast.Assign):
        if any(ctx.text(t) == wanted for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "int" and value.args:
                value = value.args[0]
            if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.FloorDiv, ast.Div)) and _same(ctx, value.left, stop):
                return True
            if isinstance(value, ast.Call) and "div" in ctx.text(value.func).lower() and value.args and _same(ctx, value.args[0], stop):
                return True  # exact_div(local_batch_size, num_mini_batches)
    return False


def _subtracts(ctx: FileContext, stop: ast.expr, step: ast.expr) -> bool:
    """``len(X) - bs + 1``, ``n - bs``, ``n // bs * bs``: a stop that leaves only full batches."""
    for node in ast.walk(stop):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _same(ctx, node.right, step):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.BinOp):
            if isinstance(node.left.op, ast.FloorDiv) and _same(ctx, node.left.right, step):
                return True
    return False


def _range_loops(ctx: FileContext, function: ast.FunctionDef) -> Iterable[ShortLastBatch]:
    for loop in _own_nodes(function):
        if isinstance(loop, ast.For) and _yields(loop):
            yield from _range_loop(ctx, loop, function)


def _trains(loop: ast.For) -> bool:
    """The loop's body takes an optimizer step per slice: step(), fit/train_on_batch,
    minimize/apply_gradients, or a TF1 ``sess.run(train_op, ...)`` (a backward() alone
    accumulates micro-batches into one step)."""
    for node in _own_nodes(loop):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _TRAINING_CALLS - {"backward"} or node.func.attr == "minimize":
                return True
            if node.func.attr == "run" and node.args and any(
                word in ast.unparse(node.args[0]).lower() for word in ("train", "optim", "minimize", "update")
            ):
                return True
    return False


def training_loops(ctx: FileContext) -> Iterable[ShortLastBatch]:
    """A training loop that slices its own batches (``for i in range(0, len(X), bs):
    X[perm[i:i + bs]]`` then a step): the same short last slice as a generator's."""
    for loop in ctx.nodes_of(ast.For):
        if not (isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "range"):
            continue
        stop = loop.iter.args[1] if len(loop.iter.args) == 3 else None
        if stop is not None and "batch" in ctx.text(stop).lower():
            continue  # a batch split into micro-batches (range(0, batch.shape[0], microbatch)), not a pass over the data
        if _trains(loop):
            # a loop that trains serves no evaluation pass: no caller's choice to keep
            shortened = list(_range_loop(ctx, loop, None, "training loop", "slices"))
            function = ctx.enclosing(loop, ast.FunctionDef, ast.AsyncFunctionDef)
            if shortened:
                scope = function if function is not None else ctx.tree
                shuffled = any(isinstance(n, ast.Call) and last_part(ctx.qualname(n.func)) in _SHUFFLERS for n in _own_nodes(scope))
                for short in shortened:
                    short.shuffled = shuffled
                    yield short


def _range_loop(
    ctx: FileContext, loop: ast.For, function: ast.FunctionDef | ast.AsyncFunctionDef | None,
    kind: str = "training batch generator", verb: str = "yields slices",
) -> Iterable[ShortLastBatch]:
    if not (isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call)):
        return
    if not (isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "range"):
        return
    index, args = loop.target, loop.iter.args
    if len(args) == 3:
        start, stop, step = args
        found = _slice_at(loop, lambda lo: _same(ctx, lo, index), lambda up: _upper_is(ctx, loop, up, index, step))
        if found is None or _subtracts(ctx, stop, step) or _skips_short(ctx, loop, step) or _divides(ctx, step, stop):
            return
        n, b, first = _samples(ctx, stop), ctx.values.int_value(step), ctx.values.int_value(start)
        if n is not None and first is not None:
            n -= first
        if n is not None and b is not None and b > 0 and (n % b == 0 or n < b):
            return
        code = f"{_parenthesized(ctx, stop)} - {_parenthesized(ctx, step)} + 1"
        what = (
            f"{kind}: for {index.id} in range({ctx.text(start)}, {ctx.text(stop)}, {ctx.text(step)}) "
            f"{verb} [{ctx.text(found.lower)}:{ctx.text(found.upper)}], and the last one of each pass is short"
        )
        if function is not None and _callers_choose(function):
            # Only shuffled passes stop early: the same generator's unshuffled
            # (evaluation) passes still reach every sample.
            gated = f"{code} if shuffle else {ctx.text(stop)}"
            fix = _replace_expression(ctx, stop, gated, "stop the range at the last full batch when shuffling")
            yield ShortLastBatch(loop.iter, what, n, b, fix, batch_name=_name_of(step), keeps_unshuffled=True)
            return
        fix = _replace_expression(ctx, stop, code, "stop the range at the last full batch")
        yield ShortLastBatch(loop.iter, what, n, b, fix, batch_name=_name_of(step))
    elif len(args) == 1:
        yield from _counted_loop(ctx, loop, index, args[0], kind)


def _counted_loop(ctx: FileContext, loop: ast.For, index: ast.Name, count: ast.expr, kind: str = "training batch generator") -> Iterable[ShortLastBatch]:
    """``for i in range(n_batches): X[i * bs:(i + 1) * bs]`` with n_batches rounded up."""
    def lower_ok(lower: ast.expr) -> bool:
        return isinstance(lower, ast.BinOp) and isinstance(lower.op, ast.Mult) and (
            _same(ctx, lower.left, index) or _same(ctx, lower.right, index)
        )

    def upper_ok(upper: ast.expr) -> bool:
        return isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Mult) and any(
            isinstance(side, ast.BinOp) and _is_sum_of(ctx, side, index, ast.Constant(1)) for side in (upper.left, upper.right)
        )

    if _slice_at(loop, lower_ok, upper_ok) is None:
        return
    expression = count
    if isinstance(count, ast.Name):
        binding = ctx.values.binding_before(count)
        if binding is None or binding.value is None or binding.path:
            return
        expression = binding.value
    division = ceil_division(ctx, expression)
    if division is None:
        return
    numerator, denominator = division
    n, b = _samples(ctx, numerator), ctx.values.int_value(denominator)
    if n is not None and b is not None and b > 0 and (n % b == 0 or n < b):
        return
    fix = _replace_expression(ctx, expression, _floor_text(ctx, numerator, denominator), "count full batches only")
    what = (
        f"{kind}: {ctx.text(count)} = {ctx.text(expression)} rounds the number of batches up, so "
        "the last slice of each pass is short"
    ) if expression is not count else (
        f"{kind}: range({ctx.text(count)}) rounds the number of batches up, so the last slice of "
        "each pass is short"
    )
    yield ShortLastBatch(expression, what, n, b, fix)


def _while_loops(ctx: FileContext, function: ast.FunctionDef) -> Iterable[ShortLastBatch]:
    """ssd_keras's style: slice [current:current + bs], then ``current += bs``."""
    for loop in _own_nodes(function):
        if not isinstance(loop, ast.While) or not _yields(loop):
            continue
        for step in _own_nodes(loop):
            if not (isinstance(step, ast.AugAssign) and isinstance(step.op, ast.Add) and isinstance(step.target, ast.Name)):
                continue
            cursor = ast.Name(id=step.target.id, ctx=ast.Load())
            size = step.value
            found = _slice_at(loop, lambda lo: _same(ctx, lo, cursor), lambda up: _upper_is(ctx, loop, up, cursor, size))
            if found is None:
                continue
            tests = [loop.test] + [n.test for n in _own_nodes(loop) if isinstance(n, ast.If)]
            if any(_guards_full_batch(ctx, t, cursor, size) for t in tests) or _skips_short(ctx, loop, size):
                break  # rewinds (or stops) before a short slice
            yield _while_finding(ctx, loop, cursor, size, found, bool(_callers_choose(function)))
            break


def _full_test(ctx: FileContext, test: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """``len(batch) == bs`` (or ``>= bs``): (the batch, bs)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.GtE))):
        return None
    left, right = test.left, test.comparators[0]
    if isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len" and len(left.args) == 1:
        return left.args[0], right
    return None


def _accumulating(ctx: FileContext, function: ast.FunctionDef) -> Iterable[ShortLastBatch]:
    """Generators that fill a list and yield it when full *or* at the end of the data:
    ``if len(batch) == bs or i == len(samples) - 1: yield batch`` (the end yields what
    is left), or a loop that yields full lists and, after it, ``if batch: yield batch``."""
    for node in _own_nodes(function):
        if not isinstance(node, ast.If) or not _yields(node):
            continue
        if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.Or):
            full = next((v for v in node.test.values if _full_test(ctx, v)), None)
            if full is None:
                continue
            _, size = _full_test(ctx, full)  # type: ignore[misc]
            fix = _replace_expression(ctx, node.test, ctx.text(full), "yield full batches only")
            what = (
                f"training batch generator: yields when {ctx.text(node.test)}, so the end of the data yields "
                "the short rest of each pass"
            )
            yield ShortLastBatch(node.test, what, None, ctx.values.int_value(size), fix, batch_name=_name_of(size))
        elif (found := _full_test(ctx, node.test)) is not None:
            batch, size = found
            loop = ctx.parents.get(node)
            while loop is not None and not isinstance(loop, (ast.For, ast.While)) and loop is not function:
                loop = ctx.parents.get(loop)
            body = getattr(ctx.parents.get(loop), "body", []) if isinstance(loop, (ast.For, ast.While)) else []
            after = body[body.index(loop) + 1:] if loop in body else []
            for rest in after:
                if isinstance(rest, ast.If) and _yields(rest) and _same(ctx, _tested(rest.test), batch):
                    what = (
                        f"training batch generator: yields full batches at {ctx.text(node.test)}, then the rest "
                        f"after the loop (line {rest.lineno}): the last batch of each pass is short"
                    )
                    yield ShortLastBatch(rest.test, what, None, ctx.values.int_value(size), None, batch_name=_name_of(size))


def _tested(test: ast.expr) -> ast.expr | None:
    """``if batch:`` / ``if len(batch) > 0:`` / ``if len(batch):`` -> batch."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        test = test.left
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "len" and len(test.args) == 1:
        return test.args[0]
    return test


def _guards_full_batch(ctx: FileContext, test: ast.expr, cursor: ast.expr, size: ast.expr) -> bool:
    return any(_is_sum_of(ctx, n, cursor, size) for n in ast.walk(test)) or _subtracts(ctx, test, size)


def _while_finding(
    ctx: FileContext, loop: ast.While, cursor: ast.Name, size: ast.expr, found: ast.Slice, shuffle_parameter: bool = False
) -> ShortLastBatch:
    """With a ``shuffle`` parameter the rewind moves only for shuffled passes
    (``if current >= n or shuffle and current + bs > n:``): the same generator's
    unshuffled evaluation passes still reach every sample."""
    c, bs = cursor.id, _parenthesized(ctx, size)
    b = ctx.values.int_value(size)
    what = (
        f"training batch generator: yields slices [{ctx.text(found.lower)}:{ctx.text(found.upper)}] (line "
        f"{found.lower.lineno}) with {c} += {ctx.text(size)}"
    )
    # The rewind (or stop) test: `if c >= n:` -> `if c + bs > n:`; `while c < n:` -> `while c + bs <= n:`.
    for node in [n for n in _own_nodes(loop) if isinstance(n, ast.If)] + [loop]:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            continue
        op, left, right = test.ops[0], test.left, test.comparators[0]
        if isinstance(left, ast.Name) and left.id == c and isinstance(op, (ast.GtE, ast.Eq)) and node is not loop:
            limit = right
            code = f"{c} + {bs} > {ctx.text(right)}"
        elif isinstance(right, ast.Name) and right.id == c and isinstance(op, ast.LtE) and node is not loop:
            limit = left
            code = f"{c} + {bs} > {ctx.text(left)}"
        elif isinstance(left, ast.Name) and left.id == c and isinstance(op, ast.Lt) and node is loop:
            limit = right
            code = f"{c} + {bs} <= {ctx.text(right)}"
        else:
            continue
        what += f" and rewinds only at {ctx.text(test)}, after the short last slice of the pass"
        if shuffle_parameter and node is not loop:
            gated = f"{ctx.text(test)} or shuffle and {code}"
            fix = _replace_expression(ctx, test, gated, "rewind before a short slice when shuffling")
            return ShortLastBatch(test, what, _samples(ctx, limit), b, fix, batch_name=_name_of(size), keeps_unshuffled=True)
        fix = _replace_expression(ctx, test, code, "rewind before a short slice")
        return ShortLastBatch(test, what, _samples(ctx, limit), b, fix, batch_name=_name_of(size))
    return ShortLastBatch(found.upper, what + "; the last slice of each pass is short", None, b, None, batch_name=_name_of(size))


def _keras_sequence(ctx: FileContext, cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        qual = ctx.qualname(base) or ""
        if last_part(qual) in ("Sequence", "PyDataset") and ("keras" in qual or "tensorflow" in qual):
            return True
    return False


def _sequence_len(ctx: FileContext, cls: ast.ClassDef) -> Iterable[ShortLastBatch]:
    methods = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
    length = methods.get("__len__")
    if length is None:
        return
    getitem = methods.get("__getitem__")
    if getitem is not None and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) for n in ast.walk(getitem)):
        return  # __getitem__ wraps around: the last batch is filled from the start
    returns = [n for n in _own_nodes(length) if isinstance(n, ast.Return) and n.value is not None]
    if len(returns) != 1:
        return
    division = ceil_division(ctx, returns[0].value)
    per_bucket = _summed_ceil(ctx, returns[0].value) if _torch_sampler(ctx, cls) else None
    if per_bucket is not None:
        what = (
            f"batch sampler {cls.name}.__len__ counts ceil(len / B) batches per bucket ({ctx.text(returns[0].value)}): "
            "every bucket ends with a short batch, several per epoch"
        )
        yield ShortLastBatch(returns[0].value, what, None, ctx.values.int_value(per_bucket[1]), None, batch_name=_name_of(per_bucket[1]))
        return
    if division is None:
        return
    numerator, denominator = division
    n, b = _samples(ctx, numerator), ctx.values.int_value(denominator)
    if n is not None and b is not None and b > 0 and (n % b == 0 or n < b):
        return
    value = returns[0].value
    fix = _replace_expression(ctx, value, _floor_text(ctx, numerator, denominator), "count full batches only")
    if _torch_sampler(ctx, cls):
        # A batch sampler's __len__ only reports what __iter__ yields: rounding it down
        # would change nothing, so no fix here.
        what = f"batch sampler {cls.name}.__len__ rounds up ({ctx.text(value)}): the last batch of every epoch is short"
        yield ShortLastBatch(value, what, n, b, None, batch_name=_name_of(denominator))
        return
    what = (
        f"Keras {cls.name}.__len__ rounds up ({ctx.text(value)}), so the last batch of every epoch (its last "
        "__getitem__) is short"
    )
    yield ShortLastBatch(value, what, n, b, fix)


def short_last_batches(ctx: FileContext) -> Iterable[ShortLastBatch]:
    # The functions that yield (as _yields tells, found from the yields: one walk up
    # from each yield instead of a walk down every function of the file).
    generators = {
        ctx.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
        for node in (*ctx.nodes_of(ast.Yield), *ctx.nodes_of(ast.YieldFrom))
    }
    for function in ctx.nodes_of(ast.FunctionDef):
        if function not in generators:
            continue
        candidates = [*_range_loops(ctx, function), *_while_loops(ctx, function), *_accumulating(ctx, function)]
        if candidates and generator_role(ctx, function) is Role.TRAIN:
            shuffled = _shuffles(ctx, function)
            unfixable = _callers_choose(function) or _counted_by_len(ctx, function)
            for candidate in candidates:
                candidate.shuffled = shuffled
                if unfixable and not candidate.keeps_unshuffled:
                    candidate.fix = None
                    candidate.what += f" ({unfixable}: no fix here)"
                yield candidate
    yield from training_loops(ctx)
    for cls in ctx.nodes_of(ast.ClassDef):
        if _keras_sequence(ctx, cls) and words_role(cls.name) is not Role.EVAL:
            # A shuffle the constructor lets callers turn off (``Iterator(n, batch_size,
            # shuffle, seed)``) does not say that this Sequence only trains.
            shuffled = any(
                isinstance(n, ast.Call) and last_part(ctx.qualname(n.func)) in _SHUFFLERS for n in ast.walk(cls)
            ) and not _shuffle_optional(ctx, cls)
            for short in _sequence_len(ctx, cls):
                if not shuffled and words_role(cls.name) is not Role.TRAIN:
                    # Nothing says it only trains: the same Sequence may serve predict() and
                    # evaluate(), which need every sample. A finding, no fix.
                    short.fix = None
                short.shuffled = shuffled
                yield short
        if _torch_sampler(ctx, cls):
            shuffled = any(isinstance(n, ast.Call) and last_part(ctx.qualname(n.func)) in _SHUFFLERS for n in ast.walk(cls))
            role = words_role(cls.name)
            if role is Role.TRAIN or (role is Role.UNKNOWN and shuffled):
                bins = list(_sampler_bins(ctx, cls))
                yields_batches = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(cls))
                for short in bins or (list(_sequence_len(ctx, cls)) if yields_batches and _batch_sampler(ctx, cls) else []):
                    short.shuffled = shuffled
                    yield short


_SAMPLER_BASES = {"Sampler", "BatchSampler", "DistributedSampler", "RandomSampler"}


def _torch_sampler(ctx: FileContext, cls: ast.ClassDef) -> bool:
    return any(
        last_part(ctx.qualname(base) or "") in _SAMPLER_BASES and "torch" in (ctx.qualname(base) or "") for base in cls.bases
    )


def _summed_ceil(ctx: FileContext, value: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """``sum(math.ceil(len(b) / bs) for b in self.buckets)``: batches of each bucket
    rounded up."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "sum" and len(value.args) == 1):
        return None
    inner = value.args[0]
    if not isinstance(inner, (ast.GeneratorExp, ast.ListComp)):
        return None
    return ceil_division(ctx, inner.elt)


def _batch_sampler(ctx: FileContext, cls: ast.ClassDef) -> bool:
    """Its __iter__ yields lists of indices (a batch sampler), not single indices."""
    iterate = next((m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__iter__"), None)
    return iterate is not None and any(
        isinstance(n, ast.Yield) and n.value is not None and not isinstance(n.value, (ast.Constant, ast.Name))
        or isinstance(n, ast.Yield) and isinstance(n.value, ast.Name) and "batch" in n.value.id
        for n in ast.walk(iterate)
    )


def _sampler_bins(ctx: FileContext, cls: ast.ClassDef) -> Iterable[ShortLastBatch]:
    """A batch sampler that cuts the indices into bins of the batch size,
    ``[ids[i:i + bs] for i in range(0, len(ids), bs)]``, and yields them: the last
    bin is short (deepspeech.pytorch's DSRandomSampler shuffles the bins, so the short
    one lands somewhere in every epoch)."""
    for comp in (n for n in ast.walk(cls) if isinstance(n, ast.ListComp)):
        if len(comp.generators) != 1 or comp.generators[0].ifs or not isinstance(comp.elt, ast.Subscript):
            continue
        loop = comp.generators[0]
        if not (isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name)):
            continue
        if loop.iter.func.id != "range" or len(loop.iter.args) != 3:
            continue
        index, (start, stop, step) = loop.target, loop.iter.args
        key = comp.elt.slice
        if not (isinstance(key, ast.Slice) and key.step is None and _same(ctx, key.lower, index)):
            continue
        if key.upper is None or not _upper_is(ctx, comp, key.upper, index, step) or _subtracts(ctx, stop, step):
            continue
        n, b, first = _samples(ctx, stop), ctx.values.int_value(step), ctx.values.int_value(start)
        if n is not None and first is not None:
            n -= first
        if n is not None and b is not None and b > 0 and (n % b == 0 or n < b):
            continue
        code = f"{_parenthesized(ctx, stop)} - {_parenthesized(ctx, step)} + 1"
        # The bins are cut once: shuffling their order leaves the same ids in the dropped
        # remainder every epoch, so the fix is unsafe whatever shuffles.
        safe = _replace_expression(ctx, stop, code, "bin full batches only (the same last ids are left out of every epoch)")
        fix = Fix(safe.description, Applicability.UNSAFE, safe.edits)
        what = (
            f"training batch sampler {cls.name}: bins [{ctx.text(key.lower)}:{ctx.text(key.upper)}] for {index.id} in "
            f"range({ctx.text(start)}, {ctx.text(stop)}, {ctx.text(step)}), and the last bin is short"
        )
        yield ShortLastBatch(loop.iter, what, n, b, fix, batch_name=_name_of(step))


def _callers_choose(function: ast.FunctionDef) -> str:
    """A generator with a ``shuffle`` parameter serves whoever calls it: ssd_keras's
    ``generate(batch_size, shuffle=False)`` also feeds evaluation, which needs every
    sample; changing it would cut the evaluation passes too."""
    every = function.args
    if any(a.arg == "shuffle" for a in [*every.posonlyargs, *every.args, *every.kwonlyargs]):
        return f"{function.name}() takes shuffle, so its callers may also use it unshuffled, for evaluation"
    return ""


def _counted_by_len(ctx: FileContext, function: ast.FunctionDef) -> str:
    """A method of a class with its own ``__len__`` (a batch sampler's ``__iter__``): the
    batches it yields and the count ``__len__`` reports must change together."""
    owner = ctx.parents.get(function)
    if isinstance(owner, ast.ClassDef) and any(isinstance(m, ast.FunctionDef) and m.name == "__len__" for m in owner.body):
        return f"{owner.name}.__len__ reports the number of batches and would have to change with it"
    return ""


def _shuffle_optional(ctx: FileContext, cls: ast.ClassDef) -> bool:
    """``__init__(self, ..., shuffle, ...)`` without a default of True: callers decide."""
    init = next((m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
    if init is None:
        return False
    every = init.args
    positional = [*every.posonlyargs, *every.args]
    defaults = dict(zip([a.arg for a in positional][len(positional) - len(every.defaults):], every.defaults))
    defaults.update({a.arg: d for a, d in zip(every.kwonlyargs, every.kw_defaults) if d is not None})
    names = {a.arg for a in [*positional, *every.kwonlyargs]}
    return "shuffle" in names and not ("shuffle" in defaults and ctx.values.value(defaults["shuffle"]) is True)


def _shuffles(ctx: FileContext, function: ast.FunctionDef) -> bool:
    """A shuffle in the generator, or a shuffle parameter that defaults to True."""
    if any(isinstance(n, ast.Call) and last_part(ctx.qualname(n.func)) in _SHUFFLERS for n in _own_nodes(function)):
        return True
    every = function.args
    positional = [*every.posonlyargs, *every.args]
    defaults = dict(zip([a.arg for a in positional][len(positional) - len(every.defaults):], every.defaults))
    defaults.update({a.arg: d for a, d in zip(every.kwonlyargs, every.kw_defaults) if d is not None})
    return "shuffle" in defaults and ctx.values.value(defaults["shuffle"]) is True


# -- the same generators, called from other files -------------------------------------

# A generator method with a short last batch: the line of the short slice, the
# parameter that gives the batch size (and its position and int default), or None.
GeneratorMethod = dict[str, int | str | None]


@family_fact
@dataclass
class ShortBatchMethods:
    """Per module: the methods of its classes that yield a short last batch of a
    pass, by class and method name."""

    classes: dict[str, dict[str, GeneratorMethod]] = field(default_factory=dict)


@collector
def _short_batch_methods(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Methods of the file's classes that yield a short last batch of a pass
    (``BatchGenerator.generate(batch_size=...)``), with the line of the short slice
    and the parameter that gives the batch size: a notebook or script that trains on
    one is told at its call, where it chooses B."""
    if "yield" not in source or "class " not in source:
        return
    from losslint.config import Settings

    ctx = FileContext("", facts.module, source, tree, ProjectFacts(), Settings())
    found: dict[str, dict[str, GeneratorMethod]] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for method in cls.body:
            if not (isinstance(method, ast.FunctionDef) and _yields(method)):
                continue
            shorts = [*_range_loops(ctx, method), *_while_loops(ctx, method)]
            if not shorts:
                continue
            parameters = [a.arg for a in method.args.args[1:]]
            sizes = [short.batch_name for short in shorts]
            batch = next((name for name in sizes if name in parameters), None)
            defaults = dict(zip(parameters[len(parameters) - len(method.args.defaults):], method.args.defaults))
            default = defaults.get(batch) if batch else None
            found.setdefault(cls.name, {})[method.name] = {
                "line": shorts[0].node.lineno,
                "batch": batch,
                "position": parameters.index(batch) if batch else None,
                "default": default.value if isinstance(default, ast.Constant) and isinstance(default.value, int) else None,
            }
    if found:
        facts.put(ShortBatchMethods(found))


def _project_method(ctx: FileContext, call: ast.Call) -> tuple[str, str, GeneratorMethod, str] | None:
    """``dataset.generate(...)`` where ``dataset = BatchGenerator(...)`` and the
    class, imported from a project file (resolved from this file's folder first),
    has a generator method with a short last batch: (class, method, its facts,
    the defining file)."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, (ast.Name, ast.Call))):
        return None
    instance = ctx.values.resolve_name(func.value) if isinstance(func.value, ast.Name) else func.value
    if not (isinstance(instance, ast.Call) and isinstance(instance.func, (ast.Name, ast.Attribute))):
        return None
    qual = ctx.qualname(instance.func) or ""
    module, _, cls = qual.rpartition(".")
    if not module:
        return None
    key = ctx.project.resolve(module, ctx.file or None)
    facts = ctx.project.modules.get(key) if key is not None else None
    if facts is None or key == ctx.file:
        return None
    methods = facts.get(ShortBatchMethods)
    method = methods.classes.get(cls, {}).get(func.attr) if methods is not None else None
    return (cls, func.attr, method, key) if method else None


def _call_site_role(ctx: FileContext, call: ast.Call) -> Role:
    """A train name where the generator is bound or a train flag it is given
    (``train_generator = ds.generate(..., train=True)``), or given to fit."""
    name = bound_name(ctx, call)
    role = words_role(name) if name else Role.UNKNOWN
    if role is not Role.UNKNOWN:
        return role
    for flag in ("train", "training", "is_training"):
        value = ctx.values.value(argument(call, flag))
        if value is True:
            return Role.TRAIN
        if value is False:
            return Role.EVAL
    parent = ctx.parents.get(call)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
        for fit in ctx.nodes_of(ast.Call):
            if isinstance(fit.func, ast.Attribute) and fit.func.attr in ("fit", "fit_generator"):
                given = argument(fit, "generator" if fit.func.attr == "fit_generator" else "x", 0)
                if isinstance(given, ast.Name) and given.id == parent.targets[0].id:
                    return Role.TRAIN
    return Role.UNKNOWN


def project_generator_calls(ctx: FileContext) -> Iterable[tuple[ast.Call, str]]:
    """Training calls of another file's generator method that yields a short last
    batch, each with the message."""
    for call in ctx.nodes_of(ast.Call):
        found = _project_method(ctx, call)
        if found is None or _call_site_role(ctx, call) is not Role.TRAIN:
            continue
        cls, method, facts, path = found
        position = facts.get("position")
        node = argument(call, str(facts["batch"]), position if isinstance(position, int) else None) if facts.get("batch") else None
        b = ctx.values.int_value(node) if node is not None else facts.get("default")
        if b == 1:
            continue
        where = f"{_display(ctx, path)}:{facts['line']}"
        batch = f"B={b}" if isinstance(b, int) else "the batch size is not known statically"
        yield call, (
            f"training generator {cls}.{method} ({where}) yields a short last batch of every pass over the data, and "
            f"it trains here ({batch}): unless N is a multiple of the batch size the last batch of every epoch is "
            f"smaller (the number of samples is not known statically; the fix belongs in {cls}.{method})"
        )


def _display(ctx: FileContext, path: str) -> str:
    import os

    try:
        return os.path.relpath(path, os.path.dirname(ctx.file)) if ctx.file else path
    except ValueError:
        return path


@register
class GeneratorPartialBatch(Rule):
    code = "LL206"
    chain = ChainRole.PARTIAL_BATCH
    name = "generator-partial-batch"
    severity = Severity.WARNING
    # fit: a project generator trained on here; a step: a training loop slicing its own batches
    triggers = ("yield", "Sequence", "PyDataset", "fit_generator", ".fit(", ".backward(", ".minimize(", "train_on_batch", ".run(")
    summary = (
        "A hand-written training batch generator, batch sampler or Keras Sequence whose last batch of a pass is "
        "short, a training loop that slices its own batches so, and another file's training call of a generator."
    )
    why = (
        "Slicing X[i:i + bs] up to len(X) yields a last slice of N % bs samples once per pass over the data. "
        "This is the seed's case: ssd_keras's DataGenerator sliced [current:current + batch_size] and rewound "
        "only after the short slice, its SSD loss was normalized per batch, and the loss spiked once per pass "
        "(every 1390 steps, Stack Overflow 47824598) with SGD momentum 0.9 carrying the step on. A Keras "
        "Sequence whose __len__ is math.ceil(len(x) / batch_size) does the same every epoch. When N is not known "
        "statically the finding is INFO: unless N is a multiple of the batch size the last batch is short."
    )
    fix_doc = (
        "Trims the range to full batches (range(0, len(X) - bs + 1, bs)), in a generator or a training loop; rewinds before a short slice (if current "
        "+ batch_size > len(X): current = 0), or rounds __len__ down (len(x) // batch_size). Safe when the generator "
        "shuffles: every full batch is the same as before and the leftover samples wait for the next shuffle. "
        "Unsafe when nothing shuffles: the same last samples are left out of every pass (the message says so). A "
        "Sequence that neither shuffles nor has a training name gets no fix: it may also serve predict() and "
        "evaluate(), which need every sample; nor does one whose shuffle is a constructor option without a default "
        "of True, or a method of a class whose own __len__ counts the batches (the two would disagree). A generator "
        "with a shuffle parameter may also serve unshuffled evaluation passes: its fix changes shuffled passes only "
        "(if current >= n or shuffle and current + bs > n; range(0, n - bs + 1 if shuffle else n, bs)). Where another file (a notebook, a script) trains on a project "
        "class's generator method that yields a short last batch, its call gets a finding (INFO, naming the "
        "generator's line and the B chosen there) without a fix: the fix belongs in the generator."
    )
    references = (
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
        "https://keras.io/api/utils/python_utils/#pydataset-class",
    )
    flagged = (
        Flagged(
            """
            import numpy as np

            def iterate_minibatches(inputs, targets, batch_size):
                indices = np.random.permutation(len(inputs))
                for start in range(0, len(inputs), batch_size):
                    excerpt = indices[start:start + batch_size]
                    yield inputs[excerpt], targets[excerpt]
            """,
            fixed="""
            import numpy as np

            def iterate_minibatches(inputs, targets, batch_size):
                indices = np.random.permutation(len(inputs))
                for start in range(0, len(inputs) - batch_size + 1, batch_size):
                    excerpt = indices[start:start + batch_size]
                    yield inputs[excerpt], targets[excerpt]
            """,
            message_contains=("not known statically",),
        ),
        Flagged(
            """
            import numpy as np

            X = np.random.rand(1000, 10)
            BATCH = 64

            def train_batches():
                for i in range(0, len(X), BATCH):
                    yield X[i:i + BATCH]
            """,
            fixed="""
            import numpy as np

            X = np.random.rand(1000, 10)
            BATCH = 64

            def train_batches():
                for i in range(0, len(X) - BATCH + 1, BATCH):
                    yield X[i:i + BATCH]
            """,
            unsafe=True,
            message_contains=("N=1000, B=64", "40 samples", "nothing shuffles this data"),
        ),
        Flagged(
            """
            import sklearn.utils

            class DataGenerator:
                def generate(self, batch_size=32, shuffle=True):
                    current = 0
                    while True:
                        if current >= len(self.filenames):
                            current = 0
                            if shuffle:
                                self.filenames = sklearn.utils.shuffle(self.filenames)
                        batch_filenames = self.filenames[current:current + batch_size]
                        current += batch_size
                        yield load(batch_filenames)
            """,
            fixed="""
            import sklearn.utils

            class DataGenerator:
                def generate(self, batch_size=32, shuffle=True):
                    current = 0
                    while True:
                        if current >= len(self.filenames) or shuffle and current + batch_size > len(self.filenames):
                            current = 0
                            if shuffle:
                                self.filenames = sklearn.utils.shuffle(self.filenames)
                        batch_filenames = self.filenames[current:current + batch_size]
                        current += batch_size
                        yield load(batch_filenames)
            """,
            message_contains=("rewinds only at current >= len(self.filenames)",),
        ),
        Flagged(
            """
            import numpy as np
            from tensorflow import keras

            class Iterator(keras.utils.Sequence):
                def __init__(self, n, batch_size, shuffle, seed):
                    self.n, self.batch_size, self.shuffle = n, batch_size, shuffle

                def on_epoch_end(self):
                    self.index_array = np.random.permutation(self.n) if self.shuffle else np.arange(self.n)

                def __len__(self):
                    return (self.n + self.batch_size - 1) // self.batch_size
            """,
            fixed=None,
            message_contains=("Iterator.__len__ rounds up",),
        ),
        Flagged(
            """
            import math
            from tensorflow import keras

            class CIFAR10PyDataset(keras.utils.PyDataset):
                def __init__(self, x_set, y_set, batch_size, **kwargs):
                    super().__init__(**kwargs)
                    self.x, self.y = x_set, y_set
                    self.batch_size = batch_size

                def __len__(self):
                    return math.ceil(len(self.x) / self.batch_size)

                def __getitem__(self, idx):
                    low = idx * self.batch_size
                    high = min(low + self.batch_size, len(self.x))
                    return self.x[low:high], self.y[low:high]
            """,
            fixed=None,
            message_contains=("rounds up",),
        ),
        Flagged(
            """
            import numpy as np
            from keras.utils import Sequence

            class DataSequence(Sequence):
                def __len__(self):
                    return int(np.ceil(len(self.x) / float(self.batch_size)))

                def on_epoch_end(self):
                    np.random.shuffle(self.x)
            """,
            fixed="""
            import numpy as np
            from keras.utils import Sequence

            class DataSequence(Sequence):
                def __len__(self):
                    return len(self.x) // self.batch_size

                def on_epoch_end(self):
                    np.random.shuffle(self.x)
            """,
        ),
        Flagged(
            """
            import random

            def batches(data, bs):
                random.shuffle(data)
                n_batches = (len(data) + bs - 1) // bs
                for i in range(n_batches):
                    yield data[i * bs:(i + 1) * bs]
            """,
            fixed="""
            import random

            def batches(data, bs):
                random.shuffle(data)
                n_batches = len(data) // bs
                for i in range(n_batches):
                    yield data[i * bs:(i + 1) * bs]
            """,
        ),
        Flagged(
            """
            from keras.models import Model
            from batch_generator import BatchGenerator

            train_dataset = BatchGenerator()
            train_generator = train_dataset.generate(batch_size=16, shuffle=True)
            model.fit_generator(generator=train_generator, steps_per_epoch=100, epochs=10)
            """,
            fixed=None,
            files=((
                "batch_generator.py",
                """
                class BatchGenerator:
                    def generate(self, batch_size=32, shuffle=True):
                        current = 0
                        while True:
                            if current >= len(self.filenames):
                                current = 0
                            batch = self.filenames[current:current + batch_size]
                            current += batch_size
                            yield load(batch)
                """,
            ),),
            message_contains=("BatchGenerator.generate (batch_generator.py:5)", "B=16", "the fix belongs in BatchGenerator.generate"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import Sampler

            class BucketingSampler(Sampler):
                def __init__(self, dataset, batch_size):
                    ids = list(range(len(dataset)))
                    self.bins = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]

                def __iter__(self):
                    for x in torch.randperm(len(self.bins)).tolist():
                        yield self.bins[x]
            """,
            fixed="""
            import torch
            from torch.utils.data import Sampler

            class BucketingSampler(Sampler):
                def __init__(self, dataset, batch_size):
                    ids = list(range(len(dataset)))
                    self.bins = [ids[i:i + batch_size] for i in range(0, len(ids) - batch_size + 1, batch_size)]

                def __iter__(self):
                    for x in torch.randperm(len(self.bins)).tolist():
                        yield self.bins[x]
            """,
            unsafe=True,
            message_contains=("batch sampler BucketingSampler", "the last bin is short"),
        ),
        Flagged(
            """
            import numpy as np

            def train_generator(samples, batch_size):
                while True:
                    np.random.shuffle(samples)
                    batch = []
                    for i, sample in enumerate(samples):
                        batch.append(sample)
                        if len(batch) == batch_size or i == len(samples) - 1:
                            yield np.array(batch)
                            batch = []
            """,
            fixed="""
            import numpy as np

            def train_generator(samples, batch_size):
                while True:
                    np.random.shuffle(samples)
                    batch = []
                    for i, sample in enumerate(samples):
                        batch.append(sample)
                        if len(batch) == batch_size:
                            yield np.array(batch)
                            batch = []
            """,
            message_contains=("yields when len(batch) == batch_size or i == len(samples) - 1",),
        ),
        Flagged(
            """
            import random

            def train_batches(samples, batch_size):
                random.shuffle(samples)
                batch = []
                for sample in samples:
                    batch.append(sample)
                    if len(batch) == batch_size:
                        yield batch
                        batch = []
                if batch:
                    yield batch
            """,
            fixed=None,
            message_contains=("then the rest after the loop (line 11)",),
        ),
        Flagged(
            """
            import math
            import torch
            from torch.utils.data import Sampler

            class BucketSampler(Sampler):
                def __iter__(self):
                    for bucket in self.buckets:
                        for batch in torch.split(bucket[torch.randperm(len(bucket))], self.batch_size):
                            yield batch.tolist()

                def __len__(self):
                    return sum(math.ceil(len(b) / self.batch_size) for b in self.buckets)
            """,
            fixed=None,
            message_contains=("per bucket", "every bucket ends with a short batch"),
        ),
        Flagged(
            """
            import numpy as np
            import torch

            batch_size = 64
            for epoch in range(10):
                perm = np.random.permutation(len(X))
                for i in range(0, len(X), batch_size):
                    idx = perm[i:i + batch_size]
                    loss = loss_fn(model(torch.tensor(X[idx])), torch.tensor(Y[idx]))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            """,
            fixed="""
            import numpy as np
            import torch

            batch_size = 64
            for epoch in range(10):
                perm = np.random.permutation(len(X))
                for i in range(0, len(X) - batch_size + 1, batch_size):
                    idx = perm[i:i + batch_size]
                    loss = loss_fn(model(torch.tensor(X[idx])), torch.tensor(Y[idx]))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            """,
            message_contains=("training loop: for i in range(0, len(X), batch_size) slices [i:i + batch_size]",),
        ),
    )
    quiet = (
        Quiet(
            """
            import numpy as np

            minibatch_size = int(batch_size // num_minibatches)
            for update in range(num_updates):
                np.random.shuffle(b_inds)
                for start in range(0, batch_size, minibatch_size):
                    mb_inds = b_inds[start:start + minibatch_size]
                    loss = ppo_loss(mb_inds)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                for i in range(0, len(x_test), 100):
                    accuracy = evaluate(model, x_test[i:i + 100])
            for batch in loader:
                for i in range(0, batch.shape[0], microbatch):
                    loss_fn(model(batch[i:i + microbatch])).backward()
                optimizer.step()
            """,
            why=(
                "PPO's minibatch size is the rollout divided by the number of minibatches (every slice full); a slicing "
                "loop that takes no step only evaluates; micro-batches of one batch accumulate into one step"
            ),
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import Sampler

            class BucketSampler(Sampler):
                def __iter__(self):
                    for bucket in self.buckets:
                        usable = len(bucket) // self.batch_size * self.batch_size
                        for batch in torch.split(bucket[torch.randperm(len(bucket))][:usable], self.batch_size):
                            yield batch.tolist()

                def __len__(self):
                    return sum(len(b) // self.batch_size for b in self.buckets)
            """,
            why="every bucket is cut to full batches (__len__ rounds down)",
        ),
        Quiet(
            """
            import numpy as np

            def train_generator(samples, batch_size):
                while True:
                    np.random.shuffle(samples)
                    for start in range(0, len(samples), batch_size):
                        batch = samples[start:start + batch_size]
                        if len(batch) < batch_size:
                            continue
                        yield batch

            def train_batches(samples, batch_size):
                batch = []
                for sample in samples:
                    batch.append(sample)
                    if len(batch) == batch_size:
                        yield batch
                        batch = []
            """,
            why="the short batch is skipped before it is yielded; a generator that yields full lists only",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import Sampler

            class BucketingSampler(Sampler):
                def __init__(self, dataset, batch_size):
                    ids = list(range(len(dataset)))
                    self.bins = [ids[i:i + batch_size] for i in range(0, len(ids) - batch_size + 1, batch_size)]

                def __iter__(self):
                    for x in torch.randperm(len(self.bins)).tolist():
                        yield self.bins[x]

            class EvalChunks(Sampler):
                def __init__(self, ids, batch_size):
                    self.bins = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
            """,
            why="bins of full batches only; an evaluation sampler",
        ),
        Quiet(
            """
            from keras.models import Model
            from batch_generator import BatchGenerator

            val_dataset = BatchGenerator()
            val_generator = val_dataset.generate(batch_size=16, shuffle=False)
            model.evaluate(val_generator, steps=10)
            model.fit(x_train, y_train, batch_size=1)
            """,
            files=((
                "batch_generator.py",
                """
                class BatchGenerator:
                    def generate(self, batch_size=32, shuffle=True):
                        current = 0
                        while True:
                            if current >= len(self.filenames):
                                current = 0
                            batch = self.filenames[current:current + batch_size]
                            current += batch_size
                            yield load(batch)
                """,
            ),),
            why="the project generator serves evaluation here (a validation name)",
        ),
        Quiet(
            """
            import numpy as np
            def train_batches(X, bs):
                np.random.shuffle(X)
                for i in range(0, len(X) - bs + 1, bs):
                    yield X[i:i + bs]
            """,
            why="only full batches",
        ),
        Quiet(
            """
            def train_generator(X, bs):
                current = 0
                while True:
                    if current + bs > len(X):
                        current = 0
                    yield X[current:current + bs]
                    current += bs
            """,
            why="rewinds before a short slice",
        ),
        Quiet(
            """
            def train_generator(X, bs):
                i = 0
                while True:
                    idx = [(i + k) % len(X) for k in range(bs)]
                    i += bs
                    yield X[idx]
            """,
            why="wraps around with modulo indexing",
        ),
        Quiet(
            """
            import numpy as np
            def eval_batches(X, bs):
                for i in range(0, len(X), bs):
                    yield X[i:i + bs]
            def chunks(items, size):
                for i in range(0, len(items), size):
                    yield items[i:i + size]
            """,
            why="an evaluation generator, and a chunking utility with no sign of training",
        ),
        Quiet(
            """
            import numpy as np
            X = np.zeros((1024, 4))
            def train_batches():
                np.random.shuffle(X)
                for i in range(0, len(X), 64):
                    yield X[i:i + 64]
            """,
            why="N % B == 0",
        ),
        Quiet(
            """
            import math
            from tensorflow import keras
            class TrainSequence(keras.utils.Sequence):
                def __len__(self):
                    return len(self.x) // self.batch_size
            class ValSequence(keras.utils.Sequence):
                def __len__(self):
                    return math.ceil(len(self.x) / self.batch_size)
            class Wrapping(keras.utils.Sequence):
                def __len__(self):
                    return math.ceil(len(self.x) / self.batch_size)
                def __getitem__(self, i):
                    idx = [(i * self.batch_size + k) % len(self.x) for k in range(self.batch_size)]
                    return self.x[idx]
            """,
            why="floor __len__; a validation Sequence; a Sequence that wraps around",
        ),
        Quiet(
            """
            from typing import Sequence
            import math
            class Pages(Sequence):
                def __len__(self):
                    return math.ceil(len(self.items) / self.per_page)
            """,
            why="typing.Sequence is not a Keras Sequence",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for call, message in project_generator_calls(ctx):
            yield ctx.finding(self, call, message, severity=Severity.INFO)
        seen: set[int] = set()
        for short in short_last_batches(ctx):
            if id(short.node) in seen:
                continue
            seen.add(id(short.node))
            n, b = known_sizes(short.n, short.b)
            if b == 1 or (n is not None and b is not None and not is_partial(n, b)):
                continue  # a batch of one, or every batch full
            fix = unless_shuffled(short.fix, short.shuffled)
            note = unshuffled_note(short.shuffled) if fix is not None else ""
            if n is not None and b is not None:
                message = f"{short.what}: {describe_last_batch(n, b)}{note}"
                yield ctx.finding(self, short.node, message, fix)
            else:
                size = f"N={n}" if n is not None else "the number of samples is not known statically"
                batch = f"B={b}" if b is not None else "the batch size is not known statically"
                message = f"{short.what}, unless N is a multiple of the batch size ({size}; {batch}){note}"
                yield ctx.finding(self, short.node, message, fix, severity=Severity.INFO)
