"""``losslint explain``: from a spiky loss log to the line of code that causes it.

    losslint explain LOG [SRC ...] [--src PATH ...]

This module is imported by ``losslint/cli.py`` for every command, so it imports
only click at the top; the readers, the detection and the check run are imported
when an explanation starts.

Exit status, as ``check``: 0 no periodic spike, 1 a periodic spike found, 2 an
error (a log that cannot be read, a plot without matplotlib).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import click

EXIT_NONE, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


class _ExplainError(click.ClickException):
    exit_code = EXIT_ERROR

    def show(self, file=None) -> None:
        click.echo(f"losslint: error: {self.format_message()}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("log", type=click.Path(path_type=Path))
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--src", "src", multiple=True, type=click.Path(path_type=Path), help="Training code to run check on (repeatable).")
@click.option(
    "--format", "log_format",
    type=click.Choice(["auto", "hf", "lightning", "csv", "jsonl", "wandb", "tensorboard", "stdout"]),
    default="auto", show_default=True, help="The log's format (auto: from its name, or the files of a run directory).",
)
@click.option("--step-column", help="Column, key or tag of the step (default: guessed, e.g. global_step, step, _step).")
@click.option("--loss-column", help="Column, key or tag of the training loss (default: guessed, e.g. loss, train_loss, train/loss).")
@click.option("--pattern", help="stdout: a regex with named groups (?P<step>...) and (?P<loss>...) (epoch and lr optional).")
@click.option("--grad-accum", type=click.IntRange(min=1), default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--world-size", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel processes (DistributedSampler).")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a plot (PNG, SVG, PDF): needs matplotlib.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="check's pyproject.toml or losslint.toml.")
@click.option("--no-cache", is_flag=True, help="Do not read or write check's result cache.")
def explain(
    log: Path,
    sources: tuple[Path, ...],
    src: tuple[Path, ...],
    log_format: str,
    step_column: str | None,
    loss_column: str | None,
    pattern: str | None,
    grad_accum: int,
    world_size: int,
    output_format: str,
    plot_path: Path | None,
    config_path: Path | None,
    no_cache: bool,
) -> None:
    """Find the periodic spikes in a training LOG and the code that causes them.

    LOG is a log file or a run directory (trainer_state.json, metrics.csv,
    TensorBoard events, CSV, JSONL, W&B history, training stdout). SOURCES (or
    --src) are run through check, and the period compared with each DataLoader's
    steps per pass. Exit status: 0 no periodic spike, 1 one found, 2 an error.
    """
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise _ExplainError(
            "--plot needs matplotlib, which is not installed: pip install 'losslint-static[verify]' (or matplotlib)"
        )
    from losslint.explain.causes import explain_causes
    from losslint.explain.detect import analyse
    from losslint.explain.link import link, run_check
    from losslint.explain.readers import LogError, ReadOptions, read_log
    from losslint.explain.report import Explanation, format_text, plot, to_json

    try:
        read = read_log(log, ReadOptions(log_format, step_column, loss_column, pattern))
    except LogError as error:
        raise _ExplainError(str(error)) from None
    analysis = analyse(read)
    code = None
    paths = list(sources) + list(src)
    if paths:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise _ExplainError(f"no such source: {', '.join(missing)}")
        try:
            findings = run_check(paths, config_path, use_cache=not no_cache)
        except Exception as error:  # a configuration error or a bug of ours: say so, without a traceback
            if os.environ.get("LOSSLINT_DEBUG"):
                raise
            raise _ExplainError(f"check on {', '.join(map(str, paths))} failed: {type(error).__name__}: {error}") from None
        period = analysis.period.steps if analysis.period else None
        code = link(findings, period, analysis.tolerance, grad_accum, world_size)
        code.paths = [str(p) for p in paths]
    explanation = Explanation(read, analysis, code, explain_causes(read, analysis, code))
    click.echo(to_json(explanation) if output_format == "json" else format_text(explanation))
    if plot_path is not None:
        try:
            plot(explanation, str(plot_path))
        except ImportError as error:
            raise _ExplainError(f"--plot needs matplotlib: {error}") from None
        except (OSError, ValueError) as error:
            raise _ExplainError(f"cannot write the plot {plot_path}: {error}") from None
        if output_format == "text":
            click.echo(f"plot: {plot_path}", err=True)
    sys.exit(EXIT_FOUND if explanation.periodic else EXIT_NONE)
