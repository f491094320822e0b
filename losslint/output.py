"""Output formats for ``losslint check``: text (with the source line and the fix),
concise (one line per finding), json and json-lines (the contract in the README),
sarif, github, gitlab (Code Quality), junit, pylint, statistics.

Columns: internally 0-based characters; every format shows them 1-based.
A location in a notebook is written one way everywhere: ``nb.ipynb:cell 3:12:5``
(cell, line in the cell, column); a finding's related locations too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Callable

import click

from losslint import notebooks
from losslint.findings import Applicability, Finding, RelatedLocation

_SEVERITY_COLOUR = {"error": "red", "warning": "yellow", "info": "cyan"}


DOCS_URL_VARIABLE = "LOSSLINT_DOCS_URL"
DEFAULT_DOCS_URL = "docs/rules/"  # the rule pages, relative to the root of losslint's repository


def rule_url(code: str) -> str:
    """Where a rule's page is: ``docs/rules/LL201.md`` in losslint's repository, or
    under the base that ``LOSSLINT_DOCS_URL`` names (e.g. the repository's URL on
    its forge, ending in ``/docs/rules/``)."""
    base = os.environ.get(DOCS_URL_VARIABLE) or DEFAULT_DOCS_URL
    return f"{base if base.endswith('/') else base + '/'}{code}.md"


def _location(f: Finding | RelatedLocation) -> str:
    cell = f"cell {f.cell}:" if f.cell is not None else ""  # a notebook: nb.ipynb:cell 3:12:5
    return f"{f.path}:{cell}{f.span.line}:{f.span.column + 1}"


def related_to_json(place: RelatedLocation) -> dict:
    """A related location in the JSON contract: 1-based lines and columns, as the finding's."""
    return {
        "path": place.path,
        "line": place.span.line,
        "column": place.span.column + 1,
        "end_line": place.span.end_line,
        "end_column": place.span.end_column + 1,
        "message": place.message,
        **({"cell": place.cell} if place.cell is not None else {}),
    }


def will_fix(findings: list[Finding], unsafe_enabled: bool) -> Callable[[Finding], bool]:
    """Whether ``--fix`` (with the settings' unsafe-fixes) fixes a finding: a safe
    fix, or an unsafe one when unsafe fixes are on, in a file where fixing did not
    fail (LL004 there: its fixes are left unapplied)."""
    failed = {f.path for f in findings if f.code == "LL004"}

    def fixes(f: Finding) -> bool:
        if f.fix is None or f.path in failed:
            return False
        return f.fix.applicability is Applicability.SAFE or unsafe_enabled

    return fixes


def format_concise(findings: list[Finding], colour: bool, unsafe_enabled: bool = False, show_fixes: bool = False) -> str:
    fixes = will_fix(findings, unsafe_enabled)
    lines = []
    for f in findings:
        code = click.style(f.code, fg=_SEVERITY_COLOUR[f.severity.value], bold=True) if colour else f.code
        marker = " [*]" if fixes(f) else ""
        line = f"{_location(f)}: {code}{marker} {f.message}"
        if show_fixes and f.fix is not None:
            line += f" (fix, {f.fix.applicability.value}: {f.fix.description})"
        lines.append(line)
    return "\n".join(lines)


def format_text(findings: list[Finding], colour: bool, read_lines: Callable[[str], list[str] | None]) -> str:
    """ruff-like: location, code, message; the source line with a caret under the
    span; the fix and whether it is safe."""
    blocks = []
    style = (lambda text, **kw: click.style(text, **kw)) if colour else (lambda text, **kw: text)
    for f in findings:
        head = (
            f"{style(_location(f), bold=True)}: "
            f"{style(f.code, fg=_SEVERITY_COLOUR[f.severity.value], bold=True)} "
            f"[{f.severity.value}] {f.name}: {f.message}"
        )
        block = [head]
        lines = read_lines(f.path) if f.cell is None else notebooks.cell_lines(f.path, f.cell)
        if lines and 0 < f.span.line <= len(lines):
            source_line = lines[f.span.line - 1].rstrip("\n")
            gutter = str(f.span.line)
            pad = " " * len(gutter)
            end = f.span.end_column if f.span.end_line == f.span.line else len(source_line)
            width = max(1, end - f.span.column)
            block += [
                f"{pad} |",
                f"{gutter} | {source_line}",
                f"{pad} | {' ' * f.span.column}{style('^' * width, fg=_SEVERITY_COLOUR[f.severity.value])}",
            ]
            marker = f"{pad} ="
        else:
            marker = "  ="
        if f.fix is not None:
            block.append(f"{marker} fix ({f.fix.applicability.value}): {f.fix.description}")
        for place in f.related_locations:
            block.append(f"{marker} related: {_location(place)}: {place.message}")
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)


