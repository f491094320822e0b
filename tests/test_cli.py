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


def test_test_helpers_and_unittest_modules_are_test_files(project: Path):
    """A package's test helpers (``test_utils/``, ``testing/``) and a module of
    unittest classes run by path are test code too; a plain script is not."""
    (project / "pkg" / "test_utils").mkdir(parents=True)
    (project / "pkg" / "test_utils" / "training.py").write_text(TRAIN)
    (project / "integration_tests").mkdir()
    case = "import unittest\n\nclass FlowTest(unittest.TestCase):\n    def test_fit(self):\n        pass\n\n"
    (project / "integration_tests" / "basic_flow.py").write_text(case + TRAIN)
    (project / "scripts").mkdir()
    (project / "scripts" / "training.py").write_text(TRAIN)
    code, out = run(["check", "pkg", "integration_tests", "scripts", "--output-format", "json"], project)
    assert {f["path"] for f in json.loads(out)} == {"scripts/training.py"}


# -- the conventions of ruff and flake8 ------------------------------------------------

MOMENTUM = textwrap.dedent(
    """\
    import torch

    model = torch.nn.Linear(20, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in [(torch.randn(8, 20), torch.randint(0, 10, (8,)))]:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    """
)


def losslint(args: list[str], cwd: Path, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    """The installed command in a new process, as an editor or a shell runs it."""
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "losslint", *args], cwd=cwd, input=stdin or b"", capture_output=True, env={**environment, **env}
    )


@pytest.mark.slow  # new losslint processes, as a shell runs them
def test_stdin_with_and_without_a_filename(project: Path):
    done = losslint(["check", "-", "--output-format", "concise"], project, TRAIN.encode())
    assert done.returncode == 1, done.stderr
    assert done.stdout.decode().startswith("-:5:16: LL201 [*] training DataLoader without drop_last=True")
    assert b"no such file" not in done.stdout + done.stderr
    done = losslint(["check", "--stdin-filename", "train.py", "--output-format", "json"], project, TRAIN.encode())
    [finding] = json.loads(done.stdout)
    assert finding["path"] == "train.py" and finding["fix"]["edits"]
    # Text output shows the line from stdin, not the file on disk.
    (project / "train.py").write_text(CLEAN)
    done = losslint(["check", "-", "--stdin-filename", "train.py"], project, TRAIN.encode())
    assert "5 | train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)" in done.stdout.decode()


@pytest.mark.slow  # new losslint processes, as a shell runs them
def test_stdin_filename_decides_config_excludes_and_project_facts(project: Path):
    sub = project / "pkg"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[tool.losslint]\nextend-exclude = ["legacy"]\nper-file-ignores = { "scripts/*.py" = ["LL2"] }\n')
    (sub / "data.py").write_text("from torch.utils.data import Dataset\n\nclass Windows(Dataset):\n    def __len__(self):\n        return 1000\n")
    loop = "from torch.utils.data import DataLoader\nfrom data import Windows\n\nloader = DataLoader(Windows(), batch_size=64, shuffle=True)\n"
    # N comes from data.py on disk, though loop.py exists only on stdin.
    done = losslint(["check", "--stdin-filename", "pkg/loop.py", "--output-format", "concise"], project, loop.encode())
    assert "pkg/loop.py:4:10: LL201" in done.stdout.decode() and "N=1000, B=64" in done.stdout.decode()
    # The configuration found from the file's place: its excludes and per-file ignores.
    for name in ("pkg/legacy/loop.py", "pkg/scripts/loop.py"):
        done = losslint(["check", "--stdin-filename", name], project, loop.encode())
        assert done.returncode == 0 and b"LL201" not in done.stdout, name
    # An excluded file under --fix comes back unchanged.
    done = losslint(["check", "--fix", "--stdin-filename", "pkg/legacy/loop.py"], project, loop.encode())
    assert done.returncode == 0 and done.stdout == loop.encode()


