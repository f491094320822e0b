"""losslint explain: logs written by real trainings, and the cases around them.

The logs under fixtures/logs/ come from losslint's own smoke trainings, run for
real on the CPU by fixtures/logs/make_logs.py (buggy as shipped, and fixed by
losslint's fixes), written the way Hugging Face, Lightning, a CSV logger, W&B and
the program's own prints write them:

- classification: fixtures/scenarios/torch_classification.py, N=322, B=32:
  11 steps per pass, check reports LL201 (N and B known) and LL101;
- tabular: fixtures/verify_user_project, 1538 rows in batches of 64: 25 steps per
  pass, check reports LL202 (N unknown), LL101 and LL301.
"""

from __future__ import annotations

import csv
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.cli import main
from losslint.explain.causes import explain_causes
from losslint.explain.detect import analyse
from losslint.explain.link import link, n_bounds, run_check, steps_per_pass
from losslint.explain.readers import LogError, ReadOptions, read_log

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "fixtures" / "logs"
SCENARIO = ROOT / "fixtures" / "scenarios" / "torch_classification.py"
PROJECT = ROOT / "fixtures" / "verify_user_project"

BUGGY = {
    "classification-buggy": (11, ["trainer_state.json", "metrics.csv", "train_log.csv"]),
    "tabular-buggy": (25, ["trainer_state.json", "metrics.csv", "train_log.csv", "stdout.txt", "wandb-history.jsonl"]),
}
FIXED = {
    "classification-fixed": ["trainer_state.json", "metrics.csv", "train_log.csv"],
    "tabular-fixed": ["trainer_state.json", "metrics.csv", "train_log.csv", "stdout.txt"],
}


def explain(*args: str):
    return CliRunner().invoke(main, ["explain", *args, "--no-cache"], catch_exceptions=False)


# --- real trainings: buggy and fixed -----------------------------------------------------------


@pytest.mark.parametrize("run,name", [(run, name) for run, (_, names) in BUGGY.items() for name in names])
def test_buggy_training_period_to_the_step(run, name):
    period, _ = BUGGY[run]
    log = read_log(LOGS / run / name)
    analysis = analyse(log)
    assert analysis.period is not None, (run, name, analysis.spikes)
    assert analysis.period.steps == period
    assert not analysis.isolated
    # the log's epochs agree: one pass per period, the spikes at its end
    assert analysis.passes is not None and round(analysis.passes.steps_per_pass) == period
    assert analysis.where in ("last", "boundary")


@pytest.mark.parametrize("run,name", [(run, name) for run, names in FIXED.items() for name in names])
def test_fixed_training_nothing_periodic(run, name):
    analysis = analyse(read_log(LOGS / run / name))
    assert analysis.period is None


def test_formats_are_recognised():
    formats = {name: read_log(LOGS / "tabular-buggy" / name).format for name in BUGGY["tabular-buggy"][1]}
    assert formats == {
        "trainer_state.json": "hf", "metrics.csv": "lightning", "train_log.csv": "csv", "stdout.txt": "stdout",
        "wandb-history.jsonl": "wandb",
    }
    wandb = read_log(LOGS / "tabular-buggy" / "wandb-history.jsonl")
    assert wandb.series.name == "train/loss" and wandb.series.steps[:2] == [1.0, 2.0]  # train/global_step, not _step
    # a run directory: the most specific log in it
    assert read_log(LOGS / "tabular-buggy").format == "hf"


def test_logging_interval_hf_window_means():
    """The Trainer log holds the mean loss of every 4 steps (25 is no multiple of 4):
    the spikes land up to 3 steps late, the fitted period is still 25."""
    log = read_log(LOGS / "tabular-buggy" / "trainer_state.json")
    analysis = analyse(log)
    assert analysis.interval == 4 and analysis.period.steps == 25
    assert analysis.where == "boundary"
    assert len(analysis.period.spikes) == 12


def test_lightning_steps_from_zero_and_epoch_rows():
    log = read_log(LOGS / "classification-buggy" / "metrics.csv")
    assert log.series.name == "train_loss_step" and log.series.steps[0] == 0
    analysis = analyse(log)
    assert [s.step for s in analysis.period.spikes] == [10, 21, 32]  # 0-based: the 11th step of each pass
    assert analysis.where == "last"


# --- tied to the code ---------------------------------------------------------------------------


