"""Fixes: a file's fixes applied to a fixed point, the result parsed again and
checked again after every round; a fix that fails, or whose result would not
parse, leaves the text as it was and is reported (LL004). libcst (losslint.fixes)
is imported here only when there is a fix to apply."""

from __future__ import annotations

from dataclasses import dataclass, field

from losslint import notebooks
from losslint.checking import FileChecker
from losslint.findings import Applicability, Finding
from losslint.project import ProjectFacts, collect_module_facts, file_key
from losslint.rules import linter_problems
from losslint.sources import SourceFile, engine_finding, parse_config_source, parse_source

MAX_FIX_ROUNDS = 10


@dataclass
class FixOutcome:
    text: str  # the fixed text (the original one if nothing applied)
    remaining: list[Finding]  # found in ``text``, and an LL004 if a fix failed
    fixed: list[Finding] = field(default_factory=list)
    internal_error: bool = False  # a crash of losslint's own code (a rule, a fix, libcst)


def fixable(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (unsafe or finding.fix.applicability is Applicability.SAFE)


def fix_to_fixed_point(checker: FileChecker, source: SourceFile, project: ProjectFacts, unsafe: bool) -> FixOutcome:
    """Apply the fixes, round after round, until none is left. The text only ever
    moves to a version that parses; a failed fix is reported as LL004."""
    assert source.text is not None
    original_text = source.text
    # The file's own facts change as it is fixed; the caller's project does not
    # (each file of a run is fixed against the facts the run found). Copied only
    # once a fix applies: a copy rebuilds the project's indexes (its import
    # graph), which for every file of a large run is quadratic.
    run_project = project
    fixed: list[Finding] = []
    checked = checker.check(source, project)
    findings, internal_error = checked.findings, checked.internal_error
    failure: Finding | None = None
    for _ in range(MAX_FIX_ROUNDS):
        todo = [f for f in findings if fixable(f, unsafe)]
        if not todo:
            break
        if source.config is not None:  # a config file: positional edits (analysis/configs.py), no libcst
            new_text = _apply_config_fixes(source.text, [f.fix for f in todo if f.fix])
        else:
            from losslint.fixes import FixError, apply_fixes  # (libcst)

            try:
                new_text = apply_fixes(source.text, [f.fix for f in todo if f.fix])
            except FixError as error:
                failure = engine_finding(linter_problems.FixFailed, source.target.display, f"fixes not applied: {error}", todo[0].span.line)
                break
            except Exception as error:  # libcst or a rule's fix raised: leave the file alone
                internal_error = True
                failure = engine_finding(
                    linter_problems.FixFailed, source.target.display, f"fixes not applied: {type(error).__name__}: {error}", todo[0].span.line
                )
                break
        parse = parse_config_source if source.config is not None else parse_source
        candidate = parse(SourceFile(source.target, source.module, notebook=source.notebook), new_text.encode(source.encoding))
        broken = candidate.problem.message if candidate.problem else _config_broken(candidate)
        if broken or new_text == source.text:
            reason = broken or "the fix changed nothing"
            failure = engine_finding(
                linter_problems.FixFailed, source.target.display, f"fixes not applied, the result would be broken: {reason}", todo[0].span.line
            )
            break
        fixed.extend(todo)
        source = candidate
        if project is run_project:
            project = project.copy()
        if source.config is not None:  # the code that reads it must see the fixed config
            project.unsaved = {**project.unsaved, file_key(str(source.target.path)): new_text}
        else:
            project.add(collect_module_facts(source.tree, new_text, source.module, source.is_package), str(source.target.path))  # type: ignore[arg-type]
        checked = checker.check(source, project)
        findings, internal_error = checked.findings, internal_error or checked.internal_error
    remaining = findings + ([failure] if failure else [])
    return FixOutcome(source.text or original_text, sorted(remaining, key=lambda f: f.sort_key), fixed, internal_error)


def _apply_config_fixes(text: str, fixes: list) -> str:
    """A config file's fixes: their positional edits, each once."""
    from losslint.analysis.configs import apply_edits

    return apply_edits(text, list(dict.fromkeys(edit for fix in fixes for edit in fix.edits)))


def _config_broken(candidate: SourceFile) -> str | None:
    """Why a fixed config would be broken (it no longer loads), or None."""
    if candidate.config is None or candidate.config.error is None:
        return None
    return f"the fixed config does not load ({candidate.config.error})"


def write_fixed(source: SourceFile, text: str) -> None:
    """Write a fixed file atomically (a notebook: back into its cells' JSON)."""
    if source.notebook is not None:
        notebooks.write(source.target.path, source.notebook, text)
    else:
        from losslint.fixes import write_atomic

        write_atomic(source.target.path, text, source.encoding)


def fixed_bytes(source: SourceFile, text: str) -> bytes:
    """The bytes of the fixed file, as they would be written (a notebook: its JSON)."""
    if source.notebook is not None:
        return notebooks.fixed_notebook(source.notebook, text).encode("utf-8")
    return text.encode(source.encoding)


def fix_diff(source: SourceFile, before: str, after: str) -> str:
    if source.notebook is not None:
        return notebooks.unified_diff(source.target.display, source.notebook, before, after)
    from losslint.fixes import unified_diff

    return unified_diff(source.target.display, before, after)