@pytest.mark.slow  # new losslint processes, as a shell runs them
def test_stdin_fix_writes_the_fixed_source_to_stdout(project: Path):
    done = losslint(["check", "-", "--fix", "--stdin-filename", "train.py"], project, TRAIN.encode())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == FIXED
    assert b"Fixed 1 finding" in done.stderr
    assert (project / "train.py").read_text() == TRAIN  # nothing written
    # What remains is reported on stderr, and decides the exit code.
    done = losslint(["check", "-", "--fix"], project, MOMENTUM.encode())
    assert done.returncode == 1 and done.stdout.decode() == MOMENTUM and b"LL301" in done.stderr
    done = losslint(["check", "-", "--fix", "--unsafe-fixes", "--clip-max-norm", "5"], project, MOMENTUM.encode())
    assert done.returncode == 0 and "clip_grad_norm_(model.parameters(), max_norm=5.0)" in done.stdout.decode()
    done = losslint(["check", "-", "--diff"], project, TRAIN.encode())
    assert done.returncode == 1 and b"+train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)" in done.stdout
    assert losslint(["check", "-", "train.py"], project).returncode == 2


def test_stdin_in_process(project: Path):
    # The quick twin of the process tests above (`pytest -m "not slow"`).
    old = os.getcwd()
    os.chdir(project)
    try:
        runner = CliRunner()
        checked = runner.invoke(main, ["check", "-", "--stdin-filename", "train.py", "--output-format", "concise"], input=TRAIN)
        fixed = runner.invoke(main, ["check", "-", "--fix", "--quiet"], input=TRAIN)
    finally:
        os.chdir(old)
    assert checked.exit_code == 1 and checked.stdout.startswith("train.py:5:16: LL201 [*]")
    assert fixed.exit_code == 0 and fixed.stdout == FIXED


def test_force_exclude_applies_excludes_to_named_paths(project: Path):
    (project / "pyproject.toml").write_text('[tool.losslint]\nextend-exclude = ["legacy"]\n')
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(TRAIN)
    (project / "train.py").write_text(CLEAN)
    assert run(["check", "."], project)[0] == 0
    assert run(["check", "legacy/old.py"], project)[0] == 1  # named explicitly: linted, as ruff does
    assert run(["check", "--force-exclude", "legacy/old.py", "train.py"], project) == (0, "All checks passed!\n")
    assert run(["check", "--force-exclude", "legacy"], project)[0] == 0
    (project / "pyproject.toml").write_text('[tool.losslint]\nextend-exclude = ["legacy"]\nforce-exclude = true\n')
    assert run(["check", "legacy/old.py"], project)[0] == 0
    assert run(["check", "--no-force-exclude", "legacy/old.py"], project)[0] == 1


def test_exclude_extend_exclude_and_per_file_ignores_on_the_command_line(project: Path):
    (project / "scripts").mkdir()
    (project / "scripts" / "run.py").write_text(TRAIN)
    assert run(["check", ".", "--extend-exclude", "scripts", "--output-format", "concise"], project)[1].count("LL201") == 1
    assert run(["check", ".", "--exclude", "train.py", "--exclude", "scripts"], project)[0] == 0
    code, out = run(["check", ".", "--per-file-ignores", "scripts/*.py:LL2", "--per-file-ignores", "train.py:partial-last-batch"], project)
    assert code == 0, out
    assert run(["check", ".", "--per-file-ignores", "train.py"], project)[0] == 2
    assert run(["check", ".", "--per-file-ignores", "train.py:NOPE"], project)[0] == 2


@pytest.mark.parametrize(
    "directive,suppressed",
    [("# losslint: noqa", True), ("# losslint: noqa: LL201", True), ("# losslint: noqa: LL2, LL3", True),
     ("# losslint: noqa: LL301", False), ("# flake8: noqa", True), ("# flake8: noqa: E501", True), ("# FLAKE8: NOQA", True),
     ("x = 1  # losslint: noqa", False)],
)
def test_file_level_noqa(project: Path, directive: str, suppressed: bool):
    (project / "train.py").write_text(f"{directive}\n" + TRAIN)
    assert run(["check", "."], project)[0] == (0 if suppressed else 1)
    run(["check", ".", "--fix"], project)
    assert ("drop_last=True" in (project / "train.py").read_text()) is not suppressed


