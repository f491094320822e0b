"""losslint against its peers on real code nobody here wrote.

    python benchmarks/run.py            # in the project's environment (pip install -e .)

1. The corpus: the sdists of timm, pytorch-lightning, keras and transformers from
   PyPI (``pip download --no-binary :all: --no-deps``, pinned versions), their
   ``.py`` files unpacked into ``benchmarks/.cache/corpus`` (about 1.75M lines;
   ignored by git, downloaded once).
2. The peers: flake8 and TorchFix in a virtual environment of their own
   (``benchmarks/.cache/peers``), installed once.
3. Timings, alternating the tools within each repetition so that the machine's
   state (its other load, its file cache) weighs on all of them alike; the
   median is reported, with the CPU time of each process tree:

   - on the whole corpus: losslint cold (an empty cache), losslint warm (the
     cache of the cold run just before; nothing changed), and the floor, a bare
     ``ast.parse`` of every file (one process, like a linter without rules);
   - on a sample of the same files (every k-th file, about 60k lines): the same
     three, flake8 with TorchFix as its users run it (``--select TOR``) and plain
     flake8 (its default checks, in an environment without TorchFix). flake8 with
     TorchFix reads about 2.3k lines per CPU-second: the whole corpus would take it
     over six minutes a repetition on two cores (``--full-peers`` runs it anyway).

   Every tool gets every core it can use (losslint and flake8: their default).
4. It prints files, lines, medians, ratios against the bars (TorchFix / losslint
   cold >= 10, losslint cold / ast.parse <= 3, warm / cold <= 5%), losslint's
   peak memory, and whether the run was free of crashes (no LL005 finding).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
PACKAGES = ("timm==1.0.31", "pytorch-lightning==2.6.6", "keras==3.15.1", "transformers==5.23.0")
PEERS = ("flake8==7.5.0", "torchfix==0.7.0")  # the second environment: flake8 alone
# The corpus lies in a git-ignored folder of this repository: losslint would
# (rightly) skip it. Its own configuration says to lint it as a project of its own.
CORPUS_CONFIG = "# losslint's benchmark corpus: lint every file here.\nrespect-gitignore = false\n"


# -- the corpus -------------------------------------------------------------------


def corpus() -> Path:
    root = CACHE / "corpus"
    sdists = CACHE / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    for requirement in PACKAGES:
        name, version = requirement.split("==")
        target = root / f"{name}-{version}"
        if target.is_dir():
            continue
        archives = [p for p in sdists.glob("*.tar.gz") if _sdist_of(p.name, name, version)]
        if not archives:
            print(f"downloading the sdist of {requirement} ...", flush=True)
            subprocess.run(
                # (pip prepares each sdist's metadata; with build isolation it fetches the
                # build backend, pdm-backend or hatchling, which the environment may lack)
                [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                 "-q", requirement, "-d", str(sdists)],
                check=True,
            )
            archives = [p for p in sdists.glob("*.tar.gz") if _sdist_of(p.name, name, version)]
        _unpack_python_files(archives[0], target)
    (root / "losslint.toml").write_text(CORPUS_CONFIG, encoding="utf-8")
    return root


def _sdist_of(filename: str, name: str, version: str) -> bool:
    normal = filename.lower().replace("-", "_")
    return normal.startswith(f"{name.lower().replace('-', '_')}_{version}") and normal.endswith(".tar.gz")


def _unpack_python_files(archive: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.endswith(".py")):
                continue
            relative = Path(*Path(member.name).parts[1:])  # without the archive's top folder
            if not relative.parts or ".." in relative.parts or relative.is_absolute():
                continue
            destination = partial / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                destination.write_bytes(source.read())
    partial.rename(target)


def python_files(root: Path) -> list[Path]:
    """The files losslint lints under ``root`` (its own discovery and configuration),
    which every other tool is then given by name: the same files for all."""
    from losslint.config import load_settings
    from losslint.discovery import discover

    settings = load_settings(None, [root])
    return [t.path for t in discover([root], settings) if t.path.suffix == ".py"]


def sample(files: list[Path], root: Path, lines: int) -> tuple[Path, list[Path]]:
    """Every k-th file, copied with its package folders' __init__.py, about ``lines`` long."""
    total = sum(count_lines(f) for f in files)
    step = max(1, round(total / lines))
    chosen = files[::step]
    target = CACHE / f"sample-{step}"
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        for file in chosen:
            destination = partial / file.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, destination)
        (partial / "losslint.toml").write_text(CORPUS_CONFIG, encoding="utf-8")
        partial.rename(target)
    return target, [target / f.relative_to(root) for f in chosen]


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return handle.read().count(b"\n")


