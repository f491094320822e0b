"""Running smoke trainings: the parent side.

``run_many`` takes the runs to do (a program, its arguments, an optional injected
outlier and seed offset), splits them over ``workers`` worker processes
(``losslint.verify.worker``, which import the frameworks once and fork a child
per run), and returns each run's record. The environment of the workers decides
the device (``CUDA_VISIBLE_DEVICES=""`` hides a GPU for ``--device cpu``), the
Keras backend (torch) and that nothing is byte-compiled into the user's tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import losslint


@dataclass
class HarnessOptions:
    workdir: Path
    device: str = "cpu"  # "cpu" or "cuda" (auto is resolved before)
    epochs: int = 4
    max_steps: int = 400
    full_batches: int = 10
    timeout: float = 120.0  # per run
    workers: int = 2
    inject_factor: float = 50.0

    @property
    def inject_step(self) -> int:
        """Half-way through the second epoch of a shrunk plain loop."""
        steps_per_epoch = self.full_batches + 1
        return steps_per_epoch + steps_per_epoch // 2


@dataclass
class RunSpec:
    key: str
    program: Path
    frameworks: tuple[str, ...] = ("torch",)
    argv: tuple[str, ...] = ()
    cwd: Path | None = None
    inject: bool = False
    seed_offset: int = 0
    cost: float = 1.0  # for balancing the workers
    label: str = ""  # for progress: "torch-ssd-multitask: LL101 fix with an outlier"
    full_batches: int | None = None  # overrides the options' (gradient accumulation needs longer epochs)


@dataclass
class RunResult:
    key: str
    status: str
    steps: list[dict] = field(default_factory=list)
    error: str = ""
    traceback: str = ""
    notes: list[str] = field(default_factory=list)
    shrunk: list[dict] = field(default_factory=list)
    stopped: str = "finished"
    seconds: float = 0.0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def complete_last(self) -> bool:
        """Whether the last recorded epoch is complete (not cut by the step budget)."""
        return self.stopped != "steps"

    def describe_problem(self) -> str:
        if self.status == "timeout":
            return f"timed out ({self.error}; a hang, or a step far slower than a smoke run allows)"
        if self.status == "needs-gpu":
            return f"needs a GPU it does not have ({self.error})"
        if self.status == "no-steps":
            return self.error
        return self.error or self.status


def _from_json(value):
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def worker_environment(device: str) -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(losslint.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["KERAS_BACKEND"] = "torch"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # importing the user's modules writes no __pycache__
    env["MPLBACKEND"] = "Agg"  # a program that plots must not open windows
    env.setdefault("PYTHONHASHSEED", "0")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = "1"
    return env


def _job(spec: RunSpec, options: HarnessOptions, index: int) -> dict:
    return {
        "id": index,
        "program": str(spec.program),
        "argv": list(spec.argv),
        "cwd": str(spec.cwd or spec.program.parent),
        "frameworks": list(spec.frameworks),
        "device": options.device,
        "epochs": options.epochs,
        "max_steps": options.max_steps,
        "full_batches": max(spec.full_batches or 0, options.full_batches),
        "inject_step": options.inject_step if spec.inject else None,
        "inject_factor": options.inject_factor,
        "seed_offset": spec.seed_offset,
        "timeout": options.timeout,
        "output": str(options.workdir / "runs" / f"run-{index}.json"),
    }


def _balance(jobs: list[tuple[dict, float]], workers: int) -> list[list[dict]]:
    groups: list[list[dict]] = [[] for _ in range(max(1, workers))]
    loads = [0.0] * len(groups)
    for job, cost in sorted(jobs, key=lambda item: -item[1]):
        target = loads.index(min(loads))
        groups[target].append(job)
        loads[target] += cost
    return [g for g in groups if g]


def run_many(
    specs: list[RunSpec],
    options: HarnessOptions,
    progress: Callable[[RunSpec, str, float], None] | None = None,
) -> dict[str, RunResult]:
    """Run every spec; return the records by key. Never raises for a program's failure."""
    if not specs:
        return {}
    (options.workdir / "runs").mkdir(parents=True, exist_ok=True)
    base = len(list((options.workdir / "runs").glob("run-*.json")))
    jobs = [(_job(spec, options, base + i), spec.cost) for i, spec in enumerate(specs)]
    by_id = {job["id"]: spec for (job, _), spec in zip(jobs, specs)}
    groups = _balance(jobs, min(options.workers, len(jobs)))
    env = worker_environment(options.device)
    processes = []
    for number, group in enumerate(groups):
        # torch._dynamo is imported by the first optimizer a program builds (1.4 s here).
        preload = ["torch", "torch._dynamo", "torch.utils.data"] + (["keras"] if any("keras" in j["frameworks"] for j in group) else [])
        plan_path = options.workdir / "runs" / f"plan-{base}-{number}.json"
        plan_path.write_text(json.dumps({"preload": preload, "jobs": group}), encoding="utf-8")
        stderr_path = plan_path.with_suffix(".stderr")
        process = subprocess.Popen(
            [sys.executable, "-m", "losslint.verify.worker", str(plan_path)],
            stdout=subprocess.PIPE,
            stderr=stderr_path.open("w"),
            text=True,
            env=env,
            cwd=str(options.workdir),
        )
        processes.append((process, group, stderr_path))

    lock = threading.Lock()

    def follow(process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "done" and progress:
                with lock:
                    progress(by_id[int(parts[1])], parts[2], float(parts[3]))

    threads = [threading.Thread(target=follow, args=(p,), daemon=True) for p, _, _ in processes]
    for thread in threads:
        thread.start()
    limit = sum(options.timeout + 5 for _ in specs) + 60
    started = time.perf_counter()
    worker_errors: dict[int, str] = {}
    for process, group, stderr_path in processes:
        remaining = max(1.0, limit - (time.perf_counter() - started))
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode:
            stderr = stderr_path.read_text(encoding="utf-8", errors="replace")
            for job in group:
                worker_errors[job["id"]] = stderr.strip()[-2000:]
    for thread in threads:
        thread.join(timeout=5)

    results: dict[str, RunResult] = {}
    for job, _ in jobs:
        spec = by_id[job["id"]]
        results[spec.key] = _load(spec.key, Path(job["output"]), worker_errors.get(job["id"], ""))
    return results


def _load(key: str, path: Path, worker_error: str) -> RunResult:
    try:
        record = _from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return RunResult(key, "harness-error", error=f"no result from the worker{': ' + worker_error if worker_error else ''}")
    log_tail = ""
    log = Path(str(path) + ".log")
    if log.is_file():
        log_tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    return RunResult(
        key=key,
        status=record.get("status", "crash"),
        steps=record.get("steps", []),
        error=record.get("error", ""),
        traceback=record.get("traceback", ""),
        notes=record.get("notes", []),
        shrunk=record.get("shrunk", []),
        stopped=record.get("stopped", "finished"),
        seconds=float(record.get("seconds", 0.0)),
        log_tail=log_tail,
    )
