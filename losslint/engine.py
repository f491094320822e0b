"""The run: discover → read and parse each file once → project-wide facts → rules
per file → suppression → (fixes).

Cost model (see README, "Performance"): reading and ``ast.parse`` of every file
is the floor; the fact collectors are cheap visitors; a rule runs only on files
that contain one of its trigger words; libcst runs only for files being fixed.
Per-file work is independent once the facts are known, which is where the
parallelism of the scale work fits.
"""

from __future__ import annotations

import ast
import io
import os
import stat
import tokenize
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from losslint import notebooks
from losslint.config import Settings
from losslint.context import FileContext
from losslint.discovery import Target, discover
from losslint.cache import Cache
from losslint.findings import Applicability, Finding, Span
from losslint.fixes import FixError, apply_fixes, line_edits_of, unified_diff, write_atomic
from losslint.noqa import is_suppressed
from losslint.project import ModuleFacts, ProjectFacts, collect_module_facts, file_key
from losslint.rules import io as io_rules
from losslint.rules.base import Rule, all_linkers, all_rules
from losslint.selection import enabled_rules, selector_matches

MAX_FIX_ROUNDS = 10
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows


@dataclass
class SourceFile:
    target: Target
    module: str
    text: str | None = None
    tree: ast.Module | None = None
    encoding: str = "utf-8"
    problem: Finding | None = None  # LL0xx: why it could not be read or parsed
    notebook: notebooks.NotebookSource | None = None  # a .ipynb: its cells as one Python text
    triggered: frozenset[str] | None = None  # triggered_codes(text), once computed
    facts_crash: Finding | None = None  # LL005: a fact collector crashed on this file


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    diff: str = ""  # with --diff
    fixed: int = 0  # findings fixed (with --fix)
    fixed_codes: list[str] = field(default_factory=list)


@dataclass
class Report:
    files: list[FileResult]
    internal_error: bool = False

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for r in self.files for f in r.findings), key=lambda f: f.sort_key)


def _problem(rule: type[Rule], path: str, message: str, line: int = 1, column: int = 0) -> Finding:
    return Finding(rule.code, rule.name, message, rule.severity, path, Span(line, column, line, column))


def module_name(path: Path, packages: dict[Path, list[str]] | None = None) -> str:
    """Dotted module name, walking up through packages (directories with __init__.py).
    ``packages``: a memo of directory -> its package parts, for a run over many files."""
    parts = [path.stem] if path.stem != "__init__" else []
    return ".".join(_package_parts(path.parent, packages) + parts) or path.stem


def _package_parts(directory: Path, packages: dict[Path, list[str]] | None) -> list[str]:
    if packages is not None and directory in packages:
        return packages[directory]
    parts: list[str] = []
    if (directory / "__init__.py").is_file() and directory.name:
        parts = [directory.name]
        if directory.parent != directory:
            parts = _package_parts(directory.parent, packages) + parts
    if packages is not None:
        packages[directory] = parts
    return parts


def read_source(target: Target, settings: Settings) -> SourceFile:
    source, data = read_bytes(target, settings)
    if data is None:
        return source
    return source_from_bytes(source, data)


def source_from_bytes(source: SourceFile, data: bytes) -> SourceFile:
    """Decode and parse a file's bytes (a notebook: its code cells)."""
    if notebooks.is_notebook(source.target.path):
        return parse_notebook(source, data)
    return parse_source(source, data)


