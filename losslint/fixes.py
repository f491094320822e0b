"""Applying fixes with libcst, keeping every byte outside the edits.

Rules address the node a fix changes by its position (found on the ``ast``);
here the file is parsed with libcst, once per fix round and only when fixes are
wanted, and a single transformer applies every edit of the round. Imports a fix
needs are added once, after the module's existing imports, only when missing.
Writing is atomic: a temporary file in the same directory, then a rename, with
the original's permissions.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import os
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from losslint.findings import Fix, InsertBefore, LineEdit, NodeEdit


class FixError(Exception):
    """A fix could not be applied (its node was not found, or libcst failed)."""


class _EditApplier(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: Sequence[NodeEdit | InsertBefore]) -> None:
        super().__init__()
        self.node_edits: dict[tuple[int, int, int, int], list[NodeEdit]] = {}
        self.inserts: dict[tuple[int, int], list[str]] = {}
        for edit in edits:
            if isinstance(edit, NodeEdit):
                key = (edit.span.line, edit.span.column, edit.span.end_line, edit.span.end_column)
                self.node_edits.setdefault(key, []).append(edit)
            else:
                self.inserts.setdefault((edit.span.line, edit.span.column), []).extend(edit.statements)
        self.applied: set[int] = set()

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        result = updated_node
        if self.node_edits:
            position = self.get_metadata(PositionProvider, original_node, None)
            if position is not None:
                key = (position.start.line, position.start.column, position.end.line, position.end.column)
                for edit in self.node_edits.get(key, ()):
                    # The innermost node of the wanted type at that span takes the edit, once.
                    if id(edit) in self.applied or not isinstance(original_node, edit.node_type):
                        continue
                    if not isinstance(result, cst.CSTNode):
                        break
                    result = edit.replace(result)
                    self.applied.add(id(edit))
        if self.inserts and isinstance(original_node, cst.SimpleStatementLine) and isinstance(result, cst.CSTNode):
            position = self.get_metadata(PositionProvider, original_node.body[0], None)
            if position is not None:
                statements = self.inserts.pop((position.start.line, position.start.column), None)
                if statements:
                    new = [cst.parse_statement(s) for s in statements]
                    return cst.FlattenSentinel([*new, result])
        return result


def apply_fixes(source: str, fixes: Iterable[Fix]) -> str:
    """Apply the fixes' edits in one libcst pass; raises FixError if one cannot be."""
    return _apply(_wrapped(source), list(fixes))


def _wrapped(source: str) -> MetadataWrapper:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise FixError(f"libcst cannot parse the file: {error.message}") from error
    # The wrapper computes positions once, however many fixes are applied to it.
    return MetadataWrapper(module, unsafe_skip_copy=True)


def _apply(wrapper: MetadataWrapper, fixes: list[Fix]) -> str:
    module = wrapper.module
    edits = [edit for fix in fixes for edit in fix.edits]
    if edits:
        applier = _EditApplier(edits)
        module = wrapper.visit(applier)
        missing = [e for e in edits if isinstance(e, NodeEdit) and id(e) not in applier.applied]
        if missing or applier.inserts:
            raise FixError("the code to fix was not found where the finding points")
    imports = [imp for fix in fixes for imp in fix.imports]
    if imports:
        module = add_imports(module, imports)
    return module.code


def line_edits_of(source: str, fixes: Sequence[Fix]) -> list[tuple[LineEdit, ...]]:
    """Each fix applied alone to ``source``, as line edits (one libcst parse for
    all of them). A fix that cannot be applied has none. A fix is applied to the
    top-level statements its edits fall in and diffed there only (a file of many
    fixes costs its size once, not once per fix); one that needs an import the
    file lacks is applied to the whole module."""
    try:
        wrapper = _wrapped(source)
    except Exception:  # (the file's LL004 says why when it is fixed)
        return [() for _ in fixes]
    statements = _TopLevel(wrapper, source)
    result = []
    for fix in fixes:
        try:
            edits = statements.line_edits(fix)
            result.append(edits if edits is not None else tuple(text_edits(source, _apply(wrapper, [fix]))))
        except Exception:
            result.append(())
    return result


