"""The optimizer side of the shapes real training code hands objects on in (issue
"One model of the program"): each a small realistic program whose momentum optimizer
steps unclipped (the finding: code, line, the optimizer named) and its quiet twin, the
same program with a clip."""

from __future__ import annotations

import textwrap

import pytest

from losslint.config import Settings
from losslint.pipeline import fix_text, lint_text

LL3 = Settings(select=["LL3"])


def ll3(code: str, path: str = "train.py", files: dict[str, str] | None = None) -> list:
    files = {name: textwrap.dedent(body) for name, body in (files or {}).items()}
    return lint_text(textwrap.dedent(code), LL3, path=path, files=files)


def only(findings: list):
    assert len(findings) == 1, [(f.code, f.span.line, f.message) for f in findings]
    return findings[0]


# -- objects stored and handed on ----------------------------------------------------------

SELF_ATTRIBUTE = """
    import torch


    class Trainer:
        def __init__(self, model, lr=0.1):
            self.model = model
            self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

        def fit(self, batches):
            for x, y in batches:
                self.optimizer.zero_grad()
                torch.nn.functional.mse_loss(self.model(x), y).backward()
                self.optimizer.step()


    Trainer(torch.nn.Linear(8, 1)).fit([(torch.randn(32, 8), torch.randn(32, 1))] * 10)
    """


def test_self_optimizer_set_in_init():
    finding = only(ll3(SELF_ATTRIBUTE))
    assert (finding.code, finding.span.line) == ("LL301", 14)
    assert "SGD (built at line 8)" in finding.message
    assert [r.span.line for r in finding.related_locations] == [8]


def test_self_optimizer_quiet_with_a_clip():
    clipped = SELF_ATTRIBUTE.replace(
        "            self.optimizer.step()",
        "            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n            self.optimizer.step()",
    )
    assert ll3(clipped) == []


KWARGS_AND_TUPLE = """
    import torch


    def setup(lr):
        model = torch.nn.Linear(8, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        return model, optimizer


    def train_step(batch, **kwargs):
        kwargs["optimizer"].zero_grad()
        loss = torch.nn.functional.mse_loss(kwargs["model"](batch[0]), batch[1])
        loss.backward()
        kwargs["optimizer"].step()


    model, optimizer = setup(0.1)
    for step in range(100):
        train_step((torch.randn(32, 8), torch.randn(32, 1)), model=model, optimizer=optimizer)
    """


def test_kwargs_entry_of_a_tuple_returned_by_setup():
    finding = only(ll3(KWARGS_AND_TUPLE))
    assert (finding.code, finding.span.line) == ("LL301", 15)
    assert "SGD (built at line 7)" in finding.message
    assert [(r.span.line, r.message) for r in finding.related_locations] == [(7, "SGD is built here")]
    fixed, remaining = fix_text(textwrap.dedent(KWARGS_AND_TUPLE), LL3, unsafe=True, path="train.py")
    assert remaining == []
    assert 'clip_grad_norm_([p for group in kwargs["optimizer"].param_groups for p in group["params"]], max_norm=1.0)' in fixed


def test_kwargs_entry_quiet_with_a_clip():
    clipped = KWARGS_AND_TUPLE.replace(
        '        kwargs["optimizer"].step()',
        '        torch.nn.utils.clip_grad_norm_(kwargs["model"].parameters(), 1.0)\n        kwargs["optimizer"].step()',
    )
    assert ll3(clipped) == []


def test_kwargs_entry_passed_from_another_file():
    engine = KWARGS_AND_TUPLE.split("    model, optimizer = setup")[0].replace(
        "    def setup(lr):", "    def unused(lr):"
    )
    script = """
        import torch

        from engine import train_step

        model = torch.nn.Linear(8, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for step in range(100):
            train_step((torch.randn(32, 8), torch.randn(32, 1)), model=model, optimizer=optimizer)
        """
    finding = only(ll3(engine, path="engine.py", files={"main.py": script}))
    assert (finding.span.line, "SGD (passed to train_step() from main.py)" in finding.message) == (15, True)
    quiet = script.replace("optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)", "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)")
    assert ll3(engine, path="engine.py", files={"main.py": quiet}) == []


# -- a factory that chooses by a string option --------------------------------------------