def finding_to_json(f: Finding, edits: list[dict] | None) -> dict:
    return {
        "code": f.code,
        "name": f.name,
        "message": f.message,
        "severity": f.severity.value,
        "path": f.path,
        "line": f.span.line,
        "column": f.span.column + 1,
        "end_line": f.span.end_line,
        "end_column": f.span.end_column + 1,
        "fix": None
        if f.fix is None
        else {"applicability": f.fix.applicability.value, "description": f.fix.description, "edits": edits or []},
        "related_locations": [related_to_json(place) for place in f.related_locations],
        "url": rule_url(f.code),
        **({"cell": f.cell} if f.cell is not None else {}),  # notebooks: line and column are the cell's
    }


def format_json(findings: list[Finding], edits_for: Callable[[Finding], list[dict] | None]) -> str:
    return json.dumps([finding_to_json(f, edits_for(f) if f.fix else None) for f in findings], indent=2)


def format_json_lines(findings: list[Finding], edits_for: Callable[[Finding], list[dict] | None]) -> str:
    """One JSON object per line, as in the json format (for streaming consumers)."""
    return "\n".join(json.dumps(finding_to_json(f, edits_for(f) if f.fix else None)) for f in findings)


def format_pylint(findings: list[Finding]) -> str:
    """pylint's parseable format, as ruff writes it: ``path:line: [CODE] message``."""
    lines = []
    for f in findings:
        cell = f"cell {f.cell}:" if f.cell is not None else ""
        lines.append(f"{f.path}:{cell}{f.span.line}: [{f.code}] {f.message}")
    return "\n".join(lines)


def fingerprints(findings: list[Finding], read_lines: Callable[[str], list[str] | None]) -> dict[int, str]:
    """A finding's identity across edits elsewhere in its file (id(finding) ->
    hex digest): its code, path, cell and the text of its line (not the line's
    number), and which occurrence of that it is. Code scanning and GitLab use it
    to track a finding from one commit to the next."""
    seen: Counter = Counter()
    result: dict[int, str] = {}
    for f in sorted(findings, key=lambda f: f.sort_key):
        lines = read_lines(f.path) if f.cell is None else notebooks.cell_lines(f.path, f.cell)
        text = lines[f.span.line - 1].strip() if lines and 0 < f.span.line <= len(lines) else ""
        key = (f.code, f.path, f.cell or 0, text)
        seen[key] += 1
        digest = hashlib.sha256("\0".join(map(str, (*key, seen[key]))).encode("utf-8", "surrogatepass")).hexdigest()
        result[id(f)] = digest
    return result


_GITLAB_SEVERITY = {"error": "critical", "warning": "major", "info": "info"}


def format_gitlab(findings: list[Finding], read_lines: Callable[[str], list[str] | None]) -> str:
    """GitLab Code Quality (a JSON array, the artifact ``reports: codequality``)."""
    prints = fingerprints(findings, read_lines)
    issues = []
    for f in findings:
        description = f.message if f.cell is None else f"cell {f.cell}, line {f.span.line}: {f.message}"
        issues.append(
            {
                "description": f"{f.code} {description}",
                "check_name": f.code,
                "fingerprint": prints[id(f)],
                "severity": _GITLAB_SEVERITY[f.severity.value],
                # A notebook's lines are its cells': the file's own lines are its JSON.
                "location": {"path": f.path, "lines": {"begin": f.span.line if f.cell is None else 1}},
            }
        )
    return json.dumps(issues, indent=2)


