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
    if row.finding is None:
        return "all fixes"
    return f"{row.finding.code} {row.finding.path}:{row.finding.span.line}"


def exit_status(subjects: list[Subject]) -> int:
    """1 when a fix fails validation (or a scenario's rule is silent), 2 when no
    program could be trained at all, 0 otherwise."""
    rows = [row for s in subjects for row in s.rows]
    if any(row.judgement.verdict == "failed" for row in rows):
        return 1
    if any(s.kind == "scenario" and s.problem for s in subjects):
        return 1
    trained = [row for row in rows if row.before and row.before[0].ok]
    if rows and not trained and all(r.judgement.verdict != "validated" for r in rows):
        return 2
    return 0


def format_table(subjects: list[Subject], device: str) -> str:
    header = ("program", "finding", "fix", "measure", "before -> after", "limit", "verdict", "s")
    lines: list[tuple[str, ...]] = []
    notes: list[str] = []
    for subject in subjects:
        if subject.problem:
            lines.append((subject.name, "-", "-", "-", "-", "-", "not run", "-"))
            notes.append(f"{subject.name}: {subject.problem}")
            continue
        for row in subject.rows:
            j = row.judgement
            fix = row.fix if row.applicability in ("-", "safe") else f"{row.fix} ({row.applicability})"
            seeds = len(row.before)
            verdict = j.verdict + (f" ({seeds} seeds)" if seeds > 1 else "")
            scores = f"{_number(j.before)} -> {_number(j.after)}" if j.before is not None or j.after is not None else "-"
            lines.append(
                (
                    subject.name,
                    _finding_label(row),
                    _shorten(fix, 48),
                    MEASURES.get(j.kind, j.kind),
                    scores,
                    _number(j.threshold),
                    verdict,
                    f"{row.seconds:.1f}",
                )
            )
            notes.append(f"{subject.name} {_finding_label(row)}: {j.verdict}: {j.reason}")
        for note in subject.notes:
            notes.append(f"{subject.name}: note: {note}")
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    out = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    rows = [row for s in subjects for row in s.rows]
    validated = sum(r.judgement.validated for r in rows)
    failed = sum(r.judgement.verdict == "failed" for r in rows)
    summary = f"{validated} of {len(rows)} fixes validated, {failed} failed, on {device}"
    return "\n".join([*out, "", *notes, "", summary])


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


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
                    "before": None,
                    "after": None,
                    "threshold": None,
                    "device": device,
                    "seconds": 0.0,
                }
            )
            continue
        for row in subject.rows:
            j = row.judgement
            finding = row.finding
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
                    "before": _json_number(j.before),
                    "after": _json_number(j.after),
                    "threshold": _json_number(j.threshold),
                    "progress_before": _json_number(j.progress_before),
                    "progress_after": _json_number(j.progress_after),
                    "seeds": len(row.before),
                    "device": device,
                    "seconds": round(row.seconds, 3),
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


def plot(subjects: list[Subject], path: Path, device: str) -> int:
    """Draw one panel pair per trained fix; returns the number of panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for s in subjects for row in s.rows if row.before and row.after and row.before[0].steps]
    if not rows:
        return 0
    from matplotlib.ticker import FuncFormatter, LogLocator

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    figure, axes = plt.subplots(len(rows), 2, figsize=(10, 1.0 + 2.8 * len(rows)), squeeze=False)
    for (loss_ax, norm_ax), row in zip(axes, rows):
        j = row.judgement
        norm_key = "update_norm" if j.kind == "outlier" else "grad_norm"
        for runs, label, colour in ((row.before, "original", "tab:red"), (row.after, "fixed", "tab:blue")):
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
        loss_ax.set_title(
            f"{row.subject} {row.code}: {_shorten(row.fix, 40)}\n{measure} {_number(j.before)} -> {_number(j.after)} "
            f"(limit {_number(j.threshold)}): {j.verdict}",
            fontsize=9,
        )
        norm_ax.set_title("dotted: epoch boundaries" + ("; dashed: injected outlier" if j.kind == "outlier" else ""), fontsize=9)
        loss_ax.legend(fontsize=8)
    figure.suptitle(f"losslint verify ({device})", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)
    return len(rows)
