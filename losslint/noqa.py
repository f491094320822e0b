"""``# noqa`` suppression, the same in every mode (check, fix, flake8, LSP).

``# noqa`` silences every finding on its line; ``# noqa: LL201, LL3`` or
``# noqa: partial-last-batch`` only those. A finding is silenced by a comment on
its first line or on the last line of its node (for calls spread over lines).

File-level, on a comment line of its own anywhere in the file:
``# losslint: noqa`` silences the whole file, ``# losslint: noqa: LL201, LL3``
those rules in the whole file. flake8's ``# flake8: noqa`` makes flake8 skip the
file (even with codes after it: flake8 matches only the start), and losslint
honours it the same way, so that both modes agree.

``add_noqa`` writes the line comments that silence given findings (``check
--add-noqa``, to adopt losslint on an existing codebase).
"""

from __future__ import annotations

import io
import re
import tokenize

from losslint.findings import Finding
from losslint.selection import selector_matches

_CODES = r"[A-Za-z0-9_-]+(?:[\s,]+[A-Za-z0-9_-]+)*"
_NOQA = re.compile(rf"#\s*noqa(?::\s*(?P<codes>{_CODES}))?", re.IGNORECASE)
_FILE_NOQA = re.compile(rf"^\s*#\s*losslint:\s*noqa(?::\s*(?P<codes>{_CODES}))?\s*$", re.IGNORECASE)
# flake8's own pattern (flake8.defaults.NOQA_FILE, matched at the start of a line):
# whatever follows, codes included, flake8 skips the whole file.
_FLAKE8_FILE_NOQA = re.compile(r"\s*# flake8[:=]\s*noqa", re.IGNORECASE)


def noqa_selectors(line: str) -> list[str] | None:
    """None: no noqa on the line; []: a bare noqa (everything); else the selectors."""
    if "#" not in line:
        return None
    match = _NOQA.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return []
    return _split(codes)


def _split(codes: str) -> list[str]:
    return [c for c in re.split(r"[\s,]+", codes) if c]


def file_noqa_selectors(lines: list[str]) -> list[str] | None:
    """The file-level directives: None (none), [] (the whole file) or the
    selectors silenced in the whole file."""
    selectors: list[str] = []
    found = False
    for line in lines:
        if not line.lstrip().startswith("#") or "noqa" not in line.lower():
            continue
        match = _FILE_NOQA.match(line)
        if match is not None:
            if not match.group("codes"):
                return []
            found = True
            selectors += _split(match.group("codes"))
        elif _FLAKE8_FILE_NOQA.match(line):
            return []
    return selectors if found else None


# The file-level directives of the last ``lines`` asked about: a file's findings
# are filtered one by one against the same list of lines.
_last_file: list = [None, None]


def _file_selectors(lines: list[str]) -> list[str] | None:
    if _last_file[0] is not lines:
        _last_file[:] = [lines, file_noqa_selectors(lines)]
    return _last_file[1]


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    file_selectors = _file_selectors(lines)
    if file_selectors is not None and (
        not file_selectors or any(selector_matches(s, finding.code, finding.name) for s in file_selectors)
    ):
        return True
    for line_number in {finding.span.line, finding.span.end_line}:
        if 0 < line_number <= len(lines):
            selectors = noqa_selectors(lines[line_number - 1])
            if selectors is None:
                continue
            if not selectors or any(selector_matches(s, finding.code, finding.name) for s in selectors):
                return True
    return False


def _lines_inside_tokens(text: str) -> set[int]:
    """1-based lines whose end is inside a token (a multi-line string) or
    continued by a backslash: a comment cannot be appended there."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.end[0] > token.start[0]:
                inside.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        pass
    for number, line in enumerate(text.splitlines(), start=1):
        if line.rstrip().endswith("\\"):
            inside.add(number)
    return inside


def add_noqa(text: str, findings: list[Finding]) -> tuple[str, int]:
    """``text`` with a ``# noqa: CODE`` comment for each finding (on its first
    line, or the last line of its node where the first ends inside a string),
    merged into a ``# noqa: ...`` already there. Returns the text and the number
    of findings that got one (a finding with no line to take it is left)."""
    lines = text.splitlines(keepends=True)
    blocked = _lines_inside_tokens(text)
    codes_by_line: dict[int, list[str]] = {}
    added = 0
    for finding in findings:
        line = next((n for n in (finding.span.line, finding.span.end_line) if 0 < n <= len(lines) and n not in blocked), None)
        if line is None:
            continue
        codes = codes_by_line.setdefault(line, [])
        if finding.code not in codes:
            codes.append(finding.code)
        added += 1
    for number, codes in codes_by_line.items():
        line = lines[number - 1]
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        match = _NOQA.search(body) if "#" in body else None
        if match is not None and match.group("codes"):
            known = _split(match.group("codes"))
            new = ", ".join(known + [c for c in codes if c not in known])
            body = body[: match.start("codes")] + new + body[match.end("codes"):]
        elif match is None:
            body = f"{body.rstrip()}  # noqa: {', '.join(codes)}"
        lines[number - 1] = body + ending
    return "".join(lines), added
