"""The one model of scopes and bindings (analysis/scopes.py) as the value resolver
and the loss-scaling evaluator read it, on small training programs; the loss
family's typed facts (LossFacts) within a file's reach; where a loss computed
elsewhere is defined, as a finding's related location."""

from __future__ import annotations

import ast
import textwrap
import time
from pathlib import Path

from losslint.analysis.scaling import Kind, LossEvaluator, LossFacts, ReturnedLoss
from losslint.analysis.scopes import scopes_of
from losslint.cache import decode, encode
from losslint.config import Settings
from losslint.context import FileContext
from losslint.engine import Linter
from losslint.project import ProjectFacts, collect_module_facts

LOSS = Settings(select=["LL101", "LL102", "LL103", "LL104"])


def context(source: str) -> FileContext:
    source = textwrap.dedent(source).lstrip("\n")
    return FileContext("train.py", "train", source, ast.parse(source), ProjectFacts(), Settings())


def names(ctx: FileContext, name: str, line: int) -> list[ast.Name]:
    return [n for n in ctx.nodes_of(ast.Name) if n.id == name and n.lineno == line and isinstance(n.ctx, ast.Load)]


def lines_of(bindings) -> list[int]:
    return sorted(b.position[0] for b in bindings)


TRAIN_LOOP = """
import torch
import torch.nn as nn

def train(model, loader, optimizer, args):
    criterion = nn.CrossEntropyLoss()
    for x, y in loader:
        out = model(x)
        loss = criterion(out, y)
        if args.per_sample:
            loss = loss / x.size(0)
        loss.backward()
        optimizer.step()
    return loss
"""


def test_reaching_takes_the_branch_and_the_binding_before_it():
    ctx = context(TRAIN_LOOP)
    scopes = scopes_of(ctx)
    (use,) = names(ctx, "loss", 11)  # loss.backward() after the if
    assert lines_of(scopes.reaching("loss", use)) == [8, 10]
    (inside,) = names(ctx, "loss", 10)  # loss / x.size(0): only the line before
    assert lines_of(scopes.reaching("loss", inside)) == [8]
    (x,) = names(ctx, "x", 7)  # the loop target binds before the body runs
    (binding,) = scopes.reaching("x", x)
    assert binding.how == "loop" and ctx.text(binding.iterable) == "loader"
    (args,) = names(ctx, "args", 9)
    (parameter,) = scopes.reaching("args", args)
    assert parameter.how == "param" and parameter.parameter == (3, "args")
    # A name no scope binds (an import, a builtin) is not the scopes' to answer.
    (nn_use,) = names(ctx, "nn", 5)
    assert scopes.reaching("nn", nn_use) is None and scopes.visible("nn", nn_use) is None


def test_the_loss_evaluator_reads_names_through_the_same_model():
    ctx = context(TRAIN_LOOP)
    evaluator = LossEvaluator(ctx)
    (before_if,) = names(ctx, "loss", 10)
    assert evaluator.loss(before_if).kind is Kind.MEAN  # criterion(out, y): a batch mean
    (after_if,) = names(ctx, "loss", 11)
    # mean on one branch, mean / b on the other: not one answer, so none
    assert evaluator.loss(after_if).kind is Kind.UNKNOWN
    assert evaluator.scopes is ctx.values.scopes  # one model, shared


def test_before_is_the_straight_line_binding_and_unknown_in_a_branch():
    ctx = context(
        """
        import numpy as np
        x = np.load("x.npy")
        x = x.astype("float32") / 255
        if x.max() > 1:
            x = x / x.max()
        y = x
        batch_size = 32
        """
    )
    scopes = scopes_of(ctx)
    (at_astype,) = names(ctx, "x", 3)
    assert ctx.text(scopes.before("x", at_astype).value) == 'np.load("x.npy")'
    (at_if,) = [n for n in names(ctx, "x", 4)]
    assert ctx.text(scopes.before("x", at_if).value) == 'x.astype("float32") / 255'
    (at_y,) = names(ctx, "x", 6)
    assert scopes.before("x", at_y) is None  # the last binding may not have run
    assert len(ctx.values.bindings("x", ctx.tree)) == 3
    assert ctx.values.int_value(ast.Name("batch_size", ast.Load(), lineno=8, col_offset=0)) == 32


def test_a_closure_sees_every_binding_of_its_outer_scope():
    ctx = context(
        """
        def make_loss(weight):
            scale = 1.0
            if weight:
                scale = 2.0
            def loss_fn(pred, target):
                return scale * ((pred - target) ** 2).mean()
            return loss_fn
        """
    )
    (use,) = names(ctx, "scale", 6)
    assert lines_of(scopes_of(ctx).reaching("scale", use)) == [2, 4]


