"""The causes of a per-pass loss spike, and what the log and the code say of each.

- a partial last batch (with a loss that scales as 1/b): the spike sits on the
  last step of each pass; ``check`` finds a partial-batch finding whose steps per
  pass equal the period;
- a learning-rate restart or a per-epoch schedule step: the logged learning rate
  jumps at the spikes;
- evaluation that leaves the model in eval mode, or BatchNorm statistics after
  validation: an evaluation logged at the pass boundary, the spike on the first
  steps after it;
- data order (a sampler that does not re-shuffle, one bad batch): the spike sits
  at a fixed place inside the pass, not at its end.

Each cause gets a verdict (likely, possible, unlikely) and three lists: the
evidence for it, the evidence against it, and what is missing to decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from losslint.explain.detect import Analysis
from losslint.explain.link import CodeLink
from losslint.explain.readers import Log

LR_JUMP = 0.05  # a change of the learning rate by more than 5% between two logged points


@dataclass
class Cause:
    key: str
    title: str
    verdict: str = "possible"  # likely, possible, unlikely
    supported: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def lr_jumps(log: Log) -> list[tuple[float, float, float]]:
    """(step, lr before, lr after) where the logged learning rate changes abruptly:
    by more than 5%, and ten times the typical change between two points."""
    steps, lrs = log.series.steps, log.series.lrs
    if not lrs:
        return []
    points = [(s, v) for s, v in zip(steps, lrs) if v > 0 and math.isfinite(v)]
    changes = [abs(math.log(b[1] / a[1])) for a, b in zip(points, points[1:])]
    if not changes:
        return []
    typical = sorted(changes)[len(changes) // 2]
    limit = max(LR_JUMP, 10 * typical)
    return [(b[0], a[1], b[1]) for (a, b), change in zip(zip(points, points[1:]), changes) if change > limit]


def _near(step: float, marks: list[float], before: float, after: float) -> bool:
    """A mark between ``before`` steps before ``step`` and ``after`` steps after it."""
    return any(-before <= step - mark <= after for mark in marks)


def explain_causes(log: Log, analysis: Analysis, code: CodeLink | None) -> list[Cause]:
    period = analysis.period
    if period is None:
        return []
    tol = analysis.tolerance
    spikes = [s.step for s in period.spikes]
    where = analysis.where
    at_end = where in ("last", "boundary")
    causes = []

    # -- partial last batch
    partial = Cause("partial-batch", "a partial last batch (with a loss that scales as 1/b)")
    if where == "last":
        partial.supported.append("the spikes fall on the last step of each pass, where the small last batch is")
    elif where == "boundary":
        partial.supported.append(f"the spikes fall at the pass boundary (within the logging interval of {analysis.interval:g} steps)")
    elif where == "first":
        partial.against.append("the spikes fall on the first step of the next pass, not on the last batch of a pass")
    elif where == "inside":
        partial.against.append(f"the spikes fall {analysis.median_offset:+g} steps from the end of each pass, not on its last batch")
    if not log.series.epochs:
        partial.missing.append("the log has no epochs: where the passes end is inferred from the step count (from 1)")
    if code is None:
        partial.missing.append("no source to compare with: give --src to compare the period with ceil(N / B) of each DataLoader")
    elif code.matches:
        partial.supported += [f"matches {m.describe()}" for m in code.matches]
        partial.supported += code.linked_sentences()
    else:
        if code.others:
            partial.against += [f"{m.describe()} implies {m.expected} steps per pass, not {period.steps}" for m in code.others]
        else:
            partial.missing.append("check found no partial-batch finding with N and B in the sources given")
    partial.verdict = "likely" if (code and code.matches) or (at_end and not partial.against) else (
        "unlikely" if partial.against and not (code and code.matches) else "possible"
    )
    causes.append(partial)

    # -- learning-rate restart or per-epoch schedule step
    lr = Cause("lr-schedule", "a learning-rate restart or a per-epoch schedule step")
    if not log.series.lrs:
        lr.missing.append("the log has no learning rate: log it to see a restart (HF logs learning_rate; Lightning: LearningRateMonitor)")
    else:
        jumps = lr_jumps(log)
        up = [j for j in jumps if j[2] > j[1]]
        down = [j for j in jumps if j[2] < j[1]]
        hit_up = [s for s in spikes if _near(s, [j[0] for j in up], tol, 2 * tol + 2)]
        hit_down = [s for s in spikes if _near(s, [j[0] for j in down], tol, 2 * tol + 2)]
        if up and len(hit_up) >= len(spikes) / 2:
            first = next(j for j in up)
            lr.supported.append(
                f"the learning rate jumps up at {len(hit_up)} of the {len(spikes)} spikes "
                f"(e.g. {first[1]:.3g} -> {first[2]:.3g} at step {first[0]:g}): a warm restart"
            )
            lr.verdict = "likely"
        elif down and len(hit_down) >= len(spikes) / 2:
            lr.supported.append(f"the learning rate steps down at {len(hit_down)} of the {len(spikes)} spikes: a per-epoch schedule step")
            lr.verdict = "possible"
        else:
            lr.against.append("the logged learning rate does not jump at the spikes")
            lr.verdict = "unlikely"
    causes.append(lr)

    # -- evaluation: eval mode left on, BatchNorm statistics
    evaluation = Cause("evaluation", "evaluation that leaves the model in eval mode, or BatchNorm statistics after validation")
    evals = sorted(set(log.eval_steps))
    if not evals:
        evaluation.missing.append("the log has no evaluation: where validation runs is not known")
    else:
        hit = [s for s in spikes if _near(s, evals, 0, 2 * tol + 2)]
        before = [s for s in spikes if _near(s, evals, tol, 0) and s not in hit]
        if len(hit) >= len(spikes) / 2:
            evaluation.supported.append(f"an evaluation is logged just before {len(hit)} of the {len(spikes)} spikes")
        elif before:
            evaluation.against.append("the spikes come before the evaluations, not after them")
        else:
            evaluation.against.append("the evaluations in the log are not at the spikes")
    if where == "last":
        evaluation.against.append("the spikes fall on the last step of a pass, before validation runs")
    elif where == "first":
        evaluation.supported.append("the spikes fall on the first step of a pass, the step after validation")
    evaluation.verdict = "likely" if evaluation.supported and not evaluation.against else ("unlikely" if evaluation.against else "possible")
    causes.append(evaluation)

    # -- data order
    order = Cause("data-order", "data order: a sampler that does not re-shuffle each pass, or one bad batch")
    if where == "inside":
        order.supported.append(f"the spikes fall at a fixed place inside the pass ({analysis.median_offset:+g} steps from its end)")
        order.verdict = "likely"
    elif at_end:
        order.against.append("the spikes fall at the end of the pass, where the last batch is, not at a place inside it")
        order.verdict = "unlikely"
    if not log.series.epochs:
        order.missing.append("the log has no epochs: a fixed place inside the pass cannot be told from its end")
    causes.append(order)

    rank = {"likely": 0, "possible": 1, "unlikely": 2}
    causes.sort(key=lambda c: rank[c.verdict])
    return causes
