"""The decision: does a series show the symptom, and does the fix remove it?

Pure functions over the per-step records of ``losslint.verify.runtime`` (dicts
with ``loss``, ``grad_norm``, ``update_norm``, ``batch``, ``epoch``), so that they
can be tested on hand-made series without a framework installed. The method and
the measurements behind its constants are in DESIGN.md, "Smoke validation".

Two symptoms:

- The epoch-boundary spike (loss normalization, partial last batch). For each
  complete epoch, the loss of its last step over the median of the ``WINDOW``
  steps before it; S is the median of these ratios over the epochs. A spike when
  S > T, T = max(1.3, sqrt(B / b_last)): a mean over b samples is noisier than a
  mean over B by sqrt(B / b), which is what an honest last batch may show.
  Measured on tiny trainings: buggy runs score 18-75 with a last batch of 1-2;
  fixed runs 0.16-1.11. Its mirror image, a dip S < 1/T, is the symptom of a
  last step that is under-weighted (a sum divided by a nominal batch size, LL103;
  the partial window of gradient accumulation, LL104, where "batch" is the
  samples of a whole window).
- The outlier step (clipping). A clip cannot change the logged loss, so it is
  judged on what it is for: with an outlier batch injected at a known step (its
  gradient multiplied by a large factor), R = the largest parameter update of
  that step and the next over the median update of the ``WINDOW`` steps before.
  Unbounded when R > ``OUTLIER_LIMIT``; the damage D (median loss of the
  ``WINDOW`` steps after over the ``WINDOW`` before) is reported beside it.

A fix is validated when the original shows the symptom, the fixed program does
not, and the fixed program does not train worse beyond noise (its progress: the
final loss over the first loss, a ratio that a constant rescaling of the loss
leaves unchanged).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Sequence

WINDOW = 8
MIN_WINDOW = 3  # fewer steps before an epoch's end than this: the epoch is not scored
MIN_THRESHOLD = 1.3
OUTLIER_LIMIT = 3.0
# Training progress may be this much worse (ratio, then absolute) before a fix is
# said to make training worse: short smoke runs are noisy.
PROGRESS_RATIO_TOLERANCE = 1.25
PROGRESS_ABSOLUTE_TOLERANCE = 0.05
# A score within this factor of its threshold is not decisive: more seeds are run.
DECISIVE_FACTOR = 1.25

Steps = Sequence[dict]


def _finite(value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def epoch_end_indices(steps: Steps, complete_last: bool = True) -> list[int]:
    """Index of the last step of every complete epoch. The last epoch counts only
    when the run ended at an epoch boundary (``complete_last``)."""
    ends = [i for i in range(len(steps) - 1) if steps[i]["epoch"] != steps[i + 1]["epoch"]]
    if steps and complete_last:
        ends.append(len(steps) - 1)
    return ends


def epoch_ratios(steps: Steps, complete_last: bool = True, key: str = "loss") -> list[float]:
    """Per complete epoch: the last step's value over the median of the steps before it."""
    ratios = []
    for end in epoch_end_indices(steps, complete_last):
        epoch = steps[end]["epoch"]
        before = [
            _finite(steps[i][key])
            for i in range(max(0, end - WINDOW), end)
            if steps[i]["epoch"] == epoch
        ]
        before = [v for v in before if v is not None]
        last = _finite(steps[end][key])
        if last is None or len(before) < MIN_WINDOW:
            continue
        reference = statistics.median(before)
        if reference > 0:
            ratios.append(last / reference)
        elif last > 0:
            ratios.append(math.inf)
    return ratios


def spike_score(steps: Steps, complete_last: bool = True, key: str = "loss") -> float | None:
    """S: the median over epochs of the epoch-end ratio; None without a scored epoch."""
    return _median(epoch_ratios(steps, complete_last, key))


def nominal_batch(steps: Steps) -> int | None:
    sizes = [s["batch"] for s in steps if s.get("batch")]
    return max(sizes) if sizes else None


def last_batch(steps: Steps, complete_last: bool = True) -> int | None:
    sizes = [steps[i].get("batch") for i in epoch_end_indices(steps, complete_last)]
    sizes = [s for s in sizes if s]
    return int(statistics.median(sizes)) if sizes else None


def _steps_per_epoch(steps: Steps) -> int:
    counts: dict = {}
    for s in steps:
        counts[s["epoch"]] = counts.get(s["epoch"], 0) + 1
    return max(counts.values()) if counts else 0


def threshold(nominal: int | None, last: int | None) -> float:
    """T = max(1.3, sqrt(B / b_last))."""
    if not nominal or not last or last <= 0:
        return MIN_THRESHOLD
    return max(MIN_THRESHOLD, math.sqrt(nominal / last))


