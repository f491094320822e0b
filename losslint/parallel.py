"""A ``check`` run over many files: on every core, through the result cache.

Two passes, with the per-file work of each spread over processes:

1. *scan* each file: read, parse, collect its project facts, note which rules'
   trigger words it contains. A file no enabled rule looks at is finished here
   (its findings cannot depend on other files).
2. with the project's facts merged, *check* each remaining file (parsed again:
   trees are not kept between the passes, so memory stays bounded by the files
   in flight, not the project).

Both passes first ask the cache (losslint.cache), which keeps, for each set of
paths linted, the last run's state of every file: its bytes' digest, its scan, and
its findings with the key they were computed under (the bytes, the settings and,
for files a rule looks at, the digest of the whole project's facts). A run reuses
what still matches: a warm run reads and hashes every file and loads one entry
(two when something changed); nothing is parsed. One entry per run, not two per
file: creating thousands of small files cost more than the analysis they saved.

Processes: the work goes out largest files first, in batches of about equal
size, so that one huge file starts at once and never waits behind the rest;
results come back by file index, so the output order never depends on timing.
Small runs (under ``PARALLEL_MIN_BYTES`` to parse) stay in this process: starting
workers would cost more than it saves. Facts and findings cross the process
boundary as plain data; a finding's fix does not (rules build its libcst edits
from closures): it travels as a DetachedFix with its description, applicability
and, when the run wants them (``fix_edits``: JSON, SARIF), its line edits,
computed in the worker while the file's text is at hand, and cached with the
findings. (Findings a run without ``fix_edits`` cached lack them: a run that
wants them checks those files again.) A worker that dies (out of memory, a crash
in C) costs nothing but time: its files are redone here, one by one, each
failure an LL005 finding.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from losslint.cache import Cache, canonical, content_digest, digest, lacks_line_edits, portable, settings_digest
from losslint.discovery import Target
from losslint.engine import FileResult, Linter, Report, SourceFile, _problem, read_bytes, source_from_bytes, triggered_codes
from losslint.findings import Finding
from losslint.project import ModuleFacts, ProjectFacts, file_key
from losslint.rules import io as io_rules

# Below this many bytes to parse, a pass runs in this process (forking two workers
# and shipping the files costs about what parsing 400 kB does).
PARALLEL_MIN_BYTES = 400_000
PARALLEL_MIN_FILES = 8


@dataclass
class Scan:
    """What the first pass learns about a file, cached on its bytes and module."""

    facts: ModuleFacts | None  # None: the file did not parse
    triggered: frozenset[str]  # triggered_codes() of its text
    facts_digest: str  # canonical digest of ``facts``, for the project digest
    crash: Finding | None = None  # a fact collector raised on it (never cached)


@dataclass
class _File:
    index: int
    target: Target
    module: str
    data: bytes | None = None  # dropped once the findings are known
    digest: str = ""
    scan: Scan | None = None
    findings: list[Finding] | None = None
    source: SourceFile | None = None  # parsed in this process and kept for pass 2
    internal_error: bool = False
    result_key: str = ""  # what its findings were computed under (see _Keys.result)
    bytes_on_disk: int = 0  # (--fix: its bytes stay on disk, read where it is fixed)

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.bytes_on_disk


@dataclass
class _Keys:
    settings: str

    def run(self, files: list[_File]) -> tuple[str, str]:
        """(the run's paths and settings, the state of every file): the key of a
        whole run's findings, which a run that changes nothing replays at once."""
        paths = digest("run", self.settings, *(os.path.abspath(f.target.path) for f in files))
        state = digest(*(f"{f.target.display}|{f.module}|{f.digest}" for f in files))
        return paths, state

    def result(self, f: _File, project_digest: str | None) -> str:
        # project_digest None: no rule looks at the file, the project cannot matter.
        return digest(
            "result", self.settings, os.path.abspath(f.target.path), f.target.display, f.module, f.digest, project_digest or "-"
        )


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# -- the per-file work, the same in this process and in a worker ------------------------


def scan_file(
    linter: Linter, target: Target, module: str, data: bytes, line_edits: bool = False
) -> tuple[Scan, list[Finding] | None, SourceFile]:
    """Pass 1 for one file: its scan, and its findings when no rule looks at it
    (``line_edits``: their fixes' line edits too)."""
    source = source_from_bytes(SourceFile(target, module), data)
    facts: ModuleFacts | None = None
    triggered: frozenset[str] = frozenset()
    if source.tree is not None and source.text is not None:
        triggered = source.triggered = triggered_codes(source.text)
        facts = linter.module_facts(source)  # a collector's crash: source.facts_crash
    scan = Scan(facts, triggered, digest(canonical(facts)), source.facts_crash)
    findings = None
    if not linter.needs_project(triggered):
        findings = linter.check(source, _empty_project(linter))
        if line_edits:
            findings = linter.attach_line_edits(source, findings)
    return scan, findings, source


def check_file(
    linter: Linter, project: ProjectFacts, source: SourceFile, scan: Scan | None, line_edits: bool = False
) -> list[Finding]:
    """Pass 2 for one file: the rules, with the project's facts (``line_edits``:
    and their fixes' line edits, computed while the text is at hand)."""
    if scan is not None and scan.crash is not None:
        source.facts_crash = scan.crash  # (scanned elsewhere: reported with the findings)
    findings = linter.check(source, project)
    return linter.attach_line_edits(source, findings) if line_edits else findings


def _empty_project(linter: Linter) -> ProjectFacts:
    return ProjectFacts(configured_dataset_sizes=dict(linter.settings.dataset_sizes))


def _crashed(target: Target, error: BaseException) -> list[Finding]:
    return [
        _problem(
            io_rules.InternalError,
            target.display,
            f"losslint crashed on this file ({type(error).__name__}: {error}); please report it with the file",
        )
    ]


# -- workers --------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(settings, project: ProjectFacts | None, options: dict, parent: int) -> None:
    _end_with_parent(parent)
    # Worker memory is the files in flight: no cyclic GC while a batch runs (the
    # parse allocates millions of acyclic nodes), one collection after it.
    gc.disable()
    _WORKER["linter"] = Linter(settings, jobs=1)
    _WORKER["project"] = project
    _WORKER.update(options)  # line_edits; and for --fix/--diff: unsafe, diff
    gc.freeze()


def _end_with_parent(parent: int) -> None:
    """A worker whose losslint process is killed (SIGTERM from a CI timeout, SIGKILL
    for memory) is sent SIGTERM too (Linux), instead of waiting for work forever
    on a pipe its sibling workers keep open."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _scan_batch(items: list[tuple]) -> list[tuple]:
    linter: Linter = _WORKER["linter"]
    out = []
    for index, target, module, data in items:
        linter.internal_error = False
        try:
            scan, findings, _ = scan_file(linter, target, module, data, _WORKER["line_edits"])
        except Exception as error:
            out.append((index, None, _crashed(target, error), True))
            continue
        if findings is not None:
            findings = [portable(f) for f in findings]
        out.append((index, scan, findings, linter.internal_error))
    gc.collect()
    return out


def _check_batch(items: list[tuple]) -> list[tuple]:
    linter: Linter = _WORKER["linter"]
    project: ProjectFacts = _WORKER["project"]
    out = []
    for index, target, module, data, scan in items:
        linter.internal_error = False
        try:
            source = source_from_bytes(SourceFile(target, module, triggered=scan.triggered if scan else None), data)
            findings = [portable(f) for f in check_file(linter, project, source, scan, _WORKER["line_edits"])]
        except Exception as error:
            out.append((index, _crashed(target, error), True))
            continue
        out.append((index, findings, linter.internal_error))
    gc.collect()
    return out


def _context():
    # fork: the workers start in milliseconds with every rule already imported. Not
    # with threads running (a forked child may inherit a held lock), nor on macOS.
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _batches(files: list[_File], jobs: int) -> list[list[_File]]:
    """Largest files first, grouped into batches of about 1/(8 x jobs) of the bytes:
    a huge file is a batch of its own and starts first."""
    ordered = sorted(files, key=lambda f: -f.size)
    total = sum(f.size for f in ordered)
    target = max(total // (8 * jobs), 32_000)
    batches: list[list[_File]] = []
    current: list[_File] = []
    size = 0
    for f in ordered:
        current.append(f)
        size += f.size
        if size >= target or len(current) >= 64:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def _in_parallel(jobs: int, files: list[_File], total_bytes: int) -> bool:
    return jobs > 1 and len(files) >= PARALLEL_MIN_FILES and total_bytes >= PARALLEL_MIN_BYTES


def _run_pool(
    linter: Linter,
    jobs: int,
    project: ProjectFacts | None,
    options: dict,
    work: Callable[[list[tuple]], list[tuple]],
    batches: list[list[tuple]],
    on_result: Callable[[tuple], None],
    fallback: Callable[[tuple], None],
) -> None:
    leftover: list[list[tuple]] = []
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(batches)),
        mp_context=_context(),
        initializer=_init_worker,
        initargs=(linter.settings, project, options, os.getpid()),
    ) as pool:
        futures = {pool.submit(work, batch): batch for batch in batches}
        for future in as_completed(futures):
            try:
                results = future.result()
            except Exception:  # BrokenProcessPool (a worker died), or a bug: redo its files here
                leftover.append(futures[future])
                continue
            for result in results:
                on_result(result)
    for batch in leftover:
        for item in batch:
            fallback(item)


# -- the run --------------------------------------------------------------------------


@dataclass
class _Remembered:
    """A file as the last run over the same paths left it."""

    digest: str
    module: str
    scan: Scan
    result_key: str
    findings: list[Finding] | None


def check_run(linter: Linter, targets: list[Target], progress: Callable[[int, int], None] | None, fix_edits: bool) -> Report:
    settings = linter.settings
    cache = linter.cache
    jobs = linter.jobs or available_cores()
    keys = _Keys(settings_digest(settings))
    total = len(targets)
    done = 0

    def finished(f: _File, findings: list[Finding], internal_error: bool = False) -> None:
        nonlocal done
        f.findings = findings
        f.internal_error = f.internal_error or internal_error
        f.data = None
        done += 1
        if progress:
            progress(done, total)

    collecting = gc.isenabled()
    # Reading, unpickling and parsing make no garbage cycles: the cyclic collector
    # would only rescan millions of new AST nodes (5x the parse time on 700k lines).
    gc.disable()
    kept_trees = False
    remembered: dict[str, _Remembered] = {}
    try:
        # -- read every file; what the cache knows --------------------------------------
        files: list[_File] = []
        packages: dict[Path, list[str]] = {}
        for index, target in enumerate(targets):
            source, data = read_bytes(target, settings, packages)
            f = _File(index, target, source.module, data)
            files.append(f)
            if data is None:
                finished(f, linter.check(source, _empty_project(linter)))  # unreadable: its LL001
            else:
                f.digest = content_digest(data)
        run_key = keys.run(files)
        replay = _replay_run(cache, run_key, files, fix_edits) if cache is not None else None
        if replay is not None:  # nothing changed since the last run over these paths
            for f, findings in zip([f for f in files if f.digest], replay):
                finished(f, findings)
        elif cache is not None:
            remembered = _remembered(cache, run_key)
            for f in files:
                last = remembered.get(os.path.abspath(f.target.path))
                if f.data is None or last is None or (last.digest, last.module) != (f.digest, f.module):
                    continue
                f.scan = last.scan
                if (
                    last.findings is not None
                    and not (fix_edits and lacks_line_edits(last.findings))
                    and not linter.needs_project(f.scan.triggered)
                    and last.result_key == keys.result(f, None)
                ):
                    f.result_key = last.result_key
                    finished(f, last.findings)

        # -- pass 1: scan what the cache did not know ---------------------------------
        todo = [f for f in files if f.data is not None and f.scan is None]

        def scanned(f: _File, scan: Scan | None, findings: list[Finding] | None, internal_error: bool) -> None:
            f.scan = scan
            f.internal_error = internal_error
            if findings is not None:
                f.result_key = keys.result(f, None)
                finished(f, findings, internal_error)

        def scan_here(f: _File) -> None:
            linter.internal_error = False
            try:
                scan, findings, source = scan_file(linter, f.target, f.module, f.data or b"", fix_edits)
            except Exception as error:
                scanned(f, None, _crashed(f.target, error), True)
                return
            if findings is None:
                f.source = source  # checked in pass 2 without parsing again
            scanned(f, scan, findings, linter.internal_error)

        todo_bytes = sum(f.size for f in todo)
        if _in_parallel(jobs, todo, todo_bytes):
            by_index = {f.index: f for f in todo}
            batches = [[(f.index, f.target, f.module, f.data) for f in batch] for batch in _batches(todo, jobs)]
            _run_pool(
                linter, jobs, None, {"line_edits": fix_edits}, _scan_batch, batches,
                on_result=lambda r: scanned(by_index[r[0]], r[1], r[2], r[3]),
                fallback=lambda item: scan_here(by_index[item[0]]),
            )
        else:
            kept_trees = True
            for f in todo:
                scan_here(f)

        # -- the project --------------------------------------------------------------
        project = _empty_project(linter)
        module_digests: dict[str, str] = {}
        for f in files:
            if f.scan is not None and f.scan.facts is not None:
                project.add(f.scan.facts, str(f.target.path))
                module_digests[file_key(str(f.target.path))] = f.scan.facts_digest
        project_digest = digest(
            canonical(project.configured_dataset_sizes), *(f"{m}={module_digests[m]}" for m in project.modules)
        )
    finally:
        if kept_trees:
            gc.freeze()  # the trees kept for pass 2: out of the collector's sight
        if collecting:
            gc.enable()

    # -- pass 2: check, with the project's facts -----------------------------------
    def result_key(f: _File) -> str:
        needs = f.scan is not None and linter.needs_project(f.scan.triggered)
        return keys.result(f, project_digest if needs else None)

    todo = []
    for f in files:
        if f.findings is not None:
            continue
        f.result_key = result_key(f)
        last = remembered.get(os.path.abspath(f.target.path))
        if (
            last is not None
            and last.findings is not None
            and last.result_key == f.result_key
            and last.digest == f.digest
            and not (fix_edits and lacks_line_edits(last.findings))
        ):
            finished(f, last.findings)
            continue
        todo.append(f)

    def check_here(f: _File) -> None:
        linter.internal_error = False
        try:
            triggered = f.scan.triggered if f.scan else None
            source = f.source or source_from_bytes(SourceFile(f.target, f.module, triggered=triggered), f.data or b"")
            findings = check_file(linter, project, source, f.scan, fix_edits)
        except Exception as error:
            finished(f, _crashed(f.target, error), True)
            return
        finished(f, findings, linter.internal_error)

    todo_bytes = sum(f.size for f in todo)
    if _in_parallel(jobs, todo, todo_bytes) and not all(f.source is not None for f in todo):
        by_index = {f.index: f for f in todo}
        batches = [[(f.index, f.target, f.module, f.data, f.scan) for f in batch] for batch in _batches(todo, jobs)]
        _run_pool(
            linter, jobs, project, {"line_edits": fix_edits}, _check_batch, batches,
            on_result=lambda r: finished(by_index[r[0]], r[1], r[2]),
            fallback=lambda item: check_here(by_index[item[0]]),
        )
    else:
        for f in todo:
            check_here(f)

    if cache is not None and replay is None:
        _remember(cache, run_key, files)

    results = [FileResult(f.target.display, f.findings or []) for f in files]
    for f in files:
        f.source = None
    if kept_trees:
        gc.unfreeze()
    linter.link([x for r in results for x in r.findings])
    linter.internal_error = linter.internal_error or any(f.internal_error for f in files)
    return Report(results, internal_error=linter.internal_error)


def _replay_run(cache: Cache, run_key: tuple[str, str], files: list[_File], fix_edits: bool) -> list[list[Finding]] | None:
    """The findings of the readable files from the last run over the same paths, if
    every file is as it was then (one small entry per set of paths, overwritten),
    and their fixes have line edits if ``fix_edits``."""
    entry = cache.get("run", run_key[0])
    if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] == run_key[1] and isinstance(entry[1], list)):
        return None
    findings = entry[1]
    if len(findings) != sum(1 for f in files if f.digest) or not all(
        isinstance(group, list) and all(isinstance(x, Finding) for x in group) for group in findings
    ):
        return None
    if fix_edits and any(lacks_line_edits(group) for group in findings):
        return None
    return findings


def _remembered(cache: Cache, run_key: tuple[str, str]) -> dict[str, _Remembered]:
    entry = cache.get("files", run_key[0])
    if not (isinstance(entry, dict) and all(isinstance(v, _Remembered) for v in entry.values())):
        return {}
    return entry


def _remember(cache: Cache, run_key: tuple[str, str], files: list[_File]) -> None:
    """This run's state for the next run over the same paths: every file's scan and
    findings (a file on which losslint crashed is left out, to be tried again)."""
    state = {
        os.path.abspath(f.target.path): _Remembered(
            f.digest, f.module, f.scan, f.result_key, [portable(x) for x in f.findings or []]
        )
        for f in files
        if f.digest and f.scan is not None and f.scan.crash is None and not f.internal_error and f.result_key
    }
    cache.put("files", run_key[0], state)
    if not any(f.internal_error for f in files):
        readable = [f for f in files if f.digest]
        cache.put("run", run_key[0], (run_key[1], [[portable(x) for x in f.findings or []] for f in readable]))


# -- --fix and --diff -------------------------------------------------------------------


def fix_run(
    linter: Linter, targets: list[Target], progress: Callable[[int, int], None] | None, unsafe: bool, diff: bool, fix_edits: bool
) -> Report:
    """--fix (write) or --diff (show) every file, on every core, never through the
    cache (a fix is computed on the file as it is). The same two passes as a check:
    scan every file for the project's facts, then fix each file a rule looks at
    against them, in a worker that reads, parses, fixes and writes it and then lets
    it go: memory is the facts plus the largest file in flight, not the project.
    Each file is fixed against the facts the run found (its own updated as it is
    fixed), so the result never depends on the order or the process."""
    jobs = linter.jobs or available_cores()
    files = [_File(index, target, "", bytes_on_disk=_size_on_disk(target)) for index, target in enumerate(targets)]
    results: dict[int, FileResult] = {}
    options = {"line_edits": fix_edits, "unsafe": unsafe, "diff": diff}

    def finished(f: _File, result: FileResult, internal_error: bool) -> None:
        results[f.index] = result
        f.internal_error = f.internal_error or internal_error
        if progress:
            progress(len(results), len(files))

    def scanned(f: _File, module: str, scan: Scan | None, findings: list[Finding] | None, internal_error: bool) -> None:
        f.module, f.scan, f.internal_error = module, scan, internal_error
        if findings is not None:  # unreadable, unparsable, or no rule looks at it: nothing to fix
            finished(f, FileResult(f.target.display, findings), internal_error)

    def scan_here(f: _File) -> None:
        linter.internal_error = False
        scanned(f, *_scan_path(linter, f.target, fix_edits), linter.internal_error)

    if _in_parallel(jobs, files, sum(f.size for f in files)):
        by_index = {f.index: f for f in files}
        batches = [[(f.index, f.target) for f in batch] for batch in _batches(files, jobs)]
        _run_pool(
            linter, jobs, None, options, _scan_path_batch, batches,
            on_result=lambda r: scanned(by_index[r[0]], *r[1:]),
            fallback=lambda item: scan_here(by_index[item[0]]),
        )
    else:
        for f in files:
            scan_here(f)

    project = _empty_project(linter)
    for f in files:
        if f.scan is not None and f.scan.facts is not None:
            project.add(f.scan.facts, str(f.target.path))

    todo = [f for f in files if f.index not in results]

    def fix_here(f: _File) -> None:
        linter.internal_error = False
        result = _fix_path(linter, project, f.target, f.module, f.scan, unsafe, diff, fix_edits)
        finished(f, result, linter.internal_error)

    if _in_parallel(jobs, todo, sum(f.size for f in todo)):
        by_index = {f.index: f for f in todo}
        batches = [[(f.index, f.target, f.module, f.scan) for f in batch] for batch in _batches(todo, jobs)]
        _run_pool(
            linter, jobs, project, options, _fix_batch, batches,
            on_result=lambda r: finished(by_index[r[0]], r[1], r[2]),
            fallback=lambda item: fix_here(by_index[item[0]]),
        )
    else:
        for f in todo:
            fix_here(f)

    report = [results[f.index] for f in files]
    linter.link([x for r in report for x in r.findings])
    linter.internal_error = linter.internal_error or any(f.internal_error for f in files)
    return Report(report, internal_error=linter.internal_error)


def _size_on_disk(target: Target) -> int:
    try:
        return target.path.stat().st_size
    except OSError:
        return 0


def _scan_path(linter: Linter, target: Target, line_edits: bool) -> tuple[str, Scan | None, list[Finding] | None]:
    """Pass 1 of a fix run for one file, read here: (its module, its scan, its
    findings when there is nothing to fix)."""
    source, data = read_bytes(target, linter.settings)
    if data is None:
        return source.module, None, linter.check(source, _empty_project(linter))
    try:
        scan, findings, _ = scan_file(linter, target, source.module, data, line_edits)
    except Exception as error:
        linter.internal_error = True
        return source.module, None, _crashed(target, error)
    return source.module, scan, findings


def _fix_path(
    linter: Linter, project: ProjectFacts, target: Target, module: str, scan: Scan | None, unsafe: bool, diff: bool, line_edits: bool
) -> FileResult:
    """Pass 2 of a fix run for one file: read it again, fix it, write it (or diff it)."""
    try:
        source, data = read_bytes(target, linter.settings)
        if data is not None:
            source = source_from_bytes(source, data)
        if scan is not None and scan.crash is not None:
            source.facts_crash = scan.crash
        return linter.fix_file(source, project, unsafe, diff, line_edits)
    except Exception as error:
        linter.internal_error = True
        return FileResult(target.display, _crashed(target, error))


def _scan_path_batch(items: list[tuple]) -> list[tuple]:
    linter: Linter = _WORKER["linter"]
    out = []
    for index, target in items:
        linter.internal_error = False
        module, scan, findings = _scan_path(linter, target, _WORKER["line_edits"])
        out.append((index, module, scan, None if findings is None else [portable(f) for f in findings], linter.internal_error))
    gc.collect()
    return out


def _fix_batch(items: list[tuple]) -> list[tuple]:
    linter: Linter = _WORKER["linter"]
    project: ProjectFacts = _WORKER["project"]
    out = []
    for index, target, module, scan in items:
        linter.internal_error = False
        result = _fix_path(linter, project, target, module, scan, _WORKER["unsafe"], _WORKER["diff"], _WORKER["line_edits"])
        result.findings = [portable(f) for f in result.findings]
        out.append((index, result, linter.internal_error))
        if result.fixed or any(f.fix is not None for f in result.findings):
            # a file's libcst trees go before the next file's come; only after a
            # file libcst parsed (a full collection of the worker's heap, the
            # project's facts included, after every file made --fix on 1.75M lines
            # minutes slower), and after each batch as a check does
            gc.collect()
    gc.collect()
    return out
