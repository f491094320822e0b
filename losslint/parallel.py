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
import os
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from losslint.cache import Cache, canonical, content_digest, digest, lacks_line_edits, portable, settings_digest
from losslint.checking import FileChecker, config_triggered, triggered_codes
from losslint.config import Settings
from losslint.context import release_contexts
from losslint.discovery import Target
from losslint.findings import Finding
from losslint.pipeline import Action, FileResult, Mode, Report, lint_file
from losslint.project import ModuleFacts, ProjectFacts, file_key
from losslint.rules import linter_problems
from losslint.sources import SourceFile, engine_finding, read_bytes, source_from_bytes

# Below this many bytes to parse, a pass runs in this process (forking two workers
# and shipping the files costs about what parsing 400 kB does).
PARALLEL_MIN_BYTES = 400_000
PARALLEL_MIN_FILES = 8

Progress = Callable[[int, int], None]


@dataclass
class Scan:
    """What the first pass learns about a file, cached on its bytes and module."""

    facts: ModuleFacts | None  # None: the file did not parse
    triggered: frozenset[str]  # triggered_codes() of its text
    facts_digest: str  # canonical digest of ``facts``, for the project digest
    crash: Finding | None = None  # a fact collector raised on it (never cached)


@dataclass
class _File:
    """A file of the run, as this process follows it through the passes."""

    index: int
    target: Target
    module: str
    data: bytes | None = None  # dropped once the findings are known
    digest: str = ""
    scan: Scan | None = None
    result: FileResult | None = None
    source: SourceFile | None = None  # parsed in this process and kept for pass 2
    result_key: str = ""  # what its findings were computed under (see _Keys.result)
    bytes_on_disk: int = 0  # (--fix: its bytes stay on disk, read where it is fixed)
    reached: bool = False  # a config file the run's code reads, not among the paths given

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.bytes_on_disk

    def job(self) -> _Job:
        # pass 2 needs of the scan only what it triggered and a collector's crash:
        # the file's facts (the project holds them) are not shipped to a worker again
        scan = self.scan and Scan(None, self.scan.triggered, "", self.scan.crash)
        return _Job(self.index, self.target, self.module, self.data, scan)


@dataclass
class _Job:
    """A file as a pass's step receives it (in this process or a worker)."""

    index: int
    target: Target
    module: str
    data: bytes | None  # a check's bytes, read once; None where the step reads the file
    scan: Scan | None  # (without its facts)


@dataclass
class _Done:
    """What a step returns for a file: its module and scan (pass 1), and its result
    once it is finished (None: it goes on to pass 2)."""

    index: int
    module: str
    scan: Scan | None = None
    result: FileResult | None = None


@dataclass
class _Pass:
    """What every step of a pass shares: the rules, the project's facts (pass 2),
    and what the run asks for."""

    checker: FileChecker
    project: ProjectFacts | None
    mode: Mode


@dataclass
class _Keys:
    settings: str

    def run(self, files: list[_File]) -> tuple[str, str]:
        """(the run's paths and settings, the state of every file): the key of a
        whole run's findings, which a run that changes nothing replays at once."""
        from losslint.analysis.yacs_configs import yaml_state

        paths = digest("run", self.settings, *(os.path.abspath(f.target.path) for f in files))
        # the YAML files merged onto yacs defaults are not files of the run: their state too
        dependencies = yaml_state((os.path.abspath(f.target.path), f.data) for f in files)
        state = digest(*(f"{f.target.display}|{f.module}|{f.digest}" for f in files), *dependencies)
        return paths, state

    def result(self, f: _File, project_digest: str | None, dependencies: str = "-") -> str:
        # project_digest None: no rule looks at the file, the project cannot matter.
        # dependencies: the bytes of the config files it reads (of the scripts that read it)
        return digest(
            "result", self.settings, os.path.abspath(f.target.path), f.target.display, f.module, f.digest, project_digest or "-",
            dependencies,
        )


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# -- the steps: one file each, the same in this process and in a worker ---------------


