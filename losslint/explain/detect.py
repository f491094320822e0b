"""Spikes, their period, and where they fall in a pass over the data.

1. Spikes: the loss (its logarithm, when every value is positive: a loss scaled
   16x is a jump of log 16 however small the loss has become) minus a robust
   local baseline, the median of the 15 points around it, divided by a robust
   local scale, the median absolute residual of its block of 101 points. A point
   more than ``Z_SPIKE`` scales and ``MIN_RATIO`` times above its baseline is a
   spike point; neighbouring spike points are one spike, at its highest point.
2. Period: every spacing between nearby spikes is a candidate P; a candidate is
   scored by how many spikes fall on one lattice ``phase + n P`` (within the
   logging interval) and what share of that lattice's points carry a spike. The
   best lattice is refined by least squares (so a loss logged every k steps still
   gives P to the step over many passes), then checked against the
   autocorrelation of the spike excess (the part of each standardized residual
   above 3), at lag P and at off-period lags between P/2 and 3P/2.
3. Passes: where the log has epochs, the last step of each pass is found (where
   an integer epoch changes, or where a fractional epoch crosses an integer) and
   each periodic spike's offset from it measured.

Spikes that fit no lattice are kept apart as isolated: noise or outliers.
numpy speeds up the rolling medians when installed; the results are the same.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from losslint.explain.readers import Log

BASELINE_HALF = 7  # the baseline is the median of 2*7+1 points
SCALE_HALF = 50  # the scale is the median |residual| of blocks of 2*50+1 points
Z_SPIKE = 6.0
MIN_RATIO = 1.5  # a spike is at least 1.5x its baseline (when the loss is positive)
Z_EXCESS = 3.0  # the autocorrelation is taken over the excess above 3 scales
MIN_PERIODIC = 3  # spikes on one lattice before a period is reported
MIN_COVERAGE = 0.6  # share of the lattice's points (passes) that carry a spike
ACF_MIN = 0.25
ACF_MARGIN = 2.0  # the autocorrelation at P must be this many times the off-period lags'


@dataclass
class Spike:
    step: float
    loss: float
    baseline: float  # the local baseline, in loss units
    ratio: float  # loss / baseline (nan when the loss is not positive)
    z: float  # standardized residual


@dataclass
class Period:
    steps: int
    exact: float  # the least-squares estimate before rounding
    phase: int  # spikes fall at steps == phase (mod steps)
    spikes: list[Spike]  # those on the lattice
    lattice_points: int  # passes in the span of those spikes
    autocorrelation: float
    off_period_autocorrelation: float

    @property
    def coverage(self) -> float:
        return len(self.spikes) / self.lattice_points if self.lattice_points else 0.0


@dataclass
class Passes:
    """What the log's epochs say about the passes over the data."""

    steps_per_pass: float | None  # from the epochs
    pass_ends: list[float]  # the last step of each pass
    offsets: list[float] = field(default_factory=list)  # each periodic spike's step minus the nearest pass end
    aligned: int = 0  # periodic spikes within the tolerance of a pass end


@dataclass
class Analysis:
    points: int
    dropped: int  # non-finite losses left out
    log_scale: bool
    interval: float  # the typical logging interval, in steps
    tolerance: float  # steps a spike may be off its lattice
    spikes: list[Spike]
    period: Period | None
    isolated: list[Spike]
    passes: Passes | None
    where: str | None  # see Passes.where; from the epochs or, without them, the phase
    median_offset: float | None


# --- rolling medians ----------------------------------------------------------------------------


