"""The loss-normalization family (LL101-LL104) on the programs in fixtures/: the
exact findings and numbers, the exact fixes, the correct twins that must stay
quiet (and a one-line bug put into each that must not), the cross-file cases,
and the causes of a per-epoch spike linked along one training path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from losslint.config import Settings
from losslint.engine import Linter, fix_text, lint_text
from losslint.findings import Finding, Severity, Span
from losslint.project import collect_module_facts
from losslint.rules.loss_chain import MARKER, link_full_chain
from losslint.analysis.scaling import LossFacts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LOSS = Settings(select=["LL101", "LL102", "LL103", "LL104"])


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# fixture -> [(code, line, severity, words the message must contain)], other project files
EXPECTED = {
    "torch_mean_loss_divided.py": (
        [("LL101", 23, "warning", ("mean-reduced CrossEntropyLoss", "images.size(0)", "N=1000, B=64", "40 samples is weighted 1.6x"))],
        {},
    ),
    "torch_sum_loss_nominal.py": (
        [("LL103", 26, "warning", ("reduction='sum'", "args.batch_size", "40 samples", "0.62x"))],
        {},
    ),
    "torch_grad_accumulation.py": (
        [("LL104", 20, "warning", ("10 batches per epoch", "last window has 2 micro-batches", "6/4 = 1.50x"))],
        {},
    ),
    "keras_ssd_loss.py": (
        [("LL102", 62, "warning", ("SSDLoss.compute_loss", "keras_ssd_train.py", "n_positive = `tf.reduce_sum(positives)`", "1/batch size"))],
        {"keras_ssd_train.py": "keras_ssd_train.py"},
    ),
    "torch_focal_project/train.py": (
        [("LL101", 20, "warning", ("FocalLoss (losses.py", ".mean()", "inputs.shape[0]", "N=500, B=32", "20 samples"))],
        {"losses.py": "torch_focal_project/losses.py"},
    ),
}

# The line each fix rewrites, and what it becomes (--unsafe-fixes included).
FIXED_LINES = {
    "torch_mean_loss_divided.py": {23: "        loss = criterion(model(images), targets) / BATCH_SIZE"},
    "torch_sum_loss_nominal.py": {26: '        loss = F.mse_loss(model(x), y, reduction="sum") / x.size(0)'},
    "torch_grad_accumulation.py": {
        20: "        loss = loss / min(ACCUM_STEPS, len(train_loader) - step // ACCUM_STEPS * ACCUM_STEPS)",
        22: "        if (step + 1) % ACCUM_STEPS == 0 or step + 1 == len(train_loader):",
    },
    "keras_ssd_loss.py": {62: "        return total_loss * tf.cast(tf.shape(y_pred)[0], total_loss.dtype)"},
    "torch_focal_project/train.py": {20: "        loss = loss / 32"},
}
SAFE_FIX = {"torch_mean_loss_divided.py", "torch_sum_loss_nominal.py", "torch_grad_accumulation.py", "torch_focal_project/train.py"}


def _files(name: str) -> dict[str, str]:
    return {alias: _read(path) for alias, path in EXPECTED[name][1].items()}


def _path(name: str) -> str:
    return name.rpartition("/")[2]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings(name):
    findings = lint_text(_read(name), LOSS, path=_path(name), files=_files(name))
    got = [(f.code, f.span.line, f.severity.value) for f in findings]
    assert got == [(code, line, severity) for code, line, severity, _ in EXPECTED[name][0]], [f.message for f in findings]
    for finding, (_, _, _, words) in zip(findings, EXPECTED[name][0]):
        for word in words:
            assert word in finding.message, (word, finding.message)


@pytest.mark.parametrize("name", sorted(FIXED_LINES))
def test_fixture_fixes(name):
    source = _read(name)
    safe = name in SAFE_FIX
    findings = lint_text(source, LOSS, path=_path(name), files=_files(name))
    assert all(f.fix is not None and (f.fix.applicability.value == "safe") == safe for f in findings)
    fixed, remaining = fix_text(source, LOSS, unsafe=not safe, path=_path(name), files=_files(name))
    assert remaining == []
    ast.parse(fixed)
    before, after = source.splitlines(), fixed.splitlines()
    assert len(before) == len(after)
    changed = {i + 1: line for i, (old, line) in enumerate(zip(before, after)) if old != line}
    assert changed == FIXED_LINES[name]
    assert lint_text(fixed, LOSS, path=_path(name), files=_files(name)) == []


def test_unsafe_fix_not_applied_without_unsafe():
    source = _read("keras_ssd_loss.py")
    fixed, remaining = fix_text(source, LOSS, unsafe=False, path="keras_ssd_loss.py", files=_files("keras_ssd_loss.py"))
    assert fixed == source
    assert [f.code for f in remaining] == ["LL102"]


# -- the correct twins ---------------------------------------------------------

CORRECT = sorted(p.name for p in (FIXTURES / "correct").glob("*.py"))


@pytest.mark.parametrize("name", CORRECT)
def test_correct_twins_stay_quiet(name):
    assert lint_text(_read(f"correct/{name}"), LOSS, path=name) == []


# One line of each correct twin turned into the bug: the quiet above is not for
# want of looking. (fixture, line as written, the buggy line, expected code)
MUTATIONS = [
    ("ssd_pytorch_multibox.py", "            loss = loss_l + loss_c", "            loss = (loss_l + loss_c) / images.size(0)", "LL101"),
    ("per_sample_normalization.py", "    per_sequence = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)",
     "    per_sequence = (per_token * mask).sum(dim=1) / mask.sum().clamp(min=1)", "LL101"),
    ("summed_loss_by_batch.py", 'criterion = nn.CrossEntropyLoss(reduction="sum")', "criterion = nn.CrossEntropyLoss()", "LL101"),
    ("summed_loss_by_batch.py", "        token_loss = F.cross_entropy(logits[mask], y[mask], reduction=\"sum\") / mask.sum()",
     "        token_loss = F.cross_entropy(logits[mask], y[mask]) / mask.sum()", "LL101"),
    ("running_average_logging.py", "        loss = criterion(model(inputs), labels)", "        loss = criterion(model(inputs), labels) / len(labels)", "LL101"),
    ("keras_losses_correct.py", "        total_loss = total_loss * tf.cast(batch_size, tf.float32)", "", "LL102"),
    ("keras_losses_correct.py", "    return tf.reduce_sum(per_box, axis=-1) / tf.maximum(1.0, tf.reduce_sum(mask, axis=-1))",
     "    return tf.reduce_sum(per_box, axis=-1) / tf.maximum(1.0, tf.reduce_sum(mask))", "LL102"),
    ("grad_accumulation_correct.py", "train_loader = DataLoader(TensorDataset(torch.randn(1600, 8), torch.randn(1600, 1)), batch_size=100, shuffle=True)",
     "train_loader = DataLoader(TensorDataset(torch.randn(1500, 8), torch.randn(1500, 1)), batch_size=100, shuffle=True)", "LL104"),
]


@pytest.mark.parametrize("name,line,buggy,code", MUTATIONS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_bug_put_into_a_correct_twin_is_found(name, line, buggy, code):
    source = _read(f"correct/{name}")
    assert source.count(line + "\n") == 1
    mutated = source.replace(line + "\n", buggy + "\n" if buggy else "")
    findings = lint_text(mutated, LOSS, path=name)
    assert [f.code for f in findings] == [code], [f.message for f in findings]


# -- cross-file ------------------------------------------------------------------


def test_project_loss_facts_record_mean_and_tuple_returns():
    source = _read("correct/ssd_pytorch_multibox.py")
    facts = collect_module_facts(ast.parse(source), source, "ssd_pytorch_multibox")
    multibox = facts.get(LossFacts).callables["MultiBoxLoss"]
    assert [p.kind for p in multibox.parts] == ["mean", "mean"]
    focal_source = _read("torch_focal_project/losses.py")
    focal = collect_module_facts(ast.parse(focal_source), focal_source, "losses")
    assert focal.get(LossFacts).callables["FocalLoss"].kind == "mean"
    train_source = _read("keras_ssd_train.py")
    train = collect_module_facts(ast.parse(train_source), train_source, "keras_ssd_train")
    # ssd_loss.compute_loss, ssd_loss = SSDLoss(...), SSDLoss imported from keras_ssd_loss: by its class
    assert train.get(LossFacts).compiled == ["keras_ssd_loss.SSDLoss.compute_loss"]


def test_cross_file_loss_needs_the_other_file():
    # Without losses.py, FocalLoss is unknown: nothing is claimed about it.
    assert lint_text(_read("torch_focal_project/train.py"), LOSS, path="train.py") == []


def test_cross_file_loss_class_with_reduction_choice_stays_unknown():
    losses = """
