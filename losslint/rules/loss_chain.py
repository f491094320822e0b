"""The causes of a per-epoch loss spike that meet on one training path: a loss
that scales as 1/batch size (LL1xx), a partial last batch (LL2xx) and a momentum
optimizer without clipping (LL3xx).

Each factor alone is a risk; together they are the failure losslint exists for:
the short last batch of every epoch gets a loss and gradient B/b times too large,
and momentum carries that step on for ~1/(1 - mu) steps, so the loss spikes once
per pass over the data (ssd_keras, Stack Overflow 47824598). Where the three meet,
this linker links the findings to each other (``Finding.related_locations``) and raises them
all to error. A loss ∝ 1/b and a partial last batch alone already spike: they are
linked too, and the partial batch is raised to a warning even where its N is
unknown (LL202), since the spike is certain wherever the last batch is short.

A training path is a script or notebook (the one that compiles the loss, fits on
the generator, steps the optimizer) and the files it imports, two imports deep
(train.ipynb -> keras_ssd_loss.py; train.py -> trainer.py -> losses.py). A package
``__init__`` file is on the path (``from dataloaders import make_data_loader``)
but what it imports is not followed: it imports everything a package holds, and a
path through it would link any loss with any loader. A linker sees only
findings, so the loss findings carry their paths (``training_paths``, set by the
LL1xx rules from the project's import graph); partial-batch and momentum findings
are matched by their file. Two copies of a script in one tree are two paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from losslint.discovery import display_path
from losslint.findings import Finding, RelatedLocation, Severity
from losslint.project import file_key
from losslint.rules.base import ChainRole, chain_role, linker

if TYPE_CHECKING:
    from losslint.context import FileContext
    from losslint.project import ProjectFacts

# Which findings a chain links, by the role their rule declares (``Rule.chain``).
# A dipping loss is left out: dividing a sum by the nominal batch size under-weights
# the last batch (a dip, not a spike), so momentum carries a smaller step, not a bad
# one; so is a last batch of one under BatchNorm (a crash) and a clip before unscale_.
LOSS_SCALE = (ChainRole.SPIKING_LOSS, ChainRole.ACCUMULATION_WINDOW)

MARKER = "causes of a per-epoch spike on one training path"

# How far a training path reaches through imports, from its script or notebook.
IMPORT_DEPTH = 2
# A loss module imported by very many scripts: the paths beyond these are not carried.
MAX_PATHS = 64
# The files of one path, in one ``Finding.training_modules`` entry (its root first).
PATH_SEPARATOR = "\n"


def _is_package_init(key: str) -> bool:
    return os.path.basename(key) == "__init__.py"


def training_paths(ctx: "FileContext", users: Iterable[str] = ()) -> tuple[str, ...]:
    """The training paths the file of ``ctx`` lies on, one entry each: the root (a
    file importing it at most ``IMPORT_DEPTH`` deep, or the file itself) and every
    file that root imports that deep, as display paths. ``users``: files (keys)
    known to train with this one without an import the project resolves (a Keras
    loss given to ``compile`` in them): roots too. Empty when the file is not part
    of the project's facts (a single file linted alone)."""
    if not ctx.file:
        return ()
    project = ctx.project
    key = file_key(ctx.file)
    if key not in project.modules:
        return ()
    roots, frontier = [key], [key]
    for _ in range(IMPORT_DEPTH):
        frontier = sorted({i for f in frontier for i in project.importers_of(f) if not _is_package_init(i)} - set(roots))
        roots.extend(frontier)
    roots.extend(sorted(set(users) - set(roots)))
    paths = []
    for root in roots[:MAX_PATHS]:
        members, frontier = [root], [root]
        for _ in range(IMPORT_DEPTH):
            frontier = sorted({i for f in frontier if not _is_package_init(f) for i in project.imports_of(f)} - set(members))
            members.extend(frontier)
        if key not in members:
            members.append(key)  # a user whose import of this file the project could not resolve
        paths.append(PATH_SEPARATOR.join(display_path(Path(member)) for member in members))
    return tuple(paths)


def _own_path(finding: Finding) -> list[tuple[str, frozenset[str]]]:
    """(the root's display path, the keys of the files) of each path a loss finding
    carries; its own file alone when it carries none."""
    entries = [e.split(PATH_SEPARATOR) for e in finding.training_modules if e]
    if not entries:
        return [(finding.path, frozenset({file_key(finding.path)}))]
    return [(files[0], frozenset(file_key(f) for f in files)) for files in entries]


def reference(finding: Finding) -> str:
    """"LL201 train.py:42:9", in a notebook "LL201 train.ipynb:cell 5:5:16": the
    notation of the finding's own location in every output."""
    cell = f"cell {finding.cell}:" if finding.cell is not None else ""
    return f"{finding.code} {finding.path}:{cell}{finding.span.line}:{finding.span.column + 1}"


