"""Are losslint's fixes safe to apply without reading them? Over a corpus:

    python benchmarks/fix_safety.py TREE [TREE ...] [--report report.md] [--jobs N]

Each TREE is copied to a temporary folder first (it is never modified), then:

1. every fix is applied *alone* to the file it was found in (its JSON line edits):
   the result must compile (a YAML/JSON/TOML config: load again), must not give
   pyflakes an undefined name the file did not have, must keep the file's comments (none lost, none copied) and must not
   leave trailing whitespace on a line it writes;
2. ``check --fix --unsafe-fixes`` is applied to the whole copy: every fixed file
   must compile and have no new undefined name; no fix may fail (LL004); a
   re-lint must be clean of the codes that were fixed (no more findings of a
   fixed code than the file had without a fix); a second --fix must change
   nothing.

Every failure is reported with the rule code it comes from, the file, the line
and what is wrong. Exit status 1 when there is one. ``tests/test_fix_safety.py``
runs the same checks on fixtures/ (and trains the fixed training programs).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from losslint import notebooks
from losslint.analysis.configs import is_config_path, parse_config
from losslint.config import load_settings
from losslint.engine import Linter
from losslint.findings import LineEdit


@dataclass(frozen=True, order=True)
class Failure:
    code: str  # the rule whose fix is at fault (several: "LL201+LL301")
    path: str  # relative to the tree
    line: int  # in the original file (a whole-file failure: the line in the fixed file)
    what: str


def undefined_names(text: str, filename: str) -> set[str] | None:
    """pyflakes' undefined names in ``text`` (None: it does not parse)."""
    from pyflakes import api, messages, reporter

    collected: list = []

    class Collect(reporter.Reporter):
        def __init__(self) -> None:
            super().__init__(io.StringIO(), io.StringIO())

        def flake(self, message) -> None:  # type: ignore[override]
            collected.append(message)

    try:
        compile(text, filename, "exec")
    except (SyntaxError, ValueError):
        return None
    api.check(text, filename, Collect())
    return {m.message_args[0] for m in collected if isinstance(m, messages.UndefinedName)}


def apply_line_edits(text: str, edits: tuple[LineEdit, ...]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e.line, reverse=True):
        lines[edit.line - 1 : edit.end_line - 1] = [edit.content]
    return "".join(lines)


def python_source(path: str) -> str:
    """A file's Python text (a notebook: its code cells, as losslint reads them)."""
    data = Path(path).read_bytes()
    if path.endswith(".ipynb"):
        return notebooks.load(data).python
    return data.decode("utf-8", errors="surrogateescape")


def comments(text: str, filename: str = "") -> Counter:
    """The file's comments (a fix may add none, drop none, copy none)."""
    found: Counter = Counter()
    if is_config_path(filename):  # YAML and TOML comments: '#' to the end of a line, as written
        found.update(line[line.index("#"):].strip() for line in text.splitlines() if "#" in line)
        return found
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                found[token.string] += 1
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _compile_error(text: str, filename: str) -> str | None:
    """Why the fixed file is broken: a config must load again, Python must compile."""
    if is_config_path(filename):
        error = parse_config(filename, text).error
        return f"does not load as a config: {error}" if error else None
    try:
        compile(text, filename, "exec")
    except (SyntaxError, ValueError) as error:
        return f"does not compile: {getattr(error, 'msg', error)} (line {getattr(error, 'lineno', '?')})"
    return None