def progress(steps: Steps, complete_last: bool = True) -> float | None:
    """Final loss over the first: the median loss of the last epoch's steps (its
    boundary step left out) over the median of the first ``WINDOW`` steps."""
    losses = [(s["epoch"], _finite(s["loss"])) for s in steps]
    if not losses:
        return None
    first = [v for _, v in losses[:WINDOW] if v is not None]
    ends = set(epoch_end_indices(steps, complete_last))
    last_epoch = losses[-1][0]
    final = [v for i, (e, v) in enumerate(losses) if e == last_epoch and i not in ends and v is not None]
    if not first or not final:
        return None
    start = statistics.median(first)
    if start <= 0:
        return None
    return statistics.median(final) / start


def outlier_scores(steps: Steps, step: int) -> tuple[float | None, float | None]:
    """(R, D) around an injected outlier at ``step``: the largest update of that
    step and the next over the median update before it, and the median loss after
    over the median loss before."""
    if step < MIN_WINDOW or step >= len(steps):
        return None, None
    before_updates = [_finite(s["update_norm"]) for s in steps[max(0, step - WINDOW) : step]]
    reference = _median([v for v in before_updates if v is not None])
    raw = [s["update_norm"] for s in steps[step : step + 2]]
    at = [v for v in (_finite(x) for x in raw) if v is not None]
    r = max(at) / reference if at and reference else None
    if reference and any(x is not None and _finite(x) is None for x in raw):
        r = math.inf  # the update was not finite: the outlier blew the weights up
    loss_before = _median([_finite(s["loss"]) for s in steps[max(0, step - WINDOW) : step]])
    loss_after = _median([_finite(s["loss"]) for s in steps[step + 1 : step + 1 + WINDOW]])
    d = loss_after / loss_before if loss_before and loss_after is not None else None
    return r, d


@dataclass
class Judgement:
    """The verdict for one fix: ``validated``, ``failed`` (the fixed program
    still shows the symptom, trains worse, or crashes) or ``inconclusive`` (the
    original does not show the symptom in the smoke run, or cannot be run)."""

    kind: str  # "spike" or "outlier"
    verdict: str
    reason: str
    before: float | None = None
    after: float | None = None
    threshold: float | None = None
    progress_before: float | None = None
    progress_after: float | None = None
    damage_before: float | None = None
    damage_after: float | None = None
    decisive: bool = True
    details: dict = field(default_factory=dict)

    @property
    def validated(self) -> bool:
        return self.verdict == "validated"


def _worse(before: float | None, after: float | None) -> bool:
    if before is None or after is None:
        return False
    return after > before * PROGRESS_RATIO_TOLERANCE + PROGRESS_ABSOLUTE_TOLERANCE


def _near(score: float | None, limit: float) -> bool:
    if score is None or not math.isfinite(score):
        return False
    return limit / DECISIVE_FACTOR <= score <= limit * DECISIVE_FACTOR


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def judge_spike(
    before_runs: Sequence[Steps],
    after_runs: Sequence[Steps],
    direction: str = "up",
    complete_before: Sequence[bool] | None = None,
    complete_after: Sequence[bool] | None = None,
) -> Judgement:
    """Epoch-boundary spike (``direction="up"``: S > T) or dip (``"down"``: S < 1/T,
    the under-weighted last step of a sum divided by a nominal size, or of a partial
    accumulation window), before and after a fix, over one or more seeds."""
    flags_b, flags_a = list(complete_before or []), list(complete_after or [])
    scores_b = [spike_score(s, flags_b[i] if i < len(flags_b) else True) for i, s in enumerate(before_runs)]
    scores_a = [spike_score(s, flags_a[i] if i < len(flags_a) else True) for i, s in enumerate(after_runs)]
    s_before, s_after = _median(scores_b), _median(scores_a)
    first = before_runs[0]
    limit = threshold(nominal_batch(first), last_batch(first))
    if direction == "down":
        limit = 1.0 / limit
    p_before = _median([progress(s) for s in before_runs])
    p_after = _median([progress(s) for s in after_runs])
    kind = "spike" if direction == "up" else "dip"
    judgement = Judgement(kind, "", "", s_before, s_after, limit, p_before, p_after)
    judgement.details = {"scores_before": scores_b, "scores_after": scores_a}

    def symptom(score: float) -> bool:
        return score > limit if direction == "up" else score < limit

    # More seeds only where they could change the verdict: a clear "no symptom
    # before" is decided whatever the fixed run shows.
    clear_no_symptom = s_before is not None and not symptom(s_before) and not _near(s_before, limit)
    judgement.decisive = clear_no_symptom or not (_near(s_before, limit) or _near(s_after, limit))
    relation = ">" if direction == "up" else "<"
    word = "spike" if direction == "up" else "dip (an under-weighted last step)"
    if s_before is None:
        per_epoch = _steps_per_epoch(first)
        judgement.verdict = "inconclusive"
        judgement.reason = (
            f"the original run has no epoch to score: {per_epoch} optimizer steps per epoch, and an epoch's last step "
            f"is compared with at least {MIN_WINDOW} steps before it (longer epochs: --full-batches)"
        )
    elif not symptom(s_before):
        judgement.verdict = "inconclusive"
        judgement.reason = f"the original shows no epoch-boundary {word} in the smoke run (S={_fmt(s_before)}, limit {_fmt(limit)})"
    elif s_after is None:
        judgement.verdict, judgement.reason = "failed", "the fixed run has no complete epoch to score"
    elif symptom(s_after):
        judgement.verdict = "failed"
        judgement.reason = f"the {word} remains after the fix (S={_fmt(s_before)} -> {_fmt(s_after)} {relation} {_fmt(limit)})"
    elif _worse(p_before, p_after):
        judgement.verdict = "failed"
        judgement.reason = (
            f"the {word} is gone but the fixed program trains worse (final/initial loss {_fmt(p_before)} -> {_fmt(p_after)})"
        )
    else:
        judgement.verdict = "validated"
        judgement.reason = f"the {word} is gone (S={_fmt(s_before)} -> {_fmt(s_after)}, limit {_fmt(limit)})"
    return judgement


