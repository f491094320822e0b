"""losslint verify without training: the decision on hand-made series, the
variants a program gets, and the command's usage and error paths. Fast, and
needs neither torch nor keras (tests/test_verify_training.py trains)."""

from __future__ import annotations

import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.config import Settings
from losslint.verify import command as verify_command
from losslint.verify.decision import (
    clip_usage,
    epoch_ratios,
    judge_control,
    judge_crash,
    judge_outlier,
    judge_spike,
    loss_null,
    outlier_scores,
    progress,
    spike_score,
    sample_variance,
    suggested_max_norm,
)
from losslint.verify.programs import load_program, local_files, symptom_direction
from losslint.verify.runtime import shrunk_size

ROOT = Path(__file__).resolve().parent.parent
USER_PROJECT = ROOT / "fixtures" / "verify_user_project"


# -- hand-made series ---------------------------------------------------------------


def series(epochs=4, steps=11, batch=32, last=2, last_factor=1.0, seed=0, start=2.0, decay=0.97, noise=0.05):
    """A decaying loss with noise; the last step of each epoch has ``last``
    samples and its loss is multiplied by ``last_factor``."""
    rng = random.Random(seed)
    out, value = [], start
    for epoch in range(epochs):
        for i in range(steps):
            value *= decay
            is_last = i == steps - 1
            loss = value * (1 + rng.uniform(-noise, noise)) * (last_factor if is_last else 1.0)
            out.append(
                {
                    "loss": loss,
                    "grad_norm": loss,
                    "update_norm": 0.1 * (1 + rng.uniform(-noise, noise)),
                    "batch": last if is_last else batch,
                    "epoch": epoch,
                }
            )
    return out


def test_spike_score_is_median_of_epoch_end_ratios():
    steps = series(last_factor=16.0)
    ratios = epoch_ratios(steps)
    assert len(ratios) == 4
    assert all(12 < r < 18 for r in ratios)  # 16x, less the decay over the window
    assert spike_score(steps) == pytest.approx(sorted(ratios)[1] / 2 + sorted(ratios)[2] / 2)


def test_an_incomplete_last_epoch_is_not_scored():
    steps = series(last_factor=16.0)[:-3]  # cut by a step budget in the middle of epoch 3
    assert len(epoch_ratios(steps, complete_last=False)) == 3


def test_spike_judgement_both_sides():
    buggy = series(last_factor=16.0)
    fixed = series(last_factor=1.0, seed=1)
    good = judge_spike([buggy], [fixed])
    assert good.verdict == "validated" and good.before > good.threshold >= good.after
    still = judge_spike([buggy], [series(last_factor=12.0, seed=2)])
    assert still.verdict == "failed" and "remains" in still.reason
    nothing = judge_spike([fixed], [fixed])
    assert nothing.verdict == "inconclusive" and "no epoch-boundary spike" in nothing.reason


def test_drop_last_fix_is_judged_against_the_originals_threshold():
    buggy = series(last_factor=16.0)
    dropped = [s for s in series(seed=3, steps=11) if s["batch"] == 32]  # no partial batch at all
    for i, step in enumerate(dropped):
        step["epoch"] = i // 10
    judgement = judge_spike([buggy], [dropped])
    assert judgement.threshold == judgement.scores["S"]["before"].null.high  # the original's null
    assert judgement.verdict == "validated"


def test_epochs_too_short_to_score_are_said_so():
    short = series(steps=3, last_factor=16.0)
    judgement = judge_spike([short], [short])
    assert judgement.verdict == "inconclusive" and "3 optimizer steps per epoch" in judgement.reason


def test_a_fix_that_makes_training_worse_fails():
    buggy = series(last_factor=16.0, decay=0.95)
    stalled = series(last_factor=1.0, decay=1.0)  # the spike is gone, but nothing is learnt
    judgement = judge_spike([buggy], [stalled])
    assert judgement.verdict == "failed" and "trains worse" in judgement.reason
    assert progress(stalled) == pytest.approx(1.0, abs=0.1)


def test_dip_judgement_both_sides():
    # A partial accumulation window: the last step's loss is 1/4 of a whole window's.
    batch, last = 64, 16
    under = series(batch=batch, last=last, last_factor=0.25)
    fixed = series(batch=batch, last=last, last_factor=1.0, seed=1)
    good = judge_spike([under], [fixed], direction="down")
    assert good.kind == "dip" and good.verdict == "validated"
    assert good.before < good.threshold / 1.1  # below the null's low edge, beyond the practical margin
    bad = judge_spike([under], [series(batch=batch, last=last, last_factor=0.3, seed=2)], direction="down")
    assert bad.verdict == "failed"
    # The same dip is no spike.
    assert judge_spike([under], [fixed]).verdict == "inconclusive"


