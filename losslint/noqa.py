"""``# noqa`` suppression, the same in every mode (check, fix, flake8, LSP).

``# noqa`` silences every finding on its line; ``# noqa: LL201, LL3`` or
``# noqa: partial-last-batch`` only those. A finding is silenced by a comment on
its first line or on the last line of its node (for calls spread over lines).
"""

from __future__ import annotations

import re

from losslint.findings import Finding
from losslint.selection import selector_matches

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z0-9_-]+(?:[\s,]+[A-Za-z0-9_-]+)*))?", re.IGNORECASE)


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
    return [c for c in re.split(r"[\s,]+", codes) if c]


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    for line_number in {finding.span.line, finding.span.end_line}:
        if 0 < line_number <= len(lines):
            selectors = noqa_selectors(lines[line_number - 1])
            if selectors is None:
                continue
            if not selectors or any(selector_matches(s, finding.code, finding.name) for s in selectors):
                return True
    return False
