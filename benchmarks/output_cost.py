"""What ``--output-format json`` costs next to the text output, cold and warm.

    python benchmarks/output_cost.py [CORPUS] [--repetitions N]

CORPUS defaults to the corpus ``benchmarks/run.py`` builds (benchmarks/.cache/corpus).
For each format: a cold run (an empty cache of its own) and then a warm run (the
same again, nothing changed), alternating text and JSON within each repetition;
medians including interpreter start-up, of the wall clock and of the CPU time of
losslint and its workers (on a machine other jobs share, the CPU time is the
steadier of the two). The JSON output carries every fix's line edits, which the
text output does not show; the bar is JSON within 1.3x of text, cold and warm.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR = 1.3


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cache: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run (the CPU of every process it waited for)."""
    env = {**os.environ, "LOSSLINT_CACHE_DIR": str(cache)}
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode not in (0, 1, 2) or "Traceback" in done.stderr:  # (2: an LL005 finding in the corpus)
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=HERE / ".cache" / "corpus")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"no corpus at {args.corpus}: run benchmarks/run.py once, or give a folder")
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="losslint-output-cost-"))
    try:
        for repetition in range(args.repetitions):
            for fmt in ("text", "json"):
                cache = scratch / f"{fmt}-{repetition}"
                command = [sys.executable, "-m", "losslint", "check", "--no-progress", "--output-format", fmt, str(args.corpus)]
                times.setdefault((fmt, "cold"), []).append(timed(command, cache))
                times.setdefault((fmt, "warm"), []).append(timed(command, cache))
                (cold, cold_cpu), (warm, warm_cpu) = times[(fmt, "cold")][-1], times[(fmt, "warm")][-1]
                print(f"{fmt}: cold {cold:.2f} s ({cold_cpu:.2f} s CPU), warm {warm:.2f} s ({warm_cpu:.2f} s CPU)", file=sys.stderr, flush=True)
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"corpus: {args.corpus}, {args.repetitions} repetitions, medians")
    met = True
    for state in ("cold", "warm"):
        for clock, which in (("wall", 0), ("CPU", 1)):
            text = statistics.median(run[which] for run in times[("text", state)])
            json_ = statistics.median(run[which] for run in times[("json", state)])
            ratio = json_ / text
            if clock == "wall":  # (the bar is on the wall clock)
                met = met and ratio <= BAR
            print(f"{state} {clock:4}: text {text:6.2f} s  json {json_:6.2f} s  json/text {ratio:.2f}x (bar: <= {BAR}x)")
    print("met" if met else "NOT met")


if __name__ == "__main__":
    main()
