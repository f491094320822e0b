"""The decision: does a series show the symptom, and does the fix remove it?

Pure functions over the per-step records of ``losslint.verify.runtime`` (dicts
with ``loss``, ``grad_norm``, ``update_norm``, ``batch``, ``epoch``, and where the
runtime could take them ``per_sample`` losses and ``grad_null`` ratios), so that
they can be tested on hand-made series without a framework installed.

Three scores at the epoch boundary (the last step ``t`` of an epoch, against the
``WINDOW`` steps of the same epoch before it), each the median over epochs and
then over seeds:

- S, the loss: loss[t] / median(loss[window]). A spike when S is above its null
  range, a dip (an under-weighted last step: LL103, LL104) when below.
- U, the update: update_norm[t] / median(update_norm[window]).
- F, the loss over the ``FOLLOW`` steps after the boundary: median(loss[t+1..]) /
  median(loss[window]): what momentum carries into the next epoch.

Every limit comes from a measured null, never from a formula that assumes
symmetric noise:

- S: batches of b samples re-sampled (without replacement) out of the recorded
  per-sample losses of the full batches of the same runs (b = the last batch;
  the ``NEAREST`` full batches before the boundary, so that the loss's trend over
  the window is in the null as it is in S), set against the median of the
  window's full-batch means, as S is: what a correctly normalized loss shows at
  a b-sample batch, skew included.
- U: the recorded gradient-norm ratios of b-sample subsets of full batches over
  the whole batch (the runtime's probes). Only its upper side is judged: an
  optimizer damps a single step (momentum, Adam), it does not amplify it.
- F: ``FOLLOW`` steps drawn (without replacement) out of the window of the same
  run, over the window's median: the step-to-step noise of the loss before the
  boundary (a falling loss makes this conservative). Upper side only.
- Training progress (final loss over first loss): the original's per-seed
  values, bootstrapped over seeds and over the per-sample losses of each step.

The null of a median over seeds is drawn as that median of per-seed draws; the
range is its [0.5 %, 99.5 %] quantiles. A score is outside it only beyond an
edge by more than ``PRACTICAL_MARGIN`` (10 %, relative).

Where a run recorded no per-sample losses (a loss computed by hand, outside
``torch.nn.functional``'s common ones and Keras's ``Loss``), S's null is drawn
from the run's own full-batch losses instead: the same ratio at ordinary steps
(a full batch over the window before it: trend and noise as measured), times a
gamma variate of the variance that drawing b of a batch's samples adds; that
variance comes from the full batches' step-to-step spread (the relative variance
of one sample's loss: a mean of B samples has 1/B of it), block-bootstrapped over
epochs. The gamma is exact when the per-sample losses are gamma-distributed and
keeps the skew of small batches (a b-sample mean of skewed losses is skewed). A loss that is not positive at every full batch (a
log-likelihood of a density, a difference) fits no such model: S is then not
judged, and the verdict says so.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Sequence

WINDOW = 8
MIN_WINDOW = 3  # fewer steps before an epoch's end than this: the epoch is not scored
FOLLOW = 3  # steps after a boundary whose loss F looks at
NEAREST = 2  # the null of S re-samples the full batches this near the boundary
OUTLIER_LIMIT = 3.0  # the floor of "bounded" for the update at an injected outlier
NULL_DRAWS = 2000
FULL_BATCH_SOURCE = "full-batch losses"  # S's null where no per-sample loss was recorded
FULL_BATCH_NOTE = (
    "no per-sample losses were recorded (a loss computed by hand), so S's null is drawn from the spread of the "
    "run's full-batch losses (a gamma model of one sample's loss), not re-sampled from the samples themselves"
)
NO_LOSS_NULL = (
    "no per-sample losses were recorded (a loss computed by hand) and the full-batch losses are not all positive, "
    "so no null of S could be measured"
)
# A score counts as outside its null range only beyond the edge by more than this
# (relative): an effect too small to matter in training (e.g. the few percent by which
# a ratio of two batch sums, loss / num_pos, is biased at a 2-sample batch) is no verdict.
PRACTICAL_MARGIN = 0.10
NULL_QUANTILES = (0.005, 0.995)
CLIP_WARN_FRACTION = 0.15  # a clip firing on more normal steps than this acts as a learning-rate change
CLIP_SUGGEST_FACTOR = 2.0  # suggested max_norm: this times the median gradient norm of normal steps

Steps = Sequence[dict]


def _finite(value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(math.floor(position))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def epoch_end_indices(steps: Steps, complete_last: bool = True) -> list[int]:
    """Index of the last step of every complete epoch. The last epoch counts only
    when the run ended at an epoch boundary (``complete_last``)."""
    ends = [i for i in range(len(steps) - 1) if steps[i]["epoch"] != steps[i + 1]["epoch"]]
    if steps and complete_last:
        ends.append(len(steps) - 1)
    return ends


def _window(steps: Steps, end: int) -> list[int]:
    epoch = steps[end]["epoch"]
    return [i for i in range(max(0, end - WINDOW), end) if steps[i]["epoch"] == epoch]


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None:
        return None
    if reference > 0:
        return value / reference
    return math.inf if value > 0 else None


def epoch_ratios(steps: Steps, complete_last: bool = True, key: str = "loss") -> list[float]:
    """Per complete epoch: the last step's value over the median of the steps before it."""
    ratios = []
    for end in epoch_end_indices(steps, complete_last):
        before = [v for v in (_finite(steps[i].get(key)) for i in _window(steps, end)) if v is not None]
        if len(before) < MIN_WINDOW:
            continue
        ratio = _ratio(_finite(steps[end].get(key)), statistics.median(before))
        if ratio is not None:
            ratios.append(ratio)
    return ratios


