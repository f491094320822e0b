"""The command line, in ruff's conventions.

Exit codes everywhere: 0 clean, 1 findings (with ``--fix``: findings that remain;
with ``--diff``: fixes that would be applied), 2 usage, configuration or
internal error.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from losslint import __version__

# Only what every command needs is imported here: `losslint --version`, `--help`
# and `losslint rule` never import the rules' analysis, the pipeline or libcst
# (benchmarks/startup.py measures it).
if TYPE_CHECKING:
    from losslint.engine import Linter
    from losslint.findings import Finding
    from losslint.pipeline import Report

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class _LazyGroup(click.Group):
    """Subcommands that live in their own packages (and may need optional extras)
    are imported only when named or listed (``--help``): `losslint check` and
    `--version` never import them."""

    in_packages = {"explain": "losslint.explain.command", "lsp": "losslint.lsp.command", "verify": "losslint.verify.command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.in_packages])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.in_packages:
            return getattr(importlib.import_module(self.in_packages[name]), name)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="losslint", message="%(prog)s %(version)s")
def main() -> None:
    """losslint: find and fix the causes of epoch-boundary loss spikes in training code."""


OUTPUT_FORMATS = ["text", "concise", "json", "json-lines", "sarif", "github", "gitlab", "junit", "pylint"]
_SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}


def _per_file_ignores(values: tuple[str, ...]) -> dict[str, list[str]] | None:
    """``--per-file-ignores 'scripts/*.py:LL3,LL202'`` (repeatable) as the
    configuration's table."""
    from losslint.config import ConfigError
    from losslint.selection import validate_selectors

    if not values:
        return None
    table: dict[str, list[str]] = {}
    for value in values:
        pattern, separator, codes = value.rpartition(":")
        if not separator or not pattern or not codes.strip():
            raise ConfigError(f"--per-file-ignores {value!r}: expected PATTERN:CODES, e.g. 'scripts/*.py:LL3'")
        selectors = _split((codes,))
        validate_selectors(selectors, f"--per-file-ignores {value!r}")
        table.setdefault(pattern, []).extend(selectors)
    return table


