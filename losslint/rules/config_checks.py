"""Findings in config files, under the existing rules' codes.

A rule that judges Python code may find that the setting deciding a risk sits in
a config file the code reads (``analysis/configs.py``): the finding then goes in
that file, at the key (or at the section where the key is missing), with a
related location at the code that consumes it, and its fix edits the config in
place (``configs.TextEdit``: comments, order and layout kept). ``config_finding``
makes such a finding; the checker (checking.py) reports it with the config's own
findings, where ``# noqa`` comments of YAML and TOML apply.

A check that belongs to an existing rule but reads only configs registers here
with ``@config_check(code, triggers)``: the checker runs it with that rule, so
``--select``, ``--ignore`` and ``noqa`` treat its findings as the rule's. The
DeepSpeed check below is LL301's: a DeepSpeed engine clips only by its JSON's
``gradient_clipping``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from losslint.analysis import configs
from losslint.analysis.configs import ConfigDocument, ConfigNode, TextEdit
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, RelatedLocation, Severity, Span
from losslint.project import UNKNOWN

if TYPE_CHECKING:
    from losslint.context import FileContext
    from losslint.rules.base import Rule


@dataclass(frozen=True)
class ConfigCheck:
    code: str
    triggers: tuple[str, ...]
    check: Callable[["FileContext", "Rule"], Iterable[Finding]]


_CHECKS: dict[str, list[ConfigCheck]] = {}


def config_check(code: str, triggers: tuple[str, ...]) -> Callable:
    def register(fn: Callable[["FileContext", "Rule"], Iterable[Finding]]) -> Callable:
        _CHECKS.setdefault(code, []).append(ConfigCheck(code, triggers, fn))
        return fn

    return register


def checks_for(code: str) -> list[ConfigCheck]:
    return _CHECKS.get(code, [])


def all_triggers() -> dict[str, tuple[str, ...]]:
    """code -> the trigger words of its config checks."""
    return {code: tuple(t for c in checks for t in c.triggers) for code, checks in _CHECKS.items()}


def config_finding(
    rule: "Rule",
    document: ConfigDocument,
    at: ConfigNode,
    message: str,
    fix: Fix | None,
    severity: Severity | None = None,
    related: Iterable[RelatedLocation] = (),
    at_key: bool = True,
) -> Finding:
    """A finding in a config file, at a node's key (``at_key``) or at its value."""
    via = [RelatedLocation(display_path(Path(k)), Span(ln, col, ln, col), note) for k, ln, col, note in configs.reached_via(document, at)]
    related = (*related, *via)
    document, at = configs.located(document, at)  # a composed (Hydra) config's node: the file that wrote it
    if at_key:
        line, column = at.key_line, at.key_column
        end_line, end_column = (at.end_line, at.end_column) if at.end_line == at.key_line and not at.is_mapping else (at.key_line, at.key_column)
        if at.is_mapping or end_line != line:  # a section: its key only
            key_text = document.lines[line - 1][column:] if line <= len(document.lines) else ""
            end_line, end_column = line, column + len(key_text.split(":")[0].rstrip()) if document.kind != "json" or at.keys else column + 1
    else:
        line, column, end_line, end_column = at.line, at.column, at.end_line, at.end_column
    return Finding(
        code=rule.code,
        name=rule.name,
        message=message,
        severity=severity or rule.severity,
        path=display_path(Path(document.key)),
        span=Span(line, column, end_line, max(end_column, column)),
        fix=fix,
        related_locations=tuple(related),
    )


def shared_note(ctx: "FileContext", document: ConfigDocument) -> str:
    """Where a config is read by several scripts, say so (a fix there changes them all)."""
    readers = configs.readers_of(ctx.project, document.key)
    if len(readers) < 2:
        return ""
    names = ", ".join(display_path(Path(r)) for r in readers[:4]) + (", ..." if len(readers) > 4 else "")
    return f"; this config is read by {len(readers)} scripts ({names}): the fix applies to all of them"


def config_fix(description: str, edit: TextEdit | None) -> Fix | None:
    return Fix(description, Applicability.UNSAFE, (edit,)) if edit is not None else None


# -- LL301: a DeepSpeed JSON without gradient_clipping ----------------------------------

# DeepSpeed's own optimizer types (lowercased, as it matches them) and torch's that it
# builds by name; Adam-like ones carry beta1 (0.9 unless "betas" says otherwise).
_DS_ADAM_LIKE = {
    "adam", "adamw", "lamb", "onebitadam", "zerooneadam", "onebitlamb", "fusedadam", "fusedlamb", "cpuadam",
    "deepspeedcpuadam", "muadam", "muadamw", "lion", "fusedlion", "nadam", "radam", "adamax",
}
_DS_SGD_LIKE = {"sgd", "musgd", "rmsprop"}


