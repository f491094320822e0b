"""The per-file stages of the pipeline, the same in every entry point and in every
process: a file's project facts, the rules on one file (then suppression), the
linkers over a run's findings, and the line edits of the fixes found.

Each stage returns what happened, a crash of losslint's own code included
(``internal_error``): nothing is kept on the checker between files, so one
checker serves a whole run, a worker process or a language server.

Cost model: reading and ``ast.parse`` are the floor; the fact collectors are
cheap visitors; a rule runs only on files that contain one of its trigger words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from functools import cached_property, lru_cache
from typing import Iterable

from losslint import notebooks
from losslint.analysis.configs import is_config_path
from losslint.config import Settings
from losslint.context import FileContext
from losslint.findings import Finding
from losslint.noqa import is_suppressed
from losslint.project import ModuleFacts, ProjectFacts, collect_module_facts, file_key
from losslint.rules import linter_problems
from losslint.rules.base import Rule, all_linkers, all_rules
from losslint.selection import enabled_rules, selector_matches
from losslint.sources import SourceFile, engine_finding


@dataclass
class FileCheck:
    """One file's findings (suppressed ones left out, sorted), and whether a crash
    of losslint's own code is among them (LL005: the exit code is 2)."""

    findings: list[Finding]
    internal_error: bool = False


