"""Peak memory and time of ``losslint check --fix`` over a corpus (Linux: /proc).

    python benchmarks/fix_memory.py [CORPUS] [--unsafe] [--jobs N]

CORPUS defaults to the corpus ``benchmarks/run.py`` builds (benchmarks/.cache/corpus);
it is copied to a temporary folder first (--fix writes), never fixed in place.
Reported: the wall time, the peak of the summed resident memory of losslint's
process and all its workers (sampled every 20 ms), the largest single process,
the files fixed. The bar: the summed peak at most 600 MB with every core in use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR_BYTES = 600 * 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> tuple[int, int]:
    """(summed RSS of ``root`` and its descendants, the largest one's) in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    total = largest = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        largest = max(largest, rss.get(pid, 0))
        todo.extend(children.get(pid, ()))
    return total, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=HERE / ".cache" / "corpus")
    parser.add_argument("--unsafe", action="store_true", help="--unsafe-fixes too")
    parser.add_argument("--jobs", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"no corpus at {args.corpus}: run benchmarks/run.py once, or give a folder")
    scratch = Path(tempfile.mkdtemp(prefix="losslint-fix-memory-"))
    try:
        copy = scratch / "corpus"
        shutil.copytree(args.corpus, copy, symlinks=True)
        lines = sum(p.read_bytes().count(b"\n") for p in copy.rglob("*.py") if p.is_file() and not p.is_symlink())
        command = [sys.executable, "-m", "losslint", "check", "--fix", "--no-cache", "--no-progress", "--statistics", str(copy)]
        command += ["--unsafe-fixes"] if args.unsafe else []
        command += ["--jobs", str(args.jobs)] if args.jobs else []
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_total = peak_single = 0
        while process.poll() is None:
            total, single = tree_rss(process.pid)
            peak_total, peak_single = max(peak_total, total), max(peak_single, single)
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        out, err = process.communicate()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = [line for line in err.splitlines() + out.splitlines() if line.startswith(("Fixed", "Found", "All checks", "No findings"))]
    print(f"corpus: {args.corpus} ({lines:,} lines), jobs: {args.jobs or os.cpu_count()}, unsafe: {args.unsafe}")
    print(f"exit {process.returncode}, {elapsed:.1f} s; {' '.join(summary)}")
    print(f"peak RSS, all processes together: {peak_total / 2**20:.0f} MiB (bar: <= {BAR_BYTES / 2**20:.0f} MiB)")
    print(f"peak RSS, largest process: {peak_single / 2**20:.0f} MiB")
    print("met" if peak_total <= BAR_BYTES else "NOT met")


if __name__ == "__main__":
    main()