def scan_file(checker: FileChecker, target: Target, module: str, data: bytes) -> tuple[Scan, SourceFile]:
    """Pass 1 for one file: parse it, collect its facts, note the rules it triggers."""
    source = source_from_bytes(SourceFile(target, module), data)
    facts: ModuleFacts | None = None
    triggered: frozenset[str] = frozenset()
    if source.config is not None:
        triggered = config_triggered()
    elif source.tree is not None and source.text is not None:
        triggered = source.triggered = triggered_codes(source.text)
        facts = checker.module_facts(source)  # a collector's crash: source.facts_crash
    return Scan(facts, triggered, digest(canonical(facts)), source.facts_crash), source


def _finished_early(run: _Pass, source: SourceFile, scan: Scan | None) -> FileResult | None:
    """A file no enabled rule looks at (or that did not parse) is finished in pass 1:
    its findings cannot depend on the other files."""
    if scan is not None and run.checker.needs_project(scan.triggered):
        return None
    return lint_file(run.checker, source, run.checker.empty_project(), replace(run.mode, action=Action.CHECK))


def _scan_step(run: _Pass, job: _Job) -> _Done:
    scan, source = scan_file(run.checker, job.target, job.module, job.data or b"")
    return _Done(job.index, job.module, scan, _finished_early(run, source, scan))


def _check_step(run: _Pass, job: _Job) -> _Done:
    """Pass 2 for one file: the rules, with the project's facts."""
    assert run.project is not None
    source = source_from_bytes(SourceFile(job.target, job.module, triggered=job.scan.triggered if job.scan else None), job.data or b"")
    if job.scan is not None:
        source.facts_crash = job.scan.crash  # (scanned elsewhere: reported with the findings)
    return _Done(job.index, job.module, None, lint_file(run.checker, source, run.project, run.mode))


def _scan_path_step(run: _Pass, job: _Job) -> _Done:
    """Pass 1 of a fix run for one file, read here (its bytes stay on disk)."""
    source, data = read_bytes(job.target, run.checker.settings)
    if data is None:  # unreadable: its LL001
        return _Done(job.index, source.module, None, _finished_early(run, source, None))
    scan, source = scan_file(run.checker, job.target, source.module, data)
    return _Done(job.index, source.module, scan, _finished_early(run, source, scan))


def _fix_step(run: _Pass, job: _Job) -> _Done:
    """Pass 2 of a fix run for one file: read it again, fix it, write it (or diff it)."""
    assert run.project is not None
    source, data = read_bytes(job.target, run.checker.settings)
    if data is not None:
        source = source_from_bytes(source, data)
    if job.scan is not None:
        source.facts_crash = job.scan.crash
    return _Done(job.index, job.module, None, lint_file(run.checker, source, run.project, run.mode))


Step = Callable[[_Pass, _Job], _Done]


def _safely(step: Step, run: _Pass, job: _Job) -> _Done:
    """A step whose crash is the file's LL005 finding, never the run's end."""
    try:
        return step(run, job)
    except Exception as error:
        crash = engine_finding(
            linter_problems.InternalError,
            job.target.display,
            f"losslint crashed on this file ({type(error).__name__}: {error}); please report it with the file",
        )
        return _Done(job.index, job.module, None, FileResult(job.target.display, [crash], internal_error=True))


# -- workers --------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(settings: Settings, project: ProjectFacts | None, mode: Mode, step: Step, parent: int) -> None:
    _end_with_parent(parent)
    # Worker memory is the file in flight: no cyclic GC while a batch runs (the
    # parse allocates millions of acyclic nodes), each file's analyses released when
    # it is done (its tree then goes by reference counting), one collection after it.
    gc.disable()
    _WORKER["run"] = _Pass(FileChecker(settings), project, mode)
    _WORKER["step"] = step
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


def _work_batch(jobs: list[_Job]) -> list[_Done]:
    run: _Pass = _WORKER["run"]
    step: Step = _WORKER["step"]
    out = []
    for job in jobs:
        done = _safely(step, run, job)
        if done.result is not None:
            done.result.findings = [portable(f) for f in done.result.findings]
        out.append(done)
        release_contexts()  # its tree goes now, not with the batch's in the collection below
        fixing = run.mode.action is not Action.CHECK
        if fixing and done.result is not None and (done.result.fixed or any(f.fix is not None for f in done.result.findings)):
            # a file's libcst trees go before the next file's come; only after a
            # file libcst parsed (a full collection of the worker's heap, the
            # project's facts included, after every file made --fix on 1.75M lines
            # minutes slower), and after each batch as a check does
            gc.collect()
    gc.collect()
    return out


