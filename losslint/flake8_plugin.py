"""losslint as a flake8 plugin: ``flake8 --select LL``.

Registered through the ``flake8.extension`` entry point (``LL = ...`` in
pyproject.toml). Each file is checked by the same engine and rules as
``losslint check``; only the reporting is flake8's: codes and messages, flake8's
own ``# noqa``, ``--extend-ignore`` and ``--per-file-ignores`` (losslint's
``# noqa`` and ``[tool.losslint]`` selection and ignores apply as well).

flake8 hands a plugin one file at a time; the project-wide facts (a dataset's
length in ``data.py`` for the DataLoader in ``train.py``) come from
``losslint.single_file``: collected once per flake8 process (with ``-j N``, once
per worker) from every Python file under the project root. Fixes are not possible
through flake8 (it has no fix protocol): use ``losslint check --fix``.

Columns: flake8 wants 0-based columns from plugins and prints them 1-based, which
is what ``losslint check`` prints too.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

from losslint import __version__
from losslint.single_file import prepare


class LosslintChecker:
    name = "losslint"
    version = __version__

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        self.filename = filename
        self.lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        prepared = prepare(Path(self.filename), "".join(self.lines), display=self.filename)
        for finding in prepared.findings():
            yield finding.span.line, finding.span.column, f"{finding.code} {finding.message}", type(self)