def format_junit(findings: list[Finding]) -> str:
    """JUnit XML: a test suite per file with findings, a failed test case per
    finding; a clean run is one passing test case."""
    from xml.sax.saxutils import quoteattr, escape

    by_path: dict[str, list[Finding]] = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<testsuites name="losslint" tests="{max(len(findings), 1)}" failures="{len(findings)}" errors="0">']
    if not findings:
        out += ['  <testsuite name="losslint" tests="1" failures="0" errors="0">', '    <testcase name="No findings" classname="losslint"/>', "  </testsuite>"]
    for path, group in by_path.items():
        out.append(f'  <testsuite name={quoteattr(path)} tests="{len(group)}" failures="{len(group)}" errors="0">')
        for f in group:
            where = _location(f)
            out.append(f"    <testcase name={quoteattr(f'{f.code} {f.name} at {where}')} classname={quoteattr(path)}>")
            out.append(f"      <failure message={quoteattr(f.message)} type={quoteattr(f.code)}>{escape(f'{where}: {f.code} {f.message}')}</failure>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out)


def format_statistics(findings: list[Finding], unsafe_enabled: bool = False) -> str:
    counts = Counter((f.code, f.name) for f in findings)
    fixes = will_fix(findings, unsafe_enabled)
    fixable = {f.code for f in findings if fixes(f)}
    width = max((len(str(n)) for n in counts.values()), default=1)
    return "\n".join(
        f"{n:>{width}}  {code}  {'[*]' if code in fixable else '   '} {name}" for (code, name), n in sorted(counts.items())
    )


def summary(findings: list[Finding], fixed: int, unsafe_enabled: bool) -> str:
    parts = []
    if fixed:
        parts.append(f"Fixed {fixed} finding{'s' if fixed != 1 else ''}.")
    if not findings:
        parts.append("All checks passed!" if not fixed else "No findings remain.")
        return " ".join(parts)
    failed = {f.path for f in findings if f.code == "LL004"}  # fixing failed there: nothing is fixable
    fixable_findings = [f for f in findings if f.fix and f.path not in failed]
    safe = sum(1 for f in fixable_findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in fixable_findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    line = f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''}"
    fixable = safe + (unsafe if unsafe_enabled else 0)
    notes = []
    if fixable:
        notes.append(f"{fixable} fixable with {'--fix --unsafe-fixes' if unsafe_enabled and unsafe else '--fix'}")
    if unsafe and not unsafe_enabled:
        notes.append(f"{unsafe} more with --unsafe-fixes")
    parts.append(line + (f" ({', '.join(notes)})" if notes else "") + ".")
    return " ".join(parts)


def line_reader(texts: dict[str, str] | None = None) -> Callable[[str], list[str] | None]:
    """Reads a file's lines once for the text format's source excerpts (and the
    fingerprints). ``texts``: paths whose text is given (stdin), not read."""
    cache: dict[str, list[str] | None] = {path: text.splitlines() for path, text in (texts or {}).items()}

    def read(path: str) -> list[str] | None:
        if path not in cache:
            try:
                # Regular files only: reading a FIFO named *.py would wait forever.
                is_file = Path(path).is_file()
                cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if is_file else None
            except OSError:
                cache[path] = None
        return cache[path]

    return read


# -- SARIF 2.1.0 (code scanning) -------------------------------------------------

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _sarif_rule(rule_cls) -> dict:
    from losslint.rule_docs import rule_documentation  # the same text as `losslint rule CODE`

    documentation = rule_documentation(rule_cls)
    return {
        "id": rule_cls.code,
        "name": rule_cls.name,
        "shortDescription": {"text": rule_cls.summary},
        "fullDescription": {"text": rule_cls.why},
        "help": {"text": documentation, "markdown": documentation},
        "helpUri": rule_url(rule_cls.code),
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule_cls.severity.value], "enabled": rule_cls.default_enabled},
        "properties": {"tags": ["training", "losslint", rule_cls.code[:3] + "xx"]},
    }


def _artifact(path: str) -> dict:
    """A relative path stays relative to %SRCROOT% (the working directory), which is
    what GitHub's upload-sarif resolves against the checkout."""
    from urllib.parse import quote

    posix = Path(path).as_posix()
    if Path(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(posix), "uriBaseId": "%SRCROOT%"}


def _sarif_region(f: Finding | RelatedLocation) -> dict:
    return {
        "startLine": f.span.line,
        "startColumn": f.span.column + 1,
        "endLine": max(f.span.end_line, f.span.line),
        "endColumn": (f.span.end_column if f.span.end_line > f.span.line else max(f.span.end_column, f.span.column)) + 1,
    }


def _sarif_fix(f: Finding, edits: list[dict]) -> dict:
    """Line-range edits (``text_edits``) as SARIF replacements: a deleted region from
    the start of ``line`` to the start of ``end_line`` (empty: an insertion)."""
    replacements = [
        {
            "deletedRegion": {
                "startLine": e["location"]["line"],
                "startColumn": 1,
                "endLine": e["end_location"]["line"],
                "endColumn": 1,
            },
            "insertedContent": {"text": e["content"]},
        }
        for e in edits
    ]
    assert f.fix is not None
    return {
        "description": {"text": f"{f.fix.description} ({f.fix.applicability.value} fix)"},
        "artifactChanges": [{"artifactLocation": _artifact(f.path), "replacements": replacements}],
    }