class FileChecker:
    """The enabled rules of some settings, applied one file at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.select is not None or settings.extend_select or settings.ignore:
            self.rules  # a selector that matches no rule is an error now, not when a file is checked

    # The rule modules are imported on first use: a run whose findings all come from
    # the cache (a warm re-run) imports none of them, nor libcst.
    @cached_property
    def rules(self) -> list[Rule]:
        return [cls() for cls in enabled_rules(self.settings)]

    @cached_property
    def enabled_codes(self) -> frozenset[str]:
        return frozenset(r.code for r in self.rules)

    @cached_property
    def _content_codes(self) -> frozenset[str]:
        """The rules that read a file's content (the LL0xx codes are the engine's own)."""
        return frozenset(r.code for r in self.rules if not r.code.startswith("LL0"))

    # -- project facts -----------------------------------------------------------
    def empty_project(self) -> ProjectFacts:
        return ProjectFacts(configured_dataset_sizes=dict(self.settings.dataset_sizes))

    def module_facts(self, source: SourceFile) -> ModuleFacts | None:
        """The file's project facts; None if a collector crashes (kept on the source
        as an LL005, reported with its findings): the run goes on without them."""
        assert source.tree is not None and source.text is not None
        try:
            return collect_module_facts(source.tree, source.text, source.module, source.is_package)
        except Exception as error:
            source.facts_crash = engine_finding(
                linter_problems.InternalError,
                source.target.display,
                f"collecting project facts crashed on this file ({type(error).__name__}: {error}); please report it with the file",
            )
            return None

    def facts_for(self, sources: Iterable[SourceFile], unsaved: bool = False) -> ProjectFacts:
        """The project facts of these parsed files. ``unsaved``: their texts are not
        on disk (a test's strings, a copy being fixed): the analysis reads them from
        the project, never from disk."""
        project = self.empty_project()
        sources = list(sources)
        self.rules  # the rule modules register their facts' collectors when imported
        for source in sources:
            if source.tree is not None and source.text is not None:
                facts = self.module_facts(source)
                if facts is not None:
                    project.add(facts, str(source.target.path))
        if unsaved:
            project.unsaved = {file_key(str(s.target.path)): s.text for s in sources if s.text is not None}
        return project

    def needs_project(self, triggered: frozenset[str]) -> bool:
        """Given a text's ``triggered_codes``: does an enabled rule look at it? If
        none does, the file's findings cannot depend on the project's facts."""
        return not triggered.isdisjoint(self._content_codes)

    # -- the rules on one file ---------------------------------------------------
    def check(self, source: SourceFile, project: ProjectFacts) -> FileCheck:
        findings: list[Finding] = [source.facts_crash] if source.facts_crash is not None else []
        internal_error = source.facts_crash is not None
        if source.problem is not None:
            findings.append(source.problem)
        elif source.config is not None:
            found, crashed = self._config_findings(source, project)
            findings += found
            internal_error = internal_error or crashed
        elif source.tree is not None and source.text is not None:
            ctx = FileContext(source.target.display, source.module, source.text, source.tree, project, self.settings, str(source.target.path))
            if source.triggered is None:
                source.triggered = triggered_codes(source.text)
            found, crashed = self._run_rules(ctx, source.triggered, source.target.display)
            # a finding a rule placed in a config file is that file's (reported, suppressed
            # and fixed there: _config_findings), not this one's
            findings += [f for f in found if f.path == source.target.display or not is_config_path(f.path)]
            internal_error = internal_error or crashed
        if source.notebook is None:
            return FileCheck(self._filter(findings, source), internal_error)
        findings += notebooks.problems(source.notebook, source.target.display)
        return FileCheck(notebooks.locate(self._filter(findings, source), source.notebook, source.text or ""), internal_error)

    def _run_rules(self, ctx: FileContext, triggered: frozenset[str], display: str) -> tuple[list[Finding], bool]:
        """The enabled rules (and their config checks, rules/config_checks.py) on one
        Python file; True if one crashed (its LL005 is among the findings)."""
        from losslint.rules.config_checks import checks_for

        findings: list[Finding] = []
        internal_error = False
        skip_tests = ctx.is_test_file and not self.settings.lint_test_files
        for rule in self.rules:
            if rule.triggers and rule.code not in triggered:
                continue
            if skip_tests and rule.skips_test_files:
                continue
            try:
                findings.extend(rule.check(ctx))
                for extra in checks_for(rule.code):
                    if any(word in ctx.source for word in extra.triggers):
                        findings.extend(extra.check(ctx, rule))
            except Exception as error:  # a bug of ours must not hide the other findings
                internal_error = True
                findings.append(
                    engine_finding(
                        linter_problems.InternalError,
                        display,
                        f"{rule.code} crashed on this file ({type(error).__name__}: {error}); please report it with the file",
                    )
                )
        return findings, internal_error

    def _config_findings(self, source: SourceFile, project: ProjectFacts) -> tuple[list[Finding], bool]:
        """A config file's findings: the rules on each Python file of the project that
        reads it (analysis/configs.py), keeping what they report in this file."""
        from losslint.analysis import configs
        from losslint.discovery import Target, display_path
        from losslint.sources import parse_source

        key = file_key(str(source.target.path))
        findings: list[Finding] = []
        internal_error = False
        for reader in configs.readers_of(project, key):
            text = project.unsaved.get(reader)
            if text is None:
                try:
                    data = Path(reader).read_bytes()
                except OSError:
                    continue
            else:
                data = text.encode("utf-8")
            facts = project.modules.get(reader)
            display = display_path(Path(reader))
            parsed = parse_source(SourceFile(Target(Path(reader), display), facts.module if facts else Path(reader).stem), data)
            if parsed.tree is None or parsed.text is None:
                continue
            ctx = FileContext(display, parsed.module, parsed.text, parsed.tree, project, self.settings, reader)
            found, crashed = self._run_rules(ctx, triggered_codes(parsed.text), source.target.display)
            internal_error = internal_error or crashed
            findings += [
                replace(f, path=source.target.display)
                for f in found
                if f.code == linter_problems.InternalError.code or (is_config_path(f.path) and file_key(f.path) == key)
            ]
        # several scripts reading the config find the same thing in it: one finding,
        # with each script's evidence among its related locations
        merged: dict[tuple, Finding] = {}
        for f in findings:
            same = merged.get((f.code, f.span))
            if same is None:
                merged[(f.code, f.span)] = f
            else:
                more = tuple(r for r in f.related_locations if r not in same.related_locations)
                merged[(f.code, f.span)] = replace(same, related_locations=same.related_locations + more)
        return list(merged.values()), internal_error

    def _filter(self, findings: list[Finding], source: SourceFile) -> list[Finding]:
        if not findings:  # (most files: no need to split their lines)
            return findings
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

    # -- after the rules ---------------------------------------------------------
    def link(self, findings: list[Finding]) -> bool:
        """Link the findings of a run (all its files) in place; True if a linker
        crashed (linking is a refinement: the findings are kept as they are)."""
        crashed = False
        for link in all_linkers():
            try:
                link(findings)
            except Exception:
                crashed = True
        return crashed

    def with_line_edits(self, source: SourceFile, findings: list[Finding]) -> list[Finding]:
        """The findings with each fix's line edits (``Fix.line_edits``), computed
        here from the text they were found in (for JSON and SARIF, where the
        findings are found: in a worker, and then in the cache). A notebook's
        fixes are not line edits of its file: left without."""
        fixable = [f for f in findings if f.fix is not None and f.fix.line_edits is None]
        if not fixable or source.text is None or source.notebook is not None:
            return findings
        if source.config is not None:  # a config file: its fixes are positional edits already
            from losslint.analysis.configs import line_edits
            from losslint.findings import LineEdit

            return [
                replace(f, fix=replace(f.fix, line_edits=tuple(LineEdit(*e) for e in line_edits(source.text, f.fix.edits))))
                if f.fix is not None and f.fix.line_edits is None
                else f
                for f in findings
            ]
        from losslint.fixes import line_edits_of  # (libcst: only for a file with a fix to show)

        edits = iter(line_edits_of(source.text, [f.fix for f in fixable if f.fix is not None]))
        return [
            replace(f, fix=replace(f.fix, line_edits=next(edits))) if f.fix is not None and f.fix.line_edits is None else f
            for f in findings
        ]


def triggered_codes(text: str) -> frozenset[str]:
    """Codes of every registered rule that would look at ``text`` (a trigger word of
    its is in it), whatever the settings: part of a file's cacheable scan."""
    always, by_trigger = _trigger_table()
    codes = set(always)
    for trigger, trigger_codes in by_trigger.items():
        if trigger in text:
            codes.update(trigger_codes)
    return frozenset(codes)


def config_triggered() -> frozenset[str]:
    """What a config file "triggers": every content rule, since the rules that judge
    the code reading it decide (its findings depend on the project's facts)."""
    always, by_trigger = _trigger_table()
    return always.union(*by_trigger.values())


@lru_cache(maxsize=1)
def _trigger_table() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(codes of content rules without triggers, trigger word -> codes): each word
    is looked for once, however many rules share it."""
    from losslint.rules.config_checks import all_triggers  # (a rule's config checks: their own words)

    rules = [r for r in all_rules() if not r.code.startswith("LL0")]
    extra = all_triggers()
    words = {t for r in rules for t in r.triggers} | {t for found in extra.values() for t in found}
    return (
        frozenset(r.code for r in rules if not r.triggers),
        {w: frozenset(r.code for r in rules if w in r.triggers or w in extra.get(r.code, ())) for w in sorted(words)},
    )
