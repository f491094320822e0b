"""Output formats for ``losslint check``: text (with the source line and the fix),
concise (one line per finding), json (the contract in DESIGN.md), statistics.

Columns: internally 0-based characters; every format shows them 1-based.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable

import click

from losslint.findings import Applicability, Finding

_SEVERITY_COLOUR = {"error": "red", "warning": "yellow", "info": "cyan"}


def _location(f: Finding) -> str:
    return f"{f.path}:{f.span.line}:{f.span.column + 1}"


def format_concise(findings: list[Finding], colour: bool) -> str:
    lines = []
    for f in findings:
        code = click.style(f.code, fg=_SEVERITY_COLOUR[f.severity.value], bold=True) if colour else f.code
        marker = " [*]" if f.fix else ""
        lines.append(f"{_location(f)}: {code}{marker} {f.message}")
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
        lines = read_lines(f.path)
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
        for related in f.related:
            block.append(f"{marker} linked: {related}")
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
        "related": list(f.related),
    }


def format_json(findings: list[Finding], edits_for: Callable[[Finding], list[dict] | None]) -> str:
    return json.dumps([finding_to_json(f, edits_for(f) if f.fix else None) for f in findings], indent=2)


def format_statistics(findings: list[Finding]) -> str:
    counts = Counter((f.code, f.name) for f in findings)
    fixable = {f.code for f in findings if f.fix is not None}
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
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    line = f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''}"
    fixable = safe + (unsafe if unsafe_enabled else 0)
    notes = []
    if fixable:
        notes.append(f"{fixable} fixable with {'--fix --unsafe-fixes' if unsafe_enabled and unsafe else '--fix'}")
    if unsafe and not unsafe_enabled:
        notes.append(f"{unsafe} more with --unsafe-fixes")
    parts.append(line + (f" ({', '.join(notes)})" if notes else "") + ".")
    return " ".join(parts)


def line_reader() -> Callable[[str], list[str] | None]:
    """Reads a file's lines once for the text format's source excerpts."""
    cache: dict[str, list[str] | None] = {}

    def read(path: str) -> list[str] | None:
        if path not in cache:
            try:
                cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                cache[path] = None
        return cache[path]

    return read
