"""The object resolver (losslint.analysis.objects) as the momentum rules use it:
an optimizer followed through keyword dicts, tuples, helper calls, several call
levels and other files' calls, the construction named as a related location,
and never an optimizer borrowed from an unrelated script."""

from __future__ import annotations

import textwrap
from pathlib import Path

from losslint.config import Settings
from losslint.engine import Linter


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        head, loop, tail = text.partition(LOOP_TEXT)
        path.write_text(textwrap.dedent(head).lstrip("\n").rstrip(" ") + loop.lstrip("\n") + tail, encoding="utf-8")


def ll3(root: Path, monkeypatch) -> list:
    monkeypatch.chdir(root)
    report = Linter(Settings(select=["LL3"]), jobs=1).run([root])
    return sorted(report.findings, key=lambda f: (f.path, f.span.line))


LOOP = """
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
"""
LOOP_TEXT = "\n" + textwrap.dedent(LOOP).lstrip("\n")


def test_through_a_keyword_dict_and_a_returned_tuple(tmp_path: Path, monkeypatch):
    write(tmp_path, {
        "kwargs.py": """
            import torch
            setup = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), "epochs": 3}
            optimizer = setup["optimizer"]
            """ + LOOP_TEXT,
        "pair.py": """
            import torch

            def build(model):
                return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

            built = build(net)
            optimizer = built[1]
            """ + LOOP_TEXT,
    })
    found = ll3(tmp_path, monkeypatch)
    assert [(f.path, f.code, f.span.line) for f in found] == [("kwargs.py", "LL301", 7), ("pair.py", "LL301", 11)]
    # the step's finding names the construction as a related location
    assert [(r.path, r.span.line) for r in found[0].related_locations] == [("kwargs.py", 2)]
    assert "SGD is built here" in found[0].related_locations[0].message


def test_through_several_call_levels(tmp_path: Path, monkeypatch):
    write(tmp_path, {"levels.py": """
        import torch

        def train(model, loader, opt):
            for x, y in loader:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()

        def run(model, loader, optimizer):
            train(model, loader, optimizer)

        run(net, data, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
        """})
    found = ll3(tmp_path, monkeypatch)
    assert [(f.code, f.span.line) for f in found] == [("LL301", 7)]
    assert "momentum 0.9" in found[0].message or "0.9" in found[0].message
    assert [r.span.line for r in found[0].related_locations] == [12]


def test_handed_from_another_file_and_not_from_an_unrelated_one(tmp_path: Path, monkeypatch):
    engine = """
        def train_one_epoch(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        """
    write(tmp_path, {
        "a/engine.py": engine,
        "a/main.py": """
            import torch
            from engine import train_one_epoch
            optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            train_one_epoch(net, data, optimizer)
            """,
        # a sibling example with the same module names, handing a plain SGD
        "b/engine.py": engine,
        "b/main.py": """
            import torch
            from engine import train_one_epoch
            optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
            train_one_epoch(net, data, optimizer)
            """,
    })
    found = ll3(tmp_path, monkeypatch)
    assert [(f.path, f.span.line) for f in found] == [("a/engine.py", 5)]
    assert "passed to train_one_epoch() from a/main.py" in found[0].message or "from main.py" in found[0].message


def test_a_script_rebinding_its_optimizer_per_cell_sees_each_cells_own(tmp_path: Path, monkeypatch):
    cell = """
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        optimizer = torch.optim.{}
        """
    body = "import torch\noptimizer = torch.optim.Adagrad(model.parameters())\n"
    body += "".join(textwrap.dedent(cell).format(c) for c in ("SGD(model.parameters(), lr=0.1, momentum=0.9)", "Adagrad(model.parameters())"))
    body += textwrap.dedent(cell).format("SGD(model.parameters(), lr=0.1)")
    write(tmp_path, {"cells.py": body})
    found = ll3(tmp_path, monkeypatch)
    lines = (tmp_path / "cells.py").read_text().splitlines()
    steps = [n for n, line in enumerate(lines, 1) if "optimizer.step()" in line]
    built = next(n for n, line in enumerate(lines, 1) if "momentum=0.9" in line)
    # only the second cell's step holds the momentum SGD (built at the end of the first cell)
    assert [(f.span.line, r.span.line) for f in found for r in f.related_locations] == [(steps[1], built)]


def test_a_builder_of_another_file_is_the_related_location(tmp_path: Path, monkeypatch):
    write(tmp_path, {
        "optim.py": """
            import torch

            def make_optimizer(model):
                return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            """,
        "train.py": """
            from optim import make_optimizer
            optimizer = make_optimizer(model)
            """ + LOOP_TEXT,
    })
    found = ll3(tmp_path, monkeypatch)
    assert [(f.path, f.span.line) for f in found] == [("train.py", 6)]
    assert [(r.path, r.span.line) for r in found[0].related_locations] == [("optim.py", 4)]