def test_add_noqa_silences_every_finding_and_merges(project: Path):
    (project / "mom.py").write_text(MOMENTUM.replace("optimizer.step()", "optimizer.step()  # noqa: LL101"))
    text = 'train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, timeout=len("""a string\nover lines"""))\n'
    (project / "split.py").write_text(TRAIN.split("train_loader")[0] + text)
    before = run(["check", ".", "--output-format", "json"], project)[1]
    assert {f["code"] for f in json.loads(before)} == {"LL201", "LL301"}
    code, out = run(["check", ".", "--add-noqa"], project)
    assert code == 0 and "Added 3 noqa directives." in out
    assert (project / "train.py").read_text() == TRAIN.replace("shuffle=True)", "shuffle=True)  # noqa: LL201")
    assert "optimizer.step()  # noqa: LL101, LL301" in (project / "mom.py").read_text()
    # The finding's first line ends inside a string: the comment goes on its last line.
    assert (project / "split.py").read_text().endswith('over lines"""))  # noqa: LL201\n')
    assert run(["check", "."], project)[0] == 0
    assert run(["check", ".", "--add-noqa"], project)[1].startswith("Added 0 noqa directives.")


def test_fix_only_show_fixes_and_exit_non_zero_on_fix(project: Path):
    (project / "mom.py").write_text(MOMENTUM)
    code, out = run(["check", ".", "--fix-only", "--show-fixes"], project)
    assert code == 0, out  # LL301 remains (unsafe), but --fix-only does not report it
    assert "LL301" not in out and out.splitlines()[0] == "Fixed 1 finding."
    assert "Fixed in train.py:" in out and "1 × LL201 (partial-last-batch)" in out
    assert (project / "train.py").read_text() == FIXED
    (project / "train.py").write_text(TRAIN)
    (project / "mom.py").unlink()
    assert run(["check", ".", "--fix"], project)[0] == 0
    (project / "train.py").write_text(TRAIN)
    assert run(["check", ".", "--fix", "--exit-non-zero-on-fix"], project)[0] == 1
    assert run(["check", ".", "--fix-only", "--exit-non-zero-on-fix"], project)[0] == 0  # nothing left to fix


def test_output_file(project: Path):
    code, out = run(["check", ".", "--output-format", "json", "--output-file", "report.json"], project)
    assert code == 1 and out == ""
    assert json.loads((project / "report.json").read_text())[0]["code"] == "LL201"
    assert run(["check", ".", "-o", "missing/dir/report.txt"], project)[0] == 2


