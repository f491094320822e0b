"""Linting one file at a time inside its project: what the flake8 plugin and the
language server share. Both are handed one file (by flake8, by the editor), while
many findings need facts from the project's other files (a dataset's length in
``data.py``, an argparse default in ``options.py``).

So the first file of a project makes the process collect the project-wide facts
of every Python file under the project root (the nearest directory upwards with a
``pyproject.toml``, ``setup.cfg``, ``setup.py``, losslint config or ``.git``) and
keeps them for the following files; the file being linted always contributes its
own, current text (an editor's unsaved buffer, flake8's stdin). The cost is one
``ast.parse`` of the project per process, as in one ``losslint check`` run, the
first time: each file's facts are kept in losslint's cache (keyed on its bytes
and module name, like every cache entry under losslint's version), so the next
process (an editor started again, the next flake8 run) reads them instead. A
language server drops the facts it holds when a file is saved, and the settings
too when a configuration file changes (``forget_settings``).

Settings come from the file's nearest ``[tool.losslint]`` configuration, found as
``losslint check`` finds it.

A config file the project's code reads (YAML/JSON/TOML, ``analysis/configs.py``)
is linted like a Python file: its findings come from the rules on the scripts
that read it. An editor's unsaved config buffers (``unsaved``) are what both the
config and the scripts reading it are judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from losslint.cache import Cache, cache_directory, content_digest, digest
from losslint.checking import FileChecker
from losslint.config import ConfigError, Settings, find_config, load_settings
from losslint.discovery import Target, discover
from losslint.findings import Finding
from losslint.pipeline import Action, FileResult, Mode, lint_file
from losslint.project import ModuleFacts, ProjectFacts, collect_module_facts, file_key
from losslint.sources import SourceFile, encoded, module_name, read_bytes, source_from_bytes

_ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "losslint.toml", ".losslint.toml", ".git")
# Past this many files under the root, no facts are collected from other files (a
# home directory or a monorepo is not one training project).
MAX_PROJECT_FILES = 5000


def project_root(path: Path) -> Path:
    directory = path.resolve().parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            return candidate
    return directory


@lru_cache(maxsize=16)
def _load(config: Path | None) -> tuple[Settings, str | None]:
    if config is None:
        return Settings(), None
    try:
        return load_settings(config, []), None
    except ConfigError as error:
        return Settings(), str(error)


def settings_for(path: Path) -> tuple[Settings, str | None]:
    """The settings that apply to ``path``, and the configuration error if the
    configuration could not be used (the defaults apply then)."""
    start = path if path.exists() else (path.parent if path.parent.exists() else Path.cwd())
    return _load(find_config(start))


# Settings objects are not hashable: the caches are keyed on their identity (the
# settings themselves come from the cache above, so they stay the same objects).
_CHECKERS: dict[int, tuple[Settings, FileChecker]] = {}
_FACTS: dict[tuple[Path, int], ProjectFacts] = {}
_TEXTS: dict[tuple[Path, int], dict[str, int]] = {}  # module -> hash of the bytes its facts came from
FACTS_KIND = "module-facts"  # the cache's entries of one file's facts


def checker_for(settings: Settings) -> FileChecker:
    if id(settings) not in _CHECKERS:
        _CHECKERS[id(settings)] = (settings, FileChecker(settings))
    return _CHECKERS[id(settings)][1]


def project_facts(root: Path, settings: Settings) -> ProjectFacts:
    """The facts of every Python file under ``root`` (from the cache when a file's
    bytes and module name are as when they were collected)."""
    key = (root, id(settings))
    if key not in _FACTS:
        checker = checker_for(settings)
        checker.rules  # the rule modules register their facts' collectors (and kinds) when imported
        project, texts = checker.empty_project(), {}
        targets = discover([root], settings)
        cache = Cache(cache_directory(settings))
        for target in [] if len(targets) > MAX_PROJECT_FILES else [t for t in targets if t.path.suffix == ".py"]:
            source, data = read_bytes(target, settings)
            if data is None:
                continue
            texts[source.module] = hash(data)
            entry = digest(content_digest(data), source.module, "package" if source.is_package else "module")
            facts = cache.get(FACTS_KIND, entry)
            if not isinstance(facts, ModuleFacts):
                source = source_from_bytes(source, data)
                if source.tree is None or source.text is None:
                    continue
                facts = checker.module_facts(source)  # None: a collector crashed (the file's own lint reports it)
                if facts is None:
                    continue
                cache.put(FACTS_KIND, entry, facts)
            project.add(facts, str(target.path))
        _FACTS[key], _TEXTS[key] = project, texts
    return _FACTS[key]


def forget_project_facts() -> None:
    """Files changed on disk: collect the facts again on the next lint."""
    _FACTS.clear()
    _TEXTS.clear()


def forget_settings() -> None:
    """A configuration file changed: read it again on the next lint (the facts
    too: they are kept per settings)."""
    _load.cache_clear()
    _CHECKERS.clear()
    forget_project_facts()


@dataclass
class PreparedFile:
    checker: FileChecker
    source: SourceFile
    project: ProjectFacts

    def run(self, mode: Mode = Mode()) -> FileResult:
        """The file through the pipeline as ``mode`` asks (its findings linked)."""
        result = lint_file(self.checker, self.source, self.project, mode)
        result.internal_error = self.checker.link(result.findings) or result.internal_error
        return result

    def findings(self) -> list[Finding]:
        return self.run().findings

    def fixed_text(self, unsafe: bool) -> str:
        """The text with every applicable fix applied, to a fixed point."""
        fixed = self.run(Mode(Action.FIX_TEXT, unsafe)).fixed_text
        return (self.source.text or "") if fixed is None else fixed


def prepare(
    path: Path,
    text: str,
    display: str | None = None,
    settings: Settings | None = None,
    on_disk: bool | None = None,
    unsaved: Mapping[Path, str] | None = None,
) -> PreparedFile:
    """A file's current text, ready to lint with its project's facts."""
    return prepare_bytes(path, encoded(text), display, settings, on_disk, unsaved)


def prepare_bytes(
    path: Path,
    data: bytes,
    display: str | None = None,
    settings: Settings | None = None,
    on_disk: bool | None = None,
    unsaved: Mapping[Path, str] | None = None,
) -> PreparedFile:
    """A file's current bytes (stdin, a buffer; a notebook's JSON if ``path`` is
    a ``.ipynb``; a config file), ready to lint with its project's facts.
    ``on_disk``: read the other files of ``path``'s project (default: when
    ``path`` exists). ``unsaved``: other files' texts as an editor has them (open
    config buffers), read instead of the disk."""
    if settings is None:
        settings, _ = settings_for(path)
    checker = checker_for(settings)
    source = source_from_bytes(SourceFile(Target(path, display or path.as_posix()), module_name(path)), data)
    if on_disk is None:
        on_disk = path.is_file()
    buffers = {file_key(str(p)): text for p, text in (unsaved or {}).items()}
    if source.config is not None and source.text is not None:
        buffers[file_key(str(path))] = source.text  # what the scripts reading it read
    if on_disk:
        root = project_root(path)
        shared = project_facts(root, settings)
        if not buffers and _TEXTS[(root, id(settings))].get(source.module) == hash(data):
            return PreparedFile(checker, source, shared)  # the bytes the facts came from
        project = shared.copy()
    else:
        project = checker.empty_project()
    project.unsaved.update(buffers)
    if source.tree is not None and source.text is not None:
        project.add(collect_module_facts(source.tree, source.text, source.module, source.is_package), str(source.target.path))
    return PreparedFile(checker, source, project)
