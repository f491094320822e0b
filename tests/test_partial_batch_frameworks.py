"""The tf.data / Keras / generator / Hugging Face partial-batch rules (LL203,
LL204, LL206, LL207) on the realistic programs in fixtures/: the exact findings
(code and line), the numbers in their messages, and that the fixed programs parse
and re-lint clean."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from losslint.config import Settings
from losslint.engine import fix_text, lint_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CODES = ["LL203", "LL204", "LL206", "LL207"]
SETTINGS = Settings(select=CODES)

# fixture -> [(code, line, severity, words the message must contain)]
EXPECTED = {
    "keras_fit_mnist.py": [
        ("LL204", 46, "warning", ("N=54000, B=128", "112 samples", "validation_split=0.1", "first 59876")),
    ],
    "tf_data_pipeline.py": [
        ("LL203", 23, "warning", ("N=60000, B=256", "96 samples")),
        ("LL203", 49, "info", (".padded_batch()", "B=256", "not known statically")),
    ],
    "hf_trainer_finetune.py": [
        ("LL207", 41, "warning", ("N=2000, B=12", "8 samples", "dataloader_drop_last=False")),
    ],
    "trl_sft_lora.py": [
        ("LL207", 15, "info", ("SFTConfig", "per_device_train_batch_size=4", "not known statically")),
    ],
    "numpy_batch_generator.py": [
        ("LL206", 28, "info", ("range(0, len(inputs), batchsize)", "B=64")),
    ],
    "keras_sequence_generator.py": [
        ("LL206", 30, "info", ("ImageBatchSequence.__len__ rounds up",)),
        ("LL206", 54, "info", ("rewinds only at current >= len(self.filenames)", "B=16")),
    ],
}

# What the fixes turn the flagged lines into (all of them, --unsafe-fixes included).
FIXED_LINES = {
    "keras_fit_mnist.py": {
        46: "model.fit(x_train[:59876], y_train[:59876], batch_size=BATCH_SIZE, epochs=EPOCHS, validation_split=0.1)",
    },
    "tf_data_pipeline.py": {
        23: "train_ds = train_ds.batch(BATCH_SIZE, drop_remainder=True).prefetch(AUTOTUNE)",
        49: "        .padded_batch(batch_size, padded_shapes=([28, 28, 1], []), drop_remainder=True)",
    },
    "hf_trainer_finetune.py": {51: "    dataloader_drop_last=True,"},
    "trl_sft_lora.py": {23: "    dataloader_drop_last=True,"},
    "numpy_batch_generator.py": {28: "    for start in range(0, len(inputs) - batchsize + 1 if shuffle else len(inputs), batchsize):"},
    "keras_sequence_generator.py": {
        30: "        return len(self.filenames) // self.batch_size",
        54: "            if current >= len(self.filenames) or shuffle and current + batch_size > len(self.filenames):",
    },
}


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings(name):
    findings = lint_text(_read(name), SETTINGS, path=f"fixtures/{name}")
    got = [(f.code, f.span.line, f.severity.value) for f in sorted(findings, key=lambda f: f.sort_key)]
    assert got == [(code, line, severity) for code, line, severity, _ in EXPECTED[name]], [f.message for f in findings]
    for finding, (_, _, _, needles) in zip(sorted(findings, key=lambda f: f.sort_key), EXPECTED[name]):
        for needle in needles:
            assert needle in finding.message, (needle, finding.message)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fixes_relint_clean(name):
    source = _read(name)
    fixed, remaining = fix_text(source, SETTINGS, unsafe=True, path=f"fixtures/{name}")
    ast.parse(fixed)
    assert remaining == []
    assert lint_text(fixed, SETTINGS, path=f"fixtures/{name}") == []
    before, after = source.splitlines(), fixed.splitlines()
    for line, text in FIXED_LINES[name].items():
        assert after[line - 1] == text
    # Nothing else changed (the HF fixes add one line inside the call).
    changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
    if len(before) == len(after):
        assert changed == sorted(FIXED_LINES[name])


def test_safe_fixes_leave_the_unsafe_keras_slice_alone():
    source = _read("keras_fit_mnist.py")
    fixed, remaining = fix_text(source, SETTINGS, unsafe=False, path="fixtures/keras_fit_mnist.py")
    assert fixed == source
    assert [f.code for f in remaining] == ["LL204"]
    assert remaining[0].fix is not None and remaining[0].fix.applicability.value == "unsafe"


def test_validation_split_fix_keeps_the_training_part_a_multiple_of_the_batch():
    from losslint.rules.partial_batch_tf_keras import training_samples, trimmed_length

    for n, b, split in [(60000, 128, 0.1), (50000, 32, 0.2), (1000, 32, 0.0), (1234, 64, 0.15), (70000, 256, 0.3)]:
        m = trimmed_length(n, b, split)
        assert m is not None and m <= n
        assert training_samples(m, split) % b == 0
        # and it is the largest such length
        assert all(training_samples(k, split) % b != 0 for k in range(m + 1, n + 1))


def test_project_generators_and_loader_factories_are_reported_where_a_caller_trains(tmp_path: Path):
    """A training call of another file's short-batch generator method (LL206) or loader
    factory (LL202, the factory's shuffle defaulting to False) is reported at the call, naming the line it comes from; a sibling
    script with a class of the same name that it does not import borrows nothing."""
    import json

    from click.testing import CliRunner

    from losslint.cli import main

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "batch_generator.py").write_text(
        "class BatchGenerator:\n"
        "    def generate(self, batch_size=32):\n"
        "        current = 0\n"
        "        while True:\n"
        "            if current >= len(self.files):\n"
        "                current = 0\n"
        "            batch = self.files[current:current + batch_size]\n"
        "            current += batch_size\n"
        "            yield batch\n"
    )
    (tmp_path / "lib" / "loaders.py").write_text(
        "from torch.utils.data import DataLoader\n\n"
        "def create_dataloader(path, batch_size, shuffle=False):\n"
        "    return DataLoader(Images(path), batch_size=batch_size, shuffle=shuffle)\n"
    )
    (tmp_path / "lib" / "train.py").write_text(
        "from batch_generator import BatchGenerator\n"
        "from loaders import create_dataloader\n\n"
        "train_generator = BatchGenerator().generate(batch_size=8)\n"
        "model.fit(train_generator, epochs=3)\n"
        "val_generator = BatchGenerator().generate(batch_size=8)\n"
        "train_loader = create_dataloader('data/train', 16, shuffle=True)\n"
        "val_loader = create_dataloader('data/val', 16)\n"
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "train.py").write_text(
        "class BatchGenerator:\n"
        "    def generate(self, batch_size=32):\n"
        "        yield from self.batches\n\n"
        "train_generator = BatchGenerator().generate(batch_size=8)\n"
        "model.fit(train_generator, epochs=3)\n"
    )
    old = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        out = CliRunner().invoke(main, ["check", ".", "--no-cache", "--select", "LL2", "--output-format", "json"]).output
    finally:
        os.chdir(old)
    found = sorted((f["path"], f["line"], f["code"]) for f in json.loads(out))
    # The generator says nothing itself: no training evidence there. The factory is
    # reported too (the call graph shows train.py's shuffle=True call, as in yolov5's
    # create_dataloader), without a fix: it also builds the validation loader.
    assert found == [
        ("lib/loaders.py", 4, "LL202"),
        ("lib/train.py", 4, "LL206"),
        ("lib/train.py", 7, "LL202"),
    ], found
    messages = {(f["path"], f["line"]): f["message"] for f in json.loads(out)}
    assert "BatchGenerator.generate (batch_generator.py:5)" in messages[("lib/train.py", 4)] and "B=8" in messages[("lib/train.py", 4)]
    assert "create_dataloader (loaders.py:4)" in messages[("lib/train.py", 7)] and "B=16" in messages[("lib/train.py", 7)]
    assert "create_dataloader builds loaders for its callers" in messages[("lib/loaders.py", 4)]
