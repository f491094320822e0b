"""LL3xx (momentum without clipping) beyond the rules' own examples: the fixtures
of every framework end to end (findings, exact fixed text, clean re-lint), the AMP
order of a fixed loop, cross-file optimizers, the configured max norm, imports
added once, unscale_ never twice, severities, and the shapes real projects use
(timm, nanoGPT, accelerate, several optimizers)."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import pytest

from losslint.config import Settings
from losslint.engine import Linter, fix_text, lint_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LL3 = Settings(select=["LL3"])


def _dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


def _files(files: dict[str, str]) -> dict[str, str]:
    return {name + ".py": _dedent(body) for name, body in files.items()}


def lint(code: str, settings: Settings = LL3, **files: str):
    return lint_text(_dedent(code), settings, path="train.py", files=_files(files))


def fix(code: str, settings: Settings = LL3, **files: str) -> str:
    """The fixed text, after checking it parses and re-lints clean."""
    fixed, remaining = fix_text(_dedent(code), settings, unsafe=True, path="train.py", files=_files(files))
    assert remaining == [], [f.message for f in remaining]
    ast.parse(fixed)
    assert lint_text(fixed, settings, path="train.py", files=_files(files)) == []
    return fixed


def replaced(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# -- fixtures, end to end ------------------------------------------------------------

FIXTURE_CASES = {
    "torch_sgd_momentum_loop.py": (
        [("LL301", 38)],
        [("        loss.backward()\n", "        loss.backward()\n        torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)\n")],
    ),
    "torch_amp_accumulation.py": (
        [("LL305", 29), ("LL301", 32)],
        [
            (
                "            torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 1.0)\n            scaler.unscale_(opt_d)\n",
                "            scaler.unscale_(opt_d)\n            torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 1.0)\n",
            ),
            (
                "            scaler.step(opt_g)\n",
                "            scaler.unscale_(opt_g)\n"
                "            torch.nn.utils.clip_grad_norm_(generator.parameters(), max_norm=1.0)\n"
                "            scaler.step(opt_g)\n",
            ),
        ],
    ),
    "keras_compile_adam.py": (
        [("LL302", 17), ("LL302", 23)],
        [
            ('    optimizer="adam",\n', "    optimizer=keras.optimizers.Adam(global_clipnorm=1.0),\n"),
            ("    momentum=0.9,\n)", "    momentum=0.9,\n    global_clipnorm=1.0,\n)"),
        ],
    ),
    "optax_adam.py": (
        [("LL303", 22)],
        [
            (
                "    tx = optax.adamw(learning_rate=schedule, weight_decay=1e-4)\n",
                "    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(learning_rate=schedule, weight_decay=1e-4))\n",
            )
        ],
    ),
    "lightning_module.py": (
        [("LL304", 31)],
        [('"--gradient-clip-val", type=float, default=None)', '"--gradient-clip-val", type=float, default=1.0)')],
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_CASES))
def test_fixture_findings_and_exact_fix(name):
    source = (FIXTURES / name).read_text()
    expected_findings, edits = FIXTURE_CASES[name]
    findings = lint_text(source, LL3, path=name)
    assert [(f.code, f.span.line) for f in findings] == expected_findings, [f.message for f in findings]
    assert all(f.fix is not None and f.fix.applicability.value == "unsafe" for f in findings)
    fixed, remaining = fix_text(source, LL3, unsafe=True, path=name)
    assert fixed == replaced(source, *edits)
    ast.parse(fixed)
    assert remaining == [] and lint_text(fixed, LL3, path=name) == []


def test_amp_order_backward_unscale_clip_step_update():
    fixed, _ = fix_text((FIXTURES / "torch_amp_accumulation.py").read_text(), LL3, unsafe=True)
    lines = [line.strip() for line in fixed.splitlines()]

    def index(prefix: str, start: int = 0) -> int:
        return next(i for i in range(start, len(lines)) if lines[i].startswith(prefix))

    backward = index("scaler.scale(loss_g / accum_steps).backward()")
    for optimizer, model in (("opt_d", "discriminator"), ("opt_g", "generator")):
        unscale = index(f"scaler.unscale_({optimizer})")
        clip = index(f"torch.nn.utils.clip_grad_norm_({model}.parameters()")
        step = index(f"scaler.step({optimizer})")
        update = index("scaler.update()")
        assert backward < unscale < clip < step < update, (optimizer, backward, unscale, clip, step, update)
        assert sum(line == f"scaler.unscale_({optimizer})" for line in lines) == 1


def test_cross_file_project(tmp_path):
    project = tmp_path / "momentum_project"
    shutil.copytree(FIXTURES / "momentum_project", project)
    report = Linter(LL3).run([project])
    found = sorted((Path(f.path).name, f.code, f.span.line) for f in report.findings)
    assert found == [("engine.py", "LL301", 10), ("train.py", "LL301", 15)]
    assert any("passed to train_one_epoch() from" in f.message for f in report.findings)
    assert any("built by make_optimizer() in" in f.message for f in report.findings)
    Linter(Settings(select=["LL3"], unsafe_fixes=True)).run([project], fix=True, unsafe=True)
    engine = (project / "engine.py").read_text()
    assert 'torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm=1.0)\n        optimizer.step()' in engine
    assert "torch.nn.utils.clip_grad_norm_(model.head.parameters(), max_norm=1.0)\n        head_optimizer.step()" in (project / "train.py").read_text()
    assert Linter(LL3).run([project]).findings == []


# -- fix details --------------------------------------------------------------------------


def test_max_norm_from_configuration():
    settings = Settings(select=["LL3"], clip_max_norm=0.5)
    fixed = fix(
        """
        import torch
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x, y in loader:
            loss_fn(model(x), y).backward()
            opt.step()
        """,
        settings,
    )
    assert "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)" in fixed


def test_several_optimizers_each_clipped_and_import_added_once():
    fixed = fix(
        """
        from torch import optim
        opt_a = optim.Adam(encoder.parameters())
        opt_b = optim.SGD(decoder.parameters(), lr=0.1, momentum=0.9)
        for x in loader:
            loss(x).backward()
            opt_a.step()
            opt_b.step()
        """
    )
    assert fixed == _dedent(
        """
        from torch import optim
        import torch
        opt_a = optim.Adam(encoder.parameters())
        opt_b = optim.SGD(decoder.parameters(), lr=0.1, momentum=0.9)
        for x in loader:
            loss(x).backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), max_norm=1.0)
            opt_a.step()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), max_norm=1.0)
            opt_b.step()
        """
    )


def test_existing_unscale_is_not_repeated():
    fixed = fix(
        """
        import torch
        scaler = torch.cuda.amp.GradScaler()
        opt = torch.optim.AdamW(model.parameters())
        for x in loader:
            scaler.scale(model(x)).backward()
            scaler.unscale_(opt)
            log(grad_norm(model))
            scaler.step(opt)
            scaler.update()
        """
    )
    assert fixed.count("unscale_") == 1
    assert "    log(grad_norm(model))\n    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n    scaler.step(opt)" in fixed


def test_accelerate_prepared_optimizer_is_clipped_through_the_accelerator():
    fixed = fix(
        """
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator(gradient_accumulation_steps=4)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        for batch in loader:
            with accelerator.accumulate(model):
                accelerator.backward(model(**batch).loss)
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    assert (
        "        if accelerator.sync_gradients:\n"
        "            accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
        "        optimizer.step()"
    ) in fixed
    assert "import torch\n" in fixed and fixed.count("import torch") == 1


