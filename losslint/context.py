"""Everything a rule may ask about the file it judges, computed once and lazily.

One ``FileContext`` per file, shared by all rules: the source, its ``ast`` tree
(parsed once by the engine), an import table, a parent map, a value resolver
and the project-wide facts. Nothing here runs libcst: that is left to fixes.
"""

from __future__ import annotations

import ast
import re
import weakref
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Iterator, TypeVar

from losslint.analysis.names import ImportTable
from losslint.analysis.walk import tree_index
from losslint.findings import Finding, Fix, RelatedLocation, Span

if TYPE_CHECKING:
    from losslint.analysis.values import ValueResolver
    from losslint.config import Settings
    from losslint.project import ProjectFacts
    from losslint.rules.base import Rule

N = TypeVar("N", bound=ast.AST)
# Node classes without subclasses (and not the deprecated aliases like ast.Num,
# whose isinstance is special): isinstance() on them is a class lookup.
_LEAF_NODE_TYPES = frozenset(
    cls
    for cls in vars(ast).values()
    if isinstance(cls, type) and type(cls) is type and issubclass(cls, ast.AST) and not cls.__subclasses__()
)
_LINE_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_TEST_FOLDERS = frozenset({"test_utils", "testing_utils", "testing"})


_last_tree: tuple[ast.AST | None, dict] = (None, {})


def _tree_shared(tree: ast.AST) -> dict:
    """What depends on the tree alone, kept for the last tree: the fact collectors
    and the rules of one file each make a FileContext of it (as ``tree_index``)."""
    global _last_tree
    if _last_tree[0] is not tree:
        _last_tree = (tree, {})
    return _last_tree[1]


