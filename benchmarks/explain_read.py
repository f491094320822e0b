"""How long ``losslint explain`` takes on a 1,000,000-step CSV log.

    python benchmarks/explain_read.py [--rows 1000000] [--repeat 3]

Writes a CSV (step, epoch, loss, lr) of a training with a spike on the last step
of every 1390-step pass, then times, in fresh processes, reading it
(``read_log``) and reading plus detecting (``analyse``), with numpy and with
numpy hidden (the standard-library path). Prints the best of ``--repeat`` runs.
The bar: reading under 5 s.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
if sys.argv[2] == "no-numpy":
    sys.modules["numpy"] = None  # import numpy raises ImportError: the standard-library path
sys.path.insert(0, sys.argv[3])
from losslint.explain.readers import read_log
from losslint.explain.detect import analyse
started = time.perf_counter()
log = read_log(sys.argv[1])
read = time.perf_counter() - started
analysis = analyse(log)
total = time.perf_counter() - started
print(json.dumps({"read": read, "total": total, "points": len(log.series),
                  "period": analysis.period.steps if analysis.period else None}))
"""


def write_log(path: Path, rows: int, per_pass: int = 1390) -> None:
    rng = random.Random(0)
    with path.open("w") as handle:
        handle.write("step,epoch,loss,lr\n")
        for step in range(1, rows + 1):
            loss = (0.3 + 2.0 * math.exp(-step / 50_000)) * math.exp(rng.gauss(0, 0.05))
            if step % per_pass == 0:
                loss *= 10
            handle.write(f"{step},{(step - 1) // per_pass},{loss:.6f},0.001\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "loss.csv"
        write_log(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"{args.rows} rows, {size:.1f} MB CSV")
        for mode in ("numpy", "no-numpy"):
            runs = [
                json.loads(subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(ROOT)],
                                          capture_output=True, text=True, check=True).stdout)
                for _ in range(args.repeat)
            ]
            best_read = min(r["read"] for r in runs)
            best_total = min(r["total"] for r in runs)
            print(f"{mode:>9}: read {best_read:.2f} s, read + detect {best_total:.2f} s, period {runs[0]['period']}")


if __name__ == "__main__":
    main()
