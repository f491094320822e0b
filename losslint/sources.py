"""Sources: a file's bytes read once, decoded, and parsed once with ``ast`` (a
notebook: its code cells as one module). What cannot be read, decoded or parsed
becomes the file's LL0xx finding (``SourceFile.problem``), never an exception:
the run goes on with the other files."""

from __future__ import annotations

import ast
import io
import os
import stat
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losslint import notebooks
from losslint.config import Settings
from losslint.discovery import Target
from losslint.findings import Finding, Span
from losslint.rules import linter_problems
from losslint.rules.base import Rule

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows


@dataclass
class SourceFile:
    target: Target
    module: str
    text: str | None = None
    tree: ast.Module | None = None
    encoding: str = "utf-8"
    problem: Finding | None = None  # LL0xx: why it could not be read or parsed
    notebook: notebooks.NotebookSource | None = None  # a .ipynb: its cells as one Python text
    triggered: frozenset[str] | None = None  # triggered_codes(text), once computed
    facts_crash: Finding | None = None  # LL005: a fact collector crashed on this file
    config: Any = None  # a config file code reads (analysis.configs.ConfigDocument): no tree

    @property
    def is_package(self) -> bool:
        """A package's ``__init__.py``: its relative imports start at itself."""
        return self.target.path.name == "__init__.py"


def engine_finding(rule: type[Rule], path: str, message: str, line: int = 1, column: int = 0) -> Finding:
    return Finding(rule.code, rule.name, message, rule.severity, path, Span(line, column, line, column))


def module_name(path: Path, packages: dict[Path, list[str]] | None = None) -> str:
    """Dotted module name, walking up through packages (directories with __init__.py).
    ``packages``: a memo of directory -> its package parts, for a run over many files."""
    parts = [path.stem] if path.stem != "__init__" else []
    return ".".join(_package_parts(path.parent, packages) + parts) or path.stem


def _package_parts(directory: Path, packages: dict[Path, list[str]] | None) -> list[str]:
    if packages is not None and directory in packages:
        return packages[directory]
    parts: list[str] = []
    if (directory / "__init__.py").is_file() and directory.name:
        parts = [directory.name]
        if directory.parent != directory:
            parts = _package_parts(directory.parent, packages) + parts
    if packages is not None:
        packages[directory] = parts
    return parts


def read_source(target: Target, settings: Settings) -> SourceFile:
    source, data = read_bytes(target, settings)
    if data is None:
        return source
    return source_from_bytes(source, data)


def source_from_bytes(source: SourceFile, data: bytes) -> SourceFile:
    """Decode and parse a file's bytes (a notebook: its code cells)."""
    if notebooks.is_notebook(source.target.path):
        return parse_notebook(source, data)
    if source.target.path.suffix.lower() in CONFIG_SUFFIXES:
        return parse_config_source(source, data)
    return parse_source(source, data)


CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml")  # (analysis.configs.CONFIG_SUFFIXES)


def parse_config_source(source: SourceFile, data: bytes) -> SourceFile:
    """A config file that Python code reads: its document (keys with positions), no
    ``ast``. One that cannot be read is simply not judged (it may be a template or
    another tool's file): no finding of its own."""
    from losslint.analysis.configs import file_key, load_config

    try:
        source.text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return source
    source.config = load_config(file_key(str(source.target.path)), source.text)
    return source


