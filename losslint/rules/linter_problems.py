"""LL0xx: the linter's own findings. A file that cannot be read, decoded or parsed,
a fix that could not be applied, or a crash of a rule is reported here, with a
clear message, and the run goes on with the other files. The engine emits these;
the classes carry their codes and documentation."""

from __future__ import annotations

from losslint.findings import Severity
from losslint.rules.base import Flagged, Quiet, Rule, register


class _EngineRule(Rule):
    severity = Severity.ERROR

    def check(self, ctx):  # the engine reports these, not a visitor
        return ()


@register
class UnreadableFile(_EngineRule):
    code = "LL001"
    name = "unreadable-file"
    summary = "A path that cannot be read as a file: missing, a directory, a broken symlink, no permission, too large."
    why = "A file losslint cannot read is a file nobody checked; silence would look like a clean result."
    fix_doc = "No automatic fix. Correct the path or the permissions, or exclude the file."


@register
class UndecodableFile(_EngineRule):
    code = "LL002"
    name = "undecodable-file"
    summary = "A file that is not text in its declared encoding (UTF-8 by default), or that contains NUL bytes."
    why = "Python cannot run it either; it is probably a binary file with a .py name, or corrupted."
    fix_doc = "No automatic fix. Re-save the file as UTF-8, or exclude it."
    flagged = (Flagged("x = 1\ny = '\x00'\n", fixed=None, message_contains=("NUL byte",)),)


@register
class SyntaxErrorRule(_EngineRule):
    code = "LL003"
    name = "syntax-error"
    summary = "A file that does not parse as Python."
    why = "No rule can judge code that does not parse; the file is reported instead of silently skipped."
    fix_doc = "No automatic fix. Correct the syntax error at the reported line and column."
    flagged = (
        Flagged("def train(:\n    pass\n", fixed=None, message_contains=("syntax error",)),
    )
    quiet = (Quiet("def train():\n    pass\n", why="valid code"),)


@register
class FixFailed(_EngineRule):
    code = "LL004"
    name = "fix-failed"
    summary = "A fix that could not be applied, or whose result would not parse; the file was left untouched."
    why = "A fixer that writes broken code is worse than none: such a fix is refused and reported."
    fix_doc = "Apply the change by hand; please report the case."


@register
class InternalError(_EngineRule):
    code = "LL005"
    name = "internal-error"
    summary = "A rule crashed on this file; the other rules and files were still checked."
    why = "A bug in losslint must not hide the findings of the other rules."
    fix_doc = "No fix: please report the file that triggers it."
