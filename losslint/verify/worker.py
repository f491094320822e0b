"""A worker process that runs smoke trainings: ``python -m losslint.verify.worker``,
with one job (a JSON object) a line on stdin.

Importing torch costs about 1.3 s and Keras 3 about 3 s here, more than a smoke
training itself; so the worker imports them once and forks a child per run
(the child inherits the imported modules). The parent never runs a tensor
operation or touches CUDA before forking, which is what makes the fork safe:
on ``--device cuda`` it preloads torch only (Keras's torch backend touches CUDA
at import), and should CUDA be initialized in it all the same, the run gets a
process of its own (spawned) instead of a fork. Where there is no fork
(Windows), each run gets a process of its own too.

Each training runs in a process group of its own; the group is killed when the
training outlives its time limit, and after it ends (helper processes and
DataLoader workers it left behind). On SIGTERM the worker kills the current
training's group and exits.

The worker prints ``started ID PID`` when a training starts (PID is also its
process group) and ``done ID STATUS SECONDS`` when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def _write(path: str, record: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle)


def _run_forked(job: dict, log_path: str) -> tuple[str, float]:
    from losslint.verify import runtime

    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: the program's output goes to its log
        code = 1
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
            sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
            record = runtime.run(job)
            code = 0 if record["status"] == "ok" else 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    try:
        os.setpgid(pid, pid)  # also here: whichever of parent and child runs first
    except OSError:
        pass
    _announce(job, pid)
    try:
        return _wait(pid, job, started, lambda: _kill_group(pid))
    finally:
        _kill_group(pid)  # what the program left running (helpers, DataLoader workers)
        _CURRENT.clear()


_CURRENT: list[int] = []  # the process group of the training now running


def _announce(job: dict, pid: int) -> None:
    _CURRENT[:] = [pid]
    print(f"started {job['id']} {pid}", flush=True)


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _on_sigterm(signum, frame) -> None:
    for group in _CURRENT:
        _kill_group(group)
    os._exit(128 + signum)


def _wait(pid: int, job: dict, started: float, kill) -> tuple[str, float]:
    deadline = started + float(job.get("timeout", 60))
    delay = 0.005
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        if time.perf_counter() > deadline:
            kill()
            os.waitpid(pid, 0)
            _write(job["output"], {"status": "timeout", "error": f"no result after {job.get('timeout', 60)} s", "steps": []})
            return "timeout", time.perf_counter() - started
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    return _status(job, status), time.perf_counter() - started


def _status(job: dict, wait_status: int) -> str:
    try:
        with open(job["output"], encoding="utf-8") as handle:
            return json.load(handle)["status"]
    except (OSError, ValueError, KeyError):
        if os.WIFSIGNALED(wait_status):
            reason = f"the training process was killed by signal {os.WTERMSIG(wait_status)}"
        else:
            reason = f"the training process exited with status {os.WEXITSTATUS(wait_status)} without a result"
        _write(job["output"], {"status": "crash", "error": reason, "steps": []})
        return "crash"


def _run_spawned(job: dict, log_path: str) -> tuple[str, float]:
    config_path = job["output"] + ".config.json"
    _write(config_path, job)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "losslint.verify.runtime", config_path], stdout=log, stderr=log, start_new_session=True
        )
        _announce(job, process.pid)
        try:
            process.wait(timeout=float(job.get("timeout", 60)))
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            _write(job["output"], {"status": "timeout", "error": f"no result after {job.get('timeout', 60)} s", "steps": []})
            return "timeout", time.perf_counter() - started
        finally:
            _kill_group(process.pid)
            _CURRENT.clear()
    status = _status(job, 0 if process.returncode == 0 else (process.returncode << 8) & 0xFFFF)
    return status, time.perf_counter() - started


def _cuda_initialized() -> bool:
    """Whether this process holds a CUDA context: a forked child could not use CUDA."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


# torch._dynamo is imported by the first optimizer a program builds (1.4 s here).
PRELOAD = {"torch": ("torch", "torch._dynamo", "torch.utils.data"), "keras": ("keras",)}


def main(argv: list[str] | None = None) -> int:
    """Read jobs, one JSON object a line, from stdin until it closes."""
    # LOSSLINT_VERIFY_NO_FORK=1: a process per run, as on Windows (slower; for debugging).
    can_fork = hasattr(os, "fork") and not os.environ.get("LOSSLINT_VERIFY_NO_FORK")
    signal.signal(signal.SIGTERM, _on_sigterm)
    loaded: set[str] = set()
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        on_cuda = job.get("device") == "cuda"
        if can_fork:
            # Import in the parent, once, so that every forked child starts with them
            # loaded (failures are left for the child to report in its context).
            # Keras's torch backend touches CUDA at import: never before a fork on CUDA.
            for framework in job.get("frameworks", []):
                if framework not in loaded and not (on_cuda and framework == "keras"):
                    loaded.add(framework)
                    for module in PRELOAD.get(framework, ()):
                        try:
                            __import__(module)
                        except Exception:
                            pass
        log_path = job["output"] + ".log"
        runner = _run_forked if can_fork and not _cuda_initialized() else _run_spawned
        status, seconds = runner(job, log_path)
        print(f"done {job['id']} {status} {seconds:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip the interpreter's teardown of torch/keras (seconds, for nothing)