def spike_score(steps: Steps, complete_last: bool = True, key: str = "loss") -> float | None:
    """S (or U with ``key="update_norm"``): the median over epochs of the epoch-end ratio."""
    return _median(epoch_ratios(steps, complete_last, key))


def follow_ratios(steps: Steps) -> list[tuple[float, list[float], int]]:
    """Per boundary followed by ``FOLLOW`` steps: (F, the window's losses, how many
    steps follow), for the null."""
    out = []
    for end in epoch_end_indices(steps, complete_last=False):
        window = [v for v in (_finite(steps[i]["loss"]) for i in _window(steps, end)) if v is not None]
        after = [v for v in (_finite(s["loss"]) for s in steps[end + 1 : end + 1 + FOLLOW]) if v is not None]
        if len(window) < MIN_WINDOW or len(after) < FOLLOW:
            continue
        ratio = _ratio(statistics.median(after), statistics.median(window))
        if ratio is not None:
            out.append((ratio, window, len(after)))
    return out


def follow_score(steps: Steps) -> float | None:
    return _median([r for r, _, _ in follow_ratios(steps)])


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


def progress(steps: Steps, complete_last: bool = True, scale: Sequence[float] | None = None) -> float | None:
    """Final loss over the first: the median loss of the last epoch's steps (its
    boundary step left out) over the median of the first ``WINDOW`` steps.
    ``scale`` multiplies each step's loss (a bootstrap draw)."""
    losses = [(s["epoch"], _finite(s["loss"])) for s in steps]
    if scale is not None:
        losses = [(e, v * f if v is not None else None) for (e, v), f in zip(losses, scale)]
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


# -- the nulls ------------------------------------------------------------------------


@dataclass
class Null:
    """A measured null range for a score: its [0.5 %, 99.5 %] quantiles, and what it was drawn from."""

    low: float
    high: float
    source: str  # "per-sample resampling", "full-batch losses", "gradient probes", "window steps", ...

    def contains(self, value: float | None, side: str = "both") -> bool:
        """Within the range, or beyond its edge by less than ``PRACTICAL_MARGIN``."""
        if value is None:
            return True
        if side in ("both", "up") and value > self.high * (1 + PRACTICAL_MARGIN):
            return False
        if side in ("both", "down") and value < self.low / (1 + PRACTICAL_MARGIN):
            return False
        return True


def _quantiles(draws: list[float], source: str) -> Null | None:
    draws = [d for d in draws if d is not None and math.isfinite(d)]
    if len(draws) < 20:
        return None
    return Null(quantile(draws, NULL_QUANTILES[0]), quantile(draws, NULL_QUANTILES[1]), source)


_NULLS: dict = {}


def _memo(function):
    """Nulls are drawn once per set of runs: every row of a program shares its original's.
    Keyed on the runs' identities, which the cache keeps alive (so never reused)."""

    def cached(runs, *args):
        key = (function.__name__, tuple(id(r) for r in runs), repr(args))
        if key not in _NULLS:
            _NULLS[key] = (list(runs), function(runs, *args))
        return _NULLS[key][1]

    cached.__name__ = function.__name__
    cached.__doc__ = function.__doc__
    return cached


