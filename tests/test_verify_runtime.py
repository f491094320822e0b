"""losslint verify's runtime and process handling, on real (tiny) trainings:
epochs of a DataLoader rebuilt every epoch, per-sample losses and gradient probes,
the unscaled loss under AMP, the Keras clip record, the real last batch, the
process groups of trainings (helpers and hangs), SIGTERM, fail-fast with the
program's own stderr, and a plot that cannot be drawn. CUDA: a test that the
tensors were on the GPU, skipped without one."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from losslint.verify.harness import HarnessOptions, RunSpec, run_many, worker_environment  # noqa: E402

pytestmark = pytest.mark.slow  # about a minute on 2 cores: a torch import per training process; CI runs it

ROOT = Path(__file__).resolve().parent.parent


def run_program(tmp_path: Path, source: str, frameworks=("torch",), **config) -> dict:
    """Run one program under the runtime in a process of its own; return its record."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(source))
    job = {"program": str(script), "frameworks": list(frameworks), "epochs": 4, "max_steps": 400, "full_batches": 10,
           "device": "cpu", "output": str(tmp_path / "out.json"), **config}
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-m", "losslint.verify.runtime", str(tmp_path / "job.json")], cwd=tmp_path,
                   env=worker_environment("cpu"), capture_output=True, timeout=120)
    return json.loads((tmp_path / "out.json").read_text())


