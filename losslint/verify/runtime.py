"""The instrumentation that runs *inside* the training process.

``run(config)`` installs the probes, runs the training program as ``__main__``
(``runpy``), and writes what it recorded to ``config["output"]`` as JSON. It is
called in a forked child of ``losslint.verify.worker`` (or, without fork, in a
process of its own: ``python -m losslint.verify.runtime CONFIG.json``).

What is recorded, one entry per optimizer step:
- ``loss``: the sum of the scalar losses ``backward()`` was called on since the
  previous step (with gradient accumulation, the window's total: the objective
  whose gradient this step applies). Under Keras, the step loss recovered from
  the running epoch mean Keras logs (``l_k = (m_k C_k - m_{k-1} C_{k-1}) / b_k``),
  with the ``backward()`` value kept beside it as ``loss_backward``.
- ``grad_norm``: the global L2 norm of the gradients *before* any clipping (the
  value ``clip_grad_norm_`` returns when the program clips; under Keras, the
  gradients handed to ``optimizer.apply``, which clips inside).
- ``update_norm``: the L2 norm of the parameter change the step made.
- ``batch``: samples consumed by the step (sum over an accumulation window).
- ``epoch``: passes over the training data so far (0-based).

How the program is made short, without editing it:
- PyTorch: every map-style ``DataLoader`` with a ``batch_size`` and no custom
  sampler gets a fixed random ``Subset`` of ``k * B + r`` samples (``r`` = 1 when
  the real N % B is 1, 2 when it is any other non-zero value, 0 when it is 0):
  epochs of ``k + 1`` steps whose last batch is as small as it can be in the real
  run. The training loader is the one whose batches reach an optimizer step; when
  it starts its ``epochs + 1``-th pass, or after ``max_steps`` steps, the run stops.
- Keras 3 (torch backend): ``Model.fit`` on arrays is given the same subset of
  its arrays, at most ``epochs`` epochs, and a recording callback.

An outlier batch can be injected: at step ``inject_step`` the gradient of every
``backward()`` is multiplied by ``inject_factor`` (the logged loss is unchanged),
which is what an outlier batch does to the update; it is how a clip is judged.

This module imports torch and keras only inside the functions that patch them.
"""

from __future__ import annotations

import json
import math
import os
import random
import runpy
import sys
import time
import traceback
from typing import Any, Callable


class StopTraining(BaseException):
    """Raised into the program to end the smoke run (a BaseException, so that a
    program's ``except Exception`` does not swallow it)."""


def shrunk_size(n: int, batch: int, full_batches: int) -> int:
    """Dataset size for the smoke run: ``full_batches`` full batches and a last
    batch as small as the real one can be (see the module docstring)."""
    remainder = n % batch
    small = 0 if remainder == 0 else (1 if remainder == 1 else 2)
    return min(n, full_batches * batch + small)


