"""LL201, LL202, LL205: a training ``torch.utils.data.DataLoader`` without
``drop_last=True``.

One analysis, three outcomes: with the dataset size N and batch size B known and
N % B != 0, LL201 gives the numbers (LL205 when N % B == 1 and the model has
BatchNorm1d: training crashes on the last batch); when N or B cannot be known,
LL202 says so at lower severity. The fix, ``drop_last=True``, is safe: full
batches train exactly as before.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Iterable

from losslint.analysis.batching import (
    BATCH_SAMPLER_POS,
    DataLoaderAnalysis,
    bounded_within_pass,
    is_dataloader,
    is_partial,
    size_sources,
)
from losslint.analysis.names import argument, last_part
from losslint.analysis.roles import Role, bound_name, pipeline_role, words_role
from losslint.context import FileContext
from losslint.findings import Finding, Fix, Severity
from losslint.project import ModuleFacts, collector, family_fact
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.partial_batch_common import (
    describe_last_batch,
    set_flag_fix,
    unless_shuffled,
    unshuffled_note,
)

_FIX = "add drop_last=True"


def _has_batchnorm1d(ctx: FileContext) -> str | None:
    """Name of the BatchNorm1d evidence in this file: the layer itself, or a project
    model class that has one and is instantiated here."""
    for call in ctx.nodes_of(ast.Call):
        name = last_part(ctx.qualname(call.func))
        if name in ("BatchNorm1d", "SyncBatchNorm") and "BatchNorm1d" in ctx.source:
            return "BatchNorm1d"
        if name and ctx.project.has_batchnorm1d(name, ctx.file or None):
            return name
    return None


# What a loader factory's DataLoader is: the line, the function's parameters, and
# the parameters that set drop_last and batch_size (None: not a parameter).
LoaderFactory = dict[str, int | str | list[str] | None]


@family_fact
@dataclass
class LoaderFactories:
    """Per module: its module-level functions that build a batching DataLoader
    without drop_last=True, by name."""

    functions: dict[str, LoaderFactory] = field(default_factory=dict)


@collector
def _loader_factories(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Module-level functions that build a batching DataLoader without drop_last=True
    (``create_dataloader(path, imgsz, batch_size, ..., shuffle=False)``): the line of
    the DataLoader, the parameters, and which of them set drop_last and batch_size."""
    if "DataLoader" not in source:
        return
    from losslint.config import Settings
    from losslint.project import ProjectFacts

    ctx = FileContext("", facts.module, source, tree, ProjectFacts(), Settings())
    found: dict[str, LoaderFactory] = {}
    for function in tree.body:
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        parameters = [a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]]
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and is_dataloader(ctx, call)):
                continue
            analysis = DataLoaderAnalysis(ctx, call)
            if analysis.arguments.candidates("batch_sampler", BATCH_SAMPLER_POS):
                continue
            drop = analysis.drop_last.node
            drop_parameter = drop.id if isinstance(drop, ast.Name) and drop.id in parameters else None
            if analysis.drop_last.value is not False and drop_parameter is None:
                continue
            size = analysis.batch_size_node
            found[function.name] = {
                "line": call.lineno,
                "parameters": parameters,
                "drop": drop_parameter,
                "batch": size.id if isinstance(size, ast.Name) and size.id in parameters else None,
            }
            break
    if found:
        facts.put(LoaderFactories(found))


def factory_calls(ctx: FileContext) -> Iterable[tuple[ast.Call, str]]:
    """Training calls of another file's loader factory (a module-level function that
    builds a DataLoader without drop_last=True): the finding belongs where the caller
    chooses training, e.g. yolov5's ``create_dataloader(train_path, ..., shuffle=True)``
    in train.py, with drop_last only behind ``quad``."""
    for call in ctx.nodes_of(ast.Call):
        if not isinstance(call.func, (ast.Name, ast.Attribute)):
            continue
        qual = ctx.qualname(call.func) or ""
        module, _, name = qual.rpartition(".")
        key = ctx.project.resolve(module, ctx.file or None) if module else None
        if key is None or key == ctx.file:
            continue
        factories = ctx.project.modules[key].get(LoaderFactories) if key in ctx.project.modules else None
        facts = factories.functions.get(name) if factories is not None else None
        if not facts:
            continue
        parameters: list[str] = facts["parameters"]  # type: ignore[assignment]
        shuffle = argument(call, "shuffle", parameters.index("shuffle") if "shuffle" in parameters else None)
        bound = bound_name(ctx, call)
        role = words_role(bound) if bound else Role.UNKNOWN
        if role is Role.EVAL or (role is not Role.TRAIN and not (shuffle is not None and ctx.values.value(shuffle) is True)):
            continue
        note = ""
        if facts["drop"]:
            drop = str(facts["drop"])
            given = argument(call, drop, parameters.index(drop))
            if given is not None:
                if ctx.values.value(given) is not False:
                    continue  # the caller asks for drop_last, or a value we cannot know
                note = f" ({drop}={ctx.text(given)}, False by default)"
            else:
                note = f" ({drop} defaults to False)"
        b = None
        if facts["batch"]:
            batch = str(facts["batch"])
            b = ctx.values.int_value(argument(call, batch, parameters.index(batch)))
        if b == 1:
            continue
        where = f"{_relative(ctx, key)}:{facts['line']}"
        yield call, (
            f"training loader from {name} ({where}), which builds a DataLoader without drop_last=True{note} "
            f"({f'B={b}' if b is not None else 'B unknown'}): the size of the dataset is not known statically; unless "
            "N is a multiple of B the last batch of every epoch is smaller (no fix here: ask the factory for "
            "drop_last=True for the training loader)"
        )