def _first_line_using(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if name in line:
            return number
    return 0


def _relative(root: Path, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def check_tree(root: Path, jobs: int | None = None, settings_path: Path | None = None) -> tuple[list[Failure], dict]:
    """Check every fix losslint offers on ``root``, which is modified (a copy).
    Returns the failures and counts (fixes offered, files fixed)."""
    settings = load_settings(settings_path, [root]).with_overrides(unsafe_fixes=True)
    failures: list[Failure] = []
    before = Linter(settings, jobs=jobs).run([root], fix_edits=True).findings
    texts: dict[str, str] = {}
    undefined_before: dict[str, set[str] | None] = {}

    def original(path: str) -> str:
        if path not in texts:
            texts[path] = python_source(path)
            undefined_before[path] = None if is_config_path(path) else undefined_names(texts[path], path)
        return texts[path]

    # 1. each fix alone
    offered = [f for f in before if f.fix is not None and f.cell is None]
    for finding in offered:
        assert finding.fix is not None
        text = original(finding.path)
        where = (finding.code, _relative(root, finding.path), finding.span.line)
        edits = finding.fix.line_edits or ()
        if not edits:
            failures.append(Failure(*where, f"the fix ({finding.fix.description}) has no edits: it cannot be applied"))
            continue
        fixed = apply_line_edits(text, edits)
        problem = _compile_error(fixed, finding.path)
        if problem and not _compile_error(text, finding.path):
            failures.append(Failure(*where, f"{finding.fix.description}: the result {problem}"))
            continue
        new = set() if is_config_path(finding.path) else (undefined_names(fixed, finding.path) or set()) - (undefined_before[finding.path] or set())
        if new:
            failures.append(Failure(*where, f"{finding.fix.description}: new undefined name(s) {', '.join(sorted(new))}"))
        if comments(fixed, finding.path) != comments(text, finding.path):
            lost, copied = comments(text, finding.path) - comments(fixed, finding.path), comments(fixed, finding.path) - comments(text, finding.path)
            failures.append(Failure(*where, f"{finding.fix.description}: comments changed (lost {sorted(lost)}, added {sorted(copied)})"))
        for edit in edits:
            for offset, line in enumerate(edit.content.splitlines()):
                if line != line.rstrip():
                    failures.append(Failure(*where, f"{finding.fix.description}: trailing whitespace on written line {edit.line + offset}: {line!r}"))
                    break

    # 2. the whole --fix run
    fixable_before: dict[str, Counter] = defaultdict(Counter)
    unfixable_before: dict[str, Counter] = defaultdict(Counter)
    for f in before:
        (fixable_before if f.fix is not None else unfixable_before)[f.path][f.code] += 1
    for f in before:  # every file --fix may change, read before it does (notebooks too)
        if f.fix is not None:
            original(f.path)
    report = Linter(settings, jobs=jobs).run([root], fix=True, unsafe=True)
    fixed_codes = {r.path: sorted(set(r.fixed_codes)) for r in report.files if r.fixed}
    for finding in report.findings:
        if finding.code == "LL004":
            culprits = sorted({f.code for f in before if f.path == finding.path and f.fix is not None and f.span.line == finding.span.line})
            failures.append(Failure("+".join(culprits) or "LL004", _relative(root, finding.path), finding.span.line, finding.message))
    for path, codes in fixed_codes.items():
        label = "+".join(codes)
        text = python_source(path)
        problem = _compile_error(text, path)
        if problem and not _compile_error(original(path), path):  # (a notebook's cells joined may not compile as one file)
            failures.append(Failure(label, _relative(root, path), 0, f"after --fix the file {problem}"))
            continue
        original(path)
        if is_config_path(path):
            continue
        for name in sorted((undefined_names(text, path) or set()) - (undefined_before[path] or set())):
            line = _first_line_using(text, name)
            failures.append(Failure(label, _relative(root, path), line, f"after --fix: undefined name {name!r} (line {line} of the fixed file)"))
    after = Linter(settings, jobs=jobs).run([root]).findings
    left: dict[str, Counter] = defaultdict(Counter)
    for f in after:
        left[f.path][f.code] += 1
    for path, codes in fixed_codes.items():
        for code in codes:
            if left[path][code] > unfixable_before[path][code]:
                lines = [f.span.line for f in after if f.path == path and f.code == code]
                failures.append(
                    Failure(code, _relative(root, path), lines[0] if lines else 0,
                            f"re-lint after --fix still reports {code} {left[path][code]}x (lines {lines}); "
                            f"before: {fixable_before[path][code]} with a fix, {unfixable_before[path][code]} without")
                )
    again = Linter(settings, jobs=jobs).run([root], fix=True, unsafe=True)
    for result in again.files:
        if result.fixed:
            failures.append(Failure("+".join(sorted(set(result.fixed_codes))), _relative(root, result.path), 0,
                                    f"a second --fix changed the file again ({result.fixed} more fixes)"))
    counts = {"fixes offered": len(offered), "files fixed": len(fixed_codes), "findings before": len(before), "findings after": len(after)}
    return sorted(set(failures)), counts


def markdown(failures_by_tree: dict[str, list[Failure]], counts_by_tree: dict[str, dict]) -> str:
    by_code: dict[str, list[tuple[str, Failure]]] = defaultdict(list)
    for tree, failures in failures_by_tree.items():
        for failure in failures:
            by_code[failure.code].append((tree, failure))
    total = Counter()
    for counts in counts_by_tree.values():
        total.update(counts)
    out = ["# Fix safety report", "", f"Trees: {len(failures_by_tree)}; " + ", ".join(f"{k}: {v}" for k, v in total.items()), ""]
    if not by_code:
        out.append("No failures.")
    for code in sorted(by_code):
        out += [f"## {code} ({len(by_code[code])})", ""]
        for tree, f in by_code[code]:
            out.append(f"- `{tree}/{f.path}:{f.line}`: {f.what}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--report", type=Path, help="write the failures, by rule code, as Markdown")
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args()
    trees = [tree for given in args.trees for tree in _subtrees(given)]
    failures_by_tree: dict[str, list[Failure]] = {}
    counts_by_tree: dict[str, dict] = {}
    for tree in trees:
        scratch = Path(tempfile.mkdtemp(prefix="losslint-fix-safety-"))
        try:
            copy = scratch / tree.name
            shutil.copytree(tree, copy, symlinks=True)
            failures, counts = check_tree(copy, args.jobs)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        failures_by_tree[tree.name] = failures
        counts_by_tree[tree.name] = counts
        print(f"{tree.name}: {counts}, {len(failures)} failure(s)", file=sys.stderr)
    text = markdown(failures_by_tree, counts_by_tree)
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    print(text)
    sys.exit(1 if any(failures_by_tree.values()) else 0)


def _subtrees(folder: Path) -> list[Path]:
    """A folder of project trees (as /tmp/devset-trees): each checked on its own,
    as a project (its cross-file facts its own)."""
    children = sorted(p for p in folder.iterdir() if p.is_dir())
    return children if children and not any(p.suffix == ".py" for p in folder.iterdir()) else [folder]


if __name__ == "__main__":
    main()
