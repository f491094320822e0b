"""Config files no code reads cost nothing: a tree of training scripts linted
with and without hundreds of YAML files beside them (Hydra-style config groups
that no Python file loads), cold (--no-cache), median of several runs.

    python benchmarks/configs.py [--yaml 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree(base: Path, yaml_files: int) -> Path:
    shutil.copytree(ROOT / "fixtures", base, ignore=shutil.ignore_patterns("logs", "*.png"))
    (base / ".git").mkdir()
    for index in range(yaml_files):
        group = base / "configs" / f"group{index % 20}"
        group.mkdir(parents=True, exist_ok=True)
        (group / f"option{index}.yaml").write_text(
            f"# option {index}\ntrainer:\n  max_epochs: {index}\n  accelerator: gpu\ndata:\n  batch_size: {32 + index % 7}\n"
        )
    return base


def timed(path: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "losslint", "check", "--no-cache", "--exit-zero", "-q", "-j", "1", "."], cwd=path, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--yaml", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        without = timed(tree(Path(tmp) / "without", 0), args.runs)
        with_yaml = timed(tree(Path(tmp) / "with", args.yaml), args.runs)
    print(f"fixtures/ without configs: {without:.2f} s; with {args.yaml} unread YAML files: {with_yaml:.2f} s ({with_yaml / without:.2f}x)")


if __name__ == "__main__":
    main()
