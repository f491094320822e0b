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
- ``epoch``: passes over the training data so far (0-based). Loaders are told
  apart by where the program builds them (file and line of the ``DataLoader(...)``
  call), so a loader rebuilt every epoch is one training stream.
- ``per_sample``: the per-sample losses of the step's batch (the first loss of the
  common ``torch.nn.functional`` losses, or of a Keras ``Loss``, computed again
  with ``reduction="none"`` and averaged per sample), from which the decision
  re-samples its null; ``grad_null`` on a few full steps: the gradient norm of a
  ``b``-sample subset of the step's samples over that of all of them (``b`` = the
  last batch of the run; with gradient accumulation, the samples of an epoch's
  last step, and the subsets span the window's micro-batches), computed with
  ``torch.autograd.grad`` before the program's own ``backward()``.
- ``clip`` and ``clipped``: the clip's threshold when the step clipped (torch's
  ``clip_grad_norm_``/``clip_grad_value_``, or a Keras optimizer's
  ``global_clipnorm``/``clipnorm``/``clipvalue``) and whether it fired.
- Under AMP, the loss ``backward()`` saw divided by the ``GradScaler``'s scale:
  the unscaled loss.

How the program is made short, without editing it:
- PyTorch: every map-style ``DataLoader`` with a ``batch_size`` and no custom
  sampler gets a fixed random ``Subset`` of ``k * B + r`` samples (``r`` = 1 when
  the real N % B is 1, 2 when it is any other non-zero value, 0 when it is 0):
  epochs of ``k + 1`` steps whose last batch is as small as it can be in the real
  run. With ``remainder="real"``, ``r`` is the real N % B instead. The training loader is the one whose batches reach an optimizer step; when
  it starts its ``epochs + 1``-th pass, or after ``max_steps`` steps, the run stops.
- Keras 3 (torch backend): ``Model.fit`` on arrays is given the same subset of
  its arrays, at most ``epochs`` epochs, and a recording callback.

An outlier batch can be injected: at step ``inject_step`` the gradient of every
``backward()`` is multiplied by ``inject_factor`` (the logged loss is unchanged),
which is what an outlier batch does to the update; it is how a clip is judged.