def _leading_size(batch: Any) -> int | None:
    """Samples in a batch: the first dimension of its first array-like leaf."""
    stack = [batch]
    while stack:
        item = stack.pop(0)
        shape = getattr(item, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            if item and all(isinstance(v, (int, float)) for v in item):
                return len(item)
            stack.extend(item)
    return None


class Recorder:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.epochs = int(config.get("epochs", 4))
        self.max_steps = int(config.get("max_steps", 400))
        self.full_batches = int(config.get("full_batches", 10))
        self.inject_step = config.get("inject_step")
        self.inject_factor = float(config.get("inject_factor", 50.0))
        self.steps: list[dict] = []
        self.notes: list[str] = []
        self.shrunk: list[dict] = []
        self.pending_losses: list[float] = []
        self.pending_batches: list[tuple[int, int]] = []  # (loader id, samples)
        self.pending_clip_norm: float | None = None
        self.clipped = False
        self.loader_passes: dict[int, int] = {}
        self.train_loader: int | None = None
        self.optimizer: int | None = None
        self.in_keras_fit = False
        self.keras_epoch = 0
        self.stopped = "finished"  # or "epochs", "steps"
        self.snapshot: list | None = None
        self.grad_norm: float | None = None

    # -- events ----------------------------------------------------------------
    @property
    def injecting(self) -> bool:
        return self.inject_step is not None and len(self.steps) == int(self.inject_step)

    def on_backward(self, loss_value: float) -> None:
        self.pending_losses.append(loss_value)

    def on_batch(self, loader: int, samples: int | None) -> None:
        if samples is not None:
            self.pending_batches.append((loader, samples))

    def on_loader_pass(self, loader: int) -> None:
        passes = self.loader_passes.get(loader, 0)
        if loader == self.train_loader and passes >= self.epochs:
            self.stopped = "epochs"
            raise StopTraining
        self.loader_passes[loader] = passes + 1

    def begin_step(self, grad_norm: float | None, snapshot: list) -> None:
        if self.pending_clip_norm is not None:
            grad_norm = self.pending_clip_norm
        self.grad_norm = grad_norm
        self.snapshot = snapshot

    def end_step(self, update_norm: float | None, epoch: int | None = None, batch: int | None = None) -> None:
        if self.pending_batches and batch is None:
            loader = self.pending_batches[-1][0]
            if self.train_loader is None:
                self.train_loader = loader
            batch = sum(b for lid, b in self.pending_batches if lid == loader) or None
        if epoch is None:
            epoch = max(self.loader_passes.get(self.train_loader, 1) - 1, 0) if self.train_loader is not None else 0
        loss = sum(self.pending_losses) if self.pending_losses else None
        self.steps.append(
            {
                "loss": loss,
                "grad_norm": self.grad_norm,
                "update_norm": update_norm,
                "batch": batch,
                "epoch": epoch,
                "clipped": self.clipped,
                "injected": self.inject_step is not None and len(self.steps) == int(self.inject_step),
            }
        )
        self.pending_losses, self.pending_batches = [], []
        self.pending_clip_norm, self.clipped, self.snapshot, self.grad_norm = None, False, None, None
        if len(self.steps) >= self.max_steps:
            self.stopped = "steps"
            raise StopTraining

    def result(self) -> dict:
        return {"steps": self.steps, "notes": self.notes, "shrunk": self.shrunk, "stopped": self.stopped}


def _norm(tensors: list) -> float | None:
    import torch

    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return None
    total = torch.zeros((), dtype=torch.float64)
    for t in tensors:
        total += t.detach().double().pow(2).sum().cpu()
    return float(total.sqrt())


def _wrap(owner: Any, name: str, make: Callable[[Callable], Callable]) -> None:
    original = getattr(owner, name)
    setattr(owner, name, make(original))


# -- PyTorch ------------------------------------------------------------------


def install_torch(rec: Recorder) -> None:
    import torch
    import torch.utils.data as tud

    if rec.config.get("device") != "cuda":
        torch.set_num_threads(1)  # tiny models: one thread is 3-6x faster here

    seed_offset = int(rec.config.get("seed_offset", 0))
    if seed_offset:
        _wrap(torch, "manual_seed", lambda f: lambda seed: f(int(seed) + seed_offset))

    # Losses: every backward() on a scalar.
    def make_backward(original: Callable) -> Callable:
        def backward(self, *args, **kwargs):
            if self.numel() == 1 and self.requires_grad:
                value = float(self.detach().reshape(()).cpu())
                rec.on_backward(value)
                if rec.injecting:
                    return original(self * rec.inject_factor, *args, **kwargs)
            return original(self, *args, **kwargs)

        return backward

    _wrap(torch.Tensor, "backward", make_backward)

    # Clipping: the norm before clipping is what clip_grad_norm_ returns.
    def make_clip_norm(original: Callable) -> Callable:
        def clip_grad_norm_(parameters, *args, **kwargs):
            parameters = list(parameters) if not isinstance(parameters, torch.Tensor) else [parameters]
            total = original(parameters, *args, **kwargs)
            rec.pending_clip_norm = float(total)
            rec.clipped = True
            return total

        return clip_grad_norm_

    def make_clip_value(original: Callable) -> Callable:
        def clip_grad_value_(parameters, *args, **kwargs):
            parameters = list(parameters) if not isinstance(parameters, torch.Tensor) else [parameters]
            rec.pending_clip_norm = _norm([p.grad for p in parameters])
            rec.clipped = True
            return original(parameters, *args, **kwargs)

        return clip_grad_value_

    import torch.nn.utils as nn_utils
    import torch.nn.utils.clip_grad as clip_module

    for owner in (nn_utils, clip_module):
        if hasattr(owner, "clip_grad_norm_"):
            _wrap(owner, "clip_grad_norm_", make_clip_norm)
        if hasattr(owner, "clip_grad_value_"):
            _wrap(owner, "clip_grad_value_", make_clip_value)

    # Optimizer steps: the first optimizer that steps is the one recorded.
    def params_of(optimizer) -> list:
        return [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]

    def pre_hook(optimizer, args, kwargs):
        if rec.in_keras_fit:
            return None
        if rec.optimizer is None:
            rec.optimizer = id(optimizer)
        if id(optimizer) != rec.optimizer:
            return None
        params = params_of(optimizer)
        rec.begin_step(_norm([p.grad for p in params]), [(p, p.detach().clone()) for p in params])
        return None

    def post_hook(optimizer, args, kwargs):
        if rec.in_keras_fit or id(optimizer) != rec.optimizer or rec.snapshot is None:
            return None
        update = _norm([p.detach() - old for p, old in rec.snapshot])
        rec.end_step(update)
        return None

    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    register_optimizer_step_pre_hook(pre_hook)
    register_optimizer_step_post_hook(post_hook)

    # DataLoaders: shrink the dataset, count passes, measure batches.
    import inspect

    signature = inspect.signature(tud.DataLoader.__init__)

    def make_init(original: Callable) -> Callable:
        def __init__(self, *args, **kwargs):
            self._losslint_internal = rec.in_keras_fit
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                return original(self, *args, **kwargs)
            params = bound.arguments
            dataset = params.get("dataset")
            batch_size = params.get("batch_size", 1)
            custom_sampler = params.get("sampler") is not None or params.get("batch_sampler") is not None
            if (
                not self._losslint_internal
                and isinstance(batch_size, int)
                and batch_size > 1
                and not custom_sampler
                and not isinstance(dataset, tud.IterableDataset)
            ):
                try:
                    n = len(dataset)
                except TypeError:
                    n = None
                if n is not None:
                    small = shrunk_size(n, batch_size, rec.full_batches)
                    if small < n:
                        generator = torch.Generator().manual_seed(0)
                        indices = torch.randperm(n, generator=generator)[:small].tolist()
                        params["dataset"] = tud.Subset(dataset, indices)
                        rec.shrunk.append({"n": n, "batch_size": batch_size, "shrunk_to": small})
                    else:
                        rec.shrunk.append({"n": n, "batch_size": batch_size, "shrunk_to": n})
            elif not self._losslint_internal and custom_sampler:
                rec.notes.append("a DataLoader with a custom sampler was not shrunk")
            return original(*bound.args, **bound.kwargs)

        return __init__

    _wrap(tud.DataLoader, "__init__", make_init)

    def make_iter(original: Callable) -> Callable:
        def __iter__(self):
            if getattr(self, "_losslint_internal", False):
                return original(self)
            loader = id(self)
            rec.on_loader_pass(loader)
            inner = original(self)

            def batches():
                for batch in inner:
                    rec.on_batch(loader, _leading_size(batch))
                    yield batch

            return batches()

        return __iter__

    _wrap(tud.DataLoader, "__iter__", make_iter)


# -- Keras 3 on the torch backend ---------------------------------------------


def _slice_arrays(data: Any, size: int, indices: list[int]) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _slice_arrays(v, size, indices) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_slice_arrays(v, size, indices) for v in data)
    return data[indices]


