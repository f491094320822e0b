"""--fix stopped between writing the temporary file and renaming it (SIGTERM as
from a CI timeout or `kill`, SIGINT as from Ctrl-C), in a real process: the file
is left as it was and no temporary file is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAIN = textwrap.dedent(
    """\
    from torch.utils.data import DataLoader, TensorDataset
    import torch

    train_set = TensorDataset(torch.zeros(1000, 3))
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    """
)

# The fix run, held up after the temporary file is written and before the rename
# (os.chmod comes between them), until the test's signal arrives.
CHILD = textwrap.dedent(
    """\
    import os, sys, time
    real_chmod = os.chmod

    def held_up(path, mode, *args, **kwargs):
        real_chmod(path, mode, *args, **kwargs)
        if str(path).endswith(".losslint-tmp"):
            print("written", flush=True)
            time.sleep(60)

    os.chmod = held_up
    from losslint.cli import main
    main(["check", "--fix", "--no-cache", "--no-progress", "-j", "1", sys.argv[1]])
    """
)


@pytest.mark.parametrize("signum,returncode", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_a_fix_stopped_before_the_rename_leaves_no_temporary_file(tmp_path: Path, signum: int, returncode: int):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written", child.stderr.read() if child.stderr else ""
        assert [p.name for p in project.iterdir() if p.name.endswith(".losslint-tmp")]  # the window is real
        child.send_signal(signum)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == returncode, child.stderr.read() if child.stderr else ""
    assert sorted(p.name for p in project.iterdir()) == ["train.py"]
    assert (project / "train.py").read_text() == TRAIN