This module imports torch and keras only inside the functions that patch them.
"""

from __future__ import annotations

import itertools
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


def shrunk_size(n: int, batch: int, full_batches: int, real: bool = False) -> int:
    """Dataset size for the smoke run: ``full_batches`` full batches and a last
    batch as small as the real one can be, or (``real``) the real last batch."""
    remainder = n % batch
    small = remainder if real else (0 if remainder == 0 else (1 if remainder == 1 else 2))
    return min(n, full_batches * batch + small)


# The torch.nn.functional losses whose per-sample values are recorded (nn.*Loss modules call them).
PER_SAMPLE_LOSSES = (
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
)
PROBE_EVERY = 3  # a gradient-null probe on every 3rd full step
PROBE_DRAWS = 8  # b-sample subsets per probe


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
        self.real_remainder = config.get("remainder") == "real"
        self.inject_step = config.get("inject_step")
        self.inject_factor = float(config.get("inject_factor", 50.0))
        self.steps: list[dict] = []
        self.notes: list[str] = []
        self.shrunk: list[dict] = []
        self.pending_losses: list[float] = []
        self.pending_batches: list[tuple[str, int]] = []  # (loader tag, samples)
        self.pending_per_sample: list[list[float]] = []  # per micro-batch: its per-sample losses
        self.captured_batch = False  # the current micro-batch's per-sample losses are taken
        self.pending_grad_null: list[float] = []
        self.window_probe: Any = None  # a _WindowProbe over the micro-batches of the current step
        self.largest_batch: dict[str, int] = {}  # loader tag -> its largest (micro-)batch
        self.last_window = 0  # samples in the last step of an epoch, once an epoch has ended
        self.pending_clip_norm: float | None = None
        self.clip_limit: float | None = None
        self.clipped = False
        self.loader_passes: dict[str, int] = {}
        self.small_batch: dict[str, int] = {}  # loader tag -> its last batch in this run
        self.train_loader: str | None = None
        self.optimizer: int | None = None
        self.params: list = []
        self.param_device: str | None = None
        self.in_keras_fit = False
        self.keras_epoch = 0
        self.keras_small_batch = 0
        self.stopped = "finished"  # or "epochs", "steps"
        self.snapshot: list | None = None
        self.grad_norm: float | None = None

    # -- events ----------------------------------------------------------------
    @property
    def injecting(self) -> bool:
        return self.inject_step is not None and len(self.steps) == int(self.inject_step)

    def on_backward(self, loss_value: float) -> None:
        self.pending_losses.append(loss_value)

    def on_batch(self, loader: str, samples: int | None) -> None:
        if samples is not None:
            self.pending_batches.append((loader, samples))
            self.largest_batch[loader] = max(self.largest_batch.get(loader, 0), samples)
        self.captured_batch = False

    def current_samples(self) -> int | None:
        return self.pending_batches[-1][1] if self.pending_batches else None

    def null_batch(self) -> int:
        """b: the run's small last batch, whose null is measured (0: there is none)."""
        if self.in_keras_fit:
            return self.keras_small_batch
        return self.small_batch.get(self.train_loader or "", 0)

    def probe_plan(self, samples: int) -> tuple[int, int] | None:
        """(the samples of the step, b) for a gradient-null probe starting at this
        micro-batch, every few steps, or None. The probe starts at the first micro-batch
        of a step and only at a full one. With gradient accumulation (steps of more
        samples than a micro-batch) the step's samples are the window's (the largest
        step so far) and b is the last step of an epoch (known once an epoch has ended)."""
        if not self.params or not self.steps or len(self.steps) % PROBE_EVERY != 1 or self.pending_per_sample:
            return None
        loader = self.pending_batches[-1][0] if self.pending_batches else ""
        if samples != self.largest_batch.get(loader):
            return None
        window = max(s.get("batch") or 0 for s in self.steps)
        if window > samples:
            size, b = window, self.last_window
        else:
            size, b = samples, self.null_batch()
        return (size, b) if 0 < b < size else None

    def on_per_sample(self, values: list[float]) -> None:
        if not self.captured_batch:
            self.pending_per_sample.append(values)
            self.captured_batch = True

    def on_loader_pass(self, loader: str) -> None:
        passes = self.loader_passes.get(loader, 0)
        if loader == self.train_loader and self.steps:
            self.last_window = self.steps[-1].get("batch") or 0
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
        step = {
            "loss": loss,
            "grad_norm": self.grad_norm,
            "update_norm": update_norm,
            "batch": batch,
            "epoch": epoch,
            "clip": self.clip_limit,
            "clipped": self.clipped,
            "injected": self.inject_step is not None and len(self.steps) == int(self.inject_step),
        }
        per_sample = [v for values in self.pending_per_sample for v in values]
        if per_sample and batch and len(per_sample) == batch:
            step["per_sample"] = [float(f"{v:.6g}") for v in per_sample]
        if self.pending_grad_null:
            step["grad_null"] = [round(v, 5) for v in self.pending_grad_null]
        self.steps.append(step)
        self.pending_losses, self.pending_batches, self.pending_per_sample, self.pending_grad_null = [], [], [], []
        self.pending_clip_norm, self.clip_limit, self.clipped, self.snapshot, self.grad_norm = None, None, False, None, None
        self.window_probe = None  # a probe the step did not complete (a window of another size) is dropped
        if len(self.steps) >= self.max_steps:
            self.stopped = "steps"
            raise StopTraining

    def result(self) -> dict:
        return {
            "steps": self.steps,
            "notes": self.notes,
            "shrunk": self.shrunk,
            "stopped": self.stopped,
            "param_device": self.param_device,
        }


def _norm(tensors: list) -> float | None:
    import torch

    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return None
    total = torch.zeros((), dtype=torch.float64)
    for t in tensors:
        total += t.detach().double().pow(2).sum().cpu()
    return float(total.sqrt())


def _record_per_sample(rec: Recorder, per: Any, samples: int) -> None:
    """Record a micro-batch's per-sample losses from a per-element loss tensor (its
    leading dimension a multiple of the samples: (B, ...) or a flattened (B*A, ...)),
    and probe the gradient null on it when one is due."""
    if per.dim() == 0 or per.shape[0] % samples:
        return
    rows = per.reshape(samples, -1).float().mean(1)
    if rows.requires_grad:
        _probe(rec, rows)
    rec.on_per_sample(rows.detach().cpu().tolist())


