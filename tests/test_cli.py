"""The command line as users run it: options, exit codes, the JSON contract,
noqa, configuration, fixes on disk, and files that cannot be read or parsed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner

from losslint import __version__
from losslint.cli import main
from losslint.findings import Applicability, Fix, NodeEdit

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)
FIXED = TRAIN.replace("shuffle=True)", "shuffle=True, drop_last=True)")
CLEAN = "import torch\nx = torch.ones(3)\n"


def run(args: list[str], cwd: Path) -> tuple[int, str]:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "util.py").write_text(CLEAN)
    return tmp_path


# -- exit codes and formats ------------------------------------------------------


def test_exit_codes(project: Path):
    assert run(["check", "util.py"], project)[0] == 0
    code, out = run(["check", "."], project)
    assert code == 1
    assert "Found 1 finding" in out
    assert run(["check", ".", "--exit-zero"], project)[0] == 0
    assert run(["check", ".", "--select", "NOPE"], project)[0] == 2
    assert run(["check", ".", "--config", "missing.toml"], project)[0] == 2
    assert run(["check", ".", "--output-format", "xml"], project)[0] == 2


def test_text_format_shows_source_line_caret_and_fix(project: Path):
    code, out = run(["check", "train.py"], project)
    assert code == 1
    assert "train.py:5:16: LL201 [warning] partial-last-batch:" in out
    assert "N=1000, B=64: the last batch of every epoch has 40 samples" in out
    assert "5 | train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)" in out
    caret_line = next(line for line in out.splitlines() if "^" in line)
    assert caret_line.index("^") == out.splitlines()[[i for i, l in enumerate(out.splitlines()) if l.startswith("5 |")][0]].index("DataLoader")
    assert "= fix (safe): add drop_last=True" in out


def test_concise_and_statistics(project: Path):
    code, out = run(["check", ".", "--output-format", "concise"], project)
    assert out.splitlines()[0].startswith("train.py:5:16: LL201 [*] training DataLoader without drop_last=True")
    code, out = run(["check", ".", "--statistics"], project)
    assert out.splitlines()[0].split() == ["1", "LL201", "[*]", "partial-last-batch"]


def test_json_contract(project: Path):
    code, out = run(["check", ".", "--output-format", "json"], project)
    assert code == 1
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 1
    finding = data[0]
    assert {k: finding[k] for k in ("code", "name", "severity", "path", "line", "column", "end_line", "end_column")} == {
        "code": "LL201",
        "name": "partial-last-batch",
        "severity": "warning",
        "path": "train.py",
        "line": 5,
        "column": 16,
        "end_line": 5,
        "end_column": 65,
    }
    assert "N=1000, B=64" in finding["message"]
    assert finding["fix"]["applicability"] == "safe"
    # Applying the edits (1-based, whole lines) reproduces the fixed file.
    lines = TRAIN.splitlines(keepends=True)
    for edit in reversed(finding["fix"]["edits"]):
        start, end = edit["location"]["line"] - 1, edit["end_location"]["line"] - 1
        lines[start:end] = [edit["content"]]
    assert "".join(lines) == FIXED


def test_json_is_empty_array_when_clean(project: Path):
    code, out = run(["check", "util.py", "--output-format", "json"], project)
    assert code == 0 and json.loads(out) == []


def test_select_ignore_by_code_prefix_and_name(project: Path):
    assert run(["check", ".", "--ignore", "LL201"], project)[0] == 0
    assert run(["check", ".", "--ignore", "partial-last-batch"], project)[0] == 0
    assert run(["check", ".", "--select", "LL0"], project)[0] == 0
    assert run(["check", ".", "--select", "LL2"], project)[0] == 1
    assert run(["check", ".", "--select", "ALL", "--ignore", "LL20"], project)[0] == 0


# -- fixes -------------------------------------------------------------------------


def test_fix_writes_atomically_keeps_mode_and_reaches_a_fixed_point(project: Path):
    target = project / "train.py"
    target.chmod(0o640)
    code, out = run(["check", ".", "--fix"], project)
    assert code == 0, out
    assert "Fixed 1 finding" in out
    assert target.read_text() == FIXED
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not [p for p in project.iterdir() if "losslint-tmp" in p.name]
    assert run(["check", "."], project)[0] == 0


def test_diff_writes_nothing(project: Path):
    code, out = run(["check", ".", "--diff"], project)
    assert code == 1
    assert "-train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)" in out
    assert "+train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)" in out
    assert (project / "train.py").read_text() == TRAIN


def test_fix_that_would_break_the_file_is_refused(project: Path, monkeypatch):
    import losslint.rules.partial_batch_torch as rules

    def broken_fix(ctx, call, flag, name, description):
        return Fix(description, Applicability.SAFE, (NodeEdit(ctx.span(call), cst.Call, lambda node: cst.Name("lambda"),),))

    monkeypatch.setattr(rules, "set_flag_fix", broken_fix)
    code, out = run(["check", ".", "--fix"], project)
    assert code == 1
    assert "LL004" in out and "fixes not applied" in out
    assert (project / "train.py").read_text() == TRAIN


# -- suppression and configuration ---------------------------------------------------


@pytest.mark.parametrize(
    "comment,suppressed",
    [("# noqa", True), ("# noqa: LL201", True), ("# noqa: partial-last-batch", True), ("# noqa: LL2", True),
     ("# noqa: LL301", False), ("# NOQA:LL201,LL202", True)],
)
def test_noqa(project: Path, comment: str, suppressed: bool):
    (project / "train.py").write_text(TRAIN.replace("shuffle=True)", f"shuffle=True)  {comment}"))
    assert run(["check", "."], project)[0] == (0 if suppressed else 1)
    # --fix honours noqa too: a suppressed line is never rewritten.
    run(["check", ".", "--fix"], project)
    assert ("drop_last=True" in (project / "train.py").read_text()) is not suppressed


def test_pyproject_found_by_walking_up(project: Path):
    (project / "pyproject.toml").write_text('[tool.losslint]\nignore = ["LL201"]\n')
    sub = project / "src"
    sub.mkdir()
    (sub / "train.py").write_text(TRAIN)
    (project / "train.py").unlink()
    assert run(["check", "src"], project)[0] == 0
    assert run(["check", "train.py"], sub)[0] == 0


def test_config_per_file_ignores_exclude_and_dataset_sizes(project: Path):
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [tool.losslint]
            per-file-ignores = { "legacy_*.py" = ["LL2"] }
            extend-exclude = ["generated"]
            dataset-sizes = { CocoBoxes = 1001 }
            """
        )
    )
    (project / "legacy_train.py").write_text(TRAIN)
    (project / "generated").mkdir()
    (project / "generated" / "train.py").write_text(TRAIN)
    (project / "coco.py").write_text(
        "from torch.utils.data import DataLoader\n"
        "train_loader = DataLoader(CocoBoxes('ann.json'), batch_size=100, shuffle=True)\n"
    )
    code, out = run(["check", ".", "--output-format", "json"], project)
    paths = sorted((f["path"], f["code"]) for f in json.loads(out))
    assert paths == [("coco.py", "LL201"), ("train.py", "LL201")]
    coco = next(f for f in json.loads(out) if f["path"] == "coco.py")
    assert "N=1001, B=100" in coco["message"]


