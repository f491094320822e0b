"""Config files that training code reads (losslint/analysis/configs.py): their keys
as values, findings where the fix goes (the YAML's trainer section, the DeepSpeed
JSON), fixes that keep the file's layout, and the pipeline around them: --fix,
--diff, JSON line edits, noqa comments, the cache, a file alone against the tree."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.analysis.configs import load_config, parse_config
from losslint.cli import main
from losslint.pipeline import lint_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"

LIGHTNING_FIXED_YAML = """\
# Training configuration
model:
  lr: 0.01

data:
  batch_size: 48  # per device

trainer:
  max_epochs: 20
  accelerator: cpu
  log_every_n_steps: 10
  gradient_clip_val: 1.0
"""

DEEPSPEED_FIXED_JSON = """\
{
  "gradient_clipping": 1.0,
  "train_micro_batch_size_per_gpu": 32,
  "gradient_accumulation_steps": 1,
  "optimizer": {
    "type": "SGD",
    "params": {
      "lr": 0.01,
      "momentum": 0.9
    }
  },
  "fp16": {
    "enabled": false
  },
  "steps_per_print": 100
}
"""


def check(*args: str) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(main, ["check", "--output-format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args])


# -- flagged, quiet ----------------------------------------------------------------------


def test_lightning_yaml_trainer_section_without_clip(config_project):
    config_project("lightning_omegaconf")
    code, findings = check("--no-cache", ".")
    [finding] = [f for f in findings if f["code"] == "LL304"]
    assert (finding["path"], finding["line"], finding["column"]) == ("conf/train.yaml", 8, 1)
    assert "trainer section, which has no gradient_clip_val" in finding["message"]
    assert "SGD" in finding["message"]
    related = {(r["path"], r["line"]) for r in finding["related_locations"]}
    assert ("train.py", 12) in related  # the Trainer(**cfg.trainer) call
    assert finding["fix"]["edits"] == [
        {"content": "  gradient_clip_val: 1.0\n", "location": {"line": 12, "column": 1}, "end_location": {"line": 12, "column": 1}}
    ]
    assert not any(f["path"] == "train.py" and f["code"] == "LL304" for f in findings)


def test_lightning_yaml_quiet_twin(config_project):
    config_project("lightning_omegaconf_clipped")
    code, findings = check("--no-cache", ".")
    assert findings == []  # gradient_clip_val: 0.5 in the YAML; B = 50 divides N = 1000
    assert code == 0


def test_batch_size_from_the_yaml(config_project):
    root = config_project("lightning_omegaconf")
    (root / "train.py").write_text((root / "train.py").read_text().replace(", drop_last=True", ""))
    _, findings = check("--no-cache", ".")
    [batch] = [f for f in findings if f["code"] == "LL201"]
    assert "N=1000, B=48" in batch["message"]


def test_deepspeed_json_without_gradient_clipping(config_project):
    config_project("deepspeed_json")
    _, findings = check("--no-cache", ".")
    [finding] = findings
    assert (finding["code"], finding["path"], finding["line"]) == ("LL301", "ds_config.json", 4)
    assert 'without "gradient_clipping"' in finding["message"] and "SGD (momentum 0.9)" in finding["message"]
    assert [(r["path"], r["line"]) for r in finding["related_locations"]] == [("train.py", 16)]


def test_deepspeed_json_quiet_twin(config_project):
    config_project("deepspeed_json_clipped")
    assert check("--no-cache", ".") == (0, [])


def test_deepspeed_zero_clipping_is_flagged_at_the_key(config_project):
    root = config_project("deepspeed_json_clipped")
    config = root / "ds_config.json"
    config.write_text(config.read_text().replace('"gradient_clipping": 1.0', '"gradient_clipping": 0.0'))
    _, findings = check("--no-cache", ".")
    [finding] = findings
    assert finding["line"] == 14 and '"gradient_clipping": 0.0' in finding["message"]
    assert run("--no-cache", "--fix", "--unsafe-fixes", ".").exit_code == 0
    assert '"gradient_clipping": 1.0,' in config.read_text()


# -- fixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "config", "expected"),
    [("lightning_omegaconf", "conf/train.yaml", LIGHTNING_FIXED_YAML), ("deepspeed_json", "ds_config.json", DEEPSPEED_FIXED_JSON)],
)
def test_fix_in_the_config_keeps_its_layout_and_relints_clean(config_project, name, config, expected):
    root = config_project(name)
    before = {p: p.read_text() for p in root.rglob("*.py")}
    diff = run("--no-cache", "--diff", "--unsafe-fixes", ".")
    assert diff.exit_code == 1 and f"+++ b/{config}" in diff.output
    assert (root / config).read_text() != expected  # --diff writes nothing
    fixed = run("--no-cache", "--fix", "--unsafe-fixes", ".")
    assert fixed.exit_code == 0, fixed.output
    assert (root / config).read_text() == expected
    assert {p: p.read_text() for p in root.rglob("*.py")} == before  # the code is left as it was
    assert load_config(str(root / config)).error is None
    assert check("--no-cache", ".") == (0, [])


def test_safe_fix_leaves_the_config(config_project):
    root = config_project("lightning_omegaconf")
    before = (root / "conf/train.yaml").read_text()
    assert run("--no-cache", "--fix", ".").exit_code == 1  # the clip is an unsafe fix
    assert (root / "conf/train.yaml").read_text() == before


def test_noqa_comment_in_the_yaml(config_project):
    root = config_project("lightning_omegaconf")
    config = root / "conf/train.yaml"
    config.write_text(config.read_text().replace("trainer:\n", "trainer:  # noqa: LL304\n"))
    assert check("--no-cache", ".") == (0, [])
    config.write_text(config.read_text().replace("# noqa: LL304", "# noqa: LL201"))
    assert [f["code"] for f in check("--no-cache", ".")[1]] == ["LL304"]


def test_select_and_ignore_treat_config_findings_as_the_rule(config_project):
    config_project("deepspeed_json")
    assert check("--no-cache", "--ignore", "LL301", ".") == (0, [])
    assert [f["code"] for f in check("--no-cache", "--select", "LL3", ".")[1]] == ["LL301"]


# -- the pipeline around them ----------------------------------------------------------------


def test_warm_cache_sees_a_config_edit(config_project):
    root = config_project("lightning_omegaconf")
    train = root / "train.py"
    train.write_text(train.read_text().replace(", drop_last=True", ""))
    codes = lambda: sorted(f["code"] for f in check(".")[1])  # noqa: E731
    assert codes() == ["LL201", "LL304"]
    assert codes() == ["LL201", "LL304"]  # replayed
    config = root / "conf/train.yaml"
    config.write_text(config.read_text().replace("batch_size: 48", "batch_size: 50"))
    assert codes() == ["LL304"]  # train.py's own bytes did not change: its findings did
    config.write_text(config.read_text().replace("  log_every_n_steps: 10\n", "  log_every_n_steps: 10\n  gradient_clip_val: 1.0\n"))
    assert codes() == []
    config.write_text(config.read_text().replace("batch_size: 50", "batch_size: 48"))
    assert codes() == ["LL201"]


def test_a_file_alone_and_the_tree_agree(config_project):
    config_project("lightning_omegaconf")
    _, tree = check("--no-cache", ".")
    _, alone = check("--no-cache", "train.py", "model.py")
    assert alone == tree


def test_unreached_configs_are_not_linted(config_project):
    root = config_project("deepspeed_json")
    (root / "other").mkdir()
    (root / "other" / "broken.yaml").write_text("a: [unclosed\n")
    shutil.copy(root / "ds_config.json", root / "other" / "unused.json")
    _, findings = check("--no-cache", ".")
    assert [f["path"] for f in findings] == ["ds_config.json"]


def test_a_config_read_by_two_scripts_says_so(config_project):
    root = config_project("deepspeed_json")
    shutil.copy(root / "train.py", root / "train_large.py")
    _, findings = check("--no-cache", ".")
    [finding] = findings
    assert "read by 2 scripts (train.py, train_large.py)" in finding["message"]


# -- the value resolver ------------------------------------------------------------------------


def _batch_message(code: str, config: str, name: str = "conf.yaml") -> list[str]:
    findings = lint_text(textwrap.dedent(code), path="train.py", files={name: textwrap.dedent(config)})
    return [f.message for f in findings if f.code.startswith("LL20")]


LOADER = """
    import torch, yaml
    from torch.utils.data import DataLoader, TensorDataset
    {read}
    ds = TensorDataset(torch.randn(1000, 4))
    loader = DataLoader(ds, batch_size={batch}, shuffle=True)
    for x, in loader:
        model(x).sum().backward()
