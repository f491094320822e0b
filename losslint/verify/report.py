"""Output of ``losslint verify``: a table, JSON, and a plot.

Table: one line per fix (finding, fix, what is measured, score before -> after,
the threshold, the verdict, seconds of training), then the reason for each
verdict. JSON: an array, one object per fix (or per program that could not be
verified), with at least ``scenario`` or ``script``, ``code``, ``validated``,
``before``, ``after``, ``threshold``, ``device`` and ``seconds``. Plot (matplotlib,
imported only here): per fix, the loss and the gradient norm (the update norm for
a clip) per step, before and after, with the epoch boundaries marked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from losslint.verify.decision import FOLLOW, FULL_BATCH_SOURCE, fmt_null
from losslint.verify.harness import RunResult
from losslint.verify.verifier import Row, Subject

MEASURES = {"spike": "spike S", "dip": "dip S", "outlier": "outlier R"}



def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.3g}"


def _json_number(value: float | None):
    if value is None:
        return None
    return value if math.isfinite(value) else str(value)


def _finding_label(row: Row) -> str:
    if row.variant == "control":
        return "no finding"
    if row.finding is None:
        return "all fixes"
    return f"{row.finding.code} {row.finding.path}:{row.finding.span.line}"


def exit_status(subjects: list[Subject]) -> int:
    """1 when a fix fails validation, a clean program shows a boundary effect, or a
    scenario's rule is silent; 2 when a script could not be trained at all; 0 otherwise."""
    rows = [row for s in subjects for row in s.rows]
    if any(row.judgement.verdict == "failed" for row in rows):
        return 1
    if any(s.kind == "scenario" and s.problem and not s.needs_cuda for s in subjects):
        return 1
    if any(s.kind == "script" and s.problem and s.program is not None and s.workdir is not None for s in subjects):
        return 2  # the script was to be trained and could not be
    trained = [row for row in rows if row.before and row.before[0].ok]
    if rows and not trained and all(r.judgement.verdict != "validated" for r in rows):
        return 2
    return 0


def _interval(score) -> str:
    interval = score.interval if score is not None else None
    if not interval or interval[0] == interval[1]:
        return ""
    return f" [{_number(interval[0])}-{_number(interval[1])}]"


def _with_interval(judgement, name: str, when: str) -> str:
    score = judgement.scores.get(name, {}).get(when)
    value = judgement.before if when == "before" else judgement.after
    if value is None:
        return "-"
    return _number(value) + _interval(score)


def _null_cell(judgement) -> str:
    name = "R" if judgement.kind == "outlier" else "S"
    score = judgement.scores.get(name, {}).get("before")
    null = score.null if score is not None else None
    if null is None:
        return _number(judgement.threshold)
    if judgement.kind == "outlier":
        return f"<= {_number(null.high)}"
    return f"[{_number(null.low)}, {_number(null.high)}]" + ("*" if null.source == FULL_BATCH_SOURCE else "")


def _details(row: Row) -> str:
    """U, F and progress beside S: every score the verdict depends on."""
    j = row.judgement
    parts = []
    for name, label in (("U", "update at the boundary U"), ("F", f"loss over the next {FOLLOW} steps F")):
        pair = j.scores.get(name)
        if not pair:
            continue
        before, after = pair.get("before"), pair.get("after")
        null = (after or before).null if (after or before) else None
        text = f"{label} {_number(before.median if before else None)}{_interval(before)}"
        if after is not None:
            text += f" -> {_number(after.median)}{_interval(after)}"
        text += f" ({fmt_null(null, 'up')})" if null else " (no null measured)"
        parts.append(text)
    if j.progress_before is not None or j.progress_after is not None:
        null = j.details.get("progress_null")
        parts.append(
            f"final/initial loss {_number(j.progress_before)} -> {_number(j.progress_after)}"
            + (f" (original's range {fmt_null(null)})" if null else "")
        )
    fraction = j.details.get("clip_fraction")
    if fraction is not None:
        parts.append(f"clip fired on {fraction:.0%} of normal steps (max_norm {_number(j.details.get('clip'))})")
    return "; ".join(parts)


def _real_line(subject: Subject) -> str | None:
    real = subject.real
    if real is None:
        return None
    head = f"last batch: {real.smoke_last} samples in the smoke run, {real.real_last} in the real run"
    if real.judgement is None:
        return f"{head}; the run at the real size failed: {real.problem}"
    j = real.judgement
    score = j.scores["S"]["before"]
    verdict = {"failed": "a boundary effect beyond noise", "clean": "no boundary effect beyond noise"}.get(j.verdict, j.reason)
    return (
        f"{head}: S at the real size {_number(score.median)}{_interval(score)}, null {fmt_null(score.null)} "
        f"({verdict}); the table's S is at the smoke size"
    )