def read_bytes(target: Target, settings: Settings, packages: dict[Path, list[str]] | None = None) -> tuple[SourceFile, bytes | None]:
    """A file's bytes, or (with None) the SourceFile that says why they cannot be read.
    ``packages``: see module_name."""
    display = target.display
    source = SourceFile(target, module_name(target.path, packages))
    if target.missing:
        source.problem = _problem(io_rules.UnreadableFile, display, f"{display}: no such file or directory")
        return source, None
    try:
        # One open and one fstat: a warm cached run reads every file, so syscalls count.
        # O_NONBLOCK: a FIFO named *.py must not hang the run (it is reported below).
        descriptor = os.open(target.path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except FileNotFoundError:
        kind = "a broken symbolic link" if target.path.is_symlink() else "gone (deleted while linting?)"
        source.problem = _problem(io_rules.UnreadableFile, display, f"{display} is {kind}")
        return source, None
    except OSError as error:
        if target.path.is_dir():  # (Windows cannot open a directory)
            source.problem = _problem(io_rules.UnreadableFile, display, f"{display} is a directory, not a Python file")
        else:
            reason = error.strerror or str(error)
            source.problem = _problem(io_rules.UnreadableFile, display, f"cannot read {display}: {reason}")
        return source, None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            source.problem = _problem(io_rules.UnreadableFile, display, f"{display} is a directory, not a Python file")
            return source, None
        if not stat.S_ISREG(status.st_mode):
            source.problem = _problem(
                io_rules.UnreadableFile, display, f"{display} is not a regular file (a pipe, socket or device): not linted"
            )
            return source, None
        if status.st_size > settings.max_file_size:
            source.problem = _problem(
                io_rules.UnreadableFile,
                display,
                f"{display} is {status.st_size / 1e6:.1f} MB, over max-file-size ({settings.max_file_size / 1e6:.1f} MB): not linted",
            )
            return source, None
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        source.problem = _problem(io_rules.UnreadableFile, display, f"cannot read {display}: {reason}")
        return source, None
    finally:
        os.close(descriptor)
    return source, data


def parse_notebook(source: SourceFile, data: bytes) -> SourceFile:
    """A Jupyter notebook: its code cells joined into one Python text (magics set
    aside), parsed like a file; findings are located back in cells by ``check``."""
    try:
        source.notebook = notebooks.load(data)
    except notebooks.NotebookError as error:
        source.problem = _problem(io_rules.SyntaxErrorRule, source.target.display, f"{source.target.display}: {error}")
        return source
    return parse_source(source, source.notebook.python.encode("utf-8"))


def parse_source(source: SourceFile, data: bytes) -> SourceFile:
    display = source.target.display
    if b"\x00" in data:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        source.problem = _problem(
            io_rules.UndecodableFile, display, f"{display} contains a NUL byte (line {line}): a binary file, not Python source", line
        )
        return source
    try:
        source.encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(source.encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        detail = error.reason if isinstance(error, UnicodeDecodeError) else str(error)
        line = 1
        if isinstance(error, UnicodeDecodeError):
            line = data.count(b"\n", 0, error.start) + 1
        source.problem = _problem(io_rules.UndecodableFile, display, f"{display} cannot be decoded: {detail}", line)
        return source
    if text.startswith("\ufeff"):
        text = text[1:]
    source.text = text
    try:
        with warnings.catch_warnings():  # invalid escape sequences and the like: not ours to print
            warnings.simplefilter("ignore")
            source.tree = ast.parse(text, filename=display)
    except SyntaxError as error:
        line = error.lineno or 1
        column = max((error.offset or 1) - 1, 0)
        source.problem = _problem(io_rules.SyntaxErrorRule, display, f"syntax error: {error.msg}", line, column)
    except (RecursionError, MemoryError, ValueError) as error:
        reason = "nested too deeply to parse" if isinstance(error, RecursionError) else str(error) or type(error).__name__
        source.problem = _problem(io_rules.SyntaxErrorRule, display, f"cannot parse {display}: {reason}")
    return source


class Linter:
    def __init__(self, settings: Settings, *, jobs: int | None = None, cache: Cache | None = None) -> None:
        """``jobs``: processes for a run (None: every core); ``cache``: where a
        ``check`` run reads and writes per-file results (None: no cache)."""
        self.settings = settings
        self.rules: list[Rule] = [cls() for cls in enabled_rules(settings)]
        self.enabled_codes = {r.code for r in self.rules}
        self.internal_error = False
        self.jobs = jobs
        self.cache = cache
        # Rules that read a file's content (the LL0xx codes are the engine's own).
        self._content_codes = frozenset(r.code for r in self.rules if not r.code.startswith("LL0"))

    # -- per file ----------------------------------------------------------------
    def facts_for(self, sources: Iterable[SourceFile]) -> ProjectFacts:
        project = ProjectFacts(configured_dataset_sizes=dict(self.settings.dataset_sizes))
        for source in sources:
            if source.tree is not None and source.text is not None:
                facts = self.module_facts(source)
                if facts is not None:
                    project.add(facts, str(source.target.path))
        return project

    def module_facts(self, source: SourceFile) -> ModuleFacts | None:
        """The file's project facts; None (and an LL005 kept for its findings) if a
        collector crashes: the run goes on without them."""
        assert source.tree is not None and source.text is not None
        try:
            return collect_module_facts(source.tree, source.text, source.module)
        except Exception as error:
            self.internal_error = True
            source.facts_crash = _problem(
                io_rules.InternalError,
                source.target.display,
                f"collecting project facts crashed on this file ({type(error).__name__}: {error}); please report it with the file",
            )
            return None

    def check(self, source: SourceFile, project: ProjectFacts) -> list[Finding]:
        findings: list[Finding] = [source.facts_crash] if source.facts_crash is not None else []
        if source.problem is not None:
            findings.append(source.problem)
        elif source.tree is not None and source.text is not None:
            ctx = FileContext(source.target.display, source.module, source.text, source.tree, project, self.settings, str(source.target.path))
            if source.triggered is None:
                source.triggered = triggered_codes(source.text)
            triggered = source.triggered
            skip_tests = ctx.is_test_file and not self.settings.lint_test_files
            for rule in self.rules:
                if rule.triggers and rule.code not in triggered:
                    continue
                if skip_tests and rule.skips_test_files:
                    continue
                try:
                    findings.extend(rule.check(ctx))
                except Exception as error:  # a bug of ours must not hide the other findings
                    self.internal_error = True
                    findings.append(
                        _problem(
                            io_rules.InternalError,
                            source.target.display,
                            f"{rule.code} crashed on this file ({type(error).__name__}: {error}); "
                            "please report it with the file",
                        )
                    )
        if source.notebook is None:
            return self._filter(findings, source)
        findings += notebooks.problems(source.notebook, source.target.display)
        return notebooks.locate(self._filter(findings, source), source.notebook, source.text or "")

    def _filter(self, findings: list[Finding], source: SourceFile) -> list[Finding]:
        ignored = self.settings.ignored_for(source.target.path)
        lines = source.text.splitlines() if source.text else []
        kept = []
        for finding in findings:
            if finding.code not in self.enabled_codes:
                continue
            if any(selector_matches(s, finding.code, finding.name) for s in ignored):
                continue
            if is_suppressed(finding, lines):
                continue
            kept.append(finding)
        return sorted(kept, key=lambda f: f.sort_key)

    def attach_line_edits(self, source: SourceFile, findings: list[Finding]) -> list[Finding]:
        """The findings with each fix's line edits (``Fix.line_edits``), computed
        here from the text they were found in (for JSON and SARIF, where the
        findings are found: in a worker, and then in the cache). A notebook's
        fixes are not line edits of its file: left without."""
        fixable = [f for f in findings if f.fix is not None and f.fix.line_edits is None]
        if not fixable or source.text is None or source.notebook is not None:
            return findings
        edits = iter(line_edits_of(source.text, [f.fix for f in fixable if f.fix is not None]))
        return [
            replace(f, fix=replace(f.fix, line_edits=next(edits))) if f.fix is not None and f.fix.line_edits is None else f
            for f in findings
        ]

    # -- fixing ------------------------------------------------------------------
    def fixable(self, finding: Finding, unsafe: bool) -> bool:
        return finding.fix is not None and (unsafe or finding.fix.applicability is Applicability.SAFE)

    def fix_source(self, source: SourceFile, project: ProjectFacts, unsafe: bool) -> tuple[str, list[Finding], list[Finding]]:
        """Apply fixes to a fixed point. Returns (new text, remaining findings, fixed findings).
        The text only ever moves to a version that parses; a failed fix is reported as LL004."""
        assert source.text is not None
        original_text = source.text
        # The file's own facts change as it is fixed; the caller's project does not
        # (each file of a run is fixed against the facts the run found). Copied only
        # once a fix applies: a copy rebuilds the project's indexes (its import
        # graph), which for every file of a large run is quadratic.
        run_project = project
        fixed: list[Finding] = []
        findings = self.check(source, project)
        failure: Finding | None = None
        for _ in range(MAX_FIX_ROUNDS):
            todo = [f for f in findings if self.fixable(f, unsafe)]
            if not todo:
                break
            try:
                new_text = apply_fixes(source.text, [f.fix for f in todo if f.fix])
            except FixError as error:
                failure = _problem(io_rules.FixFailed, source.target.display, f"fixes not applied: {error}", todo[0].span.line)
                break
            except Exception as error:  # libcst or a rule's fix raised: leave the file alone
                self.internal_error = True
                failure = _problem(
                    io_rules.FixFailed, source.target.display, f"fixes not applied: {type(error).__name__}: {error}", todo[0].span.line
                )
                break
            candidate = parse_source(SourceFile(source.target, source.module, notebook=source.notebook), new_text.encode(source.encoding))
            if candidate.problem is not None or new_text == source.text:
                reason = candidate.problem.message if candidate.problem else "the fix changed nothing"
                failure = _problem(
                    io_rules.FixFailed, source.target.display, f"fixes not applied, the result would be broken: {reason}", todo[0].span.line
                )
                break
            fixed.extend(todo)
            source = candidate
            if project is run_project:
                project = project.copy()
            project.add(collect_module_facts(source.tree, new_text, source.module), str(source.target.path))  # type: ignore[arg-type]
            findings = self.check(source, project)
        remaining = findings + ([failure] if failure else [])
        return source.text or original_text, sorted(remaining, key=lambda f: f.sort_key), fixed

    # -- whole runs --------------------------------------------------------------
    def run(
        self,
        paths: list[Path],
        fix: bool = False,
        unsafe: bool = False,
        diff: bool = False,
        progress: Callable[[int, int], None] | None = None,
        fix_edits: bool = True,
    ) -> Report:
        """Lint (and with ``fix``/``diff``, fix) the files under ``paths``.
        A finding's fix may come back detached (losslint.cache.DetachedFix: from
        the cache or another process, without its libcst edits); ``fix_edits``:
        every fix carries its ``line_edits`` (what JSON and SARIF show), computed
        where the finding was found. Without, no libcst parse is spent on them."""
        targets = discover(paths, self.settings)
        from losslint.parallel import check_run, fix_run  # (they import this module)

        if fix or diff:
            return fix_run(self, targets, progress, unsafe, diff, fix_edits)
        return check_run(self, targets, progress, fix_edits)

    def fix_file(self, source: SourceFile, project: ProjectFacts, unsafe: bool, diff: bool, line_edits: bool = False) -> FileResult:
        """--fix (write the fixed file) or --diff (show it) for one read file;
        the findings left. ``line_edits``: theirs computed (see attach_line_edits)."""
        result = FileResult(source.target.display)
        if source.text is None or source.tree is None:
            result.findings = self.check(source, project)
            return result
        original = source.text
        new_text, remaining, fixed = self.fix_source(source, project, unsafe)
        result.findings = remaining
        found_in = new_text  # the text the findings left were found in
        if new_text != original:
            found_in = original
            if diff:
                result.diff = fix_diff(source, original, new_text)
                # nothing written: report what is there, and a fix that failed on the way (LL004)
                result.findings = self.check(source, project) + [f for f in remaining if f.code == io_rules.FixFailed.code]
            else:
                try:
                    write_fixed(source, new_text)
                    result.fixed = len(fixed)
                    result.fixed_codes = [f.code for f in fixed]
                    found_in = new_text
                except OSError as error:
                    result.findings = self.check(source, project) + [
                        _problem(io_rules.FixFailed, source.target.display, f"cannot write the fixed file: {error.strerror or error}")
                    ]
        if line_edits:
            result.findings = self.attach_line_edits(SourceFile(source.target, source.module, found_in, notebook=source.notebook), result.findings)
        return result

    def needs_project(self, triggered: frozenset[str]) -> bool:
        """Given a text's ``triggered_codes``: does an enabled rule look at it? If
        none does, the file's findings cannot depend on the project's facts."""
        return not triggered.isdisjoint(self._content_codes)

    def link(self, findings: list[Finding]) -> None:
        for link in all_linkers():
            try:
                link(findings)
            except Exception:  # linking is a refinement; never lose the findings over it
                self.internal_error = True


def triggered_codes(text: str) -> frozenset[str]:
    """Codes of every registered rule that would look at ``text`` (a trigger word of
    its is in it), whatever the settings: part of a file's cacheable scan."""
    always, by_trigger = _trigger_table()
    codes = set(always)
    for trigger, trigger_codes in by_trigger.items():
        if trigger in text:
            codes.update(trigger_codes)
    return frozenset(codes)


@lru_cache(maxsize=1)
def _trigger_table() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(codes of content rules without triggers, trigger word -> codes): each word
    is looked for once, however many rules share it."""
    rules = [r for r in all_rules() if not r.code.startswith("LL0")]
    words = {t for r in rules for t in r.triggers}
    return (
        frozenset(r.code for r in rules if not r.triggers),
        {w: frozenset(r.code for r in rules if w in r.triggers) for w in sorted(words)},
    )


def write_fixed(source: SourceFile, text: str) -> None:
    """Write a fixed file atomically (a notebook: back into its cells' JSON)."""
    if source.notebook is not None:
        notebooks.write(source.target.path, source.notebook, text)
    else:
        write_atomic(source.target.path, text, source.encoding)


def fix_diff(source: SourceFile, before: str, after: str) -> str:
    if source.notebook is not None:
        return notebooks.unified_diff(source.target.display, source.notebook, before, after)
    return unified_diff(source.target.display, before, after)


def lint_text(text: str, settings: Settings | None = None, path: str = "<string>", files: dict[str, str] | None = None) -> list[Finding]:
    """Lint source text (and optionally other in-memory project files) — for tests
    and editor integrations. Nothing is read from or written to disk."""
    linter = Linter(settings or Settings())
    main, others = _in_memory_sources(text, path, files or {})
    project = _in_memory_project(linter, [main, *others])
    findings = linter.check(main, project)
    linter.link(findings)
    return findings


def fix_text(text: str, settings: Settings | None = None, unsafe: bool = False, path: str = "<string>", files: dict[str, str] | None = None) -> tuple[str, list[Finding]]:
    """Fixed text and the findings that remain, for tests and editor integrations."""
    linter = Linter(settings or Settings())
    main, others = _in_memory_sources(text, path, files or {})
    project = _in_memory_project(linter, [main, *others])
    if main.text is None or main.tree is None:
        return text, linter.check(main, project)
    new_text, remaining, _ = linter.fix_source(main, project, unsafe)
    return new_text, remaining


def _in_memory_project(linter: Linter, sources: list[SourceFile]) -> ProjectFacts:
    project = linter.facts_for(sources)
    project.unsaved = {file_key(str(s.target.path)): s.text for s in sources if s.text is not None}
    return project


def _in_memory_sources(text: str, path: str, files: dict[str, str]) -> tuple[SourceFile, list[SourceFile]]:
    def make(name: str, body: str) -> SourceFile:
        target = Target(Path(name), name)
        module = name[:-3].replace("/", ".") if name.endswith(".py") else name
        return parse_source(SourceFile(target, module), body.encode("utf-8"))

    return make(path, text), [make(name, body) for name, body in files.items()]