def _ds_optimizer(document: ConfigDocument, section: ConfigNode) -> tuple[str, float] | None:
    """(its name, β1 or μ) of the config's "optimizer" section when that is a
    momentum optimizer; None when it is not, or cannot be told."""
    type_node = section.get("type")
    name = document.scalar(type_node)
    if not isinstance(name, str):
        return None
    params = section.get("params")
    kind = name.lower().replace("_", "")
    if kind in _DS_ADAM_LIKE:
        betas = params.get("betas") if params is not None else None
        if betas is not None and isinstance(betas.value, list) and betas.value:
            beta1 = document.scalar(betas.value[0])
            if isinstance(beta1, (int, float)) and not isinstance(beta1, bool):
                return (name, float(beta1)) if beta1 > 0 else None
        return name, 0.9
    if kind in _DS_SGD_LIKE:
        momentum = document.scalar(params.get("momentum")) if params is not None else None
        if isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and momentum > 0:
            return name, float(momentum)
    return None


def _keyword(call: ast.Call, *names: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg in names:
            return kw.value
    return None


@config_check("LL301", triggers=("deepspeed",))
def deepspeed_without_clipping(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """``deepspeed.initialize(config="ds_config.json")`` whose JSON sets a momentum
    optimizer (or whose model's optimizer, handed in as ``optimizer=``, is one) and
    no ``gradient_clipping`` (or 0): DeepSpeed clips by that key alone (its default
    is 0.0, no clipping, before DeepSpeed PR #8068)."""
    if not configs.has_reads(ctx):
        return
    for read, key in configs.reads_of(ctx.project, ctx.file or ctx.path):
        if read.how != "deepspeed.initialize":
            continue
        call = next((c for c in ctx.nodes_of(ast.Call) if c.lineno == read.line and c.col_offset == read.column), None)
        document = configs.document_for(ctx.project, key)
        root = document.root
        if call is None or root is None or not root.is_mapping:
            continue
        section = root.get("optimizer")
        related = [ctx.related(call, "deepspeed.initialize reads this config here")]
        if section is not None and section.is_mapping:
            found = _ds_optimizer(document, section)
            if found is None:
                continue
            name, coefficient = found
            what = f'its "optimizer" section builds {name} ({"β1" if name.lower() not in _DS_SGD_LIKE else "momentum"} {coefficient:g})'
            severity = Severity.WARNING if name.lower() in _DS_SGD_LIKE else Severity.INFO
        else:
            handed = _keyword(call, "optimizer")
            if handed is None or isinstance(handed, ast.Constant):
                continue
            from losslint.rules.momentum_flow import Resolver  # (the LL3 family's optimizer following)

            momenta = [f.momentum for f in Resolver(ctx).resolve(handed)]
            if not momenta or not all(m.is_momentum for m in momenta):
                continue
            what = f"the model's optimizer ({momenta[0].optimizer}) is stepped by the engine"
            severity = momenta[0].severity
            section = None
        clipping = root.get("gradient_clipping")
        max_norm = repr(float(ctx.settings.clip_max_norm))
        note = shared_note(ctx, document)
        if clipping is not None:
            value = document.scalar(clipping)
            if value is UNKNOWN or isinstance(value, str) or (isinstance(value, (int, float)) and value > 0):
                continue  # clips, or "auto" (filled in by the HF Trainer), or unknown
            message = (
                f'DeepSpeed config sets "gradient_clipping": {clipping.value!r}, so the engine never clips, and {what}: '
                f"a gradient spike (a small last batch, an outlier) is carried on by its momentum{note}"
            )
            fix = config_fix(f'set "gradient_clipping" to {max_norm}', configs.set_scalar(document, clipping, max_norm))
            yield config_finding(rule, document, clipping, message, fix, severity, related, at_key=True)
            continue
        message = (
            f'DeepSpeed config without "gradient_clipping", and {what}: the engine clips only by that key '
            f"(default 0.0, off, before DeepSpeed PR #8068), so a gradient spike (a small last batch, an outlier) "
            f"is carried on by its momentum{note}"
        )
        fix = config_fix(f'add "gradient_clipping": {max_norm}', configs.add_entry(document, root, "gradient_clipping", max_norm))
        yield config_finding(rule, document, section if section is not None else root, message, fix, severity, related, at_key=True)