def install_keras(rec: Recorder) -> None:
    import keras
    import numpy as np

    # Found by name in the MROs: the module paths moved between Keras 3 releases.
    trainer_class = next((c for c in keras.Model.__mro__ if c.__name__ == "TorchTrainer"), None)
    optimizer_class = next((c for c in keras.optimizers.Optimizer.__mro__ if c.__name__ == "BaseOptimizer"), None)
    if trainer_class is None or optimizer_class is None:
        rec.notes.append(f"Keras {keras.__version__} is not running on the torch backend (KERAS_BACKEND=torch): not instrumented")
        return

    seed_offset = int(rec.config.get("seed_offset", 0))
    if seed_offset:
        _wrap(keras.utils, "set_random_seed", lambda f: lambda seed: f(int(seed) + seed_offset))

    class StepRecorder(keras.callbacks.Callback):
        """Epoch boundaries, and the step loss recovered from Keras's running mean."""

        def on_epoch_begin(self, epoch, logs=None):
            rec.keras_epoch = epoch
            self.mean, self.count = 0.0, 0

        def on_train_batch_end(self, batch, logs=None):
            if not rec.steps or logs is None or "loss" not in logs:
                return
            step = rec.steps[-1]
            b = step.get("batch") or 0
            mean = float(logs["loss"])
            if b:
                # Keras's loss tracker is a sample-weighted running mean over the epoch.
                count = self.count + b
                step["loss_backward"] = step["loss"]
                step["loss"] = (mean * count - self.mean * self.count) / b
                step["logged_mean"] = mean
                self.mean, self.count = mean, count
            if len(rec.steps) >= rec.max_steps:
                rec.stopped = "steps"
                self.model.stop_training = True

    def make_fit(original: Callable) -> Callable:
        def fit(self, x=None, y=None, batch_size=None, epochs=1, *args, **kwargs):
            callbacks = list(kwargs.pop("callbacks", None) or [])
            sample_weight = kwargs.get("sample_weight")
            sizes = {len(a) for a in _leaves((x, y, sample_weight)) if hasattr(a, "shape") and len(a.shape) >= 1}
            if len(sizes) == 1 and not kwargs.get("steps_per_epoch"):
                n = sizes.pop()
                b = batch_size or 32
                small = shrunk_size(n, b, rec.full_batches)
                if small < n:
                    indices = np.random.default_rng(0).permutation(n)[:small]
                    indices.sort()
                    x, y = _slice_arrays(x, n, indices), _slice_arrays(y, n, indices)
                    if sample_weight is not None:
                        kwargs["sample_weight"] = _slice_arrays(sample_weight, n, indices)
                rec.shrunk.append({"n": n, "batch_size": b, "shrunk_to": small})
            else:
                rec.notes.append("Model.fit input was not a set of arrays: not shrunk")
            if epochs > rec.epochs:
                rec.stopped = "epochs"
            rec.in_keras_fit = True
            try:
                return original(self, x, y, batch_size, min(epochs, rec.epochs), *args, callbacks=[*callbacks, StepRecorder()], **kwargs)
            finally:
                rec.in_keras_fit = False

        return fit

    _wrap(keras.Model, "fit", make_fit)

    def make_train_step(original: Callable) -> Callable:
        def train_step(self, data):
            rec.on_batch(-1, _leading_size(data[0] if isinstance(data, tuple) else data))
            return original(self, data)

        return train_step

    _wrap(trainer_class, "train_step", make_train_step)

    def make_apply(original: Callable) -> Callable:
        def apply(self, grads, trainable_variables=None):
            if not rec.in_keras_fit:
                return original(self, grads, trainable_variables)
            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            values = [getattr(v, "value", v) for v in variables]
            rec.begin_step(_norm(list(grads)), [(v, v.detach().clone()) for v in values])
            result = original(self, grads, trainable_variables)
            update = _norm([v.detach() - old for v, old in rec.snapshot or []])
            batch = sum(b for _, b in rec.pending_batches) or None
            rec.pending_batches = []
            rec.end_step(update, epoch=rec.keras_epoch, batch=batch)
            return result

        return apply

    _wrap(optimizer_class, "apply", make_apply)