def dotted_tail(node: ast.expr) -> str | None:
    """The last name of a class base: ``TestCase`` of ``unittest.TestCase``."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None


@dataclass
class FileContext:
    path: str  # display path
    module: str  # dotted module name within the project
    source: str
    tree: ast.Module
    project: "ProjectFacts"
    settings: "Settings"
    file: str = ""  # the file as the filesystem knows it: its key in the project facts

    def __post_init__(self) -> None:
        _made[id(self)] = self

    @cached_property
    def lines(self) -> list[str]:
        """Source lines as Python numbers them (\n, \r\n or \r; not str.splitlines,
        which also splits at form feeds and other separators)."""
        return [line.rstrip("\r\n") for line in self._lines_with_ends]

    @cached_property
    def _lines_with_ends(self) -> list[str]:
        return _LINE_END.findall(self.source) if self.source else []

    @cached_property
    def _line_bytes(self) -> list[bytes]:
        return [line.encode("utf-8") for line in self._lines_with_ends]

    @cached_property
    def imports(self) -> ImportTable:
        shared = _tree_shared(self.tree)
        table = shared.get(("imports", self.module))
        if table is None:
            table = shared[("imports", self.module)] = ImportTable(self.tree, self.module)
        return table

    @cached_property
    def parents(self) -> dict[ast.AST, ast.AST]:
        return tree_index(self.tree)[1]

    @cached_property
    def values(self) -> "ValueResolver":
        from losslint.analysis.values import ValueResolver

        return ValueResolver(self)

    @cached_property
    def nodes(self) -> list[ast.AST]:
        """Every node once, in ``ast.walk`` order; rules filter this list instead of
        walking the tree again each. (Shared with the fact collectors: do not modify.)"""
        return tree_index(self.tree)[0]

    @cached_property
    def _by_type(self) -> dict[type, list[ast.AST]]:
        shared = _tree_shared(self.tree)
        by_type = shared.get("by_type")
        if by_type is None:
            by_type = shared["by_type"] = {}
            for node in self.nodes:
                by_type.setdefault(node.__class__, []).append(node)
        return by_type

    def nodes_of(self, *types: type[N]) -> Iterator[N]:
        if len(types) == 1 and types[0] in _LEAF_NODE_TYPES:  # the common case: one concrete node type
            return iter(self._by_type.get(types[0], ()))  # type: ignore[arg-type]
        return (n for n in self.nodes if isinstance(n, types))  # type: ignore[misc]

    @cached_property
    def memo(self) -> dict:
        """Answers of the analysis that several rules ask again for the same nodes
        (keyed by the asking function and the nodes' ids): one file's lifetime."""
        return {}

    @cached_property
    def is_test_file(self) -> bool:
        """pytest/unittest files (``test_*.py``, ``*_test.py``, ``conftest.py``): they
        train toy models on toy data to check code, not models anyone keeps."""
        folder, _, name = self.path.replace("\\", "/").rpartition("/")
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            return True
        # A package's test helpers (accelerate's test_utils/training.py: mocked loaders
        # for its test suite), and modules of unittest classes run by path
        # (keras' integration_tests/basic_full_flow.py).
        if _TEST_FOLDERS.intersection(folder.split("/")):
            return True
        return any(
            isinstance(node, ast.ClassDef)
            and any((dotted_tail(base) or "").endswith("TestCase") for base in node.bases)
            and any(isinstance(m, ast.FunctionDef) and m.name.startswith("test") for m in node.body)
            for node in self.tree.body
        )

    def qualname(self, node: ast.expr) -> str | None:
        return self.imports.qualname(node)

    def enclosing(self, node: ast.AST, *types: type[N]) -> N | None:
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, types):
                return current  # type: ignore[return-value]
            current = self.parents.get(current)
        return None

    def enclosing_scope(self, node: ast.AST) -> ast.AST:
        """The function (or module) whose local names ``node`` sees first."""
        return self.enclosing(node, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda) or self.tree

    def text(self, node: ast.AST) -> str:
        """The node's source text (like ast.get_source_segment, without re-splitting
        the whole file on every call)."""
        line, end_line = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        col, end_col = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if line is None or end_line is None or col is None or end_col is None or end_line > len(self._line_bytes):
            return ""
        if line == end_line:
            return self._line_bytes[line - 1][col:end_col].decode("utf-8", errors="replace")
        parts = [self._line_bytes[line - 1][col:], *self._line_bytes[line:end_line - 1], self._line_bytes[end_line - 1][:end_col]]
        return b"".join(parts).decode("utf-8", errors="replace")

    def span(self, node: ast.AST) -> Span:
        """The node's span with character (not UTF-8 byte) columns, as libcst counts."""
        line, end_line = node.lineno, node.end_lineno or node.lineno
        return Span(line, self._char_column(line, node.col_offset), end_line, self._char_column(end_line, node.end_col_offset or 0))

    def _char_column(self, line: int, byte_offset: int) -> int:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return byte_offset
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))

    def related(self, node: ast.AST, message: str) -> RelatedLocation:
        """A place in this file that is part of a finding's evidence ("the optimizer
        is built here"), for ``finding(..., related=[...])``. For another file's
        node: ``RelatedLocation.of(path, node, message)``."""
        return RelatedLocation(self.path, self.span(node), message)

    def finding(
        self,
        rule: "Rule",
        node: ast.AST,
        message: str,
        fix: Fix | None = None,
        severity=None,
        related: Iterable[RelatedLocation] = (),
    ) -> Finding:
        return Finding(
            code=rule.code,
            name=rule.name,
            message=message,
            severity=severity or rule.severity,
            path=self.path,
            span=self.span(node),
            fix=fix,
            related_locations=tuple(related),
        )


# Every FileContext not yet released, by id (weakly: a context nobody keeps goes as usual).
_made: "weakref.WeakValueDictionary[int, FileContext]" = weakref.WeakValueDictionary()
_FIELDS = frozenset(f.name for f in fields(FileContext))


def release_contexts() -> None:
    """Drop what the FileContexts made so far have worked out (their cached
    analyses: a value resolver, scopes, memo entries refer back to their context,
    a cycle that keeps the file's tree alive until a full garbage collection). A
    worker calls it when a file is done, so that each tree is freed as its file
    ends instead of waiting, with a batch's millions of nodes, for the collection
    after the batch (on transformers: 13M objects, a fifth of the run's CPU)."""
    for ctx in list(_made.values()):
        for name in [name for name in vars(ctx) if name not in _FIELDS]:
            del vars(ctx)[name]
    _made.clear()
