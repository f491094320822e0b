"""Hydra apps (losslint/analysis/hydra_configs.py): ``@hydra.main`` hands its function
the config composed from the primary config's defaults list; its keys are values
(``cfg.data.batch_size``), and a Trainer built from ``cfg.trainer`` is judged on the
composed section, with the finding and the fix in the group file that lacks the key
(fixtures/configs/hydra, modelled on ashleve/lightning-hydra-template; its quiet
twin fixtures/configs/hydra_clipped)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.analysis.configs import load_config
from losslint.analysis.hydra_configs import compose
from losslint.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"

TRAINER_FIXED = """\
_target_: lightning.pytorch.trainer.Trainer

default_root_dir: ${paths.output_dir}

min_epochs: 1 # prevents early stopping
max_epochs: 10

accelerator: cpu
devices: 1

# perform a validation loop every N training epochs
check_val_every_n_epoch: 1
gradient_clip_val: 1.0
"""


def check(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["check", "--output-format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def ll304(*args: str) -> list[dict]:
    return [f for f in check("--no-cache", *args, ".") if f["code"] == "LL304"]


def test_trainer_group_without_clip_is_flagged_in_the_group_file(config_project):
    config_project("hydra")
    findings = check("--no-cache", ".")
    [finding] = findings  # drop_last=True: the batch size from the config is not reported
    assert (finding["code"], finding["path"], finding["line"], finding["severity"]) == ("LL304", "configs/trainer/default.yaml", 1, "warning")
    assert "MNISTLitModule (SGD built at src/models/mnist_module.py:16" in finding["message"]
    assert "trainer section, which has no gradient_clip_val" in finding["message"]
    related = {(r["path"], r["line"], r["message"]) for r in finding["related_locations"]}
    assert ("src/train.py", 13, "the Trainer is built from this section here") in related
    assert (
        "configs/train.yaml", 8,
        "default.yaml is composed into the Hydra config by this defaults-list entry (- trainer: default)",
    ) in related
    assert finding["fix"]["edits"] == [
        {"content": "gradient_clip_val: 1.0\n", "location": {"line": 13, "column": 1}, "end_location": {"line": 13, "column": 1}}
    ]


def test_quiet_twin(config_project):
    config_project("hydra_clipped")
    assert check("--no-cache", ".") == []


def test_fix_goes_in_the_group_file_and_relints_clean(config_project):
    root = config_project("hydra")
    result = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", "."])
    assert result.exit_code == 0, result.output
    assert (root / "configs/trainer/default.yaml").read_text() == TRAINER_FIXED
    assert load_config(str(root / "configs/trainer/default.yaml")).root is not None  # re-parses
    for name in ("configs/train.yaml", "configs/data/mnist.yaml", "src/train.py"):
        assert (root / name).read_text() == (FIXTURES / "hydra" / name).read_text()
    assert check("--no-cache", ".") == []


def test_batch_size_comes_from_the_composed_data_group(config_project):
    root = config_project("hydra")
    train = root / "src/train.py"
    train.write_text(train.read_text().replace(", drop_last=True", ""))
    [batch] = [f for f in check("--no-cache", ".") if f["code"] == "LL201"]
    assert "N=1000, B=48" in batch["message"]  # cfg.data.batch_size: configs/data/mnist.yaml, through train(cfg)


def test_a_file_alone_and_the_tree_agree(config_project):
    config_project("hydra")
    assert check("--no-cache", "src/train.py", "src/models/mnist_module.py") == check("--no-cache", ".")


def test_order_of_the_defaults_list_decides(config_project):
    root = config_project("hydra")
    primary = root / "configs/train.yaml"
    text = primary.read_text()
    # the primary's own content after the groups (its _self_ last) overrides the trainer group
    primary.write_text(text.replace("  - _self_\n", "") + "\ntrainer:\n  gradient_clip_val: 0.5\n")
    assert ll304() == []
    # _self_ first: the group merges over it, and a group that sets null wins
    trainer = root / "configs/trainer/default.yaml"
    trainer.write_text(trainer.read_text() + "gradient_clip_val: null\n")
    primary.write_text(text + "\ntrainer:\n  gradient_clip_val: 0.5\n")
    [finding] = ll304()
    assert (finding["path"], finding["line"]) == ("configs/trainer/default.yaml", 13)
    assert "whose gradient_clip_val is None" in finding["message"]


def test_override_and_group_at_package(config_project):
    root = config_project("hydra")
    (root / "configs/trainer/clipped.yaml").write_text("defaults:\n  - default\n\ngradient_clip_val: 0.5\n")
    primary = root / "configs/train.yaml"
    text = primary.read_text()
    primary.write_text(text.replace("  - optional local: default\n", "  - optional local: default\n  - override trainer: clipped\n"))
    assert ll304() == []  # trainer/clipped.yaml composes trainer/default.yaml, then clips
    # group@package: the trainer group's config placed at pl_trainer
    primary.write_text(text.replace("  - trainer: default\n", "  - trainer@pl_trainer: default\n"))
    train = root / "src/train.py"
    train.write_text(train.read_text().replace("cfg.trainer", "cfg.pl_trainer"))
    [finding] = ll304()
    assert finding["path"] == "configs/trainer/default.yaml" and "the pl_trainer section" in finding["message"]


@pytest.mark.parametrize(
    "change",
    [
        ("configs/train.yaml", "  - trainer: default\n", "  - trainer: ???\n"),  # chosen on the command line only
        ("configs/train.yaml", "  - trainer: default\n", "  - trainer: ${oc.env:TRAINER}\n"),
        ("configs/trainer/default.yaml", "devices: 1\n", "devices: 1\ngradient_clip_val: ${oc.env:CLIP}\n"),
        ("configs/train.yaml", "  - trainer: default\n", "  - trainer: missing\n"),  # no such file
    ],
)
def test_what_cannot_be_known_is_not_guessed(config_project, change):
    root = config_project("hydra")
    name, old, new = change
    path = root / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    assert ll304() == []


def test_the_cache_sees_an_edit_of_a_group_file(config_project):
    root = config_project("hydra")
    codes = lambda: [f["code"] for f in check(".")]  # noqa: E731
    assert codes() == ["LL304"]
    assert codes() == ["LL304"]  # replayed
    trainer = root / "configs/trainer/default.yaml"
    trainer.write_text(trainer.read_text() + "gradient_clip_val: 0.5\n")
    assert codes() == []


def test_composition_of_the_template_layout():
    primary = str(FIXTURES / "hydra/configs/train.yaml")
    composition = compose(os.path.abspath(primary), load_config)
    assert composition is not None and composition.unknown == []
    packages = [(Path(p.key).relative_to(FIXTURES / "hydra/configs").as_posix(), p.package) for p in composition.pieces]
    assert packages == [
        ("train.yaml", ()), ("data/mnist.yaml", ("data",)), ("model/mnist.yaml", ("model",)),
        ("trainer/default.yaml", ("trainer",)), ("paths/default.yaml", ("paths",)),
    ]  # experiment: null and the optional, missing local config are not part of the run
    root = composition.document.root
    assert composition.document.scalar(root.get("data").get("batch_size")) == 48
    assert root.get("trainer").document.key.endswith("trainer/default.yaml")
    # ${paths.data_dir} is ${paths.root_dir}/data/, text around an ${oc.env:...}: unknown
    from losslint.project import UNKNOWN

    assert composition.document.scalar(root.get("data").get("data_dir")) is UNKNOWN


# -- the optimizer handed to __init__ by the model config (fixtures/configs/hydra_partial) --

PARTIAL_TRAINER_FIXED = """\
_target_: lightning.pytorch.trainer.Trainer