"""


@pytest.mark.parametrize(
    ("read", "batch"),
    [
        ('cfg = yaml.safe_load(open("conf.yaml"))', 'cfg["data"]["batch_size"]'),
        ('with open("conf.yaml") as f:\n        cfg = yaml.safe_load(f)', 'cfg["data"]["batch_size"]'),
        ('from omegaconf import OmegaConf\n    cfg = OmegaConf.load("conf.yaml")\n    data_cfg = cfg.data', "data_cfg.batch_size"),
        ('from omegaconf import OmegaConf\n    cfg = OmegaConf.load("conf.yaml")', "cfg.train.bs"),  # ${data.batch_size}
    ],
)
def test_keys_are_values(read, batch):
    code = LOADER.replace("{read}", read).replace("{batch}", batch)
    [message] = _batch_message(code, "data:\n  batch_size: 48\ntrain:\n  bs: ${data.batch_size}\n")
    assert "B=48" in message


def test_unresolvable_interpolation_is_unknown():
    code = LOADER.replace("{read}", 'from omegaconf import OmegaConf\n    cfg = OmegaConf.load("conf.yaml")').replace("{batch}", "cfg.data.batch_size")
    messages = _batch_message(code, "data:\n  batch_size: ${oc.env:BATCH_SIZE}\n")
    assert messages and all("B=" not in m for m in messages)  # B unknown (LL202), never guessed


def test_documents_keep_positions():
    document = parse_config("/x/c.toml", '[trainer]\nmax_epochs = 10\n\n[data]\nbatch_size = 32  # per device\n')
    node = document.node(("data", "batch_size"))
    assert (node.value, node.line, node.column, node.end_column, node.key_column) == (32, 5, 13, 15, 0)
    yaml = parse_config("/x/c.yaml", "a:\n  b: 'x'  # c\n")
    node = yaml.node(("a", "b"))
    assert (node.value, node.line, node.column, node.end_column, node.key_line) == ("x", 2, 5, 8, 2)
    assert parse_config("/x/c.json", "{'a': 1}").error is not None  # YAML, not JSON