def test_links_ll201_with_n_and_b():
    result = explain(str(LOGS / "classification-buggy" / "train_log.csv"), str(SCENARIO), "--output-format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["period"]["steps"] == 11
    [match] = data["code"]["matches"]
    assert (match["code"], match["line"], match["n"], match["b"], match["steps_per_pass"]) == ("LL201", 24, 322, 32, 11)
    assert [f["code"] for f in data["code"]["linked"]] == ["LL101"]
    assert "matches LL201 at" in data["headline"] and "N=322, B=32: 11 steps, a last batch of 2" in data["headline"]
    assert data["causes"][0]["cause"] == "partial-batch" and data["causes"][0]["verdict"] == "likely"


def test_bounds_n_when_check_cannot_know_it():
    """verify_user_project's dataset size is not known statically (LL202, B=64):
    the period bounds it, and the real N of the training (1538) is inside."""
    result = explain(str(LOGS / "tabular-buggy" / "stdout.txt"), "--src", str(PROJECT), "--output-format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    [match] = data["code"]["matches"]
    assert match["code"] == "LL202" and match["n"] is None and match["b"] == 64
    low, high = match["n_bounds"]
    assert (low, high) == (24 * 64 + 1, 25 * 64) and low <= 1538 <= high
    linked = {f["code"]: f["summary"] for f in data["code"]["linked"]}
    assert set(linked) == {"LL101", "LL301"}
    assert "momentum 0.9" in linked["LL301"] and "~10 steps" in linked["LL301"]
    assert "scales as 1/b" in linked["LL101"]


def test_a_period_that_no_finding_implies_is_not_matched():
    """The tabular log (25 steps per pass) against the classification scenario
    (N=322, B=32: 11 steps): LL201 is shown as not it, nothing is matched."""
    result = explain(str(LOGS / "tabular-buggy" / "train_log.csv"), str(SCENARIO), "--output-format", "json")
    data = json.loads(result.output)
    assert data["code"]["matches"] == [] and data["code"]["linked"] == []
    assert [(m["code"], m["steps_per_pass"]) for m in data["code"]["not_matching"]] == [("LL201", 11)]
    partial = next(c for c in data["causes"] if c["cause"] == "partial-batch")
    assert any("implies 11 steps per pass, not 25" in s for s in partial["against"])


def test_text_output_tells_the_story():
    result = explain(str(LOGS / "classification-buggy"), str(SCENARIO))
    assert result.exit_code == 1
    first = [line for line in result.output.splitlines() if line.startswith("spikes every")]
    assert first and first[0].startswith("spikes every 11 steps at the last step of each pass; matches LL201 at")
    assert "next: losslint check" in result.output


def test_fixed_log_exits_zero():
    result = explain(str(LOGS / "tabular-fixed" / "train_log.csv"), str(PROJECT))
    assert result.exit_code == 0, result.output
    assert "no spike" in result.output or "no periodic spike" in result.output


def test_steps_per_pass_with_accumulation_and_world_size():
    assert steps_per_pass(22239, 16) == {1390}
    assert 348 in steps_per_pass(22239, 16, accumulation=4)  # ceil(1390 / 4): the last window steps
    assert steps_per_pass(22239, 16, world_size=2) == {695}  # ceil(ceil(22239 / 2) / 16)
    assert n_bounds(1390, 16) == (22225, 22240)
    assert n_bounds(25, 64, world_size=2) == ((24 * 64) * 2 + 1, 25 * 64 * 2)


# --- TensorBoard, by the real writer and reader ---------------------------------------------------


def test_tensorboard_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    torch_tensorboard = pytest.importorskip("torch.utils.tensorboard")
    with open(LOGS / "tabular-buggy" / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    writer = torch_tensorboard.SummaryWriter(log_dir=str(tmp_path / "run"))
    for row in rows:
        step = int(row["step"])
        writer.add_scalar("train/loss", float(row["loss"]), step)
        writer.add_scalar("train/lr", float(row["lr"]), step)
        writer.add_scalar("epoch", float(row["epoch"]), step)
    writer.close()
    log = read_log(tmp_path / "run")
    assert log.format == "tensorboard" and log.series.name == "train/loss" and len(log.series) == len(rows)
    analysis = analyse(log)
    assert analysis.period.steps == 25 and analysis.where == "last"
    result = explain(str(tmp_path / "run"), str(PROJECT), "--output-format", "json")
    assert result.exit_code == 1 and json.loads(result.output)["code"]["matches"][0]["code"] == "LL202"


def test_tensorboard_without_its_reader_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x00" * 32)
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(LogError, match=r"TensorBoard event file needs the tensorboard package.*losslint-static\[tensorboard\]"):
        read_log(tmp_path / "events.out.tfevents.1.host")


# --- synthetic cases: noise, restarts, gaps ---------------------------------------------------------


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _decaying(step: int, rng: random.Random) -> float:
    return (0.2 + 2.0 * math.exp(-step / 400)) * math.exp(rng.gauss(0, 0.08))


def test_random_isolated_spikes_report_no_period(tmp_path):
    rng = random.Random(7)
    outliers = set(rng.sample(range(20, 3000), 15))
    rows = [{"step": s, "loss": _decaying(s, rng) * (rng.uniform(4, 20) if s in outliers else 1)} for s in range(1, 3001)]
    path = _write_csv(tmp_path / "noisy.csv", rows)
    analysis = analyse(read_log(path))
    assert analysis.period is None
    assert len(analysis.isolated) >= 12 and {s.step for s in analysis.isolated} <= outliers
    result = explain(str(path))
    assert result.exit_code == 0 and "isolated spikes" in result.output


def test_restart_schedule_is_explained_by_the_learning_rate(tmp_path):
    """Cosine annealing with a warm restart every pass (50 steps, full batches):
    the loss jumps on the first step after each restart; the lr in the log says why."""
    rng = random.Random(3)
    rows, per_pass = [], 50
    for step in range(0, 600):
        position = step % per_pass
        lr = 0.001 + 0.05 * (1 + math.cos(math.pi * position / per_pass))
        jump = {0: 6.0, 1: 2.0, 2: 1.3}.get(position, 1.0) if step >= per_pass else 1.0
        rows.append({"step": step, "epoch": step // per_pass, "lr": lr, "loss": _decaying(step, rng) * jump})
    path = _write_csv(tmp_path / "restarts.csv", rows)
    log = read_log(path)
    analysis = analyse(log)
    assert analysis.period.steps == 50 and analysis.where == "first"
    causes = {c.key: c for c in explain_causes(log, analysis, None)}
    assert causes["lr-schedule"].verdict == "likely"
    assert any("jumps up" in s for s in causes["lr-schedule"].supported)
    assert causes["partial-batch"].verdict == "unlikely"
    # and without the lr in the log, the restart is named as what is missing
    log.series.lrs = []
    causes = {c.key: c for c in explain_causes(log, analysis, None)}
    assert causes["lr-schedule"].verdict == "possible" and causes["lr-schedule"].missing


def test_gaps_and_a_logging_interval(tmp_path):
    """A loss logged every 5th step (the instantaneous value), a 150-step hole in
    the log, 40 steps per pass with the spike on each pass's last step (step 40m)."""
    rng = random.Random(11)
    rows = []
    for step in range(5, 2001, 5):
        if 700 <= step < 850:
            continue
        spike = 12.0 if step % 40 == 0 else 1.0
        rows.append({"global_step": step, "train_loss": _decaying(step, rng) * spike})
    path = _write_csv(tmp_path / "every5.csv", rows)
    analysis = analyse(read_log(path))
    assert analysis.interval == 5
    assert analysis.period.steps == 40 and analysis.period.phase == 0


def test_stdout_epoch_counters_and_custom_pattern(tmp_path):
    lines = []
    for epoch in range(6):
        for batch in range(1, 21):
            loss = 0.5 * (8 if batch == 20 else 1) * (1 + 0.02 * ((batch * 7) % 5))
            lines.append(f"Epoch [{epoch}] Iter {batch}/20 | loss={loss:.4f} | lr 1e-3")
        lines.append(f"Epoch {epoch}: val loss 0.40, val acc 0.8")
    path = tmp_path / "train.log"
    path.write_text("\n".join(lines) + "\n")
    log = read_log(path)
    assert log.series.steps[:3] == [1.0, 2.0, 3.0] and log.series.steps[20] == 21.0  # counters unrolled
    assert len(log.eval_steps) == 6 and log.series.lrs[0] == 1e-3
    assert analyse(log).period.steps == 20
    custom = read_log(path, ReadOptions(pattern=r"Iter (?P<step>\d+)/20 \| loss=(?P<loss>[\d.]+)"))
    assert len(custom.series) == 120


# --- errors, overrides, the plot ---------------------------------------------------------------------


def test_unreadable_logs_name_the_format(tmp_path):
    (tmp_path / "trainer_state.json").write_text("{not json")
    result = explain(str(tmp_path / "trainer_state.json"))
    assert result.exit_code == 2 and "Hugging Face trainer_state.json" in result.output
    _write_csv(tmp_path / "acc.csv", [{"step": 1, "accuracy": 0.5}])
    result = explain(str(tmp_path / "acc.csv"))
    assert result.exit_code == 2 and "read as CSV, but no loss column among: step, accuracy" in result.output
    (tmp_path / "out.txt").write_text("hello\nworld\n")
    result = explain(str(tmp_path / "out.txt"))
    assert result.exit_code == 2 and "training stdout" in result.output and "--pattern" in result.output
    result = explain(str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_column_overrides(tmp_path):
    path = _write_csv(tmp_path / "log.csv", [{"it": i, "objective": 1.0 + (5 if i % 30 == 0 else 0)} for i in range(1, 301)])
    with pytest.raises(LogError, match="no loss column"):
        read_log(path)
    log = read_log(path, ReadOptions(loss_column="objective", step_column="it"))
    assert analyse(log).period.steps == 30
    with pytest.raises(LogError, match="no loss column 'nope'"):
        read_log(path, ReadOptions(loss_column="nope"))


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "explain.png"
    result = explain(str(LOGS / "tabular-buggy" / "train_log.csv"), str(PROJECT), "--plot", str(out))
    assert result.exit_code == 1 and out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_an_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = explain(str(LOGS / "tabular-buggy" / "train_log.csv"), "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 2 and "--plot needs matplotlib" in result.output
    assert not (tmp_path / "p.png").exists()


def test_check_does_not_import_explain():
    code = "import sys, losslint.cli; print(sorted(m for m in sys.modules if m.startswith('losslint.explain.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # (not even its command: subcommands are imported when named)


def test_run_check_matches_the_cli():
    findings = run_check([SCENARIO], use_cache=False)
    assert {f.code for f in findings} >= {"LL201", "LL101"}
    code = link(findings, 11, 1.0)
    assert [m.finding.code for m in code.matches] == ["LL201"]