def _context():
    # fork: the workers start in milliseconds with every rule already imported. Not
    # with threads running (a forked child may inherit a held lock), nor on macOS.
    import multiprocessing  # (here: a run that needs no worker does not import it)

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


def _run_pass(
    run: _Pass, step: Step, files: list[_File], jobs: int, on_done: Callable[[_Done], None], here: Step | None = None
) -> None:
    """``step`` on every file: over worker processes when the files are many and
    large enough to pay for them, else here (``here``: the step to take in this
    process, default ``step``). A batch whose worker died is redone here, file by
    file."""
    here = here or step
    if not (jobs > 1 and len(files) >= PARALLEL_MIN_FILES and sum(f.size for f in files) >= PARALLEL_MIN_BYTES):
        for f in files:
            on_done(_safely(here, run, f.job()))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed  # (only where workers run)

    context = _context()
    if context.get_start_method() == "fork":
        from losslint.rules import load_all

        load_all()  # imported once here, not in every worker of every pass: forked workers inherit them
    batches = [[f.job() for f in batch] for batch in _batches(files, jobs)]
    leftover: list[list[_Job]] = []
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(batches)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(run.checker.settings, run.project, run.mode, step, os.getpid()),
    ) as pool:
        futures = {pool.submit(_work_batch, batch): batch for batch in batches}
        for future in as_completed(futures):
            try:
                results = future.result()
            except Exception:  # BrokenProcessPool (a worker died), or a bug: redo its files here
                leftover.append(futures[future])
                continue
            for done in results:
                on_done(done)
    for batch in leftover:
        for job in batch:
            on_done(_safely(here, run, job))


def _report(checker: FileChecker, results: list[FileResult]) -> Report:
    linked_crash = checker.link([x for r in results for x in r.findings])
    return Report(results, internal_error=linked_crash or any(r.internal_error for r in results))


# -- a check run ----------------------------------------------------------------------


@dataclass
class _Remembered:
    """A file as the last run over the same paths left it."""

    digest: str
    module: str
    scan: Scan
    result_key: str
    findings: list[Finding] | None