def read_bytes(target: Target, settings: Settings, packages: dict[Path, list[str]] | None = None) -> tuple[SourceFile, bytes | None]:
    """A file's bytes, or (with None) the SourceFile that says why they cannot be read.
    ``packages``: see module_name."""
    display = target.display
    source = SourceFile(target, module_name(target.path, packages))
    if target.missing:
        source.problem = engine_finding(linter_problems.UnreadableFile, display, f"{display}: no such file or directory")
        return source, None
    try:
        # One open and one fstat: a warm cached run reads every file, so syscalls count.
        # O_NONBLOCK: a FIFO named *.py must not hang the run (it is reported below).
        descriptor = os.open(target.path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except FileNotFoundError:
        kind = "a broken symbolic link" if target.path.is_symlink() else "gone (deleted while linting?)"
        source.problem = engine_finding(linter_problems.UnreadableFile, display, f"{display} is {kind}")
        return source, None
    except OSError as error:
        if target.path.is_dir():  # (Windows cannot open a directory)
            source.problem = engine_finding(linter_problems.UnreadableFile, display, f"{display} is a directory, not a Python file")
        else:
            reason = error.strerror or str(error)
            source.problem = engine_finding(linter_problems.UnreadableFile, display, f"cannot read {display}: {reason}")
        return source, None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            source.problem = engine_finding(linter_problems.UnreadableFile, display, f"{display} is a directory, not a Python file")
            return source, None
        if not stat.S_ISREG(status.st_mode):
            source.problem = engine_finding(
                linter_problems.UnreadableFile, display, f"{display} is not a regular file (a pipe, socket or device): not linted"
            )
            return source, None
        if status.st_size > settings.max_file_size:
            source.problem = engine_finding(
                linter_problems.UnreadableFile,
                display,
                f"{display} is {status.st_size / 1e6:.1f} MB, over max-file-size ({settings.max_file_size / 1e6:.1f} MB): not linted",
            )
            return source, None
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        source.problem = engine_finding(linter_problems.UnreadableFile, display, f"cannot read {display}: {reason}")
        return source, None
    finally:
        os.close(descriptor)
    return source, data


def parse_notebook(source: SourceFile, data: bytes) -> SourceFile:
    """A Jupyter notebook: its code cells joined into one Python text (magics set
    aside), parsed like a file; findings are located back in cells by ``check``."""
    try:
        source.notebook = notebooks.load(data)
    except notebooks.NotebookError as error:
        source.problem = engine_finding(linter_problems.SyntaxErrorRule, source.target.display, f"{source.target.display}: {error}")
        return source
    return parse_source(source, source.notebook.python.encode("utf-8"))


def parse_source(source: SourceFile, data: bytes) -> SourceFile:
    display = source.target.display
    if b"\x00" in data:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        source.problem = engine_finding(
            linter_problems.UndecodableFile, display, f"{display} contains a NUL byte (line {line}): a binary file, not Python source", line
        )
        return source
    try:
        source.encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(source.encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        detail = error.reason if isinstance(error, UnicodeDecodeError) else str(error)
        line = 1
        if isinstance(error, UnicodeDecodeError):
            line = data.count(b"\n", 0, error.start) + 1
        source.problem = engine_finding(linter_problems.UndecodableFile, display, f"{display} cannot be decoded: {detail}", line)
        return source
    if text.startswith("\ufeff"):
        text = text[1:]
    source.text = text
    try:
        with warnings.catch_warnings():  # invalid escape sequences and the like: not ours to print
            warnings.simplefilter("ignore")
            source.tree = ast.parse(text, filename=display)
    except SyntaxError as error:
        line = error.lineno or 1
        column = max((error.offset or 1) - 1, 0)
        source.problem = engine_finding(linter_problems.SyntaxErrorRule, display, f"syntax error: {error.msg}", line, column)
    except (RecursionError, MemoryError, ValueError) as error:
        reason = "nested too deeply to parse" if isinstance(error, RecursionError) else str(error) or type(error).__name__
        source.problem = engine_finding(linter_problems.SyntaxErrorRule, display, f"cannot parse {display}: {reason}")
    return source


def encoded(text: str) -> bytes:
    """Already decoded text (an editor's buffer, a test's string) as bytes in its
    declared encoding (a ``# -*- coding`` cookie), which is how parse_source will
    decode them."""
    data = text.encode("utf-8")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return text.encode(encoding)
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return data
