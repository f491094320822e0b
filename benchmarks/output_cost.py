"""What ``--output-format json`` costs next to the text output, cold and warm.

    python benchmarks/output_cost.py [CORPUS] [--repetitions N]

CORPUS defaults to the corpus ``benchmarks/run.py`` builds (benchmarks/.cache/corpus).
For each format: a cold run (an empty cache of its own) and then a warm run (the
same again, nothing changed), alternating text and JSON within each repetition;
wall-clock medians including interpreter start-up. The JSON output carries every
fix's line edits, which the text output does not show; the bar is JSON within
1.3x of text, cold and warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR = 1.3


def timed(command: list[str], cache: Path) -> float:
    env = {**os.environ, "LOSSLINT_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1, 2) or "Traceback" in done.stderr:  # (2: an LL005 finding in the corpus)
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=HERE / ".cache" / "corpus")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"no corpus at {args.corpus}: run benchmarks/run.py once, or give a folder")
    times: dict[tuple[str, str], list[float]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="losslint-output-cost-"))
    try:
        for repetition in range(args.repetitions):
            for fmt in ("text", "json"):
                cache = scratch / f"{fmt}-{repetition}"
                command = [sys.executable, "-m", "losslint", "check", "--no-progress", "--output-format", fmt, str(args.corpus)]
                times.setdefault((fmt, "cold"), []).append(timed(command, cache))
                times.setdefault((fmt, "warm"), []).append(timed(command, cache))
                print(f"{fmt}: cold {times[(fmt, 'cold')][-1]:.2f} s, warm {times[(fmt, 'warm')][-1]:.2f} s", file=sys.stderr, flush=True)
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"corpus: {args.corpus}, {args.repetitions} repetitions, medians")
    met = True
    for state in ("cold", "warm"):
        text, json_ = statistics.median(times[("text", state)]), statistics.median(times[("json", state)])
        ratio = json_ / text
        met = met and ratio <= BAR
        print(f"{state}: text {text:6.2f} s  json {json_:6.2f} s  json/text {ratio:.2f}x (bar: <= {BAR}x)")
    print("met" if met else "NOT met")


if __name__ == "__main__":
    main()
