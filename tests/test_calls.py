"""The project call graph (losslint.analysis.calls): a function's call sites in
its own file and in the files that import it, each call's arguments bound to
the parameters (positional, keyword, defaults, *args/**kwargs), and nothing
borrowed from an unrelated script that happens to define the same names."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from losslint import cache
from losslint.analysis.calls import ModuleCalls, bind, call_sites, calls_named
from losslint.config import Settings
from losslint.context import FileContext
from losslint.discovery import discover
from losslint.engine import Linter, read_source


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


def function(ctx: FileContext, name: str) -> ast.FunctionDef:
    return next(f for f in ctx.nodes_of(ast.FunctionDef) if f.name == name)


ENGINE = """
    def train_one_epoch(model, loader, optimizer, device="cpu", max_norm=0.0, *rest, **options):
        for x, y in loader:
            optimizer.step()

    class Trainer:
        def __init__(self, model, optimizer, clip=None):
            self.optimizer = optimizer

        def fit(self, loader, epochs=1):
            train_one_epoch(self.model, loader, self.optimizer)
    """

MAIN = """
    import argparse
    from engine import Trainer, train_one_epoch

    EPOCHS = 3
    kwargs = {"device": "cuda"}
    args = argparse.ArgumentParser().parse_args()
    train_one_epoch(model, loader, opt, max_norm=args.clip_max_norm)
    train_one_epoch(model, loader, opt, "cuda", EPOCHS * 2, 7, 8, verbose=True)
    train_one_epoch(model, loader, opt, **kwargs)
    Trainer(model, opt).fit(loader)
    """


def test_call_sites_across_files_with_bound_arguments(tmp_path: Path):
    write(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    ctx = context_of(tmp_path, "engine.py")
    sites = call_sites(ctx, function(ctx, "train_one_epoch"))
    local = [s for s in sites if s.local]
    other = [s for s in sites if not s.local]
    # fit() calls it in engine.py: model/loader/optimizer bound, the rest defaulted
    assert [s.line for s in local] == [10]
    assert set(local[0].arguments) == {"model", "loader", "optimizer"}
    assert local[0].defaulted == {"device", "max_norm"}
    assert local[0].gives("max_norm") is False
    assert [s.line for s in other] == [7, 8, 9]
    assert all(s.path == str(tmp_path / "main.py") for s in other)
    by_keyword, positional, unpacked = other
    assert by_keyword.passed["max_norm"].text == "args.clip_max_norm" and not by_keyword.passed["max_norm"].known
    assert by_keyword.gives("device") is False and by_keyword.gives("max_norm") is True
    # positionals bind in order; a module constant's arithmetic is read in the calling file
    assert positional.passed["device"].value == "cuda" and positional.passed["max_norm"].value == 6
    assert positional.extra_keywords["verbose"].value is True
    # **kwargs of a literal dict: its keys are passed, nothing else is
    assert unpacked.gives("device") is True and unpacked.gives("max_norm") is False


def test_constructor_and_method_calls(tmp_path: Path):
    write(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    ctx = context_of(tmp_path, "engine.py")
    init = call_sites(ctx, function(ctx, "__init__"))
    # Trainer(model, opt) in main.py: self is bound by the call, clip defaulted
    assert [(s.line, sorted(s.passed), sorted(s.defaulted)) for s in init] == [(10, ["model", "optimizer"], ["clip"])]
    assert call_sites(ctx, function(ctx, "fit")) == []  # methods: only this file's x.fit(...) calls

    main = context_of(tmp_path, "main.py")
    fit = calls_named(main, "fit", attribute=True)
    assert len(fit) == 1 and calls_named(main, "fit", attribute=False) == []


def test_bind_star_arguments_are_opaque():
    tree = ast.parse("def f(a, b=1, *, c=2): pass\nf(*xs)\nf(1, **kw)\nf(1, c=3)\n")
    func = tree.body[0]
    calls = [n.value for n in tree.body[1:]]
    starred, double, plain = (bind(func, call, method_call=False) for call in calls)
    assert starred.opaque and starred.arguments == {} and starred.defaulted == set()
    assert double.opaque and list(double.arguments) == ["a"]
    assert not plain.opaque and sorted(plain.arguments) == ["a", "c"] and plain.defaulted == {"b"}


def test_unrelated_scripts_with_the_same_names_do_not_share_calls(tmp_path: Path):
    # two copies of an example: each main.py calls its own engine.train_one_epoch
    for folder, norm in (("a", "1.0"), ("b", "0.5")):
        write(tmp_path, {
            f"{folder}/engine.py": ENGINE,
            f"{folder}/main.py": f"from engine import train_one_epoch\ntrain_one_epoch(m, l, o, max_norm={norm})\n",
        })
    write(tmp_path, {"c/train.py": "def train_one_epoch(model, loader, optimizer, max_norm=0.0):\n    pass\n"})
    ctx = context_of(tmp_path, "a/engine.py")
    sites = call_sites(ctx, function(ctx, "train_one_epoch"))
    assert [(s.path, s.passed["max_norm"].value) for s in sites if not s.local] == [(str(tmp_path / "a/main.py"), 1.0)]
    lone = context_of(tmp_path, "c/train.py")
    assert call_sites(lone, function(lone, "train_one_epoch")) == []


def test_calls_through_a_package_re_export(tmp_path: Path):
    write(tmp_path, {
        "utils/__init__.py": "from utils.train_utils import train\n",
        "utils/train_utils.py": "def train(model, optimizer, clip=None):\n    optimizer.step()\n",
        "main.py": "from utils import train\ntrain(net, opt, clip=1.0)\n",
    })
    ctx = context_of(tmp_path, "utils/train_utils.py")
    sites = call_sites(ctx, function(ctx, "train"))
    assert [(Path(s.path).name, s.passed["clip"].value) for s in sites] == [("main.py", 1.0)]


def test_call_facts_round_trip_the_cache(tmp_path: Path):
    write(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    ctx = context_of(tmp_path, "main.py")
    facts = ctx.project.own(ctx.file)
    recorded = facts.get(ModuleCalls)
    assert recorded is not None and sorted(recorded.calls) == ["Trainer", "train_one_epoch"]
    assert cache.decode(cache.encode(facts)) == facts