def test_bad_config_is_a_usage_error(project: Path):
    (project / "pyproject.toml").write_text('[tool.losslint]\nselekt = ["LL2"]\n')
    code, out = run(["check", "."], project)
    assert code == 2 and "unknown option 'selekt'" in out
    (project / "pyproject.toml").write_text('[tool.losslint]\nselect = "LL2\n')
    assert run(["check", "."], project)[0] == 2


def test_gitignore_and_default_excludes(project: Path):
    (project / ".gitignore").write_text("ignored_*.py\n")
    (project / "ignored_train.py").write_text(TRAIN)
    (project / ".venv").mkdir()
    (project / ".venv" / "train.py").write_text(TRAIN)
    code, out = run(["check", ".", "--output-format", "json"], project)
    assert [f["path"] for f in json.loads(out)] == ["train.py"]
    # A file named explicitly is linted even if ignored.
    code, out = run(["check", "ignored_train.py", "--output-format", "json"], project)
    assert [f["path"] for f in json.loads(out)] == ["ignored_train.py"]


# -- files that cannot be read or parsed (LL0xx) -------------------------------------


def test_unreadable_and_unparsable_files_become_findings(project: Path):
    (project / "syntax.py").write_text("def f(:\n")
    (project / "latin1.py").write_bytes(b"x = '\xe9t\xe9'\n")
    (project / "nul.py").write_bytes(b"x = 1\x00\n")
    (project / "dir.py").mkdir()
    (project / "broken.py").symlink_to(project / "nowhere.py")
    (project / "loop_a.py").symlink_to(project / "loop_b.py")
    (project / "loop_b.py").symlink_to(project / "loop_a.py")
    code, out = run(["check", ".", "missing.py", "--output-format", "json"], project)
    assert code == 1
    found = {f["path"]: (f["code"], f["message"]) for f in json.loads(out)}
    assert found["syntax.py"][0] == "LL003" and "syntax error" in found["syntax.py"][1]
    assert found["latin1.py"][0] == "LL002" and "cannot be decoded" in found["latin1.py"][1]
    assert found["nul.py"][0] == "LL002" and "NUL byte" in found["nul.py"][1]
    assert found["dir.py"][0] == "LL001" and "is a directory" in found["dir.py"][1]
    assert found["broken.py"][0] == "LL001" and "broken symbolic link" in found["broken.py"][1]
    assert found["loop_a.py"][0] == "LL001"
    assert found["missing.py"][0] == "LL001" and "no such file" in found["missing.py"][1]
    assert found["train.py"][0] == "LL201"  # the other files are still linted


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without permission")
def test_permission_denied(project: Path):
    secret = project / "secret.py"
    secret.write_text(TRAIN)
    secret.chmod(0)
    code, out = run(["check", "secret.py"], project)
    assert code == 1 and "LL001" in out and "Permission denied" in out