# -- the peers --------------------------------------------------------------------


def peer(name: str, requirements: tuple[str, ...]) -> Path:
    """flake8 in a virtual environment of its own under benchmarks/.cache/NAME.
    Two of them: flake8 runs every installed plugin whatever --select says, so
    plain flake8 is measured where TorchFix is not installed."""
    venv = CACHE / name
    flake8 = venv / ("Scripts" if os.name == "nt" else "bin") / "flake8"
    if not flake8.exists():
        print(f"installing {' '.join(requirements)} into benchmarks/.cache/{name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return flake8


# -- timing -----------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


def timed(command: list[str], env: dict[str, str] | None = None, stdout=subprocess.DEVNULL) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process and the children it waited for, exit code)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE)
    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read() if process.stderr else b""
        cpu = usage.ru_utime + usage.ru_stime
    else:  # pragma: no cover - Windows: wall time only
        _, stderr = process.communicate()
        wall = time.perf_counter() - start
        cpu = float("nan")
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {stderr.decode(errors='replace')[-2000:]}")
    return wall, cpu, process.returncode


def baseline_env(env: dict[str, str], baseline: Path | None) -> dict[str, str]:
    """The environment that runs the baseline's losslint (its folder first on the path)."""
    return {**env, "PYTHONPATH": str(baseline)} if baseline is not None else env


def losslint_command(root: Path) -> list[str]:
    return [sys.executable, str(HERE / "measure.py"), "check", str(root), "--no-progress", "--output-format", "concise", "--exit-zero"]


def measure(
    root: Path, files: list[Path], flake8: tuple[Path, Path] | None, repetitions: int, workdir: Path,
    baseline: Path | None = None,
) -> tuple[dict[str, Tool], dict]:
    listing = workdir / f"files-{root.name}.txt"
    listing.write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
    tools = {name: Tool(name) for name in ("losslint cold", "losslint warm", "ast.parse")}
    if baseline is not None:
        tools["baseline cold"] = Tool("baseline cold")
        tools["baseline warm"] = Tool("baseline warm")
    if flake8 is not None:
        tools["flake8 + TorchFix"] = Tool("flake8 + TorchFix")
        tools["flake8"] = Tool("flake8")
    memory: dict = {}
    output = workdir / f"findings-{root.name}.txt"
    for repetition in range(repetitions):
        cache = workdir / f"cache-{root.name}-{repetition}"
        env = {**os.environ, "LOSSLINT_CACHE_DIR": str(cache), "LOSSLINT_BENCH_RSS": str(workdir / "rss.json")}
        with open(output, "wb") as out:
            wall, cpu, _ = timed(losslint_command(root), env, stdout=out)
        tools["losslint cold"].walls.append(wall)
        tools["losslint cold"].cpus.append(cpu)
        memory = json.loads((workdir / "rss.json").read_text())
        wall, cpu, _ = timed(losslint_command(root), env)
        tools["losslint warm"].walls.append(wall)
        tools["losslint warm"].cpus.append(cpu)
        shutil.rmtree(cache, ignore_errors=True)
        if baseline is not None:
            env = baseline_env({**os.environ, "LOSSLINT_CACHE_DIR": str(cache), "LOSSLINT_BENCH_RSS": str(workdir / "rss-baseline.json")}, baseline)
            for state in ("cold", "warm"):
                wall, cpu, _ = timed(losslint_command(root), env)
                tools[f"baseline {state}"].walls.append(wall)
                tools[f"baseline {state}"].cpus.append(cpu)
            shutil.rmtree(cache, ignore_errors=True)
        wall, cpu, _ = timed([sys.executable, str(HERE / "parse_all.py"), str(listing)])
        tools["ast.parse"].walls.append(wall)
        tools["ast.parse"].cpus.append(cpu)
        if flake8 is not None:
            with_torchfix, plain = flake8
            names = [str(f) for f in files]
            wall, cpu, _ = timed([str(with_torchfix), "--isolated", "--select", "TOR", *names])
            tools["flake8 + TorchFix"].walls.append(wall)
            tools["flake8 + TorchFix"].cpus.append(cpu)
            wall, cpu, _ = timed([str(plain), "--isolated", *names])
            tools["flake8"].walls.append(wall)
            tools["flake8"].cpus.append(cpu)
        print(f"  repetition {repetition + 1}/{repetitions}: " + ", ".join(f"{t.name} {t.walls[-1]:.2f} s" for t in tools.values()), flush=True)
    codes: dict[str, int] = {}
    for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(": ", 1)
        if len(parts) == 2 and parts[1][:2] == "LL":
            code = parts[1].split(" ", 1)[0]
            codes[code] = codes.get(code, 0) + 1
    return tools, {"memory": memory, "codes": codes}


