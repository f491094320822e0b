"""Configs a trainer reads from its command line (losslint/analysis/trainer_configs.py):
LightningCLI's --config YAML, TrainingArguments YAMLs of HfArgumentParser/TrlParser,
accelerate's config naming a DeepSpeed JSON. Each is found from how the script is
launched (a README or shell command, default_config_files, the configs/ layout),
reported in the config at the key where the fix goes, fixed there with its comments
and order kept, and quiet once fixed (and in each fixture's quiet twin)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from click.testing import CliRunner

from losslint.analysis import trainer_configs
from losslint.analysis.configs import load_config
from losslint.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"


def check(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def fix(*args: str) -> None:
    result = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", *args])
    assert result.exit_code in (0, 1), result.output


def in_configs(findings: list[dict]) -> list[tuple[str, str, int]]:
    return sorted((f["code"], f["path"], f["line"]) for f in findings if not f["path"].endswith(".py"))


# -- LightningCLI --------------------------------------------------------------------------

CLI_CONFIG = "configs/resnet18_cifar10.yaml"


def test_lightning_cli_config_from_the_readme_command_is_flagged_at_its_trainer_section(config_project):
    config_project("lightning_cli")
    findings = [f for f in check(".") if f["code"] == "LL304"]
    assert [(f["path"], f["line"], f["column"]) for f in findings] == [(CLI_CONFIG, 3, 1)]
    finding = findings[0]
    assert "LitResNet (SGD) is trained by LightningCLI with resnet18_cifar10.yaml" in finding["message"]
    assert "momentum 0.9" in finding["message"]
    related = {(r["path"], r["line"], r["message"]) for r in finding["related_locations"]}
    assert ("main.py", 14, "LightningCLI builds the Trainer from this config here") in related
    assert ("README.md", 6, "the run is launched with this config here") in related
    assert ("model.py", 30, "SGD is built here, in configure_optimizers") in related


def test_lightning_cli_fix_adds_gradient_clip_val_and_keeps_the_config(config_project):
    root = config_project("lightning_cli")
    before = (root / CLI_CONFIG).read_text()
    fix(".")
    after = (root / CLI_CONFIG).read_text()
    assert after == before.replace(
        "  log_every_n_steps: 50  # one line per 50 steps\n",
        "  log_every_n_steps: 50  # one line per 50 steps\n  gradient_clip_val: 1.0\n",
    )
    assert load_config(str(root / CLI_CONFIG), after).error is None
    assert not [f for f in check(".") if f["code"].startswith("LL3")]


def test_lightning_cli_quiet_twin_and_command_line_override(config_project):
    config_project("lightning_cli_clipped")
    assert not [f for f in check(".") if f["code"].startswith("LL3")]


def test_lightning_cli_clip_given_on_the_command_line_is_quiet(config_project):
    root = config_project("lightning_cli")
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("--config configs/resnet18_cifar10.yaml", "--config configs/resnet18_cifar10.yaml --trainer.gradient_clip_val=0.5"))
    assert not [f for f in check(".") if f["code"].startswith("LL3")]


def test_lightning_cli_without_a_launch_uses_the_configs_layout_and_else_reports_at_the_call(config_project):
    root = config_project("lightning_cli")
    (root / "README.md").unlink()
    assert in_configs([f for f in check(".") if f["code"] == "LL304"]) == [("LL304", CLI_CONFIG, 3)]
    shutil.rmtree(root / "configs")
    findings = [f for f in check(".") if f["code"] == "LL304"]
    assert [(f["path"], f["line"], f["severity"]) for f in findings] == [("main.py", 14, "info")]
    assert "trainer.gradient_clip_val" in findings[0]["message"]


def test_lightning_cli_subcommand_layout_null_clip_is_set_in_place(config_project):
    root = config_project("lightning_cli")
    (root / CLI_CONFIG).write_text(textwrap.dedent("""\
        fit:
          trainer:
            max_epochs: 30
            gradient_clip_val: null  # set per experiment
          model:
            lr: 0.05
        """))
    findings = [f for f in check(".") if f["code"] == "LL304"]
    assert [(f["path"], f["line"], f["column"]) for f in findings] == [(CLI_CONFIG, 4, 5)]
    fix(".")
    assert (root / CLI_CONFIG).read_text() == textwrap.dedent("""\
        fit:
          trainer:
            max_epochs: 30
            gradient_clip_val: 1.0  # set per experiment
          model:
            lr: 0.05
        """)


def test_launch_commands_are_parsed_as_a_shell_would(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "configs").mkdir()
    (tmp_path / "scripts" / "train.py").write_text("")
    for name in ("a.yaml", "b.yaml", "acc.yaml"):
        (tmp_path / "configs" / name).write_text("trainer: {}\n")
    (tmp_path / "run.sh").write_text(
        "accelerate launch --config_file configs/acc.yaml \\\n"
        "    scripts/train.py --config configs/{a,b}.yaml --lr 0.1  # two runs\n"
        "python scripts/train.py --config $CONFIG\n"  # unknown: not a launch
        "python other/train.py --config configs/a.yaml\n"  # another script
    )
    found = trainer_configs.launches(str(tmp_path / "scripts" / "train.py"))
    assert [(l.line, [Path(c).name for c in l.configs], l.overrides, Path(l.accelerate_config or "").name) for l in found] == [
        (1, ["a.yaml"], (("lr", "0.1"),), "acc.yaml"),
        (1, ["b.yaml"], (("lr", "0.1"),), "acc.yaml"),
    ]


# -- TrainingArguments from a TRL recipe ------------------------------------------------------

RECIPE = "recipes/qwen2.5-0.5b/sft/config.yaml"


def test_trl_recipe_findings_are_in_the_recipe(config_project):
    config_project("hf_trl_yaml")
    findings = check(".")
    assert in_configs(findings) == [("LL207", RECIPE, 21), ("LL301", RECIPE, 17)]
    clip = next(f for f in findings if f["code"] == "LL301")
    assert clip["severity"] == "info" and "max_grad_norm: 0.0" in clip["message"]
    related = {(r["path"], r["line"]) for r in clip["related_locations"]}
    assert ("scripts/sft.py", 34) in related and ("README.md", 6) in related and ("README.md", 12) in related


def test_trl_recipe_run_only_on_several_processes_has_no_partial_batch(config_project):
    root = config_project("hf_trl_yaml")
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("python scripts/sft.py --config recipes/qwen2.5-0.5b/sft/config.yaml\n", ""))
    assert in_configs(check(".")) == [("LL301", RECIPE, 17)]  # accelerate's 8 processes fill the last batch


def test_trl_recipe_fix_keeps_comments_and_order_and_relints_clean(config_project):
    root = config_project("hf_trl_yaml")
    before = (root / RECIPE).read_text()
    fix(".")
    after = (root / RECIPE).read_text()
    assert after == before.replace(
        "max_grad_norm: 0.0  # clipping off: bf16 runs were stable without it\n",
        "max_grad_norm: 1.0  # clipping off: bf16 runs were stable without it\n",
    ) + "dataloader_drop_last: true\n"
    assert load_config(str(root / RECIPE), after).error is None
    assert in_configs(check(".")) == []


def test_trl_recipe_quiet_twin(config_project):
    config_project("hf_trl_yaml_clipped")
    assert in_configs(check(".")) == []


def test_parse_json_file_of_training_arguments(config_project):
    root = config_project("hf_trl_yaml")
    (root / "scripts" / "run.py").write_text(textwrap.dedent("""\
        from transformers import HfArgumentParser, TrainingArguments
        parser = HfArgumentParser((TrainingArguments,))
        (training_args,) = parser.parse_json_file("args.json")
        """))
    (root / "scripts" / "args.json").write_text('{\n  "output_dir": "out",\n  "max_grad_norm": 0,\n  "max_steps": 1000\n}\n')
    findings = [f for f in check("scripts/run.py") if f["path"].endswith("args.json")]
    assert [(f["code"], f["line"]) for f in findings] == [("LL301", 3)]  # max_steps: no LL207


# -- accelerate launch --config_file naming a DeepSpeed JSON ---------------------------------

DS_JSON = "configs/ds_zero2.json"


def test_accelerate_config_leads_to_the_deepspeed_json(config_project):
    config_project("accelerate_deepspeed")
    findings = [f for f in check(".") if f["code"] == "LL301"]
    assert [(f["path"], f["line"], f["column"]) for f in findings] == [(DS_JSON, 4, 5)]
    related = {(r["path"], r["line"]) for r in findings[0]["related_locations"]}
    assert ("train.py", 23) in related and ("launch.sh", 3) in related
    assert ("configs/accelerate_zero2.yaml", 3) in related


def test_accelerate_deepspeed_fix_and_quiet_twin(config_project, tmp_path):
    root = config_project("accelerate_deepspeed")
    before = (root / DS_JSON).read_text()
    fix(".")
    after = (root / DS_JSON).read_text()
    assert after == before.replace('    "train_micro_batch_size_per_gpu"', '    "gradient_clipping": 1.0,\n    "train_micro_batch_size_per_gpu"', 1)
    assert load_config(str(root / DS_JSON), after).error is None
    assert not [f for f in check(".") if f["code"] == "LL301"]
    config_project("accelerate_deepspeed_clipped")
    assert not [f for f in check(".") if f["code"] == "LL301"]