REBUILT = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
data = TensorDataset(torch.randn(330, 8), torch.randint(0, 3, (330,)))
model = nn.Linear(8, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loaders = []
for epoch in range(6):
    loader = DataLoader(data, batch_size=32, shuffle=True)  # rebuilt every epoch
    loaders.append(loader) if epoch % 2 else None  # keep some alive, let others be freed (id() reuse)
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
"""


def test_a_loader_rebuilt_every_epoch_counts_epochs(tmp_path):
    record = run_program(tmp_path, REBUILT)
    assert record["status"] == "ok", record
    per_epoch: dict[int, int] = {}
    for step in record["steps"]:
        per_epoch[step["epoch"]] = per_epoch.get(step["epoch"], 0) + 1
    assert per_epoch == {0: 11, 1: 11, 2: 11, 3: 11}  # 10 full batches and one of 2; 4 epochs
    assert record["stopped"] == "epochs"
    # per-sample losses of every step, gradient probes on some full steps, and where the parameters were
    assert all(len(s["per_sample"]) == s["batch"] for s in record["steps"])
    probes = [s["grad_null"] for s in record["steps"] if s.get("grad_null")]
    assert len(probes) >= 8 and all(len(p) == 8 and all(r > 0 for r in p) for p in probes)
    assert record["param_device"] == "cpu"


def test_the_real_last_batch(tmp_path):
    record = run_program(tmp_path, REBUILT, remainder="real")
    assert {s["batch"] for s in record["steps"]} == {32, 330 % 32}
    [shrunk] = record["shrunk"]
    assert shrunk["real_last"] == 10 and shrunk["smoke_last"] == 10 and shrunk["shrunk_to"] == 330


ACCUMULATION = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
SAME = {same}
N = {n}
x = torch.randn(1, 200).repeat(N, 1) if SAME else torch.randn(N, 200)
y = torch.ones(N, 1) if SAME else torch.randn(N, 1)
loader = DataLoader(TensorDataset(x, y), batch_size={batch}, shuffle=True, drop_last={accum} > 1)
model = nn.Linear(200, 1, bias=False)
nn.init.zeros_(model.weight)  # at w = 0 the gradient of a sample is -2 y x: noise around 0 unless SAME
optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
for epoch in range(4):
    for i, (xb, yb) in enumerate(loader):
        loss = nn.functional.mse_loss(model(xb), yb) / {accum}
        loss.backward()
        if (i + 1) % {accum} == 0 or i + 1 == len(loader):
            optimizer.step()
            optimizer.zero_grad()
"""


@pytest.mark.parametrize(
    "same, n, batch, accum, expected",
    [
        (True, 659, 16, 4, 1.0),  # every sample's gradient is the same: any subset's mean is the window's
        (False, 659, 16, 4, 2.0),  # noise: sqrt(64 / 16) for 16 samples (the last window) out of a window of 64
        (False, 656, 64, 1, 2.0),  # no accumulation, the same numbers: batches of 64 and a last one of 16
    ],
)
def test_gradient_probes_span_an_accumulation_window(tmp_path, same, n, batch, accum, expected):
    """Known answers for U's null: the gradient norm of the mean over b samples of a step
    over that of all its samples. With accumulation the step's gradient is the sum of its
    micro-batches', and b is the last window of an epoch (16 samples), so the probe spans
    the window's 64 samples, not one micro-batch (which would say 1.0 for the noise)."""
    program = ACCUMULATION.format(same=same, n=n, batch=batch, accum=accum)
    record = run_program(tmp_path, program, full_batches=41 if accum > 1 else 10, remainder="real")
    assert record["status"] == "ok", record
    sizes = [s["batch"] for s in record["steps"]]
    assert max(sizes) == 64 and sizes.count(16) == 4  # windows of 64 samples, an epoch's last of 16
    ratios = [r for s in record["steps"] for r in s.get("grad_null") or ()]
    assert len(ratios) >= 40
    median = sorted(ratios)[len(ratios) // 2]
    assert median == pytest.approx(expected, rel=1e-4 if same else 0.15), (median, len(ratios))


AMP = """
import json, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(320, 8), torch.randn(320, 1)), batch_size=32, shuffle=True)
model = nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
seen = []
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        seen.append(loss.item())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
json.dump(seen, open("seen.json", "w"))
"""


def test_amp_records_the_unscaled_loss(tmp_path):
    record = run_program(tmp_path, AMP)
    seen = json.loads((tmp_path / "seen.json").read_text())
    recorded = [s["loss"] for s in record["steps"]]
    assert len(recorded) == len(seen) == 20
    assert recorded == pytest.approx(seen, rel=1e-5)  # not 1024x


KERAS_CLIP = """
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import keras, numpy as np
keras.utils.set_random_seed(0)
x = np.random.normal(size=(322, 8)).astype("float32")
y = np.random.normal(size=(322, 1)).astype("float32")
model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, global_clipnorm=1e-4), loss="mse")
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
"""


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")
def test_keras_records_its_clip(tmp_path):
    record = run_program(tmp_path, KERAS_CLIP, frameworks=("torch", "keras"))
    assert record["status"] == "ok", record
    steps = record["steps"]
    assert len(steps) == 22
    assert all(s["clip"] == pytest.approx(1e-4) for s in steps)
    assert all(s["clipped"] for s in steps)  # a global_clipnorm of 1e-4 fires on every step
    assert all(len(s["per_sample"]) == s["batch"] for s in steps)  # from the Keras Loss, before it reduces


HELPER = """
import subprocess, sys, time, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open({pid_file!r}, "w").write(str(helper.pid))
loader = DataLoader(TensorDataset(torch.randn(320, 4), torch.randn(320, 1)), batch_size=32)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        {then}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_helpers_and_hangs_are_killed_with_their_process_group(tmp_path):
    specs = []
    for name, then in (("finishes", "pass"), ("hangs", "time.sleep(3600)")):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "train.py").write_text(HELPER.replace("{pid_file!r}", repr(str(directory / "pid"))).replace("{then}", then))
        specs.append(RunSpec(key=name, program=directory / "train.py", timeout=5.0))
    results = run_many(specs, HarnessOptions(workdir=tmp_path / "work", device="cpu", workers=2, timeout=5.0))
    assert results["finishes"].ok and results["hangs"].status == "timeout"
    for name in ("finishes", "hangs"):
        pid = int((tmp_path / name / "pid").read_text())
        assert _wait_dead(pid), f"the helper of the run that {name} outlived it"


def _verify(args, tmp_path, **kwargs):
    env = dict(os.environ, TMPDIR=str(tmp_path), KERAS_BACKEND="torch")
    return subprocess.Popen([sys.executable, "-m", "losslint", "verify", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_sigterm_stops_every_training_and_removes_the_work_directory(tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    pid_file = directory / "pid"
    (directory / "train.py").write_text(
        HELPER.replace("{pid_file!r}", repr(str(pid_file))).replace("{then}", "time.sleep(3600)")
        .replace("batch_size=32)", "batch_size=32, shuffle=True)")
    )
    process = _verify([str(directory / "train.py"), "--device", "cpu", "--timeout", "600"], tmp_path)
    deadline = time.time() + 90
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), process.communicate(timeout=30)
    time.sleep(0.5)
    assert any(tmp_path.glob("losslint-verify-*"))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in stderr
    assert _wait_dead(int(pid_file.read_text()))
    assert not any(tmp_path.glob("losslint-verify-*"))


NEEDS_ARGUMENTS = """
import argparse, torch
parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
"""


def test_fail_fast_shows_the_programs_stderr_and_runs_nothing_else(tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    # a finding with a fix (so that there are variants to skip), and a required argument
    (directory / "train.py").write_text(NEEDS_ARGUMENTS + textwrap.dedent("""
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(torch.randn(330, 2)), batch_size=32, shuffle=True)
        for (x,) in loader:
            pass
    """))
    started = time.time()
    process = _verify([str(directory / "train.py"), "--device", "cpu", "--plot", str(tmp_path / "p.png")], tmp_path)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stdout + stderr
    assert "the original cannot be run" in stdout and "exited with status 2" in stdout
    assert "usage:" in stdout and "the following arguments are required: --data" in stdout
    assert "[1/1]" in stderr and "[1/2]" not in stderr  # one training, no variant
    assert "no plot written" in stderr and not (tmp_path / "p.png").exists()
    assert time.time() - started < 60


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_amp_scenario_trains_on_the_gpu():
    result = subprocess.run(
        [sys.executable, "-m", "losslint", "verify", "--scenario", "torch-cuda-amp", "--device", "cuda", "--output-format", "json", "-q"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    items = json.loads(result.stdout)
    assert items and all(item["device"] == "cuda" and item["param_device"].startswith("cuda") for item in items)
    assert all(item["validated"] for item in items), items
    # the unscaled loss: a cross-entropy over 5 classes divided by 32 starts near log(5)/32, not x65536
    first = items[0]["series"]["before"][0]["loss"][0]
    assert 0.01 < first < 0.2