def _relative(ctx: FileContext, path: str) -> str:
    import os

    try:
        return os.path.relpath(path, os.path.dirname(ctx.file)) if ctx.file else path
    except ValueError:
        return path


_TORCHTEXT_ITERATORS = {"BucketIterator", "Iterator"}


def _fix_note(analysis: DataLoaderAnalysis) -> str:
    if analysis.factory:
        function = analysis.ctx.enclosing(analysis.call, ast.FunctionDef, ast.AsyncFunctionDef)
        name = function.name if function is not None else "this function"
        return (
            f"; {name} builds loaders for its callers and a caller trains with this one: no fix here, where the "
            "same code may build evaluation loaders (pass drop_last=True for the training loader only)"
        )
    return unshuffled_note(analysis.shuffled())


def _unknown_reason(ctx: FileContext, analysis: DataLoaderAnalysis, n: int | None, b: int | None, note: str) -> str:
    parts = []
    if note:
        parts.append(note)
    elif n is None:
        parts.append(f"the size of {ctx.text(analysis.dataset) or 'the dataset'} is not known statically")
    if b is None:
        parts.append(f"batch_size={ctx.text(analysis.batch_size_node) or '?'} is not known statically")
    return "; ".join(parts)


def _fix(analysis: DataLoaderAnalysis) -> Fix | None:
    if analysis.factory:
        return None  # drop_last=True would also cut the evaluation loaders it builds
    return unless_shuffled(set_flag_fix(analysis.ctx, analysis.call, analysis.drop_last, "drop_last", _FIX), analysis.shuffled())


def _size_sources(analysis: DataLoaderAnalysis, n: int | None, b: int | None) -> list:
    """Where N (the dataset, unless a sampler decides it) and B come from."""
    dataset = analysis.dataset if analysis.sampler is None else None
    return size_sources(analysis.ctx, analysis.call, n, dataset, b, analysis.batch_size_node)


def _dataloaders(ctx: FileContext) -> list[DataLoaderAnalysis]:
    """The training DataLoaders of this file whose last batch of a pass holds the
    remainder: an epoch that ends, and a run that reaches its end. (Once per file:
    LL201, LL202 and LL205 each ask.)"""
    found = ctx.memo.get("partial_batch_torch.dataloaders")
    if found is None:
        found = ctx.memo["partial_batch_torch.dataloaders"] = [
            analysis
            for call in ctx.nodes_of(ast.Call)
            if is_dataloader(ctx, call)
            and (analysis := DataLoaderAnalysis(ctx, call)).trains_with_remainder()
            and not analysis.endless()
            and not bounded_within_pass(ctx, *analysis.sizes()[:2])
        ]
    return found


