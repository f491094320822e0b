"""The seed's full chain: a loss that scales as 1/batch size (LL1xx), a partial
last batch (LL2xx) and a momentum optimizer without clipping (LL3xx) on one
training path.

Each factor alone is a risk; together they are the failure losslint exists for:
the short last batch of every epoch gets a loss and gradient B/b times too large,
and momentum carries that step on for ~1/(1 - mu) steps, so the loss spikes once
per pass over the data (ssd_keras, Stack Overflow 47824598). Where the three meet,
this linker links the findings to each other (``Finding.related``) and raises them
all to error.

"One training path" is judged from what findings carry: the same file, or a file
the finding names in ``training_modules`` (a Keras loss defined in
keras_ssd_loss.py and compiled in train.py).
"""

from __future__ import annotations

from losslint.findings import Finding, Severity
from losslint.rules.base import linker

# LL103 is left out: dividing a sum by the nominal batch size under-weights the
# last batch (a dip, not a spike), so momentum carries a smaller step, not a bad one.
LOSS_SCALE = {"LL101": "a loss that scales as 1/batch size", "LL102": "a Keras loss averaged twice (1/batch size)", "LL104": "a partial gradient-accumulation window"}
PARTIAL_BATCH = {"LL201", "LL202", "LL203", "LL204", "LL206", "LL207"}
MOMENTUM = {"LL301", "LL302", "LL303", "LL304"}

MARKER = "part of the seed's full chain"


def module_of(path: str) -> str:
    """``pkg/train.py`` -> ``pkg.train`` (display paths and dotted modules meet here)."""
    stem = path.replace("\\", "/")
    for suffix in (".py", ".ipynb", ".pyi"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = stem.lstrip("./")
    if stem.endswith("/__init__"):
        stem = stem[: -len("/__init__")]
    return stem.replace("/", ".")


def _same_module(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _paths(finding: Finding) -> list[str]:
    return [module_of(finding.path), *finding.training_modules]


def _on_path(finding: Finding, paths: list[str]) -> bool:
    return any(_same_module(mine, other) for mine in _paths(finding) for other in paths)


def reference(finding: Finding) -> str:
    """"LL201 train.py:42" (with the cell in a notebook)."""
    where = f"{finding.path}:{finding.cell}:{finding.span.line}" if finding.cell else f"{finding.path}:{finding.span.line}"
    return f"{finding.code} {where}"


@linker
def link_full_chain(findings: list[Finding]) -> None:
    partials = [f for f in findings if f.code in PARTIAL_BATCH]
    momentum = [f for f in findings if f.code in MOMENTUM]
    if not partials or not momentum:
        return
    for loss in (f for f in findings if f.code in LOSS_SCALE):
        paths = _paths(loss)
        chain_partials = [f for f in partials if _on_path(f, paths)]
        chain_momentum = [f for f in momentum if _on_path(f, paths)]
        if not chain_partials or not chain_momentum:
            continue
        chain = [loss, *chain_partials, *chain_momentum]
        summary = (
            f"{MARKER}: {LOSS_SCALE[loss.code]} ({reference(loss)}), a partial last batch "
            f"({', '.join(reference(f) for f in chain_partials)}) and momentum without clipping "
            f"({', '.join(reference(f) for f in chain_momentum)}): the last batch of every epoch takes a step "
            "too large and momentum carries it on, a loss spike once per pass over the data"
        )
        for finding in chain:
            for other in chain:
                if other is not finding and reference(other) not in finding.related:
                    finding.related.append(reference(other))
            finding.severity = Severity.ERROR
            if MARKER not in finding.message:
                finding.message += f" [{summary}]"
