"""losslint verify end to end: real smoke trainings on the CPU.

Two training sessions, each shared by the tests below it (one worker start-up
each, which is most of the cost):

- the built-in scenarios through the command line, ``losslint verify
  --scenarios --device cpu`` (3 seeds; 30-50 s on 2 shared cores);
- the user-style project in fixtures/verify_user_project (all fixes, and the
  clip alone), plus scripts that crash, hang or need a GPU (each stops after its
  original: fail-fast), through the Python API.

Both are marked slow (CI runs them: .ci/run installs the verify extra). Without
torch, keras or matplotlib the module is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
for _extra in ("keras", "matplotlib"):  # found, not imported (keras would pick its TensorFlow backend here)
    if importlib.util.find_spec(_extra) is None:
        pytest.skip(f"{_extra} is not installed (the verify extra)", allow_module_level=True)

from losslint.config import Settings  # noqa: E402
from losslint.verify.harness import HarnessOptions  # noqa: E402
from losslint.verify.programs import load_program  # noqa: E402
from losslint.verify.report import exit_status, format_table, to_json  # noqa: E402
from losslint.verify.verifier import Subject, verify  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
USER_PROJECT = ROOT / "fixtures" / "verify_user_project"
FAMILY_CODES = {"LL1": ("LL101", "LL102", "LL104"), "LL2": ("LL201", "LL202", "LL204"), "LL3": ("LL301", "LL302")}


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenarios")
    command = [
        sys.executable, "-m", "losslint", "verify", "--scenarios", "--device", "cpu",
        "--output-format", "json", "--plot", str(out / "plot.png"), "--keep", str(out / "kept"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    return result, out


def test_every_scenario_fix_is_validated(scenarios):
    result, _ = scenarios
    assert result.returncode == 0, result.stdout + result.stderr
    items = json.loads(result.stdout)
    names = {item["scenario"] for item in items}
    assert names == {
        "torch-classification", "torch-ssd-multitask", "keras-ssd", "torch-grad-accumulation", "torch-momentum-outlier",
        "torch-cuda-amp",
    }
    skipped = [item for item in items if item["scenario"] == "torch-cuda-amp"]
    assert [item["verdict"] for item in skipped] == ["not run"] and "without a GPU" in skipped[0]["reason"]
    items = [item for item in items if item["scenario"] != "torch-cuda-amp"]
    for item in items:
        assert item["validated"], item
        assert item["device"] == "cpu" and item["seconds"] > 0
        assert {"code", "before", "after", "threshold"} <= set(item)
    # progress went to stderr, the JSON alone to stdout
    assert "[1/" in result.stderr


def test_each_family_fails_before_and_passes_after(scenarios):
    items = json.loads(scenarios[0].stdout)
    for family, codes in FAMILY_CODES.items():
        rows = [item for item in items if item["code"] in codes]
        assert rows, f"no scenario row for {family}"
        for item in rows:
            before, after, limit = item["before"], item["after"], item["threshold"]
            null = item["null"]
            assert item["seeds"] == 3 and len(item["scores"]["S" if item["measure"] != "outlier" else "R"]["before"]["per_seed"]) == 3
            if item["measure"] == "dip":  # under-weighted last step: S below its null before, within after
                assert before < null["low"] and null["low"] <= after <= null["high"] * 1.1, item
            elif item["measure"] == "spike":  # S above its null before, within after; U and F within too
                assert before > null["high"] and null["low"] / 1.1 <= after <= null["high"] * 1.1, item
                assert null["source"] == "per-sample resampling"
                f_after = item["scores"]["F"]["after"]
                assert f_after["median"] <= f_after["null"]["high"] * 1.1
            else:  # outlier update ratio R > limit before only
                assert before > limit >= after, item
            # the series behind the scores, per seed
            assert len(item["series"]["before"]) == 3 and len(item["series"]["before"][0]["loss"]) > 30
    clip = next(item for item in items if item["code"] == "LL301")
    assert clip["measure"] == "outlier" and clip["before"] > 10
    assert clip["clip_fraction"] is not None and clip["suggested_max_norm"] > 0


def test_scenario_plot_and_keras_step_loss(scenarios):
    _, out = scenarios
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Keras logs a running epoch mean; the harness recovers the step loss from it,
    # which must equal the loss backward() saw.
    records = [json.loads(p.read_text()) for p in (out / "kept" / "runs").glob("run-*.json")]
    keras_steps = [s for r in records for s in r["steps"] if "loss_backward" in s]
    assert len(keras_steps) > 40
    for step in keras_steps:
        assert step["loss"] == pytest.approx(step["loss_backward"], rel=2e-3, abs=1e-4)
    # and the shrink made the last Keras batch of an epoch 2 samples
    assert {s["batch"] for s in keras_steps} == {16, 2}


BASE_SCRIPT = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

train_loader = DataLoader(TensorDataset(torch.randn(330, 8), torch.randn(330, 1)), batch_size=32, shuffle=True)
model = nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(3):
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        {problem}
"""
PROBLEMS = {
    "crashes": "raise RuntimeError('shapes do not match: the data changed')",
    "hangs": "import time; time.sleep(3600)",
    "needs-gpu": "model.cuda()",
}


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("user")
    subjects = [
        Subject("all", "script", load_program(USER_PROJECT / "train.py", Settings())),
        Subject("clip-only", "script", load_program(USER_PROJECT / "train.py", Settings(select=["LL301"]))),
    ]
    subjects.append(Subject("correct", "script", load_program(ROOT / "fixtures" / "verify_correct" / "train.py", Settings()), control=True))
    for name, problem in PROBLEMS.items():
        script = directory / name / "train.py"
        script.parent.mkdir()
        script.write_text(BASE_SCRIPT.replace("{problem}", problem))
        subjects.append(Subject(name, "script", load_program(script, Settings()), timeout=4.0))
    before = {p: p.read_bytes() for p in USER_PROJECT.rglob("*") if p.is_file()}
    workdir = Path(tempfile.mkdtemp(dir=directory))
    options = HarnessOptions(workdir=workdir, device="cpu", workers=2, timeout=60)
    verify(subjects, options)
    after = {p: p.read_bytes() for p in USER_PROJECT.rglob("*") if p.is_file()}
    return {s.name: s for s in subjects}, before == after