from torch import nn
class MaybeMean(nn.Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction
    def forward(self, a, b):
        loss = (a - b).abs()
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum()
"""
    train = """
from losses import MaybeMean
crit = MaybeMean(reduction="sum")
for x, y in train_loader:
    loss = crit(model(x), y) / x.size(0)
    loss.backward()
"""
    assert lint_text(train, LOSS, path="train.py", files={"losses.py": losses}) == []


def test_keras_loss_compiled_elsewhere_is_judged_in_its_own_file():
    loss = """
import tensorflow as tf
class PosLoss:
    def compute(self, labels, logits):
        per = tf.reduce_sum(tf.square(labels - logits), axis=-1)
        return per / tf.reduce_sum(labels)
"""
    # (labels, logits) is not a (y_true, y_pred) signature: only the compile call says it is a Keras loss.
    assert lint_text(loss, LOSS, path="pos_loss.py") == []
    fit = "from pos_loss import PosLoss\nmodel.compile('sgd', loss=PosLoss().compute)\n"
    found = lint_text(loss, LOSS, path="pos_loss.py", files={"fit.py": fit})
    assert [f.code for f in found] == ["LL102"]
    assert "compile(loss=...) in fit.py" in found[0].message
    # its training paths: its own file, and fit.py (the root) with what fit.py imports
    assert found[0].training_modules == ("pos_loss.py", "fit.py\npos_loss.py")


def test_keras_loss_compiled_by_name_only_where_the_class_resolves():
    loss = """
import tensorflow as tf
class PosLoss:
    def compute(self, labels, logits):
        per = tf.reduce_sum(tf.square(labels - logits), axis=-1)
        return per / tf.reduce_sum(labels)
"""
    other = "class OtherLoss:\n    def compute(self, labels, logits):\n        return logits\n"
    fit_other = "from other import OtherLoss\nmodel.compile('sgd', loss=OtherLoss().compute)\n"
    assert lint_text(loss, LOSS, path="pos_loss.py", files={"fit.py": fit_other, "other.py": other}) == []
    # A star import reaches it; an object whose class cannot be traced counts only within reach.
    star = "from pos_loss import *\nloss = PosLoss()\nmodel.compile('sgd', loss=loss.compute)\n"
    assert [f.code for f in lint_text(loss, LOSS, path="pos_loss.py", files={"fit.py": star})] == ["LL102"]
    untraced = "def build(model, loss):\n    model.compile('sgd', loss=loss.compute)\n"
    assert lint_text(loss, LOSS, path="pos_loss.py", files={"fit.py": untraced}) == []
    assert [f.code for f in lint_text(loss, LOSS, path="pos_loss.py", files={"fit.py": "import pos_loss\n" + untraced})] == ["LL102"]


# -- the causes of a per-epoch spike on one training path ------------------------


def _finding(code: str, path: str, line: int, severity=Severity.WARNING, training_modules=()) -> Finding:
    return Finding(code, code.lower(), f"{code} message", severity, path, Span(line, 0, line, 1), training_modules=training_modules)


def _links(finding: Finding) -> list[str]:
    """The chain's links of a finding as "CODE path:line:column" (in a notebook
    "CODE nb.ipynb:cell 5:2:1"): the code that starts each link's message. (A
    rule's own evidence, where N or B comes from, is left out.)"""
    return [
        f"{place.message.split(':')[0]} {place.path}:{f'cell {place.cell}:' if place.cell is not None else ''}"
        f"{place.span.line}:{place.span.column + 1}"
        for place in finding.related_locations
        if place.message.endswith("on the same training path")
    ]