class _CheckRun:
    """A ``check`` over many files: read each once, reuse what the cache knows,
    scan the rest (pass 1), merge the project's facts, check what is left (pass 2),
    remember the run."""

    def __init__(self, checker: FileChecker, targets: list[Target], jobs: int, cache: Cache | None, fix_edits: bool, progress: Progress | None) -> None:
        self.checker, self.targets, self.jobs, self.cache, self.progress = checker, targets, jobs, cache, progress
        self.fix_edits = fix_edits
        self.mode = Mode(line_edits=fix_edits)
        self.keys = _Keys(settings_digest(checker.settings))
        self.files: list[_File] = []
        self.done = 0
        self.remembered: dict[str, _Remembered] = {}
        self.replayed = False
        self.kept_trees = False  # pass 1 ran here: its trees are kept for pass 2

    def finished(self, f: _File, result: FileResult) -> None:
        f.result = result
        f.data = None
        self.done += 1
        if self.progress:
            self.progress(self.done, len(self.targets))

    def run(self) -> Report:
        collecting = gc.isenabled()
        # Reading, decoding the cache and parsing make no garbage cycles: the cyclic
        # collector would only rescan millions of new AST nodes (5x the parse time
        # on 700k lines).
        gc.disable()
        try:
            run_key = self.read()
            if self.cache is not None:
                self.replayed = self.replay(run_key)
                if not self.replayed:
                    self.reuse_scans(run_key)
            self.scan()
            self.add_configs()
            project, project_digest = self.project()
        finally:
            if self.kept_trees:
                gc.freeze()  # the trees kept for pass 2: out of the collector's sight
            if collecting:
                gc.enable()
        self.check(project, project_digest)
        results = [f.result or FileResult(f.target.display) for f in self.files]
        for f in self.files:
            f.source = None
        if self.kept_trees:
            gc.unfreeze()
        if self.replayed:
            return Report(results)  # linked before the run remembered them
        if self.cache is not None:
            _remember_files(self.cache, run_key, self.files)  # unlinked: linked again with the next run's files
        report = _report(self.checker, results)
        if self.cache is not None and not report.internal_error:
            _remember_run(self.cache, run_key, self.files)
        return report

    def read(self) -> tuple[str, str]:
        """Every file's bytes and digest (an unreadable file is finished: its LL001);
        the run's key."""
        packages: dict[Path, list[str]] = {}
        for index, target in enumerate(self.targets):
            source, data = read_bytes(target, self.checker.settings, packages)
            f = _File(index, target, source.module, data)
            self.files.append(f)
            if data is None:
                self.finished(f, lint_file(self.checker, source, self.checker.empty_project(), Mode()))
            else:
                f.digest = content_digest(data)
        return self.keys.run(self.files)

    def _reusable(self, last: _Remembered | None, f: _File) -> bool:
        return (
            last is not None
            and last.findings is not None
            and last.digest == f.digest
            and last.result_key == f.result_key
            and not (self.fix_edits and lacks_line_edits(last.findings))
        )

    def replay(self, run_key: tuple[str, str]) -> bool:
        """Nothing changed since the last run over these paths: its findings, at once."""
        assert self.cache is not None
        entry = self.cache.get("run", run_key[0])
        self.files += _reached_as_remembered(entry, len(self.files))
        replay = _replay_run(entry, run_key, self.files, self.fix_edits)
        if replay is None:
            return False
        for f, findings in zip([f for f in self.files if f.digest], replay):
            self.finished(f, FileResult(f.target.display, findings))
        return True

    def reuse_scans(self, run_key: tuple[str, str]) -> None:
        """The scans of the files unchanged since the last run, and the findings of
        those no rule looks at."""
        assert self.cache is not None
        self.remembered = _remembered(self.cache, run_key)
        for f in self.files:
            last = self.remembered.get(os.path.abspath(f.target.path))
            if f.data is None or last is None or (last.digest, last.module) != (f.digest, f.module):
                continue
            f.scan = last.scan
            if not self.checker.needs_project(f.scan.triggered):
                f.result_key = self.keys.result(f, None)
                if self._reusable(last, f):
                    self.finished(f, FileResult(f.target.display, last.findings or []))

    def scan(self) -> None:
        """Pass 1 over the files the cache did not know."""
        todo = [f for f in self.files if f.data is not None and f.scan is None]
        by_index = {f.index: f for f in todo}

        def keeping_the_tree(run: _Pass, job: _Job) -> _Done:
            # in this process: a file that goes on to pass 2 keeps its tree (no second parse)
            scan, source = scan_file(run.checker, job.target, job.module, job.data or b"")
            result = _finished_early(run, source, scan)
            release_contexts()  # (garbage the disabled collector would keep until pass 2, frozen)
            if result is None:
                by_index[job.index].source = source
                self.kept_trees = True
            return _Done(job.index, job.module, scan, result)

        def scanned(done: _Done) -> None:
            f = by_index[done.index]
            f.scan = done.scan
            if done.result is not None:
                f.result_key = self.keys.result(f, None)
                self.finished(f, done.result)

        _run_pass(_Pass(self.checker, None, self.mode), _scan_step, todo, self.jobs, scanned, here=keeping_the_tree)

    def add_configs(self) -> None:
        """The config files that the run's code reads join the run (discovery lints
        no other YAML, JSON or TOML file); scanned here (they are small)."""
        known = {os.path.abspath(f.target.path) for f in self.files}
        for target in reached_configs(self.files, known):
            source, data = read_bytes(target, self.checker.settings)
            f = _File(len(self.files), target, "", data, reached=True)
            self.files.append(f)
            if data is None:
                self.finished(f, FileResult(target.display))
                continue
            f.digest = content_digest(data)
            last = self.remembered.get(os.path.abspath(target.path))
            if last is not None and last.digest == f.digest:
                f.scan = last.scan
            else:
                f.scan, f.source = scan_file(self.checker, target, "", data)

    def project(self) -> tuple[ProjectFacts, str]:
        """The project's facts, and their digest (part of the key of the findings of
        every file a rule looks at)."""
        project = self.checker.empty_project()
        module_digests: dict[str, str] = {}
        for f in self.files:
            if f.scan is not None and f.scan.facts is not None:
                project.add(f.scan.facts, str(f.target.path))
                module_digests[file_key(str(f.target.path))] = f.scan.facts_digest
        project_digest = digest(
            canonical(project.configured_dataset_sizes), *(f"{m}={module_digests[m]}" for m in project.modules)
        )
        return project, project_digest

    def check(self, project: ProjectFacts, project_digest: str) -> None:
        """Pass 2: the files left, with the project's facts (reusing the findings the
        cache holds under the same key)."""
        todo = []
        for f in self.files:
            if f.result is not None:
                continue
            needs = f.scan is not None and self.checker.needs_project(f.scan.triggered)
            f.result_key = self.keys.result(f, project_digest if needs else None, config_dependencies(f, project) if needs else "-")
            last = self.remembered.get(os.path.abspath(f.target.path))
            if self._reusable(last, f):
                self.finished(f, FileResult(f.target.display, last.findings or []))  # type: ignore[union-attr]
                continue
            todo.append(f)
        by_index = {f.index: f for f in todo}

        def with_the_kept_tree(run: _Pass, job: _Job) -> _Done:
            source = by_index[job.index].source
            if source is None:
                return _check_step(run, job)
            return _Done(job.index, job.module, None, lint_file(run.checker, source, run.project, run.mode))

        def checked(done: _Done) -> None:
            assert done.result is not None
            self.finished(by_index[done.index], done.result)

        # every file left parsed here in pass 1: no worker would save a parse
        jobs = 1 if all(f.source is not None for f in todo) else self.jobs
        _run_pass(_Pass(self.checker, project, self.mode), _check_step, todo, jobs, checked, here=with_the_kept_tree)


