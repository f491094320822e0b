"""Jupyter notebooks: linted cell by cell with IPython syntax set aside, findings at
(cell, line), fixes written back into the cells' JSON and nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint import notebooks
from losslint.cli import main

SETUP = ["%matplotlib inline\n", "!pip install -q torch\n", "import torch\n", "from torch.utils.data import DataLoader, TensorDataset"]
DATA = ["train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))\n", "print(len(train_ds), 'samples')"]
LOOP = [
    "%%time\n",
    "files = !ls\n",
    "train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)\n",
    "for x, y in train_loader:\n",
    "    !echo step\n",
    "    model?\n",
    "    optimizer.step()",
]
LOADER_LINE = LOOP[2]


def notebook(*code_cells: list[str] | str, language: str = "python") -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Training\n", "Ünïcode stays."]}]
    for index, source in enumerate(code_cells):
        cells.append(
            {
                "cell_type": "code",
                "execution_count": index + 1,
                "metadata": {"tags": ["t"], "scrolled": True},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": [f"output {index} 1.0e-05\n"]}],
                "source": source,
            }
        )
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "K", "language": language, "name": "k"}, "language_info": {"name": language}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write(path: Path, document: dict) -> str:
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"  # nbformat's layout
    path.write_text(text, encoding="utf-8")
    return text


def run(args: list[str], cwd: Path) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "train.ipynb", notebook(SETUP, DATA, LOOP, "%%bash\necho hi | grep h &&"))
    return tmp_path


def test_findings_are_located_in_cells(project: Path):
    # The dataset (cell 3) and its DataLoader (cell 4) are in different cells: N is known.
    code, out = run(["check", ".", "--output-format", "concise", "--quiet"], project)
    column = LOADER_LINE.index("DataLoader") + 1
    assert code == 1
    assert out.splitlines() == [out.splitlines()[0]]
    assert out.startswith(f"train.ipynb:cell 4:3:{column}: LL201 [*] ")
    assert "N=1000, B=64" in out
    [finding] = json.loads(run(["check", "train.ipynb", "--output-format", "json"], project)[1])
    assert (finding["path"], finding["cell"], finding["line"], finding["column"]) == ("train.ipynb", 4, 3, column)


def test_text_output_shows_the_cell_line(project: Path):
    out = run(["check", "train.ipynb"], project)[1]
    assert f"3 | {LOADER_LINE.rstrip()}" in out


def test_fix_rewrites_only_the_cell_source(project: Path):
    before = (project / "train.ipynb").read_text(encoding="utf-8")
    code, out = run(["check", "train.ipynb", "--fix"], project)
    assert code == 0, out
    after = (project / "train.ipynb").read_text(encoding="utf-8")
    fixed_line = LOADER_LINE.replace("shuffle=True)", "shuffle=True, drop_last=True)")
    assert after == before.replace(json.dumps(LOADER_LINE), json.dumps(fixed_line))
    document = json.loads(after)
    assert document["cells"][3]["source"][2] == fixed_line
    assert document["cells"][3]["source"][:2] == LOOP[:2] and document["cells"][3]["source"][3:] == LOOP[3:]
    assert run(["check", "train.ipynb"], project)[0] == 0


def test_diff_per_cell_writes_nothing(project: Path):
    before = (project / "train.ipynb").read_bytes()
    code, out = run(["check", "train.ipynb", "--diff"], project)
    assert code == 1
    assert "--- a/train.ipynb:cell 4\n+++ b/train.ipynb:cell 4\n" in out
    assert "+train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)" in out
    assert (project / "train.ipynb").read_bytes() == before


def test_string_source_and_no_trailing_newline_kept(tmp_path: Path):
    write(tmp_path / "nb.ipynb", notebook("".join(SETUP), "".join(DATA), "".join(LOOP)))
    assert run(["check", "nb.ipynb", "--fix"], tmp_path)[0] == 0
    cell = json.loads((tmp_path / "nb.ipynb").read_text(encoding="utf-8"))["cells"][3]["source"]
    assert isinstance(cell, str) and cell.endswith("    optimizer.step()") and "drop_last=True" in cell


def test_noqa_in_a_cell(tmp_path: Path):
    loop = [LOOP[0], LOOP[1], LOADER_LINE.replace(")\n", ")  # noqa: LL201\n"), *LOOP[3:]]
    write(tmp_path / "nb.ipynb", notebook(SETUP, DATA, loop))
    assert run(["check", "nb.ipynb"], tmp_path)[0] == 0


def test_broken_cell_is_reported_and_the_others_linted(tmp_path: Path):
    write(tmp_path / "nb.ipynb", notebook(SETUP, DATA, ["x = 1\n", "def broken(:\n", "    pass"], LOOP))
    code, out = run(["check", "nb.ipynb", "--output-format", "concise", "--quiet"], tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("nb.ipynb:cell 4:2:12: LL003 syntax error")
    assert lines[1].startswith("nb.ipynb:cell 5:3:") and "LL201" in lines[1]


def test_non_python_notebooks_and_cell_magics_are_left_alone(tmp_path: Path):
    write(tmp_path / "r.ipynb", notebook(["library(torch)\n", "x <- 1"], language="R"))
    write(tmp_path / "shell.ipynb", notebook(["%%bash\n", "for f in *; do echo $f; done"], ["%%html\n", "<b>x</b>"]))
    assert run(["check", "."], tmp_path) == (0, "All checks passed!\n")


def test_invalid_notebook_is_a_finding_not_a_crash(tmp_path: Path):
    (tmp_path / "bad.ipynb").write_text('{"cells": [', encoding="utf-8")
    code, out = run(["check", "bad.ipynb", "--output-format", "concise"], tmp_path)
    assert code == 1 and "LL003" in out and "invalid notebook JSON" in out


def test_checkpoints_are_not_linted(project: Path):
    (project / ".ipynb_checkpoints").mkdir()
    (project / ".ipynb_checkpoints" / "train-checkpoint.ipynb").write_text((project / "train.ipynb").read_text())
    out = run(["check", ".", "--output-format", "concise", "--quiet"], project)[1]
    assert len(out.splitlines()) == 1


def test_a_fix_that_loses_ipython_lines_or_cells_is_refused():
    source = notebooks.load((json.dumps(notebook(SETUP, LOOP)) + "\n").encode())
    text = source.python
    assert notebooks.split_cells(source, text)[3] == "".join(LOOP) + "\n"
    without_magic = "\n".join(line for line in text.splitlines() if "losslint-ipython" not in line or "0" not in line.split()[-1]) + "\n"
    with pytest.raises(notebooks.NotebookWriteError):
        notebooks.split_cells(source, without_magic)
    without_marker = text.replace(f"{source.marker_prefix}3\n", "")
    with pytest.raises(notebooks.NotebookWriteError):
        notebooks.split_cells(source, without_marker)


def test_lines_named_in_messages_and_links_are_located_too():
    from losslint.findings import Finding, RelatedLocation, Severity, Span

    source = notebooks.load((json.dumps(notebook(SETUP, DATA, LOOP)) + "\n").encode())
    text = source.python
    virtual = text.splitlines().index(LOADER_LINE.rstrip()) + 1  # cell 4, line 3
    data_line = text.splitlines().index(DATA[0].rstrip()) + 1  # cell 3, line 1
    finding = Finding(
        "LL201", "partial-last-batch", f"dataset built at line {data_line}", Severity.WARNING, "nb.ipynb",
        Span(virtual, 15, virtual, 40),
        related_locations=(
            RelatedLocation.at("nb.ipynb", data_line, "the dataset is built here"),
            RelatedLocation.at("other.py", 7, "LL101: a loss that scales as 1/batch size"),
        ),
    )
    [located] = notebooks.locate([finding], source, text)
    assert (located.cell, located.span) == (4, Span(3, 15, 3, 40))
    assert located.message == "dataset built at cell 3, line 1"
    assert [(r.path, r.cell, r.span.line) for r in located.related_locations] == [("nb.ipynb", 3, 1), ("other.py", None, 7)]


def test_one_notation_for_cells_in_locations_links_and_messages(tmp_path: Path):
    import re

    data = ["import torch\n", "from torch.utils.data import DataLoader, TensorDataset\n",
            "train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))\n",
            "train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)"]
    loop = ["model = torch.nn.Linear(20, 10)\n", "criterion = torch.nn.CrossEntropyLoss()\n",
            "optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n", "for x, y in train_loader:\n",
            "    optimizer.zero_grad()\n", "    loss = criterion(model(x), y) / x.size(0)\n", "    loss.backward()\n", "    optimizer.step()"]
    write(tmp_path / "train.ipynb", notebook(data, loop))
    outputs = {fmt: run(["check", ".", "--output-format", fmt], tmp_path)[1] for fmt in ("text", "concise", "json", "sarif", "github", "pylint")}
    findings = json.loads(outputs["json"])
    assert {f["code"] for f in findings} == {"LL101", "LL201", "LL301"}  # the full chain, linked
    loader = next(f for f in findings if f["code"] == "LL201")
    assert (loader["cell"], loader["line"]) == (2, 4)
    linked = next(f for f in findings if f["code"] == "LL301")["related_locations"]
    assert {"path": "train.ipynb", "cell": 2, "line": 4, "column": 16} in [{k: r[k] for k in ("path", "cell", "line", "column")} for r in linked]
    assert "= related: train.ipynb:cell 2:4:16: LL201" in outputs["text"]
    assert "train.ipynb:cell 2:4:16: LL201" in outputs["concise"]
    for fmt, out in outputs.items():
        # Never "train.ipynb:2:4" for cell 2, line 4 beside "train.ipynb:cell 2:4:16".
        assert not re.search(r"train\.ipynb:\d+:\d+", out), (fmt, re.search(r".{40}train\.ipynb:\d+:\d+.{10}", out))
        if fmt not in ("github", "sarif", "pylint"):
            assert "(LL201 train.ipynb:cell 2:4:16)" in out, fmt


def test_continued_shell_and_magic_lines_are_ipython_not_syntax_errors(tmp_path: Path):
    # `!python train.py \` goes on over indented lines: all one shell line, at any depth,
    # in a plain cell and under a Python cell magic; lines after it keep their numbers.
    run_script = ["!python train.py \\\n", "    --epochs 3 \\\n", "    --lr 0.1\n", "import torch\n",
                  "from torch.utils.data import DataLoader, TensorDataset"]
    loop = ["%%time\n", "%env CUDA_VISIBLE_DEVICES=0 \\\n", "   1\n", "for epoch in range(2):\n", "    !echo start \\\n",
            "        of epoch\n", "    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))\n",
            "    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)"]
    original = write(tmp_path / "nb.ipynb", notebook(run_script, loop))
    code, out = run(["check", "nb.ipynb", "--output-format", "concise", "--quiet"], tmp_path)
    assert "LL003" not in out
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("nb.ipynb:cell 3:8:")] and "LL201" in out
    run(["check", "nb.ipynb", "--fix", "--quiet"], tmp_path)
    fixed = json.loads((tmp_path / "nb.ipynb").read_text(encoding="utf-8"))
    assert fixed["cells"][1]["source"] == run_script  # the shell lines written back as they were
    assert fixed["cells"][2]["source"][:-1] == loop[:-1]
    assert fixed["cells"][2]["source"][-1].endswith("shuffle=True, drop_last=True)")
    assert json.loads(original)["cells"][2]["source"] == loop