def test_direction_follows_the_findings():
    class F:
        def __init__(self, code):
            self.code = code

    assert symptom_direction([F("LL104")]) == "down"
    assert symptom_direction([F("LL104"), F("LL301")]) == "down"
    assert symptom_direction([F("LL104"), F("LL201")]) == "up"


def outlier_run(step, update_factor, loss_factor=1.0, grad=0.5):
    steps = series(last_factor=1.0, decay=1.0)
    for i, s in enumerate(steps):
        s["grad_norm"] = grad
        if i == step:
            s["update_norm"] *= update_factor
        if i > step:
            s["loss"] *= loss_factor
    return steps


def test_outlier_judgement_both_sides():
    at = 16
    unclipped = outlier_run(at, 12.0, loss_factor=3.0)
    clipped = outlier_run(at, 1.5)
    for s in clipped:
        s["clip"], s["clipped"] = 1.0, False
    r, d = outlier_scores(unclipped, at)
    assert r == pytest.approx(12.0, rel=0.15) and d == pytest.approx(3.0, rel=0.2)
    good = judge_outlier([unclipped], [clipped], at)
    assert good.verdict == "validated" and good.before > 3 >= good.after
    loose = [dict(s, clip=1.0, clipped=False) for s in outlier_run(at, 11.0, grad=0.02)]
    bad = judge_outlier([unclipped], [loose], at)
    assert bad.verdict == "failed"
    assert "0.02 on a normal step" in bad.reason and "clip-max-norm" in bad.reason
    adaptive = judge_outlier([outlier_run(at, 1.3)], [clipped], at)
    assert adaptive.verdict == "inconclusive"


def test_a_diverged_update_counts_as_unbounded():
    steps = outlier_run(16, 1.0)
    steps[16]["update_norm"] = math.inf
    assert outlier_scores(steps, 16)[0] == math.inf


def test_crash_judgements():
    assert judge_crash("ok", "", "ok", "") is None
    assert judge_crash("crash", "ValueError: Expected more than 1 value per channel", "ok", "").verdict == "validated"
    assert judge_crash("ok", "", "crash", "boom").verdict == "failed"
    assert judge_crash("timeout", "no result after 3 s", "timeout", "").verdict == "inconclusive"


def test_shrink_keeps_the_character_of_the_last_batch():
    assert shrunk_size(5000, 64, 10) == 642  # 5000 % 64 = 8: last batch of 2
    assert shrunk_size(5057, 64, 10) == 641  # N % B == 1 stays 1 (BatchNorm crashes stay crashes)
    assert shrunk_size(6400, 64, 10) == 640  # no partial batch stays none
    assert shrunk_size(300, 64, 10) == 300  # already small


# -- programs and their variants --------------------------------------------------------


def test_local_files_follow_project_imports():
    files = {p.relative_to(USER_PROJECT).as_posix() for p in local_files(USER_PROJECT / "train.py")}
    assert files == {"train.py", "data.py", "models/__init__.py", "models/mlp.py"}


def test_variants_of_the_user_project():
    program = load_program(USER_PROJECT / "train.py", Settings())
    codes = [f.code for f in program.fixable()]
    assert sorted(codes) == ["LL101", "LL202", "LL301"]
    keys = {v.key: v for v in program.variants}
    assert set(keys) == {"original", "fix-0", "fix-1", "fix-2", "base", "all"}
    original = program.files["train.py"]
    by_code = {v.finding.code: v for v in program.variants if v.finding}
    assert "drop_last=True" in by_code["LL202"].files["train.py"] and "drop_last" not in original
    assert "/ features.size(0)" not in by_code["LL101"].files["train.py"]
    assert "drop_last=True" not in by_code["LL101"].files["train.py"]  # one fix alone
    # The clip is judged on top of the other fixes.
    clip = by_code["LL301"]
    assert clip.baseline == "base"
    assert "clip_grad_norm_" in clip.files["train.py"] and "drop_last=True" in clip.files["train.py"]
    assert "clip_grad_norm_" not in keys["base"].files["train.py"]
    assert all(token in keys["all"].files["train.py"] for token in ("drop_last=True", "clip_grad_norm_", "/ args.batch_size"))
    assert set(keys["all"].files) == set(program.files)  # the modules travel with the script


