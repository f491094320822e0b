"""Performance at the edges (issue 15): what a user waits for before any real work.

    python benchmarks/startup.py [--repeat N] [--examples DIR]

Side by side with ruff and flake8 on the same files (ruff is installed into the
running environment if missing; flake8 7.5.0 runs from a virtual environment of
its own, benchmarks/.cache/flake8, made if missing, so that losslint's flake8
plugin does not run inside it):

- CLI start: ``--version`` (bar: losslint under 150 ms), and ``losslint --help``
  and ``losslint rule LL201``, which must not pay for the rules' analysis;
- one realistic training script: ``check FILE`` without a cache (bar: 300 ms);
- a tree (pytorch/examples: ``--examples DIR``, default the devset's extracted
  tree if present, else fixtures/): a cold run into an empty cache, then a warm
  re-run of the same (bar: warm under 20% of cold);
- the language server on a 1,000-line training file (built from the fixtures'
  training scripts, so the benchmark needs nothing outside the repository),
  driven over stdio by the client of tests/test_integrations_lsp.py: from the
  process start to the first diagnostics (bar: under 1 s), and from a change to
  its diagnostics (bar: under 100 ms); and the same on real code when it is
  there (``--lsp-real FILE``, default yolov5's 975-line train.py from the
  devset's extracted tree, opened in a copy of its repository: the server
  collects the facts of the project's other 51 files first).

Each command is run ``--repeat`` times; the table gives the minimum and the
median wall time of the whole process, as a user's shell would see it, and the
median and minimum CPU time (user + system of the process and its workers;
for the language server: its process's CPU time up to the first diagnostics,
and per change). On a machine shared with other work the CPU time moves least
with the load, so the bars are judged on it and on the wall time, each said.
Also printed: the load average before and after, and which heavy modules
``losslint --version`` and ``check FILE`` import (``sys.modules``).

Bytecode: ``pip install`` compiles a package's modules once; a process started
with ``PYTHONDONTWRITEBYTECODE=1`` (set on some development machines) compiles
every module of losslint from source at each start instead, which is not what a
user waits for. The commands here run as installed: bytecode written once
(untimed, into benchmarks/.cache/pycache through ``PYTHONPYCACHEPREFIX``, so the
tree stays clean) and read afterwards.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ONE_FILE = FIXTURES / "torch_mnist_classifier.py"
LSP_LINES = 1000
# Training scripts the 1,000-line file is made of (real training code: loaders,
# losses, optimizers, loops), repeated in this order until it is long enough.
LSP_PARTS = (
    "torch_mnist_classifier.py", "torch_sgd_momentum_loop.py", "torch_grad_accumulation.py", "torch_amp_accumulation.py",
    "torch_mean_loss_divided.py", "torch_sum_loss_nominal.py", "torch_tabular_batchnorm.py",
)
HEAVY = ("libcst", "losslint.rules.partial_batch_torch", "losslint.analysis.values", "losslint.fixes", "astroid", "pygls", "lsprotocol")


PLAIN_FLAKE8 = ROOT / "benchmarks" / ".cache" / "flake8"
# as installed: modules read from bytecode (see the module's docstring)
INSTALLED = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(ROOT / "benchmarks" / ".cache" / "pycache"),
}


def tool(name: str) -> str:
    """The executable of ``name`` next to this Python, installed if missing."""
    found = Path(sys.executable).parent / name
    if not found.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", name], check=True)
    return str(found)


def plain_flake8() -> str:
    """flake8 without losslint's plugin (flake8 runs every installed plugin, whatever
    ``--select`` says): in a virtual environment of its own, as benchmarks/run.py
    makes it."""
    found = PLAIN_FLAKE8 / "bin" / "flake8"
    if not found.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PLAIN_FLAKE8)], check=True)
        subprocess.run([str(PLAIN_FLAKE8 / "bin" / "pip"), "install", "-q", "flake8==7.5.0"], check=True)
    return str(found)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], repeat: int, cwd: Path = ROOT, env: dict | None = None, before=None) -> tuple[float, float, float, float]:
    """(min wall, median wall, median CPU, min CPU) seconds of ``command``;
    ``before()`` runs untimed before each. CPU (user + system of the process and
    its workers) is what a loaded machine inflates least. A first run, untimed,
    writes the bytecode."""
    env = {**INSTALLED, **(env or {})}
    if before is not None:
        before()
    subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times, cpu = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), _children_cpu()
        subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
    return min(times), statistics.median(times), statistics.median(cpu), min(cpu)


def imported_heavy(command: list[str]) -> list[str]:
    """The heavy modules a losslint command imports (``sys.modules`` once it is done)."""
    probe = (
        "import sys\nfrom losslint.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
        f"print('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=INSTALLED, capture_output=True, text=True)
    [line] = [line for line in done.stderr.splitlines() if line.startswith("heavy:")]
    return [name for name in line.removeprefix("heavy:").split(",") if name]


def lsp_file() -> str:
    lines: list[str] = []
    while len(lines) < LSP_LINES:
        for part in LSP_PARTS:
            lines += (FIXTURES / part).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[:LSP_LINES]) + "\n"


def process_cpu(pid: int) -> float:
    """User + system seconds a running process has used (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def real_lsp_file() -> Path | None:
    """yolov5's train.py (975 lines of real training code) in the devset's extracted tree."""
    trees = sorted(glob.glob("/tmp/devset-trees/ultralytics+yolov5@5081342f04"))
    return Path(trees[0]) / "train.py" if trees else None


def lsp_times(repeat: int, real: Path | None = None, warm: bool = False) -> tuple[list[float], list[float], list[float], list[float]]:
    """Seconds from the server's start to the first diagnostics of a 1,000-line
    file opened at once, and from each change (a line added) to its diagnostics;
    then the server's CPU seconds for each (a change's: the mean of five).
    ``real``: a file of a real repository, opened in a copy of the repository
    (the directory above it with a .git, pyproject.toml or setup.py, else its folder).
    ``warm``: every start in one copy, whose cache holds the project's facts from
    the first start (an editor started again), instead of a fresh copy each."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_integrations_lsp import Client  # the tests' stdio client

    first, relint, first_cpu, relint_cpu = [], [], [], []
    if real is None:
        text = lsp_file()
        assert text.count("\n") == LSP_LINES and "DataLoader" in text
    else:
        text = real.read_text(encoding="utf-8")
        repository = next((d for d in real.parents if any((d / m).exists() for m in (".git", "pyproject.toml", "setup.py"))), real.parent)
    opened = text
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the client starts the server with this environment
    os.environ.update(INSTALLED)
    kept = tempfile.TemporaryDirectory()
    for _ in range(repeat + 1):  # the first, untimed, writes the bytecode (and, warm, the cache)
        with tempfile.TemporaryDirectory() as fresh:
            folder = kept.name if warm else fresh
            text = opened  # the file as on disk (the changes below are the buffer's)
            if real is None:
                workspace = Path(folder)
                (workspace / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
                path = workspace / "train.py"
                path.write_text(text)
            else:
                workspace = Path(folder) / repository.name
                if not workspace.exists():
                    shutil.copytree(repository, workspace, ignore=shutil.ignore_patterns(".git"))
                path = workspace / real.relative_to(repository)
            uri = path.as_uri()
            start = time.perf_counter()
            client = Client(workspace)
            try:
                client.request("initialize", {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}})
                client.notify("initialized", {})
                client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
                diagnostics = client.notification("textDocument/publishDiagnostics")
                first.append(time.perf_counter() - start)
                first_cpu.append(process_cpu(client.process.pid))
                assert real is not None or diagnostics["diagnostics"], "the 1,000-line file has findings"
                before_changes = process_cpu(client.process.pid)
                for version in range(2, 7):
                    text = text + f"print('epoch {version}')\n"
                    start = time.perf_counter()
                    client.notify(
                        "textDocument/didChange",
                        {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
                    )
                    while client.notification("textDocument/publishDiagnostics").get("version") != version:
                        pass
                    relint.append(time.perf_counter() - start)
                relint_cpu.append((process_cpu(client.process.pid) - before_changes) / 5)
            finally:
                client.close()
    kept.cleanup()
    return first[1:], relint[5:], first_cpu[1:], relint_cpu[1:]


def default_examples() -> Path:
    trees = sorted(glob.glob("/tmp/devset-trees/pytorch+examples@*"))
    return Path(trees[0]) if trees else FIXTURES


def lsp_rows(repeat: int, real: Path | None, rows: list, bar) -> None:
    """The language server's rows and bars: the 1,000-line file of the fixtures, and
    ``real`` (a real training file in its repository) when there is one."""
    runs = [("1,000 lines", None, False)]
    if real is not None:
        name = f"{real.parent.name}/{real.name}"
        runs += [(f"real: {name}, cold", real, False), (f"real: {name}, started again", real, True)]
    for label, file, warm in runs:
        first, relint, first_cpu, relint_cpu = lsp_times(max(1, repeat // 2), file, warm)
        opened = ("LSP first diagnostics, " + label, "losslint", min(first), statistics.median(first), statistics.median(first_cpu), min(first_cpu))
        changed = ("LSP re-lint on change, " + label, "losslint", min(relint), statistics.median(relint), statistics.median(relint_cpu), min(relint_cpu))
        rows += [opened, changed]
        bar(opened[0], 1000, opened[2:])
        bar(changed[0], 100, changed[2:])


def report(rows: list, bars: list, load_before: tuple[float, float, float], repeat: int, examples: Path) -> None:
    load = f"load {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {load}; repeat {repeat}; tree: {examples}")
    print("| what | tool | min ms | median ms | median CPU ms | min CPU ms |\n|---|---|---:|---:|---:|---:|")
    for what, who, low, mid, cpu, low_cpu in rows:
        print(f"| {what} | {who} | {low * 1000:.0f} | {mid * 1000:.0f} | {cpu * 1000:.0f} | {low_cpu * 1000:.0f} |")
    print("\nThe bars (issue 15):")
    for name, measured, cpu_met, wall_met in bars:
        verdict = "met" if cpu_met and wall_met else "met in CPU, not in wall time" if cpu_met else "NOT met"
        print(f"- {name}: {measured}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--examples", type=Path, default=None, help="a tree for the cold/warm runs (pytorch/examples)")
    parser.add_argument("--lsp-real", type=Path, default=None, help="a real training file of about 1,000 lines, in its repository")
    parser.add_argument("--lsp-only", action="store_true", help="time the language server only")
    args = parser.parse_args()
    repeat = args.repeat
    load_before = os.getloadavg()
    examples = (args.examples or default_examples()).resolve()
    losslint, ruff, flake8 = tool("losslint"), tool("ruff"), plain_flake8()
    rows: list[tuple[str, str, float, float, float, float]] = []
    bars: list[tuple[str, str, bool, bool]] = []  # (bar, measured, met in CPU, met in wall time)

    def row(what: str, who: str, command: list[str], **kwargs) -> tuple[float, float, float, float]:
        result = timed(command, repeat, **kwargs)
        rows.append((what, who, *result))
        return result

    def bar(name: str, limit_ms: float, result: tuple[float, float, float, float]) -> None:
        low, mid, cpu, _ = result
        measured = f"{cpu * 1000:.0f} ms CPU, {mid * 1000:.0f} ms wall (medians; {low * 1000:.0f} ms min wall)"
        bars.append((f"{name} under {limit_ms:.0f} ms", measured, cpu * 1000 < limit_ms, mid * 1000 < limit_ms))

    real = args.lsp_real or real_lsp_file()
    if args.lsp_only:
        lsp_rows(repeat, real, rows, bar)
        report(rows, bars, load_before, repeat, examples)
        return
    bar("CLI start (`--version`)", 150, row("start (--version)", "losslint", [losslint, "--version"]))
    row("start (--version)", "ruff", [ruff, "--version"])
    row("start (--version)", "flake8", [flake8, "--version"])
    row("--help", "losslint", [losslint, "--help"])
    row("rule LL201", "losslint", [losslint, "rule", "LL201"])
    one = str(ONE_FILE.relative_to(ROOT))
    bar("`check` one file", 300, row(f"check {one}", "losslint", [losslint, "check", "--no-cache", "--exit-zero", one]))
    row(f"check {one}", "ruff", [ruff, "check", "--no-cache", "--exit-zero", one])
    row(f"check {one}", "flake8", [flake8, "--exit-zero", one])

    cache = Path(tempfile.mkdtemp(prefix="losslint-startup-"))
    env = {**os.environ, "LOSSLINT_CACHE_DIR": str(cache)}
    lint_examples = [losslint, "check", "--exit-zero", "--no-progress", "-q", "."]
    cold = row("tree, cold (empty cache)", "losslint", lint_examples, cwd=examples, env=env, before=lambda: shutil.rmtree(cache, ignore_errors=True))
    warm = row("tree, warm re-run", "losslint", lint_examples, cwd=examples, env=env)
    shutil.rmtree(cache, ignore_errors=True)
    row("tree", "ruff (--no-cache)", [ruff, "check", "--no-cache", "--exit-zero", "-q", "."], cwd=examples)
    row("tree", "flake8", [flake8, "--exit-zero", "-q", "."], cwd=examples)

    ratio_wall, ratio_cpu = warm[1] / cold[1], warm[2] / cold[2]
    bars.append(("warm re-run of the tree under 20% of a cold one", f"{ratio_cpu:.1%} of the CPU time, {ratio_wall:.1%} of the wall time (medians)", ratio_cpu < 0.2, ratio_wall < 0.2))
    lsp_rows(repeat, real, rows, bar)
    report(rows, bars, load_before, repeat, examples)
    print(f"heavy modules imported by `losslint --version`: {imported_heavy(['--version']) or 'none'}")
    print(f"heavy modules imported by `losslint rule LL201`: {imported_heavy(['rule', 'LL201']) or 'none'}")
    print(f"heavy modules imported by `losslint check {one}`: {imported_heavy(['check', '--no-cache', '--exit-zero', one]) or 'none'}")


if __name__ == "__main__":
    main()
