"""losslint as a flake8 plugin: ``flake8 --select LL``.

Registered through the ``flake8.extension`` entry point (``LL = ...`` in
pyproject.toml). Each file is checked by the same engine and rules as
``losslint check``; only the reporting is flake8's: codes and messages, flake8's
own ``# noqa``, ``--extend-ignore`` and ``--per-file-ignores`` (losslint's
``# noqa`` and ``[tool.losslint]`` ignores apply as well).

flake8 hands a plugin one file at a time, but many findings need facts from other
files (the dataset class's length in ``data.py``, an argparse default in
``options.py``). So the first file of a project makes this process collect the
project-wide facts of every Python file under the project root (the directory of
the nearest ``pyproject.toml``, ``setup.cfg``, ``setup.py``, losslint config or
``.git``, found upwards from the file) and keeps them for the following files:
one extra ``ast.parse`` of the project per flake8 process (``flake8 -j N``: per
worker), the same cost as one ``losslint check`` pass. The file being checked
always contributes its own, current text. Fixes are not possible through flake8
(flake8 has no fix protocol): use ``losslint check --fix``.

Columns: flake8 wants them 0-based from plugins and prints them 1-based, which is
what ``losslint check`` prints too.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from losslint import __version__
from losslint.config import ConfigError, Settings, find_config, load_settings
from losslint.discovery import Target, discover
from losslint.engine import Linter, SourceFile, module_name, parse_source, read_source
from losslint.project import ProjectFacts, collect_module_facts

_ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "losslint.toml", ".losslint.toml", ".git")
# Past this many files under the root, the facts come from the file's own package
# directory only (a home directory or a monorepo is not one training project).
MAX_PROJECT_FILES = 5000


def project_root(path: Path) -> Path:
    directory = path.resolve().parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            return candidate
    return directory


@lru_cache(maxsize=16)
def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config, []) if config else Settings()
    except ConfigError:
        return Settings()  # flake8 is not the place to report losslint's config errors


@lru_cache(maxsize=16)
def _linter(config: Path | None) -> Linter:
    return Linter(_settings(config))


@lru_cache(maxsize=8)
def _project_facts(root: Path, config: Path | None) -> ProjectFacts:
    settings = _settings(config)
    linter = _linter(config)
    targets = discover([root], settings)
    if len(targets) > MAX_PROJECT_FILES:
        return linter.facts_for([])
    return linter.facts_for(read_source(t, settings) for t in targets if t.path.suffix == ".py")


class LosslintChecker:
    name = "losslint"
    version = __version__

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        self.filename = filename
        self.lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        path = Path(self.filename)
        on_disk = path.is_file()
        config = find_config(path if on_disk else Path.cwd())
        linter = _linter(config)
        source = parse_source(SourceFile(Target(path, self.filename), module_name(path)), "".join(self.lines).encode("utf-8"))
        if on_disk:
            shared = _project_facts(project_root(path), config)
            project = ProjectFacts(dict(shared.modules), dict(shared.configured_dataset_sizes))
        else:  # stdin
            project = linter.facts_for([])
        if source.tree is not None and source.text is not None:
            project.add(collect_module_facts(source.tree, source.text, source.module))
        findings = linter.check(source, project)
        linter.link(findings)
        for finding in findings:
            yield finding.span.line, finding.span.column, f"{finding.code} {finding.message}", type(self)
