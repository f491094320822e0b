"""Runs over several processes: the same findings, in the same order, as one
process; the biggest files go out first and alone; a dying worker costs nothing
but time; small runs start no process."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import losslint.parallel as parallel
from losslint.cache import Cache, DetachedFix
from losslint.cli import main
from losslint.config import Settings
from losslint.engine import Linter

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def summary(report) -> list[tuple]:
    return [(f.path, f.cell, f.span, f.code, f.message, f.severity, f.related_locations) for f in report.findings]


@pytest.fixture
def always_parallel(monkeypatch):
    """The fixtures are small: lower the threshold so that they go to workers."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 2)


@pytest.mark.slow
def test_processes_find_what_one_process_finds_in_the_same_order(always_parallel):
    alone = Linter(Settings(), jobs=1).run([FIXTURES])
    assert len(alone.findings) > 20
    for _ in range(2):
        together = Linter(Settings(), jobs=3).run([FIXTURES])
        assert summary(together) == summary(alone)
        assert [r.path for r in together.files] == [r.path for r in alone.files]
    # Fixes come back from the workers with their line edits, the same as computed here.
    fixes = [(f.sort_key, f.fix.line_edits) for f in together.findings if f.fix is not None and f.cell is None]
    assert fixes and all(edits for _, edits in fixes)
    assert fixes == [(f.sort_key, f.fix.line_edits) for f in alone.findings if f.fix is not None and f.cell is None]
    assert any(isinstance(f.fix, DetachedFix) for f in together.findings)  # (they did come from workers)


def test_processes_and_the_cache_together(always_parallel, tmp_path: Path):
    alone = summary(Linter(Settings(), jobs=1).run([FIXTURES], fix_edits=False))
    cache = tmp_path / "cache"
    cold = Linter(Settings(), jobs=2, cache=Cache(cache)).run([FIXTURES], fix_edits=False)
    warm = Linter(Settings(), jobs=2, cache=Cache(cache)).run([FIXTURES], fix_edits=False)
    assert summary(cold) == alone == summary(warm)


def test_largest_files_first_and_a_huge_file_alone():
    files = [parallel._File(i, None, f"m{i}", data=b"x" * size) for i, size in enumerate([10, 5_000_000, 300, 40_000, 20])]
    batches = parallel._batches(files, jobs=2)
    assert [f.module for f in batches[0]] == ["m1"]  # the huge file, alone and first
    assert sorted(f.module for b in batches for f in b) == sorted(f.module for f in files)
    sizes = [len(f.data) for b in batches for f in b]
    assert sizes == sorted(sizes, reverse=True)


def test_a_worker_that_dies_costs_only_time(always_parallel, monkeypatch, tmp_path: Path):
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "torch_project", project)
    expected = summary(Linter(Settings(), jobs=1).run([project]))
    parent = os.getpid()
    original = parallel.scan_file

    def dies_in_a_worker(linter, target, module, data, *args):
        if os.getpid() != parent:
            os._exit(3)  # as if killed for memory
        return original(linter, target, module, data, *args)

    monkeypatch.setattr(parallel, "scan_file", dies_in_a_worker)
    report = Linter(Settings(), jobs=2).run([project])
    assert summary(report) == expected
    assert not report.internal_error


def test_small_runs_start_no_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pool was started for a small run")

    import concurrent.futures

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)  # (parallel imports it where workers run)
    report = Linter(Settings(), jobs=4).run([FIXTURES / "torch_project"])
    assert report.findings


def test_cli_jobs_option(tmp_path: Path):
    runner = CliRunner()
    bad = runner.invoke(main, ["check", "--jobs", "0", str(FIXTURES / "torch_mnist_classifier.py")])
    assert bad.exit_code == 2 and "--jobs" in bad.output
    one = runner.invoke(main, ["check", "--no-cache", "-j", "1", "--output-format", "concise", str(FIXTURES)])
    two = runner.invoke(main, ["check", "--no-cache", "-j", "2", "--output-format", "concise", str(FIXTURES)])
    assert one.exit_code == two.exit_code == 1
    assert one.output == two.output


def _fixed_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*.py"))}


