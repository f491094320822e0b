"""The flake8 plugin, through the real `flake8` executable: codes, messages and
columns as `losslint check` gives them, project-wide facts from sibling files,
and flake8's own noqa, --extend-ignore and --per-file-ignores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Each test starts flake8, which collects the project's facts: seconds each. `pytest -m "not slow"` skips them.
pytestmark = pytest.mark.slow

DATA = textwrap.dedent(
    """\
    from torch.utils.data import Dataset

    class Windows(Dataset):
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return i
    """
)
TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader

    from data import Windows

    x = 1
    loader = DataLoader(Windows(), batch_size=64, shuffle=True)
    """
)


def flake8(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "flake8"
    command = [str(executable)] if executable.exists() else [shutil.which("flake8") or "flake8"]
    return subprocess.run(
        [*command, "--isolated", *args], cwd=cwd, capture_output=True, text=True, input=stdin, timeout=120
    )


def losslint_json(path: str, cwd: Path) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "losslint", "check", path, "--output-format", "json"], cwd=cwd, capture_output=True, text=True
    )
    return json.loads(done.stdout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "data.py").write_text(DATA)
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def test_plugin_is_registered(project: Path):
    done = flake8("--version", cwd=project)
    assert "losslint-static" in done.stdout


def test_finding_with_losslint_columns_and_facts_from_sibling_files(project: Path):
    # Only train.py is given: N=1000 comes from data.py through the project facts.
    done = flake8("--select", "LL", "train.py", cwd=project)
    assert done.returncode == 1, done.stderr
    # `losslint check .` sees data.py too: the same finding, message and 1-based column.
    [expected] = [f for f in losslint_json(".", project) if f["path"] == "train.py"]
    assert done.stdout.splitlines() == [
        f"train.py:{expected['line']}:{expected['column']}: {expected['code']} {expected['message']}"
    ]
    assert expected["column"] == TRAIN.splitlines()[6].index("DataLoader") + 1
    assert "N=1000, B=64" in done.stdout


def test_flake8_noqa(project: Path):
    (project / "train.py").write_text(TRAIN.replace("shuffle=True)", "shuffle=True)  # noqa: LL201"))
    done = flake8("--select", "LL", "train.py", cwd=project)
    assert (done.returncode, done.stdout) == (0, "")


def test_flake8_noqa_for_another_code_keeps_the_finding(project: Path):
    (project / "train.py").write_text(TRAIN.replace("shuffle=True)", "shuffle=True)  # noqa: E501"))
    done = flake8("--select", "LL", "train.py", cwd=project)
    assert "LL201" in done.stdout


def test_extend_ignore_and_per_file_ignores(project: Path):
    assert flake8("--select", "LL", "--extend-ignore", "LL201", "train.py", cwd=project).stdout == ""
    assert flake8("--select", "LL", "--per-file-ignores", "train.py:LL2", "train.py", cwd=project).stdout == ""
    assert "LL201" in flake8("--select", "LL", "--per-file-ignores", "other.py:LL2", "train.py", cwd=project).stdout


def test_default_selection_and_other_plugins_side_by_side(project: Path):
    # Without --select, flake8's defaults include plugin codes: LL201 beside pyflakes' F401.
    done = flake8("train.py", cwd=project)
    codes = sorted(line.split(": ")[1].split()[0] for line in done.stdout.splitlines())
    assert codes == ["F401", "LL201"]


def test_stdin(project: Path):
    done = flake8("--select", "LL", "--stdin-display-name", "train.py", "-", cwd=project, stdin=TRAIN.replace("Windows()", "range(1000)"))
    assert done.stdout.startswith("train.py:7:10: LL201 ")


def test_clean_file(project: Path):
    (project / "train.py").write_text(TRAIN.replace("shuffle=True)", "shuffle=True, drop_last=True)"))
    done = flake8("--select", "LL", ".", cwd=project)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


def test_declared_encoding_keeps_columns(project: Path):
    # A latin-1 file with a non-ASCII character before the call: the column is in characters.
    text = "# -*- coding: latin-1 -*-\n" + TRAIN.replace("x = 1", "x = 1").replace("loader = DataLoader", "é = 1; loader = DataLoader")
    (project / "train.py").write_bytes(text.encode("latin-1"))
    done = flake8("--select", "LL", "train.py", cwd=project)
    line = text.splitlines()[7]
    assert done.stdout.startswith(f"train.py:8:{line.index('DataLoader') + 1}: LL201 "), done.stdout + done.stderr


@pytest.mark.parametrize(
    "directive,suppressed",
    [("# losslint: noqa", True), ("# losslint: noqa: LL201", True), ("# losslint: noqa: LL3", False),
     ("# flake8: noqa", True), ("# flake8: noqa: E501", True), ("# flake8 is used here", False)],
)
def test_file_level_noqa_agrees_with_check(project: Path, directive: str, suppressed: bool):
    (project / "train.py").write_text(f"{directive}\n" + TRAIN)
    done = flake8("--select", "LL", "train.py", cwd=project)
    assert ("LL201" in done.stdout) is not suppressed, done.stdout + done.stderr
    assert any(f["path"] == "train.py" for f in losslint_json(".", project)) is not suppressed
