"""Every rule's own test cases (the ``flagged`` and ``quiet`` examples beside its
code): flagged code gives exactly the expected findings of that rule, the fix
produces exactly the expected text, the fixed text parses and re-lints clean;
quiet code gives no finding of that rule."""

from __future__ import annotations

import ast

import pytest

from losslint.config import Settings
from losslint.engine import fix_text, lint_text
from losslint.rules.base import all_rules

RULES = all_rules()
FLAGGED = [pytest.param(rule, i, case, id=f"{rule.code}-flagged-{i}") for rule in RULES for i, case in enumerate(rule.flagged)]
QUIET = [pytest.param(rule, i, case, id=f"{rule.code}-quiet-{i}") for rule in RULES for i, case in enumerate(rule.quiet)]


def only(rule) -> Settings:
    return Settings(select=[rule.code])


@pytest.mark.parametrize("rule,index,case", FLAGGED)
def test_flagged(rule, index, case):
    findings = lint_text(case.code, only(rule), path="train.py", files=dict(case.files))
    assert [f.code for f in findings] == [rule.code] * case.count, [f.message for f in findings]
    for needle in case.message_contains:
        assert any(needle in f.message for f in findings), (needle, [f.message for f in findings])
    if case.fixed is None:
        assert all(f.fix is None for f in findings)
        return
    assert all(f.fix is not None for f in findings)
    if not case.unsafe:
        assert all(f.fix.applicability.value == "safe" for f in findings)
    fixed, remaining = fix_text(case.code, only(rule), unsafe=case.unsafe, path="train.py", files=dict(case.files))
    assert fixed == case.fixed
    ast.parse(fixed)
    assert remaining == []
    assert lint_text(fixed, only(rule), path="train.py", files=dict(case.files)) == []


@pytest.mark.parametrize("rule,index,case", QUIET)
def test_quiet(rule, index, case):
    findings = lint_text(case.code, only(rule), path="train.py", files=dict(case.files))
    assert findings == [], [f.message for f in findings]


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_rule_is_documented_and_tested(rule):
    assert rule.code[:2] == "LL" and rule.code[2:].isdigit() and len(rule.code) == 5
    assert rule.name == rule.name.lower() and " " not in rule.name
    assert rule.summary and rule.why and rule.fix_doc
    assert rule.flagged or rule.code.startswith("LL00"), "every rule ships at least one flagged example"