def report(title: str, files: list[Path], tools: dict[str, Tool], extra: dict) -> dict:
    lines = sum(count_lines(f) for f in files)
    print(f"\n== {title}: {len(files)} files, {lines:,} lines (load average now: {os.getloadavg()[0]:.2f})")
    print(f"{'tool':<20} {'median wall':>12} {'median CPU':>11}")
    for tool in tools.values():
        print(f"{tool.name:<20} {tool.wall:>10.2f} s {tool.cpu:>9.2f} s")
    cold, warm, parse = tools["losslint cold"], tools["losslint warm"], tools["ast.parse"]
    ratios = {"cold / ast.parse": cold.wall / parse.wall, "warm / cold": warm.wall / cold.wall}
    print(f"losslint cold / ast.parse: {ratios['cold / ast.parse']:.2f}x (bar: <= 3x)")
    print(f"losslint warm / cold:      {100 * ratios['warm / cold']:.1f}% (bar: <= 5%)")
    if "baseline cold" in tools:
        ratios["cold / baseline cold"] = cold.wall / tools["baseline cold"].wall
        ratios["warm / baseline warm"] = warm.wall / tools["baseline warm"].wall
        print(f"losslint cold / baseline cold: {ratios['cold / baseline cold']:.2f}x (bar: <= 1.5x)")
        print(f"losslint warm / baseline warm: {ratios['warm / baseline warm']:.2f}x (bar: <= 1.5x)")
    if "flake8 + TorchFix" in tools:
        ratios["TorchFix / cold"] = tools["flake8 + TorchFix"].wall / cold.wall
        ratios["flake8 / cold"] = tools["flake8"].wall / cold.wall
        print(f"flake8 + TorchFix / losslint cold: {ratios['TorchFix / cold']:.1f}x (bar: >= 10x)")
        print(f"plain flake8 / losslint cold:      {ratios['flake8 / cold']:.1f}x")
    memory = extra["memory"]
    if memory:
        print(
            f"losslint peak RSS: main process {memory['main_bytes'] / 2**20:.0f} MiB, "
            f"largest worker {memory['largest_worker_bytes'] / 2**20:.0f} MiB"
        )
    codes = extra["codes"]
    crashes = codes.get("LL005", 0)
    print(f"findings by code: {dict(sorted(codes.items()))}")
    print(f"crash-free: {'yes' if crashes == 0 else 'NO'} ({crashes} LL005 findings)")
    return {"files": len(files), "lines": lines, "ratios": ratios, **extra,
            "medians": {t.name: {"wall": t.wall, "cpu": t.cpu} for t in tools.values()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--sample-lines", type=int, default=60_000, help="size of the sample the peers run on")
    parser.add_argument("--full-peers", action="store_true", help="also run flake8 and TorchFix on the whole corpus (long)")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--baseline", type=Path, help="another losslint checkout (the folder holding losslint/) to time cold and warm too")
    parser.add_argument("--no-sample", action="store_true", help="only the whole corpus (no peers)")
    parser.add_argument("--no-corpus", action="store_true", help="only the sample (with the peers)")
    args = parser.parse_args()
    try:
        import losslint  # noqa: F401
    except ImportError:
        raise SystemExit("run this in losslint's environment: pip install -e . first")

    root = corpus()
    flake8 = (peer("peers", PEERS), peer("flake8", PEERS[:1]))
    files = python_files(root)
    sample_root, sample_files = sample(files, root, args.sample_lines)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="losslint-bench-") as work:
        workdir = Path(work)
        baseline = args.baseline.resolve() if args.baseline else None
        if not args.no_sample:
            print(f"\nsample ({len(sample_files)} files): {args.repetitions} repetitions", flush=True)
            tools, extra = measure(sample_root, sample_files, flake8, args.repetitions, workdir, baseline)
            results["sample"] = report("sample, all tools on the same files", sample_files, tools, extra)
        if not args.no_corpus:
            print(f"\nwhole corpus ({len(files)} files): {args.repetitions} repetitions", flush=True)
            tools, extra = measure(root, files, flake8 if args.full_peers else None, args.repetitions, workdir, baseline)
            results["corpus"] = report("whole corpus", files, tools, extra)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