def judge_outlier(before_runs: Sequence[Steps], after_runs: Sequence[Steps], step: int, outlier_factor: float = 50.0) -> Judgement:
    """An outlier batch at ``step`` (its gradient multiplied by ``outlier_factor``), without and with the clip."""
    pairs_b = [outlier_scores(s, step) for s in before_runs]
    pairs_a = [outlier_scores(s, step) for s in after_runs]
    r_before, r_after = _median([p[0] for p in pairs_b]), _median([p[0] for p in pairs_a])
    d_before, d_after = _median([p[1] for p in pairs_b]), _median([p[1] for p in pairs_a])
    judgement = Judgement("outlier", "", "", r_before, r_after, OUTLIER_LIMIT, damage_before=d_before, damage_after=d_after)
    judgement.progress_before = _median([progress(s) for s in before_runs])
    judgement.progress_after = _median([progress(s) for s in after_runs])
    clear_no_symptom = r_before is not None and r_before <= OUTLIER_LIMIT and not _near(r_before, OUTLIER_LIMIT)
    judgement.decisive = clear_no_symptom or not (_near(r_before, OUTLIER_LIMIT) or _near(r_after, OUTLIER_LIMIT))
    clipped = any(s.get("clipped") for run in after_runs for s in run)
    if r_before is None:
        judgement.verdict, judgement.reason = "inconclusive", f"the original run did not reach the outlier at step {step}"
    elif r_before <= OUTLIER_LIMIT:
        judgement.verdict = "inconclusive"
        judgement.reason = (
            f"the outlier batch does not move the weights much more than a normal one even without a clip "
            f"(update ratio {_fmt(r_before)} <= {_fmt(OUTLIER_LIMIT)}; an adaptive optimizer bounds its own steps)"
        )
    elif r_after is None:
        judgement.verdict, judgement.reason = "failed", f"the fixed run did not reach the outlier at step {step}"
    elif r_after > OUTLIER_LIMIT:
        judgement.verdict = "failed"
        typical = _median([_median([_finite(s["grad_norm"]) for s in run[max(0, step - WINDOW) : step]]) for run in after_runs])
        if not clipped:
            hint = "no clipping was seen in the fixed run"
        elif typical:
            hint = (
                f"the gradient norm is {_fmt(typical)} on a normal step and {_fmt(typical * outlier_factor)} on the outlier: "
                "a max_norm above that never engages; choose one a few times the normal norm "
                "(clip-max-norm in [tool.losslint], or --clip-max-norm)"
            )
        else:
            hint = "a smaller max_norm may be needed"
        judgement.reason = (
            f"the outlier's update is still unbounded with the clip (ratio {_fmt(r_before)} -> {_fmt(r_after)} > "
            f"{_fmt(OUTLIER_LIMIT)}): {hint}"
        )
    elif _worse(judgement.progress_before, judgement.progress_after):
        judgement.verdict = "failed"
        judgement.reason = (
            f"the outlier is bounded but the fixed program trains worse "
            f"(final/initial loss {_fmt(judgement.progress_before)} -> {_fmt(judgement.progress_after)})"
        )
    else:
        judgement.verdict = "validated"
        judgement.reason = (
            f"the outlier's update is bounded (ratio {_fmt(r_before)} -> {_fmt(r_after)} <= {_fmt(OUTLIER_LIMIT)}; "
            f"loss after it x{_fmt(d_before)} -> x{_fmt(d_after)})"
        )
    return judgement


def judge_crash(before_status: str, before_error: str, after_status: str, after_error: str, kind: str = "spike") -> Judgement | None:
    """When a run did not complete: a verdict that says why, or None when both ran."""
    if before_status == "ok" and after_status == "ok":
        return None
    if before_status != "ok" and after_status == "ok":
        return Judgement(kind, "validated", f"the original stops with {before_error}; the fixed program trains")
    if before_status == "ok":
        return Judgement(kind, "failed", f"the fixed program stops with {after_error}; the original trains")
    return Judgement(kind, "inconclusive", f"the original cannot be run ({before_error})")