def test_chain_links_the_three_factors_at_error():
    loss, partial, momentum = _finding("LL101", "train.py", 30), _finding("LL201", "train.py", 12), _finding("LL301", "train.py", 40, Severity.INFO)
    unrelated = _finding("LL205", "train.py", 13, Severity.ERROR)
    findings = [loss, partial, momentum, unrelated]
    link_full_chain(findings)
    assert _links(loss) == ["LL201 train.py:12:1", "LL301 train.py:40:1"]
    assert _links(partial) == ["LL101 train.py:30:1", "LL301 train.py:40:1"]
    assert _links(momentum) == ["LL101 train.py:30:1", "LL201 train.py:12:1"]
    assert all(f.severity is Severity.ERROR for f in (loss, partial, momentum))
    assert all(MARKER in f.message for f in (loss, partial, momentum))
    assert "one of the three causes of a per-epoch spike on one training path (train.py)" in loss.message
    assert _links(unrelated) == [] and MARKER not in unrelated.message
    # Linking twice changes nothing.
    messages = [f.message for f in findings]
    link_full_chain(findings)
    assert [f.message for f in findings] == messages and _links(loss) == ["LL201 train.py:12:1", "LL301 train.py:40:1"]


def test_chain_reference_in_a_notebook_uses_the_cell_notation():
    loss = _finding("LL101", "train.ipynb", 5)
    partial = _finding("LL201", "train.ipynb", 2)
    loss.cell, partial.cell = 7, 5
    link_full_chain([loss, partial])
    assert _links(loss) == ["LL201 train.ipynb:cell 5:2:1"]  # as its location is written: train.ipynb:cell 5:2:1