def test_declared_encoding_is_honoured(project: Path):
    (project / "latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9t\xe9'\n")
    assert run(["check", "latin1.py"], project)[0] == 0


# -- documentation commands ---------------------------------------------------------


def test_version_rule_and_rules():
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.strip() == f"losslint {__version__}"
    doc = runner.invoke(main, ["rule", "LL201"]).output
    for heading in ("# LL201 partial-last-batch", "## What it finds", "## Why it hurts training", "## Example",
                    "## Use instead", "## Fix and its safety", "## References"):
        assert heading in doc
    assert runner.invoke(main, ["rule", "partial-last-batch"]).output == doc
    result = runner.invoke(main, ["rule", "LL999"])
    assert result.exit_code == 2
    table = runner.invoke(main, ["rules"]).output
    assert "LL201  partial-last-batch" in table and "LL003  syntax-error" in table


def test_console_script_runs_as_a_new_user_would(project: Path):
    result = subprocess.run([sys.executable, "-m", "losslint", "check", "train.py"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 1
    assert "LL201" in result.stdout and "Traceback" not in result.stderr


def test_test_files_are_not_judged_unless_asked(project: Path):
    (project / "test_training.py").write_text(TRAIN)
    (project / "test_broken.py").write_text("def f(:\n")
    code, out = run(["check", "test_training.py", "test_broken.py", "--output-format", "json"], project)
    assert [(f["path"], f["code"]) for f in json.loads(out)] == [("test_broken.py", "LL003")]
    (project / "pyproject.toml").write_text("[tool.losslint]\nlint-test-files = true\n")
    code, out = run(["check", "test_training.py", "--output-format", "json"], project)
    assert [f["code"] for f in json.loads(out)] == ["LL201"]