def check_run(checker: FileChecker, targets: list[Target], jobs: int, cache: Cache | None, fix_edits: bool, progress: Progress | None = None) -> Report:
    return _CheckRun(checker, targets, jobs, cache, fix_edits, progress).run()


def _replay_run(entry: object, run_key: tuple[str, str], files: list[_File], fix_edits: bool) -> list[list[Finding]] | None:
    """The findings of the readable files from the last run over the same paths, if
    every file is as it was then (one small entry per set of paths, overwritten),
    and their fixes have line edits if ``fix_edits``."""
    if not (isinstance(entry, tuple) and len(entry) == 3 and entry[0] == run_key[1] and isinstance(entry[1], list)):
        return None
    findings = entry[1]
    if len(findings) != sum(1 for f in files if f.digest) or not all(
        isinstance(group, list) and all(isinstance(x, Finding) for x in group) for group in findings
    ):
        return None
    if fix_edits and any(lacks_line_edits(group) for group in findings):
        return None
    return findings


def _reached_as_remembered(entry: object, start: int) -> list[_File]:
    """The config files the last run over these paths reached (its "run" entry),
    read again: all of them if each is as it was then (a replay then covers them),
    else none (they join the run again after the scan)."""
    if not (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[2], list)):
        return []
    files = []
    for item in entry[2]:
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            return []
        path, display, expected = item
        try:
            data = Path(path).read_bytes()
        except OSError:
            return []
        if content_digest(data) != expected:
            return []
        files.append(_File(start + len(files), Target(Path(path), display), "", data, expected, reached=True))
    return files


def reached_configs(files: list[_File], known: set[str]) -> list[Target]:
    """The config files that the scanned Python files read, not among ``known``
    (absolute paths), in a stable order."""
    from losslint.analysis.configs import ConfigReads, files_read
    from losslint.discovery import display_path

    found: set[str] = set()
    for f in files:
        reads = f.scan.facts.get(ConfigReads) if f.scan is not None and f.scan.facts is not None else None
        for read in reads.reads if reads is not None else ():
            for key in files_read(read, file_key(str(f.target.path))):  # a Hydra app: every file composed
                if key not in known:
                    found.add(key)
    return [Target(Path(key), display_path(Path(key))) for key in sorted(found)]


