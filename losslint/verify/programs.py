"""A training program as losslint verify sees it: its local Python files, the
findings losslint reports on them, and the fixed variants to train.

A program is a script plus the project modules it imports (followed
transitively, from the script's directory). Each variant is a complete copy of
those files in a directory of its own under a temporary work directory, so that
the user's files are never run in place, written or byte-compiled:

- ``original``: the files as they are;
- one variant per finding with a fix: that finding's fix alone, applied with
  losslint's own fix machinery (``losslint.fixes.apply_fixes``, unsafe fixes
  included: the variant lives in the sandbox);
- ``all``: every fix, applied to a fixed point by the engine
  (``pipeline.lint_file`` with ``Action.FIX_TEXT``, unsafe), as ``losslint check --fix
  --unsafe-fixes`` would.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from losslint.config import Settings
from losslint.discovery import Target
from losslint.checking import FileChecker
from losslint.pipeline import Action, Mode, lint_file, lint_sources, source_from_text
from losslint.sources import SourceFile, module_name, read_source
from losslint.findings import Applicability, Finding
from losslint.fixes import FixError, apply_fixes
from losslint.rules.base import all_rules, chain_role

MAX_PROJECT_FILES = 200
# Gradient accumulation needs longer epochs to have several optimizer steps in each:
# 41 micro-batches leave a last window of one micro-batch for accum 2, 4, 5, 8 and 10.
ACCUMULATION_FULL_BATCHES = 41


def _module_candidates(root: Path, module: str) -> list[Path]:
    base = root.joinpath(*module.split("."))
    return [base.with_suffix(".py"), base / "__init__.py"]


def local_files(script: Path) -> list[Path]:
    """The script and the project modules it imports (transitively), found under
    the script's directory; standard library and installed packages are skipped."""
    script = script.resolve()
    root = script.parent
    seen: list[Path] = []
    todo = [script]
    while todo and len(seen) < MAX_PROJECT_FILES:
        path = todo.pop(0)
        if path in seen or not path.is_file():
            continue
        seen.append(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        package = path.parent
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package
                    for _ in range(node.level - 1):
                        base = base.parent
                    prefix = ".".join(base.relative_to(root).parts) if base.is_relative_to(root) else None
                    if prefix is None:
                        continue
                    module = ".".join(p for p in (prefix, node.module or "") if p)
                else:
                    module = node.module or ""
                names = [module] + [f"{module}.{alias.name}" if module else alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a.b.c imports a, a.b and a.b.c
                    for candidate in _module_candidates(root, ".".join(parts[:i])):
                        if candidate.is_file() and candidate not in seen:
                            todo.append(candidate)
    return seen


@dataclass
class Variant:
    key: str  # "original", "all", or "fix-<n>"
    files: dict[str, str]  # relative path -> text
    finding: Finding | None = None
    error: str | None = None  # the fix could not be applied
    baseline: str = "original"  # the variant it is compared with

    def write(self, directory: Path, program: Program) -> Path:
        """Write the variant's files under ``directory``; return the script's path there."""
        directory.mkdir(parents=True, exist_ok=True)
        for relative, text in self.files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return directory / program.script_relative


@dataclass
class Program:
    script: Path
    root: Path
    files: dict[str, str]  # relative path -> original text
    findings: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # LL0xx: a file could not be read/parsed
    variants: list[Variant] = field(default_factory=list)
    frameworks: tuple[str, ...] = ("torch",)

    @property
    def full_batches(self) -> int | None:
        """Micro-batches per epoch the program needs, when more than the default."""
        return ACCUMULATION_FULL_BATCHES if any(f.code == "LL104" for f in self.findings) else None

    @property
    def script_relative(self) -> str:
        return self.script.relative_to(self.root).as_posix()

    def variant(self, key: str) -> Variant:
        return next(v for v in self.variants if v.key == key)

    def fixable(self) -> list[Finding]:
        return [f for f in self.findings if f.fix is not None]


def is_clip_fix(finding: Finding) -> bool:
    """A step no clip bounds (its rule's chain role): its fix is a clip, judged on an outlier."""
    role = chain_role(finding.code)
    return role is not None and role.unclipped


def is_problem(finding: Finding) -> bool:
    """The linter's own finding (LL0xx: a file it could not read or parse): no chain role."""
    return chain_role(finding.code) is None


def symptom_direction(findings: list[Finding]) -> str:
    """'down' when every non-clip finding's symptom is a dip, else 'up'."""
    relevant = [f for f in findings if not is_clip_fix(f)]
    return "down" if relevant and all(getattr(chain_role(f.code), "dips", False) for f in relevant) else "up"


def load_program(script: Path, settings: Settings) -> Program:
    """Lint the script and its local modules, and prepare the variants to train."""
    script = script.resolve()
    root = script.parent
    paths = local_files(script)
    checker = FileChecker(settings)
    sources: list[SourceFile] = []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        sources.append(read_source(Target(path, relative), settings))
    findings = lint_sources(checker, sources, checker.facts_for(sources)).findings
    files = {s.target.display: s.text for s in sources if s.text is not None}
    program = Program(script, root, files)
    program.problems = [f for f in findings if is_problem(f)]
    program.findings = [f for f in findings if not is_problem(f)]
    text = "\n".join(files.values())
    program.frameworks = ("torch", "keras") if "keras" in text else ("torch",)

    program.variants.append(Variant("original", dict(files)))
    fixable = program.fixable()
    clips = [f for f in fixable if is_clip_fix(f)]
    others = [f for f in fixable if not is_clip_fix(f)]
    for index, finding in enumerate(fixable):
        if not is_clip_fix(finding):
            program.variants.append(_single_fix(f"fix-{index}", files, finding))
    # A clip is judged in the program the user will have once the other fixes are in:
    # on a loss still scaled by 1/B, a clip at max_norm=1.0 would never engage.
    baseline = "original"
    base_files = files
    if clips and others:
        clip_rules = [r.code for r in all_rules() if r.chain is not None and r.chain.unclipped]
        base_settings = settings.with_overrides(ignore=[*settings.ignore, *clip_rules])
        base_files = _fixed_files(files, others, base_settings, root)
        program.variants.append(Variant("base", base_files))
        baseline = "base"
    for index, finding in enumerate(fixable):
        if is_clip_fix(finding):
            variant = _clip_on(f"fix-{index}", base_files, finding, settings, root) if baseline == "base" else _single_fix(
                f"fix-{index}", files, finding
            )
            variant.baseline = baseline
            program.variants.append(variant)
    if fixable:
        program.variants.append(Variant("all", _fixed_files(files, fixable, settings, root)))
    program.variants.sort(key=lambda v: (v.key != "original", v.key))
    return program


def _single_fix(key: str, files: dict[str, str], finding: Finding) -> Variant:
    """The files with this one finding's fix applied."""
    changed = dict(files)
    try:
        new_text = apply_fixes(files[finding.path], [finding.fix])  # type: ignore[list-item]
        ast.parse(new_text)
    except (FixError, SyntaxError, KeyError) as error:
        return Variant(key, changed, finding, f"the fix could not be applied: {error}")
    changed[finding.path] = new_text
    return Variant(key, changed, finding)


def _in_memory(files: dict[str, str], root: Path, settings: Settings) -> tuple[FileChecker, list[SourceFile]]:
    sources = [source_from_text(Target(root / rel, rel), module_name(root / rel), text) for rel, text in files.items()]
    return FileChecker(settings), sources


def _fixed_files(files: dict[str, str], findings: list[Finding], settings: Settings, root: Path) -> dict[str, str]:
    """Every fix the settings allow, applied to a fixed point by the engine, in the files that have one."""
    checker, sources = _in_memory(files, root, settings)
    project = checker.facts_for(sources)
    changed = dict(files)
    paths = {f.path for f in findings}
    for source in sources:
        if source.target.display in paths and source.text is not None and source.tree is not None:
            fixed = lint_file(checker, source, project, Mode(Action.FIX_TEXT, unsafe=True)).fixed_text
            changed[source.target.display] = source.text if fixed is None else fixed
    return changed


def _clip_on(key: str, base: dict[str, str], finding: Finding, settings: Settings, root: Path) -> Variant:
    """The base files with this clip added: the finding is found again in the base (the other fixes
    may have moved it) and its fix applied there."""
    checker, sources = _in_memory(base, root, settings)
    project = checker.facts_for(sources)
    source = next((s for s in sources if s.target.display == finding.path), None)
    found = lint_file(checker, source, project, Mode()).findings if source else []
    again = [f for f in found if f.code == finding.code and f.fix]
    if not again:
        return Variant(key, dict(base), finding, f"{finding.code} is no longer reported once the other fixes are applied")
    nearest = min(again, key=lambda f: abs(f.span.line - finding.span.line))
    variant = _single_fix(key, base, nearest)
    variant.finding = finding
    return variant


def applicability(finding: Finding) -> str:
    if finding.fix is None:
        return "none"
    return "safe" if finding.fix.applicability is Applicability.SAFE else "unsafe"
