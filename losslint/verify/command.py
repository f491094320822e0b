"""``losslint verify``: prove each fix with a short smoke training before and after.

    losslint verify --scenarios [--scenario NAME ...]
    losslint verify path/to/train.py [-- ARGS ...]

This module is imported by ``losslint/cli.py`` for every command, so it imports
only click and losslint at the top; torch, keras and matplotlib (the ``verify``
extra) are needed only once a verification starts, and their absence is a clear
message with exit status 2.

Exit status: 0 every fix that could be judged was validated (or a clean
program trained clean), 1 a fix failed validation, a clean program shows a
boundary effect, or a scenario's rule stayed silent, 2 usage error, a missing
extra or GPU, a plot that could not be drawn, or a script that could not be
trained at all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _missing(modules: list[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _require(modules: list[str], why: str) -> None:
    missing = _missing(modules)
    if missing:
        raise click.ClickException(
            f"{why} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            "pip install 'losslint-static[verify]' (or install torch, keras and matplotlib yourself)"
        )


def resolve_device(device: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu; cuda without a GPU is an error."""
    if device == "cpu":
        return "cpu"
    import torch  # the verify extra, checked before

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise click.ClickException("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
    return "cuda" if available else "cpu"


class _VerifyError(click.ClickException):
    exit_code = EXIT_ERROR


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("script", required=False, type=click.Path(path_type=Path))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--scenarios", "use_scenarios", is_flag=True, help="Verify the built-in scenarios instead of a script.")
@click.option("--scenario", "scenario_names", multiple=True, help="Only this built-in scenario (repeatable; implies --scenarios).")
@click.option("--list-scenarios", is_flag=True, help="List the built-in scenarios and exit.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train: auto picks CUDA when torch sees a GPU.",
)
@click.option("--epochs", type=click.IntRange(2, 50), default=4, show_default=True, help="Epochs per smoke run.")
@click.option("--max-steps", type=click.IntRange(10, 100000), default=400, show_default=True, help="Step budget per smoke run.")
@click.option(
    "--full-batches",
    type=click.IntRange(9, 1000),
    default=10,
    show_default=True,
    help="Full batches per epoch after shrinking each training dataset.",
)
@click.option("--timeout", type=click.FloatRange(1, 3600), default=120.0, show_default=True, help="Seconds allowed per smoke run.")
@click.option(
    "--seeds", type=click.IntRange(3, 100), default=3, show_default=True, help="Seeds per program (the same for before and after)."
)
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Trainings run at once (default: CPU cores, at most 4; 1 on CUDA).")
@click.option(
    "--clip-max-norm", type=click.FloatRange(0, min_open=True), default=None, help="max_norm of the clips the fixes add (default: configuration, 1.0)."
)
@click.option("--select", multiple=True, help="Only these rules' fixes (codes, prefixes, names).")
@click.option("--ignore", multiple=True, help="Not these rules' fixes.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Use this pyproject.toml or losslint.toml.")
@click.option("--output-format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False), help="Write loss/gradient plots to this PNG.")
@click.option("--keep", "keep_dir", type=click.Path(path_type=Path, file_okay=False), help="Keep the variants and run records here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def verify(
    script: Path | None,
    args: tuple[str, ...],
    use_scenarios: bool,
    scenario_names: tuple[str, ...],
    list_scenarios: bool,
    device: str,
    epochs: int,
    max_steps: int,
    full_batches: int,
    timeout: float,
    seeds: int,
    jobs: int | None,
    clip_max_norm: float | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    config_path: Path | None,
    output_format: str,
    plot_path: Path | None,
    keep_dir: Path | None,
    quiet: bool,
) -> None:
    """Prove each fix with a short smoke training of the program before and after it.

    SCRIPT is linted; each fix is applied to a copy in a temporary directory; the
    original and each fixed copy are trained briefly under instrumentation (every
    training DataLoader shrunk so that epochs are short and the last batch small)
    and the loss, gradient norm and update per step decide whether the fix removes
    the symptom. Arguments after -- are passed to SCRIPT. The user's files are
    never modified.
    """
    from losslint.verify.scenarios import SCENARIOS, find_scenarios, scenario_dir

    if list_scenarios:
        for scenario in SCENARIOS:
            click.echo(f"{scenario.name:<26} {', '.join(scenario.expects):<20} {scenario.summary}")
        return
    use_scenarios = use_scenarios or bool(scenario_names)
    if use_scenarios and script is not None:
        raise click.UsageError("give either SCRIPT or --scenarios, not both")
    if not use_scenarios and script is None:
        raise click.UsageError("give a training script to verify, or --scenarios")
    if script is not None and not script.is_file():
        raise click.UsageError(f"{script}: no such file")
    try:
        chosen = find_scenarios(scenario_names) if use_scenarios else []
    except KeyError as error:
        raise click.UsageError(f"unknown scenario: {error.args[0]} (see --list-scenarios)") from None

    try:
        _require(["torch"], "losslint verify")
        if plot_path is not None:
            _require(["matplotlib"], "--plot")
        resolved = resolve_device(device)
    except click.ClickException as error:
        raise _VerifyError(error.message) from None

    subjects = _subjects(script, args, chosen, scenario_dir(), select, ignore, config_path, clip_max_norm)
    for subject in subjects:
        if subject.needs_cuda and resolved != "cuda" and not subject.problem:
            subject.problem = "trains on CUDA with AMP: skipped without a GPU (--device cuda on a machine with one)"
    if any(s.program is not None and "keras" in s.program.frameworks and not s.problem for s in subjects):
        missing = _missing(["keras"])
        if missing:
            for subject in subjects:
                if subject.program is not None and "keras" in subject.program.frameworks:
                    subject.problem = "this program uses Keras, which is not installed (pip install 'losslint-static[verify]')"

    from losslint.verify.harness import HarnessOptions
    from losslint.verify.report import exit_status, format_table, plot, to_json
    from losslint.verify.verifier import verify as run_verification

    workers = jobs or (1 if resolved == "cuda" else max(1, min(4, os.cpu_count() or 1)))
    workdir = Path(tempfile.mkdtemp(prefix="losslint-verify-"))
    options = HarnessOptions(
        workdir=workdir,
        device=resolved,
        epochs=epochs,
        max_steps=max_steps,
        full_batches=full_batches,
        timeout=timeout,
        workers=workers,
    )
    started = time.perf_counter()
    show_progress = not quiet

    def progress(spec, status, seconds, done, total) -> None:
        if show_progress:
            click.echo(f"  [{done}/{total}] {spec.label}: {status} ({seconds:.1f} s)", err=True)

    if show_progress:
        count = sum(1 for s in subjects if not s.problem)
        click.echo(
            f"losslint verify: training {count} program{'s' if count != 1 else ''} on {resolved} "
            f"({seeds} seeds, {workers} at a time)…",
            err=True,
        )
    plot_error = None
    previous = _stop_on_signals()
    try:
        run_verification(subjects, options, progress, seeds=seeds)
        if output_format == "json":
            click.echo(to_json(subjects, resolved))
        else:
            click.echo(format_table(subjects, resolved))
            click.echo(f"({time.perf_counter() - started:.1f} s in all)")
        if plot_path is not None:
            panels, plot_error = plot(subjects, plot_path, resolved)
            if plot_error is None and show_progress:
                click.echo(f"plot: {plot_path} ({panels} panel{'s' if panels != 1 else ''})", err=True)
    except KeyboardInterrupt:
        click.echo("losslint verify: interrupted; the trainings were stopped", err=True)
        sys.exit(130)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if keep_dir is not None:
            shutil.copytree(workdir, keep_dir, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    if plot_error is not None:
        click.echo(f"losslint verify: --plot {plot_path}: no plot written: {plot_error}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(exit_status(subjects))


def _stop_on_signals() -> dict[int, object]:
    """SIGTERM ends a verification as Ctrl-C does: the exception unwinds through the
    worker pool, which kills every training's process group, and the temporary
    directory is removed. Returns the handlers it replaced."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {}
    for number in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[number] = signal.signal(number, stop)
        except ValueError:  # not the main thread (an embedding program): leave its handlers alone
            pass
    return previous


def _subjects(script, args, chosen, directory, select, ignore, config_path, clip_max_norm=None):
    from losslint.config import ConfigError, load_settings
    from losslint.selection import enabled_rules
    from losslint.verify.programs import load_program
    from losslint.verify.verifier import Subject

    subjects = []
    try:
        settings = load_settings(config_path, [script] if script is not None else [directory])
        settings = settings.with_overrides(
            select=list(select) or None, ignore=[*settings.ignore, *ignore], clip_max_norm=clip_max_norm
        )
        if script is not None:
            program = load_program(script, settings)
            subject = Subject(str(script), "script", program, tuple(args))
            if program.problems:
                subject.problem = "; ".join(f.message for f in program.problems)
            elif not program.findings:
                subject.control = True  # trained as a negative control
            elif not program.fixable():
                subject.problem = "losslint's findings here have no automatic fix: nothing to verify"
            subjects.append(subject)
        for scenario in chosen:
            path = directory / scenario.program
            if not path.is_file():
                subjects.append(Subject(scenario.name, "scenario", None, problem=f"{path} is missing (a source checkout is needed)"))
                continue
            program = load_program(path, settings)
            subject = Subject(scenario.name, "scenario", program, needs_cuda=scenario.needs_cuda)
            found = {f.code for f in program.findings}
            enabled = {rule.code for rule in enabled_rules(settings)}
            # "LL201|LL202": either will do (how much the analysis can infer may grow)
            silent = [
                codes
                for codes in scenario.expects
                if any(c in enabled for c in codes.split("|")) and not any(c in found for c in codes.split("|"))
            ]
            if silent:
                subject.problem = f"losslint does not report {', '.join(silent)} on this scenario (found: {', '.join(sorted(found)) or 'nothing'})"
            subjects.append(subject)
    except ConfigError as error:
        raise _VerifyError(str(error)) from None
    return subjects