def _loss_null_sampler(steps: Steps, b: int, complete_last: bool):
    """A function drawing one per-seed S under the null for this run, or None when the
    run recorded no per-sample losses of full batches in its scored windows."""
    full = nominal_batch(steps)
    if not full:
        return None
    # No partial batch (drop_last): the boundary step is a full batch; its null re-samples
    # full batches with replacement (a bootstrap), as a subset of b < B samples does without.
    bootstrap = b >= full
    b = min(b, full)
    epochs = []
    for end in epoch_end_indices(steps, complete_last):
        window = [i for i in _window(steps, end) if len(steps[i].get("per_sample") or ()) == full]
        if len(window) < MIN_WINDOW:
            continue
        means = [statistics.fmean(steps[i]["per_sample"]) for i in window]
        reference = statistics.median(means)
        if reference > 0:
            epochs.append(([steps[i]["per_sample"] for i in window], reference))
    if not epochs:
        return None

    def draw(rng: random.Random) -> float:
        ratios = []
        for batches, reference in epochs:
            # from the full batches nearest the boundary: the loss's own trend over the
            # window is then in the null as it is in S
            values = batches[len(batches) - 1 - rng.randrange(min(NEAREST, len(batches)))]
            chosen = rng.choices(values, k=b) if bootstrap else rng.sample(values, b)
            ratios.append(statistics.fmean(chosen) / reference)
        return statistics.median(ratios)

    return draw


def _samples_per_epoch(steps: Steps) -> int:
    counts: dict = {}
    for s in steps:
        counts[s["epoch"]] = counts.get(s["epoch"], 0) + (s.get("batch") or 0)
    return max(counts.values()) if counts else 0


def variance_blocks(runs: Sequence[Steps]) -> list[list[float]] | None:
    """Estimates of the relative variance of one sample's loss (its variance over its
    mean squared) from the full-batch losses alone, one list per epoch of each run: the
    second difference of three successive full batches of an epoch, over their mean
    (a linear trend cancels), has the relative variance 6 N / ((N - 1) B) of one
    sample's, for batches of B drawn without replacement out of the epoch's N samples
    (a batch mean has (N - B) / ((N - 1) B), and two batches of one epoch covary by
    -1 / (N - 1)). None when a full batch's loss is not positive (no such model fits)
    or there are too few of them."""
    blocks = []
    for steps in runs:
        full = nominal_batch(steps)
        if not full:
            continue
        n = _samples_per_epoch(steps)
        scale = full * (n - 1) / n / 6 if n > full else full / 6
        by_epoch: dict = {}
        for a, m, c in zip(steps, steps[1:], steps[2:]):
            if not (a["epoch"] == m["epoch"] == c["epoch"] and a.get("batch") == m.get("batch") == c.get("batch") == full):
                continue
            values = [_finite(x["loss"]) for x in (a, m, c)]
            if any(v is None or v <= 0 for v in values):
                return None
            term = scale * ((values[0] - 2 * values[1] + values[2]) / statistics.fmean(values)) ** 2
            by_epoch.setdefault(m["epoch"], []).append(term)
        blocks.extend(by_epoch.values())
    return blocks if sum(map(len, blocks)) >= 2 * WINDOW else None


def sample_variance(runs: Sequence[Steps]) -> float | None:
    """The relative variance of one sample's loss, pooled over the runs (seeds of one program)."""
    blocks = variance_blocks(runs)
    return statistics.fmean(t for block in blocks for t in block) if blocks else None


def _batch_loss_sampler(runs: Sequence[Steps], flags: Sequence[bool], b: int, blocks: list[list[float]]):
    """Without per-sample losses: one draw of the per-seed S of every run under the null,
    from the full-batch losses. The relative variance v of one sample's loss is re-drawn
    for each draw from the epochs' estimates (a block bootstrap: so that the null carries
    the uncertainty of v, which a few epochs measure roughly), one for all the runs. Per
    epoch, the ratio S is of a full batch at an ordinary step (not an epoch's last: its
    loss over the median of the window before it, so the trend and the step-to-step
    noise of full batches are in the null as measured), times the noise that drawing b
    of a batch's samples adds (b < B: variance v (1/b - 1/B)), a gamma variate of mean 1
    with that variance. With no partial batch the null is the ordinary steps' ratios alone."""
    per_run = []
    for steps, flag in zip(runs, flags):
        full = nominal_batch(steps)
        ends = set(epoch_end_indices(steps, flag))
        ordinary = []
        for i, step in enumerate(steps):
            if i in ends or step.get("batch") != full or _finite(step["loss"]) is None:
                continue
            losses = [_finite(steps[j]["loss"]) for j in _window(steps, i) if steps[j].get("batch") == full]
            losses = [v for v in losses if v is not None and v > 0]
            if len(losses) >= MIN_WINDOW:
                ordinary.append(_finite(step["loss"]) / statistics.median(losses))
        if full and ordinary and ends:
            per_run.append((0.0 if b >= full else 1 / b - 1 / full, ordinary, len(ends)))
    if not per_run:
        return None

    def draw(rng: random.Random) -> list[float]:
        chosen = [rng.choice(blocks) for _ in blocks]
        variance = statistics.fmean(t for block in chosen for t in block)
        values = []
        for factor, ordinary, epochs in per_run:
            shape = 1 / (variance * factor) if variance * factor > 0 else None
            ratios = [rng.choice(ordinary) * (rng.gammavariate(shape, 1 / shape) if shape else 1.0) for _ in range(epochs)]
            values.append(statistics.median(ratios))
        return values

    return draw