def test_variants_are_written_to_the_sandbox_only(tmp_path):
    program = load_program(USER_PROJECT / "train.py", Settings())
    before = {p: p.read_bytes() for p in USER_PROJECT.rglob("*") if p.is_file()}
    script = program.variant("all").write(tmp_path / "all", program)
    assert script == tmp_path / "all" / "train.py" and (tmp_path / "all" / "models" / "mlp.py").is_file()
    assert {p: p.read_bytes() for p in USER_PROJECT.rglob("*") if p.is_file()} == before


def test_clip_only_selection_has_no_base():
    program = load_program(USER_PROJECT / "train.py", Settings(select=["LL301"]))
    assert [f.code for f in program.fixable()] == ["LL301"]
    clip = next(v for v in program.variants if v.finding)
    assert clip.baseline == "original"


# -- the command without training ---------------------------------------------------


def test_command_module_imports_no_framework():
    code = "import sys, losslint.cli; assert not {'torch', 'keras', 'matplotlib'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_usage_errors():
    runner = CliRunner()
    assert runner.invoke(verify_command.verify, []).exit_code == 2
    assert runner.invoke(verify_command.verify, ["x.py", "--scenarios"]).exit_code == 2
    assert runner.invoke(verify_command.verify, ["--scenario", "nope"]).exit_code == 2
    listed = runner.invoke(verify_command.verify, ["--list-scenarios"])
    assert listed.exit_code == 0 and "keras-ssd" in listed.output and "LL104" in listed.output


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(verify_command, "_missing", lambda modules: [m for m in modules if m == "torch"])
    result = CliRunner().invoke(verify_command.verify, [str(USER_PROJECT / "train.py"), "--device", "cpu"])
    assert result.exit_code == 2
    assert "needs torch" in result.output and "losslint-static[verify]" in result.output


@pytest.mark.slow
def test_a_clean_script_without_training_is_a_clear_report(tmp_path):
    """A lint-clean script is trained as a negative control; one that never steps an
    optimizer cannot be, and says so (exit 2), after one training (fail-fast)."""
    script = tmp_path / "train.py"
    script.write_text("import torch\nprint(torch.zeros(2))\n")
    result = CliRunner().invoke(verify_command.verify, [str(script), "--device", "cpu", "-q", "--output-format", "json"])
    assert result.exit_code == 2, result.output
    [item] = json.loads(result.output)
    assert item["script"] == str(script) and item["validated"] is False
    assert "the original cannot be run" in item["reason"] and "optimizer step" in item["reason"]
    assert "tensor([0., 0.])" in item["stderr_tail"]  # the program's own output


def test_check_fix_takes_the_suggested_clip_max_norm():
    """verify suggests a max_norm; check --fix takes it with --clip-max-norm."""
    from losslint.cli import main

    result = CliRunner().invoke(
        main,
        ["check", "--no-cache", "--diff", "--unsafe-fixes", "--select", "LL301", "--clip-max-norm", "0.05", str(USER_PROJECT / "train.py")],
    )
    assert result.exit_code == 1, result.output
    assert "max_norm=0.05)" in result.output and "max_norm=1.0" not in result.output


# -- the measured nulls, on series with known answers ------------------------------------


def with_per_sample(steps, values_for):
    for i, step in enumerate(steps):
        step["per_sample"] = values_for(i, step)
    return steps


def test_the_null_of_a_skewed_loss_is_skewed():
    """One sample in 32 carries the whole loss: a batch of 2 re-sampled out of it has a
    mean of 0 (15 times in 16) or 16x the batch mean (1 in 16): the null's range is
    [0, 16], where the old symmetric limit 1/T = 0.25 would call the zeros a dip."""
    steps = series(epochs=1, steps=11, batch=32, last=2)
    with_per_sample(steps, lambda i, s: [32.0] + [0.0] * (s["batch"] - 1))
    null = loss_null([steps], 2)
    assert null.low == 0.0 and null.high == pytest.approx(16.0)  # the old symmetric 1/T = 1/sqrt(32/2) was 0.25


def test_a_constant_per_sample_loss_has_a_point_null():
    steps = with_per_sample(series(decay=1.0, noise=0.0), lambda i, s: [1.5] * s["batch"])
    null = loss_null([steps], 2)
    assert null.low == pytest.approx(1.0) and null.high == pytest.approx(1.0)


