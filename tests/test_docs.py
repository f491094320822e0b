"""The README tells the truth: its rules table is the registry's, its config keys
are the ones the loader accepts, and its example finding is what check prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from losslint.config import _KEYS
from losslint.rules.base import all_rules

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_rules_table_matches_the_registry():
    rows = re.findall(r"^\| (LL\d{3}) \| ([a-z0-9-]+) \| (\w+) \|", README, flags=re.MULTILINE)
    assert rows == [(r.code, r.name, r.severity.value) for r in all_rules()]


def test_documented_config_keys_exist():
    block = README.split("[tool.losslint]\n", 1)[1].split("```", 1)[0]
    keys = [line.split("=")[0].strip() for line in block.splitlines() if "=" in line and not line.startswith("#")]
    assert keys and set(keys) <= set(_KEYS)
    assert set(_KEYS) - {"dataset-sizes"} <= set(keys) | {"dataset-sizes"}


def test_example_finding_is_what_check_prints():
    example = README.split("A finding looks like this:\n\n```text\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-m", "losslint", "check", "fixtures/torch_mnist_classifier.py", "--select", "LL2"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert example.strip() in result.stdout


def test_quick_start_lints_the_fixtures():
    result = subprocess.run([sys.executable, "-m", "losslint", "check", "fixtures/", "--statistics"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    codes = {line.split()[1] for line in result.stdout.splitlines() if line.strip() and line.split()[1].startswith("LL")}
    # The fixtures carry every family's risk factor.
    assert {c[:3] for c in codes} >= {"LL1", "LL2", "LL3"}
    assert "Traceback" not in result.stderr


def test_rule_pages_are_generated_from_the_rules():
    """docs/rules/CODE.md is `losslint rule CODE --output-format markdown`: after
    changing a rule's documentation, regenerate with the command in docs/rules/README.md."""
    from losslint.rule_docs import rule_markdown

    pages = {p.stem: p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "rules").glob("LL*.md")}
    assert sorted(pages) == [r.code for r in all_rules()]
    stale = [r.code for r in all_rules() if pages[r.code] != rule_markdown(r)]
    assert not stale, f"regenerate docs/rules/ (see docs/rules/README.md): {stale}"


def test_readme_options_table_lists_every_check_option():
    from losslint.cli import check

    documented = set(re.findall(r"`(-{1,2}[a-z][a-z-]*)", README.split("## Command line", 1)[1].split("Exit codes", 1)[0]))
    for param in check.params:
        if param.param_type_name != "option":
            continue
        names = set(param.opts) | set(param.secondary_opts)
        assert names & documented, f"{param.opts} is not in the README's options table"
