"""Class ancestry across project files (losslint.analysis.hierarchy): a DataLoader
subclass two files and a re-export away is still a DataLoader, a class that only
shares a name is not, and nothing outside the project is read."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import astroid

from losslint.analysis import hierarchy
from losslint.config import Settings
from losslint.context import FileContext
from losslint.discovery import discover
from losslint.engine import Linter, read_source

PACKAGE = {
    "utils/__init__.py": "from .loaders import *\n",
    "utils/base.py": """
        import torch.utils.data as tud

        class BaseLoader(tud.DataLoader):
            pass
        """,
    "utils/loaders.py": """
        from torch.nn import *
        from .base import BaseLoader as Parent

        Alias = Parent

        class InfiniteDataLoader(Alias):
            pass
        """,
}

TRAIN = """
    from torchvision import datasets
    from utils import InfiniteDataLoader

    train_loader = InfiniteDataLoader(datasets.MNIST("d", train=True), batch_size=64, shuffle=True)
    """


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def context_of(root: Path, name: str) -> FileContext:
    settings = Settings()
    sources = [read_source(t, settings) for t in discover([root], settings)]
    project = Linter(settings, jobs=1).facts_for(sources)
    source = next(s for s in sources if s.target.path == root / name)
    return FileContext(source.target.display, source.module, source.text, source.tree, project, settings, str(source.target.path))


def expression(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def test_ancestry_through_files_aliases_and_a_reexport(tmp_path: Path, monkeypatch):
    write(tmp_path, {**PACKAGE, "train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    ctx = context_of(tmp_path, "train.py")
    known_before = set(astroid.MANAGER.astroid_cache)
    assert hierarchy.ancestors(ctx, expression("InfiniteDataLoader")) == {"torch.utils.data.DataLoader"}
    assert hierarchy.ancestors(ctx, expression("datasets.MNIST")) == {"torchvision.datasets.MNIST"}
    # the star import of torch.nn was never followed into the installed package
    assert not {name for name in set(astroid.MANAGER.astroid_cache) - known_before if name.startswith("torch")}


def test_the_subclass_is_judged_as_a_dataloader_where_it_is_called(tmp_path: Path, monkeypatch):
    write(tmp_path, {**PACKAGE, "train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    findings = Linter(Settings(), jobs=1).run([tmp_path]).findings
    assert [(f.path, f.code) for f in findings if f.code.startswith("LL2")] == [("train.py", "LL201")]
    assert "N=60000, B=64" in next(f.message for f in findings if f.code == "LL201")


def test_a_class_that_only_shares_the_name_is_not_a_dataloader(tmp_path: Path, monkeypatch):
    unrelated = {
        # another project's InfiniteDataLoader: a plain iterator, not a torch DataLoader
        "tools/loaders.py": """
            class InfiniteDataLoader:
                def __init__(self, data, batch_size, shuffle):
                    self.data = data
            """,
        "tools/run.py": """
            from torchvision import datasets
            from loaders import InfiniteDataLoader

            train_loader = InfiniteDataLoader(datasets.MNIST("d", train=True), batch_size=64, shuffle=True)
            """,
    }
    write(tmp_path, {**PACKAGE, "train.py": TRAIN, **unrelated})
    monkeypatch.chdir(tmp_path)
    findings = Linter(Settings(), jobs=1).run([tmp_path]).findings
    assert [(f.path, f.code) for f in findings if f.code.startswith("LL2")] == [("train.py", "LL201")]