def format_table(subjects: list[Subject], device: str) -> str:
    header = ("program", "finding", "fix", "measure", "before -> after [seeds]", "null", "verdict", "s")
    lines: list[tuple[str, ...]] = []
    notes: list[str] = []
    for subject in subjects:
        if subject.problem:
            lines.append((subject.name, "-", "-", "-", "-", "-", "not run", "-"))
            notes.append(f"{subject.name}: {subject.problem}")
            if subject.log_tail.strip():
                tail = "\n".join(f"    | {line}" for line in _tail(subject.log_tail))
                notes.append(f"{subject.name}: the program's last output:\n{tail}")
            continue
        for row in subject.rows:
            j = row.judgement
            fix = row.fix if row.applicability in ("-", "safe") else f"{row.fix} ({row.applicability})"
            seeds = len(row.before)
            verdict = j.verdict + (f" ({seeds} seeds)" if seeds > 1 else "")
            if j.before is None and j.after is None:
                scores = "-"
            elif row.variant == "control":
                scores = _with_interval(j, "S", "before")
            else:
                name = "R" if j.kind == "outlier" else "S"
                scores = f"{_with_interval(j, name, 'before')} -> {_with_interval(j, name, 'after')}"
            lines.append(
                (
                    subject.name,
                    _finding_label(row),
                    _shorten(fix, 44),
                    MEASURES.get(j.kind, j.kind),
                    scores,
                    _null_cell(j),
                    verdict,
                    f"{row.seconds:.1f}",
                )
            )
            notes.append(f"{subject.name} {_finding_label(row)}: {j.verdict}: {j.reason}")
            details = _details(row)
            if details:
                notes.append(f"    {details}")
            for warning in j.warnings:
                notes.append(f"    warning: {warning}")
        real = _real_line(subject)
        if real:
            notes.append(f"{subject.name}: {real}")
        for note in subject.notes:
            notes.append(f"{subject.name}: note: {note}")
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    out = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    rows = [row for s in subjects for row in s.rows if row.variant != "control"]
    controls = [row for s in subjects for row in s.rows if row.variant == "control"]
    validated = sum(r.judgement.validated for r in rows)
    failed = sum(r.judgement.verdict == "failed" for r in rows)
    summary = f"{validated} of {len(rows)} fixes validated, {failed} failed, on {device}"
    if controls:
        found = sum(r.judgement.verdict == "failed" for r in controls)
        summary += f"; {len(controls)} clean program{'s' if len(controls) != 1 else ''} trained, {found} with a boundary effect"
    legend = (
        "null: the [0.5%, 99.5%] range of the score under no effect, measured in the same runs "
        "(* from the full-batch losses: no per-sample losses recorded)"
    )
    return "\n".join([*out, "", *notes, "", legend, summary])


