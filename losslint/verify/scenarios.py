"""The built-in scenarios of ``losslint verify --scenarios``.

Each is a small, real training program under ``fixtures/scenarios/`` that carries
one risk factor (or the seed's whole chain), sized so that N % B is 1 or 2 and a
few epochs decide. ``expects`` lists the codes losslint must report on it: a
scenario whose rule stays quiet is a failure of the scenario, not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import losslint


@dataclass(frozen=True)
class Scenario:
    name: str
    program: str  # file name under fixtures/scenarios/
    summary: str
    expects: tuple[str, ...]  # codes losslint must report; "LL201|LL202" accepts either
    needs_cuda: bool = False  # trained only with --device cuda (auto on a machine with a GPU)


SCENARIOS = (
    Scenario(
        "torch-classification",
        "torch_classification.py",
        "PyTorch classifier, CrossEntropyLoss divided again by x.size(0), N % B == 2 without drop_last, SGD momentum 0.9 with a clip",
        ("LL101", "LL201"),
    ),
    Scenario(
        "torch-ssd-multitask",
        "torch_ssd_multitask.py",
        "SSD-like detector head: mean-reduced classification and box losses divided by the positives of the batch, "
        "N % B == 1 without drop_last (a custom Dataset: its size is not known statically), Adam",
        ("LL101", "LL201|LL202"),
    ),
    Scenario(
        "keras-ssd",
        "keras_ssd.py",
        "Keras 3 (torch backend) SSD-like loss given to compile(loss=...): a (B,) tensor divided by the batch's positives, "
        "fit on arrays with N % B == 2, SGD momentum 0.9 (the seed's program)",
        ("LL102", "LL204", "LL302"),
    ),
    Scenario(
        "torch-grad-accumulation",
        "torch_grad_accumulation.py",
        "Gradient accumulation over 4 micro-batches (loss / accum_steps) whose last window of an epoch is partial",
        ("LL104",),
    ),
    Scenario(
        "torch-momentum-outlier",
        "torch_momentum_outlier.py",
        "Regression with SGD momentum 0.9 and no clip; an outlier batch (gradient x50) is injected half-way through epoch 2",
        ("LL301",),
    ),
    Scenario(
        "torch-cuda-amp",
        "torch_cuda_amp.py",
        "PyTorch on CUDA with autocast and a GradScaler: a mean loss divided again by the batch size, N % B == 2 "
        "without drop_last (the recorded loss is the unscaled one); needs a GPU",
        ("LL101", "LL201"),
        needs_cuda=True,
    ),
)


def scenario_dir() -> Path:
    """Where the scenario programs live: ``fixtures/scenarios`` of the source tree."""
    return Path(losslint.__file__).resolve().parent.parent / "fixtures" / "scenarios"


def find_scenarios(names: tuple[str, ...] | list[str]) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    by_name = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [by_name[n] for n in names]
