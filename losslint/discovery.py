"""Which files to lint: the given paths (default ``.``), walked without following
symlinked directories (no loops), minus the default and configured excludes and,
as ruff does, whatever ``.gitignore`` files (and ``.git/info/exclude``) ignore.
A file named explicitly on the command line is always linted, unless
``force-exclude`` is set (what pre-commit needs: it names every staged file), in
which case the exclude patterns apply to it and to the directories it is in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from losslint.config import Settings, relative_posix

if TYPE_CHECKING:
    import pathspec

PYTHON_SUFFIXES = (".py", ".pyi", ".ipynb")  # notebooks: see losslint.notebooks


@dataclass(frozen=True)
class Target:
    path: Path  # as the filesystem knows it
    display: str  # relative to the working directory when under it
    missing: bool = False  # named on the command line but not there


def _relative_display(path: Path) -> str:
    try:
        return relative_posix(os.path.abspath(path), os.getcwd())
    except ValueError:
        return path.as_posix()


display_path = _relative_display  # how a path is shown: relative to the working directory when under it


class _GitIgnores:
    """The .gitignore files that apply to a directory: its own and its parents' up
    to the repository root."""

    def __init__(self) -> None:
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        # directory -> the (directory, spec) pairs that apply to its entries, itself
        # up to the repository root: computed once per directory, not per file.
        self._chains: dict[str, list[tuple[Path, pathspec.GitIgnoreSpec]]] = {}

    def _spec(self, directory: Path) -> pathspec.GitIgnoreSpec | None:
        if directory not in self._specs:
            lines: list[str] = []
            for name in (".gitignore", ".ignore"):
                try:
                    lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    pass
            try:
                lines += (directory / ".git" / "info" / "exclude").read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                pass
            if lines:
                import pathspec  # (only where an ignore file is: a start-up cost otherwise)

                self._specs[directory] = pathspec.GitIgnoreSpec.from_lines(lines)
            else:
                self._specs[directory] = None
        return self._specs[directory]

    def _chain(self, parent: str) -> list[tuple[Path, pathspec.GitIgnoreSpec]]:
        chain = self._chains.get(parent)
        if chain is None:
            chain = []
            start = Path(parent)
            for directory in (start, *start.parents):
                spec = self._spec(directory)
                if spec is not None:
                    chain.append((directory, spec))
                if (directory / ".git").exists():
                    break  # the repository root: parents' ignore files do not apply
            self._chains[parent] = chain
        return chain

    def ignored(self, path: Path, is_dir: bool) -> bool:
        absolute = os.path.abspath(path)
        chain = self._chain(os.path.dirname(absolute))
        if not chain:
            return False
        path = Path(absolute)
        for directory, spec in chain:
            relative = path.relative_to(directory).as_posix() + ("/" if is_dir else "")
            if spec.match_file(relative):
                return True
        return False


def discover(paths: list[Path], settings: Settings) -> list[Target]:
    targets: dict[str, Target] = {}
    gitignores = _GitIgnores() if settings.respect_gitignore else None
    for given in paths or [Path(".")]:
        if settings.force_exclude and settings.excluded_with_parents(given):
            continue
        if not given.exists() and not given.is_symlink():
            targets[str(given)] = Target(given, given.as_posix(), missing=True)
            continue
        if not given.is_dir() or given.suffix in PYTHON_SUFFIXES:
            targets[_relative_display(given)] = Target(given, _relative_display(given))
            continue
        for root, dirs, files in os.walk(given, followlinks=False):
            root_path = Path(root)
            kept = []
            for name in sorted(dirs):
                sub = root_path / name
                if settings.excluded(sub) or (gitignores and gitignores.ignored(sub, is_dir=True)):
                    continue
                if name.endswith(PYTHON_SUFFIXES):
                    # A directory with a Python file's name: report it (LL001) rather
                    # than silently walking or skipping it.
                    display = _relative_display(sub)
                    targets.setdefault(display, Target(sub, display))
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in files:
                if not name.endswith(PYTHON_SUFFIXES):
                    continue
                file = root_path / name
                if settings.excluded(file) or (gitignores and gitignores.ignored(file, is_dir=False)):
                    continue
                display = _relative_display(file)
                targets.setdefault(display, Target(file, display))
    return [targets[k] for k in sorted(targets)]
