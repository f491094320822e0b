"""What a rule reports: a finding at a precise location, and the fix that goes with it.

Rules detect on the stdlib ``ast`` (fast, exact positions); fixes are libcst
edits addressed by the position of the node they change, so the expensive
libcst parse happens only for files that are actually being fixed
(see ``losslint.fixes``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    import ast

    import libcst as cst
else:

    class _LibcstOnUse:
        """libcst, imported on the first use of one of its names. A rule builds its
        fix when it reports a finding, but the edit functions, which name libcst's
        nodes, run only when the fix is applied (fixes.py): a check imports no libcst."""

        def __getattr__(self, name: str):
            import libcst

            value = getattr(libcst, name)
            setattr(self, name, value)
            return value

    cst = _LibcstOnUse()  # what the rules' edit functions say ``cst.Call`` through


class Severity(str, enum.Enum):
    ERROR = "error"  # training crashes or is certainly wrong
    WARNING = "warning"  # a risk factor the code shows with the numbers to prove it
    INFO = "info"  # a risk factor whose size cannot be known statically

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


class Applicability(str, enum.Enum):
    SAFE = "safe"  # full batches train exactly as before
    UNSAFE = "unsafe"  # training dynamics change (a new clip, a rescaled loss)


@dataclass(frozen=True, order=True)
class Span:
    """A source range. Lines are 1-based; columns are 0-based character offsets
    (libcst's convention). Output formats show columns 1-based."""

    line: int
    column: int
    end_line: int
    end_column: int


# An edit replaces the innermost libcst node that is an instance of ``node_type``
# and spans exactly ``span``, with what ``replace`` returns for it (a node, a
# FlattenSentinel, or RemoveFromParent()). ``node_type`` names a libcst node class
# ("Call", or "BaseExpression" for any expression), resolved by fixes.py when the
# fix is applied (a class is accepted too).
CstResult = Union["cst.CSTNode", "cst.FlattenSentinel", "cst.RemovalSentinel"]


@dataclass(frozen=True)
class NodeEdit:
    span: Span
    node_type: Union[str, type]
    replace: Callable[["cst.CSTNode"], CstResult]


def set_keyword(call: "cst.Call", name: str, value_code: str) -> "cst.Call":
    """``fixes.set_keyword`` for the rules' edit functions: libcst and fixes.py are
    imported when the edit runs, not when the rule module is."""
    from losslint.fixes import set_keyword as set_now

    return set_now(call, name, value_code)


@dataclass(frozen=True)
class InsertBefore:
    """Insert whole statements (source text, no indentation) before the statement
    that starts at ``span``; libcst indents them like their new neighbour."""

    span: Span
    statements: tuple[str, ...]


@dataclass(frozen=True)
class LineEdit:
    """A fix as the text it changes: replace lines [line, end_line) (1-based) with
    ``content``. What the JSON and SARIF outputs show."""

    line: int
    end_line: int
    content: str

    def as_json(self) -> dict:
        return {
            "content": self.content,
            "location": {"line": self.line, "column": 1},
            "end_location": {"line": self.end_line, "column": 1},
        }


@dataclass(frozen=True)
class Fix:
    description: str  # imperative: "add drop_last=True"
    applicability: Applicability
    edits: tuple[Union[NodeEdit, InsertBefore], ...]
    # Import statements the edits need, e.g. "import torch"; added once, only if missing.
    imports: tuple[str, ...] = ()
    # The fix applied alone, as line edits of the file, where they were computed
    # (``FileChecker.with_line_edits``, for JSON/SARIF); None: not computed.
    line_edits: tuple[LineEdit, ...] | None = None


@dataclass(frozen=True)
class RelatedLocation:
    """A place in the code that is part of a finding's evidence, and what it is:
    where the optimizer is built, where N = 50000 comes from, where the loss is
    defined, a linked finding of the same chain. Every output shows them (JSON
    ``related_locations``, SARIF ``relatedLocations``, the language server's
    ``relatedInformation``, a line each in the text output).

    How a rule makes one:

    - in the file it judges: ``ctx.related(node, "the optimizer is built here")``
      (exact character columns), passed as ``ctx.finding(..., related=[...])``;
    - in another file: ``RelatedLocation.of(path, node, "N = 50000 comes from here")``
      with that file's ``ast`` node, or ``RelatedLocation.at(path, line, "...")``
      where a fact kept only the line. ``path`` is a display path (a project
      file's key goes through ``losslint.discovery.display_path``).

    ``message`` says what the place is, in a few words, without repeating the
    location. ``span`` follows ``Span``'s conventions (1-based lines, 0-based
    columns); ``cell`` is set for a place in a notebook (then the span's lines
    are the cell's), as on ``Finding``."""

    path: str
    span: Span
    message: str
    cell: int | None = None

    @classmethod
    def of(cls, path: str, node: "ast.AST", message: str) -> "RelatedLocation":
        """A node of another file. Columns are ``ast``'s UTF-8 byte offsets (the
        other file's text is not at hand): exact on ASCII lines."""
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0)
        end_line = getattr(node, "end_lineno", None) or line
        end_column = getattr(node, "end_col_offset", None)
        return cls(path, Span(line, column, end_line, column if end_column is None else end_column), message)

    @classmethod
    def at(cls, path: str, line: int, message: str, column: int = 0) -> "RelatedLocation":
        """A line (and column, 0-based) of a file, where no node is at hand."""
        return cls(path, Span(line, column, line, column), message)


@dataclass
class Finding:
    code: str
    name: str
    message: str
    severity: Severity
    path: str  # as reached from the command line's paths
    span: Span
    fix: Fix | None = None
    # In a Jupyter notebook: the cell (1-based, every cell counted); the span's lines
    # are then lines of that cell (see losslint.notebooks).
    cell: int | None = None
    # Dotted modules whose training this finding bears on besides its own file (a
    # loss defined here and compiled in train.py): linkers treat it as on their path.
    training_modules: tuple[str, ...] = ()
    # The evidence that lies elsewhere (see RelatedLocation), in the order shown.
    related_locations: tuple[RelatedLocation, ...] = ()

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.span.line, self.span.column, self.code)