def use_colour(choice: str, stream) -> bool:
    """``--color always|never`` decide; ``auto``: NO_COLOR (set, not empty) turns
    colour off, then FORCE_COLOR (set, not empty, not 0) on, else colour when the
    stream is a terminal."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rules to enable (codes, prefixes like LL2, names, ALL); replaces the default set.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--per-file-ignores", multiple=True, metavar="PATTERN:CODES", help="Rules to disable in matching files ('scripts/*.py:LL3'); replaces the configuration's.")
@click.option("--exclude", multiple=True, help="Paths to leave out (patterns); replaces the defaults and the configuration's.")
@click.option("--extend-exclude", multiple=True, help="Paths to leave out, on top of the excludes.")
@click.option("--force-exclude/--no-force-exclude", default=None, help="Apply the excludes to paths named on the command line too (pre-commit).")
@click.option("--fix", "fix", is_flag=True, default=None, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, default=None, help="Also apply fixes that change training dynamics.")
@click.option("--fix-only", is_flag=True, help="Apply fixes and report only what was fixed, not the findings that remain.")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied (with --fix), or each finding's fix.")
@click.option("--exit-non-zero-on-fix", is_flag=True, help="Exit 1 when a fix was applied, even if no finding remains.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option("--add-noqa", is_flag=True, help="Add a '# noqa: CODE' comment to the line of every finding (adopting losslint on existing code).")
@click.option(
    "--output-format", type=click.Choice(OUTPUT_FORMATS), default="text", show_default=True, help="How findings are printed."
)
@click.option("--output-file", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the report to this file instead of stdout.")
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True, help="Colour the text and concise formats (auto: on a terminal; NO_COLOR and FORCE_COLOR are honoured).")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule.")
@click.option("--fail-on", type=click.Choice(["info", "warning", "error"]), default="info", show_default=True, help="The lowest severity that makes the exit code 1 (all findings are still shown).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Use this pyproject.toml or losslint.toml.")
@click.option("--stdin-filename", type=click.Path(path_type=Path), help="Lint stdin as this file: its configuration, excludes and project (the other files are read from disk).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the result cache.")
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
    per_file_ignores: tuple[str, ...],
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    force_exclude: bool | None,
    fix: bool | None,
    unsafe_fixes: bool | None,
    fix_only: bool,
    show_fixes: bool,
    exit_non_zero_on_fix: bool,
    diff: bool,
    add_noqa: bool,
    output_format: str,
    output_file: Path | None,
    color: str,
    statistics: bool,
    fail_on: str,
    exit_zero: bool,
    config_path: Path | None,
    stdin_filename: Path | None,
    no_cache: bool,
    jobs: int | None,
    quiet: bool,
    progress: bool | None,
    clip_max_norm: float | None,
) -> None:
    """Lint PATHS (default: the current directory; `-` reads the source from stdin)."""
    from losslint.cache import Cache, cache_directory
    from losslint.config import ConfigError, load_settings
    from losslint.engine import Linter
    from losslint.output import line_reader, progress_bar

    from_stdin = any(str(p) == "-" for p in paths) or (stdin_filename is not None and not paths)
    try:
        if from_stdin and len(paths) > 1:
            raise ConfigError("`-` (stdin) cannot be combined with other paths")
        if from_stdin and add_noqa:
            raise ConfigError("--add-noqa writes files: it cannot read stdin")
        path_list = [] if from_stdin else (list(paths) or [Path(".")])
        if config_path is not None and not config_path.is_file():
            raise ConfigError(f"--config {config_path}: no such file")
        settings = load_settings(config_path, [stdin_filename] if stdin_filename is not None else path_list)
        settings = settings.with_overrides(
            select=_split(select) or None,
            extend_select=settings.extend_select + _split(extend_select),
            ignore=settings.ignore + _split(ignore),
            per_file_ignores=_per_file_ignores(per_file_ignores),
            exclude=list(exclude) or None,
            extend_exclude=settings.extend_exclude + list(extend_exclude),
            force_exclude=force_exclude,
            fix=True if fix_only else fix,
            unsafe_fixes=unsafe_fixes,
            clip_max_norm=clip_max_norm,
        )
        use_cache = not no_cache and not from_stdin
        linter = Linter(settings, jobs=jobs, cache=Cache(cache_directory(settings)) if use_cache else None)
    except ConfigError as error:
        click.echo(f"losslint: error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    options = _ReportOptions(
        output_format, statistics, quiet, diff, settings.unsafe_fixes, exit_zero, fail_on, fix_only, show_fixes, exit_non_zero_on_fix
    )
    fix_edits = output_format in ("json", "json-lines", "sarif")  # the other formats show a fix's description only
    texts: dict[str, str] = {}
    fixed_output: bytes | None = None
    try:
        if from_stdin:
            report, texts, fixed_output = _check_stdin(linter, stdin_filename, settings.fix and not diff, diff, fix_edits)
        elif add_noqa:
            sys.exit(_add_noqa(linter, path_list, quiet))
        else:
            show_progress, close_progress = progress_bar(progress)
            try:
                report = linter.run(
                    path_list,
                    fix=settings.fix and not diff,
                    unsafe=settings.unsafe_fixes,
                    diff=diff,
                    progress=show_progress,
                    fix_edits=fix_edits,
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
    if fixed_output is not None:  # stdin with --fix: the source goes to stdout, the report to stderr
        sys.stdout.flush()
        sys.stdout.buffer.write(fixed_output)
        sys.stdout.buffer.flush()
    to_stderr = fixed_output is not None and output_file is None
    try:
        handle = open(output_file, "w", encoding="utf-8") if output_file is not None else None
    except OSError as error:
        click.echo(f"losslint: error: --output-file {output_file}: {error.strerror or error}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        stream = handle or (sys.stderr if to_stderr else sys.stdout)
        colour = False if handle is not None else use_colour(color, stream)
        sys.exit(_print_report(report, options, linter, _Printer(stream, colour), line_reader(texts)))
    finally:
        if handle is not None:
            handle.close()


@dataclass
class _ReportOptions:
    output_format: str
    statistics: bool
    quiet: bool
    diff: bool
    unsafe: bool
    exit_zero: bool
    fail_on: str
    fix_only: bool
    show_fixes: bool
    exit_non_zero_on_fix: bool


@dataclass
class _Printer:
    stream: object
    colour: bool

    def __call__(self, text: str = "", nl: bool = True) -> None:
        click.echo(text, file=self.stream, nl=nl, color=self.colour)


def _check_stdin(
    linter: Linter, stdin_filename: Path | None, fix: bool, diff: bool, fix_edits: bool
) -> tuple[Report, dict[str, str], bytes | None]:
    """Lint (or fix) the source on stdin as ``stdin_filename`` (its settings were
    found from it; the project's other files come from disk). Returns the report,
    the text of the finding's file (for the source excerpts) and, with ``fix``, the
    bytes to write to stdout."""
    from losslint.discovery import display_path
    from losslint.fixing import fixed_bytes
    from losslint.pipeline import Action, Mode, Report
    from losslint.single_file import prepare_bytes

    data = sys.stdin.buffer.read()
    if stdin_filename is None:
        path, display = Path("-"), "-"
    else:
        path, display = stdin_filename, display_path(stdin_filename)
        if linter.settings.excluded_with_parents(path):  # as `losslint check` would skip the file
            return Report([]), {}, data if fix else None
    prepared = prepare_bytes(path, data, display, linter.settings, on_disk=stdin_filename is not None)
    action = Action.DIFF if diff else Action.FIX_TEXT if fix else Action.CHECK
    result = prepared.run(Mode(action, linter.settings.unsafe_fixes, fix_edits))
    output = data if fix else None
    if result.fixed_text is not None:
        output = fixed_bytes(prepared.source, result.fixed_text)
    encoding = prepared.source.encoding if prepared.source.notebook is None else "utf-8"
    shown = (output if output is not None else data).decode(encoding, errors="replace")
    return Report([result], internal_error=result.internal_error), {display: shown}, output


def _add_noqa(linter: Linter, paths: list[Path], quiet: bool) -> int:
    """Add ``# noqa: CODE`` comments for every finding; exit code."""
    import io
    import tokenize

    from losslint.fixes import write_atomic
    from losslint.noqa import add_noqa as add_noqa_comments

    report = linter.run(paths, fix_edits=False)
    by_path: dict[str, list[Finding]] = {}
    for finding in report.findings:
        if finding.cell is None and not finding.code.startswith("LL0"):  # LL0xx: a file that could not be read
            by_path.setdefault(finding.path, []).append(finding)
    added = 0
    for path, findings in by_path.items():
        try:
            data = Path(path).read_bytes()
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
            bom = text.startswith("\ufeff")
            new_text, count = add_noqa_comments(text[1:] if bom else text, findings)
            if count:
                write_atomic(Path(path), ("\ufeff" if bom else "") + new_text, encoding)
                added += count
        except (OSError, SyntaxError, LookupError, UnicodeDecodeError) as error:
            click.echo(f"losslint: error: {path}: cannot add noqa comments: {error}", err=True)
            return EXIT_ERROR
    notebooks_left = sum(1 for f in report.findings if f.cell is not None)
    if not quiet:
        click.echo(f"Added {added} noqa directive{'s' if added != 1 else ''}.", err=True)
        if notebooks_left:
            click.echo(f"{notebooks_left} finding{'s' if notebooks_left != 1 else ''} in notebooks left as they are: add `# noqa: CODE` in the cell.", err=True)
    return EXIT_ERROR if report.internal_error else EXIT_CLEAN


_MACHINE_FORMATS = ("json", "json-lines", "sarif", "gitlab", "junit", "pylint")


def _print_report(report: Report, options: _ReportOptions, linter: Linter, echo: _Printer, read_lines) -> int:
    from losslint.output import (
        format_concise, format_github, format_gitlab, format_json, format_json_lines, format_junit, format_pylint,
        format_sarif, format_statistics, format_text, summary,
    )

    findings = report.findings
    fixed = sum(r.fixed for r in report.files)
    failures = [f for f in findings if f.code == "LL004"]
    if options.diff:
        diffs = [r.diff for r in report.files if r.diff]
        if diffs:
            echo("".join(diffs), nl=False)
        if failures:  # a fix that would fail must not read as "no fixes"
            click.echo(format_concise(failures, False), err=True)
        if not options.quiet:
            n = len(diffs)
            parts = [f"Would fix findings in {n} file{'s' if n != 1 else ''}."] if n else []
            if failures:
                files = len({f.path for f in failures})
                parts.append(f"Fixes failed in {files} file{'s' if files != 1 else ''} (LL004): left as they are.")
            click.echo(" ".join(parts) or "No fixes available.", err=True)
        code = EXIT_FINDINGS if diffs or failures else EXIT_CLEAN
        return EXIT_ERROR if report.internal_error else (EXIT_CLEAN if options.exit_zero else code)
    if options.fix_only:
        if failures:
            click.echo(format_concise(failures, False), err=True)
        if not options.quiet:
            echo(f"Fixed {fixed} finding{'s' if fixed != 1 else ''}." if fixed else "No fixes applied.")
        if options.show_fixes:
            _print_applied(report, echo)
    else:
        output_format = options.output_format
        if options.statistics:
            if findings:
                echo(format_statistics(findings, options.unsafe))
        elif output_format == "json":
            echo(format_json(findings, _edits_for(linter)))
        elif output_format == "json-lines":
            if findings:
                echo(format_json_lines(findings, _edits_for(linter)))
        elif output_format == "sarif":
            echo(format_sarif(findings, _edits_for(linter), __version__, read_lines))
        elif output_format == "gitlab":
            echo(format_gitlab(findings, read_lines))
        elif output_format == "junit":
            echo(format_junit(findings))
        elif output_format == "pylint":
            if findings:
                echo(format_pylint(findings))
        elif output_format == "github":
            if findings:
                echo(format_github(findings))
        elif output_format == "concise":
            if findings:
                echo(format_concise(findings, echo.colour, options.unsafe, options.show_fixes))
        else:
            if findings:
                echo(format_text(findings, echo.colour, read_lines))
                echo()
        if not options.quiet and (output_format not in _MACHINE_FORMATS or options.statistics):
            echo(summary(findings, fixed, options.unsafe))
        if options.show_fixes and fixed:
            _print_applied(report, echo)
    if report.internal_error:
        return EXIT_ERROR
    if options.exit_zero:
        return EXIT_CLEAN
    if options.exit_non_zero_on_fix and fixed:
        return EXIT_FINDINGS
    if options.fix_only:
        return EXIT_CLEAN
    threshold = _SEVERITY_RANK[options.fail_on]
    return EXIT_FINDINGS if any(f.severity.rank >= threshold for f in findings) else EXIT_CLEAN


def _print_applied(report: Report, echo: _Printer) -> None:
    """``--show-fixes``: the fixes applied, per file and rule."""
    from losslint.rules.base import find_rule

    for result in report.files:
        if not result.fixed_codes:
            continue
        echo(f"Fixed in {result.path}:")
        for code, count in sorted(Counter(result.fixed_codes).items()):
            found = find_rule(code)
            echo(f"  {count} × {code} ({found.name if found else code})")


def _edits_for(linter: Linter):
    """JSON edits of one finding's fix: the fix applied alone, as line edits."""
    from losslint.output import line_reader

    read = line_reader()

    def edits(finding: Finding) -> list[dict] | None:
        if finding.fix is not None and finding.fix.line_edits is not None and finding.cell is None:
            return [edit.as_json() for edit in finding.fix.line_edits]  # computed with the finding
        lines = read(finding.path)
        if lines is None or finding.fix is None or finding.cell is not None:  # notebook edits: not line edits of the file
            return None
        text = "\n".join(lines) + "\n"
        from losslint.fixes import apply_fixes, text_edits

        try:
            return [edit.as_json() for edit in text_edits(text, apply_fixes(text, [finding.fix]))]
        except Exception:
            return []

    return edits


@main.command()
@click.argument("code_or_name", required=False)
@click.option("--all", "all_rules_", is_flag=True, help="Every rule.")
@click.option(
    "--output-format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
    help="text (as below), json (the documentation's fields), markdown (the page of docs/rules/).",
)
def rule(code_or_name: str | None, all_rules_: bool, output_format: str) -> None:
    """Explain a rule: what it finds, why it hurts training, an example, its fix."""
    import json

    from losslint.rule_docs import rule_documentation, rule_json, rule_markdown
    from losslint.rules.base import all_rules, find_rule

    if all_rules_ == (code_or_name is not None):
        click.echo("losslint: error: give a rule's code or name, or --all", err=True)
        sys.exit(EXIT_ERROR)
    if all_rules_:
        chosen = all_rules()
    else:
        found = find_rule(code_or_name or "")
        if found is None:
            click.echo(f"losslint: error: no rule {code_or_name!r} (see `losslint rules`)", err=True)
            sys.exit(EXIT_ERROR)
        chosen = [found]
    if output_format == "json":
        documents = [rule_json(r) for r in chosen]
        click.echo(json.dumps(documents if all_rules_ else documents[0], indent=2))
    elif output_format == "markdown":
        click.echo("\n".join(rule_markdown(r) for r in chosen), nl=False)
    else:
        click.echo("\n\n".join(rule_documentation(r) for r in chosen))


@main.command(name="rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_table(output_format: str) -> None:
    """List every rule."""
    import json

    from losslint.rule_docs import rule_json
    from losslint.rules.base import all_rules

    if output_format == "json":
        keys = ("code", "name", "severity", "default_enabled", "fix_applicability", "summary", "url")
        click.echo(json.dumps([{k: rule_json(r)[k] for k in keys} for r in all_rules()], indent=2))
        return
    rows = [(r.code, r.name, r.severity.value, "on" if r.default_enabled else "off", r.summary) for r in all_rules()]
    width = max(len(r[1]) for r in rows)
    for code, name, severity, default, text in rows:
        click.echo(f"{code}  {name:<{width}}  {severity:<7}  {default:<3}  {text}")