FACTORY = """
    import argparse

    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--optim", default="sgd", choices=["sgd", "adam"])
    args = parser.parse_args()


    def make_optimizer(name, params):
        if name == "adam":
            return torch.optim.Adam(params, lr=1e-3)
        elif name == "sgd":
            return torch.optim.SGD(params, lr=0.1, momentum=0.9)
        raise ValueError(name)


    model = torch.nn.Linear(8, 1)
    optimizer = make_optimizer(args.optim, model.parameters())
    for step in range(100):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(torch.randn(32, 8)), torch.randn(32, 1)).backward()
        optimizer.step()
    """


def test_factory_follows_the_branch_the_default_selects():
    finding = only(ll3(FACTORY))
    assert (finding.code, finding.span.line, finding.severity.value) == ("LL301", 24, "warning")
    assert "SGD built at line 15, the default" in finding.message
    assert "Adam built at line 13, not chosen with the default name='sgd'" in finding.message


def test_factory_whose_default_is_adam_is_a_lower_risk():
    finding = only(ll3(FACTORY.replace('default="sgd"', 'default="adam"')))
    # both branches are momentum optimizers (Adam's β1): the default one is named
    assert "Adam built at line 13, the default" in finding.message


def test_factory_quiet_with_a_clip():
    clipped = FACTORY.replace(
        "    optimizer.step()", "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    optimizer.step()"
    )
    assert ll3(clipped) == []


def test_factory_in_another_file():
    optim = """
        import torch


        def build_optimizer(name, model):
            if name == "adam":
                return torch.optim.Adam(model.parameters(), lr=1e-3)
            return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        """
    script = FACTORY.split("    def make_optimizer")[0] + textwrap.dedent("""
        from optim import build_optimizer

        model = torch.nn.Linear(8, 1)
        optimizer = build_optimizer(args.optim, model)
        for step in range(100):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(torch.randn(32, 8)), torch.randn(32, 1)).backward()
            optimizer.step()
        """).replace("\n", "\n    ")
    finding = only(ll3(script, files={"optim.py": optim}))
    assert (finding.code, finding.span.line) == ("LL301", 19)
    assert "SGD built by build_optimizer() in optim.py" in finding.message
    assert ("optim.py", 8) in [(r.path, r.span.line) for r in finding.related_locations]


# -- a helper object that does the step -------------------------------------------------------

SCALER_CLASS = """
    import torch


    class NativeScaler:
        def __init__(self):
            self._scaler = torch.cuda.amp.GradScaler()

        def __call__(self, loss, optimizer, clip_grad=None, parameters=None):
            self._scaler.scale(loss).backward()
            if clip_grad is not None:
                assert parameters is not None
                self._scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
            self._scaler.step(optimizer)
            self._scaler.update()
    """

SCALER_SCRIPT = SCALER_CLASS + """

    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_scaler = NativeScaler()
    for step in range(100):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(torch.randn(32, 8)), torch.randn(32, 1))
        loss_scaler(loss, optimizer, parameters=model.parameters())
    """


def test_loss_scaler_called_without_clip_grad():
    finding = only(ll3(SCALER_SCRIPT))
    assert (finding.code, finding.span.line) == ("LL301", 25)
    assert "SGD (built at line 20) is stepped by NativeScaler() (at line 15)" in finding.message
    assert "leaves clip_grad to its default" in finding.message
    assert [r.span.line for r in finding.related_locations] == [20, 15]
    fixed, remaining = fix_text(textwrap.dedent(SCALER_SCRIPT), LL3, unsafe=True, path="train.py")
    assert remaining == []
    assert "    loss_scaler(loss, optimizer, parameters=model.parameters(), clip_grad=1.0)\n" in fixed


def test_loss_scaler_without_the_parameters_its_clip_reads_has_no_fix():
    # NativeScaler asserts parameters is not None once clip_grad is passed
    code = SCALER_SCRIPT.replace("loss_scaler(loss, optimizer, parameters=model.parameters())", "loss_scaler(loss, optimizer)")
    finding = only(ll3(code))
    assert finding.span.line == 25 and finding.fix is None


@pytest.mark.parametrize("clip_grad", ["1.0", "args.clip_grad"])
def test_loss_scaler_quiet_when_the_call_passes_clip_grad(clip_grad):
    code = SCALER_SCRIPT.replace(
        "    import torch\n",
        '    import argparse\n\n    import torch\n\n    parser = argparse.ArgumentParser()\n'
        '    parser.add_argument("--clip-grad", type=float, default=1.0)\n    args = parser.parse_args()\n',
        1,
    ).replace("parameters=model.parameters())", f"clip_grad={clip_grad}, parameters=model.parameters())")
    assert ll3(code) == []


