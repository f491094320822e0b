"""What ``losslint explain`` prints: the headline, the details, JSON, the plot."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from losslint.explain.causes import Cause
from losslint.explain.detect import Analysis, Spike
from losslint.explain.link import CodeLink
from losslint.explain.readers import Log

WHERE = {
    "last": "at the last step of each pass",
    "first": "at the first step of each pass",
    "boundary": "at the pass boundaries",
    "inside": "at a fixed place inside each pass",
}


@dataclass
class Explanation:
    log: Log
    analysis: Analysis
    code: CodeLink | None
    causes: list[Cause]

    @property
    def periodic(self) -> bool:
        return self.analysis.period is not None


def _steps(values: list[float], limit: int = 6) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def headline(e: Explanation) -> str:
    a = e.analysis
    if a.period is None:
        if a.isolated:
            return f"no periodic spike; {len(a.isolated)} isolated spike{'s' if len(a.isolated) != 1 else ''} (noise or outliers)"
        return "no spike"
    parts = [f"spikes every {a.period.steps} steps" + (f" {WHERE[a.where]}" if a.where else "")]
    if e.code is not None and e.code.matches:
        parts.append("matches " + "; and ".join(m.describe() for m in e.code.matches))
        parts += e.code.linked_sentences()
    return "; ".join(parts)


def format_text(e: Explanation) -> str:
    log, a = e.log, e.analysis
    series = log.series
    lines = [
        f"{log.path}: {log.format_name}, {a.points} points (steps {series.steps[0]:g}-{series.steps[-1]:g}"
        + (f", logged every {a.interval:g} steps" if a.interval > 1 else "") + ")",
        "",
        headline(e),
    ]
    p = a.period
    if p is not None:
        lines.append("")
        lines.append(
            f"period: {p.steps} steps ({p.exact:.2f} fitted), {len(p.spikes)} spikes at steps {_steps([s.step for s in p.spikes])}; "
            f"{len(p.spikes)} of {p.lattice_points} passes in their span spike; autocorrelation {p.autocorrelation:.2f} at lag "
            f"{p.steps}, at most {p.off_period_autocorrelation:.2f} at other lags"
        )
        ratios = [s.ratio for s in p.spikes if not math.isnan(s.ratio)]
        if ratios:
            lines.append(f"size: {min(ratios):.1f}x to {max(ratios):.1f}x the local baseline (median {sorted(ratios)[len(ratios) // 2]:.1f}x)")
        if a.passes and a.passes.steps_per_pass:
            per = a.passes.steps_per_pass
            ratio = p.steps / per
            lines.append(
                f"epochs: the log's epochs give {per:.4g} steps per pass; "
                + ("the period is one pass" if abs(ratio - 1) < 0.05 else f"the period is {ratio:.2f} passes")
                + f"; {a.passes.aligned} of {len(p.spikes)} spikes within {a.tolerance:g} step{'s' if a.tolerance != 1 else ''} of a pass end"
            )
        else:
            lines.append(f"steps per pass: {p.steps}, if the spikes come once per pass (the log has no epochs to confirm it)")
        if e.code is not None:
            if e.code.matches:
                for m in e.code.matches:
                    lines.append(f"code: matches {m.describe()}")
                for sentence in e.code.linked_sentences():
                    lines.append(f"  linked: {sentence}")
            else:
                lines.append(f"code: no partial-batch finding with {p.steps} steps per pass in {', '.join(e.code.paths)}")
            for m in e.code.others:
                if m.expected is not None:
                    lines.append(f"  not it: {m.describe()} ({m.expected} steps per pass)")
        lines.append("")
        lines.append("causes:")
        for cause in e.causes:
            lines.append(f"  {cause.verdict:<8}  {cause.title}")
            lines += [f"      + {s}" for s in cause.supported]
            lines += [f"      - {s}" for s in cause.against]
            lines += [f"      ? {s}" for s in cause.missing]
    if a.isolated:
        lines.append("")
        lines.append(
            f"isolated spikes (no period; noise or outliers, a different story): {len(a.isolated)} at steps "
            f"{_steps([s.step for s in a.isolated])}"
        )
    if a.dropped:
        lines.append(f"note: {a.dropped} non-finite loss value{'s' if a.dropped != 1 else ''} left out (NaN or inf: a divergence of its own)")
    for note in log.notes:
        lines.append(f"note: {note}")
    if p is not None and e.code is not None and e.code.matches:
        paths = " ".join(sorted(set(e.code.paths)))
        lines += ["", f"next: losslint check {paths} --diff, then --fix (--unsafe-fixes for the loss scale and the clip), then losslint verify"]
    elif p is not None and e.code is None:
        lines += ["", "next: losslint explain LOG --src YOUR_SOURCES, to find the line that causes it"]
    return "\n".join(lines)


def _spike_json(s: Spike) -> dict:
    return {"step": s.step, "loss": s.loss, "baseline": s.baseline, "ratio": None if math.isnan(s.ratio) else s.ratio, "z": round(s.z, 3)}


def to_json(e: Explanation) -> str:
    log, a = e.log, e.analysis
    p = a.period
    data = {
        "log": {
            "path": log.path, "format": log.format, "format_name": log.format_name, "series": log.series.name,
            "points": a.points, "first_step": log.series.steps[0], "last_step": log.series.steps[-1],
            "interval": a.interval, "has_epochs": bool(log.series.epochs), "has_lr": bool(log.series.lrs),
            "evaluations": len(log.eval_steps), "notes": log.notes, "dropped": a.dropped,
        },
        "periodic": p is not None,
        "headline": headline(e),
        "period": None if p is None else {
            "steps": p.steps, "fitted": p.exact, "phase": p.phase, "where": a.where, "median_offset": a.median_offset,
            "spikes": [_spike_json(s) for s in p.spikes], "passes_in_span": p.lattice_points,
            "autocorrelation": p.autocorrelation, "off_period_autocorrelation": p.off_period_autocorrelation,
        },
        "passes": None if a.passes is None else {
            "steps_per_pass": a.passes.steps_per_pass, "pass_ends": a.passes.pass_ends, "aligned": a.passes.aligned,
        },
        "isolated_spikes": [_spike_json(s) for s in a.isolated],
        "code": None if e.code is None else {
            "paths": e.code.paths,
            "matches": [_match_json(m) for m in e.code.matches],
            "not_matching": [_match_json(m) for m in e.code.others],
            "linked": [
                {"code": f.code, "name": f.name, "path": f.path, "line": f.span.line, "message": f.message, "summary": s}
                for f, s in zip(e.code.linked, e.code.linked_sentences())
            ],
        },
        "causes": [
            {"cause": c.key, "title": c.title, "verdict": c.verdict, "supported": c.supported, "against": c.against, "missing": c.missing}
            for c in e.causes
        ],
    }
    return json.dumps(data, indent=2)


def _match_json(m) -> dict:
    f = m.finding
    return {
        "code": f.code, "name": f.name, "path": f.path, "line": f.span.line, "n": m.n, "b": m.b,
        "accumulation": m.accumulation, "world_size": m.world_size, "steps_per_pass": m.expected,
        "n_bounds": list(m.bounds) if m.bounds else None, "summary": m.describe(),
    }


def plot(e: Explanation, path: str) -> None:
    """The series, the spikes marked, the pass boundaries and the matched findings.
    Needs matplotlib (the verify extra); raises ImportError without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log, a = e.log, e.analysis
    figure, axes = plt.subplots(figsize=(11, 4.5))
    axes.plot(log.series.steps, log.series.losses, lw=0.8, color="#4c72b0", label=f"{log.series.name} ({log.format_name})")
    if a.log_scale:
        axes.set_yscale("log")
    p = a.period
    if p is not None:
        axes.scatter([s.step for s in p.spikes], [s.loss for s in p.spikes], color="#c44e52", zorder=3, s=24,
                     label=f"periodic spikes: every {p.steps} steps")
        if a.passes and a.passes.pass_ends:
            ends = a.passes.pass_ends
        else:
            first, last = log.series.steps[0], log.series.steps[-1]
            ends = [p.phase + k * p.steps for k in range(int((first - p.phase) // p.steps), int((last - p.phase) // p.steps) + 1)]
        for i, end in enumerate(ends):
            axes.axvline(end, color="grey", ls="--", lw=0.6, label="pass ends" if i == 0 else None)
    if a.isolated:
        axes.scatter([s.step for s in a.isolated], [s.loss for s in a.isolated], marker="x", color="#8c8c8c", zorder=3,
                     label="isolated spikes")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(f"losslint explain: {log.path}", fontsize=9)
    axes.legend(fontsize=8, loc="upper right")
    if e.code is not None and e.code.matches:
        text = "\n".join(["matches " + m.describe() for m in e.code.matches] + e.code.linked_sentences())
        figure.text(0.01, 0.01, text, fontsize=7, va="bottom", wrap=True)
        figure.subplots_adjust(bottom=0.1 + 0.035 * text.count("\n") + 0.06)
    figure.savefig(path, dpi=110)
    plt.close(figure)