def known_runs(seeds=3, last_factor=1.0, update_at_end=1.0, follow_factor=1.0, decay=0.97, probe=1.5):
    """Seeds of a run with per-sample losses (uniform noise around the step's loss), gradient
    probes that all say ``probe``, and the boundary's update and following losses scaled."""
    runs = []
    for seed in range(seeds):
        steps = series(last_factor=last_factor, seed=seed, decay=decay)
        rng = random.Random(seed + 100)
        for i, step in enumerate(steps):
            step["per_sample"] = [step["loss"] / (last_factor if step["batch"] == 2 else 1.0) * rng.uniform(0.5, 1.5) for _ in range(step["batch"])]
            step["grad_null"] = [probe] * 8 if i % 3 == 1 else None
            is_end = i + 1 < len(steps) and steps[i + 1]["epoch"] != step["epoch"] or i == len(steps) - 1
            if is_end:
                step["update_norm"] *= update_at_end
                for after in steps[i + 1 : i + 4]:
                    after["loss"] *= follow_factor
        runs.append(steps)
    return runs


def test_a_fix_is_validated_only_when_update_and_following_loss_are_back_too():
    buggy = known_runs(last_factor=16.0, update_at_end=5.0, follow_factor=3.0)
    good = judge_spike(buggy, known_runs())
    assert good.verdict == "validated", good.reason
    assert good.scores["S"]["before"].null.source == "per-sample resampling"
    assert len(good.scores["S"]["before"].per_seed) == 3
    # the loss is back, the update at the small last step is still 5x (above the probes' 1.5)
    update = judge_spike(buggy, known_runs(update_at_end=5.0))
    assert update.verdict == "failed" and "the update at the boundary U=" in update.reason
    # the loss is back at the boundary, but it stays 3x high over the next steps
    follow = judge_spike(buggy, known_runs(follow_factor=3.0))
    assert follow.verdict == "failed" and "loss over the next 3 steps" in follow.reason


def test_trains_worse_uses_the_same_seeds_and_null():
    buggy = known_runs(last_factor=16.0, decay=0.95)
    slower = known_runs(decay=0.965)  # final/initial loss about 1.65x the original's
    judgement = judge_spike(buggy, slower)
    assert judgement.progress_after / judgement.progress_before > 1.5
    assert judgement.verdict == "failed" and "trains worse" in judgement.reason
    assert judge_spike(buggy, known_runs(decay=0.95)).verdict == "validated"


def test_a_clean_run_is_a_negative_control():
    clean = judge_control(known_runs())
    assert clean.verdict == "clean" and "no boundary effect" in clean.reason
    spiky = judge_control(known_runs(last_factor=16.0))
    assert spiky.verdict == "failed" and "a spike at the epoch boundary" in spiky.reason
    dip = judge_control(known_runs(last_factor=0.1))
    assert dip.verdict == "failed" and "a dip" in dip.reason


def test_clip_usage_and_suggested_max_norm():
    steps = series(decay=1.0, noise=0.0)
    for i, step in enumerate(steps):
        step["grad_norm"] = 2.0
        step["clip"] = 1.0
        step["clipped"] = i % 10 != 0  # fires on 9 steps in 10
    fraction, limit = clip_usage([steps], inject_step=16)
    assert limit == 1.0 and fraction == pytest.approx(0.9, abs=0.03)
    assert suggested_max_norm([steps], inject_step=16) == 4.0  # 2x the median gradient norm
    judgement = judge_outlier([outlier_run(16, 12.0)], [outlier_run(16, 1.2)], 16)
    assert not judgement.warnings  # no clip in those runs: nothing to warn about
    clipped = [dict(s, clip=1.0, clipped=True) for s in outlier_run(16, 1.2)]
    warned = judge_outlier([outlier_run(16, 12.0)], [clipped], 16)
    assert warned.verdict == "validated" and "fires on 100% of normal steps" in warned.warnings[0]
    assert "--clip-max-norm 1" in warned.warnings[0]  # 2x the median gradient norm of 0.5


def test_shrink_to_the_real_remainder():
    assert shrunk_size(1000, 64, 10) == 642  # smoke: a last batch of 2
    assert shrunk_size(1000, 64, 10, real=True) == 680  # real: 1000 % 64 = 40


def test_cuda_in_a_forked_child_is_the_harness_fault():
    from losslint.verify.runtime import classify_error

    assert classify_error("RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA ...") == "harness-error"
    assert classify_error("AssertionError: Torch not compiled with CUDA enabled") == "needs-gpu"
    assert classify_error("ValueError: bad shape") == "crash"


# -- a loss computed by hand: S's null from the full-batch losses -------------------------