def _leaves(data: Any) -> list:
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in _leaves(v)]
    if isinstance(data, (list, tuple)):
        return [leaf for v in data for leaf in _leaves(v)]
    return [] if data is None else [data]


# -- running a program ----------------------------------------------------------

_GPU_MARKERS = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "No CUDA GPUs are available",
    "CUDA driver initialization failed",
    "Attempting to deserialize object on a CUDA device",
    "no CUDA-capable device",
)


def classify_error(text: str) -> str:
    """A short name for why a program stopped: 'needs-gpu' or 'crash'."""
    return "needs-gpu" if any(marker in text for marker in _GPU_MARKERS) else "crash"


def run(config: dict) -> dict:
    """Run one program under the probes; return (and write) the record."""
    started = time.perf_counter()
    rec = Recorder(config)
    outcome: dict[str, Any] = {"status": "ok"}
    try:
        if config.get("seed_offset"):
            # Another seed for a second opinion: the program's own seeds, shifted.
            offset = int(config["seed_offset"])
            _wrap(random, "seed", lambda f: lambda seed=None, *a, **k: f(seed + offset if isinstance(seed, int) else seed, *a, **k))
        if "torch" in config.get("frameworks", ["torch"]):
            install_torch(rec)
        if "keras" in config.get("frameworks", []):
            install_keras(rec)
    except Exception as error:  # an instrumentation bug is ours: say so, do not blame the program
        outcome = {"status": "harness-error", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    if outcome["status"] == "ok":
        program = config["program"]
        old_argv, old_path, old_cwd = sys.argv[:], sys.path[:], os.getcwd()
        sys.argv = [program, *config.get("argv", [])]
        sys.path[:0] = [os.path.dirname(os.path.abspath(program)), *config.get("sys_path", [])]
        if config.get("cwd"):
            os.chdir(config["cwd"])
        try:
            runpy.run_path(program, run_name="__main__")
        except StopTraining:
            pass
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                outcome = {"status": "crash", "error": f"the program exited with status {exit_.code}"}
        except BaseException as error:  # the program's own failure, reported to the user
            text = traceback.format_exc()
            outcome = {"status": classify_error(text), "error": f"{type(error).__name__}: {error}", "traceback": text}
        finally:
            sys.argv, sys.path[:] = old_argv, old_path
            os.chdir(old_cwd)
    record = {**outcome, **rec.result(), "seconds": round(time.perf_counter() - started, 3)}
    if outcome["status"] == "ok" and not rec.steps:
        record["status"] = "no-steps"
        record["error"] = "the program finished without an optimizer step the harness could see"
    if config.get("output"):
        with open(config["output"], "w", encoding="utf-8") as handle:
            json.dump(_finite(record), handle)
    return record


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings the reader turns back."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    record = run(config)
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