_probe_generator: Any = None


def _probe(rec: Recorder, rows: Any) -> None:
    """Start or continue the gradient-null probe of the current step with a micro-batch's
    per-sample losses; a completed probe's ratios go to the step's ``grad_null``."""
    import torch

    global _probe_generator
    if rec.window_probe is None:
        plan = rec.probe_plan(rows.shape[0])
        if plan is None:
            return
        if _probe_generator is None:
            _probe_generator = torch.Generator().manual_seed(1234)
        params = [p for p in rec.params if getattr(p, "requires_grad", False)]
        rec.window_probe = _WindowProbe(params, *plan, _probe_generator)
    ratios = rec.window_probe.add(rows)
    if ratios is not None:
        rec.pending_grad_null.extend(ratios)
        rec.window_probe = None


class _WindowProbe:
    """The gradient norm of the mean loss of ``PROBE_DRAWS`` random b-sample subsets of
    one step's samples over that of all of them: what a correctly normalized last step
    of b samples does to the gradient, and so (upper side) to the update. With gradient
    accumulation the step's gradient is the sum of its micro-batches', so a subset spans
    the window: each micro-batch adds the gradient of its chosen rows' losses, and the
    norms are taken when the window is complete (``torch.autograd.grad`` with the graph
    kept for the program's own ``backward()``; nothing is written to ``.grad``). A window
    of one micro-batch keeps no gradient between calls."""

    def __init__(self, params: list, size: int, b: int, generator: Any) -> None:
        import torch

        self.params, self.size, self.b, self.offset = params, size, b, 0
        self.masks = []
        for _ in range(PROBE_DRAWS):
            mask = torch.zeros(size, dtype=torch.bool)
            mask[torch.randperm(size, generator=generator)[:b]] = True
            self.masks.append(mask)
        self.sums: list[list | None] = [None] * (PROBE_DRAWS + 1)  # the whole window's first, then each subset's

    def add(self, rows: Any) -> list[float] | None:
        """Add a micro-batch's per-sample losses (with their graph); the ratios once the
        window is complete, else None (also when the step turns out larger than planned)."""
        import torch

        start, end = self.offset, self.offset + rows.shape[0]
        if end > self.size:
            self.offset = self.size + 1  # a window larger than planned: void until the step ends
            return None
        self.offset = end
        complete = end == self.size
        targets = [rows.sum()] + [rows[mask[start:end].to(rows.device)].sum() if mask[start:end].any() else None for mask in self.masks]
        norms = []
        for k, target in enumerate(targets):
            total = self.sums[k]
            if target is not None:
                grads = [None if g is None else g.detach() for g in torch.autograd.grad(target, self.params, retain_graph=True, allow_unused=True)]
                total = grads if total is None else [a if g is None else g if a is None else a + g for a, g in zip(total, grads)]
            if complete:
                norms.append(_norm(total or []))  # taken at once: a window of one micro-batch stores nothing
            else:
                self.sums[k] = total
        if not complete:
            return None
        whole = norms[0]
        if not whole:
            return None
        return [(part / self.b) / (whole / self.size) for part in norms[1:] if part is not None]


def _wrap(owner: Any, name: str, make: Callable[[Callable], Callable]) -> None:
    original = getattr(owner, name)
    setattr(owner, name, make(original))


# -- PyTorch ------------------------------------------------------------------

