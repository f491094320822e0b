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
import io
import os
import re
import signal
import stat
import tempfile
import threading
import tokenize
import warnings
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

    def __init__(self, edits: Sequence[NodeEdit | InsertBefore], line_shift: int = 0) -> None:
        """``line_shift``: how many lines above the parsed code the file's line 1
        is (the code is a snippet of the file: its line 1 is the file's line_shift + 1)."""
        super().__init__()
        self.node_edits: dict[tuple[int, int, int, int], list[NodeEdit]] = {}
        self.inserts: dict[tuple[int, int], list[str]] = {}
        for edit in edits:
            line = edit.span.line - line_shift
            if isinstance(edit, NodeEdit):
                key = (line, edit.span.column, edit.span.end_line - line_shift, edit.span.end_column)
                self.node_edits.setdefault(key, []).append(edit)
            else:
                self.inserts.setdefault((line, edit.span.column), []).extend(edit.statements)
        self.applied: set[int] = set()

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        result = updated_node
        if self.node_edits:
            position = self.get_metadata(PositionProvider, original_node, None)
            if position is not None:
                key = (position.start.line, position.start.column, position.end.line, position.end.column)
                for edit in self.node_edits.get(key, ()):
                    # The innermost node of the wanted type at that span takes the edit, once.
                    if id(edit) in self.applied or not isinstance(original_node, _node_class(edit)):
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


def _node_class(edit: NodeEdit) -> type:
    """The libcst class an edit names ("Call": rules name it so as not to import libcst)."""
    return getattr(cst, edit.node_type) if isinstance(edit.node_type, str) else edit.node_type


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
    """Each fix applied alone to ``source``, as line edits. A fix that cannot be
    applied has none. A fix is diffed on the top-level statements its edits fall
    in (a file of many fixes costs its size once, not once per fix); libcst parses
    only the innermost statements the edits change (``_Snippets``), and the whole
    module only for a fix that needs it: an import the file lacks, or code whose
    statement boundaries or layout the snippets cannot reproduce exactly."""
    snippets = _Snippets.of(source)
    whole: _WholeModule | None = None
    result = []
    for fix in fixes:
        edits = snippets.line_edits(fix) if snippets is not None else None
        if edits is None:
            whole = whole or _WholeModule(source)
            edits = whole.line_edits(fix)
        result.append(edits)
    return result


class _WholeModule:
    """The file parsed by libcst once, its fixes applied to their top-level
    statements (``_TopLevel``) or, failing that, to the whole module."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.wrapper: MetadataWrapper | None = _wrapped(source)
        except Exception:  # (the file's LL004 says why when it is fixed)
            self.wrapper = None
        self.statements = _TopLevel(self.wrapper, source) if self.wrapper is not None else None

    def line_edits(self, fix: Fix) -> tuple[LineEdit, ...]:
        if self.wrapper is None or self.statements is None:
            return ()
        try:
            edits = self.statements.line_edits(fix)
            return edits if edits is not None else tuple(text_edits(self.source, _apply(self.wrapper, [fix])))
        except Exception:
            return ()


# Line breaks other than "\n" (str.splitlines breaks at these, the ast and libcst
# at some of them): a file with one takes the whole-module path.
_UNUSUAL_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_COMPOUND = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
    ast.AsyncFunctionDef, ast.ClassDef, ast.Match,
) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())


class _NotHere(Exception):
    """The snippets cannot reproduce this fix's edits exactly: the whole module must."""