def test_trainer_class_with_optimizer_in_init():
    code = """
        import torch
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.95)
            def train_step(self, batch):
                self.optimizer.zero_grad()
                self.model(batch).backward()
                self.optimizer.step()
        """
    findings = lint(code)
    assert [f.code for f in findings] == ["LL301"] and "~20 steps" in findings[0].message
    assert "torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=1.0)\n        self.optimizer.step()" in fix(code)


def test_trainer_class_in_another_file():
    findings = lint(
        """
        class Trainer:
            def __init__(self, model, optimizer):
                self.model, self.optimizer = model, optimizer
            def fit(self, loader):
                for batch in loader:
                    self.model(batch).backward()
                    self.optimizer.step()
        """,
        main="""
        import torch
        from train import Trainer
        Trainer(net, optimizer=torch.optim.Adam(net.parameters(), lr=1e-3)).fit(loader)
        """,
    )
    assert [f.code for f in findings] == ["LL301"] and "passed to Trainer() from main.py" in findings[0].message


# -- flags whose default is off -------------------------------------------------------------


def test_timm_style_clip_grad_flag_and_create_optimizer_v2():
    code = """
        import argparse
        from timm.optim import create_optimizer_v2
        from timm.utils import NativeScaler, dispatch_clip_grad
        parser = argparse.ArgumentParser()
        parser.add_argument('--opt', default='sgd', type=str)
        parser.add_argument('--momentum', type=float, default=0.9)
        parser.add_argument('--clip-grad', type=float, default=None, metavar='NORM')
        args = parser.parse_args()
        optimizer = create_optimizer_v2(model, opt=args.opt, lr=0.1, momentum=args.momentum)
        def train_one_epoch(model, loader, optimizer, loss_scaler=None):
            for x, y in loader:
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                if loss_scaler is not None:
                    loss_scaler(loss, optimizer, clip_grad=args.clip_grad, parameters=model.parameters())
                else:
                    loss.backward()
                    if args.clip_grad is not None:
                        dispatch_clip_grad(model.parameters(), value=args.clip_grad)
                    optimizer.step()
        def main():
            train_one_epoch(model, loader, optimizer)
        """
    findings = lint(code)
    assert [(f.code, f.span.line) for f in findings] == [("LL301", 7)]
    assert "only when args.clip_grad is set" in findings[0].message and "momentum 0.9" in findings[0].message
    assert "parser.add_argument('--clip-grad', type=float, default=1.0, metavar='NORM')" in fix(code)