def test_self_attributes_set_in_init_are_followed_by_both_resolvers():
    ctx = context(
        """
        import torch.nn as nn

        class Trainer:
            def __init__(self, batch_size=64):
                self.batch_size = 64
                self.criterion = nn.MSELoss()

            def step(self, model, x, y):
                loss = self.criterion(model(x), y) / x.size(0)
                return loss, self.batch_size
        """
    )
    (returned,) = [n for n in ctx.nodes_of(ast.Attribute) if n.attr == "batch_size" and n.lineno == 10]
    assert ctx.values.int_value(returned) == 64
    (division,) = [n for n in ctx.nodes_of(ast.BinOp) if isinstance(n.op, ast.Div)]
    assert LossEvaluator(ctx).loss(division).kind is Kind.DOUBLE


def cells(count: int) -> str:
    cell = (
        "for x, y in train_loader:\n"
        "    loss = criterion(model(x), y) / x.size(0)\n"
        "    loss.backward()\n"
        "criterion = nn.CrossEntropyLoss()\n"
    )
    return "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n" + cell * count


def test_many_rebinding_cells_each_see_their_own_binding_in_linear_time():
    def run(count: int) -> float:
        ctx = context(cells(count))
        started = time.perf_counter()
        evaluator = LossEvaluator(ctx)
        uses = [n for n in ctx.nodes_of(ast.Name) if n.id in ("loss", "criterion") and isinstance(n.ctx, ast.Load)]
        for use in uses:
            (binding,) = evaluator.reaching(use.id, use)
            assert binding.position[0] == use.lineno - 1 - (use.id == "criterion")
        assert all(evaluator.loss(n).kind is Kind.DOUBLE for n in uses if n.id == "loss")
        return time.perf_counter() - started

    small = min(run(100) for _ in range(3))
    large = min(run(800) for _ in range(3))
    assert large < 8 * small * 2.5  # 8x the cells: linear is 8x, quadratic 64x


LOSSES = {
    "mean": """
        import torch.nn as nn

        class FocalLoss(nn.Module):
            def forward(self, logits, targets):
                return nn.functional.cross_entropy(logits, targets, reduction="none").mean()
    """,
    "sum": """
        import torch.nn as nn

        class FocalLoss(nn.Module):
            def forward(self, logits, targets):
                return nn.functional.cross_entropy(logits, targets, reduction="none").sum()
    """,
}

TRAIN = """
    from losses import FocalLoss

    criterion = FocalLoss()

    def train(model, loader, optimizer):
        for x, y in loader:
            loss = criterion(model(x), y) / x.size(0)
            loss.backward()
            optimizer.step()
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_a_loss_class_is_taken_from_the_file_within_reach_not_a_sibling_scripts(tmp_path: Path, monkeypatch):
    # Two example folders, each with its own losses.py: only the mean one is divided twice.
    write(tmp_path, {"a/losses.py": LOSSES["mean"], "a/train.py": TRAIN, "b/losses.py": LOSSES["sum"], "b/train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    findings = Linter(LOSS, jobs=1).run([tmp_path]).findings
    assert [(f.code, f.path) for f in findings if f.code == "LL101"] == [("LL101", "a/train.py")]
    (finding,) = [f for f in findings if f.code == "LL101"]
    assert "FocalLoss (losses.py returns" in finding.message
    # where the loss is computed: FocalLoss.forward in a/losses.py
    assert [(r.path, r.span.line, r.message) for r in finding.related_locations if "computes" in r.message] == [
        ("a/losses.py", 4, "FocalLoss computes the loss here")
    ]


def test_a_loss_function_of_the_same_file_is_a_related_location(tmp_path: Path, monkeypatch):
    write(
        tmp_path,
        {
            "train.py": """
                import torch.nn.functional as F

                def dice_ce(pred, target):
                    return F.cross_entropy(pred, target)

                def train(model, loader, optimizer):
                    for x, y in loader:
                        loss = dice_ce(model(x), y) / x.size(0)
                        loss.backward()
                        optimizer.step()
            """
        },
    )
    monkeypatch.chdir(tmp_path)
    (finding,) = [f for f in Linter(LOSS, jobs=1).run([tmp_path]).findings if f.code == "LL101"]
    assert [(r.path, r.span.line) for r in finding.related_locations if "computes" in r.message] == [("train.py", 3)]


def test_loss_facts_are_typed_and_survive_the_cache():
    source = textwrap.dedent(LOSSES["mean"]).lstrip("\n") + textwrap.dedent(
        """
        import torch.nn.functional as F

        def split_loss(a, b):
            return F.mse_loss(a, b), F.l1_loss(a, b, reduction="sum")

        model.compile(loss=split_loss)
        """
    )
    facts = collect_module_facts(ast.parse(source), source, "losses")
    fact = facts.get(LossFacts)
    assert fact.callables["FocalLoss"] == ReturnedLoss("mean", fact.callables["FocalLoss"].evidence, (), 4)
    assert [p.kind for p in fact.callables["split_loss"].parts] == ["mean", "sum"]
    assert fact.compiled == ["split_loss"]
    assert decode(encode(facts)).get(LossFacts) == fact