class _Snippets:
    """A fix applied to the innermost statements its edits change, each parsed
    alone by libcst from the file's lines (found on the ``ast``), spliced back into
    its top-level statements and diffed there as ``_TopLevel`` diffs them: the
    same line edits, without libcst parsing the whole file, computing positions
    for all of it and regenerating it.

    The edits are the same because: a snippet is parsed in its indentation in the
    file (inside ``if 1:``, after an ``if 1:`` block that gives libcst the file's
    default indent, which new blocks take); its lines hold nothing but its
    statement; and the blank and comment lines around a statement are taken where
    libcst puts them (before a statement, after the colon or the previous
    statement; where a line indented deeper may belong to the block before, the
    whole module decides)."""

    @classmethod
    def of(cls, source: str) -> _Snippets | None:
        if source.startswith("\ufeff") or _UNUSUAL_BREAKS.search(source):
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return None
        return cls(source, tree) if tree.body else None

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source, self.tree = source, tree
        # Without a final newline, libcst's code of the module lacks it too, and
        # _TopLevel leaves every fix to the whole module: diffed on the whole file.
        self.final_newline = source.endswith("\n")
        self.lines = (source if self.final_newline else source + "\n").split("\n")  # self.lines[n - 1] is line n
        self.groups = _groups(tree)
        self.group_firsts = [_first_line(group[0]) for group in self.groups]
        self._default_indent: str | None = None
        self._present: set[str] | None = None

    def line_edits(self, fix: Fix) -> tuple[LineEdit, ...] | None:
        """The fix's line edits, or None when the whole module must compute them."""
        try:
            return self._line_edits(fix)
        except Exception:  # _NotHere, or anything unforeseen: the whole module decides
            return None

    def _line_edits(self, fix: Fix) -> tuple[LineEdit, ...]:
        if not fix.edits:
            raise _NotHere()
        # The top-level statements the fix touches, as _TopLevel finds them.
        touched = []
        for edit in fix.edits:
            ends = (edit.span.line, edit.span.end_line) if isinstance(edit, NodeEdit) else (edit.span.line,)
            touched.extend(self._group_at(line) for line in ends)
        first, last = min(touched), max(touched)
        start = self.group_firsts[0] if first == 0 else self._group_last(first - 1) + 1
        end = self._group_last(last)
        if first > 0:
            self._check_no_footer(first - 1)
        self._check_no_footer(last)
        old = "".join(line + "\n" for line in self.lines[start - 1 : end])
        # Each edit's snippet; snippets inside another are merged into it.
        regions: dict[tuple[int, int], tuple[str, list[NodeEdit | InsertBefore]]] = {}
        for edit in fix.edits:
            region_start, region_end, indent = self._region(edit)
            regions.setdefault((region_start, region_end), (indent, []))[1].append(edit)
        spans = sorted(regions, key=lambda span: (span[0], -span[1]))  # (an outer one before those inside it)
        merged: list[tuple[int, int]] = []
        for span in spans:
            if merged and span[0] <= merged[-1][1]:
                outer = merged[-1]
                if span[1] > outer[1]:
                    raise _NotHere()  # overlapping, neither inside the other
                regions[outer][1].extend(regions.pop(span)[1])
            else:
                merged.append(span)
        regenerated = [(first_line, last_line, self._regenerate(first_line, last_line, *regions[(first_line, last_line)])) for first_line, last_line in merged]
        if not self.final_newline or (fix.imports and ("import" in old or not self._imports_present(fix.imports))):
            # As _apply does on the whole module (add_imports reads all of it): diffed on the whole file.
            fixed = self._spliced(1, len(self.lines) - 1, regenerated)
            if fix.imports:
                fixed = self._with_imports(fixed, fix.imports)
            return tuple(text_edits(self.source, fixed if self.final_newline else fixed[:-1]))
        offset = start - 1
        return tuple(
            LineEdit(edit.line + offset, edit.end_line + offset, edit.content)
            for edit in text_edits(old, self._spliced(start, end, regenerated))
        )

    def _spliced(self, start: int, end: int, regenerated: list[tuple[int, int, str]]) -> str:
        """Lines start..end, each regenerated range replaced by its new text."""
        parts: list[str] = []
        at = start
        for first, last, text in regenerated:
            parts.extend(line + "\n" for line in self.lines[at - 1 : first - 1])
            parts.append(text)
            at = last + 1
        parts.extend(line + "\n" for line in self.lines[at - 1 : end])
        return "".join(parts)

    def _with_imports(self, fixed: str, imports: Sequence[str]) -> str:
        """``add_imports`` on the fixed file's text: each import not bound in it,
        after its first run of top-level import lines (or after its docstring, or
        before its first statement)."""
        tree = ast.parse(fixed)
        present: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                present |= _bound_names(node)
        wanted = [cst.parse_statement(text) for text in dict.fromkeys(imports) if not _bound_names(ast.parse(text).body[0]) <= present]
        if not wanted:
            return fixed
        groups = _groups(tree)
        first = groups[0][0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.JoinedStr):
            raise _NotHere()  # (libcst may call an f-string concatenation a docstring)
        insert_at = 0
        for index, group in enumerate(groups):
            if all(isinstance(statement, (ast.Import, ast.ImportFrom)) for statement in group):
                insert_at = index + 1
            elif index == 0 and _is_docstring_line(group):
                insert_at = 1
            elif insert_at:
                break
        if insert_at == 0:
            line = _first_line(first)
        else:
            line = max(statement.end_lineno or statement.lineno for statement in groups[insert_at - 1]) + 1
        lines = fixed.split("\n")
        return "".join(text + "\n" for text in lines[: line - 1]) + cst.Module(body=wanted).code + "\n".join(lines[line - 1 :])

    # -- the top-level statements --------------------------------------------------
    def _group_at(self, line: int) -> int:
        index = bisect.bisect_right(self.group_firsts, line) - 1
        if index < 0 or line > self._group_last(index):
            raise _NotHere()  # (a line between statements: _TopLevel would say so too)
        return index

    def _group_last(self, index: int) -> int:
        return max(statement.end_lineno or statement.lineno for statement in self.groups[index])

    def _check_no_footer(self, index: int) -> None:
        """The comment lines after a top-level statement belong to the next one
        (libcst gives a compound statement's block the indented ones)."""
        if not isinstance(self.groups[index][-1], _COMPOUND):
            return
        below = self.group_firsts[index + 1] - 1 if index + 1 < len(self.groups) else len(self.lines)
        if any(line[:1] in (" ", "\t") for line in self.lines[self._group_last(index) : below]):
            raise _NotHere()

    # -- the snippet an edit is applied to -----------------------------------------
    def _region(self, edit: NodeEdit | InsertBefore) -> tuple[int, int, str]:
        """The lines (first, last) the edit's snippet covers, and their indentation:
        for a node, the innermost statement around it (not the node itself: a
        statement removed takes its comments, and may leave its block to pass);
        for statements inserted, the statement they go before with the comment
        lines above it (the inserted ones go above those)."""
        span = edit.span
        if isinstance(edit, InsertBefore):
            chain = self._chain((span.line, span.column), (span.line, span.column))
            if not chain:
                raise _NotHere()
            statement, siblings, index, owner = chain[-1]
            if self._start(statement) != (span.line, span.column) or isinstance(statement, _COMPOUND):
                raise _NotHere()  # not a statement line of its own: the whole module decides
            if not self._owns_its_lines(statement):
                raise _NotHere()
            return self._comments_above(statement, siblings, index, owner), statement.end_lineno or statement.lineno, self._indent(statement.lineno)
        chain = self._chain((span.line, span.column), (span.end_line, span.end_column))
        for statement, _siblings, _index, _owner in reversed(chain):
            if (self._start(statement), self._end(statement)) == ((span.line, span.column), (span.end_line, span.end_column)):
                continue
            if self._owns_its_lines(statement) and not self._is_elif(statement):
                first = _first_line(statement)
                return first, statement.end_lineno or statement.lineno, self._indent(first)
        raise _NotHere()

    def _chain(self, start: tuple[int, int], end: tuple[int, int]) -> list[tuple[ast.stmt, list[ast.stmt], int, ast.AST | None]]:
        """The statements around the range, outermost first, each with its block,
        its index there and the block's owner (None at the top level)."""
        chain: list[tuple[ast.stmt, list[ast.stmt], int, ast.AST | None]] = []
        blocks: list[tuple[list[ast.stmt], ast.AST | None]] = [(self.tree.body, None)]
        while blocks:
            found = None
            for siblings, owner in blocks:
                for index, statement in enumerate(siblings):
                    if statement.lineno > end[0]:
                        break
                    if (statement.end_lineno or 0) >= start[0] and self._start(statement) <= start and end <= self._end(statement):
                        found = (statement, siblings, index, owner)
                        break
                if found:
                    break
            if found is None:
                break
            chain.append(found)
            blocks = list(_blocks(found[0]))
        return chain

    def _comments_above(self, statement: ast.stmt, siblings: list[ast.stmt], index: int, owner: ast.AST | None) -> int:
        """The first of the blank and comment lines libcst gives the statement (its
        ``leading_lines``); its own first line when there are none."""
        first = statement.lineno
        if owner is None:  # top level: what follows the previous statement; the first one's are the module's header
            group = self._group_at(first)
            if group == 0:
                return first
            above = self._group_last(group - 1) + 1
            # (an indented line there may be the previous block's footer, or the snippet's)
            if any(line[:1] in (" ", "\t") for line in self.lines[above - 1 : first - 1]):
                raise _NotHere()
            return above
        if index > 0:
            previous = siblings[index - 1]
            above = (previous.end_lineno or previous.lineno) + 1
            lines = self.lines[above - 1 : first - 1]
            if not all(_blank_or_comment(line) for line in lines):
                raise _NotHere()
            if isinstance(previous, _COMPOUND):
                # A line indented deeper than the statement may be the previous block's footer.
                width = len(self._indent(first))
                if any(len(line) - len(line.lstrip(" \t")) > width for line in lines):
                    raise _NotHere()
            return above
        # The first statement of a block: every blank and comment line between the
        # block's colon and it (the scan stops at the colon's line, which is code).
        floor = _last_line_before(owner, first)
        line = first
        while line - 1 > floor and _blank_or_comment(self.lines[line - 2]):
            line -= 1
        return line

    def _regenerate(self, first: int, last: int, indent: str, edits: list[NodeEdit | InsertBefore]) -> str:
        """Lines first..last with the edits applied, parsed and regenerated by libcst
        in the file's indentation and default indent."""
        prefix = f"if 1:\n{self.default_indent()}pass\n" + ("if 1:\n" if indent else "")
        code = prefix + "".join(line + "\n" for line in self.lines[first - 1 : last])
        wrapper = MetadataWrapper(cst.parse_module(code), unsafe_skip_copy=True)
        applier = _EditApplier(edits, line_shift=first - 1 - prefix.count("\n"))
        module = wrapper.visit(applier)
        missing = [e for e in edits if isinstance(e, NodeEdit) and id(e) not in applier.applied]
        if missing or applier.inserts:
            raise _NotHere()  # (the whole module says whether it is not found there either)
        new = module.code
        if not new.startswith(prefix):
            raise _NotHere()
        return new[len(prefix) :]

    def default_indent(self) -> str:
        """The indent libcst gives new blocks: the file's first indentation."""
        if self._default_indent is None:
            self._default_indent = "    "
            for token in tokenize.generate_tokens(io.StringIO(self.source).readline):
                if token.type == tokenize.INDENT:
                    self._default_indent = token.string
                    break
        return self._default_indent

    # -- positions -------------------------------------------------------------------
    def _column(self, line: int, offset: int) -> int:
        """The ast's UTF-8 byte offset as a character column (libcst's and Span's)."""
        text = self.lines[line - 1]
        return offset if text.isascii() else len(text.encode("utf-8")[:offset].decode("utf-8", "replace"))

    def _start(self, statement: ast.stmt) -> tuple[int, int]:
        return statement.lineno, self._column(statement.lineno, statement.col_offset)

    def _end(self, statement: ast.stmt) -> tuple[int, int]:
        line = statement.end_lineno or statement.lineno
        return line, self._column(line, statement.end_col_offset or 0)

    def _indent(self, line: int) -> str:
        text = self.lines[line - 1]
        return text[: len(text) - len(text.lstrip(" \t"))]

    def _owns_its_lines(self, statement: ast.stmt) -> bool:
        """Nothing but the statement (and a comment) on its lines; a decorated one's
        lines start at its first decorator."""
        first = _first_line(statement)
        if first != statement.lineno and not self.lines[first - 1].lstrip(" \t").startswith("@"):
            return False
        line, column = self._start(statement)
        if first == statement.lineno and self.lines[line - 1][:column].strip(" \t"):
            return False
        end_line, end_column = self._end(statement)
        after = self.lines[end_line - 1][end_column:].strip(" \t")
        return not after or after.startswith("#")

    def _is_elif(self, statement: ast.stmt) -> bool:
        return isinstance(statement, ast.If) and self.lines[statement.lineno - 1].lstrip(" \t").startswith("elif")

    def _imports_present(self, imports: Sequence[str]) -> bool:
        """Every import the fix needs is bound in the file already (add_imports adds none)."""
        if self._present is None:
            self._present = set()
            for node in ast.walk(self.tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._present |= _bound_names(node)
        return all(_bound_names(ast.parse(text).body[0]) <= self._present for text in imports)


def _groups(tree: ast.Module) -> list[list[ast.stmt]]:
    """The top-level statements as libcst has them: statements joined by ";" are one."""
    groups: list[list[ast.stmt]] = []
    for statement in tree.body:
        if groups and statement.lineno == groups[-1][-1].end_lineno:
            groups[-1].append(statement)
        else:
            groups.append([statement])
    return groups


def _first_line(statement: ast.stmt) -> int:
    """Where a statement's code starts: a decorated one's at its first decorator."""
    decorators = getattr(statement, "decorator_list", None)
    return min([statement.lineno, *(d.lineno for d in decorators)]) if decorators else statement.lineno


def _is_docstring_line(group: list[ast.stmt]) -> bool:
    """``_is_docstring`` on the ast: a line of one string expression."""
    return (
        len(group) == 1
        and isinstance(group[0], ast.Expr)
        and isinstance(group[0].value, ast.Constant)
        and isinstance(group[0].value.value, (str, bytes))
    )


def _blocks(statement: ast.stmt) -> Iterator[tuple[list[ast.stmt], ast.AST]]:
    """A statement's blocks, each with the node that owns it."""
    for field in ("body", "orelse", "finalbody"):
        block = getattr(statement, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block, statement
    for handler in getattr(statement, "handlers", ()):
        yield handler.body, handler
    for case in getattr(statement, "cases", ()):
        yield case.body, case


def _last_line_before(owner: ast.AST, line: int) -> int:
    """The last line, before ``line``, where a node of ``owner``'s (a block's
    header, or an earlier block) ends."""
    last = getattr(owner, "lineno", 0)
    for child in ast.iter_child_nodes(owner):
        end = getattr(child, "end_lineno", None)
        if end is None:
            last = max(last, _last_line_before(child, line))
        elif end < line:
            last = max(last, end)
    return last


def _blank_or_comment(line: str) -> bool:
    stripped = line.lstrip(" \t")
    return not stripped or stripped.startswith("#")


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