def _rows(subject):
    return {row.code: row.judgement for row in subject.rows}


def test_user_project_end_to_end(user_runs):
    subjects, untouched = user_runs
    assert untouched, "verify wrote into the user's project"
    rows = _rows(subjects["all"])
    assert rows["LL202"].verdict == "validated" and rows["LL202"].before > rows["LL202"].threshold
    assert rows["LL101"].verdict == "validated"
    assert rows["all"].verdict == "validated"
    # LL101's safe fix keeps the loss scaled by 1/B: a clip at 1.0 never engages, and verify says so.
    assert rows["LL301"].verdict == "failed" and "on a normal step" in rows["LL301"].reason
    table = format_table([subjects["all"]], "cpu")
    assert "LL202 train.py:53" in table and "3 of 4 fixes validated, 1 failed" in table
    assert exit_status([subjects["all"]]) == 1
    # N = 5000, B = 64: the real last batch has 8 samples, the smoke run 2; both are reported
    real = subjects["all"].real
    assert (real.real_last, real.smoke_last) == (8, 2) and real.judgement is not None
    assert "8 in the real run" in table and "S at the real size" in table


def test_clip_alone_does_not_remove_the_spike(user_runs):
    subjects, _ = user_runs
    rows = _rows(subjects["clip-only"])
    assert set(rows) == {"LL301", "all"}
    spike = rows["all"]
    assert spike.verdict == "failed" and spike.after > spike.threshold
    assert "a clip does not change the loss" in spike.reason
    assert exit_status([subjects["clip-only"]]) == 1


@pytest.mark.parametrize(
    "name, words",
    [("crashes", "shapes do not match"), ("hangs", "timed out"), ("needs-gpu", "needs a GPU")],
)
def test_scripts_that_cannot_train_stop_at_the_original(user_runs, name, words):
    subject = user_runs[0][name]
    assert not subject.rows  # fail-fast: no variant was trained
    assert subject.problem.startswith("the original cannot be run") and words in subject.problem
    assert exit_status([subject]) == 2
    [item] = json.loads(to_json([subject], "cpu"))
    assert item["script"] == name and item["validated"] is False and item["verdict"] == "not run"
    if name == "crashes":
        assert "RuntimeError: shapes do not match" in item["stderr_tail"]  # the program's own traceback


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_scenarios_on_cuda(tmp_path):
    command = [sys.executable, "-m", "losslint", "verify", "--scenario", "torch-classification", "--device", "cuda", "--output-format", "json", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert all(item["validated"] and item["device"] == "cuda" for item in json.loads(result.stdout))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    from click.testing import CliRunner

    from losslint.verify.command import verify as verify_command

    result = CliRunner().invoke(verify_command, ["--scenario", "torch-classification", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA device" in result.output


def test_a_clean_script_is_trained_as_a_negative_control(user_runs):
    subject = user_runs[0]["correct"]
    [row] = subject.rows
    assert row.code == "control" and row.judgement.verdict == "clean", row.judgement.reason
    assert len(row.before) == 3 and not row.after
    assert row.judgement.scores["S"]["before"].null.source == "per-sample resampling"
    assert exit_status([subject]) == 0
    assert "no finding" in format_table([subject], "cpu") and "1 clean program trained, 0 with a boundary effect" in format_table([subject], "cpu")