def _median_of_draws(samplers: list, rng: random.Random) -> list[float]:
    """``NULL_DRAWS`` medians over the runs; a sampler draws one run's value, or a list of several runs'."""
    out = []
    for _ in range(NULL_DRAWS):
        values = []
        for sampler in samplers:
            value = sampler(rng)
            values.extend(value if isinstance(value, list) else [value])
        out.append(statistics.median(values))
    return out


@_memo
def loss_null(runs: Sequence[Steps], b: int | None, complete: Sequence[bool] | None = None) -> Null | None:
    """The null range of S (median over the runs) for a last batch of ``b`` samples."""
    if not b:
        return None
    flags = _completes(complete, len(runs))
    samplers, by_hand = [], []
    for steps, flag in zip(runs, flags):
        sampler = _loss_null_sampler(steps, b, flag)
        if sampler is not None:
            samplers.append(sampler)
        else:  # a loss computed by hand: no per-sample losses were recorded
            by_hand.append((steps, flag))
    blocks = variance_blocks([steps for steps, _ in by_hand]) if by_hand else None
    modelled = _batch_loss_sampler(*zip(*by_hand), b, blocks) if blocks else None
    if modelled is not None:
        samplers.append(modelled)
    if not samplers:
        return None
    return _quantiles(_median_of_draws(samplers, random.Random(0)), FULL_BATCH_SOURCE if modelled else "per-sample resampling")


@_memo
def update_null(runs: Sequence[Steps], complete: Sequence[bool] | None = None) -> Null | None:
    """The null range of U: medians over epochs of probed gradient-norm ratios."""
    flags = list(complete or [])
    samplers = []
    for i, steps in enumerate(runs):
        pool = [r for s in steps for r in (s.get("grad_null") or ()) if _finite(r) is not None]
        epochs = len(epoch_end_indices(steps, flags[i] if i < len(flags) else True))
        if len(pool) >= 8 and epochs:
            samplers.append(lambda rng, pool=pool, epochs=epochs: statistics.median(rng.choice(pool) for _ in range(epochs)))
    if not samplers:
        return None
    return _quantiles(_median_of_draws(samplers, random.Random(1)), "gradient probes")


@_memo
def follow_null(runs: Sequence[Steps]) -> Null | None:
    """The null of F over the runs (median over boundaries, then runs): ``FOLLOW``
    steps drawn out of the window itself, over the window's median."""
    samplers = []
    for steps in runs:
        boundaries = [(values, count) for _, values, count in follow_ratios(steps)]
        if not boundaries:
            continue

        def draw(rng: random.Random, boundaries=boundaries) -> float:
            ratios = []
            for window, count in boundaries:
                reference = statistics.median(window)
                ratios.append(statistics.median(rng.sample(window, count)) / reference if reference > 0 else 1.0)
            return statistics.median(ratios)

        samplers.append(draw)
    if not samplers:
        return None
    return _quantiles(_median_of_draws(samplers, random.Random(2)), "window steps")