_LISTED = 3  # references named in a chain's message; `related_locations` holds them all


def _refs(findings: list[Finding]) -> str:
    named = ", ".join(reference(f) for f in findings[:_LISTED])
    return named if len(findings) <= _LISTED else f"{named} and {len(findings) - _LISTED} more"


def _summary(root: str, loss: Finding, partials: list[Finding], momentum: list[Finding]) -> str:
    if momentum:
        return (
            f"one of the three {MARKER} ({root}): {_cause(loss)} ({reference(loss)}), a partial last batch "
            f"({_refs(partials)}) and momentum without clipping ({_refs(momentum)}): the last batch of every epoch "
            "takes a step too large and momentum carries it on, a loss spike once per pass over the data"
        )
    return (
        f"one of the two {MARKER} ({root}): {_cause(loss)} ({reference(loss)}) and a partial last batch "
        f"({_refs(partials)}): the last batch of every epoch weighs B/b times a full batch's, a loss spike once "
        "per pass over the data"
    )


def _cause(finding: Finding) -> str:
    role = chain_role(finding.code)
    return role.value if role is not None else finding.name


def link_to(finding: Finding) -> RelatedLocation:
    """Another finding of a chain, as a related location: where it is, its code
    and what it is ("LL201: a partial last batch on the same training path")."""
    return RelatedLocation(
        finding.path, finding.span, f"{finding.code}: {_cause(finding)} on the same training path", cell=finding.cell
    )


@linker
def link_full_chain(findings: list[Finding]) -> None:
    roles = {id(f): chain_role(f.code) for f in findings}
    partials = [f for f in findings if roles[id(f)] is ChainRole.PARTIAL_BATCH]
    if not partials:
        return
    momentum = [f for f in findings if roles[id(f)] is ChainRole.MOMENTUM]
    keys = {id(f): file_key(f.path) for f in (*partials, *momentum)}
    chains: list[tuple[str, str, list[Finding], bool]] = []  # (root, summary, members, with momentum)
    seen: set[frozenset[int]] = set()
    for loss in (f for f in findings if roles[id(f)] in LOSS_SCALE):
        for root, files in _own_path(loss):
            chain_partials = [f for f in partials if keys[id(f)] in files]
            chain_momentum = [f for f in momentum if keys[id(f)] in files]
            if not chain_partials:
                continue
            if not chain_momentum and (roles[id(loss)] is not ChainRole.SPIKING_LOSS or loss.severity is Severity.INFO):
                continue  # an accumulation window needs momentum to spike; an INFO loss saw only full batches
            members = [loss, *chain_partials, *chain_momentum]
            identity = frozenset(id(f) for f in members)
            if identity in seen:
                continue  # the same findings reached from another root
            seen.add(identity)
            chains.append((root, _summary(root, loss, chain_partials, chain_momentum), members, bool(chain_momentum)))
    in_chains: dict[int, list[tuple[str, str, list[Finding], bool]]] = {}
    for chain in chains:
        for finding in chain[2]:
            in_chains.setdefault(id(finding), []).append(chain)
    links: dict[int, RelatedLocation] = {}
    # Chains of one path share their partial batches and momentum (only the loss
    # differs): a finding in many chains reads those once, so a script of many
    # training cells costs what its related locations hold, not a pass per chain.
    shared = {id(members): tuple(id(f) for f in members[1:]) for _, _, members, _ in chains}
    for finding in findings:
        mine = in_chains.get(id(finding))
        if not mine:
            continue
        related = list(finding.related_locations)
        present = set(related)
        added: set[tuple[int, ...]] = set()
        for _, _, members, _ in mine:
            tail = shared[id(members)]
            for other in members if tail not in added else members[:1]:
                if other is not finding:
                    link = links.get(id(other))
                    if link is None:
                        link = links[id(other)] = link_to(other)
                    if link not in present:
                        present.add(link)
                        related.append(link)
            added.add(tail)
        finding.related_locations = tuple(related)
        floor = Severity.ERROR if any(full for *_, full in mine) else Severity.WARNING
        if finding.severity.rank < floor.rank:
            finding.severity = floor
        if MARKER not in finding.message:
            text = mine[0][1]
            others = list(dict.fromkeys(root for root, *_ in mine[1:] if root != mine[0][0]))
            if others:
                text += f"; the same on {'another training path' if len(others) == 1 else f'{len(others)} more training paths'} ({', '.join(others)})"
            finding.message += f" [{text}]"


def on_training_paths(ctx: "FileContext", findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings of an LL1xx rule, each carrying the training paths of its file
    (worked out once per file, and only when there is a finding)."""
    paths: tuple[str, ...] | None = None
    for finding in findings:
        if paths is None:
            paths = training_paths(ctx)
        finding.training_modules = paths
        yield finding
