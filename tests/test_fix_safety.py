"""Every fix losslint offers on fixtures/, applied without reading it
(``check --fix --unsafe-fixes`` on a copy): each fixed file compiles, gives pyflakes
no undefined name the original did not have, re-lints clean of the codes that were
fixed, and a second --fix changes nothing; each fix alone does the same
(benchmarks/fix_safety.py, which runs these checks over any corpus). The fixed
training programs (the verify scenarios and the user-style project) still train:
a few steps each, on CPU, in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Fixes applied to every fixture and the fixed programs trained: run by CI, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

from losslint.verify.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _fix_safety_module():
    spec = importlib.util.spec_from_file_location("fix_safety", ROOT / "benchmarks" / "fix_safety.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


fix_safety = _fix_safety_module()


@pytest.fixture(scope="module")
def fixed_fixtures(tmp_path_factory) -> tuple[Path, list, dict]:
    root = tmp_path_factory.mktemp("fix-safety") / "fixtures"
    shutil.copytree(FIXTURES, root)
    failures, counts = fix_safety.check_tree(root, jobs=1)
    return root, failures, counts


def test_every_fix_on_the_fixtures_is_safe(fixed_fixtures):
    _, failures, counts = fixed_fixtures
    assert counts["fixes offered"] > 20 and counts["files fixed"] > 10, counts
    assert failures == [], "\n".join(f"{f.code} {f.path}:{f.line}: {f.what}" for f in failures)


def test_the_checks_catch_a_fix_that_breaks_the_file(tmp_path: Path, monkeypatch):
    """The checks can fail: a fix that leaves an undefined name is reported, with
    its rule code and line."""
    import libcst as cst

    import losslint.rules.partial_batch_torch as rules
    from losslint.findings import Applicability, Fix, NodeEdit

    def broken_fix(ctx, call, flag, name, description):
        return Fix(description, Applicability.SAFE, (NodeEdit(ctx.span(call), cst.Call, lambda node: cst.parse_expression("undefined_loader()")),))

    monkeypatch.setattr(rules, "set_flag_fix", broken_fix)
    shutil.copy(FIXTURES / "torch_mnist_classifier.py", tmp_path / "train.py")
    failures, _ = fix_safety.check_tree(tmp_path, jobs=1)
    assert any(f.code == "LL201" and f.path == "train.py" and "undefined_loader" in f.what for f in failures), failures


def _train(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "torch", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.needs_cuda], ids=lambda s: s.name)
def test_a_fixed_scenario_still_trains(fixed_fixtures, scenario):
    root, _, _ = fixed_fixtures
    program = root / "scenarios" / scenario.program
    assert program.read_text() != (FIXTURES / "scenarios" / scenario.program).read_text()  # it was fixed
    done = _train([sys.executable, program.name], program.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loss" in done.stdout.lower(), done.stdout[-2000:]


def test_the_fixed_user_project_still_trains(fixed_fixtures, tmp_path: Path):
    root, _, _ = fixed_fixtures
    project = root / "verify_user_project"
    assert (project / "train.py").read_text() != (FIXTURES / "verify_user_project" / "train.py").read_text()
    done = _train(
        [sys.executable, "train.py", "--epochs", "1", "--train-rows", "330", "--val-rows", "64", "--log-every", "1",
         "--out", str(tmp_path / "checkpoints")],
        project,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 5 loss" in done.stdout, done.stdout[-2000:]