@register
class PartialLastBatch(Rule):
    code = "LL201"
    chain = ChainRole.PARTIAL_BATCH
    name = "partial-last-batch"
    severity = Severity.WARNING
    triggers = ("DataLoader",)
    summary = "A training DataLoader without drop_last=True whose dataset size N is not a multiple of the batch size B."
    why = (
        "The last batch of every epoch then has N % B samples. A mean-reduced loss gives each of them B/b times "
        "the weight of a sample in a full batch, so the gradient of that step is noisier; a loss that is also "
        "normalized per batch (LL101, LL102) is B/b times too large there and spikes once per epoch, and a "
        "momentum optimizer carries the bad step on (LL301)."
    )
    fix_doc = (
        "Adds drop_last=True. Safe when the loader shuffles (shuffle=True or a random sampler): every full batch "
        "trains exactly as before and the N % B leftover samples differ from epoch to epoch. Unsafe when nothing "
        "shuffles: the same last samples are left out of every epoch (the message says which case applies). A "
        "loader factory whose callers decide that it trains gets no fix: it may also build evaluation loaders."
    )
    references = (
        "https://pytorch.org/docs/stable/data.html#torch.utils.data.DataLoader",
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
    )
    flagged = (
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)
            """,
            message_contains=("N=1000, B=64", "40 samples"),
        ),
        Flagged(
            """
            import argparse
            import torch.utils.data as tud
            from torchvision import datasets

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=128)
            parser.add_argument("--drop-last", action="store_true")
            args = parser.parse_args()
            train_set = datasets.CIFAR10("data", train=True, download=True)
            loader = tud.DataLoader(
                train_set,
                batch_size=args.batch_size,
                drop_last=args.drop_last,
            )
            for x, y in loader:
                loss = model(x, y)
                loss.backward()
            """,
            fixed="""
            import argparse
            import torch.utils.data as tud
            from torchvision import datasets

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=128)
            parser.add_argument("--drop-last", action="store_true")
            args = parser.parse_args()
            train_set = datasets.CIFAR10("data", train=True, download=True)
            loader = tud.DataLoader(
                train_set,
                batch_size=args.batch_size,
                drop_last=True,
            )
            for x, y in loader:
                loss = model(x, y)
                loss.backward()
            """,
            unsafe=True,
            message_contains=("N=50000, B=128", "80 samples", "args.drop_last defaults to False", "nothing shuffles"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, random_split
            from config import BATCH_SIZE

            full = MyDataset()
            train_ds, val_ds = random_split(full, [900, 100])
            train_loader = DataLoader(
                train_ds,
                batch_size=BATCH_SIZE,
                shuffle=True,
            )
            val_loader = DataLoader(val_ds, batch_size=BATCH_SIZE)
            """,
            files=(("config.py", "BATCH_SIZE = 64\n"),),
            fixed="""
            from torch.utils.data import DataLoader, random_split
            from config import BATCH_SIZE

            full = MyDataset()
            train_ds, val_ds = random_split(full, [900, 100])
            train_loader = DataLoader(
                train_ds,
                batch_size=BATCH_SIZE,
                shuffle=True,
                drop_last=True,
            )
            val_loader = DataLoader(val_ds, batch_size=BATCH_SIZE)
            """,
            message_contains=("N=900",),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            def train_one_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    torch.nn.functional.mse_loss(model(x), y).backward()
                    optimizer.step()

            @torch.no_grad()
            def evaluate(model, loader):
                return sum(float(model(x).sum()) for x, _ in loader)

            data = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=64, shuffle=True)
            train_one_epoch(model, data, optimizer)
            evaluate(model, data)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            def train_one_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    torch.nn.functional.mse_loss(model(x), y).backward()
                    optimizer.step()

            @torch.no_grad()
            def evaluate(model, loader):
                return sum(float(model(x).sum()) for x, _ in loader)

            data = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=64, shuffle=True, drop_last=True)
            train_one_epoch(model, data, optimizer)
            evaluate(model, data)
            """,
            message_contains=("N=1000", "B=64"),
        ),
        Flagged(
            """
            import argparse
            from torch.utils.data import DataLoader
            from torchvision.datasets import MNIST

            def get_data_loaders(train_batch_size, val_batch_size):
                train_loader = DataLoader(MNIST(".", train=True), batch_size=train_batch_size, shuffle=True)
                val_loader = DataLoader(MNIST(".", train=False), batch_size=val_batch_size)
                return train_loader, val_loader

            def run(train_batch_size, val_batch_size):
                train_loader, val_loader = get_data_loaders(train_batch_size, val_batch_size)

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch_size", type=int, default=64)
            parser.add_argument("--val_batch_size", type=int, default=1000)
            args = parser.parse_args()
            run(args.batch_size, args.val_batch_size)
            """,
            fixed="""
            import argparse
            from torch.utils.data import DataLoader
            from torchvision.datasets import MNIST

            def get_data_loaders(train_batch_size, val_batch_size):
                train_loader = DataLoader(MNIST(".", train=True), batch_size=train_batch_size, shuffle=True, drop_last=True)
                val_loader = DataLoader(MNIST(".", train=False), batch_size=val_batch_size)
                return train_loader, val_loader

            def run(train_batch_size, val_batch_size):
                train_loader, val_loader = get_data_loaders(train_batch_size, val_batch_size)

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch_size", type=int, default=64)
            parser.add_argument("--val_batch_size", type=int, default=1000)
            args = parser.parse_args()
            run(args.batch_size, args.val_batch_size)
            """,
            message_contains=("N=60000, B=64",),
        ),
        Flagged(
            """
            import torch
            from torchvision import datasets

            train_kwargs = {"batch_size": 64}
            if torch.cuda.is_available():
                train_kwargs.update({"num_workers": 1, "shuffle": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs)
            """,
            fixed="""
            import torch
            from torchvision import datasets

            train_kwargs = {"batch_size": 64}
            if torch.cuda.is_available():
                train_kwargs.update({"num_workers": 1, "shuffle": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs, drop_last=True)
            """,
            message_contains=("N=60000, B=64",),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True, drop_last=True)
            """,
            message_contains=("N=1000, B=64",),
        ),
        Flagged(
            """
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset

            dataset = TensorDataset(torch.randn(1000, 8))
            kfold = KFold(n_splits=5, shuffle=True)
            for fold, (train_ids, test_ids) in enumerate(kfold.split(dataset)):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True)
            """,
            fixed="""
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset

            dataset = TensorDataset(torch.randn(1000, 8))
            kfold = KFold(n_splits=5, shuffle=True)
            for fold, (train_ids, test_ids) in enumerate(kfold.split(dataset)):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True, drop_last=True)
            """,
            message_contains=("N=800, B=64",),
        ),
        Flagged(
            """
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True)

            trainer = pl.Trainer(max_steps=100, limit_train_batches=1.0)
            """,
            fixed="""
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True, drop_last=True)

            trainer = pl.Trainer(max_steps=100, limit_train_batches=1.0)
            """,
            message_contains=("N=1000, B=64",),
        ),
        Flagged(
            """
            import torch
            import torch.utils.data as Data

            x = torch.unsqueeze(torch.linspace(-1, 1, 1000), dim=1)
            y = x.pow(2) + 0.1 * torch.normal(torch.zeros(*x.size()))
            loader = Data.DataLoader(dataset=Data.TensorDataset(x, y), batch_size=32, shuffle=True)
            """,
            fixed="""
            import torch
            import torch.utils.data as Data

            x = torch.unsqueeze(torch.linspace(-1, 1, 1000), dim=1)
            y = x.pow(2) + 0.1 * torch.normal(torch.zeros(*x.size()))
            loader = Data.DataLoader(dataset=Data.TensorDataset(x, y), batch_size=32, shuffle=True, drop_last=True)
            """,
            message_contains=("N=1000, B=32",),
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            import torch.utils.data as Data

            x = torch.linspace(-1, 1, 1000).unsqueeze(1)
            loader = Data.DataLoader(dataset=Data.TensorDataset(x, x ** 2), batch_size=40, shuffle=True)
            """,
            why="x.unsqueeze(1) keeps linspace's 1000 samples, a multiple of 40",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_set = TensorDataset(torch.randn(50000, 8), torch.randint(0, 10, (50000,)))
            small_loader = DataLoader(train_set, batch_size=1024, shuffle=True)
            imgs, labels = next(iter(small_loader))
            criterion(net(imgs), labels).backward()
            """,
            why="only next(iter(loader)): one batch is taken to look at, no pass over the data reaches a last batch",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            if __name__ == "__main__":
                voc_train = TensorDataset(torch.randn(1000, 3))
                dataloader = DataLoader(voc_train, batch_size=64, shuffle=True)
                for ii, sample in enumerate(dataloader):
                    show(sample)
            """,
            why="a dataset module's demo: the loop only shows batches, and nothing in the file trains",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_ds = TensorDataset(torch.randn(1024, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True)
            """,
            why="sampler=None is no sampler: N is the dataset's 1024, a multiple of B",
        ),
        Quiet(
            """
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset
            dataset = TensorDataset(torch.randn(1280, 8))
            for train_ids, test_ids in KFold(n_splits=5).split(dataset):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True)
            """,
            why="k-fold training folds of 1280 - 1280 / 5 = 1024 samples: a multiple of B",
        ),
        Quiet(
            """
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True)

            trainer = pl.Trainer(max_steps=10)
            quick = pl.Trainer(limit_train_batches=20)
            """,
            why="max_steps=10 ends the run within the first pass of 15 full batches; limit_train_batches=20 stops every epoch before the short batch",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader, TensorDataset
            import torch

            def make_loader(batch_size):
                return DataLoader(TensorDataset(torch.randn(1000, 4)), batch_size=batch_size, shuffle=True)

            small = make_loader(32)
            large = make_loader(100)
            """,
            why="a parameter the file passes different values for is not known (LL202 reports it)",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)
            """,
            why="drop_last=True already",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_ds = TensorDataset(torch.randn(1024, 20))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            """,
            why="N % B == 0: every batch is full",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            val_ds = TensorDataset(torch.randn(1000, 20))
            val_loader = DataLoader(val_ds, batch_size=64)
            test_loader = DataLoader(TensorDataset(torch.randn(1000, 20)), batch_size=64, shuffle=False)
            """,
            why="evaluation loaders change no weights",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader
            from torchvision import datasets
            train_loader = DataLoader(datasets.CIFAR10("data", train=True), batch_size=256, drop_last=False)
            features = []
            with torch.no_grad():
                for images, _ in train_loader:
                    features.append(backbone(images))
            """,
            why="named train_*, but iterated only under no_grad (a feature bank): dropping samples would leave rows out",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader
            from torchvision import datasets

            @torch.no_grad()
            def extract_features(model, loader):
                return torch.cat([model(images) for images, _ in loader])

            data_loader_train = DataLoader(datasets.CIFAR10("data", train=True), batch_size=256, drop_last=False)
            bank = extract_features(backbone, data_loader_train)
            """,
            why="handed to a function of the file that runs without gradients (a kNN feature bank): it trains nothing",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader, BatchSampler, RandomSampler
            train_loader = DataLoader(train_ds, batch_sampler=BatchSampler(RandomSampler(train_ds), 64, True))
            """,
            why="a batch_sampler forms the batches",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, shuffle=True)
            """,
            why="batch_size defaults to 1: no batch is partial",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=cfg.drop_last)
            """,
            why="drop_last is set from a value that cannot be known",
        ),
        Quiet(
            """
            import torch
            from torchvision import datasets
            train_kwargs = {"batch_size": 64, "shuffle": True}
            train_kwargs.update({"drop_last": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs)
            other_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), shuffle=True, **cfg.loader_kwargs)
            """,
            why="drop_last=True handed over in the **dict; a **dict that cannot be read may carry it",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        bn = None
        for analysis in _dataloaders(ctx):
            n, b, _ = analysis.sizes()
            if not is_partial(n, b):
                continue
            assert n is not None and b is not None
            if n % b == 1:
                bn = bn or _has_batchnorm1d(ctx)
                if bn:
                    continue  # LL205 reports it, as an error
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note}: {describe_last_batch(n, b)}"
                f"{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, _fix(analysis), related=_size_sources(analysis, n, b))


@register
class PossiblePartialLastBatch(Rule):
    code = "LL202"
    chain = ChainRole.PARTIAL_BATCH
    name = "possible-partial-last-batch"
    severity = Severity.INFO
    triggers = ("DataLoader", "BucketIterator", "Iterator(", "dataloader(")  # create_dataloader(...): a factory's call
    summary = "A training DataLoader without drop_last=True where the dataset size or the batch size is not known statically."
    why = PartialLastBatch.why + " Here losslint cannot tell whether N % B != 0; for a random N it is, (B-1)/B of the time."
    fix_doc = PartialLastBatch.fix_doc
    references = PartialLastBatch.references
    flagged = (
        Flagged(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(ImageFolder(args.data), batch_size=32, shuffle=True)
            """,
            fixed="""
            from torch.utils.data import DataLoader
            train_loader = DataLoader(ImageFolder(args.data), batch_size=32, shuffle=True, drop_last=True)
            """,
            message_contains=("not known statically",),
        ),
        Flagged(
            """
            import torch

            def get_data_loader(dataset, batch_size, shuffle=False):
                data_loader = torch.utils.data.DataLoader(dataset=dataset, batch_size=batch_size, shuffle=shuffle)
                return data_loader

            def train_fn(model, data_loader, optimizer):
                for x, y in data_loader:
                    optimizer.zero_grad()
                    loss_fn(model(x), y).backward()
                    optimizer.step()

            train_data_loader = get_data_loader(train_data, 128, shuffle=True)
            valid_data_loader = get_data_loader(valid_data, 128)
            """,
            fixed=None,
            message_contains=("get_data_loader builds loaders for its callers",),
        ),
        Flagged(
            """
            import torch
            from torch.utils import data

            def get_loader(image_dir, batch_size=16, mode="train"):
                dataset = ImageFolder(image_dir, transform)
                return data.DataLoader(dataset=dataset, batch_size=batch_size, shuffle=(mode == "train"))

            def main(config):
                celeba_loader = get_loader("data/celeba", 16, config.mode)
            """,
            fixed=None,
            message_contains=("get_loader builds loaders for its callers", "B=16"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, distributed

            def create_classification_dataloader(path, batch_size=16, rank=-1, shuffle=True):
                dataset = ImageFolder(path)
                sampler = None if rank == -1 else distributed.DistributedSampler(dataset, shuffle=shuffle)
                return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler)

            loader = create_classification_dataloader(path=data_dir, batch_size=64, rank=LOCAL_RANK)
            """,
            fixed=None,
            message_contains=("create_classification_dataloader builds loaders for its callers",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, DistributedSampler
            def train_dataloader(self):
                return DataLoader(self.ds, batch_size=16, sampler=DistributedSampler(self.ds))
            """,
            fixed="""
            from torch.utils.data import DataLoader, DistributedSampler
            def train_dataloader(self):
                return DataLoader(self.ds, batch_size=16, sampler=DistributedSampler(self.ds), drop_last=True)
            """,
            message_contains=("DistributedSampler",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            class InfiniteDataLoader(DataLoader):
                pass

            def create_dataloader(dataset, batch_size, shuffle=False, quad=False):
                loader = DataLoader if quad else InfiniteDataLoader
                return loader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)

            train_loader = create_dataloader(train_set, 16, shuffle=True)
            val_loader = create_dataloader(val_set, 32)
            """,
            fixed=None,
            message_contains=("create_dataloader builds loaders for its callers", "no fix here"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                train_loader = DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs)
                return train_loader

            def main(args):
                kwargs = {"num_workers": 4, "pin_memory": True}
                loader = make_data_loader(args, **kwargs)
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                train_loader = DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs, drop_last=True)
                return train_loader

            def main(args):
                kwargs = {"num_workers": 4, "pin_memory": True}
                loader = make_data_loader(args, **kwargs)
            """,
            message_contains=("not known statically",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def get_dataloaders(batch_size=16):
                return DataLoader(load_data("train"), shuffle=True, batch_size=batch_size)

            def training_function(config):
                batch_size = int(config["batch_size"])
                train_loader = get_dataloaders(batch_size)

            config = {"lr": 2e-5, "batch_size": 16}
            training_function(config)
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def get_dataloaders(batch_size=16):
                return DataLoader(load_data("train"), shuffle=True, batch_size=batch_size, drop_last=True)

            def training_function(config):
                batch_size = int(config["batch_size"])
                train_loader = get_dataloaders(batch_size)

            config = {"lr": 2e-5, "batch_size": 16}
            training_function(config)
            """,
            files=(("library.py", '_DEFAULT_KWARGS = {"batch_size": 1}\n'),),
            message_contains=("(B=16)",),
        ),
        Flagged(
            """
            from torchtext.data import BucketIterator
            train_iterator = BucketIterator(train, batch_size=opt.batch_size, device=device, train=True)
            val_iterator = BucketIterator(val, batch_size=opt.batch_size, device=device)
            """,
            fixed=None,
            message_contains=("torchtext BucketIterator", "no drop-last option"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params))
                for batch in tqdm(iterable=data_loader):
                    self.model(batch).loss.backward()
                    self.optimizer.step()
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params, drop_last=True))
                for batch in tqdm(iterable=data_loader):
                    self.model(batch).loss.backward()
                    self.optimizer.step()
            """,
            unsafe=True,
            message_contains=("nothing shuffles this data",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, IterableDataset

            class Stream(IterableDataset):
                def __len__(self):
                    return 1000

                def __iter__(self):
                    yield from read_records(self.files)

            train_loader = DataLoader(Stream(), batch_size=64)
            """,
            fixed="""
            from torch.utils.data import DataLoader, IterableDataset

            class Stream(IterableDataset):
                def __len__(self):
                    return 1000

                def __iter__(self):
                    yield from read_records(self.files)

            train_loader = DataLoader(Stream(), batch_size=64, drop_last=True)
            """,
            unsafe=True,
            message_contains=("Stream() is an IterableDataset: its __iter__, not __len__, decides N",),
        ),
        Flagged(
            """
            import argparse
            from loaders import create_dataloader

            parser = argparse.ArgumentParser()
            parser.add_argument("--quad", action="store_true")
            opt = parser.parse_args()
            train_loader = create_dataloader(opt.train_path, 16, shuffle=True, quad=opt.quad)
            val_loader = create_dataloader(opt.val_path, 32)
            """,
            fixed=None,
            files=((
                "loaders.py",
                """
                from torch.utils.data import DataLoader

                def create_dataloader(path, batch_size, shuffle=False, quad=False):
                    dataset = LoadImages(path)
                    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)
                """,
            ),),
            message_contains=("create_dataloader (loaders.py:5)", "B=16", "quad=opt.quad"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class Reinforce(LightningModule):
                def train_batch(self):
                    while True:
                        for state, qval in self.play_episode():
                            yield state, qval
                        if self.total_steps % self.batches_per_epoch == 0:
                            break

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=8)
            """,
            fixed="""
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class Reinforce(LightningModule):
                def train_batch(self):
                    while True:
                        for state, qval in self.play_episode():
                            yield state, qval
                        if self.total_steps % self.batches_per_epoch == 0:
                            break

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=8, drop_last=True)
            """,
            unsafe=True,
            files=(("experience.py", """
                    from torch.utils.data import IterableDataset

                    class ExperienceSourceDataset(IterableDataset):
                        def __init__(self, generate_batch):
                            self.generate_batch = generate_batch

                        def __iter__(self):
                            return self.generate_batch()
                    """),),
            message_contains=("B=8", "is an IterableDataset"),
        ),
        Flagged(
            """
            import torch

            if opt.distributed:
                train_sampler = torch.utils.data.distributed.DistributedSampler(train_data)
            else:
                train_sampler = None
            train_loader = torch.utils.data.DataLoader(
                train_data, batch_size=opt.batch_size, shuffle=(train_sampler is None), sampler=train_sampler
            )
            """,
            fixed="""
            import torch

            if opt.distributed:
                train_sampler = torch.utils.data.distributed.DistributedSampler(train_data)
            else:
                train_sampler = None
            train_loader = torch.utils.data.DataLoader(
                train_data, batch_size=opt.batch_size, shuffle=(train_sampler is None), sampler=train_sampler, drop_last=True
            )
            """,
            message_contains=("DistributedSampler",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, SequentialSampler

            train_sampler = SequentialSampler(train_data) if opt.ordered else None
            train_loader = DataLoader(train_data, batch_size=32, shuffle=False, sampler=train_sampler)
            """,
            fixed="""
            from torch.utils.data import DataLoader, SequentialSampler

            train_sampler = SequentialSampler(train_data) if opt.ordered else None
            train_loader = DataLoader(train_data, batch_size=32, shuffle=False, sampler=train_sampler, drop_last=True)
            """,
            unsafe=True,
            message_contains=("nothing shuffles this data",),
        ),
    )
    quiet = (
        Quiet(
            """
            from torch.utils.data import DataLoader
            def val_dataloader(self):
                return DataLoader(self.val_ds, batch_size=32)
            """,
            why="evaluation loader",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            loader = DataLoader(ds, batch_size=32)
            """,
            why="nothing says it trains (no train name, no shuffle, no backward() over it)",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, RandomSampler
            sampler = RandomSampler(train_dataset, replacement=True, num_samples=int(1e10))
            train_loader = DataLoader(train_dataset, sampler=sampler, batch_size=config.batch_size)
            """,
            why="an epoch of 10^10 samples never ends: the run stops by an iteration count first",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                return DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs)

            def main(args):
                loader = make_data_loader(args, drop_last=True)
                other = make_data_loader(args, **load_options())
            """,
            why="a caller may hand drop_last over through **kwargs",
        ),
        Quiet(
            """
            from torchtext.data import BucketIterator
            train_iterator = BucketIterator(train, batch_size=1, train=True)
            """,
            why="a batch of one is never partial",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class A2C(LightningModule):
                def train_batch(self):
                    while True:
                        for _ in range(self.batch_size):
                            self.states.append(self.env.step(self.agent(self.state)))
                        for idx in range(self.batch_size):
                            yield self.states[idx]

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=32)
            """,
            files=(("experience.py", """
                    from torch.utils.data import IterableDataset

                    class ExperienceSourceDataset(IterableDataset):
                        def __init__(self, generate_batch):
                            self.generate_batch = generate_batch

                        def __iter__(self):
                            return self.generate_batch()
                    """),),
            why="the IterableDataset streams from a generator that never ends (an RL experience source): no epoch ends, so no last batch",
        ),
        Quiet(
            """
            from loaders import create_dataloader

            train_loader = create_dataloader(opt.train_path, 16, shuffle=True, quad=True)
            val_loader = create_dataloader(opt.val_path, 32, shuffle=True)
            """,
            files=((
                "loaders.py",
                """
                from torch.utils.data import DataLoader

                def create_dataloader(path, batch_size, shuffle=False, quad=False):
                    dataset = LoadImages(path)
                    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)
                """,
            ),),
            why="the training call asks the factory for drop_last; the other call builds a validation loader",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params))
                for batch in tqdm(iterable=data_loader, desc="reference log probs"):
                    self.reference_logps.append(self.compute_reference_log_probs(batch))
                return super().get_train_dataloader()
            """,
            why="unshuffled and only read by a loop that never steps: a precomputation over the training set",
        ),
        Quiet(
            """
            import torch
            from torch.utils import data

            def get_loader(image_dir, batch_size=16, mode="train"):
                dataset = ImageFolder(image_dir, transform)
                return data.DataLoader(dataset=dataset, batch_size=batch_size, shuffle=(mode == "train"))

            test_loader = get_loader("data/celeba", 16, mode="test")
            """,
            why="shuffle=(mode == 'train') and the only caller passes mode='test': an evaluation loader",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for analysis in _dataloaders(ctx):
            n, b, note = analysis.sizes()
            if (n is not None and b is not None) or b == 1:
                continue  # LL201 / LL205 decide; a batch of one is never partial
            batch = f"B={b}" if b is not None else "B unknown"
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note} ({batch}): "
                f"{_unknown_reason(ctx, analysis, n, b, note)}; unless N is a multiple of B the last batch "
                f"of every epoch is smaller{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, _fix(analysis), related=_size_sources(analysis, n, b))
        yield from self._torchtext_iterators(ctx)
        for call, message in factory_calls(ctx):
            yield ctx.finding(self, call, message)

    def _torchtext_iterators(self, ctx: FileContext) -> Iterable[Finding]:
        """torchtext's (legacy) BucketIterator/Iterator for training: no drop-last option."""
        for call in ctx.nodes_of(ast.Call):
            qual = ctx.qualname(call.func) or ""
            if not (qual.startswith("torchtext.") and last_part(qual) in _TORCHTEXT_ITERATORS):
                continue
            train = argument(call, "train")
            role = Role.TRAIN if train is not None and ctx.values.value(train) is True else pipeline_role(ctx, call, argument(call, "dataset", 0))
            b = ctx.values.int_value(argument(call, "batch_size", 1))
            if role is not Role.TRAIN or b == 1 or argument(call, "repeat") is not None and ctx.values.value(argument(call, "repeat")) is not False:
                continue
            batch = f"B={b}" if b is not None else "B unknown"
            message = (
                f"training torchtext {last_part(qual)} ({batch}) keeps the last, short batch of every epoch and has no "
                "drop-last option; unless N is a multiple of B the last batch of every epoch is smaller (no fix: "
                "filter it out in the training loop, or move to a DataLoader with drop_last=True)"
            )
            yield ctx.finding(self, call, message)