def gamma_runs(seeds=3, shape=0.5, batch=32, last=2, last_factor=1.0, epochs=4, steps=11, per_sample=False, seed0=0):
    """Runs of a dataset whose samples' losses are drawn once from a gamma distribution of
    ``shape`` and mean 1 (skewed: shape 0.5 has most samples near 0), times a slowly
    falling level; every epoch visits them in a new order, in batches of ``batch`` and a
    last one of ``last``, and a step's loss is the mean of its samples' (the last step's
    times ``last_factor``: 16 is a loss ∝ 1/b at b=2 of 32). With ``per_sample`` the
    samples are recorded too, as a loss of torch.nn.functional would be."""
    runs = []
    for seed in range(seed0, seed0 + seeds):
        rng = random.Random(seed)
        dataset = [rng.gammavariate(shape, 1 / shape) for _ in range((steps - 1) * batch + last)]
        out, level = [], 2.0
        for epoch in range(epochs):
            order = rng.sample(dataset, len(dataset))
            for i in range(steps):
                level *= 0.99
                is_last = i == steps - 1
                values = [level * v for v in order[i * batch : i * batch + (last if is_last else batch)]]
                step = {"loss": statistics.fmean(values) * (last_factor if is_last else 1.0), "grad_norm": 1.0,
                        "update_norm": 0.1, "batch": len(values), "epoch": epoch}
                if per_sample:
                    step["per_sample"] = values
                out.append(step)
        runs.append(out)
    return runs


def test_the_sample_variance_is_measured_from_full_batch_losses():
    """Gamma(shape) losses have a relative variance of 1/shape: 2 at shape 0.5, 0.25 at 4;
    pooled over 12 seeds, the estimate from the batch losses alone is within 20 %."""
    for shape in (0.5, 4.0):
        assert sample_variance(gamma_runs(seeds=12, shape=shape)) == pytest.approx(1 / shape, rel=0.2)
    negative = gamma_runs(seeds=1)
    negative[0][5]["loss"] = -0.1  # e.g. a log-likelihood of a density: no such model
    assert sample_variance(negative) is None


def test_the_full_batch_null_matches_the_per_sample_one_and_the_truth():
    """A known answer: 2-sample means of Gamma(0.5) losses over their mean are Gamma(1)
    (exponential) draws; S's null is the median of 4 epochs' and then of 3 seeds'. The
    null drawn from the full-batch losses alone is close to it and to the per-sample
    null of the same runs, skew included (its low edge is near 0, its high edge far above 2)."""
    rng = random.Random(7)
    truth = sorted(
        statistics.median(statistics.median(rng.expovariate(1.0) for _ in range(4)) for _ in range(3)) for _ in range(20000)
    )
    low, high = truth[100], truth[-101]
    runs = gamma_runs(per_sample=True)
    per_sample = loss_null(runs, 2)
    hand = loss_null([[{k: v for k, v in s.items() if k != "per_sample"} for s in run] for run in runs], 2)
    assert per_sample.source == "per-sample resampling" and hand.source == "full-batch losses"
    assert hand.low == pytest.approx(low, abs=0.08) and hand.high == pytest.approx(high, rel=0.3)
    assert hand.high == pytest.approx(per_sample.high, rel=0.3) and hand.low < 0.35 and hand.high > 1.6


def test_a_loss_computed_by_hand_is_judged_against_the_full_batch_null():
    """Correct programs with a hand-computed loss (no per-sample record): no false spike
    or dip in 24 seeds alone; a loss ∝ 1/b (16x at b=2) is a spike, an under-weighted
    last step (x0.1) a dip, and the fix of the spike is validated."""
    correct = gamma_runs(seeds=24, seed0=100)
    alone = [judge_control([run]) for run in correct]
    assert all(j.verdict == "clean" and j.scores["S"]["before"].null.source == "full-batch losses" for j in alone), [
        j.reason for j in alone if j.verdict != "clean"
    ]
    spike = judge_control(gamma_runs(last_factor=16.0))
    assert spike.verdict == "failed" and "a spike" in spike.reason
    dip = judge_control(gamma_runs(last_factor=0.1, shape=4.0))
    assert dip.verdict == "failed" and "a dip" in dip.reason
    fixed = judge_spike(gamma_runs(last_factor=16.0), gamma_runs(seed0=50))
    assert fixed.verdict == "validated", fixed.reason
    assert "gamma model" in fixed.warnings[0]


def test_no_positive_loss_no_null_of_s():
    """A loss that can be negative fits no model of positive samples: S is not judged, and says so."""
    runs = gamma_runs(last_factor=16.0)
    for run in runs:
        for step in run:
            step["loss"] -= 1.0
    judgement = judge_spike(runs, gamma_runs())
    assert judgement.verdict == "inconclusive" and "no null of S could be measured" in judgement.reason
    assert judge_control(runs).verdict == "inconclusive"