def test_json_lines_pylint_gitlab_and_junit(project: Path):
    import xml.etree.ElementTree as ElementTree

    (project / "mom.py").write_text(MOMENTUM)
    code, out = run(["check", ".", "--output-format", "json-lines"], project)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [r["code"] for r in rows] == ["LL301", "LL201"]
    assert rows[1]["url"] == "docs/rules/LL201.md"
    code, out = run(["check", ".", "--output-format", "pylint"], project)
    assert out.splitlines()[1].startswith("train.py:5: [LL201] training DataLoader without drop_last=True")
    code, out = run(["check", ".", "--output-format", "gitlab"], project)
    issues = json.loads(out)
    assert {(i["check_name"], i["severity"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues} == {
        ("LL201", "major", "train.py", 5), ("LL301", "major", "mom.py", 9)}
    assert len({i["fingerprint"] for i in issues}) == 2
    # The fingerprint follows the finding's line, not its number.
    (project / "train.py").write_text("# a new first line\n" + TRAIN)
    moved = json.loads(run(["check", ".", "--output-format", "gitlab"], project)[1])
    assert {i["fingerprint"] for i in moved} == {i["fingerprint"] for i in issues}
    code, out = run(["check", ".", "--output-format", "junit"], project)
    root = ElementTree.fromstring(out)
    assert root.get("failures") == "2"
    failures = root.findall(".//testcase/failure")
    assert sorted(f.get("type") for f in failures) == ["LL201", "LL301"]
    assert ElementTree.fromstring(run(["check", "util.py", "--output-format", "junit"], project)[1]).get("failures") == "0"


def test_rule_all_and_json(project: Path):
    code, out = run(["rule", "--all"], project)
    assert code == 0 and out.count("\n# LL") + 1 == len(all_rule_codes())
    code, out = run(["rule", "LL201", "--output-format", "json"], project)
    document = json.loads(out)
    assert document["code"] == "LL201" and document["severity"] == "warning" and document["url"] == "docs/rules/LL201.md"
    assert document["example_fixed"] == FIXED
    assert [d["code"] for d in json.loads(run(["rule", "--all", "--output-format", "json"], project)[1])] == all_rule_codes()
    assert [d["code"] for d in json.loads(run(["rules", "--output-format", "json"], project)[1])] == all_rule_codes()
    assert run(["rule"], project)[0] == 2


def all_rule_codes() -> list[str]:
    from losslint.rules.base import all_rules

    return [r.code for r in all_rules()]


@pytest.mark.slow  # new losslint processes, as a shell runs them
def test_color_force_color_and_no_color(project: Path):
    red_or_yellow = b"\x1b["
    assert red_or_yellow not in losslint(["check", "."], project).stdout  # a pipe: no colour
    assert red_or_yellow in losslint(["check", "."], project, FORCE_COLOR="1").stdout
    assert red_or_yellow in losslint(["check", ".", "--color", "always"], project).stdout
    assert red_or_yellow not in losslint(["check", "."], project, FORCE_COLOR="1", NO_COLOR="1").stdout
    assert red_or_yellow not in losslint(["check", ".", "--color", "never"], project, FORCE_COLOR="1").stdout


def test_fix_marker_only_on_what_fix_will_fix(project: Path):
    (project / "mom.py").write_text(MOMENTUM)
    out = run(["check", ".", "--output-format", "concise"], project)[1]
    assert "mom.py:9:5: LL301 SGD" in out and "train.py:5:16: LL201 [*]" in out
    assert "(1 fixable with --fix, 1 more with --unsafe-fixes)" in out
    assert "mom.py:9:5: LL301 [*] SGD" in run(["check", ".", "--output-format", "concise", "--unsafe-fixes"], project)[1]
    statistics = run(["check", ".", "--statistics"], project)[1].splitlines()
    assert statistics[0].split() == ["1", "LL201", "[*]", "partial-last-batch"]
    assert statistics[1].split() == ["1", "LL301", "momentum-without-clipping"]


def test_fail_on_sets_the_threshold_not_what_is_shown(project: Path):
    info = "from torch.utils.data import DataLoader\n\ndef make(train_ds, b):\n    return DataLoader(train_ds, batch_size=b, shuffle=True)\n"
    (project / "train.py").write_text(info)
    code, out = run(["check", ".", "--output-format", "concise"], project)
    assert code == 1 and "LL202" in out
    code, out = run(["check", ".", "--fail-on", "warning", "--output-format", "concise"], project)
    assert code == 0 and "LL202" in out  # shown, not failing
    (project / "mom.py").write_text(MOMENTUM)
    assert run(["check", ".", "--fail-on", "warning"], project)[0] == 1
    assert run(["check", ".", "--fail-on", "error"], project)[0] == 0
    (project / "broken.py").write_text("def (:\n")
    assert run(["check", ".", "--fail-on", "error"], project)[0] == 1


def test_diff_shows_a_fix_that_fails_and_the_counts_agree(project: Path, monkeypatch):
    import losslint.rules.partial_batch_torch as rules

    def broken_fix(ctx, call, flag, name, description):
        return Fix(description, Applicability.SAFE, (NodeEdit(ctx.span(call), cst.Call, lambda node: cst.Name("lambda"),),))

    monkeypatch.setattr(rules, "set_flag_fix", broken_fix)
    code, out = run(["check", ".", "--diff"], project)
    assert code == 1
    assert "LL004" in out and "fixes not applied" in out and "No fixes available." not in out
    assert "Fixes failed in 1 file (LL004)" in out
    code, out = run(["check", ".", "--fix"], project)
    assert code == 1 and "LL004" in out
    assert "fixable" not in out  # the fix that failed is not counted as one --fix would apply
    assert "LL201 [*]" not in run(["check", ".", "--fix", "--output-format", "concise"], project)[1]


@pytest.mark.slow  # new losslint processes, as a shell runs them
def test_cache_goes_to_the_users_cache_directory_outside_a_project(tmp_path: Path):
    loose = tmp_path / "scratch"  # no pyproject.toml, setup.py or .git above it
    loose.mkdir()
    (loose / "train.py").write_text(TRAIN)
    cache_home = tmp_path / "cache-home"
    environment = {"XDG_CACHE_HOME": str(cache_home)}
    if any((parent / marker).exists() for parent in loose.parents for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
        pytest.skip("the temporary directory is inside a project")
    done = subprocess.run([sys.executable, "-m", "losslint", "check", "."], cwd=loose, capture_output=True,
                          env={k: v for k, v in {**os.environ, **environment}.items() if k != "LOSSLINT_CACHE_DIR"})
    assert done.returncode == 1
    assert not (loose / ".losslint_cache").exists()
    assert any((cache_home / "losslint" / "results").rglob("*"))
    # Inside a project (a marker, no losslint configuration): at its root.
    (loose / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (loose / "src").mkdir()
    (loose / "src" / "train.py").write_text(TRAIN)
    subprocess.run([sys.executable, "-m", "losslint", "check", "."], cwd=loose / "src", capture_output=True,
                   env={k: v for k, v in {**os.environ, **environment}.items() if k != "LOSSLINT_CACHE_DIR"})
    assert (loose / ".losslint_cache").is_dir() and not (loose / "src" / ".losslint_cache").exists()


@pytest.mark.parametrize(
    ("argv", "not_imported"),
    [
        (["--version"], ("libcst", "losslint.rules.partial_batch_torch", "losslint.engine", "losslint.verify.command")),
        (["--help"], ("libcst", "losslint.rules.partial_batch_torch", "losslint.engine")),
        (["rule", "LL201"], ("losslint.engine", "losslint.pipeline", "losslint.parallel", "losslint.analysis.values")),
    ],
)
def test_commands_that_need_no_analysis_import_none(argv: list[str], not_imported: tuple[str, ...]):
    """Start-up (issue 15): the CLI imports the rules, the pipeline and libcst only
    for the commands that use them (benchmarks/startup.py measures the time)."""
    import subprocess
    import sys

    probe = (
        "import sys\nfrom losslint.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {not_imported!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


@pytest.mark.parametrize(
    ("options", "imports_libcst"),
    [([], False), (["--output-format", "concise", "--show-fixes"], False), (["--output-format", "json"], True), (["--diff"], True)],
)
def test_check_imports_libcst_only_to_apply_or_show_a_fix(options: list[str], imports_libcst: bool):
    """Start-up (issue 15): a check builds each finding's fix without libcst (the
    rules name its node types, fixes.py resolves them); libcst is imported only
    where a fix is applied: --diff/--fix, and the line edits of JSON/SARIF."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "fixtures" / "torch_mnist_classifier.py"
    argv = ["check", "--no-cache", "--exit-zero", *options, str(script)]
    heavy = ("libcst", "astroid", "ruamel", "tomlkit", "pygls")
    probe = (
        "import sys\nfrom losslint.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "drop_last" in done.stdout, done.stderr  # the finding and its fix are there
    assert done.stderr.strip().splitlines()[-1] == ("['libcst']" if imports_libcst else "[]"), done.stderr