@_memo
def progress_null(runs: Sequence[Steps], complete: Sequence[bool] | None = None) -> Null | None:
    """The range of the original's progress: seeds re-drawn with replacement, each
    step's loss re-drawn from its per-sample losses (bootstrap) or, for a loss computed
    by hand, by the full-batch losses' model (``sample_variance``: a gamma variate with
    the variance of a mean of the step's samples). None when neither is there."""
    flags = list(complete or [])
    variance = sample_variance(runs)
    per_run = []
    for i, steps in enumerate(runs):
        flag = flags[i] if i < len(flags) else True
        if progress(steps, flag) is None:
            continue
        if variance is not None or any(s.get("per_sample") for s in steps):
            per_run.append((steps, flag, variance))
    if not per_run:
        return None
    rng = random.Random(3)

    def rescale(step: dict, variance: float | None) -> float:
        values = step.get("per_sample")
        mean = statistics.fmean(values) if values else 0.0
        if values and mean > 0:
            return statistics.fmean(rng.choices(values, k=len(values))) / mean
        if variance and step.get("batch"):
            shape = step["batch"] / variance
            return rng.gammavariate(shape, 1 / shape)
        return 1.0

    def one(steps: Steps, flag: bool, variance: float | None) -> float | None:
        return progress(steps, flag, [rescale(s, variance) for s in steps])

    draws = []
    for _ in range(NULL_DRAWS // 8):
        picks = [one(*per_run[rng.randrange(len(per_run))]) for _ in per_run]
        value = _median(picks)
        if value is not None:
            draws.append(value)
    return _quantiles(draws, "seeds and loss bootstrap")


def outlier_scores(steps: Steps, step: int) -> tuple[float | None, float | None]:
    """(R, D) around an injected outlier at ``step``: the largest update of that
    step and the next over the median update before it, and the median loss after
    over the median loss before."""
    if step < MIN_WINDOW or step >= len(steps):
        return None, None
    r = _update_jump(steps, step)
    loss_before = _median([_finite(s["loss"]) for s in steps[max(0, step - WINDOW) : step]])
    loss_after = _median([_finite(s["loss"]) for s in steps[step + 1 : step + 1 + WINDOW]])
    d = loss_after / loss_before if loss_before and loss_after is not None else None
    return r, d


def _update_jump(steps: Steps, step: int) -> float | None:
    before_updates = [_finite(s["update_norm"]) for s in steps[max(0, step - WINDOW) : step]]
    reference = _median(before_updates)
    raw = [s["update_norm"] for s in steps[step : step + 2]]
    at = [v for v in (_finite(x) for x in raw) if v is not None]
    r = max(at) / reference if at and reference else None
    if reference and any(x is not None and _finite(x) is None for x in raw):
        r = math.inf  # the update was not finite: the outlier blew the weights up
    return r


def outlier_null(runs: Sequence[Steps], inject_step: int) -> Null | None:
    """The range of R at ordinary steps: the same statistic at every position of the
    runs away from the injected outlier and from the epoch boundaries."""
    draws = []
    for steps in runs:
        ends = set(epoch_end_indices(steps))
        for i in range(WINDOW, len(steps) - 1):
            if abs(i - inject_step) <= WINDOW + 1 or i in ends or i + 1 in ends or (i - 1) in ends:
                continue
            value = _update_jump(steps, i)
            if value is not None:
                draws.append(value)
    if len(draws) < 20:
        return None
    return Null(0.0, quantile(draws, NULL_QUANTILES[1]), "ordinary steps")


def clip_usage(runs: Sequence[Steps], inject_step: int | None = None) -> tuple[float | None, float | None]:
    """(the fraction of normal steps on which the clip fired, the clip's threshold):
    normal = not an epoch's last step, not the injected outlier or the step after it."""
    fired = total = 0
    limit = None
    for steps in runs:
        ends = set(epoch_end_indices(steps))
        for i, s in enumerate(steps):
            if s.get("clip") is None or i in ends or (inject_step is not None and i in (inject_step, inject_step + 1)):
                continue
            total += 1
            fired += bool(s.get("clipped"))
            limit = s["clip"]
    return (fired / total if total else None), limit


def suggested_max_norm(runs: Sequence[Steps], inject_step: int | None = None) -> float | None:
    """``CLIP_SUGGEST_FACTOR`` times the median gradient norm (before clipping) of
    normal steps, to two significant digits."""
    norms = []
    for steps in runs:
        ends = set(epoch_end_indices(steps))
        for i, s in enumerate(steps):
            if i in ends or (inject_step is not None and i >= inject_step):  # an unclipped outlier's aftermath is not normal
                continue
            value = _finite(s.get("grad_norm"))
            if value is not None and value > 0:
                norms.append(value)
    if not norms:
        return None
    value = CLIP_SUGGEST_FACTOR * statistics.median(norms)
    return float(f"{value:.2g}")


# -- verdicts -----------------------------------------------------------------------


@dataclass
class Score:
    """A score over seeds: the median, the per-seed values, and its null range."""

    median: float | None
    per_seed: list[float | None]
    null: Null | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        present = [v for v in self.per_seed if v is not None]
        return (min(present), max(present)) if present else None


def _score(values: list[float | None], null: Null | None = None) -> Score:
    return Score(_median(values), values, null)


@dataclass
class Judgement:
    """The verdict for one fix: ``validated``, ``failed`` (the fixed program
    still shows the symptom, is outside a null range, trains worse, or crashes) or
    ``inconclusive`` (the original does not show the symptom in the smoke run, or
    cannot be run). For a negative control: ``clean`` or ``failed``."""

    kind: str  # "spike", "dip" or "outlier"
    verdict: str
    reason: str
    before: float | None = None
    after: float | None = None
    threshold: float | None = None
    progress_before: float | None = None
    progress_after: float | None = None
    damage_before: float | None = None
    damage_after: float | None = None
    details: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)  # name -> {"before": Score, "after": Score}
    warnings: list[str] = field(default_factory=list)

    @property
    def validated(self) -> bool:
        return self.verdict == "validated"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def fmt_null(null: Null | None, side: str = "both") -> str:
    if null is None:
        return "no null"
    if side == "up":
        return f"<= {_fmt(null.high)}"
    if side == "down":
        return f">= {_fmt(null.low)}"
    return f"[{_fmt(null.low)}, {_fmt(null.high)}]"