def _sarif_related(number: int, place: RelatedLocation) -> dict:
    """A related location: a region of its file, or in a notebook the file and the
    cell, line and column in the message (a region would count the .ipynb's JSON lines)."""
    location: dict = {"id": number, "physicalLocation": {"artifactLocation": _artifact(place.path)}}
    if place.cell is None:
        location["physicalLocation"]["region"] = _sarif_region(place)
        location["message"] = {"text": place.message}
    else:
        location["message"] = {"text": f"cell {place.cell}, line {place.span.line}, column {place.span.column + 1}: {place.message}"}
    return location


def format_sarif(
    findings: list[Finding],
    edits_for: Callable[[Finding], list[dict] | None],
    version: str,
    read_lines: Callable[[str], list[str] | None] | None = None,
) -> str:
    """One SARIF run: every rule with its documentation, every finding as a result
    with its location, its fingerprint and (when it has one) its fix as replacements."""
    from losslint.rules.base import all_rules

    rules = all_rules()
    prints = fingerprints(findings, read_lines or line_reader())
    index = {r.code: i for i, r in enumerate(rules)}
    results = []
    for f in findings:
        cell = f.cell
        location: dict = {"physicalLocation": {"artifactLocation": _artifact(f.path)}}
        message = f.message
        if cell is None:
            location["physicalLocation"]["region"] = _sarif_region(f)
        else:  # a notebook: lines are the cell's, not the .ipynb file's (its JSON)
            message = f"cell {cell}, line {f.span.line}, column {f.span.column + 1}: {message}"
        result = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _SARIF_LEVEL[f.severity.value],
            "message": {"text": message},
            "locations": [location],
            "partialFingerprints": {"losslintFingerprint/v1": prints[id(f)]},
            "properties": {"name": f.name, **({"cell": cell} if cell is not None else {})},
        }
        if f.related_locations:
            result["relatedLocations"] = [_sarif_related(i, place) for i, place in enumerate(f.related_locations, start=1)]
        if f.fix is not None:
            result["properties"]["fixApplicability"] = f.fix.applicability.value
            edits = edits_for(f) if cell is None else None
            if edits:
                result["fixes"] = [_sarif_fix(f, edits)]
        results.append(result)
    cwd = Path.cwd().as_uri().rstrip("/") + "/"
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "losslint", "version": version, "semanticVersion": version, "rules": [_sarif_rule(r) for r in rules]}},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": cwd}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2)


# -- GitHub Actions workflow commands ---------------------------------------------


def _github_escape(value: str, property_value: bool) -> str:
    # The runner's escaping: %, CR, LF everywhere; ':' and ',' inside properties.
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


_GITHUB_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def format_github(findings: list[Finding]) -> str:
    """``::warning file=…,line=…,col=…,endLine=…,endColumn=…,title=…::message``: shown
    as annotations on the pull request's diff."""
    lines = []
    for f in findings:
        cell = f.cell
        properties = [("file", f.path)]
        message = f.message
        if cell is None:
            properties += [("line", str(f.span.line)), ("col", str(f.span.column + 1))]
            if f.span.end_line >= f.span.line:
                properties += [("endLine", str(f.span.end_line)), ("endColumn", str(f.span.end_column + 1))]
        else:
            message = f"cell {cell}, line {f.span.line}, column {f.span.column + 1}: {message}"
        properties.append(("title", f"{f.code} {f.name}"))
        rendered = ",".join(f"{k}={_github_escape(v, True)}" for k, v in properties)
        fix = f" (fix: {f.fix.description}, {f.fix.applicability.value})" if f.fix else ""
        lines.append(f"::{_GITHUB_COMMAND[f.severity.value]} {rendered}::{_github_escape(f.code + ' ' + message + fix, False)}")
    return "\n".join(lines)


# -- progress ---------------------------------------------------------------------


def progress_bar(enabled: bool | None) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A ``Linter.run`` progress callback drawing a bar on stderr, and a function that
    closes it. ``enabled=None``: only when stderr is a terminal, so piped or CI output
    stays clean."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None, lambda: None
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            bar = click.progressbar(length=total, label="Linting", file=sys.stderr, show_pos=True)
            state["bar"] = bar.__enter__()
            state["done"] = 0
        state["bar"].update(done - state["done"])
        state["done"] = done

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)

    return update, close
