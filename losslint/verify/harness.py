"""Running smoke trainings: the parent side.

A ``WorkerPool`` takes the runs to do (a program, its arguments, an optional
injected outlier and seed offset), splits them over ``workers`` worker processes
(``losslint.verify.worker``, which import the frameworks once and fork a child
per run) that stay up for every round of a verification, and returns each run's
record. The environment of the workers decides
the device (``CUDA_VISIBLE_DEVICES=""`` hides a GPU for ``--device cpu``), the
Keras backend (torch) and that nothing is byte-compiled into the user's tree.
"""

from __future__ import annotations

import json
import os
import queue
import signal
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
    timeout: float | None = None  # overrides the options'
    remainder: str = "smoke"  # "smoke": the last batch shrunk to 1 or 2 samples; "real": N % B


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
    param_device: str | None = None  # where the recorded optimizer's parameters were

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def complete_last(self) -> bool:
        """Whether the last recorded epoch is complete (not cut by the step budget)."""
        return self.stopped != "steps"

    def tail(self, lines: int = 15) -> str:
        """The last lines the program printed (its stderr included: argparse's usage, a traceback)."""
        kept = [line for line in self.log_tail.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])

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
        "timeout": spec.timeout or options.timeout,
        "remainder": spec.remainder,
        "output": str(options.workdir / "runs" / f"run-{index}.json"),
    }


class WorkerPool:
    """Worker processes that stay up for a whole verification: the frameworks are
    imported once per worker, however many rounds of trainings (extra seeds) follow.
    Jobs go to a worker's stdin as JSON lines; it answers ``started ID PID`` when a
    training starts (its process group, which ``close(kill=True)`` kills: helpers
    and DataLoader workers of the program included) and ``done ID STATUS SECONDS``."""

    def __init__(self, options: HarnessOptions) -> None:
        self.options = options
        self.processes: list[subprocess.Popen] = []
        self.stderr_paths: list[Path] = []
        self.answers: queue.Queue[tuple[int, str, float] | tuple[int, None, None]] = queue.Queue()
        self.next_id = 0
        self.trainings: dict[int, int] = {}  # job id -> process group of its training, while it runs

    def _start(self, count: int) -> None:
        env = worker_environment(self.options.device)
        runs = self.options.workdir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        while len(self.processes) < count:
            number = len(self.processes)
            stderr_path = runs / f"worker-{number}.stderr"
            process = subprocess.Popen(
                [sys.executable, "-m", "losslint.verify.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_path.open("w"),
                text=True,
                env=env,
                cwd=str(self.options.workdir),
                start_new_session=True,  # Ctrl-C reaches losslint, which ends the workers itself
            )
            self.processes.append(process)
            self.stderr_paths.append(stderr_path)
            threading.Thread(target=self._follow, args=(number, process), daemon=True).start()

    def _follow(self, number: int, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "started":
                self.trainings[int(parts[1])] = int(parts[2])
            elif len(parts) == 4 and parts[0] == "done":
                self.trainings.pop(int(parts[1]), None)
                self.answers.put((int(parts[1]), parts[2], float(parts[3])))
        self.answers.put((-1 - number, None, None))  # this worker is gone

    def run(self, specs: list[RunSpec], progress: Callable[[RunSpec, str, float], None] | None = None) -> dict[str, RunResult]:
        if not specs:
            return {}
        jobs = []
        for spec in specs:
            jobs.append((_job(spec, self.options, self.next_id), spec))
            self.next_id += 1
        self._start(min(self.options.workers, max(len(jobs), len(self.processes))))
        alive = [i for i, p in enumerate(self.processes) if p.poll() is None]
        loads = {i: 0.0 for i in alive}
        assigned: dict[int, int] = {}
        for job, spec in sorted(jobs, key=lambda item: -item[1].cost):
            worker = min(loads, key=loads.get) if loads else None
            if worker is None:
                break
            loads[worker] += spec.cost
            assigned[job["id"]] = worker
            try:
                stdin = self.processes[worker].stdin
                assert stdin is not None
                stdin.write(json.dumps(job) + "\n")
                stdin.flush()
            except (OSError, ValueError):
                assigned.pop(job["id"])
        by_id = {job["id"]: spec for job, spec in jobs}
        pending = set(assigned)
        limit = time.perf_counter() + sum((spec.timeout or self.options.timeout) + 5 for spec in specs) + 60
        while pending:
            try:
                job_id, status, seconds = self.answers.get(timeout=max(0.1, limit - time.perf_counter()))
            except queue.Empty:
                break
            if status is None:  # a worker died: its jobs will not come back
                worker = -1 - job_id
                pending -= {j for j in pending if assigned[j] == worker}
                continue
            if job_id in pending:
                pending.discard(job_id)
                if progress:
                    progress(by_id[job_id], status, seconds or 0.0)
        results: dict[str, RunResult] = {}
        for job, spec in jobs:
            worker = assigned.get(job["id"])
            error = ""
            if worker is not None and self.processes[worker].poll() not in (None, 0):
                error = self.stderr_paths[worker].read_text(encoding="utf-8", errors="replace").strip()[-2000:]
            results[spec.key] = _load(spec.key, Path(job["output"]), error)
        return results

    def close(self, kill: bool = False) -> None:
        """End the workers: at the end of their input, or (``kill``: an error, Ctrl-C,
        SIGTERM) at once, with every training's process group."""
        if kill:
            for group in list(self.trainings.values()):
                _kill_group(group)
            for process in self.processes:
                _kill_group(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                if process.stdin:
                    process.stdin.close()
            except OSError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=2 if kill else 30)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        for group in list(self.trainings.values()):
            _kill_group(group)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        self.close(kill=exc_type is not None)


def _kill_group(group: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_many(
    specs: list[RunSpec],
    options: HarnessOptions,
    progress: Callable[[RunSpec, str, float], None] | None = None,
) -> dict[str, RunResult]:
    """Run every spec in a pool of its own; return the records by key. Never raises
    for a program's failure."""
    with WorkerPool(options) as pool:
        return pool.run(specs, progress)


def _load(key: str, path: Path, worker_error: str) -> RunResult:
    log_tail = ""
    log = Path(str(path) + ".log")
    if log.is_file():
        log_tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    try:
        record = _from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return RunResult(
            key, "harness-error", error=f"no result from the worker{': ' + worker_error if worker_error else ''}", log_tail=log_tail
        )
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
        param_device=record.get("param_device"),
    )
