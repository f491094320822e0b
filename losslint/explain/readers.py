"""Reading the loss logs trainers already write.

Every reader returns a ``Log``: one training-loss ``Series`` (step, loss, and the
epoch and learning rate where they are logged, ``nan`` where a row lacks them),
the steps at which an evaluation was logged, and notes on what was guessed.

Column, key and tag names are guessed (``loss``, ``train_loss``, ``train/loss``,
``train_loss_step``... for the loss; ``global_step``, ``step``, ``_step``,
``iteration``... for the step) and can be overridden. Only the standard library
is used, except for TensorBoard event files, which are read by the ``tensorboard``
package (the ``tensorboard`` extra), never by a parser of our own.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

NAN = math.nan

FORMATS = {
    "hf": "Hugging Face trainer_state.json",
    "lightning": "Lightning metrics.csv",
    "csv": "CSV",
    "jsonl": "JSON lines",
    "wandb": "W&B history export",
    "tensorboard": "TensorBoard event file",
    "stdout": "training stdout",
}

# Names in order of preference, compared without case.
STEP_NAMES = ("global_step", "train/global_step", "trainer/global_step", "step", "steps", "iteration", "iter", "it", "_step")
LOSS_NAMES = (
    "loss", "train_loss", "train/loss", "training_loss", "train/train_loss", "train_loss_step", "loss_step",
    "train/loss_step", "trainer/loss", "value",  # "Value": TensorBoard's own CSV export
)
EPOCH_NAMES = ("epoch", "train/epoch", "epochs", "trainer/epoch")
LR_NAMES = ("learning_rate", "lr", "train/learning_rate", "train/lr", "trainer/lr")
_NOT_TRAINING = re.compile(r"(?i)(^|[^a-z])(val|valid|validation|eval|evaluation|test|dev)([^a-z]|$)")


class LogError(Exception):
    """A log that cannot be read; the message names the format tried."""


@dataclass
class Series:
    steps: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)  # nan where not logged; empty when never
    lrs: list[float] = field(default_factory=list)
    name: str = "loss"

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class Log:
    path: str
    format: str  # a key of FORMATS
    series: Series
    eval_steps: list[float] = field(default_factory=list)  # where an evaluation was logged
    notes: list[str] = field(default_factory=list)

    @property
    def format_name(self) -> str:
        return FORMATS[self.format]


@dataclass(frozen=True)
class ReadOptions:
    format: str = "auto"
    step_column: str | None = None
    loss_column: str | None = None
    pattern: str | None = None  # stdout: a regex with named groups step and loss (epoch, lr optional)


def _pick(names: Iterable[str], preferred: tuple[str, ...], override: str | None, what: str, source: str) -> str | None:
    names = list(names)
    if override is not None:
        if override not in names:
            raise LogError(f"{source}: no {what} {override!r} (there are: {', '.join(names[:30]) or 'none'})")
        return override
    lowered = {n.lower(): n for n in names}
    for name in preferred:
        if name in lowered:
            return lowered[name]
    return None


def _guess_loss(names: list[str], override: str | None, source: str) -> str | None:
    found = _pick(names, LOSS_NAMES, override, "loss column", source)
    if found is not None:
        return found
    candidates = [
        n for n in names
        if "loss" in n.lower() and not _NOT_TRAINING.search(n) and not n.lower().endswith(("_epoch", "__min", "__max"))
    ]
    candidates.sort(key=lambda n: ("train" not in n.lower(), len(n)))
    return candidates[0] if candidates else None


def _guess_lr(names: list[str]) -> str | None:
    found = _pick(names, LR_NAMES, None, "", "")
    if found is not None:
        return found
    # Lightning's LearningRateMonitor: "lr-SGD", "lr-AdamW/pg1"
    candidates = sorted(n for n in names if n.lower().startswith("lr-") or "learning_rate" in n.lower())
    return candidates[0] if candidates else None


def _eval_columns(names: list[str], loss: str) -> list[str]:
    return [n for n in names if n != loss and "loss" in n.lower() and _NOT_TRAINING.search(n)]


def _number(text) -> float:
    """A cell or value as a float; nan when empty or not a number."""
    if text is None or text == "":
        return NAN
    try:
        return float(text)
    except (TypeError, ValueError):
        return NAN


def _finish(series: Series, log: Log) -> Log:
    """Order by step; a step logged twice (a resumed run) keeps its last value."""
    steps = series.steps
    if any(steps[i] >= steps[i + 1] for i in range(len(steps) - 1)):
        last = {}
        for i, s in enumerate(steps):
            last[s] = i
        order = sorted(last.values(), key=lambda i: steps[i])
        series.steps = [steps[i] for i in order]
        series.losses = [series.losses[i] for i in order]
        if series.epochs:
            series.epochs = [series.epochs[i] for i in order]
        if series.lrs:
            series.lrs = [series.lrs[i] for i in order]
        log.notes.append("steps were not in order or repeated (a resumed run?): sorted, the last value of a step kept")
    if series.epochs and all(math.isnan(e) for e in series.epochs):
        series.epochs = []
    if series.lrs and all(math.isnan(v) for v in series.lrs):
        series.lrs = []
    return log


# --- tables: CSV, JSON lines, trainer_state.json, W&B history --------------------------------


def _from_rows(
    names: list[str], rows: Iterable[list], path: str, fmt: str, options: ReadOptions, get=None
) -> Log:
    """Rows of a table whose columns are ``names``; ``get(row, column)`` reads a cell
    (list rows by index by default)."""
    loss = _guess_loss(names, options.loss_column, f"{path} ({FORMATS[fmt]})")
    if loss is None:
        raise LogError(
            f"{path}: read as {FORMATS[fmt]}, but no loss column among: {', '.join(names[:30]) or 'none'} "
            "(name one with --loss-column)"
        )
    step = _pick(names, STEP_NAMES, options.step_column, "step column", f"{path} ({FORMATS[fmt]})")
    epoch = _pick(names, EPOCH_NAMES, None, "", "")
    lr = _guess_lr(names)
    evals = _eval_columns(names, loss)
    index = {n: i for i, n in enumerate(names)}
    if get is None:
        li, si = index[loss], index[step] if step is not None else None
        ei, ri = (index[epoch] if epoch else None), (index[lr] if lr else None)
        vi = [index[n] for n in evals]
    else:
        li, si, ei, ri, vi = loss, step, epoch, lr, evals
    read = get or (lambda row, i: row[i] if i < len(row) else "")
    series = Series(name=loss)
    log = Log(path, fmt, series)
    steps, losses, epochs, lrs = series.steps, series.losses, series.epochs, series.lrs
    eval_steps = log.eval_steps
    if get is None and si is not None:
        # the hot path of a long CSV: float() straight on the cells, the general
        # loop below only for a row where that fails (an empty or short row)
        rows = iter(rows)
        pending = None
        for row in rows:
            try:
                value, where = float(row[li]), float(row[si])
                epoch = float(row[ei]) if ei is not None else None
                rate = float(row[ri]) if ri is not None else None
            except (ValueError, IndexError):
                pending = row
                break
            steps.append(where)
            losses.append(value)
            if ei is not None:
                epochs.append(epoch)
            if ri is not None:
                lrs.append(rate)
        rows = [pending, *rows] if pending is not None else []
    count = len(steps)
    for row in rows:
        count += 1
        value = _number(read(row, li))
        where = _number(read(row, si)) if si is not None else float(count - 1)
        if math.isnan(value):
            if vi and not math.isnan(where) and any(not math.isnan(_number(read(row, i))) for i in vi):
                eval_steps.append(where)
            continue
        if math.isnan(where):
            continue
        steps.append(where)
        losses.append(value)
        if ei is not None:
            epochs.append(_number(read(row, ei)))
        if ri is not None:
            lrs.append(_number(read(row, ri)))
    if not steps:
        raise LogError(f"{path}: read as {FORMATS[fmt]}, but column {loss!r} holds no number")
    if step is None:
        log.notes.append(f"no step column (guessed among {', '.join(STEP_NAMES)}): the row number is the step")
    log.notes.append(f"loss from {loss!r}" + (f", step from {step!r}" if step else ""))
    return _finish(series, log)


def read_csv(path: str, options: ReadOptions, fmt: str = "csv") -> Log:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(4096)
            handle.seek(0)
            delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
            reader = csv.reader(handle, delimiter=delimiter)
            names = next(reader, None)
            if not names:
                raise LogError(f"{path}: read as {FORMATS[fmt]}, but it is empty")
            names = [n.strip() for n in names]
            if fmt == "csv" and Path(path).name == "metrics.csv" and "epoch" in names and "step" in names:
                fmt = "lightning"
            if fmt == "csv" and any(" - " in n for n in names) and "Step" in names:
                fmt = "wandb"  # the W&B UI's export: "Step", "<run> - train/loss", ...
            return _from_rows(names, reader, path, fmt, options)
    except (UnicodeDecodeError, csv.Error) as error:
        raise LogError(f"{path}: not a {FORMATS[fmt]} file: {error}") from None


def _records(records: list, path: str, fmt: str, options: ReadOptions) -> Log:
    records = [r for r in records if isinstance(r, dict)]
    names: dict[str, None] = {}
    for record in records[:5000]:
        names.update(dict.fromkeys(k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)))
    if not records:
        raise LogError(f"{path}: read as {FORMATS[fmt]}, but it holds no record with numbers")
    return _from_rows(list(names), records, path, fmt, options, get=lambda row, key: row.get(key) if key is not None else None)


def read_jsonl(path: str, options: ReadOptions) -> Log:
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise LogError(f"{path}: read as {FORMATS['jsonl']}, but line {number} is not JSON") from None
    name = Path(path).name
    fmt = "wandb" if "wandb" in name or any(isinstance(r, dict) and "_step" in r for r in records[:100]) else "jsonl"
    return _records(records, path, fmt, options)


def read_json(path: str, options: ReadOptions) -> Log:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as error:
        raise LogError(f"{path}: read as {FORMATS['hf']}, but it is not JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("log_history"), list):
        return _records(data["log_history"], path, "hf", options)
    if isinstance(data, list):  # a W&B history export through the API: a list of rows
        fmt = "wandb" if any(isinstance(r, dict) and "_step" in r for r in data[:100]) else "jsonl"
        return _records(data, path, fmt, options)
    raise LogError(f"{path}: read as {FORMATS['hf']}, but it has no log_history list")


# --- TensorBoard ---------------------------------------------------------------------------------


def read_tensorboard(path: str, options: ReadOptions) -> Log:
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        from tensorboard.util import tensor_util
    except ImportError:
        raise LogError(
            f"{path}: a {FORMATS['tensorboard']} needs the tensorboard package to be read: "
            "pip install 'losslint-static[tensorboard]'"
        ) from None
    paths = sorted(str(p) for p in Path(path).rglob("events.out.tfevents*")) if os.path.isdir(path) else [path]
    values: dict[str, dict[float, float]] = {}
    try:
        for event_path in paths:
            for event in EventFileLoader(event_path).Load():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        number = float(value.simple_value)
                    elif value.HasField("tensor"):
                        array = tensor_util.make_ndarray(value.tensor)
                        if array.size != 1 or array.dtype.kind not in "fiu":
                            continue
                        number = float(array.reshape(()))
                    else:
                        continue
                    values.setdefault(value.tag, {})[float(event.step)] = number
    except Exception as error:  # a truncated or foreign file: the reader's own words
        raise LogError(f"{path}: not a readable {FORMATS['tensorboard']}: {type(error).__name__}: {error}") from None
    names = list(values)
    fmt_source = f"{path} ({FORMATS['tensorboard']})"
    loss = _guess_loss(names, options.loss_column, fmt_source)
    if loss is None:
        raise LogError(f"{path}: read as {FORMATS['tensorboard']}, but no loss tag among: {', '.join(names) or 'none'} (name one with --loss-column)")
    epoch, lr = _pick(names, EPOCH_NAMES, None, "", ""), _guess_lr(names)
    steps = sorted(values[loss])
    series = Series(
        steps=steps,
        losses=[values[loss][s] for s in steps],
        epochs=[values[epoch].get(s, NAN) for s in steps] if epoch else [],
        lrs=[values[lr].get(s, NAN) for s in steps] if lr else [],
        name=loss,
    )
    log = Log(path, "tensorboard", series, notes=[f"loss from tag {loss!r}"])
    log.eval_steps = sorted({s for n in _eval_columns(names, loss) for s in values[n]})
    return _finish(series, log)


# --- plain training stdout ------------------------------------------------------------------------

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
_KEY_END = r"['\"]?\s*[:=]?\s*"
STEP_PATTERN = re.compile(r"(?i)(?<![\w/.-])(?:global[_ ]?)?(?:step|iter(?:ation)?|it)s?" + _KEY_END + r"[\[(]?\s*(\d+)")
LOSS_PATTERN = re.compile(r"(?i)(?<![\w/.-])(?:train(?:ing)?[_ /-]?)?loss" + _KEY_END + _NUM)
EPOCH_PATTERN = re.compile(r"(?i)(?<![\w/.-])epoch" + _KEY_END + r"[\[(]?\s*" + _NUM)
LR_PATTERN = re.compile(r"(?i)(?<![\w/.-])(?:lr|learning[_ ]rate)" + _KEY_END + _NUM)
_EVAL_WORD = re.compile(r"(?i)\b(val|valid|validation|eval|evaluation|test)\b")
_EVAL_BEFORE = re.compile(r"(?i)\b(val|valid|validation|eval|evaluation|test)\s*$")


def _training_loss(line: str) -> float | None:
    for match in LOSS_PATTERN.finditer(line):
        if not _EVAL_BEFORE.search(line[: match.start()]):
            return _number(match.group(1))
    return None


def read_stdout(path: str, options: ReadOptions) -> Log:
    custom = None
    if options.pattern:
        try:
            custom = re.compile(options.pattern)
        except re.error as error:
            raise LogError(f"--pattern {options.pattern!r}: not a regular expression: {error}") from None
        if "loss" not in custom.groupindex:
            raise LogError("--pattern needs a named group (?P<loss>...) (and (?P<step>...) for the step)")
    series = Series()
    log = Log(path, "stdout", series)
    with_step = without_step = 0
    rows: list[tuple[float | None, float, float, float]] = []
    last_step = NAN
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if custom is not None:
                    match = custom.search(line)
                    if not match:
                        continue
                    groups = match.groupdict()
                    loss = _number(groups.get("loss"))
                    step = _number(groups["step"]) if groups.get("step") is not None else None
                    epoch, lr = _number(groups.get("epoch")), _number(groups.get("lr"))
                else:
                    loss = _training_loss(line)
                    if loss is None:
                        if _EVAL_WORD.search(line) and not math.isnan(last_step):
                            log.eval_steps.append(last_step)
                        continue
                    found = STEP_PATTERN.search(line)
                    step = float(found.group(1)) if found else None
                    found = EPOCH_PATTERN.search(line)
                    epoch = _number(found.group(1)) if found else NAN
                    found = LR_PATTERN.search(line)
                    lr = _number(found.group(1)) if found else NAN
                if math.isnan(loss):
                    continue
                with_step += step is not None
                without_step += step is None
                rows.append((step, loss, epoch, lr))
                if step is not None:
                    last_step = step
    except OSError as error:
        raise LogError(f"{path}: cannot read it as {FORMATS['stdout']}: {error.strerror or error}") from None
    if not rows:
        what = f"--pattern {options.pattern!r}" if custom else "a step and a loss (e.g. 'step 120 loss 0.53'; or give --pattern)"
        raise LogError(f"{path}: read as {FORMATS['stdout']}, but no line matches {what}")
    if with_step:
        rows = [r for r in rows if r[0] is not None]
        if without_step:
            log.notes.append(f"{without_step} loss lines without a step were left out")
    else:
        rows = [(float(i), *rest) for i, (_, *rest) in enumerate(rows)]
        log.notes.append("no step on the lines: the line's order is its step (the logging interval is unknown)")
    rows = _unroll_epoch_counters(rows, log)
    series.steps = [r[0] for r in rows]
    series.losses = [r[1] for r in rows]
    series.epochs = [r[2] for r in rows]
    series.lrs = [r[3] for r in rows]
    return _finish(series, log)


def _unroll_epoch_counters(rows: list, log: Log) -> list:
    """'Epoch 2 [batch 100/1390]': a step counter that starts over every epoch
    becomes a global step (the last counter of each finished epoch added on). A
    counter that falls back to a middle value is a resumed run instead (see _finish)."""
    first = rows[0][0]
    resets = [b[0] for a, b in zip(rows, rows[1:]) if b[0] < a[0]]
    if not resets or any(target > first + 1 for target in resets):
        return rows
    offset, previous, out = 0.0, None, []
    for step, *rest in rows:
        if previous is not None and step < previous:
            offset += previous + (1 if step == 0 else 0)
        out.append((step + offset, *rest))
        previous = step
    log.notes.append(
        "the step counter starts over every epoch: the last counter of each epoch before is added on "
        "(exact when every step is logged)"
    )
    return out


# --- finding and dispatching ----------------------------------------------------------------------

_TEXT_SUFFIXES = (".log", ".txt", ".out", ".err", ".stdout")


def detect_format(path: str) -> str:
    name = os.path.basename(path).lower()
    if "tfevents" in name:
        return "tensorboard"
    if name.endswith(".json"):
        return "hf"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "stdout"


def candidates(directory: str, max_depth: int = 5) -> list[str]:
    """Log files under a run directory, the most specific formats first:
    trainer_state.json (the last checkpoint's, the longest history), metrics.csv,
    TensorBoard event files, W&B history, other CSV and JSONL, text logs."""
    found: list[tuple[int, float, str]] = []
    base = directory.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
        if root.count(os.sep) - base >= max_depth:
            dirs[:] = []
        for name in files:
            full = os.path.join(root, name)
            lower = name.lower()
            if lower == "trainer_state.json":
                rank = 0
            elif lower == "metrics.csv":
                rank = 1
            elif "tfevents" in lower:
                rank = 2
            elif "history" in lower and lower.endswith((".jsonl", ".csv", ".json")):
                rank = 3
            elif lower.endswith((".csv", ".tsv", ".jsonl", ".ndjson")):
                rank = 4
            elif lower.endswith(_TEXT_SUFFIXES):
                rank = 5
            else:
                continue
            try:
                size = os.path.getsize(full)
            except OSError:
                continue
            found.append((rank, -size, full))
    found.sort()
    # one TensorBoard run is a directory of event files: read them together
    out, seen_tb = [], set()
    for rank, _, full in found:
        if rank == 2:
            folder = os.path.dirname(full)
            if folder in seen_tb:
                continue
            seen_tb.add(folder)
            full = folder
        out.append(full)
    return out


READERS = {
    "hf": read_json,
    "jsonl": read_jsonl,
    "wandb": read_jsonl,
    "csv": read_csv,
    "lightning": lambda path, options: read_csv(path, options, "lightning"),
    "tensorboard": read_tensorboard,
    "stdout": read_stdout,
}


def read_log(path: str | os.PathLike, options: ReadOptions = ReadOptions()) -> Log:
    """Read the training loss of ``path`` (a file, or a run directory)."""
    path = str(path)
    if not os.path.exists(path):
        raise LogError(f"{path}: no such file or directory")
    if os.path.isdir(path) and options.format != "tensorboard":
        files = candidates(path)
        if not files:
            raise LogError(
                f"{path}: no log found in it (looked for trainer_state.json, metrics.csv, events.out.tfevents*, "
                f"*.csv, *.jsonl, {', '.join('*' + s for s in _TEXT_SUFFIXES)})"
            )
        errors = []
        for file in files:
            try:
                if os.path.isdir(file):  # a folder of TensorBoard event files
                    return read_tensorboard(file, options)
                return read_log(file, options)
            except LogError as error:
                errors.append(str(error))
        raise LogError(f"{path}: no log in it could be read:\n  " + "\n  ".join(errors[:10]))
    fmt = detect_format(path) if options.format == "auto" else options.format
    if fmt == "wandb" and path.lower().endswith((".csv", ".tsv")):
        return read_csv(path, options, "wandb")
    if fmt == "wandb" and path.lower().endswith(".json"):
        return read_json(path, options)
    try:
        return READERS[fmt](path, options)
    except LogError:
        raise
    except OSError as error:
        raise LogError(f"{path}: cannot read it as {FORMATS[fmt]}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise LogError(f"{path}: read as {FORMATS[fmt]}, but it is not text (give --format?)") from None