def _completes(flags: Sequence[bool] | None, count: int) -> list[bool]:
    flags = list(flags or [])
    return [flags[i] if i < len(flags) else True for i in range(count)]


def boundary_scores(runs: Sequence[Steps], complete: Sequence[bool] | None = None) -> dict[str, Score]:
    flags = _completes(complete, len(runs))
    return {
        "S": _score([spike_score(s, f) for s, f in zip(runs, flags)]),
        "U": _score([spike_score(s, f, "update_norm") for s, f in zip(runs, flags)]),
        "F": _score([follow_score(s) for s in runs]),
    }


def _progress_worse(before_runs, after_runs, flags_b, flags_a) -> tuple[float | None, float | None, Null | None, bool]:
    p_before = _median([progress(s, f) for s, f in zip(before_runs, flags_b)])
    p_after = _median([progress(s, f) for s, f in zip(after_runs, flags_a)])
    null = progress_null(before_runs, flags_b)
    worse = null is not None and p_after is not None and not null.contains(p_after, "up")
    return p_before, p_after, null, worse


def judge_spike(
    before_runs: Sequence[Steps],
    after_runs: Sequence[Steps],
    direction: str = "up",
    complete_before: Sequence[bool] | None = None,
    complete_after: Sequence[bool] | None = None,
) -> Judgement:
    """Epoch-boundary spike (``direction="up"``) or dip (``"down"``), before and after
    a fix, over the same seeds. The symptom: S outside its null range on its side. A
    fix is validated when the original shows it and the fixed program's S, U and F
    are all within their null ranges and it does not train worse."""
    flags_b, flags_a = _completes(complete_before, len(before_runs)), _completes(complete_after, len(after_runs))
    first = before_runs[0]
    b = last_batch(first)
    kind = "spike" if direction == "up" else "dip"
    before, after = boundary_scores(before_runs, flags_b), boundary_scores(after_runs, flags_a)
    s_null = loss_null(before_runs, b, flags_b)
    u_null = update_null(before_runs, flags_b)
    f_null = follow_null(after_runs)
    for name, null in (("S", s_null), ("U", u_null), ("F", f_null)):
        before[name].null = null
        after[name].null = null
    f_before_null = follow_null(before_runs)
    before["F"].null = f_before_null
    p_before, p_after, p_null, worse = _progress_worse(before_runs, after_runs, flags_b, flags_a)
    limit = None if s_null is None else s_null.high if direction == "up" else s_null.low
    judgement = Judgement(kind, "", "", before["S"].median, after["S"].median, limit, p_before, p_after)
    judgement.scores = {name: {"before": before[name], "after": after[name]} for name in before}
    judgement.details = {
        "scores_before": before["S"].per_seed,
        "scores_after": after["S"].per_seed,
        "progress_null": p_null,
        "last_batch": b,
        "nominal_batch": nominal_batch(first),
    }
    s_before, s_after = before["S"].median, after["S"].median
    side = direction
    word = "spike" if direction == "up" else "dip (an under-weighted last step)"
    if s_before is None:
        judgement.verdict = "inconclusive"
        judgement.reason = (
            f"the original run has no epoch to score: {_steps_per_epoch(first)} optimizer steps per epoch, and an "
            f"epoch's last step is compared with at least {MIN_WINDOW} steps before it (longer epochs: --full-batches)"
        )
        return judgement
    if s_null is None:
        judgement.verdict = "inconclusive"
        judgement.reason = f"S={_fmt(s_before)} is not judged: {NO_LOSS_NULL}"
        return judgement
    null_text = f"null {fmt_null(s_null)} from {s_null.source}"
    if s_null.contains(s_before, side):
        judgement.verdict = "inconclusive"
        judgement.reason = f"the original shows no epoch-boundary {word} in the smoke run (S={_fmt(s_before)}, {null_text})"
        return judgement
    if s_after is None:
        judgement.verdict, judgement.reason = "failed", "the fixed run has no complete epoch to score"
        return judgement
    outside = []
    if not s_null.contains(s_after, "both"):
        outside.append(f"S={_fmt(s_after)} is outside {fmt_null(s_null)}")
    if u_null is not None and not u_null.contains(after["U"].median, "up"):
        outside.append(f"the update at the boundary U={_fmt(after['U'].median)} is above {_fmt(u_null.high)}")
    if f_null is not None and not f_null.contains(after["F"].median, "up"):
        outside.append(f"the loss over the next {FOLLOW} steps F={_fmt(after['F'].median)} is above {_fmt(f_null.high)}")
    if outside:
        judgement.verdict = "failed"
        remains = "remains" if not s_null.contains(s_after, side) else "is not fully gone"
        judgement.reason = f"the {word} {remains} after the fix (S={_fmt(s_before)} -> {_fmt(s_after)}): " + "; ".join(outside)
    elif worse:
        judgement.verdict = "failed"
        judgement.reason = (
            f"the {word} is gone but the fixed program trains worse (final/initial loss {_fmt(p_before)} -> "
            f"{_fmt(p_after)}, above the original's range {fmt_null(p_null)} over the same seeds)"
        )
    else:
        judgement.verdict = "validated"
        parts = [f"S={_fmt(s_before)} -> {_fmt(s_after)}, {null_text}"]
        parts.append(f"U={_fmt(after['U'].median)} {fmt_null(u_null, 'up')}" if u_null else "U not judged (no gradient probe)")
        parts.append(f"F={_fmt(after['F'].median)} {fmt_null(f_null, 'up')}" if f_null else "F not judged (no following steps)")
        judgement.reason = f"the {word} is gone (" + "; ".join(parts) + ")"
        if not s_null.low <= s_after <= s_null.high:
            judgement.reason += (
                f"; S={_fmt(s_after)} is beyond the null's edge by less than the {PRACTICAL_MARGIN:.0%} practical margin"
            )
    if s_null.source == FULL_BATCH_SOURCE:
        judgement.warnings.append(FULL_BATCH_NOTE)
    return judgement


