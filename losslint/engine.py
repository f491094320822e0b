"""The run over paths: discover → the pipeline on every file (losslint.pipeline),
over every core and through the result cache (losslint.parallel) → a Report.

The stages live in their own modules: sources.py (read, decode, parse),
checking.py (project facts, the rules on one file, linking), fixing.py (fixes to
a fixed point), pipeline.py (one file through them, as a mode asks). This is what
``losslint check`` and ``losslint explain`` run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from losslint.cache import Cache
from losslint.checking import FileChecker
from losslint.config import Settings
from losslint.discovery import discover
from losslint.parallel import available_cores, check_run, fix_run
from losslint.pipeline import Action, Mode, Report, fix_text, lint_text
from losslint.sources import SourceFile, parse_source, read_source

# The public entry points: a run over paths (Linter.run), text in memory, a file read.
__all__ = ["Linter", "Report", "SourceFile", "fix_text", "lint_text", "parse_source", "read_source"]


class Linter(FileChecker):
    def __init__(self, settings: Settings, *, jobs: int | None = None, cache: Cache | None = None) -> None:
        """``jobs``: processes for a run (None: every core); ``cache``: where a
        ``check`` run reads and writes per-file results (None: no cache)."""
        super().__init__(settings)
        self.jobs = jobs
        self.cache = cache

    def run(
        self,
        paths: list[Path],
        fix: bool = False,
        unsafe: bool = False,
        diff: bool = False,
        progress: Callable[[int, int], None] | None = None,
        fix_edits: bool = True,
    ) -> Report:
        """Lint (and with ``fix``/``diff``, fix) the files under ``paths``.
        A finding's fix may come back detached (losslint.cache.DetachedFix: from
        the cache or another process, without its libcst edits); ``fix_edits``:
        every fix carries its ``line_edits`` (what JSON and SARIF show), computed
        where the finding was found. Without, no libcst parse is spent on them."""
        targets = discover(paths, self.settings)
        jobs = self.jobs or available_cores()
        if fix or diff:
            mode = Mode(Action.DIFF if diff else Action.FIX, unsafe, fix_edits)
            return fix_run(self, targets, jobs, mode, progress)
        return check_run(self, targets, jobs, self.cache, fix_edits, progress)