@pytest.mark.parametrize(
    "codes_and_paths",
    [
        [("LL101", "train.py"), ("LL301", "train.py")],  # no partial batch
        [("LL103", "train.py"), ("LL201", "train.py"), ("LL301", "train.py")],  # under-weighting, not a spike
        [("LL104", "train.py"), ("LL201", "train.py")],  # an accumulation window spikes only with momentum
        [("LL101", "a/train.py"), ("LL201", "b/data.py"), ("LL301", "a/train.py")],  # not on one path
    ],
)
def test_chain_needs_a_spiking_loss_and_a_partial_batch_on_one_path(codes_and_paths):
    findings = [_finding(code, path, i + 1) for i, (code, path) in enumerate(codes_and_paths)]
    link_full_chain(findings)
    assert all(_links(f) == [] and f.severity is Severity.WARNING for f in findings)


def test_a_loss_over_b_and_a_loader_of_unknown_n_are_two_causes_at_warning():
    # N unknown (LL202, info alone) is still the short batch behind a spike when the loss scales as 1/b.
    loss, partial = _finding("LL101", "train.py", 30), _finding("LL202", "train.py", 12, Severity.INFO)
    link_full_chain([loss, partial])
    assert partial.severity is Severity.WARNING and loss.severity is Severity.WARNING
    assert _links(loss) == ["LL202 train.py:12:1"] and _links(partial) == ["LL101 train.py:30:1"]
    assert "one of the two causes of a per-epoch spike on one training path (train.py)" in partial.message
    # A loss that saw only full batches (INFO) does not vouch for a spike elsewhere.
    quiet_loss, other = _finding("LL101", "train.py", 30, Severity.INFO), _finding("LL202", "train.py", 12, Severity.INFO)
    link_full_chain([quiet_loss, other])
    assert _links(other) == [] and other.severity is Severity.INFO


