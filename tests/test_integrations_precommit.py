"""The pre-commit hooks, through the real `pre-commit try-repo` against this
repository (its HEAD plus uncommitted changes to tracked files, as try-repo itself
would take them), in a temporary git repository: failing on a file with a finding,
fixing it, passing once fixed.

pre-commit builds its own virtual environment with this package installed from
the repository (PyPI must be reachable); try-repo builds it again on every call
(its store is temporary), about 5 s each, hence the `slow` mark."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)
NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": TRAIN}],
    "metadata": {"language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="try-repo needs this package as a git repository"),
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]


def pre_commit_executable() -> list[str]:
    executable = Path(sys.executable).parent / "pre-commit"
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "pre_commit"]


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This repository as try-repo sees it (HEAD plus uncommitted changes to tracked
    files), committed once, so that every call uses one revision and pre-commit
    builds its environment once."""
    snapshot = tmp_path_factory.mktemp("hooks-repo") / "losslint"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(snapshot)], check=True)
    changes = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, capture_output=True, check=True).stdout
    if changes:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=snapshot, input=changes, check=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "commit", "-q", "-a", "--allow-empty", "-m", "snapshot"], cwd=snapshot, check=True, env=env)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=snapshot, capture_output=True, text=True, check=True).stdout.strip()
    return snapshot, revision


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "test")
    return tmp_path


def stage(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    subprocess.run(["git", "add", *files], cwd=repo, check=True)


def try_repo(repo: Path, home: Path, hooks: tuple[Path, str], hook: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("PRE_COMMIT", None)
    snapshot, revision = hooks
    return subprocess.run(
        [*pre_commit_executable(), "try-repo", str(snapshot), hook, "--ref", revision, "--color", "never", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_check_fails_on_a_finding_fix_fixes_and_check_then_passes(repo: Path, pre_commit_home: Path, hooks_repo: tuple[Path, str]):
    stage(repo, {"train.py": TRAIN, "util.py": "import os\n", "nb.ipynb": json.dumps(NOTEBOOK, indent=1) + "\n"})

    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint", "--all-files")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "losslint" in done.stdout and "Failed" in done.stdout
    assert "train.py:5:16: LL201" in done.stdout
    assert "nb.ipynb:cell 1:5:16: LL201" in done.stdout  # types_or includes jupyter

    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint-fix", "--all-files")
    assert done.returncode == 1  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in done.stdout
    assert "drop_last=True" in (repo / "train.py").read_text()
    assert "drop_last=True" in json.loads((repo / "nb.ipynb").read_text())["cells"][0]["source"]

    subprocess.run(["git", "add", "-u"], cwd=repo, check=True)
    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_only_the_files_passed_are_checked(repo: Path, pre_commit_home: Path, hooks_repo: tuple[Path, str]):
    stage(repo, {"train.py": TRAIN, "util.py": "import os\n"})
    # train.py has a finding (see above) but is not passed: the hook passes.
    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint", "--files", "util.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_no_matching_file_is_skipped_not_a_crash(repo: Path, pre_commit_home: Path, hooks_repo: tuple[Path, str]):
    stage(repo, {"README.md": "# nothing to lint\n"})
    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(no files to check)" in done.stdout and "Skipped" in done.stdout


def test_the_projects_excludes_hold_for_staged_files(repo: Path, pre_commit_home: Path, hooks_repo: tuple[Path, str]):
    (repo / "legacy").mkdir()
    stage(repo, {"pyproject.toml": '[tool.losslint]\nextend-exclude = ["legacy"]\n', "legacy/old.py": TRAIN, "util.py": "import os\n"})
    # `losslint check .` passes, and so must the commit of legacy/old.py (pre-commit names it).
    assert subprocess.run([sys.executable, "-m", "losslint", "check", "."], cwd=repo, capture_output=True).returncode == 0
    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint", "--files", "legacy/old.py", "util.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout
    done = try_repo(repo, pre_commit_home, hooks_repo, "losslint-fix", "--files", "legacy/old.py")
    assert done.returncode == 0 and (repo / "legacy" / "old.py").read_text() == TRAIN