class _TopLevel:
    """The module's top-level statements with the line each one's code (leading
    comments and blank lines included) starts at, so that a fix can be applied to
    and regenerated for its own statements alone."""

    def __init__(self, wrapper: MetadataWrapper, source: str) -> None:
        self.wrapper, self.source = wrapper, source
        module = wrapper.module
        self.codes = [module.code_for_node(statement) for statement in module.body]
        header = "".join(module.code_for_node(line) for line in module.header)
        footer = "".join(module.code_for_node(line) for line in module.footer)
        # Regenerating statement by statement must give back the file (it does
        # unless the file lacks a final newline): otherwise every fix takes the
        # whole-module path.
        self.usable = module.has_trailing_newline and header + "".join(self.codes) + footer == source
        self.first_lines: list[int] = []  # where each statement's code starts, 1-based
        line = header.count("\n") + 1
        for code in self.codes:
            self.first_lines.append(line)
            line += code.count("\n")
        self.end_line = line  # the line after the last statement
        self._present: set[str] | None = None

    def _index(self, line: int) -> int | None:
        if not self.first_lines or line < self.first_lines[0] or line >= self.end_line:
            return None
        return bisect.bisect_right(self.first_lines, line) - 1

    def line_edits(self, fix: Fix) -> tuple[LineEdit, ...] | None:
        """The fix's line edits, or None when it must be applied to the whole module."""
        if not self.usable or not fix.edits:
            return None
        indexes = []
        for edit in fix.edits:
            ends = (edit.span.line, edit.span.end_line) if isinstance(edit, NodeEdit) else (edit.span.line,)
            found = [self._index(line) for line in ends]
            if None in found:
                return None
            indexes.extend(found)  # type: ignore[arg-type]
        first, last = min(indexes), max(indexes)
        old = "".join(self.codes[first : last + 1])
        if fix.imports and ("import" in old or not self._imports_present(fix.imports)):
            return None  # add_imports reads the whole fixed module
        applier = _EditApplier(fix.edits)
        module = self.wrapper.module
        parts = []
        with applier.resolve(self.wrapper):
            for statement in module.body[first : last + 1]:
                updated = statement.visit(applier)
                nodes = updated.nodes if isinstance(updated, cst.FlattenSentinel) else () if isinstance(updated, cst.RemovalSentinel) else (updated,)
                parts.extend(module.code_for_node(node) for node in nodes)
        missing = [e for e in fix.edits if isinstance(e, NodeEdit) and id(e) not in applier.applied]
        if missing or applier.inserts:
            raise FixError("the code to fix was not found where the finding points")
        offset = self.first_lines[first] - 1
        return tuple(
            LineEdit(edit.line + offset, edit.end_line + offset, edit.content) for edit in text_edits(old, "".join(parts))
        )

    def _imports_present(self, imports: Sequence[str]) -> bool:
        """Every import the fix needs is bound in the file already (add_imports adds none)."""
        if self._present is None:
            self._present = set()
            for node in ast.walk(ast.parse(self.source)):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._present |= _bound_names(node)
        return all(_bound_names(ast.parse(text).body[0]) <= self._present for text in imports)


def _bound_names(statement: ast.stmt) -> set[str]:
    names = set()
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            names.add(alias.asname or alias.name)
    elif isinstance(statement, ast.ImportFrom):
        for alias in statement.names:
            names.add(f"{statement.module}:{alias.asname or alias.name}")
    return names


def add_imports(module: cst.Module, imports: Sequence[str]) -> cst.Module:
    """Insert each import statement after the module's top-level imports, unless the
    module already has it (anywhere: ``import torch`` inside a function counts)."""
    present: set[str] = set()
    for node in ast.walk(ast.parse(module.code)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            present |= _bound_names(node)
    wanted = []
    for text in dict.fromkeys(imports):
        if not _bound_names(ast.parse(text).body[0]) <= present:
            wanted.append(cst.parse_statement(text))
    if not wanted:
        return module
    body = list(module.body)
    insert_at = 0
    for index, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body
        ):
            insert_at = index + 1
        elif index == 0 and _is_docstring(statement):
            insert_at = 1
        elif insert_at or not _is_docstring(statement):
            if insert_at:
                break
    return module.with_changes(body=body[:insert_at] + wanted + body[insert_at:])


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}")
    )