def judge_control(runs: Sequence[Steps], complete: Sequence[bool] | None = None) -> Judgement:
    """A program losslint finds clean, trained as a negative control: a spike or dip
    (S outside its null), or a disturbed update or following loss, is a finding of its own."""
    flags = _completes(complete, len(runs))
    first = runs[0]
    b = last_batch(first)
    scores = boundary_scores(runs, flags)
    s_null = loss_null(runs, b, flags)
    u_null, f_null = update_null(runs, flags), follow_null(runs)
    scores["S"].null, scores["U"].null, scores["F"].null = s_null, u_null, f_null
    judgement = Judgement("spike", "", "", scores["S"].median, None, s_null.high if s_null else None)
    judgement.scores = {name: {"before": score} for name, score in scores.items()}
    judgement.details = {"scores_before": scores["S"].per_seed, "last_batch": b, "nominal_batch": nominal_batch(first)}
    s = scores["S"].median
    if s is None:
        judgement.verdict = "inconclusive"
        judgement.reason = f"no epoch to score: {_steps_per_epoch(first)} optimizer steps per epoch"
        return judgement
    problems = []
    if s_null is None:
        pass  # S is not judged (said below); U and F still are
    elif not s_null.contains(s, "up"):
        problems.append(f"a spike at the epoch boundary: S={_fmt(s)} above {fmt_null(s_null)}")
    elif not s_null.contains(s, "down"):
        judgement.kind = "dip"
        problems.append(f"a dip at the epoch boundary: S={_fmt(s)} below {fmt_null(s_null)}")
    if u_null is not None and not u_null.contains(scores["U"].median, "up"):
        problems.append(f"the update at the boundary U={_fmt(scores['U'].median)} is above {_fmt(u_null.high)}")
    if f_null is not None and not f_null.contains(scores["F"].median, "up"):
        problems.append(f"the loss over the next {FOLLOW} steps F={_fmt(scores['F'].median)} is above {_fmt(f_null.high)}")
    if problems:
        judgement.verdict = "failed"
        judgement.reason = "losslint found nothing, but the training shows " + "; ".join(problems)
    elif s_null is None:
        judgement.verdict = "inconclusive"
        judgement.reason = f"S={_fmt(s)} is not judged: {NO_LOSS_NULL}"
    else:
        judgement.verdict = "clean"
        judgement.reason = f"no boundary effect beyond noise (S={_fmt(s)}, null {fmt_null(s_null)} from {s_null.source})"
    if s_null is not None and s_null.source == FULL_BATCH_SOURCE:
        judgement.warnings.append(FULL_BATCH_NOTE)
    return judgement


