"""What a file may borrow from the rest of the project (ProjectFacts.related):
its own facts, the modules it imports, the modules that import it and what those
import. Never a sibling script's: a file's findings must not depend on which
unrelated files are in the run."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from losslint.config import Settings
from losslint.engine import Linter
from losslint.project import collect_module_facts

MNIST_SCRIPT = """
import argparse
import torch
from torch.utils.data import DataLoader
from torchvision import datasets

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default={batch})
args = parser.parse_args()
train_loader = DataLoader(datasets.MNIST("data", train=True), batch_size=args.batch_size, shuffle=True)
model = torch.nn.Linear(784, 10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x.flatten(1)), y).backward()
    optimizer.step()
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def batch_findings(paths: list[Path], file: str) -> list[tuple[str, str]]:
    report = Linter(Settings(), jobs=1).run(paths)
    return [(f.code, f.message) for f in report.findings if f.path.endswith(file) and f.code.startswith("LL2")]


def test_sibling_scripts_of_the_same_name_keep_their_own_defaults(tmp_path: Path, monkeypatch):
    # pytorch/examples style: mnist/main.py and vae/main.py are both module `main`.
    write(tmp_path, {"mnist/main.py": MNIST_SCRIPT.format(batch=64), "vae/main.py": MNIST_SCRIPT.format(batch=20)})
    monkeypatch.chdir(tmp_path)
    whole = Linter(Settings(), jobs=1).run([tmp_path])
    by_file = {f.path: f.message for f in whole.findings if f.code == "LL201"}
    assert "N=60000, B=64" in by_file["mnist/main.py"]
    assert "vae/main.py" not in by_file  # 60000 % 20 == 0: its own default says no partial batch


def test_a_default_is_not_borrowed_from_an_unrelated_script(tmp_path: Path, monkeypatch):
    files = {
        # a loader helper that nothing imports, reading args.batch_size
        "tools/data.py": """
            from torch.utils.data import DataLoader
            from torchvision import datasets

            def loaders(args):
                train_loader = DataLoader(datasets.MNIST("d", train=True), batch_size=args.batch_size, shuffle=True)
                return train_loader
            """,
        # the only --batch-size in the tree, in a script that does not use tools/data.py
        "other/train.py": MNIST_SCRIPT.format(batch=64),
    }
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    alone = batch_findings([tmp_path / "tools" / "data.py"], "tools/data.py")
    whole = batch_findings([tmp_path], "tools/data.py")
    assert whole == alone
    assert [code for code, _ in whole] == ["LL202"]  # B unknown: nothing that reaches it sets it
    assert "B=64" not in whole[0][1]


def test_values_flow_along_imports_both_ways(tmp_path: Path, monkeypatch):
    files = {
        # train.py parses the arguments and hands them to data.py, which it imports
        "proj/train.py": """
            import argparse
            from data import loaders

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=64)
            args = parser.parse_args()
            train_loader = loaders(args)
            """,
        "proj/data.py": """
            from torch.utils.data import DataLoader
            from torchvision import datasets

            def loaders(args):
                train_loader = DataLoader(datasets.MNIST("d", train=True), batch_size=args.batch_size, shuffle=True)
                return train_loader
            """,
        # an unrelated copy with another default and its own data.py
        "copy/train.py": """
            import argparse
            from data import loaders

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=100)
            args = parser.parse_args()
            train_loader = loaders(args)
            """,
        "copy/data.py": """
            from torch.utils.data import DataLoader
            from torchvision import datasets

            def loaders(args):
                train_loader = DataLoader(datasets.MNIST("d", train=True), batch_size=args.batch_size, shuffle=True)
                return train_loader
            """,
    }
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    whole = batch_findings([tmp_path], "proj/data.py")
    assert [code for code, _ in whole] == ["LL201"]
    assert "N=60000, B=64" in whole[0][1]
    # the same with only the files on its own path
    assert batch_findings([tmp_path / "proj"], "proj/data.py") == whole
    # and the copy's default (60000 % 100 == 0) stays with the copy
    assert batch_findings([tmp_path], "copy/data.py") == []


def test_relative_import_in_a_package_init_resolves_inside_the_package():
    """``from .optim import build`` in pkg/__init__.py is pkg.optim, as Python
    resolves it: a re-export through a relative import joins the file's reach."""
    source = "from .optim import build\n"
    facts = collect_module_facts(ast.parse(source), source, "pkg", is_package=True)
    assert "pkg.optim" in facts.imports and "pkg.optim.build" in facts.imports
    module = collect_module_facts(ast.parse(source), source, "pkg.train")
    assert "pkg.optim" in module.imports


def test_reach_by_components_equals_the_plain_definition():
    """related(f): every file reached by imports from any file that reaches f by
    being imported. The component-sharing computation against that definition on
    random import graphs (cycles, self-imports, isolated files)."""
    import random

    from losslint.project import _Reach

    def plain(key, imports):
        importers = {}
        for source, targets in imports.items():
            for target in targets:
                importers.setdefault(target, set()).add(source)

        def closure(start, step):
            seen, todo = set(start), list(start)
            while todo:
                for nxt in step(todo.pop()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            return seen

        above = closure([key], lambda k: importers.get(k, ()))
        return closure(above, lambda k: imports.get(k, ()))

    rng = random.Random(7)
    for _ in range(300):
        files = [f"m{i}" for i in range(rng.randint(1, 12))]
        imports = {f: {rng.choice(files) for _ in range(rng.randint(0, 3))} for f in files if rng.random() < 0.8}
        reach = _Reach(files, imports)
        for f in files:
            assert reach.of(f) == plain(f, imports), (f, imports)
