"""losslint/analysis/batching.py: what a batching pipeline is (a DataLoader and its
arguments, a tf.data ``.batch()``, whether it drops the remainder), asked by both
the partial-batch (LL2xx) and the loss (LL1xx) families; its project facts are
typed, scoped to the files a file may borrow from, and survive the cache."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

from losslint import cache
from losslint.analysis import batching
from losslint.config import Settings
from losslint.context import FileContext
from losslint.project import ProjectFacts, collect_module_facts, file_key

RULES = Path(__file__).resolve().parent.parent / "losslint" / "rules"


def project_of(root: Path, files: dict[str, str]) -> ProjectFacts:
    project = ProjectFacts()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        source = textwrap.dedent(text).lstrip("\n")
        path.write_text(source, encoding="utf-8")
        # folders without __init__.py: modules known by their stem, as the engine names them
        project.add(collect_module_facts(ast.parse(source), source, path.stem), str(path))
    return project


def context(root: Path, project: ProjectFacts, name: str) -> FileContext:
    path = root / name
    source = path.read_text(encoding="utf-8")
    return FileContext(name, path.stem, source, ast.parse(source), project, Settings(), file_key(str(path)))


def calls(ctx: FileContext, name: str) -> list[ast.Call]:
    return [c for c in ctx.nodes_of(ast.Call) if (ctx.qualname(c.func) or "").endswith(name)]


def test_a_dataloader_read_through_a_keyword_dict(tmp_path: Path):
    project = project_of(tmp_path, {"train.py": """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        kwargs = {"batch_size": 64, "shuffle": True}
        kwargs.update(num_workers=2)
        train_loader = DataLoader(TensorDataset(torch.randn(1000, 8)), **kwargs)
        for x, in train_loader:
            model(x).sum().backward()
    """})
    ctx = context(tmp_path, project, "train.py")
    (call,) = calls(ctx, "DataLoader")
    analysis = batching.DataLoaderAnalysis(ctx, call)
    assert analysis.sizes()[:2] == (1000, 64)
    assert analysis.drop_last.value is False and analysis.shuffled() is True
    assert analysis.trains_with_remainder()
    # the loss family's view of the same loader: the same N, B and flag
    view = batching.batching_of(ctx, call)
    assert (view.n, view.b, view.drops, view.last_batch) == (1000, 64, False, 40)


def test_a_dataloader_that_drops_or_has_no_batch_size_keeps_no_remainder(tmp_path: Path):
    project = project_of(tmp_path, {"train.py": """
        from torch.utils.data import DataLoader
        a = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)
        b = DataLoader(train_ds, shuffle=True)
        c = DataLoader(train_ds, batch_sampler=sampler)
    """})
    ctx = context(tmp_path, project, "train.py")
    assert [batching.DataLoaderAnalysis(ctx, c).trains_with_remainder() for c in calls(ctx, "DataLoader")] == [False] * 3


def test_tf_data_pipeline_size_and_the_loss_view_agree(tmp_path: Path):
    project = project_of(tmp_path, {"train.py": """
        import numpy as np
        import tensorflow as tf

        x = np.zeros((1000, 8))
        train_ds = tf.data.Dataset.from_tensor_slices(x).take(900).shuffle(900)
        train_ds = train_ds.batch(64)
        repeated = tf.data.Dataset.from_tensor_slices(x).shuffle(10).repeat().batch(64)
        limited = tf.data.Dataset.from_tensor_slices(x).shuffle(10).batch(64).take(len(x) // 64)
    """})
    ctx = context(tmp_path, project, "train.py")
    (short,) = batching.tf_short_batchings(ctx)  # .repeat() before and .take(len // B) after are not short
    assert (short.n, short.b, short.method, short.shuffled()) == (900, 64, "batch", True)
    view = batching.batching_of(ctx, short.call)
    assert (view.n, view.b, view.drops) == (900, 64, False)
    assert batching.tf_partial_batches(ctx) == {id(short.call)}


def test_iterable_datasets_are_known_only_within_reach(tmp_path: Path):
    stream = """
        from torch.utils.data import IterableDataset

        class Stream(IterableDataset):
            def __iter__(self):
                while True:
                    yield 1
    """
    loader = """
        from torch.utils.data import DataLoader
        {imports}
        train_loader = DataLoader(Stream(), batch_size=32)
    """
    project = project_of(tmp_path, {
        "a/data.py": stream,
        "a/train.py": loader.format(imports="from data import Stream"),
        "b/train.py": loader.format(imports=""),  # a sibling script that never imports a/data.py
    })
    facts = project.own(str(tmp_path / "a/data.py")).get(batching.IterableDatasets)
    assert facts == batching.IterableDatasets({"Stream": "endless"})
    for name, endless in (("a/train.py", True), ("b/train.py", False)):
        ctx = context(tmp_path, project, name)
        (call,) = calls(ctx, "DataLoader")
        assert batching.DataLoaderAnalysis(ctx, call).endless() is endless, name


def test_every_batching_fact_kind_survives_the_cache(tmp_path: Path):
    project = project_of(tmp_path, {
        "data.py": """
            from torch.utils.data import DataLoader, IterableDataset

            class Experience(IterableDataset):
                def __init__(self, generate):
                    self.generate = generate

                def __iter__(self):
                    return self.generate()

            def make_loader(ds, batch_size, **kwargs):
                return DataLoader(ds, batch_size=batch_size, **kwargs)
        """,
        "train.py": """
            from data import make_loader
            loader = make_loader(ds, 32, shuffle=True, drop_last=True)
        """,
    })
    data = project.own(str(tmp_path / "data.py"))
    assert data.get(batching.IterableDatasets) == batching.IterableDatasets({"Experience": "handed"}, {"Experience": (0, "generate")})
    assert data.get(batching.BatchingCounts) == batching.BatchingCounts(dropping=0, keeping=1)
    for facts in project.modules.values():
        assert facts.family, facts.module
        assert cache.decode(json.loads(json.dumps(cache.encode(facts)))) == facts


def test_project_always_drops_within_reach(tmp_path: Path):
    project = project_of(tmp_path, {
        "a/train.py": "from torch.utils.data import DataLoader\nloader = DataLoader(ds, batch_size=8, drop_last=True)\n",
        "b/train.py": "from torch.utils.data import DataLoader\nloader = DataLoader(ds, batch_size=8)\n",
    })
    assert batching.project_always_drops(project, str(tmp_path / "a/train.py"))
    assert not batching.project_always_drops(project, str(tmp_path / "b/train.py"))
    assert not batching.project_always_drops(project)  # every file: one keeps its remainder


def test_the_partial_batch_family_and_other_families_do_not_import_each_other():
    def imported_rule_modules(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("losslint.rules."):
                found.add(node.module.rpartition(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.rpartition(".")[2] for a in node.names if a.name.startswith("losslint.rules.")}
        return found

    for path in RULES.glob("*.py"):
        ours = path.stem.startswith("partial_batch_")
        others = {m for m in imported_rule_modules(path) if m.startswith("partial_batch_") != ours and m != "base"}
        if path.stem in ("__init__", "loss_chain"):
            continue  # the registry and the chain linker read every family's findings, not their internals
        assert not others, f"{path.name} imports {sorted(others)}"


FACTORY = """
from torch.utils.data import DataLoader

def make_loader(ds, is_train, **kwargs):
    return DataLoader(ds, shuffle=is_train, **kwargs)
"""


def partial_batch_findings(root: Path, files: dict[str, str]) -> list[tuple[str, str, str]]:
    from losslint.engine import Linter

    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    report = Linter(Settings(), jobs=1).run([root])
    return [(Path(f.path).name, f.code, f.message) for f in report.findings if f.code.startswith("LL2")]


def test_a_loader_factory_is_judged_by_its_call_sites_in_other_files(tmp_path: Path):
    # The call graph binds each call to the factory's parameters: is_train=True
    # (positional) trains; batch_size=64 lands in **kwargs, so nothing there can
    # carry drop_last, and the DataLoader keeps its remainder.
    found = partial_batch_findings(tmp_path, {"data.py": FACTORY, "train.py": """
        from data import make_loader
        train_loader = make_loader(train_ds, True, batch_size=64)
        val_loader = make_loader(val_ds, False, batch_size=64)
    """})
    assert [(path, code) for path, code, _ in found] == [("data.py", "LL202")]
    assert "make_loader builds loaders for its callers" in found[0][2]


def test_a_loader_factory_whose_caller_passes_drop_last_through_kwargs_is_quiet(tmp_path: Path):
    found = partial_batch_findings(tmp_path, {"data.py": FACTORY, "train.py": """
        from data import make_loader
        train_loader = make_loader(train_ds, True, batch_size=64, drop_last=True)
        val_loader = make_loader(val_ds, False, batch_size=64)
    """})
    assert found == []


def test_partial_batch_findings_say_where_n_and_b_come_from(tmp_path: Path):
    from losslint.engine import Linter

    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import argparse
        import numpy as np
        import tensorflow as tf
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        parser = argparse.ArgumentParser()
        parser.add_argument("--batch-size", type=int, default=64)
        args = parser.parse_args()
        train_ds = TensorDataset(torch.randn(1000, 20))
        train_loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True)

        x_train = np.zeros((1000, 8))
        tf_train = tf.data.Dataset.from_tensor_slices(x_train)
        tf_train = tf_train.shuffle(1000).batch(48)
    """).lstrip("\n"), encoding="utf-8")
    report = Linter(Settings(), jobs=1).run([tmp_path / "train.py"])
    related = {
        f.code: [(r.span.line, r.message) for r in f.related_locations] for f in report.findings if f.code in ("LL201", "LL203")
    }
    assert related == {
        "LL201": [(10, "N = 1000 comes from here"), (8, "B = 64 comes from here")],
        "LL203": [(14, "N = 1000 comes from here")],  # B = 48 is written in the call itself
    }