default_root_dir: ${paths.output_dir}

min_epochs: 1 # prevents early stopping
max_epochs: 10

accelerator: cpu
devices: 1

# set True to to ensure deterministic results
deterministic: False
gradient_clip_val: 1.0
"""

ADAM_TARGET = "  _target_: torch.optim.Adam\n"
OPTIMIZER_CALL = "optimizer = self.hparams.optimizer(params=self.trainer.model.parameters())"


def test_partial_optimizer_of_the_model_config_is_flagged_in_the_trainer_group(config_project):
    config_project("hydra_partial")
    [finding] = check("--no-cache", ".")
    assert (finding["code"], finding["path"], finding["line"], finding["severity"]) == ("LL304", "configs/trainer/default.yaml", 1, "info")
    assert "MNISTLitModule (Adam from model.optimizer built at src/models/mnist_module.py:31 in configure_optimizers)" in finding["message"]
    assert "trainer section, which has no gradient_clip_val" in finding["message"] and "β1=0.9, β2=0.999" in finding["message"]
    related = {(r["path"], r["line"], r["column"], r["message"]) for r in finding["related_locations"]}
    assert (
        "configs/model/mnist.yaml", 4, 3,
        "the optimizer's class (model.optimizer._target_), handed to MNISTLitModule(optimizer=...) by hydra.utils.instantiate",
    ) in related
    assert ("src/models/mnist_module.py", 31, 1, "Adam from model.optimizer is built here, in configure_optimizers") in related
    assert ("src/train.py", 9, 24, "the Trainer is built from this section here") in related
    assert finding["fix"]["edits"] == [
        {"content": "gradient_clip_val: 1.0\n", "location": {"line": 13, "column": 1}, "end_location": {"line": 13, "column": 1}}
    ]


def test_partial_optimizer_fix_goes_in_the_trainer_group_and_relints_clean(config_project):
    root = config_project("hydra_partial")
    result = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", "."])
    assert result.exit_code == 0, result.output
    assert (root / "configs/trainer/default.yaml").read_text() == PARTIAL_TRAINER_FIXED
    assert load_config(str(root / "configs/trainer/default.yaml")).root is not None
    for name in ("configs/train.yaml", "configs/model/mnist.yaml", "src/train.py", "src/models/mnist_module.py"):
        assert (root / name).read_text() == (FIXTURES / "hydra_partial" / name).read_text()
    assert check("--no-cache", ".") == []


def test_partial_optimizer_quiet_twin(config_project):
    config_project("hydra_partial_clipped")  # the same app, its trainer group sets gradient_clip_val: 0.5
    assert check("--no-cache", ".") == []


@pytest.mark.parametrize(
    "optimizer, expected",
    [
        ("  _target_: torch.optim.SGD\n  momentum: 0.9\n", ("warning", "SGD from model.optimizer with momentum 0.9")),
        ("  _target_: torch.optim.AdamW\n  betas: [0.8, 0.99]\n", ("info", "AdamW from model.optimizer (β1=0.8, β2=0.99)")),
        ("  _target_: torch.optim.SGD\n", None),  # momentum 0
        ("  _target_: torch.optim.Adam\n  betas: [0.0, 0.999]\n", None),  # β1 = 0: no running average of gradients
        ("  _target_: src.optim.Custom\n", None),  # not an optimizer losslint knows
        ("  _target_: ${oc.env:OPTIMIZER}\n", None),  # not known statically
    ],
)
def test_the_config_nodes_target_and_keys_are_the_optimizer(config_project, optimizer, expected):
    root = config_project("hydra_partial")
    model = root / "configs/model/mnist.yaml"
    model.write_text(model.read_text().replace(ADAM_TARGET, optimizer))
    findings = ll304()
    if expected is None:
        assert findings == []
    else:
        [finding] = findings
        assert finding["severity"] == expected[0] and expected[1] in finding["message"]


@pytest.mark.parametrize(
    "changes",
    [
        [(OPTIMIZER_CALL, 'optimizer = self.hparams["optimizer"](self.parameters())')],
        [(OPTIMIZER_CALL, "optimizer = hydra.utils.instantiate(self.hparams.optimizer, params=self.parameters())")],
        [  # stored on self, not saved as a hyperparameter
            ("self.save_hyperparameters(logger=False)", "self.make_optimizer = optimizer"),
            (OPTIMIZER_CALL, "optimizer = self.make_optimizer(self.parameters())"),
        ],
    ],
)
def test_other_ways_to_call_what_init_was_given(config_project, changes):
    root = config_project("hydra_partial")
    module = root / "src/models/mnist_module.py"
    text = "import hydra\n" + module.read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    module.write_text(text)
    line = next(n for n, code in enumerate(text.splitlines(), 1) if code.strip().startswith("optimizer = "))
    [finding] = ll304()
    assert f"MNISTLitModule (Adam from model.optimizer built at src/models/mnist_module.py:{line} in" in finding["message"]


@pytest.mark.parametrize(
    "path, old, new",
    [
        # not saved in self.hparams: the call is not what __init__ was given
        ("src/models/mnist_module.py", "save_hyperparameters(logger=False)", 'save_hyperparameters(logger=False, ignore=["optimizer"])'),
        ("src/models/mnist_module.py", "save_hyperparameters(logger=False)", 'save_hyperparameters("net", "compile")'),
        # the model config does not say (the optimizer comes from the command line or an experiment)
        ("configs/model/mnist.yaml", "optimizer:\n" + ADAM_TARGET, "optimizer:\n"),
        ("configs/train.yaml", "  - model: mnist\n", "  - model: ???\n"),
        # the module is built in code, not from the config
        ("src/train.py", "hydra.utils.instantiate(cfg.model)", "MNISTLitModule(net=None, optimizer=None, scheduler=None, compile=False)"),
    ],
)
def test_an_optimizer_that_is_not_known_is_not_guessed(config_project, path, old, new):
    root = config_project("hydra_partial")
    target = root / path
    assert old in target.read_text()
    target.write_text(target.read_text().replace(old, new))
    if "MNISTLitModule(" in new:
        target.write_text("from src.models.mnist_module import MNISTLitModule\n" + target.read_text())
    assert ll304() == []


def test_partial_optimizer_a_file_alone_and_the_tree_agree(config_project):
    config_project("hydra_partial")
    assert check("--no-cache", "src/train.py", "src/models/mnist_module.py") == check("--no-cache", ".")