def test_chain_across_files_through_training_paths():
    paths = ("proj/keras_ssd_loss.py", "proj/keras_ssd_train.py\nproj/keras_ssd_loss.py")
    loss = _finding("LL102", "proj/keras_ssd_loss.py", 62, training_modules=paths)
    partial = _finding("LL204", "proj/keras_ssd_train.py", 24)
    momentum = _finding("LL302", "proj/keras_ssd_train.py", 22)
    elsewhere = _finding("LL301", "proj/other_train.py", 9)
    link_full_chain([loss, partial, momentum, elsewhere])
    assert _links(loss) == ["LL204 proj/keras_ssd_train.py:24:1", "LL302 proj/keras_ssd_train.py:22:1"]
    assert partial.severity is Severity.ERROR and "LL102 proj/keras_ssd_loss.py:62:1" in _links(partial)
    assert "training path (proj/keras_ssd_train.py)" in loss.message
    assert _links(elsewhere) == [] and elsewhere.severity is Severity.WARNING


_LOSSES = """
import torch.nn.functional as F

def batch_loss(out, y):
    return F.cross_entropy(out, y) / out.size(0)
"""
_DATA = """
import torch
from torch.utils.data import DataLoader, TensorDataset

def train_loader():
    return DataLoader(TensorDataset(torch.randn(1000, 8), torch.randint(0, 2, (1000,))), batch_size=64, shuffle=True)
"""
_TRAIN = """
import torch
from data import train_loader
from losses import batch_loss

model = torch.nn.Linear(8, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for x, y in train_loader():
    optimizer.zero_grad()
    loss = batch_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_chain_follows_the_imports_of_the_training_script(tmp_path, monkeypatch):
    _write(tmp_path, {"losses.py": _LOSSES, "data.py": _DATA, "train.py": _TRAIN})
    monkeypatch.chdir(tmp_path)
    report = Linter(Settings()).run([Path(".")])
    by_code = {f.code: f for f in report.findings}
    assert {"LL101", "LL201", "LL301"} <= set(by_code), sorted(by_code)
    assert by_code["LL101"].path == "losses.py" and by_code["LL201"].path == "data.py" and by_code["LL301"].path == "train.py"
    for code in ("LL101", "LL201", "LL301"):
        assert by_code[code].severity is Severity.ERROR
        assert "one of the three causes of a per-epoch spike on one training path (train.py)" in by_code[code].message
    assert _links(by_code["LL101"]) == [
        f"LL201 data.py:{by_code['LL201'].span.line}:{by_code['LL201'].span.column + 1}",
        f"LL301 train.py:{by_code['LL301'].span.line}:{by_code['LL301'].span.column + 1}",
    ]


def test_chain_through_a_folder_without_init_and_a_package_init(tmp_path, monkeypatch):
    # deeplab's layout: utils/ has no __init__.py (utils/loss.py is known as `loss`),
    # the loaders live in dataloaders/__init__.py.
    _write(tmp_path, {
        "utils/losses.py": _LOSSES, "dataloaders/__init__.py": _DATA,
        "train.py": _TRAIN.replace("from data import", "from dataloaders import").replace("from losses import", "from utils.losses import"),
    })
    monkeypatch.chdir(tmp_path)
    report = Linter(Settings()).run([Path(".")])
    by_code = {f.code: f for f in report.findings}
    assert by_code["LL101"].path == "utils/losses.py" and by_code["LL201"].path == "dataloaders/__init__.py"
    assert all(by_code[c].severity is Severity.ERROR and len(_links(by_code[c])) == 2 for c in ("LL101", "LL201", "LL301"))


def test_two_copies_of_a_training_script_stay_two_paths(tmp_path, monkeypatch):
    copy = {"losses.py": _LOSSES, "data.py": _DATA, "train.py": _TRAIN}
    _write(tmp_path, {f"{folder}/{name}": text for folder in ("a", "b") for name, text in copy.items()})
    monkeypatch.chdir(tmp_path)
    report = Linter(Settings()).run([Path(".")])
    chain = [f for f in report.findings if f.code in ("LL101", "LL201", "LL301")]
    assert len(chain) == 6, [(f.code, f.path) for f in report.findings]
    for finding in chain:
        folder = finding.path.split("/")[0]
        assert finding.severity is Severity.ERROR and len(_links(finding)) == 2
        assert all(r.split(" ")[1].startswith(folder + "/") for r in _links(finding)), (finding.path, _links(finding))


def test_a_package_init_does_not_join_its_modules_into_one_path(tmp_path, monkeypatch):
    # pkg/__init__.py imports every module of the package; a script importing the
    # package does not train on all of them.
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.losses import batch_loss\nfrom pkg.data import train_loader\n",
        "pkg/losses.py": _LOSSES,
        "pkg/data.py": _DATA,
        "other.py": _TRAIN.replace("from data import train_loader\nfrom losses import batch_loss\n", "import pkg\nfrom pkg import batch_loss, train_loader\n"),
    })
    monkeypatch.chdir(tmp_path)
    report = Linter(Settings()).run([Path(".")])
    assert {"LL101", "LL201", "LL301"} <= {f.code for f in report.findings}
    assert all(_links(f) == [] for f in report.findings)


def test_real_chain_in_one_pytorch_file():
    findings = lint_text(_read("torch_mean_loss_divided.py"), Settings(), path="torch_mean_loss_divided.py")
    chain = {f.code: f for f in findings if f.code in ("LL101", "LL201", "LL301")}
    assert set(chain) == {"LL101", "LL201", "LL301"}, [f.code for f in findings]
    assert all(f.severity is Severity.ERROR for f in chain.values())
    assert _links(chain["LL101"]) == ["LL201 torch_mean_loss_divided.py:14:16", "LL301 torch_mean_loss_divided.py:25:9"]


def test_real_chain_across_the_keras_seed_files():
    linter = Linter(Settings())
    report = linter.run([FIXTURES / "keras_ssd_loss.py", FIXTURES / "keras_ssd_train.py"])
    by_code = {f.code: f for f in report.findings}
    assert {"LL102", "LL204", "LL302"} <= set(by_code), sorted(by_code)
    for code in ("LL102", "LL204", "LL302"):
        assert by_code[code].severity is Severity.ERROR
        assert MARKER in by_code[code].message
    assert any(r.startswith("LL204 ") and ":24:" in r and "keras_ssd_train.py" in r for r in _links(by_code["LL102"]))


_TF_TRAINER = """\
import tensorflow as tf
from data import make_dataset