_untagged = itertools.count()
_OWN_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def _call_site(loader: Any) -> str:
    """Where the program builds a DataLoader: the first frame outside torch, losslint
    and the loader's own ``__init__`` chain (a subclass calling ``super().__init__``).
    A loader rebuilt every epoch at the same line is the same training stream."""
    import torch

    torch_directory = os.path.dirname(os.path.abspath(torch.__file__))
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        inside = filename.startswith(torch_directory) or filename.startswith(_OWN_DIRECTORY)
        if not inside and frame.f_locals.get("self") is not loader:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return f"loader-{next(_untagged)}"


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
                # Under AMP, GradScaler.scale tagged the tensor with its scale: record the loss itself.
                value = float(self.detach().reshape(()).float().cpu()) / getattr(self, "_losslint_scale", 1.0)
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
            limit = args[0] if args else kwargs.get("max_norm")
            if isinstance(limit, (int, float)):
                rec.clip_limit = float(limit)
                rec.clipped = rec.clipped or float(total) > float(limit)
            return total

        return clip_grad_norm_

    def make_clip_value(original: Callable) -> Callable:
        def clip_grad_value_(parameters, *args, **kwargs):
            parameters = list(parameters) if not isinstance(parameters, torch.Tensor) else [parameters]
            grads = [p.grad for p in parameters if p.grad is not None]
            rec.pending_clip_norm = _norm(grads)
            limit = args[0] if args else kwargs.get("clip_value")
            if isinstance(limit, (int, float)):
                rec.clip_limit = float(limit)
                rec.clipped = rec.clipped or any(bool((g.detach().abs() > limit).any()) for g in grads)
            return original(parameters, *args, **kwargs)

        return clip_grad_value_

    # AMP: a tensor GradScaler.scale returns carries its scale, which backward() divides out.
    def make_scale(original: Callable) -> Callable:
        def scale(self, outputs):
            result = original(self, outputs)
            if isinstance(result, torch.Tensor) and result is not outputs:
                try:
                    result._losslint_scale = float(self.get_scale()) or 1.0
                except Exception:
                    pass
            return result

        return scale

    grad_scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if grad_scaler is not None:
        _wrap(grad_scaler, "scale", make_scale)

    # Per-sample losses (the null is re-sampled from them) and, on a few full steps, the
    # gradient norm of b-sample subsets of the batch over that of the whole batch.
    def make_loss(original: Callable) -> Callable:
        def loss_function(*args, **kwargs):
            result = original(*args, **kwargs)
            samples = rec.current_samples()
            if rec.in_keras_fit or rec.captured_batch or not samples or not torch.is_grad_enabled():
                return result
            if not isinstance(result, torch.Tensor) or not result.requires_grad:
                return result
            try:
                reduction = kwargs.get("reduction", "mean")
                if reduction == "none":
                    per = result
                elif reduction in ("mean", "sum") and len(args) <= 2:
                    per = original(*args, **{**kwargs, "reduction": "none"})
                else:
                    return result
                _record_per_sample(rec, per, samples)
            except Exception:  # the record is best effort; the program's loss is untouched
                pass
            return result

        return loss_function

    import torch.nn.functional as functional

    for name in PER_SAMPLE_LOSSES:
        if hasattr(functional, name):
            _wrap(functional, name, make_loss)

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
        if not rec.params:
            rec.params = [p for group in optimizer.param_groups for p in group["params"]]
            rec.param_device = str(rec.params[0].device) if rec.params else None
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
            self._losslint_tag = _call_site(self)
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
                    small = shrunk_size(n, batch_size, rec.full_batches, rec.real_remainder)
                    if small < n:
                        generator = torch.Generator().manual_seed(0)
                        indices = torch.randperm(n, generator=generator)[:small].tolist()
                        params["dataset"] = tud.Subset(dataset, indices)
                    drop_last = bool(params.get("drop_last", False))
                    rec.small_batch[self._losslint_tag] = 0 if drop_last else small % batch_size
                    entry = {"n": n, "batch_size": batch_size, "shrunk_to": small, "loader": self._losslint_tag}
                    entry.update(real_last=0 if drop_last else n % batch_size, smoke_last=0 if drop_last else small % batch_size)
                    if entry not in rec.shrunk:
                        rec.shrunk.append(entry)
            elif not self._losslint_internal and custom_sampler:
                rec.notes.append("a DataLoader with a custom sampler was not shrunk")
            return original(*bound.args, **bound.kwargs)

        return __init__

    _wrap(tud.DataLoader, "__init__", make_init)

    def make_iter(original: Callable) -> Callable:
        def __iter__(self):
            if getattr(self, "_losslint_internal", False):
                return original(self)
            if getattr(self, "_losslint_tag", None) is None:
                self._losslint_tag = f"loader-{next(_untagged)}"
            loader = self._losslint_tag
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
                small = shrunk_size(n, b, rec.full_batches, rec.real_remainder)
                rec.keras_small_batch = small % b
                if small < n:
                    indices = np.random.default_rng(0).permutation(n)[:small]
                    indices.sort()
                    x, y = _slice_arrays(x, n, indices), _slice_arrays(y, n, indices)
                    if sample_weight is not None:
                        kwargs["sample_weight"] = _slice_arrays(sample_weight, n, indices)
                rec.shrunk.append(
                    {"n": n, "batch_size": b, "shrunk_to": small, "loader": "Model.fit", "real_last": n % b, "smoke_last": small % b}
                )
            else:
                rec.notes.append("Model.fit input was not a set of arrays: not shrunk")
            if epochs > rec.epochs:
                rec.stopped = "epochs"
            rec.in_keras_fit = True
            rec.params = []  # the model's variables are built by the first step: taken in apply()
            try:
                return original(self, x, y, batch_size, min(epochs, rec.epochs), *args, callbacks=[*callbacks, StepRecorder()], **kwargs)
            finally:
                rec.in_keras_fit = False

        return fit

    _wrap(keras.Model, "fit", make_fit)

    def make_train_step(original: Callable) -> Callable:
        def train_step(self, data):
            rec.on_batch("Model.fit", _leading_size(data[0] if isinstance(data, tuple) else data))
            return original(self, data)

        return train_step

    _wrap(trainer_class, "train_step", make_train_step)

    def make_apply(original: Callable) -> Callable:
        def apply(self, grads, trainable_variables=None):
            if not rec.in_keras_fit:
                return original(self, grads, trainable_variables)
            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            values = [getattr(v, "value", v) for v in variables]
            if not rec.params:
                rec.params = values
                rec.param_device = str(values[0].device) if values else None
            grad_list = [g for g in grads if g is not None]
            # Keras clips inside apply(): record its threshold and whether it fires.
            for attribute in ("global_clipnorm", "clipnorm", "clipvalue"):
                limit = getattr(self, attribute, None)
                if limit:
                    rec.clip_limit = float(limit)
                    if attribute == "global_clipnorm":
                        rec.clipped = (_norm(grad_list) or 0.0) > limit
                    elif attribute == "clipnorm":
                        rec.clipped = any((_norm([g]) or 0.0) > limit for g in grad_list)
                    else:
                        rec.clipped = any(bool((g.detach().abs() > limit).any()) for g in grad_list)
                    break
            rec.begin_step(_norm(list(grads)), [(v, v.detach().clone()) for v in values])
            result = original(self, grads, trainable_variables)
            update = _norm([v.detach() - old for v, old in rec.snapshot or []])
            batch = sum(b for _, b in rec.pending_batches) or None
            rec.pending_batches = []
            rec.end_step(update, epoch=rec.keras_epoch, batch=batch)
            return result

        return apply

    _wrap(optimizer_class, "apply", make_apply)

    # Per-sample losses: what a Keras Loss computes before it reduces them.
    loss_module = sys.modules.get("keras.src.losses.loss")
    if loss_module is not None and hasattr(loss_module, "reduce_weighted_values"):

        def make_reduce(original: Callable) -> Callable:
            def reduce_weighted_values(losses, *args, **kwargs):
                samples = rec.current_samples()
                if rec.in_keras_fit and samples and not rec.captured_batch and hasattr(losses, "dim"):
                    try:
                        _record_per_sample(rec, losses, samples)
                    except Exception:  # best effort: the program's loss is untouched
                        pass
                return original(losses, *args, **kwargs)

            return reduce_weighted_values

        _wrap(loss_module, "reduce_weighted_values", make_reduce)


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
# The harness's own fault, not the program's: CUDA was touched before the fork.
_FORK_MARKERS = ("Cannot re-initialize CUDA in forked subprocess",)


def classify_error(text: str) -> str:
    """A short name for why a program stopped: 'harness-error' (CUDA in a forked
    child), 'needs-gpu' or 'crash'."""
    if any(marker in text for marker in _FORK_MARKERS):
        return "harness-error"
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
            sys.stderr.write(text)  # in the program's output, as a plain run would show it
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
