"""A rule's documentation, generated from the rule class itself (its summary, why,
example, fix and cases): the text of ``losslint rule CODE``, its JSON fields, and
its page under docs/rules/ (tests/test_docs.py keeps the pages equal to it). The
language server and the SARIF output show the same text."""

from __future__ import annotations

import textwrap

from losslint.output import rule_url
from losslint.rules.base import Rule


def rule_json(rule_cls: type[Rule]) -> dict:
    example = rule_cls.flagged[0] if rule_cls.flagged else None
    return {
        "code": rule_cls.code,
        "name": rule_cls.name,
        "severity": rule_cls.severity.value,
        "default_enabled": rule_cls.default_enabled,
        "fix_applicability": rule_cls.fix_applicability.value,
        "summary": rule_cls.summary,
        "why": rule_cls.why,
        "fix": rule_cls.fix_doc,
        "example": example.code if example else None,
        "example_fixed": example.fixed if example else None,
        "left_alone": [q.why for q in rule_cls.quiet if q.why],
        "references": list(rule_cls.references),
        "url": rule_url(rule_cls.code),
        "documentation": rule_documentation(rule_cls),
    }


def rule_markdown(rule_cls: type[Rule]) -> str:
    """The rule's page under docs/rules/ (CODE.md), generated from the rule class:
    ``losslint rule CODE --output-format markdown > docs/rules/CODE.md``."""
    wrap = lambda text: textwrap.fill(text, 88)  # noqa: E731
    default = "on" if rule_cls.default_enabled else f"off (enable with `--extend-select {rule_cls.code}`)"
    parts = [
        f"# {rule_cls.code} {rule_cls.name}",
        "<!-- Generated from the rule class by `losslint rule "
        f"{rule_cls.code} --output-format markdown`; tests/test_docs.py checks it. -->",
        f"Severity: **{rule_cls.severity.value}**. Default: {default}.",
        "## What it finds",
        wrap(rule_cls.summary),
        "## Why it hurts training",
        wrap(rule_cls.why),
    ]
    if rule_cls.flagged:
        example = rule_cls.flagged[0]
        parts += ["## Example", f"```python\n{example.code.rstrip()}\n```"]
        if example.fixed is not None:
            parts += ["## Use instead (what the fix writes)", f"```python\n{example.fixed.rstrip()}\n```"]
    quiet = [q for q in rule_cls.quiet if q.why]
    if quiet:
        parts += ["## Left alone", "\n".join(f"- {q.why}" for q in quiet)]
    parts += ["## Fix and its safety", wrap(rule_cls.fix_doc)]
    if rule_cls.references:
        parts += ["## References", "\n".join(f"- <{r}>" if r.startswith("http") else f"- {r}" for r in rule_cls.references)]
    parts += [f"Suppress it on a line with `# noqa: {rule_cls.code}`, in a file with `# losslint: noqa: {rule_cls.code}`."]
    return "\n\n".join(parts) + "\n"


def rule_documentation(rule_cls: type[Rule]) -> str:
    wrap = lambda text: textwrap.fill(text, 88)  # noqa: E731
    parts = [
        f"# {rule_cls.code} {rule_cls.name}",
        f"Severity: {rule_cls.severity.value}. Default: {'on' if rule_cls.default_enabled else 'off (enable with --extend-select ' + rule_cls.code + ')'}.",
        "## What it finds",
        wrap(rule_cls.summary),
        "## Why it hurts training",
        wrap(rule_cls.why),
    ]
    if rule_cls.flagged:
        example = rule_cls.flagged[0]
        parts += ["## Example", textwrap.indent(example.code.rstrip(), "    ")]
        if example.fixed is not None:
            parts += ["## Use instead (what the fix writes)", textwrap.indent(example.fixed.rstrip(), "    ")]
    quiet = [q for q in rule_cls.quiet if q.why]
    if quiet:
        parts += ["## Left alone"] + [f"- {q.why}" for q in quiet]
    parts += ["## Fix and its safety", wrap(rule_cls.fix_doc)]
    if rule_cls.references:
        parts += ["## References"] + [f"- {r}" for r in rule_cls.references]
    return "\n\n".join(parts)
