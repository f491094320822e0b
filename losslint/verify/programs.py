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
  (``Linter.fix_source(..., unsafe=True)``), as ``losslint check --fix
  --unsafe-fixes`` would.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from losslint.config import Settings
from losslint.discovery import Target
from losslint.engine import Linter, SourceFile, read_source
from losslint.findings import Applicability, Finding
from losslint.fixes import FixError, apply_fixes

MAX_PROJECT_FILES = 200
CLIP_FAMILY = "LL3"  # momentum without clipping: its fix is a clip, judged on an outlier


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
    def script_relative(self) -> str:
        return self.script.relative_to(self.root).as_posix()

    def variant(self, key: str) -> Variant:
        return next(v for v in self.variants if v.key == key)

    def fixable(self) -> list[Finding]:
        return [f for f in self.findings if f.fix is not None]


def is_clip_fix(finding: Finding) -> bool:
    return finding.code.startswith(CLIP_FAMILY)


def load_program(script: Path, settings: Settings) -> Program:
    """Lint the script and its local modules, and prepare the variants to train."""
    script = script.resolve()
    root = script.parent
    paths = local_files(script)
    linter = Linter(settings)
    sources: list[SourceFile] = []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        sources.append(read_source(Target(path, relative), settings))
    project = linter.facts_for(sources)
    findings: list[Finding] = []
    for source in sources:
        findings.extend(linter.check(source, project))
    linter.link(findings)
    files = {s.target.display: s.text for s in sources if s.text is not None}
    program = Program(script, root, files)
    program.problems = [f for f in findings if f.code.startswith("LL0")]
    program.findings = [f for f in findings if not f.code.startswith("LL0")]
    text = "\n".join(files.values())
    program.frameworks = ("torch", "keras") if "keras" in text else ("torch",)

    program.variants.append(Variant("original", dict(files)))
    by_path = {s.target.display: s for s in sources}
    for index, finding in enumerate(program.fixable()):
        changed = dict(files)
        error = None
        try:
            new_text = apply_fixes(files[finding.path], [finding.fix])  # type: ignore[list-item]
            ast.parse(new_text)
            changed[finding.path] = new_text
        except (FixError, SyntaxError, KeyError) as exc:
            error = f"the fix could not be applied: {exc}"
        program.variants.append(Variant(f"fix-{index}", changed, finding, error))
    if program.fixable():
        changed = dict(files)
        for path in {f.path for f in program.fixable()}:
            source = by_path[path]
            if source.text is not None and source.tree is not None:
                new_text, _, _ = linter.fix_source(source, project, unsafe=True)
                changed[path] = new_text
        program.variants.append(Variant("all", changed))
    return program


def copy_tree(source: Path, destination: Path) -> None:
    """Copy a directory (used for scenario fixtures with data files)."""
    shutil.copytree(source, destination, dirs_exist_ok=True)


def applicability(finding: Finding) -> str:
    if finding.fix is None:
        return "none"
    return "safe" if finding.fix.applicability is Applicability.SAFE else "unsafe"
