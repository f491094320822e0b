"""Lint time of a script that rebinds the same names in many top-level training cells.

    python benchmarks/many_cells.py [--cells 10 20 40 80 160] [--baseline PATH] [--formats concise json]

A notebook exported to a script (or a long experiment script) repeats its
training cell: each cell rebinds ``model``, ``optimizer``, ``train_loader`` and
``criterion`` at top level and trains again. Every cell has all three findings
(a loss divided by the batch size, a partial last batch, SGD with momentum and no
clip), and every name has as many bindings as there are cells, so an analysis
that looks at every binding for every use, or at the whole file for every
finding, grows with the square (or the cube) of the file.

The files are generated here (``generate``), in a temporary folder, and linted
cold (``--no-cache``) in fresh processes, one file per run: ``concise`` (the
findings) and ``json`` (also every fix's line edits). With ``--baseline PATH``
(a checkout of another version of losslint) that version is timed too, on the
same files, alternating with this one within each repetition. Wall-clock and
CPU medians including interpreter start-up; a run over ``--timeout`` seconds is
stopped and reported as such. The bar: time proportional to the size, so each
doubling of the cells at most doubles the time spent past start-up (the
``x2`` column: the ratio of the CPU time to the row above's), and the output
proportional to the findings (the ``output`` column: the bytes written).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = "import torch\nimport torch.nn as nn\nfrom torch.utils.data import DataLoader\n\n"
CELL = """for epoch in range(10):
    for x, y in train_loader:
        optimizer.zero_grad()
        out = model(x)
        loss = criterion(out, y) / x.size(0)
        loss.backward()
        optimizer.step()
    scheduler.step()
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
criterion = nn.CrossEntropyLoss()

"""


def generate(cells: int) -> str:
    """The script: imports, then ``cells`` times the training cell."""
    return HEADER + CELL * cells


def timed(path: Path, fmt: str, pythonpath: str | None, timeout: float) -> tuple[float, float, int] | None:
    """(wall, CPU) seconds of one run (CPU: user + system of the process and its
    workers, which a loaded machine inflates less than the wall clock) and the bytes
    it wrote; None past the timeout."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "losslint", "check", "--no-cache", "--no-progress", "--exit-zero", "--output-format", fmt, path.name]
    start, used = time.perf_counter(), _children_cpu()
    try:
        done = subprocess.run(command, cwd=path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - used
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "Traceback" in stderr:
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {stderr[-2000:]}")
    return elapsed, cpu, len(done.stdout)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    parser.add_argument("--formats", nargs="+", default=["concise", "json"])
    parser.add_argument("--baseline", type=Path, help="another losslint checkout (its folder holding losslint/) to time too")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take before it is stopped")
    args = parser.parse_args()
    versions = {"this": None}
    if args.baseline is not None:
        versions["baseline"] = str(args.baseline.resolve())
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="losslint-many-cells-") as scratch:
        times: dict[tuple[str, str, int], list[tuple[float, float, int] | None]] = {}
        for cells in args.cells:
            path = Path(scratch) / f"cells{cells}.py"
            path.write_text(generate(cells), encoding="utf-8")
            for _ in range(args.repetitions):
                for fmt in args.formats:
                    for name, pythonpath in versions.items():
                        known = times.get((name, fmt, cells), [])
                        if known and known[-1] is None:
                            continue  # it ran past the timeout once: not again
                        times.setdefault((name, fmt, cells), []).append(timed(path, fmt, pythonpath, args.timeout))
            print(f"  {cells} cells done (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    for fmt in args.formats:
        print(f"\n--output-format {fmt}, cold, medians of {args.repetitions} (wall, and CPU with its x2; the output's size)")
        print(f"{'cells':>6} {'lines':>7} " + " ".join(f"{name:>10} {'CPU':>8} {'x2':>5} {'output':>8}" for name in versions))
        previous: dict[str, float | None] = {}
        for cells in args.cells:
            row = f"{cells:>6} {generate(cells).count(chr(10)):>7} "
            for name in versions:
                runs = times[(name, fmt, cells)]
                wall = None if None in runs else statistics.median(r[0] for r in runs)  # type: ignore[index]
                cpu = None if None in runs else statistics.median(r[1] for r in runs)  # type: ignore[index]
                before = previous.get(name)
                ratio = f"{cpu / before:5.2f}" if cpu and before else "     "
                shown = f"{wall:.2f} s" if wall is not None else f">{args.timeout:.0f} s"
                size = _size(runs[-1][2]) if runs[-1] is not None else ""  # type: ignore[index]
                row += f"{shown:>10} {f'{cpu:.2f} s' if cpu is not None else '':>8} {ratio} {size:>8} "
                previous[name] = cpu
            print(row.rstrip())


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


if __name__ == "__main__":
    main()