def test_loss_scaler_passed_a_flag_that_defaults_to_none():
    code = SCALER_SCRIPT.replace(
        "    import torch\n",
        '    import argparse\n\n    import torch\n\n    parser = argparse.ArgumentParser()\n'
        '    parser.add_argument("--clip-grad", type=float, default=None)\n    args = parser.parse_args()\n',
        1,
    ).replace("parameters=model.parameters())", "clip_grad=args.clip_grad, parameters=model.parameters())")
    finding = only(ll3(code))
    # reported where the default is, which the fix sets
    assert (finding.span.line, "args.clip_grad, which defaults to None" in finding.message) == (7, True)
    fixed, _ = fix_text(textwrap.dedent(code), LL3, unsafe=True, path="train.py")
    assert 'parser.add_argument("--clip-grad", type=float, default=1.0)' in fixed


def test_loss_scaler_of_another_file_handed_through_a_training_function():
    # mae/deit style: util/misc.py's scaler, built in main.py, called in engine.py
    engine = """
        def train_one_epoch(model, loader, optimizer, loss_scaler):
            for x, y in loader:
                optimizer.zero_grad()
                loss = (model(x) - y).pow(2).mean()
                loss_scaler(loss, optimizer, parameters=model.parameters())
        """
    main = """
        import torch

        from engine import train_one_epoch
        from util.misc import NativeScaler

        model = torch.nn.Linear(8, 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
        loss_scaler = NativeScaler()
        loader = [(torch.randn(32, 8), torch.randn(32, 1))] * 10
        for epoch in range(10):
            train_one_epoch(model, loader, optimizer, loss_scaler)
        """
    files = {"util/misc.py": SCALER_CLASS, "util/__init__.py": "", "main.py": main}
    finding = only(ll3(engine, path="engine.py", files=files))
    assert finding.span.line == 6
    assert "AdamW (passed to train_one_epoch() from main.py) is stepped by NativeScaler() (at util/misc.py:15)" in finding.message
    quiet = engine.replace("parameters=model.parameters())", "clip_grad=1.0, parameters=model.parameters())")
    assert ll3(quiet, path="engine.py", files=files) == []


def test_a_scaler_that_always_clips_is_quiet():
    always = SCALER_SCRIPT.replace("            if clip_grad is not None:\n", "            if True:\n")
    assert ll3(always) == []


# -- import aliases (LL302) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "imports, keras",
    [
        ("import tensorflow.compat.v2 as tf", "tf.keras"),
        ("import tensorflow as tf", "tf.keras"),
        ("import keras", "keras"),
        ("from tensorflow import keras", "keras"),
        ("import tensorflow.keras as keras", "keras"),
    ],
)
def test_keras_import_aliases(imports, keras):
    code = f"""
        {imports}
        import numpy as np

        model = {keras}.Sequential([{keras}.layers.Dense(1)])
        model.compile(optimizer={keras}.optimizers.SGD(learning_rate=0.1, momentum=0.9), loss="mse")
        model.fit(np.zeros((1000, 8)), np.zeros((1000, 1)), batch_size=50, epochs=10)
        """
    finding = only(ll3(code))
    assert (finding.code, finding.span.line) == ("LL302", 6)
    assert "keras SGD with momentum 0.9" in finding.message
    assert ll3(code.replace("momentum=0.9)", "momentum=0.9, clipnorm=1.0)")) == []


# -- a value passed through several call levels ------------------------------------------------

LEVELS = """
    import torch


    def step(model, optimizer, x, y):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


    def epoch(model, optimizer, batches):
        for x, y in batches:
            step(model, optimizer, x, y)


    def fit(model, optimizer, epochs=10):
        batches = [(torch.randn(32, 8), torch.randn(32, 1)) for _ in range(10)]
        for _ in range(epochs):
            epoch(model, optimizer, batches)


    net = torch.nn.Linear(8, 1)
    fit(net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    """


def test_optimizer_passed_through_three_call_levels():
    finding = only(ll3(LEVELS))
    assert (finding.code, finding.span.line) == ("LL301", 8)
    assert "SGD (built at line 23)" in finding.message


def test_several_call_levels_quiet_with_a_clip():
    clipped = LEVELS.replace(
        "        optimizer.step()", "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        optimizer.step()"
    )
    assert ll3(clipped) == []