def test_nanogpt_style_module_setting():
    code = """
        import torch
        grad_clip = 0.0  # clip gradients at this value, or disable if == 0.0
        optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95))
        scaler = torch.cuda.amp.GradScaler(enabled=True)
        while True:
            scaler.scale(model(x, y)).backward()
            if grad_clip != 0.0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        """
    findings = lint(code)
    assert [(f.code, f.span.line) for f in findings] == [("LL301", 2)]
    assert "grad_clip defaults to 0.0" in findings[0].message and "β2=0.95" in findings[0].message
    assert "grad_clip = 1.0  # clip gradients" in fix(code)


def test_nanogpt_default_on_is_quiet():
    assert lint(
        """
        import torch
        grad_clip = 1.0
        optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95))
        while True:
            model(x, y).backward()
            if grad_clip != 0.0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        """
    ) == []


def test_unknown_flag_is_not_a_finding():
    assert lint(
        """
        import torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        def train(cfg):
            model(x).backward()
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
        """
    ) == []


# -- severities and messages --------------------------------------------------------------------


def test_severity_sgd_warning_adam_info():
    findings = lint(
        """
        import torch
        sgd = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
        adam = torch.optim.Adam(b.parameters())
        lion = Lion(c.parameters())
        for x in loader:
            loss(x).backward()
            sgd.step()
            adam.step()
        """
    )
    assert [(f.code, f.severity.value) for f in findings] == [("LL301", "warning"), ("LL301", "info")]
    assert "~10 steps" in findings[0].message and "~1000 steps" in findings[1].message


def test_gan_clip_of_one_model_does_not_protect_the_other():
    findings = lint(
        """
        import torch
        opt_g = torch.optim.Adam(gen.parameters())
        opt_d = torch.optim.Adam(disc.parameters())
        for x in loader:
            loss(x).backward()
            torch.nn.utils.clip_grad_norm_(disc.parameters(), 1.0)
            opt_d.step()
            opt_g.step()
        """
    )
    assert [(f.code, f.span.line) for f in findings] == [("LL301", 8)]


def test_clip_of_an_unwrapped_model_counts():
    assert lint(
        """
        import torch
        model_without_ddp = model.module
        optimizer = torch.optim.AdamW(model_without_ddp.parameters(), lr=1e-4)
        for x in loader:
            model(x).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
        """
    ) == []


