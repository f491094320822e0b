"""Jupyter notebooks (``.ipynb``): linted cell by cell, fixed in place.

A notebook runs its code cells in order, in one namespace, so the rules see them as
one Python text: the code cells joined, each after a marker comment line
(``# losslint-cell 3 <nonce>``). Project-wide reasoning (a dataset built in cell 2,
its DataLoader in cell 5) works as in a script. A finding's virtual line is
mapped back through the markers to a cell (1-based, counting every cell of the
notebook, markdown included: cell N is ``cells[N-1]`` in the JSON) and a line in
that cell.

IPython syntax is kept out of the parser's way, never interpreted:
- a cell that parses as Python is taken verbatim;
- otherwise each line magic (``%time x``), shell escape (``!pip``, ``files = !ls``),
  help query (``obj?``) and each of its backslash continuation lines becomes a
  ``pass`` placeholder with the indentation of the magic's first line (one line
  for one line, so line numbers stay right), remembered so that fixes write back
  the original line;
- a cell magic (``%%bash``, ``%%html``, ...) skips its cell, except the magics
  whose body is Python (``%%time``, ``%%timeit``, ``%%capture``, ...), where only
  the magic line becomes a placeholder;
- a cell that still does not parse is reported (LL003, at its cell and line) and
  left out; the other cells are linted.

Fixes are applied to the joined text and split back at the markers into the cells'
``source``; outputs, metadata, the other cells and the file's JSON layout stay as
they were, and the file is replaced atomically. Markers or placeholders that a fix
lost refuse the write (the notebook is left untouched).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from losslint.findings import Finding, Severity, Span

NOTEBOOK_SUFFIX = ".ipynb"

# Cell magics whose body is Python that IPython runs as such.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy", "autoreload"}
_ASSIGNED_ESCAPE = re.compile(r"^[\w.\s,\[\]()*]+=\s*[!%]")  # files = !ls ; out = %sx ls


class NotebookError(Exception):
    """Not a notebook losslint can read (invalid JSON, no cells list)."""


class NotebookWriteError(OSError):
    """The fixed text could not be split back into the notebook's cells."""


@dataclass
class CellProblem:
    cell: int
    line: int
    column: int
    message: str


@dataclass
class NotebookSource:
    """A notebook turned into Python text. Plain data, so it can be cached or sent to
    another process with its SourceFile."""

    raw: str  # the file's JSON text, for writing back
    python: str  # the joined code cells, with markers and placeholders
    nonce: str
    cells: list[int]  # 1-based numbers of the cells in ``python``, in order
    placeholders: dict[str, str] = field(default_factory=dict)  # id -> original line
    problems: list[CellProblem] = field(default_factory=list)

    @property
    def marker_prefix(self) -> str:
        return f"# losslint-cell {self.nonce} "


def is_notebook(path: Path) -> bool:
    return path.suffix == NOTEBOOK_SUFFIX


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _parses(text: str) -> SyntaxError | None:
    try:
        ast.parse(text)
    except SyntaxError as error:
        return error
    except (ValueError, RecursionError, MemoryError) as error:
        return SyntaxError(str(error) or type(error).__name__)
    return None


def _is_ipython_line(stripped: str) -> bool:
    if not stripped or stripped.startswith("#"):
        return False
    if stripped[0] in "%!?":
        return True
    if _ASSIGNED_ESCAPE.match(stripped):
        return True
    return stripped.split("#", 1)[0].rstrip().endswith("?")  # obj? and obj?? (help)