def text_edits(before: str, after: str) -> list[LineEdit]:
    """The change as line-range edits: replace lines [line, end_line) with ``content``."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    return [
        LineEdit(i1 + 1, i2 + 1, "".join(b[j1:j2]))
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
        if tag != "equal"
    ]


def write_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path``'s content all at once, keeping its permissions. Stopped by
    Ctrl-C or SIGTERM before the rename, it leaves the file as it was and no
    temporary file behind."""
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode)
    with _terminated_like_interrupted():
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".losslint-tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
                handle.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


class _Terminated(BaseException):
    """SIGTERM arrived: unwind (cleaning up on the way) and then end as asked."""


@contextmanager
def _terminated_like_interrupted() -> Iterator[None]:
    """Within: a SIGTERM raises, so that the ``except BaseException`` clean-ups run as
    for Ctrl-C; on the way out it is delivered again to whatever handled it
    before (by default: the process ends, killed by SIGTERM, as it would have)."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield  # (signal handlers can only be set in the main thread)
        return
    received = []

    def on_term(signum, frame):
        received.append(signum)
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(signal.SIGTERM)


# -- helpers for rules building fixes -----------------------------------------


def set_keyword(call: cst.Call, name: str, value_code: str) -> cst.Call:
    """``f(a, x=False)`` -> ``f(a, x=True)``; ``f(a)`` -> ``f(a, x=True)``, in the
    call's own layout: a call with one argument per line gets the new one on a line
    of its own, indented like the others; a trailing comma stays; a comment stays
    with its argument; the closing parenthesis stays where it was. A call with
    several arguments on a line (hanging indent) gets it after the last one."""
    value = cst.parse_expression(value_code)
    args = list(call.args)
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            args[index] = arg.with_changes(value=value)
            return call.with_changes(args=args)
    keywords = [a for a in args if a.keyword is not None and isinstance(a.equal, cst.AssignEqual)]
    equal = keywords[-1].equal if keywords else cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
    )
    new_arg = cst.Arg(keyword=cst.Name(name), value=value, equal=equal)
    if not args:
        return call.with_changes(args=[new_arg])
    last = args[-1]
    # What follows the last argument up to ")": its comma (with a trailing comma,
    # the line break and any comment are the comma's), else the whitespace after it.
    closing = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    line_break = _argument_line_break(call, args)
    if line_break is None:  # on one line, or several to a line: after the last one, on its line
        separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        if isinstance(last.comma, cst.Comma):  # f(a, b,): the trailing comma stays last
            new_arg = new_arg.with_changes(comma=last.comma.with_changes(whitespace_after=closing))
            args[-1] = last.with_changes(comma=separator)
        else:
            new_arg = new_arg.with_changes(whitespace_after_arg=closing)
            args[-1] = last.with_changes(comma=separator, whitespace_after_arg=cst.SimpleWhitespace(""))
        return call.with_changes(args=[*args, new_arg])
    # One argument per line: the last argument keeps its own comment on its line;
    # the new one goes on the next line with the others' indent, then ")" as before.
    comment_line = closing.first_line if isinstance(closing, cst.ParenthesizedWhitespace) else cst.TrailingWhitespace()
    separator = cst.Comma(whitespace_after=line_break.with_changes(first_line=comment_line))
    if isinstance(closing, cst.ParenthesizedWhitespace):
        after_new = closing.with_changes(first_line=cst.TrailingWhitespace())
    else:  # f(\n    a,\n    b): ")" right after the last argument
        after_new = closing
    if isinstance(last.comma, cst.Comma):
        new_arg = new_arg.with_changes(comma=last.comma.with_changes(whitespace_after=after_new))
    else:
        new_arg = new_arg.with_changes(whitespace_after_arg=after_new)
    args[-1] = last.with_changes(comma=separator, whitespace_after_arg=cst.SimpleWhitespace(""))
    return call.with_changes(args=[*args, new_arg])


def _argument_line_break(call: cst.Call, args: list[cst.Arg]) -> cst.ParenthesizedWhitespace | None:
    """The line break (and indent) between arguments when every argument of the
    call starts a line of its own; None when the call has arguments sharing a line."""
    breaks = [a.comma.whitespace_after for a in args[:-1] if isinstance(a.comma, cst.Comma)]
    if len(args) == 1:
        breaks = [call.whitespace_before_args]
    if not breaks or not all(isinstance(b, cst.ParenthesizedWhitespace) for b in breaks):
        return None
    line_break = breaks[-1]
    assert isinstance(line_break, cst.ParenthesizedWhitespace)
    return line_break.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
