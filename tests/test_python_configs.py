"""LL306 on Python config systems, through the CLI as a user runs it: OpenMMLab
configs merged with their ``_base_`` files (fixtures/configs/openmmlab/), yacs /
detectron2 defaults with the YAML configs merged on top (fixtures/configs/yacs/).
Each: flagged, its quiet twin, the exact fixed file, which parses and re-lints
clean; and mmengine's merge rules (``_delete_``, a dict over None, bases in order)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.analysis.python_configs import Configs, PythonConfig, merge, read_config
from losslint.cli import main
from losslint.project import ProjectFacts, collect_module_facts

FIXTURES = Path(__file__).parent.parent / "fixtures" / "configs"


def run(*args: str, cwd: Path) -> tuple[int, list[dict]]:
    import os

    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["check", "--no-cache", "--select", "LL306", *args])
    finally:
        os.chdir(before)
    output = result.output
    return result.exit_code, (json.loads(output) if "--output-format" in args else output)


def tree(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


# -- OpenMMLab ------------------------------------------------------------------------


SCHEDULE_FIXED = """\
# training schedule for 1x
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)

# optimizer
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
"""


def test_openmmlab_unclipped_base_schedule_is_one_finding_where_it_decides(tmp_path):
    root = tree(tmp_path, "openmmlab")
    code, findings = run(".", "--output-format", "json", cwd=root)
    assert code == 1
    by_file = {f["path"]: f for f in findings}
    assert sorted(by_file) == ["_base_/schedules/schedule_1x.py", "retinanet/retinanet_r50_fpn_adamw_1x_coco.py"]
    base = by_file["_base_/schedules/schedule_1x.py"]
    assert (base["code"], base["line"], base["column"], base["severity"]) == ("LL306", 8, 5, "warning")
    assert "SGD with momentum 0.9" in base["message"]
    assert "optim_wrapper sets clip_grad=None; 1 leaf config of this run inherits it (retinanet/retinanet_r50_fpn_1x_coco.py)" in base["message"]
    related = {(r["path"], r["line"], r["message"]) for r in base["related_locations"]}
    assert related == {("retinanet/retinanet_r50_fpn_1x_coco.py", 1, "a config that is run with it (SGD)")}
    # the AdamW leaf replaces the base's wrapper (_delete_=True): it decides for itself
    adamw = by_file["retinanet/retinanet_r50_fpn_adamw_1x_coco.py"]
    assert (adamw["line"], adamw["severity"]) == (6, "info")
    assert "AdamW" in adamw["message"] and "sets no clip_grad" in adamw["message"] and "inherit" not in adamw["message"]


def test_openmmlab_fix_is_exact_and_the_fixed_configs_relint_clean(tmp_path):
    root = tree(tmp_path, "openmmlab")
    code, _ = run(".", "--fix", "--unsafe-fixes", cwd=root)
    assert code == 0
    # the fix goes where the finding is: the base schedule, once, for every leaf inheriting it
    assert (root / "_base_/schedules/schedule_1x.py").read_text() == SCHEDULE_FIXED
    leaf = root / "retinanet/retinanet_r50_fpn_1x_coco.py"
    assert leaf.read_text() == (FIXTURES / "openmmlab/retinanet/retinanet_r50_fpn_1x_coco.py").read_text()
    adamw = (root / "retinanet/retinanet_r50_fpn_adamw_1x_coco.py").read_text()
    assert "    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05),  # no clip: AdamW alone\n" in adamw
    assert "    clip_grad=dict(max_norm=35, norm_type=2),\n)\n" in adamw
    for path in root.rglob("*.py"):
        ast.parse(path.read_text())
    assert run(".", "--output-format", "json", cwd=root) == (0, [])
    # the fixed tree is the quiet twin, file for file
    for path in (FIXTURES / "openmmlab_clipped").rglob("*.py"):
        assert (root / path.relative_to(FIXTURES / "openmmlab_clipped")).read_text() == path.read_text()


def test_openmmlab_quiet_twin(tmp_path):
    root = tree(tmp_path, "openmmlab_clipped")
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


def test_openmmlab_quiet_when_no_leaf_trains_unclipped(tmp_path):
    root = tree(tmp_path, "openmmlab")
    for name in ("retinanet_r50_fpn_1x_coco.py", "retinanet_r50_fpn_adamw_1x_coco.py"):
        (root / "retinanet" / name).unlink()
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


def test_openmmlab_base_configs_are_judged_through_their_leaves(tmp_path):
    root = tree(tmp_path, "openmmlab")
    code, findings = run("_base_", "--output-format", "json", cwd=root)
    assert (code, findings) == (0, [])  # no leaf in the run: nothing is run with the base
    # more leaves inheriting the same schedule: still one finding, counting them, naming three
    for name in ("voc", "lvis", "cityscapes", "objects365"):
        shutil.copy(root / "retinanet/retinanet_r50_fpn_1x_coco.py", root / f"retinanet/retinanet_r50_fpn_1x_{name}.py")
    _, findings = run(".", "--output-format", "json", cwd=root)
    [base] = [f for f in findings if f["path"] == "_base_/schedules/schedule_1x.py"]
    assert len(findings) == 2
    assert "5 leaf configs of this run inherit it (retinanet/retinanet_r50_fpn_1x_cityscapes.py, " in base["message"]
    assert base["message"].count(".py") == 3 and ", ...)" in base["message"]
    assert len(base["related_locations"]) == 5
    # a leaf that merges its own learning rate into the wrapper still takes the base's clip_grad=None
    voc = root / "retinanet/retinanet_r50_fpn_1x_voc.py"
    text = voc.read_text()
    voc.write_text(text + "optim_wrapper = dict(optimizer=dict(lr=0.01))\n")
    _, findings = run(".", "--output-format", "json", cwd=root)
    assert len(findings) == 2 and "5 leaf configs of this run inherit it" in findings[0]["message"]
    # a leaf that replaces the wrapper with its own optimizer decides for itself: its own finding
    voc.write_text(text + "optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))\n")
    _, findings = run(".", "--output-format", "json", cwd=root)
    assert sorted(f["path"] for f in findings) == [
        "_base_/schedules/schedule_1x.py", "retinanet/retinanet_r50_fpn_1x_voc.py", "retinanet/retinanet_r50_fpn_adamw_1x_coco.py",
    ]
    [base] = [f for f in findings if f["path"] == "_base_/schedules/schedule_1x.py"]
    assert "4 leaf configs of this run inherit it" in base["message"]


def _project(files: dict[str, str], root: Path) -> ProjectFacts:
    project = ProjectFacts()
    for name, text in files.items():
        path = root / name
        project.add(collect_module_facts(ast.parse(text), text, path.stem), str(path))
    return project


def test_merge_follows_mmengine(tmp_path):
    files = {
        "base_a.py": "optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9), clip_grad=None)\n",
        "base_b.py": "model = dict(type='X')\n",
        "child.py": "_base_ = ['./base_a.py', './base_b.py']\noptim_wrapper = dict(optimizer=dict(lr=0.01))\n",
        "replace.py": "_base_ = './base_a.py'\noptim_wrapper = dict(_delete_=True, optimizer=dict(type='Adagrad'))\n",
        "broken.py": "_base_ = './base_a.py'\noptim_wrapper = dict(clip_grad=dict(max_norm=1))\n",
        "twice.py": "_base_ = ['./base_a.py', './base_a.py']\n",
    }
    project = _project(files, tmp_path)
    configs = Configs.of(project, str(tmp_path / "child.py"))
    child = configs.effective(str(tmp_path / "child.py"))
    optimizer = child["optim_wrapper"].items["optimizer"]
    # a dict merges key by key: the child's lr over the base's, the base's type and momentum kept
    assert {k: s.node.value for k, s in optimizer.items.items()} == {"type": "SGD", "lr": 0.01, "momentum": 0.9}
    assert optimizer.items["lr"].path.endswith("child.py") and optimizer.items["momentum"].path.endswith("base_a.py")
    assert child["optim_wrapper"].items["clip_grad"].node.value is None
    # _delete_=True replaces the base's dict: neither lr nor clip_grad survive
    replaced = configs.effective(str(tmp_path / "replace.py"))["optim_wrapper"]
    assert set(replaced.items) == {"optimizer"} and set(replaced.items["optimizer"].items) == {"type"}
    # a dict over the base's None is mmengine's TypeError: not loadable, not judged
    assert configs.effective(str(tmp_path / "broken.py")) is None
    # one key from two bases: "Duplicate key is not allowed among bases"
    assert configs.effective(str(tmp_path / "twice.py")) is None
    assert configs.is_leaf(str(tmp_path / "child.py")) and not configs.is_leaf(str(tmp_path / "base_a.py"))


def test_merge_of_values_directly():
    base = read_config(ast.parse("optim_wrapper = dict(optimizer=dict(type='SGD', momentum=0.9))\n"))
    child = read_config(ast.parse("_base_ = 'b.py'\noptim_wrapper = dict(clip_grad=dict(max_norm=35))\n"))
    assert isinstance(base, PythonConfig) and child is not None and child.bases == ("b.py",)
    merged = merge(child.values, "child", merge(base.values, "base", {}))
    assert set(merged["optim_wrapper"].items) == {"optimizer", "clip_grad"}
    # a key changed after its assignment is unknown, never guessed
    changed = read_config(ast.parse("optim_wrapper = dict(clip_grad=None)\noptim_wrapper.update(clip_grad=dict(max_norm=1))\n"))
    assert changed is not None and not changed.values["optim_wrapper"].known


# -- yacs / detectron2 ---------------------------------------------------------------


def test_yacs_defaults_flagged_when_a_yaml_config_leaves_clipping_off(tmp_path):
    root = tree(tmp_path, "yacs")
    code, findings = run(".", "--output-format", "json", cwd=root)
    assert code == 1
    [finding] = findings
    assert (finding["path"], finding["line"], finding["severity"]) == ("config/defaults.py", 19, "warning")
    assert "SGD with momentum 0.9" in finding["message"]
    assert "1 of the 2 YAML configs that merge onto these defaults leave it off (configs/detector_1x.yaml)" in finding["message"]
    related = {(r["path"], r["line"]) for r in finding["related_locations"]}
    assert ("config/defaults.py", 13) in related and ("configs/detector_1x.yaml", 1) in related
    assert finding["fix"]["applicability"] == "unsafe"
    code, _ = run(".", "--fix", "--unsafe-fixes", cwd=root)
    fixed = (root / "config/defaults.py").read_text()
    original = (FIXTURES / "yacs/config/defaults.py").read_text()
    assert fixed == original.replace('CN({"ENABLED": False})', 'CN({"ENABLED": True})')
    ast.parse(fixed)
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


def test_yacs_quiet_twin_every_yaml_config_enables_clipping(tmp_path):
    root = tree(tmp_path, "yacs_clipped")  # detector_1x.yaml turns CLIP_GRADIENTS on
    assert run(".", "--output-format", "json", cwd=root) == (0, [])
    root = tree(tmp_path, "yacs")
    (root / "configs/detector_1x.yaml").unlink()
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


def test_yacs_quiet_when_the_solver_has_no_momentum(tmp_path):
    root = tree(tmp_path, "yacs")
    defaults = root / "config/defaults.py"
    defaults.write_text(defaults.read_text().replace("_C.SOLVER.MOMENTUM = 0.9", "_C.SOLVER.MOMENTUM = 0.0"))
    assert run(".", "--output-format", "json", cwd=root) == (0, [])
    # ... unless a YAML config gives it momentum and no clip
    (root / "configs/detector_1x.yaml").write_text('_BASE_: "Base-Detector.yaml"\nSOLVER:\n  MOMENTUM: 0.9\n')
    _, findings = run(".", "--output-format", "json", cwd=root)
    assert [f["line"] for f in findings] == [19]


def test_yacs_yaml_of_other_defaults_is_not_counted(tmp_path):
    root = tree(tmp_path, "yacs")
    (root / "configs/detector_1x.yaml").unlink()
    # keys these defaults do not have: yacs would refuse to merge it onto them
    (root / "configs/other.yaml").write_text("SOLVER:\n  MOMENTUM: 0.9\nDEEPLAB:\n  ASPP: 256\n")
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


def test_yacs_quiet_when_the_project_clips_by_a_key_of_its_own(tmp_path):
    root = tree(tmp_path, "yacs")
    defaults = root / "config/defaults.py"
    defaults.write_text(defaults.read_text().replace("_C.SOLVER.MAX_ITER = 90000", "_C.SOLVER.MAX_ITER = 90000\n_C.SOLVER.GRAD_CLIP = 0.0"))
    _, findings = run(".", "--output-format", "json", cwd=root)
    assert len(findings) == 1  # its own clip is off too
    (root / "configs/detector_1x.yaml").write_text('_BASE_: "Base-Detector.yaml"\nSOLVER:\n  GRAD_CLIP: 5.0\n')
    assert run(".", "--output-format", "json", cwd=root) == (0, [])


@pytest.mark.parametrize("name", ["openmmlab", "openmmlab_clipped", "yacs", "yacs_clipped"])
def test_fixtures_parse(name):
    for path in (FIXTURES / name).rglob("*.py"):
        ast.parse(path.read_text())


def test_yacs_warm_cache_sees_a_yaml_edit(tmp_path, monkeypatch):
    """The defaults module's findings depend on the YAML configs merged onto it: a
    warm run must see an edited, added or removed YAML (its own bytes unchanged)."""
    root = tree(tmp_path, "yacs")
    (root / ".git").mkdir()
    monkeypatch.setenv("LOSSLINT_CACHE_DIR", str(tmp_path / "cache"))

    def lines() -> list[int]:
        import os

        before = os.getcwd()
        os.chdir(root)
        try:
            result = CliRunner().invoke(main, ["check", "--select", "LL306", "--output-format", "json", "."])
        finally:
            os.chdir(before)
        return [f["line"] for f in json.loads(result.output)]

    assert lines() == [19]
    assert lines() == [19]  # replayed from the cache
    unclipped = root / "configs/detector_1x.yaml"
    text = unclipped.read_text()
    unclipped.write_text(text + "  CLIP_GRADIENTS:\n    ENABLED: True\n")
    assert lines() == []  # every YAML config now enables clipping
    (root / "configs/detector_3x.yaml").write_text(text.replace("90000", "270000"))
    assert lines() == [19]  # a new YAML config that leaves it off
    (root / "configs/detector_3x.yaml").unlink()
    assert lines() == []