def load(data: bytes) -> NotebookSource:
    try:
        raw = data.decode("utf-8")
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotebookError(f"invalid notebook JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError("no list of cells: not a Jupyter notebook (nbformat 4)")
    nonce = hashlib.sha1(data).hexdigest()[:10]
    notebook = NotebookSource(raw=raw, python="", nonce=nonce, cells=[])
    language = (document.get("metadata") or {}).get("language_info", {}).get("name") or (
        (document.get("metadata") or {}).get("kernelspec", {}).get("language")
    )
    if language and str(language).lower() not in ("python", "python3"):
        return notebook  # an R or Julia notebook: nothing for us
    parts: list[str] = []
    for number, cell in enumerate(document["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        text = _python_of_cell(notebook, number, _cell_text(cell))
        if text is None:
            continue
        notebook.cells.append(number)
        parts.append(f"{notebook.marker_prefix}{number}\n{text}")
    notebook.python = "".join(parts)
    return notebook


def _python_of_cell(notebook: NotebookSource, number: int, text: str) -> str | None:
    """The cell as Python the parser accepts, or None to leave the cell out."""
    if not text.strip():
        return None
    if not text.endswith("\n"):
        text += "\n"
    if _parses(text) is None:
        return text
    lines = text.splitlines(keepends=True)
    first = lines[0].lstrip()
    if first.startswith("%%"):
        magic = first[2:].split(None, 1)[0] if first[2:].strip() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None  # %%bash, %%html, %%writefile...: not Python that runs here
    out = []
    continued = False
    indent = ""
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if continued or _is_ipython_line(stripped) or (index == 0 and stripped.startswith("%%")):
            if not continued:
                # A continuation line (`!python train.py \` then `    --lr 0.1`) is part of
                # the same shell or magic line: its placeholder keeps that line's indentation.
                indent = line[: len(line) - len(stripped)]
            continued = line.rstrip("\r\n").endswith("\\")
            key = str(len(notebook.placeholders))
            notebook.placeholders[key] = line
            out.append(f"{indent}pass  # losslint-ipython {notebook.nonce} {key}\n")
        else:
            out.append(line)
    python = "".join(out)
    error = _parses(python)
    if error is None:
        return python
    if _top_level_await(python):
        return None  # IPython's autoawait: valid in a notebook, not in a module
    notebook.problems.append(CellProblem(number, error.lineno or 1, max((error.offset or 1) - 1, 0), error.msg or str(error)))
    return None


def _top_level_await(text: str) -> bool:
    try:
        compile(text, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except (SyntaxError, ValueError):
        return False
    return True


# -- locating findings ------------------------------------------------------------


def _markers(notebook: NotebookSource, text: str) -> list[tuple[int, int]]:
    """(virtual line of the marker, cell number), in order."""
    prefix = notebook.marker_prefix
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(prefix):
            cell = line[len(prefix) :].strip()
            if cell.isdigit():
                found.append((number, int(cell)))
    return found


def locate(findings: list[Finding], notebook: NotebookSource, text: str) -> list[Finding]:
    """Findings at virtual lines -> findings at (cell, line in the cell)."""
    markers = _markers(notebook, text)

    def where(line: int) -> tuple[int, int] | None:
        before = [(marker, cell) for marker, cell in markers if marker < line]
        return (before[-1][1], line - before[-1][0]) if before else None

    def in_cells(words: str) -> str:
        # Messages and links name other lines ("built at line 98"): the cell's, too.
        def cell_line(match: re.Match) -> str:
            found = where(int(match.group(1)))
            return f"cell {found[0]}, line {found[1]}" if found else match.group(0)

        return re.sub(r"\bline (\d+)\b", cell_line, words)

    located = []
    for finding in findings:
        found = where(finding.span.line)
        if finding.cell is not None or found is None:
            located.append(finding)
            continue
        cell, line = found
        span = finding.span
        related = []
        for place in finding.related_locations:  # a place in this notebook: its cell's line
            target = where(place.span.line) if place.path == finding.path and place.cell is None else None
            if target is not None:
                shift = place.span.line - target[1]
                place = replace(place, cell=target[0], span=replace(place.span, line=target[1], end_line=max(place.span.end_line - shift, 1)))
            related.append(place)
        located.append(
            replace(
                finding,
                cell=cell,
                span=Span(line, span.column, max(span.end_line - (span.line - line), 1), span.end_column),
                message=in_cells(finding.message),
                related_locations=tuple(related),
            )
        )
    return located


def problems(notebook: NotebookSource, path: str) -> list[Finding]:
    """LL003 for the code cells that do not parse even with IPython syntax set aside."""
    from losslint.rules.linter_problems import SyntaxErrorRule

    return [
        Finding(
            SyntaxErrorRule.code,
            SyntaxErrorRule.name,
            f"syntax error: {p.message} (cell left out of the analysis)",
            Severity.ERROR,
            path,
            Span(p.line, p.column, p.line, p.column),
            cell=p.cell,
        )
        for p in notebook.problems
    ]


# -- writing fixes back -----------------------------------------------------------


def split_cells(notebook: NotebookSource, text: str) -> dict[int, str]:
    """The fixed joined text -> each cell's new source (placeholders restored)."""
    markers = _markers(notebook, text)
    if not markers and not notebook.cells:
        return {}
    if [cell for _, cell in markers] != notebook.cells:
        raise NotebookWriteError("a fix moved the notebook's cell boundaries; notebook left untouched")
    lines = text.splitlines(keepends=True)
    placeholder = re.compile(rf"^\s*pass  # losslint-ipython {notebook.nonce} (\d+)\s*$")
    cells: dict[int, str] = {}
    restored: set[str] = set()
    bounds = [line for line, _ in markers] + [len(lines) + 1]
    for (start, cell), end in zip(markers, bounds[1:]):
        body = []
        for line in lines[start : end - 1]:
            match = placeholder.match(line)
            if match and match.group(1) in notebook.placeholders:
                restored.add(match.group(1))
                body.append(notebook.placeholders[match.group(1)])
            else:
                body.append(line)
        cells[cell] = "".join(body)
    if markers[0][0] > 1:  # an import a fix added above everything goes into the first cell
        cells[markers[0][1]] = "".join(lines[: markers[0][0] - 1]) + cells[markers[0][1]]
    if restored != set(notebook.placeholders):
        raise NotebookWriteError("a fix removed IPython lines (magics, shell escapes); notebook left untouched")
    return cells


def _set_source(cell: dict, text: str) -> None:
    original = _cell_text(cell)
    if not original.endswith("\n") and text.endswith("\n"):
        text = text[:-1]  # Jupyter stores a cell without its last newline
    if text == original:
        return
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text


def _dump_like(document: dict, raw: str) -> str:
    """Serialize the way the file was written (nbformat: indent 1, unicode kept), so
    the bytes outside the changed cells stay as they were."""
    trailer = raw[len(raw.rstrip()) :]
    original = json.loads(raw)
    for indent in (1, 2, 4, None):
        for ensure_ascii in (False, True):
            if json.dumps(original, indent=indent, ensure_ascii=ensure_ascii) + trailer == raw:
                return json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + trailer
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def fixed_notebook(notebook: NotebookSource, text: str) -> str:
    document = json.loads(notebook.raw)
    for number, source in split_cells(notebook, text).items():
        _set_source(document["cells"][number - 1], source)
    return _dump_like(document, notebook.raw)


def write(path: Path, notebook: NotebookSource, text: str) -> None:
    from losslint.fixes import write_atomic

    write_atomic(path, fixed_notebook(notebook, text), "utf-8")


def unified_diff(display: str, notebook: NotebookSource, before: str, after: str) -> str:
    """The fixes as a diff per changed cell (``a/nb.ipynb:cell 3``)."""
    try:
        old, new = split_cells(notebook, before), split_cells(notebook, after)
    except NotebookWriteError:  # --fix would refuse it; show the joined text's diff
        return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{display}", f"b/{display}"))
    chunks = []
    for cell in notebook.cells:
        if old[cell] != new[cell]:
            name = f"{display}:cell {cell}"
            chunks.append(
                "".join(
                    difflib.unified_diff(
                        old[cell].splitlines(keepends=True), new[cell].splitlines(keepends=True), f"a/{name}", f"b/{name}"
                    )
                )
            )
    return "".join(chunks)


@lru_cache(maxsize=32)
def _cells_of_file(path: str, mtime: float) -> tuple[tuple[str, ...], ...]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return tuple(tuple(_cell_text(c).splitlines()) if isinstance(c, dict) else () for c in document.get("cells", []))


def cell_lines(path: str, cell: int) -> list[str] | None:
    """A cell's source lines, for showing a finding's line (text output)."""
    try:
        cells = _cells_of_file(path, Path(path).stat().st_mtime)
        return list(cells[cell - 1])
    except (OSError, ValueError, IndexError, AttributeError):
        return None
