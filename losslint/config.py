"""Configuration: ``[tool.losslint]`` in ``pyproject.toml`` (or a ``losslint.toml``
/ ``.losslint.toml`` with the same keys at top level), found by walking up from the
linted paths as ruff does, overridden by ``--config`` and command-line options.

Keys (kebab-case; snake_case accepted): select, extend-select, ignore,
per-file-ignores, exclude, extend-exclude, force-exclude, respect-gitignore, fix,
unsafe-fixes, clip-max-norm, dataset-sizes, max-file-size, lint-test-files.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", ".env", "env", ".tox", ".nox", ".eggs", "*.egg-info",
    "build", "dist", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".losslint_cache", ".ipynb_checkpoints", "site-packages", "__pypackages__",
)


class ConfigError(Exception):
    """A configuration the user must correct: a usage error (exit 2)."""


@dataclass
class Settings:
    select: list[str] | None = None  # None: the default rule set
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    extend_exclude: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    force_exclude: bool = False  # excludes apply to paths named on the command line too (pre-commit)
    fix: bool = False
    unsafe_fixes: bool = False
    clip_max_norm: float = 1.0
    dataset_sizes: dict[str, int] = field(default_factory=dict)
    max_file_size: int = 10 * 1024 * 1024  # bytes; bigger files become LL001
    lint_test_files: bool = False  # test_*.py, *_test.py, conftest.py: toy training, not judged
    config_path: Path | None = None  # where these settings came from

    @property
    def root(self) -> Path:
        """Directory that relative patterns in the configuration are relative to."""
        return self.config_path.parent if self.config_path else Path.cwd()

    def with_overrides(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def excluded(self, path: Path) -> bool:
        patterns = [*self.exclude, *self.extend_exclude]
        return matches_any(path, patterns, self.root)

    def excluded_with_parents(self, path: Path) -> bool:
        """Excluded itself, or inside an excluded directory (``legacy/old.py`` with
        ``exclude = ["legacy"]``): directories are checked up to the root."""
        if self.excluded(path):
            return True
        root = os.path.abspath(self.root)
        directory = os.path.dirname(os.path.abspath(path))
        while directory != root and directory.startswith(root.rstrip(os.sep) + os.sep):
            if self.excluded(Path(directory)):
                return True
            directory = os.path.dirname(directory)
        return False

    def ignored_for(self, path: Path) -> list[str]:
        codes: list[str] = []
        for pattern, selectors in self.per_file_ignores.items():
            if matches_any(path, [pattern], self.root):
                codes.extend(selectors)
        return codes


def matches_any(path: Path, patterns: Iterable[str], root: Path) -> bool:
    """Patterns match a path's basename, or its path relative to the config root
    (``src/legacy/*.py``), as ruff's exclude does."""
    name = path.name
    try:  # abspath, not resolve: symlinks (even broken or looping ones) are not followed
        relative = relative_posix(os.path.abspath(path), os.path.abspath(root))
    except ValueError:
        relative = path.as_posix()
    whole, prefixes = _compiled(tuple(patterns))
    return bool(whole.match(name) or whole.match(relative) or relative.startswith(prefixes))


def relative_posix(absolute: str, base: str) -> str:
    """``Path(absolute).relative_to(base).as_posix()`` for two absolute, normalized
    paths; with string operations on POSIX (discovery asks it for every file)."""
    if os.sep != "/" or absolute.startswith("//") or base.startswith("//"):
        return Path(absolute).relative_to(base).as_posix()
    if absolute == base:
        return "."
    prefix = base if base.endswith("/") else base + "/"
    if not absolute.startswith(prefix):
        raise ValueError(f"{absolute!r} is not under {base!r}")
    return absolute[len(prefix):]


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The patterns as one regular expression (fnmatchcase of the name or the
    relative path, and ``dir/*`` for patterns with a slash) and the directory
    prefixes they cover: one match per path instead of two per pattern."""
    alternatives: list[str] = []
    prefixes: list[str] = []
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        alternatives.append(fnmatch.translate(pattern))
        if "/" in pattern:
            alternatives.append(fnmatch.translate(pattern + "/*"))
            prefixes.append(pattern + "/")
    regex = "|".join(f"(?:{a})" for a in alternatives) or r"(?!)"
    return re.compile(regex), tuple(prefixes)


def user_cache_dir() -> Path:
    """losslint's directory in the user's cache: ``$XDG_CACHE_HOME/losslint`` or
    ``~/.cache/losslint`` (Linux and other Unixes), ``~/Library/Caches/losslint``
    (macOS), ``%LOCALAPPDATA%\\losslint\\Cache`` (Windows)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "losslint" / "Cache"
    if sys.platform == "darwin" and not os.environ.get("XDG_CACHE_HOME"):
        return Path.home() / "Library" / "Caches" / "losslint"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "losslint"


PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "losslint.toml", ".losslint.toml", ".git")


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` with a project marker."""
    directory = Path(os.path.abspath(start))
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return None


def find_config(start: Path) -> Path | None:
    """The nearest losslint configuration at or above ``start``."""
    directory = start if start.is_dir() else start.parent
    directory = directory.resolve()
    for candidate_dir in (directory, *directory.parents):
        for name in (".losslint.toml", "losslint.toml"):
            if (candidate_dir / name).is_file():
                return candidate_dir / name
        pyproject = candidate_dir / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except OSError:
                continue
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
                # It may hold our configuration: guessing could lint with the wrong rules.
                raise ConfigError(f"invalid TOML in {pyproject}: {error}") from error
            if "losslint" in data.get("tool", {}):
                return pyproject
    return None


def load_settings(config: Path | None, paths: Iterable[Path]) -> Settings:
    if config is None:
        starts = list(paths) or [Path.cwd()]
        config = find_config(starts[0])
        if config is None:
            return Settings()
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read configuration {config}: {error.strerror or error}") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"invalid TOML in {config}: {error}") from error
    table = data.get("tool", {}).get("losslint", {}) if config.name == "pyproject.toml" else data
    return settings_from_table(table, config)


_KEYS = {
    "select": list, "extend-select": list, "ignore": list, "per-file-ignores": dict, "exclude": list,
    "extend-exclude": list, "force-exclude": bool, "respect-gitignore": bool, "fix": bool, "unsafe-fixes": bool,
    "clip-max-norm": (int, float), "dataset-sizes": dict, "max-file-size": int, "lint-test-files": bool,
}


def settings_from_table(table: dict[str, Any], origin: Path | None) -> Settings:
    settings = Settings(config_path=origin)
    where = f" in {origin}" if origin else ""
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(f"unknown option {raw_key!r}{where} (known: {known})")
        expected = _KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"option {raw_key!r}{where} has the wrong type: {type(value).__name__}")
        if key in ("select", "extend-select", "ignore", "exclude", "extend-exclude"):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"option {raw_key!r}{where} must be a list of strings")
        if key == "per-file-ignores":
            value = {str(k): ([v] if isinstance(v, str) else list(v)) for k, v in value.items()}
        if key == "dataset-sizes":
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()):
                raise ConfigError(f"option {raw_key!r}{where} maps dataset class names to positive integers")
        if key == "clip-max-norm" and not value > 0:
            raise ConfigError(f"option {raw_key!r}{where} must be positive")
        setattr(settings, key.replace("-", "_"), value)
    return settings