def config_dependencies(f: _File, project: ProjectFacts) -> str:
    """The digest of the bytes of the config files a Python file reads, or of the
    Python files that read a config: what its findings depend on besides its own
    bytes and the project's facts."""
    from losslint.analysis import configs

    key = file_key(str(f.target.path))
    if f.scan is not None and f.scan.facts is None:  # a config file
        others = configs.readers_of(project, key)
    else:
        others = configs.dependencies_of(project, key)  # the configs it reads, yacs YAMLs merged onto its defaults
    if not others:
        return "-"
    parts = []
    for other in sorted(set(others)):
        try:
            parts.append(f"{other}={content_digest(Path(other).read_bytes())}")
        except OSError:
            parts.append(f"{other}=-")
    return digest(*parts)


def _remembered(cache: Cache, run_key: tuple[str, str]) -> dict[str, _Remembered]:
    entry = cache.get("files", run_key[0])
    if not (isinstance(entry, dict) and all(isinstance(v, _Remembered) for v in entry.values())):
        return {}
    return entry


def _remember_files(cache: Cache, run_key: tuple[str, str], files: list[_File]) -> None:
    """This run's state for the next run over the same paths: every file's scan and
    findings (a file on which losslint crashed is left out, to be tried again)."""

    def crashed(f: _File) -> bool:
        return f.result is not None and f.result.internal_error

    state = {
        os.path.abspath(f.target.path): _Remembered(
            f.digest, f.module, f.scan, f.result_key, [portable(x) for x in f.result.findings] if f.result else []
        )
        for f in files
        if f.digest and f.scan is not None and f.scan.crash is None and not crashed(f) and f.result_key
    }
    cache.put("files", run_key[0], state)


def _remember_run(cache: Cache, run_key: tuple[str, str], files: list[_File]) -> None:
    """The run's linked findings, replayed as they are by a run that finds every
    file as it was (it needs no rule, not even to link them)."""
    readable = [f for f in files if f.digest]
    reached = [[os.path.abspath(f.target.path), f.target.display, f.digest] for f in readable if f.reached]
    cache.put(
        "run", run_key[0], (run_key[1], [[portable(x) for x in f.result.findings] if f.result else [] for f in readable], reached)
    )


# -- --fix and --diff -------------------------------------------------------------------


def fix_run(checker: FileChecker, targets: list[Target], jobs: int, mode: Mode, progress: Progress | None = None) -> Report:
    """--fix (write) or --diff (show) every file, on every core, never through the
    cache (a fix is computed on the file as it is). The same two passes as a check:
    scan every file for the project's facts, then fix each file a rule looks at
    against them, in a worker that reads, parses, fixes and writes it and then lets
    it go: memory is the facts plus the largest file in flight, not the project.
    Each file is fixed against the facts the run found (its own updated as it is
    fixed), so the result never depends on the order or the process."""
    files = [_File(index, target, "", bytes_on_disk=_size_on_disk(target)) for index, target in enumerate(targets)]
    by_index = {f.index: f for f in files}
    done_count = 0

    def finished(done: _Done) -> None:
        nonlocal done_count
        assert done.result is not None
        by_index[done.index].result = done.result
        done_count += 1
        if progress:
            progress(done_count, len(files))

    def scanned(done: _Done) -> None:
        f = by_index[done.index]
        f.module, f.scan = done.module, done.scan
        if done.result is not None:  # unreadable, unparsable, or no rule looks at it: nothing to fix
            finished(done)

    _run_pass(_Pass(checker, None, mode), _scan_path_step, files, jobs, scanned)
    project = checker.empty_project()
    for f in files:
        if f.scan is not None and f.scan.facts is not None:
            project.add(f.scan.facts, str(f.target.path))
    known = {os.path.abspath(f.target.path) for f in files}
    for target in reached_configs(files, known):  # the config files the code reads are fixed too
        f = _File(len(files), target, "", bytes_on_disk=_size_on_disk(target), reached=True)
        files.append(f)
        by_index[f.index] = f
    todo = [f for f in files if f.result is None]
    _run_pass(_Pass(checker, project, mode), _fix_step, todo, jobs, finished)
    return _report(checker, [f.result or FileResult(f.target.display) for f in files])


def _size_on_disk(target: Target) -> int:
    try:
        return target.path.stat().st_size
    except OSError:
        return 0
