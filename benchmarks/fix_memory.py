"""Peak memory and time of ``losslint check --fix`` over a corpus (Linux: /proc).

    python benchmarks/fix_memory.py [CORPUS] [--unsafe] [--jobs N]

CORPUS defaults to the corpus ``benchmarks/run.py`` builds (benchmarks/.cache/corpus);
it is copied to a temporary folder first (--fix writes), never fixed in place.
Reported: the wall time, the peak of the memory of losslint's process and all
its workers together (proportional set sizes, sampled every 50 ms), the largest
single process, the files fixed. The bar: the summed peak at most 600 MB with every core in use.
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


def tree_memory(root: int) -> tuple[int, int]:
    """(the memory of ``root`` and its descendants together, the largest one's), in
    bytes: proportional set sizes (a page shared by n processes, as a forked
    worker shares its parent's, counts 1/n in each), so the sum is what the run
    takes from the machine; resident set sizes where PSS cannot be read."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total = largest = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        size = _pss(pid)
        total += size
        largest = max(largest, size)
        todo.extend(children.get(pid, ()))
    return total, largest


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * PAGE
    except OSError:
        return 0


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
            total, single = tree_memory(process.pid)
            peak_total, peak_single = max(peak_total, total), max(peak_single, single)
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        out, err = process.communicate()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = [line for line in err.splitlines() + out.splitlines() if line.startswith(("Fixed", "Found", "All checks", "No findings"))]
    print(f"corpus: {args.corpus} ({lines:,} lines), jobs: {args.jobs or os.cpu_count()}, unsafe: {args.unsafe}")
    print(f"exit {process.returncode}, {elapsed:.1f} s; {' '.join(summary)}")
    print(f"peak memory (PSS), all processes together: {peak_total / 2**20:.0f} MiB (bar: <= {BAR_BYTES / 2**20:.0f} MiB)")
    print(f"peak memory (PSS), largest process: {peak_single / 2**20:.0f} MiB")
    print("met" if peak_total <= BAR_BYTES else "NOT met")


if __name__ == "__main__":
    main()