@register
class BatchNormSingletonBatch(Rule):
    code = "LL205"
    chain = ChainRole.SINGLETON_BATCH
    name = "batchnorm-singleton-batch"
    severity = Severity.ERROR
    triggers = ("DataLoader",)  # the BatchNorm1d may be in another file
    summary = "N % B == 1 without drop_last=True while the model has BatchNorm1d: the last batch of every epoch has one sample."
    why = (
        "BatchNorm in training mode needs more than one value per channel: on the one-sample batch it raises "
        "\"ValueError: Expected more than 1 value per channel when training\" and training stops at the end of "
        "the first epoch (or, with a tolerant layer, normalizes by a variance of zero)."
    )
    fix_doc = PartialLastBatch.fix_doc
    references = ("https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html",)
    flagged = (
        Flagged(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
            train_loader = DataLoader(TensorDataset(torch.randn(129, 8)), batch_size=32, shuffle=True)
            """,
            fixed="""
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
            train_loader = DataLoader(TensorDataset(torch.randn(129, 8)), batch_size=32, shuffle=True, drop_last=True)
            """,
            message_contains=("N=129, B=32", "1 sample", "Expected more than 1 value per channel"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from models import Net

            model = Net()
            train_loader = DataLoader(TensorDataset(torch.randn(1001, 8)), batch_size=100, shuffle=True)
            """,
            files=(
                (
                    "models.py",
                    """
                    from torch import nn
                    class Net(nn.Module):
                        def __init__(self):
                            super().__init__()
                            self.bn = nn.BatchNorm1d(8)
                    """,
                ),
            ),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from models import Net

            model = Net()
            train_loader = DataLoader(TensorDataset(torch.randn(1001, 8)), batch_size=100, shuffle=True, drop_last=True)
            """,
            message_contains=("Net",),
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset
            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16))
            train_loader = DataLoader(TensorDataset(torch.randn(130, 8)), batch_size=32, shuffle=True)
            """,
            why="N % B == 2: LL201's business, no crash",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        bn = None
        for analysis in _dataloaders(ctx):
            n, b, _ = analysis.sizes()
            if not is_partial(n, b) or n % b != 1:  # type: ignore[operator]
                continue
            bn = bn or _has_batchnorm1d(ctx)
            if not bn:
                continue
            fix = _fix(analysis)
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note}: N={n}, B={b} leaves a last "
                f"batch of 1 sample, and the model has BatchNorm ({bn}): training raises \"Expected more than 1 "
                "value per channel when training\" at the end of the first epoch"
                f"{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, fix, related=_size_sources(analysis, n, b))