@pytest.mark.slow
@pytest.mark.parametrize("diff", [False, True])
def test_fix_in_workers_writes_what_one_process_writes(always_parallel, tmp_path: Path, monkeypatch, diff: bool):
    """--fix and --diff run file by file in the workers: the same files written,
    the same diffs, the same findings left, as in one process."""
    outcomes = []
    for jobs in (1, 2):
        root = tmp_path / f"j{jobs}"
        shutil.copytree(FIXTURES, root)
        if jobs == 2:
            original = parallel._fix_step
            pids = tmp_path / "pids"
            pids.mkdir()

            def recording(*args, **kwargs):
                (pids / str(os.getpid())).touch()
                return original(*args, **kwargs)

            monkeypatch.setattr(parallel, "_fix_step", recording)
        report = Linter(Settings(), jobs=jobs).run([root], fix=not diff, diff=diff, unsafe=True)
        findings = [(str(Path(f.path).relative_to(root)), f.span, f.code, f.message.replace(str(root), "ROOT")) for f in report.findings]
        diffs = [r.diff.replace(str(root), "ROOT") for r in report.files]
        outcomes.append((_fixed_tree(root), findings, diffs, [r.fixed for r in report.files]))
    assert outcomes[0] == outcomes[1]
    assert (sum(outcomes[0][3]) > 10) != diff and (any(outcomes[0][2]) == diff)
    assert not [p for p in (tmp_path / "j2").rglob("*losslint-tmp*")]
    fixed_in = {p.name for p in (tmp_path / "pids").iterdir()}
    assert fixed_in and str(os.getpid()) not in fixed_in  # fixed in the workers


def test_workers_end_when_their_losslint_process_is_killed(tmp_path: Path):
    """A killed run (SIGKILL for memory, SIGTERM from a CI timeout) leaves no
    worker behind waiting for work forever."""
    import subprocess
    import sys
    import time

    child = textwrap.dedent(
        """\
        import sys, time
        import losslint.parallel as parallel
        parallel.PARALLEL_MIN_BYTES, parallel.PARALLEL_MIN_FILES = 0, 2
        original = parallel.scan_file

        def slow(*args, **kwargs):
            print("working", flush=True)
            time.sleep(60)
            return original(*args, **kwargs)

        parallel.scan_file = slow
        from losslint.cli import main
        main(["check", "--no-cache", "--no-progress", "-j", "2", sys.argv[1]])
        """
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("the workers' end with their parent is Linux's PR_SET_PDEATHSIG")
    run = subprocess.Popen([sys.executable, "-c", child, str(FIXTURES)], stdout=subprocess.PIPE, text=True)
    # (two workers may print on one line before its newline)
    assert run.stdout is not None and "working" in run.stdout.readline()
    workers = [int(p) for p in Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()]
    assert workers
    run.kill()
    run.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() and _alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and _alive(w)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_lets_each_files_analysis_go_when_the_file_is_done(tmp_path: Path, monkeypatch):
    """A worker runs with the cyclic collector off; a file's analyses (a value
    resolver, scopes, memo entries) refer back to its FileContext, and so would
    keep its tree alive until the collection after the batch. Each file's contexts
    are released when it is done: none is left, and nothing cyclic holds a tree."""
    import gc
    from types import SimpleNamespace

    from losslint.context import FileContext
    from losslint.discovery import Target
    from losslint.pipeline import Mode

    script = (FIXTURES / "torch_mnist_classifier.py").read_bytes()
    checker = parallel.FileChecker(Settings())
    target = Target(tmp_path / "train.py", "train.py")
    scan, _ = parallel.scan_file(checker, target, "train", script)
    project = checker.empty_project()
    project.add(scan.facts, str(target.path))
    parallel._WORKER.update(run=parallel._Pass(checker, project, Mode()), step=parallel._check_step)
    monkeypatch.setattr(parallel, "gc", SimpleNamespace(collect=lambda: 0))  # not the batch's collection: the release
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        [done] = parallel._work_batch([parallel._Job(0, target, "train", script, scan)])
        assert done.result is not None and done.result.findings  # the rules did run on it
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, FileContext)]
        assert not left and not [o for o in gc.get_objects() if isinstance(o, FileContext)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        parallel._WORKER.clear()
        if collecting:
            gc.enable()
