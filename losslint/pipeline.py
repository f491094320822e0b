"""One pipeline for every entry point:

    sources (sources.py) → parse → project facts → rules → findings (checking.py)
        → fixes (fixing.py) → output (output.py)

``lint_file`` is the per-file part, whatever asks for it: a ``losslint check``
run (in this process or a worker, losslint.parallel), ``--fix`` and ``--diff``,
stdin, the flake8 plugin and the language server (losslint.single_file),
``verify`` and the in-memory ``lint_text`` / ``fix_text``. What differs between
them is only where the sources and the project's facts come from and what
``Mode`` asks for; each returns a ``FileResult``, and a run a ``Report``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from losslint.checking import FileChecker
from losslint.config import Settings
from losslint.discovery import Target
from losslint.findings import Finding
from losslint.fixing import fix_diff, fix_to_fixed_point, write_fixed
from losslint.project import ProjectFacts
from losslint.rules import linter_problems
from losslint.sources import SourceFile, encoded, engine_finding, source_from_bytes


class Action(enum.Enum):
    CHECK = "check"
    FIX = "fix"  # write the fixed file (--fix)
    DIFF = "diff"  # show what the fixes would change, write nothing (--diff)
    FIX_TEXT = "fix-text"  # return the fixed text, write nothing (stdin, editors, verify)


@dataclass(frozen=True)
class Mode:
    action: Action = Action.CHECK
    unsafe: bool = False  # also the fixes that change training dynamics
    line_edits: bool = False  # each fix's line edits computed with it (JSON, SARIF)


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    diff: str = ""  # DIFF
    fixed: int = 0  # findings fixed (FIX, FIX_TEXT)
    fixed_codes: list[str] = field(default_factory=list)
    fixed_text: str | None = None  # FIX_TEXT: the text once fixed (None: nothing changed)
    internal_error: bool = False  # a crash of losslint's own code on this file


@dataclass
class Report:
    files: list[FileResult]
    internal_error: bool = False

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for r in self.files for f in r.findings), key=lambda f: f.sort_key)


def lint_file(checker: FileChecker, source: SourceFile, project: ProjectFacts, mode: Mode) -> FileResult:
    """One read file through the rules (and, as ``mode`` asks, its fixes), against
    the project's facts. Linking is the caller's: it sees every file of a run."""
    result = FileResult(source.target.display)
    if mode.action is Action.CHECK or source.text is None or (source.tree is None and source.config is None):
        checked = checker.check(source, project)
        result.findings, result.internal_error = checked.findings, checked.internal_error
        found_in = source.text
    else:
        original = source.text
        outcome = fix_to_fixed_point(checker, source, project, mode.unsafe)
        result.findings, result.internal_error = outcome.remaining, outcome.internal_error
        found_in = outcome.text  # the text the findings left were found in
        if outcome.text != original:
            if mode.action is Action.DIFF:
                # nothing written: report what is there, and a fix that failed on the way (LL004)
                failures = [f for f in outcome.remaining if f.code == linter_problems.FixFailed.code]
                result.diff = fix_diff(source, original, outcome.text)
                result.findings = _check_again(checker, source, project, result) + failures
                found_in = original
            else:
                try:
                    if mode.action is Action.FIX:
                        write_fixed(source, outcome.text)
                    else:
                        result.fixed_text = outcome.text
                    result.fixed = len(outcome.fixed)
                    result.fixed_codes = [f.code for f in outcome.fixed]
                except OSError as error:
                    result.findings = _check_again(checker, source, project, result) + [
                        engine_finding(linter_problems.FixFailed, source.target.display, f"cannot write the fixed file: {error.strerror or error}")
                    ]
                    found_in = original
    if mode.line_edits and found_in is not None:
        result.findings = checker.with_line_edits(SourceFile(source.target, source.module, found_in, notebook=source.notebook, config=source.config), result.findings)
    return result


def _check_again(checker: FileChecker, source: SourceFile, project: ProjectFacts, result: FileResult) -> list[Finding]:
    """The findings of the file as it is (its fixes not written)."""
    checked = checker.check(source, project)
    result.internal_error = result.internal_error or checked.internal_error
    return checked.findings


def lint_sources(checker: FileChecker, sources: list[SourceFile], project: ProjectFacts, mode: Mode = Mode()) -> Report:
    """Read files already in memory, each through ``lint_file`` against one
    project, their findings linked: a run of a few files, in this process."""
    files = [lint_file(checker, source, project, mode) for source in sources]
    linked_crash = checker.link([f for r in files for f in r.findings])
    return Report(files, internal_error=linked_crash or any(r.internal_error for r in files))


# -- in memory: tests, verify -----------------------------------------------------------


def source_from_text(target: Target, module: str, text: str) -> SourceFile:
    return source_from_bytes(SourceFile(target, module), encoded(text))


def _in_memory(text: str, path: str, files: dict[str, str]) -> list[SourceFile]:
    """``text`` as the file ``path``, and the other files of its project."""

    def make(name: str, body: str) -> SourceFile:
        module = name[:-3].replace("/", ".") if name.endswith(".py") else name
        return source_from_text(Target(Path(name), name), module, body)

    return [make(path, text), *(make(name, body) for name, body in files.items())]


def lint_text(text: str, settings: Settings | None = None, path: str = "<string>", files: dict[str, str] | None = None) -> list[Finding]:
    """Lint source text (and optionally other in-memory project files). Nothing is
    read from or written to disk."""
    checker = FileChecker(settings or Settings())
    sources = _in_memory(text, path, files or {})
    return lint_sources(checker, sources[:1], checker.facts_for(sources, unsaved=True)).findings


def fix_text(
    text: str, settings: Settings | None = None, unsafe: bool = False, path: str = "<string>", files: dict[str, str] | None = None
) -> tuple[str, list[Finding]]:
    """The fixed text and the findings that remain in it; nothing is written."""
    checker = FileChecker(settings or Settings())
    sources = _in_memory(text, path, files or {})
    report = lint_sources(checker, sources[:1], checker.facts_for(sources, unsaved=True), Mode(Action.FIX_TEXT, unsafe))
    fixed = report.files[0].fixed_text
    return (text if fixed is None else fixed), report.findings
