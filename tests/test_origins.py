"""The one origin-following core (losslint.analysis.origins) under both layers:
each shape training code hands things on in is followed alike by the value
resolver (a batch size) and the object resolver (an optimizer), and the sizes
layer (a dataset's length) where a test asks it. Each program
ends in ``probe(<a value>, <an object>)``; the test asks both layers about it."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from losslint.analysis.calls import CallSite
from losslint.analysis.objects import ObjectResolver
from losslint.analysis.origins import origins_of
from losslint.analysis.sizes import length
from losslint.config import Settings
from losslint.context import FileContext
from losslint.discovery import discover
from losslint.engine import Linter, read_source
from losslint.project import UNKNOWN


class Optimizers(ObjectResolver[str]):
    """A family that knows two constructors, and reads other files' arguments as text."""

    def construct(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[str] | None:
        if name in ("SGD", "Adam") and not path:
            return [f"{name}@{call.lineno}"]
        return None

    def passed_from_files(self, function, parameter: str, sites: list[CallSite], depth: int) -> list[str]:
        return [
            f"{(site.passed.get(parameter) or site.extra_keywords[parameter]).text} from {Path(site.path).name}:{site.line}"
            for site in sites
        ]


def context_of(root: Path, files: dict[str, str], name: str = "train.py") -> FileContext:
    for file, text in files.items():
        (root / file).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    settings = Settings()
    sources = [read_source(t, settings) for t in discover([root], settings)]
    project = Linter(settings, jobs=1).facts_for(sources)
    source = next(s for s in sources if s.target.path == root / name)
    return FileContext(source.target.display, source.module, source.text, source.tree, project, settings, str(source.target.path))


def probe(root: Path, files: dict[str, str], name: str = "train.py") -> tuple[object, list[str]]:
    """(the value of probe's first argument, the objects of its second)."""
    ctx = context_of(root, files, name)
    call = next(c for c in ctx.nodes_of(ast.Call) if isinstance(c.func, ast.Name) and c.func.id == "probe")
    return ctx.values.value(call.args[0]), Optimizers(ctx).resolve(call.args[1])


def test_names_by_the_binding_that_reaches_the_use(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        batch_size = 32
        optimizer = torch.optim.Adam(net.parameters())
        print("warm-up")
        batch_size = 64
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        probe(batch_size, optimizer)
        """})
    # the rebinding decides for both (the value side used to call 32-or-64 unknown)
    assert (value, objects) == (64, ["SGD@6"])


def test_every_branch_that_may_reach(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        if args.sgd:
            batch_size, optimizer = 128, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        else:
            batch_size, optimizer = 128, torch.optim.Adam(net.parameters())
        probe(batch_size, optimizer)
        """})
    assert (value, objects) == (128, ["SGD@3", "Adam@5"])
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        batch_size = 64 if args.small else 128
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1) if args.sgd else torch.optim.Adam(net.parameters())
        probe(batch_size, optimizer)
        """})
    assert (value, objects) == (UNKNOWN, ["SGD@3", "Adam@3"])  # two batch sizes: no guess


def test_self_attributes_set_from_the_constructors_arguments(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        class Trainer:
            def __init__(self, model, batch_size, optimizer):
                self.model = model
                self.batch_size, self.optimizer = batch_size, optimizer

            def fit(self, data):
                probe(self.batch_size, self.optimizer)

        Trainer(net, 256, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)).fit(data)
        """})
    assert (value, objects) == (256, ["SGD@11"])


def test_a_class_level_default(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        from dataclasses import dataclass

        @dataclass
        class Recipe:
            batch_size: int = 48
            optimizer: torch.optim.Optimizer = torch.optim.Adam(net.parameters())

            def run(self):
                probe(self.batch_size, self.optimizer)
        """})
    assert (value, objects) == (48, ["Adam@7"])


def test_a_dict_built_and_updated(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        base = {"epochs": 10}
        setup = {**base, "batch_size": 32}
        setup.update(optimizer=torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
        probe(setup["batch_size"], setup["optimizer"])
        """})
    assert (value, objects) == (32, ["SGD@4"])
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        setup = dict(batch_size=16, optimizer=torch.optim.Adam(net.parameters()))
        probe(setup["batch_size"], setup["optimizer"])
        """})
    assert (value, objects) == (16, ["Adam@2"])


def test_a_dict_handed_to_a_function(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def train(model, config):
            probe(config["batch_size"], config["optimizer"])

        train(net, {"batch_size": 24, "optimizer": torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)})
        """})
    assert (value, objects) == (24, ["SGD@6"])


def test_keyword_arguments_into_kwargs(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def train_step(batch, **kwargs):
            probe(kwargs["batch_size"], kwargs["optimizer"])

        train_step(batch, batch_size=8, optimizer=torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
        """})
    assert (value, objects) == (8, ["SGD@6"])


def test_tuple_elements_and_returned_tuples(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def setup(model):
            return 96, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        batch_size, optimizer = setup(net)
        probe(batch_size, optimizer)
        """})
    assert (value, objects) == (96, ["SGD@4"])
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def setup(model):
            return 96, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        built = setup(net)
        probe(built[0], built[1])
        """})
    assert (value, objects) == (96, ["SGD@4"])
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        pair = (12, torch.optim.Adam(net.parameters()))
        probe(pair[0], pair[1])
        """})
    assert (value, objects) == (12, ["Adam@2"])