def test_keras_string_optimizer_without_keras_name_imports_keras():
    fixed = fix(
        """
        from keras import layers, Sequential
        model = Sequential([layers.Dense(1)])
        model.compile(optimizer="nadam", loss="mse")
        """
    )
    assert fixed.startswith("from keras import layers, Sequential\nimport keras\n")
    # standalone keras may be a Keras before 2.4, which has no global_clipnorm
    assert 'model.compile(optimizer=keras.optimizers.Nadam(clipnorm=1.0), loss="mse")' in fixed


def test_keras_clip_argument_follows_the_keras_the_code_runs_on():
    standalone = fix(
        """
        from keras.models import Sequential
        from keras.optimizers import Adam
        model = Sequential()
        model.compile(optimizer=Adam(), loss="mse")
        """
    )
    assert "Adam(clipnorm=1.0)" in standalone
    tf_keras = fix(
        """
        import tensorflow as tf
        model = tf.keras.Sequential()
        model.compile(optimizer=tf.keras.optimizers.Adam(), loss="mse")
        """
    )
    assert "Adam(global_clipnorm=1.0)" in tf_keras


def test_timm_optimizer_kwargs_from_args_and_unknown_kwargs():
    code = """
        import argparse
        from timm.optim import create_optimizer_v2, optimizer_kwargs
        parser = argparse.ArgumentParser()
        parser.add_argument('--opt', default='adamw', type=str)
        args = parser.parse_args()
        optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args))
        other = create_optimizer_v2(model, **settings)
        for x in loader:
            model(x).backward()
            optimizer.step()
            other.step()
        """
    findings = lint(code)
    assert [(f.code, f.span.line) for f in findings] == [("LL301", 10)]
    assert "opt='adamw'" in findings[0].message and "β1=0.9" in findings[0].message


# -- optimizers handed to a package's training function (round 2) ---------------------------


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dedent(body))


_T5_LIKE = {
    "T5_training.py": """
        import torch.optim as optim
        from utils import setup, train

        def fsdp_main(args, model, train_loader):
            setup()
            optimizer = optim.AdamW(model.parameters(), lr=args.lr)
            for epoch in range(1, args.epochs + 1):
                train(args, model, train_loader, optimizer, epoch)
        """,
    "utils/__init__.py": "from .environment import bfloat_support\nfrom .train_utils import setup, train\n",
    "utils/environment.py": "def bfloat_support():\n    return True\n",
}


def test_optimizer_handed_through_a_package_reexport_is_reported_where_built(tmp_path):
    # utils/__init__.py re-exports train_utils.train by a relative import (pytorch/examples FSDP)
    _write_tree(tmp_path, {**_T5_LIKE, "utils/train_utils.py": """
        def setup():
            pass

        def train(args, model, train_loader, optimizer, epoch):
            for batch in train_loader:
                optimizer.zero_grad()
                model(**batch)["loss"].backward()
                optimizer.step()
        """})
    findings = Linter(LL3).run([tmp_path]).findings
    assert [(Path(f.path).name, f.span.line) for f in findings] == [("T5_training.py", 6)]
    assert "AdamW (built at line 6) is stepped by train() at utils/train_utils.py:8" in findings[0].message
    assert findings[0].fix is None


def test_optimizer_handed_through_a_package_reexport_to_a_clipping_train_is_quiet(tmp_path):
    _write_tree(tmp_path, {**_T5_LIKE, "utils/train_utils.py": """
        import torch

        def setup():
            pass

        def train(args, model, train_loader, optimizer, epoch):
            for batch in train_loader:
                optimizer.zero_grad()
                model(**batch)["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """})
    assert Linter(LL3).run([tmp_path]).findings == []


def test_adam_spike_move_follows_the_betas():
    from losslint.rules.momentum_common import ADAM, Momentum

    default = Momentum("Adam", ADAM, 0.9, 0.999).describe()
    low_beta1 = Momentum("Adam", ADAM, 0.5, 0.999).describe()
    assert "moves it ~1.3x" in default and "~1000 steps" in default
    assert "moves it ~3.5x" in low_beta1  # less averaging: more of the spike at once
    assert "~20 steps" in Momentum("Adam", ADAM, 0.9, 0.95).describe()
