"""The command line, in ruff's conventions.

Exit codes everywhere: 0 clean, 1 findings (with ``--fix``: findings that remain;
with ``--diff``: fixes that would be applied), 2 usage, configuration or
internal error.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import click

from losslint import __version__
from losslint.cache import Cache, cache_directory
from losslint.config import ConfigError, load_settings
from losslint.engine import Linter, Report
from losslint.findings import Finding
from losslint.fixes import apply_fixes, text_edits
from losslint.output import (
    format_concise, format_github, format_json, format_sarif, format_statistics, format_text, line_reader, progress_bar, summary,
)
from losslint.rules.base import Rule, all_rules, find_rule

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="losslint", message="%(prog)s %(version)s")
def main() -> None:
    """losslint: find and fix the causes of epoch-boundary loss spikes in training code."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rules to enable (codes, prefixes like LL2, names, ALL); replaces the default set.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--fix", "fix", is_flag=True, default=None, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, default=None, help="Also apply fixes that change training dynamics.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option(
    "--output-format",
    type=click.Choice(["text", "concise", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="How findings are printed.",
)
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Use this pyproject.toml or losslint.toml.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the result cache (.losslint_cache/ at the project root).")
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=None, help="Processes to lint with (default: every core)."
)
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary.")
@click.option("--progress/--no-progress", default=None, help="A progress bar on stderr (default: when stderr is a terminal).")
@click.option(
    "--clip-max-norm",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="max_norm of the clips the LL3xx fixes insert (default: clip-max-norm in the configuration, 1.0).",
)
def check(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    fix: bool | None,
    unsafe_fixes: bool | None,
    diff: bool,
    output_format: str,
    statistics: bool,
    exit_zero: bool,
    config_path: Path | None,
    no_cache: bool,
    jobs: int | None,
    quiet: bool,
    progress: bool | None,
    clip_max_norm: float | None,
) -> None:
    """Lint PATHS (default: the current directory)."""
    path_list = list(paths) or [Path(".")]
    try:
        if config_path is not None and not config_path.is_file():
            raise ConfigError(f"--config {config_path}: no such file")
        settings = load_settings(config_path, path_list)
        settings = settings.with_overrides(
            select=_split(select) or None,
            extend_select=settings.extend_select + _split(extend_select),
            ignore=settings.ignore + _split(ignore),
            fix=fix,
            unsafe_fixes=unsafe_fixes,
            clip_max_norm=clip_max_norm,
        )
        linter = Linter(settings, jobs=jobs, cache=None if no_cache else Cache(cache_directory(settings)))
    except ConfigError as error:
        click.echo(f"losslint: error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        show_progress, close_progress = progress_bar(progress)
        try:
            report = linter.run(
                path_list,
                fix=settings.fix and not diff,
                unsafe=settings.unsafe_fixes,
                diff=diff,
                progress=show_progress,
                fix_edits=output_format in ("json", "sarif"),  # the other formats show a fix's description only
            )
        finally:
            close_progress()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # pragma: no cover - a bug of ours; say so without a traceback
        if os.environ.get("LOSSLINT_DEBUG"):
            raise
        click.echo(f"losslint: internal error: {type(error).__name__}: {error} (set LOSSLINT_DEBUG=1 for a traceback)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(_print_report(report, output_format, statistics, quiet, diff, settings.unsafe_fixes, exit_zero, linter))


def _print_report(
    report: Report, output_format: str, statistics: bool, quiet: bool, diff: bool, unsafe: bool, exit_zero: bool, linter: Linter
) -> int:
    findings = report.findings
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    fixed = sum(r.fixed for r in report.files)
    if diff:
        diffs = [r.diff for r in report.files if r.diff]
        if diffs:
            click.echo("".join(diffs), nl=False)
        if not quiet:
            n = len(diffs)
            click.echo(f"Would fix findings in {n} file{'s' if n != 1 else ''}." if n else "No fixes available.", err=True)
        code = EXIT_FINDINGS if diffs else EXIT_CLEAN
        return EXIT_CLEAN if exit_zero and not report.internal_error else (EXIT_ERROR if report.internal_error else code)
    if statistics:
        if findings:
            click.echo(format_statistics(findings))
    elif output_format == "json":
        click.echo(format_json(findings, _edits_for(linter)))
    elif output_format == "sarif":
        click.echo(format_sarif(findings, _edits_for(linter), __version__))
    elif output_format == "github":
        if findings:
            click.echo(format_github(findings))
    elif output_format == "concise":
        if findings:
            click.echo(format_concise(findings, colour))
    else:
        if findings:
            click.echo(format_text(findings, colour, line_reader()))
            click.echo()
    if not quiet and output_format not in ("json", "sarif"):
        click.echo(summary(findings, fixed, unsafe))
    if report.internal_error:
        return EXIT_ERROR
    if exit_zero or not findings:
        return EXIT_CLEAN
    return EXIT_FINDINGS


def _edits_for(linter: Linter):
    """JSON edits of one finding's fix: the fix applied alone, as line edits."""
    read = line_reader()

    def edits(finding: Finding) -> list[dict] | None:
        if finding.fix is not None and finding.fix.line_edits is not None and finding.cell is None:
            return [edit.as_json() for edit in finding.fix.line_edits]  # computed with the finding
        lines = read(finding.path)
        if lines is None or finding.fix is None or finding.cell is not None:  # notebook edits: not line edits of the file
            return None
        text = "\n".join(lines) + "\n"
        try:
            return [edit.as_json() for edit in text_edits(text, apply_fixes(text, [finding.fix]))]
        except Exception:
            return []

    return edits


@main.command()
@click.argument("code_or_name")
def rule(code_or_name: str) -> None:
    """Explain a rule: what it finds, why it hurts training, an example, its fix."""
    found = find_rule(code_or_name)
    if found is None:
        click.echo(f"losslint: error: no rule {code_or_name!r} (see `losslint rules`)", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(rule_documentation(found))


def rule_documentation(rule_cls: type[Rule]) -> str:
    wrap = lambda text: textwrap.fill(text, 88)  # noqa: E731
    parts = [
        f"# {rule_cls.code} {rule_cls.name}",
        f"Severity: {rule_cls.severity.value}. Default: {'on' if rule_cls.default_enabled else 'off (enable with --extend-select ' + rule_cls.code + ')'}.",
        "## What it finds",
        wrap(rule_cls.summary),
        "## Why it hurts training",
        wrap(rule_cls.why),
    ]
    if rule_cls.flagged:
        example = rule_cls.flagged[0]
        parts += ["## Example", textwrap.indent(example.code.rstrip(), "    ")]
        if example.fixed is not None:
            parts += ["## Use instead (what the fix writes)", textwrap.indent(example.fixed.rstrip(), "    ")]
    quiet = [q for q in rule_cls.quiet if q.why]
    if quiet:
        parts += ["## Left alone"] + [f"- {q.why}" for q in quiet]
    parts += ["## Fix and its safety", wrap(rule_cls.fix_doc)]
    if rule_cls.references:
        parts += ["## References"] + [f"- {r}" for r in rule_cls.references]
    return "\n\n".join(parts)


@main.command(name="rules")
def rules_table() -> None:
    """List every rule."""
    rows = [(r.code, r.name, r.severity.value, "on" if r.default_enabled else "off", r.summary) for r in all_rules()]
    width = max(len(r[1]) for r in rows)
    for code, name, severity, default, text in rows:
        click.echo(f"{code}  {name:<{width}}  {severity:<7}  {default:<3}  {text}")


# Subcommands that live in their own packages (and may need optional extras) are
# added here, so that `losslint check` never imports them.
_OPTIONAL_COMMANDS = (("losslint.verify.command", "verify"), ("losslint.lsp.command", "lsp"), ("losslint.explain.command", "explain"))


def _add_optional_commands() -> None:
    for module_name, attribute in _OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # not written yet
            raise
        main.add_command(getattr(module, attribute))


_add_optional_commands()