def test_what_a_helper_returns(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def batch_size_for(device):
            return 512

        def make_optimizer(model):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            return optimizer

        probe(batch_size_for("cuda"), make_optimizer(net))
        """})
    assert (value, objects) == (512, ["SGD@7"])
    # ``f()`` calls the function, never a method of that name; ``self.f()`` a method
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        class Evaluator:
            def batch_size_for(self, device):
                return 1

            def make_optimizer(self, model):
                return torch.optim.Adam(model.parameters())

        def batch_size_for(device):
            return 512

        def make_optimizer(model):
            return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        probe(batch_size_for("cuda"), make_optimizer(net))
        """})
    assert (value, objects) == (512, ["SGD@14"])
    # a helper that returns two different values has none
    value, _ = probe(tmp_path, {"train.py": """
        def batch_size_for(device):
            if device == "cuda":
                return 512
            return 32

        probe(batch_size_for("cuda"), None)
        """})
    assert value is UNKNOWN


def test_parameters_through_several_call_levels_and_defaults(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch

        def train(model, batch_size, optimizer):
            probe(batch_size, optimizer)

        def main(model, batch_size=40):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            train(model, batch_size, optimizer)

        main(net)
        """})
    assert (value, objects) == (40, ["SGD@7"])


def test_a_walrus(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        import torch
        if (batch_size := 20) and (optimizer := torch.optim.Adam(net.parameters())):
            probe(batch_size, optimizer)
        """})
    assert (value, objects) == (20, ["Adam@2"])


def test_arguments_from_another_file(tmp_path: Path):
    files = {
        "engine.py": """
            def train(model, batch_size, optimizer, **options):
                probe(batch_size, optimizer)
                probe_options(options["scale"], options["scaler"])
            """,
        "main.py": """
            import torch
            from engine import train

            optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            train(net, 72, optimizer, scale=2, scaler=amp_scaler)
            """,
    }
    value, objects = probe(tmp_path, files, "engine.py")
    assert (value, objects) == (72, ["optimizer from main.py:5"])
    ctx = context_of(tmp_path, files, "engine.py")
    call = next(c for c in ctx.nodes_of(ast.Call) if isinstance(c.func, ast.Name) and c.func.id == "probe_options")
    assert ctx.values.value(call.args[0]) == 2
    assert Optimizers(ctx).resolve(call.args[1]) == ["amp_scaler from main.py:5"]


def test_what_cannot_be_followed_is_unknown_for_a_value_and_kept_for_objects(tmp_path: Path):
    ctx = context_of(tmp_path, {"train.py": """
        import torch
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        batch_size = 32
        with open("bs.txt") as handle:
            if args.from_file:
                batch_size = int(handle.read())
                optimizer = load_optimizer(handle)
        probe(batch_size, optimizer)
        """})
    call = next(c for c in ctx.nodes_of(ast.Call) if isinstance(c.func, ast.Name) and c.func.id == "probe")
    origins = origins_of(ctx).of(call.args[0])
    assert origins.complete and len(origins.found) == 2  # int(...) and 32: both seen
    assert ctx.values.value(call.args[0]) is UNKNOWN  # int(handle.read()) is unknown
    assert Optimizers(ctx).resolve(call.args[1]) == ["SGD@2"]  # load_optimizer(...) builds nothing we know


def test_a_datasets_length_through_the_same_shapes(tmp_path: Path):
    """The sizes layer (analysis/sizes.py) asks the same core: N of a dataset held in
    a dict entry of a self attribute, set from the constructor's argument, built by
    a helper from its parameter; len() of it is then a value too."""
    files = {"train.py": """
        import torch
        from torch.utils.data import TensorDataset

        def make_data(n):
            return TensorDataset(torch.randn(n, 8), torch.randn(n))

        class Trainer:
            def __init__(self, train_set, optimizer, batch_size):
                self.data = {"train": train_set, "batch_size": batch_size}
                self.pair = (train_set, TensorDataset(torch.randn(200, 8)))
                self.optimizer = optimizer

            def fit(self):
                probe(len(self.data["train"]) // self.data["batch_size"], self.optimizer)
                probe_sizes(self.data["train"], self.pair[1])

        Trainer(make_data(1000), torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), 50).fit()
        """}
    value, objects = probe(tmp_path, files)
    assert (value, objects) == (20, ["SGD@17"])
    ctx = context_of(tmp_path, files)
    call = next(c for c in ctx.nodes_of(ast.Call) if isinstance(c.func, ast.Name) and c.func.id == "probe_sizes")
    assert [length(ctx, arg) for arg in call.args] == [1000, 200]
    # two calls that build different sizes: no one N
    files["train.py"] = files["train.py"].replace("Trainer(make_data(1000)", "Trainer(make_data(1000 if args.big else 500)")
    value, objects = probe(tmp_path, files)
    assert (value, objects) == (UNKNOWN, ["SGD@17"])


def test_a_cycle_ends(tmp_path: Path):
    value, objects = probe(tmp_path, {"train.py": """
        def a(x):
            return b(x)

        def b(x):
            return a(x)

        probe(a(1), b(2))
        """})
    assert (value, objects) == (UNKNOWN, [])