class Trainer:
    def __init__(self, batch_size):
        self.batch_size = batch_size
        self.loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def compute_loss(self, labels, predictions):
        return tf.reduce_sum(self.loss_object(labels, predictions)) * (1. / self.batch_size)
"""


def _tf_data(batch: str) -> str:
    return (
        "import tensorflow as tf\n\n\ndef make_dataset(batch_size):\n"
        "    (x, y), _ = tf.keras.datasets.cifar10.load_data()\n"
        f"    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).{batch}\n"
    )


@pytest.mark.parametrize(
    "files, severity",
    [
        # the data module it imports keeps the short last batch (ds.shuffle(n).batch(b), a chained call)
        ({"data.py": _tf_data("batch(batch_size)")}, "warning"),
        # no pipeline within reach: whether a batch is ever short is unknown
        ({}, "info"),
        # a pipeline that drops and one that keeps: which one trains is not known
        ({"data.py": _tf_data("batch(batch_size)") + "\n\ndef eval_set(b):\n    return tf.data.Dataset.range(10).batch(b, drop_remainder=True)\n"}, "info"),
        # drop_remainder=True where the data module batches: every batch is full
        ({"data.py": _tf_data("batch(batch_size, drop_remainder=True)")}, None),
    ],
)
def test_nominal_division_severity_follows_the_pipelines_within_reach(files, severity):
    found = [f for f in lint_text(_TF_TRAINER, LOSS, path="trainer.py", files=files) if f.code == "LL103"]
    assert [f.severity.value for f in found] == ([severity] if severity else [])
