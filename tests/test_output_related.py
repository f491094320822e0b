"""Related locations: the evidence of a finding that lies elsewhere (where the
optimizer is built, where N comes from, the other causes of a chain), structured
in every output: JSON and json-lines ``related_locations``, SARIF
``relatedLocations``, a line each in the text output."""

from __future__ import annotations

import ast
import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.cli import main
from losslint.config import Settings
from losslint.context import FileContext
from losslint.findings import Finding, RelatedLocation, Severity, Span
from losslint.output import format_json, format_sarif, format_text, line_reader
from losslint.project import ProjectFacts

# The three causes of a per-epoch spike in one script: linked to each other.
CHAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    model = torch.nn.Linear(20, 10)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y) / x.size(0)
        loss.backward()
        optimizer.step()
    """
)


def run(args: list[str], cwd: Path) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(CHAIN)
    return tmp_path


LINK = "on the same training path"  # how a chain's link ends (rules add evidence of their own too)


def _at(findings: list[dict], code: str) -> dict:
    return next(f for f in findings if f["code"] == code)


def test_json_names_the_other_causes_of_the_chain_with_their_places(chain: Path):
    _, out = run(["check", ".", "--output-format", "json", "--no-cache"], chain)
    findings = json.loads(out)
    loader, momentum = _at(findings, "LL201"), _at(findings, "LL301")
    related = [r for r in _at(findings, "LL101")["related_locations"] if r["message"].endswith(LINK)]
    assert [(r["path"], r["line"], r["column"]) for r in related] == [
        ("train.py", loader["line"], loader["column"]),
        ("train.py", momentum["line"], momentum["column"]),
    ]
    assert related[0]["message"] == "LL201: a partial last batch on the same training path"
    assert related[1]["message"] == "LL301: momentum without clipping on the same training path"
    assert (related[0]["end_line"], related[0]["end_column"]) == (loader["end_line"], loader["end_column"])
    assert "related" not in loader  # the text form is gone: one structured form
    # json-lines: the same objects.
    _, lines = run(["check", ".", "--output-format", "json-lines", "--no-cache"], chain)
    assert [json.loads(line) for line in lines.splitlines()] == findings


def test_text_shows_one_line_per_related_location(chain: Path):
    _, out = run(["check", ".", "--no-cache", "--color", "never"], chain)
    block = next(b for b in out.split("\n\n") if " LL101 " in b.splitlines()[0])
    related = [line.strip() for line in block.splitlines() if "related:" in line and line.endswith(LINK)]
    loader_line = CHAIN.splitlines().index("train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)") + 1
    assert related[0] == f"= related: train.py:{loader_line}:16: LL201: a partial last batch on the same training path"
    assert len(related) == 2 and "LL301: momentum without clipping" in related[1]


def test_sarif_related_locations_are_valid_and_numbered(chain: Path):
    from test_integrations_output import validate

    _, out = run(["check", ".", "--output-format", "sarif", "--no-cache"], chain)
    document = json.loads(out)
    validate(document)
    result = next(r for r in document["runs"][0]["results"] if r["ruleId"] == "LL201")
    related = result["relatedLocations"]
    assert [r["id"] for r in related] == list(range(1, len(related) + 1))
    # where N comes from (train_ds, the line above the loader), then the chain's two links
    assert [r["message"]["text"][:5] for r in related] == ["N = 1", "LL101", "LL301"]
    link = related[1]
    assert link["physicalLocation"]["artifactLocation"] == {"uri": "train.py", "uriBaseId": "%SRCROOT%"}
    assert link["physicalLocation"]["region"]["startLine"] == CHAIN.splitlines().index("    loss = criterion(model(x), y) / x.size(0)") + 1
    assert link["message"]["text"].startswith("LL101: a loss that scales as 1/batch size")
    assert "related" not in result["properties"]


def test_a_rule_makes_a_related_location_from_a_node_of_its_file_or_another():
    line = "note = 'é'; opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)"
    source = f"import torch\n{line}\n"
    tree = ast.parse(source)
    ctx = FileContext("train.py", "train", source, tree, ProjectFacts(), Settings())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call))
    place = ctx.related(call, "the optimizer is built here")
    # Character columns in the judged file ("é" is two UTF-8 bytes).
    assert place == RelatedLocation("train.py", Span(2, line.index("torch"), 2, len(line)), "the optimizer is built here")
    other = RelatedLocation.of("config.py", ast.parse("x = 1\nBATCH = 64\n").body[1].value, "B = 64 comes from here")
    assert (other.path, other.span) == ("config.py", Span(2, 8, 2, 10))
    assert RelatedLocation.at("data.py", 12, "N = 50000 comes from here").span == Span(12, 0, 12, 0)


def test_every_output_shows_a_notebooks_related_location_in_the_cell_notation(tmp_path: Path):
    finding = Finding(
        "LL301", "momentum-without-clipping", "SGD with momentum 0.9 without clipping", Severity.WARNING, "train.py",
        Span(3, 0, 3, 15),
        related_locations=(RelatedLocation("train.ipynb", Span(2, 4, 2, 9), "the optimizer is built here", cell=5),),
    )
    text = format_text([finding], colour=False, read_lines=lambda path: None)
    assert "= related: train.ipynb:cell 5:2:5: the optimizer is built here" in text
    [[entry]] = [f["related_locations"] for f in json.loads(format_json([finding], lambda f: None))]
    assert entry == {"path": "train.ipynb", "line": 2, "column": 5, "end_line": 2, "end_column": 10,
                     "message": "the optimizer is built here", "cell": 5}
    [result] = json.loads(format_sarif([finding], lambda f: None, "0", line_reader()))["runs"][0]["results"]
    [related] = result["relatedLocations"]
    assert "region" not in related["physicalLocation"]  # the .ipynb file's lines are its JSON
    assert related["message"]["text"] == "cell 5, line 2, column 5: the optimizer is built here"


# A script of many training cells: one chain of every cell's loss, loader and optimizer.
CELLS = 8
MANY_CELLS = CHAIN.split("train_loader =")[0] + "model = torch.nn.Linear(20, 10)\ncriterion = torch.nn.CrossEntropyLoss()\n" + CELLS * textwrap.dedent(
    """\
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y) / x.size(0)
        loss.backward()
        optimizer.step()
    """
)


def test_a_chain_of_many_cells_lists_the_nearest_members_of_each_cause_and_how_many(tmp_path: Path):
    """Each member names, of each cause, the three members nearest it and how
    many there are, in every output: the output grows with the findings, not with
    their square."""
    (tmp_path / "train.py").write_text(MANY_CELLS)
    lines = MANY_CELLS.splitlines()
    loaders = [n for n, line in enumerate(lines, 1) if line.startswith("train_loader =")]
    steps = [n for n, line in enumerate(lines, 1) if line == "    optimizer.step()"]
    losses = [n for n, line in enumerate(lines, 1) if line.startswith("    loss = ")]
    assert len(loaders) == len(steps) == len(losses) == CELLS
    _, out = run(["check", ".", "--output-format", "json", "--no-cache"], tmp_path)
    findings = json.loads(out)
    assert sorted(f["code"] for f in findings) == sorted(["LL101", "LL201", "LL301"] * CELLS)
    counted = f"(one of {CELLS}: the 3 nearest are listed)"
    middle = next(f for f in findings if f["code"] == "LL101" and f["line"] == losses[4])
    links = [(r["line"], r["message"]) for r in middle["related_locations"]]
    assert links == [
        # the nearest by line: its own cell's loader, and the next cell's (3 lines away) before the previous one's
        *((line, f"LL201: a partial last batch {LINK} {counted}") for line in loaders[4:7]),
        *((line, f"LL301: momentum without clipping {LINK} {counted}") for line in steps[3:6]),
    ]
    assert all(len(f["related_locations"]) <= 1 + 3 * 3 for f in findings)  # its evidence, three per cause
    assert "and 5 more" in middle["message"]  # the message names the chain's first members and how many more
    _, text = run(["check", ".", "--no-cache", "--color", "never"], tmp_path)
    block = next(b for b in text.split("\n\n") if f"train.py:{losses[4]}:" in b.splitlines()[0])
    assert f"= related: train.py:{loaders[4]}:16: LL201: a partial last batch {LINK} {counted}" in block
    assert sum("= related:" in line for line in block.splitlines()) == 6
    _, sarif = run(["check", ".", "--output-format", "sarif", "--no-cache"], tmp_path)
    result = next(
        r for r in json.loads(sarif)["runs"][0]["results"]
        if r["ruleId"] == "LL101" and r["locations"][0]["physicalLocation"]["region"]["startLine"] == losses[4]
    )
    assert [r["message"]["text"] for r in result["relatedLocations"]] == [message for _, message in links]
