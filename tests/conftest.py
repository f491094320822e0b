"""Fixtures shared by the test modules."""

import shutil
from pathlib import Path

import pytest

CONFIG_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"


@pytest.fixture
def config_project(tmp_path, monkeypatch):
    """A copy of one project of fixtures/configs, as the working directory, with its
    own cache folder."""

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(CONFIG_FIXTURES / name, root)
        (root / ".git").mkdir()  # the project's root: a config path is not looked for above it
        monkeypatch.chdir(root)
        monkeypatch.setenv("LOSSLINT_CACHE_DIR", str(tmp_path / "cache"))
        return root

    return copy