def _rolling_median(values: list[float], half: int) -> list[float]:
    """Median (the upper middle of an even window) of values[i-half : i+half+1]."""
    n = len(values)
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None and n > 4 * half + 2:
        array = np.asarray(values, dtype=float)
        width = 2 * half + 1
        windows = np.lib.stride_tricks.sliding_window_view(array, width)
        out = [0.0] * n
        chunk = 65536  # np.partition copies its input: bound the memory
        for start in range(0, len(windows), chunk):
            middle = np.partition(windows[start : start + chunk], half, axis=1)[:, half]
            out[half + start : half + start + len(middle)] = middle.tolist()
        for i in list(range(half)) + list(range(n - half, n)):
            window = sorted(values[max(0, i - half) : i + half + 1])
            out[i] = window[len(window) // 2]
        return out
    out = []
    window = sorted(values[: min(n, half + 1)])
    for i in range(n):
        out.append(window[len(window) // 2])
        entering, leaving = i + half + 1, i - half
        if entering < n:
            bisect.insort(window, values[entering])
        if leaving >= 0:
            del window[bisect.bisect_left(window, values[leaving])]
    return out


def _block_median(values: list[float], width: int) -> list[float]:
    """The median of each block of ``width`` points, for every point of the block
    (the last block joins the one before when short): a local scale in linear time."""
    n = len(values)
    starts = list(range(0, n, width))
    if len(starts) > 1 and n - starts[-1] < width // 2:
        starts.pop()
    out: list[float] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        block = sorted(values[start:end])
        out += [block[len(block) // 2]] * (end - start)
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


# --- spikes -------------------------------------------------------------------------------------


def find_spikes(steps: list[float], losses: list[float]) -> tuple[list[Spike], list[float], bool]:
    """The spikes, and the standardized residual of every point (for the
    autocorrelation)."""
    log_scale = all(v > 0 for v in losses)
    y = [math.log(v) for v in losses] if log_scale else list(losses)
    baseline = _rolling_median(y, BASELINE_HALF)
    residual = [a - b for a, b in zip(y, baseline)]
    scale = _block_median([abs(r) for r in residual], 2 * SCALE_HALF + 1)
    overall = _median([abs(r) for r in residual]) or 1e-12
    floor = max(overall * 0.2, 1e-12)
    z = [r / max(1.4826 * s, floor) for r, s in zip(residual, scale)]
    min_residual = math.log(MIN_RATIO) if log_scale else 0.0
    spikes: list[Spike] = []
    run: list[int] = []

    def close_run() -> None:
        if run:
            top = max(run, key=lambda i: z[i])
            base = math.exp(baseline[top]) if log_scale else baseline[top]
            ratio = losses[top] / base if log_scale else math.nan
            spikes.append(Spike(steps[top], losses[top], base, ratio, z[top]))
            run.clear()

    for i, value in enumerate(z):
        if value >= Z_SPIKE and residual[i] > min_residual:
            if run and i - run[-1] > 2:
                close_run()
            run.append(i)
    close_run()
    return spikes, z, log_scale


# --- the period ---------------------------------------------------------------------------------


def _lattice(steps: list[float], period: float, tolerance: float) -> tuple[int, float]:
    """The phase with the most steps within ``tolerance`` of ``phase + n*period``:
    (count, phase). The residues are scanned round the circle with a window of
    width 2 * tolerance; the phase is the middle of the best window's residues."""
    residues = sorted(s % period for s in steps)
    doubled = residues + [r + period for r in residues]
    best, phase = 0, 0.0
    for i, r in enumerate(residues):
        end = bisect.bisect_right(doubled, r + 2 * tolerance + 1e-9, lo=i)
        if end - i > best:
            best, phase = end - i, (r + doubled[end - 1]) / 2 % period
    return best, phase


def _on_lattice(spikes: list[Spike], period: float, phase: float, tolerance: float) -> list[Spike]:
    def off(s: Spike) -> float:
        d = (s.step - phase) % period
        return min(d, period - d)

    return [s for s in spikes if off(s) <= tolerance + 1e-9]


def _autocorrelation(excess: dict[float, float], lag: float, tolerance: float) -> float:
    """Sum of e(s) e(s + lag) (within tolerance) over the sum of e(s)^2: near 1 for
    spikes that recur every ``lag`` steps, near 0 for isolated ones."""
    if not excess:
        return 0.0
    steps = sorted(excess)
    total = sum(e * e for e in excess.values())
    pairs = 0.0
    for s in steps:
        lo = bisect.bisect_left(steps, s + lag - tolerance)
        hi = bisect.bisect_right(steps, s + lag + tolerance)
        if lo < hi:
            pairs += excess[s] * max(excess[t] for t in steps[lo:hi])
    return pairs / total


def find_period(spikes: list[Spike], excess: dict[float, float], interval: float, tolerance: float) -> Period | None:
    if len(spikes) < MIN_PERIODIC:
        return None
    steps = [s.step for s in spikes]
    # Spacings between nearby spikes, and the mean spacing over runs of up to 8
    # spikes (a log holding every k-th step quantizes single spacings to k).
    candidates = set()
    for i, s in enumerate(steps):
        for gap, t in enumerate(steps[i + 1 : i + 9], 1):
            for value in {(t - s) / gap, *((t - s,) if gap <= 3 else ())}:
                if value >= max(2 * interval, 2):
                    candidates.update((math.floor(value), math.ceil(value)))
    best = None
    for candidate in sorted(candidates):
        count, phase = _lattice(steps, candidate, tolerance)
        if count < MIN_PERIODIC:
            continue
        fitted = _on_lattice(spikes, candidate, phase, tolerance)
        span = fitted[-1].step - fitted[0].step
        lattice_points = round(span / candidate) + 1
        score = count * count / lattice_points
        if best is None or score > best[0] + 1e-9:
            best = (score, candidate, fitted)
    if best is None:
        return None
    _, candidate, fitted = best
    # least squares over the fitted spikes: s = a + P n
    first = fitted[0].step
    numbers = [round((s.step - first) / candidate) for s in fitted]
    mean_n = sum(numbers) / len(numbers)
    mean_s = sum(s.step for s in fitted) / len(fitted)
    var = sum((n - mean_n) ** 2 for n in numbers)
    exact = sum((n - mean_n) * (s.step - mean_s) for n, s in zip(numbers, fitted)) / var if var else float(candidate)
    period = max(1, round(exact))
    count, phase = _lattice(steps, period, tolerance)
    fitted = _on_lattice(spikes, period, phase, tolerance)
    if len(fitted) < MIN_PERIODIC:
        return None
    lattice_points = round((fitted[-1].step - fitted[0].step) / period) + 1
    if len(fitted) / lattice_points < MIN_COVERAGE:
        return None
    if len(fitted) < 5 and len(spikes) - len(fitted) > 1:
        return None  # three or four spikes among many: a coincidence is too likely
    acf = _autocorrelation(excess, period, tolerance)
    # off-period lags: P/2 to 3P/2, away from P by more than the quantization of a
    # spacing (a spike is placed within the tolerance at both ends)
    off_lags = [lag for lag in (period * f / 20 for f in range(10, 31)) if abs(lag - period) > 2 * tolerance + 1]
    off = max((_autocorrelation(excess, lag, tolerance) for lag in off_lags), default=0.0)
    if acf < ACF_MIN or acf < ACF_MARGIN * off:
        return None
    phase_step = round(sum((s.step - round((s.step - fitted[0].step) / period) * period) for s in fitted) / len(fitted)) % period
    return Period(period, exact, int(phase_step), fitted, lattice_points, acf, off)


# --- passes -------------------------------------------------------------------------------------


def find_passes(steps: list[float], epochs: list[float]) -> Passes | None:
    pairs = list(zip(steps, epochs))
    if any(map(math.isnan, epochs)):  # rows without an epoch
        pairs = [(s, e) for s, e in pairs if e == e]
    if len(pairs) < 2:
        return None
    integer = _integer(pairs)
    if pairs[-1][1] - pairs[0][1] < 1 - 1e-9 and not integer:
        return None
    if integer:
        ends = [a[0] for a, b in zip(pairs, pairs[1:]) if b[1] > a[1]]
        if not ends:
            return None
        per = _median([b - a for a, b in zip(ends, ends[1:])]) if len(ends) > 1 else None
        return Passes(per, ends)
    # fractional epochs (Hugging Face: epoch = step / steps per pass): step = P * epoch + c
    n = len(pairs)
    mean_e = sum(e for _, e in pairs) / n
    mean_s = sum(s for s, _ in pairs) / n
    var = sum((e - mean_e) ** 2 for _, e in pairs)
    if var == 0:
        return None
    per = sum((e - mean_e) * (s - mean_s) for s, e in pairs) / var
    c = mean_s - per * mean_e
    last_epoch = pairs[-1][1]
    ends = [per * m + c for m in range(max(1, math.ceil(pairs[0][1] - 1e-9)), math.floor(last_epoch + 1e-9) + 1)]
    return Passes(per, ends)


def _integer(pairs: list[tuple[float, float]]) -> bool:
    return all(map(float.is_integer, (float(e) for _, e in pairs)))


def _where(offsets: list[float], interval: float, tolerance: float) -> tuple[str, float] | None:
    if not offsets:
        return None
    middle = _median(offsets)
    if abs(middle) > tolerance:
        return "inside", middle
    if interval <= 1:
        if abs(middle) < 0.5:
            return "last", middle
        return ("first", middle) if middle > 0 else ("inside", middle)
    return "boundary", middle


# --- all of it ----------------------------------------------------------------------------------


def analyse(log: Log) -> Analysis:
    series = log.series
    if all(map(math.isfinite, series.losses)):
        keep = None
        steps, losses = series.steps, series.losses
    else:
        keep = [i for i, v in enumerate(series.losses) if math.isfinite(v)]
        steps = [series.steps[i] for i in keep]
        losses = [series.losses[i] for i in keep]
    dropped = len(series.losses) - len(steps)
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    interval = max(1.0, _median(gaps)) if gaps else 1.0
    tolerance = interval
    if len(steps) < 2 * BASELINE_HALF + 1:
        return Analysis(len(steps), dropped, False, interval, tolerance, [], None, [], None, None, None)
    spikes, z, log_scale = find_spikes(steps, losses)
    excess = {s: v - Z_EXCESS for s, v in zip(steps, z) if v > Z_EXCESS}
    period = find_period(spikes, excess, interval, tolerance)
    on_period = {id(s) for s in period.spikes} if period else set()
    isolated = [s for s in spikes if id(s) not in on_period]
    passes = None
    if series.epochs:
        epochs = series.epochs if keep is None else [series.epochs[i] for i in keep]
        passes = find_passes(steps, epochs)
    where, median_offset = None, None
    if period and passes and passes.pass_ends:
        for spike in period.spikes:
            at = bisect.bisect_left(passes.pass_ends, spike.step)
            nearest = min(passes.pass_ends[max(0, at - 1) : at + 1], key=lambda end: abs(end - spike.step))
            offset = spike.step - nearest
            passes.offsets.append(offset)
            passes.aligned += abs(offset) <= tolerance
        found = _where(passes.offsets, interval, tolerance)
        if found:
            where, median_offset = found
    elif period:
        # no epochs: with steps counted from 1 (most trainers log the step just
        # taken), the last step of pass m is m*P; counted from 0, m*P - 1.
        first = steps[0]
        offset = period.phase if period.phase <= period.steps // 2 else period.phase - period.steps
        if first == 0:
            offset += 1
        found = _where([offset], interval, tolerance)
        if found:
            where, median_offset = found
    return Analysis(len(steps), dropped, log_scale, interval, tolerance, spikes, period, isolated, passes, where, median_offset)