def judge_outlier(
    before_runs: Sequence[Steps],
    after_runs: Sequence[Steps],
    step: int,
    outlier_factor: float = 50.0,
    complete_before: Sequence[bool] | None = None,
    complete_after: Sequence[bool] | None = None,
) -> Judgement:
    """An outlier batch at ``step`` (its gradient multiplied by ``outlier_factor``), without and with the clip."""
    flags_b, flags_a = _completes(complete_before, len(before_runs)), _completes(complete_after, len(after_runs))
    pairs_b = [outlier_scores(s, step) for s in before_runs]
    pairs_a = [outlier_scores(s, step) for s in after_runs]
    r_before, r_after = _score([p[0] for p in pairs_b]), _score([p[0] for p in pairs_a])
    d_before, d_after = _median([p[1] for p in pairs_b]), _median([p[1] for p in pairs_a])
    null = outlier_null(before_runs, step)
    limit = max(OUTLIER_LIMIT, null.high) if null else OUTLIER_LIMIT
    r_null = Null(0.0, limit, null.source if null else "floor")
    r_before.null = r_after.null = r_null
    judgement = Judgement("outlier", "", "", r_before.median, r_after.median, limit, damage_before=d_before, damage_after=d_after)
    judgement.scores = {"R": {"before": r_before, "after": r_after}}
    p_before, p_after, p_null, worse = _progress_worse(before_runs, after_runs, flags_b, flags_a)
    judgement.progress_before, judgement.progress_after = p_before, p_after
    judgement.details = {"scores_before": r_before.per_seed, "scores_after": r_after.per_seed, "progress_null": p_null}
    fraction, clip = clip_usage(after_runs, step)
    suggestion = suggested_max_norm(before_runs, step)
    judgement.details.update(clip_fraction=fraction, clip=clip, suggested_max_norm=suggestion)
    if fraction is not None and fraction > CLIP_WARN_FRACTION:
        judgement.warnings.append(
            f"the clip (max_norm {_fmt(clip)}) fires on {fraction:.0%} of normal steps: it bounds any outlier because it "
            f"rescales almost every step, which is a smaller learning rate, not a clip"
            + (f"; a max_norm of {suggestion:g} ({CLIP_SUGGEST_FACTOR:g}x the median gradient norm) fires on outliers only: "
               f"losslint check --fix --unsafe-fixes --clip-max-norm {suggestion:g}" if suggestion else "")
        )
    clip_seen = clip is not None
    rb, ra = r_before.median, r_after.median
    if rb is None:
        judgement.verdict, judgement.reason = "inconclusive", f"the original run did not reach the outlier at step {step}"
    elif rb <= limit:
        judgement.verdict = "inconclusive"
        judgement.reason = (
            f"the outlier batch does not move the weights much more than a normal one even without a clip "
            f"(update ratio {_fmt(rb)} <= {_fmt(limit)}; an adaptive optimizer bounds its own steps)"
        )
    elif ra is None:
        judgement.verdict, judgement.reason = "failed", f"the fixed run did not reach the outlier at step {step}"
    elif ra > limit:
        judgement.verdict = "failed"
        typical = _median([_median([_finite(s["grad_norm"]) for s in run[max(0, step - WINDOW) : step]]) for run in after_runs])
        if not clip_seen:
            hint = "no clipping was seen in the fixed run"
        elif typical:
            hint = (
                f"the gradient norm is {_fmt(typical)} on a normal step and {_fmt(typical * outlier_factor)} on the outlier: "
                "a max_norm above that never engages; choose one a few times the normal norm "
                f"(clip-max-norm in [tool.losslint], or --clip-max-norm{f' {suggestion:g}' if suggestion else ''})"
            )
        else:
            hint = "a smaller max_norm may be needed"
        judgement.reason = f"the outlier's update is still unbounded with the clip (ratio {_fmt(rb)} -> {_fmt(ra)} > {_fmt(limit)}): {hint}"
    elif worse:
        judgement.verdict = "failed"
        judgement.reason = (
            f"the outlier is bounded but the fixed program trains worse (final/initial loss {_fmt(p_before)} -> "
            f"{_fmt(p_after)}, above the original's range {fmt_null(p_null)} over the same seeds)"
        )
    else:
        judgement.verdict = "validated"
        judgement.reason = (
            f"the outlier's update is bounded (ratio {_fmt(rb)} -> {_fmt(ra)} <= {_fmt(limit)}, the ordinary steps' "
            f"{NULL_QUANTILES[1]:.1%} quantile or {OUTLIER_LIMIT:g}; loss after it x{_fmt(d_before)} -> x{_fmt(d_after)})"
        )
        if fraction is not None:
            judgement.reason += f"; the clip fired on {fraction:.0%} of normal steps"
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