def _tail(text: str, lines: int = 15) -> list[str]:
    kept = [line for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _score_json(score) -> dict | None:
    if score is None:
        return None
    null = score.null
    return {
        "median": _json_number(score.median),
        "per_seed": [_json_number(v) for v in score.per_seed],
        "interval": [_json_number(v) for v in score.interval] if score.interval else None,
        "null": {"low": _json_number(null.low), "high": _json_number(null.high), "source": null.source} if null else None,
    }


SERIES_KEYS = ("loss", "grad_norm", "update_norm", "batch", "epoch", "clipped", "injected")


def _series_json(runs: list[RunResult]) -> list[dict]:
    """Per seed, the per-step series as columns."""
    return [{key: [_json_number(s.get(key)) if isinstance(s.get(key), float) else s.get(key) for s in run.steps] for key in SERIES_KEYS} for run in runs]


def to_json(subjects: list[Subject], device: str) -> str:
    items = []
    for subject in subjects:
        key = "scenario" if subject.kind == "scenario" else "script"
        if subject.problem:
            items.append(
                {
                    key: subject.name,
                    "code": None,
                    "validated": False,
                    "verdict": "not run",
                    "reason": subject.problem,
                    "stderr_tail": "\n".join(_tail(subject.log_tail)),
                    "before": None,
                    "after": None,
                    "threshold": None,
                    "device": device,
                    "seconds": 0.0,
                }
            )
            continue
        real = subject.real
        real_score = real.judgement.scores["S"]["before"] if real and real.judgement else None
        for row in subject.rows:
            j = row.judgement
            finding = row.finding
            main = "R" if j.kind == "outlier" else "S"
            items.append(
                {
                    key: subject.name,
                    "code": row.code,
                    "name": finding.name if finding else None,
                    "path": finding.path if finding else None,
                    "line": finding.span.line if finding else None,
                    "message": finding.message if finding else None,
                    "fix": row.fix,
                    "applicability": row.applicability,
                    "measure": j.kind,
                    "validated": j.validated,
                    "verdict": j.verdict,
                    "reason": j.reason,
                    "warnings": j.warnings,
                    "before": _json_number(j.before),
                    "after": _json_number(j.after),
                    "threshold": _json_number(j.threshold),
                    "scores": {
                        name: {when: _score_json(score) for when, score in pair.items()} for name, pair in j.scores.items()
                    },
                    "null": (_score_json(j.scores.get(main, {}).get("before")) or {}).get("null"),
                    "progress_before": _json_number(j.progress_before),
                    "progress_after": _json_number(j.progress_after),
                    "clip_fraction": j.details.get("clip_fraction"),
                    "suggested_max_norm": j.details.get("suggested_max_norm"),
                    "last_batch_smoke": j.details.get("last_batch"),
                    "last_batch_real": real.real_last if real else j.details.get("last_batch"),
                    "before_real": _score_json(real_score),
                    "seeds": len(row.before),
                    "device": device,
                    "param_device": row.before[0].param_device if row.before else None,
                    "seconds": round(row.seconds, 3),
                    "series": {"before": _series_json(row.before), "after": _series_json(row.after)},
                    "notes": subject.notes,
                }
            )
    return json.dumps(items, indent=2)


def _series(runs: list[RunResult], key: str) -> list[float]:
    if not runs or not runs[0].steps:
        return []
    return [s.get(key) if isinstance(s.get(key), (int, float)) else float("nan") for s in runs[0].steps]


def _boundaries(runs: list[RunResult]) -> list[float]:
    if not runs or not runs[0].steps:
        return []
    steps = runs[0].steps
    return [i + 0.5 for i in range(len(steps) - 1) if steps[i]["epoch"] != steps[i + 1]["epoch"]]


def plot(subjects: list[Subject], path: Path, device: str) -> tuple[int, str | None]:
    """Draw one panel pair per trained row (fixes and negative controls, seed 0);
    returns (panels, None), or (0, why) when there is nothing that can be drawn."""
    rows = [row for s in subjects for row in s.rows if row.before and row.before[0].steps]
    if not rows:
        reasons = [f"{s.name}: {s.problem}" for s in subjects if s.problem]
        reasons += [f"{s.name} {_finding_label(r)}: {r.judgement.reason}" for s in subjects for r in s.rows]
        return 0, "no training recorded a step to draw" + (f" ({'; '.join(reasons)})" if reasons else "")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    figure, axes = plt.subplots(len(rows), 2, figsize=(10, 1.0 + 2.8 * len(rows)), squeeze=False)
    for (loss_ax, norm_ax), row in zip(axes, rows):
        j = row.judgement
        norm_key = "update_norm" if j.kind == "outlier" else "grad_norm"
        pairs = [(row.before, "original" if row.after else "program (no finding)", "tab:red")]
        if row.after:
            pairs.append((row.after, "fixed", "tab:blue"))
        for runs, label, colour in pairs:
            loss_ax.plot(_series(runs, "loss"), color=colour, label=label, linewidth=1.2)
            norm_ax.plot(_series(runs, norm_key), color=colour, label=label, linewidth=1.2)
        for ax in (loss_ax, norm_ax):
            for x in _boundaries(row.before):
                ax.axvline(x, color="grey", linestyle=":", linewidth=0.8)
            if j.kind == "outlier" and row.before[0].steps:
                injected = [i for i, s in enumerate(row.before[0].steps) if s.get("injected")]
                for x in injected:
                    ax.axvline(x, color="black", linestyle="--", linewidth=0.8)
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
            ax.set_xlabel("step")
        loss_ax.set_ylabel("training loss")
        norm_ax.set_ylabel("update norm" if norm_key == "update_norm" else "grad norm (before clipping)")
        measure = "R" if j.kind == "outlier" else "S"
        scores = f"{_number(j.before)}" + (f" -> {_number(j.after)}" if row.after else "")
        loss_ax.set_title(
            f"{row.subject} {row.code}: {_shorten(row.fix, 40)}\n{measure} {scores} (null {_null_cell(j)}): {j.verdict}",
            fontsize=9,
        )
        norm_ax.set_title("dotted: epoch boundaries" + ("; dashed: injected outlier" if j.kind == "outlier" else ""), fontsize=9)
        loss_ax.legend(fontsize=8)
    figure.suptitle(f"losslint verify ({device}, seed 0)", fontsize=10)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=72)
    except OSError as error:
        return 0, str(error)
    finally:
        plt.close(figure)
    return len(rows), None
