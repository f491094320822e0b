"""The causes of a per-epoch loss spike that meet on one training path: a loss
that scales as 1/batch size (LL1xx), a partial last batch (LL2xx) and a momentum
optimizer without clipping (LL3xx).

Each factor alone is a risk; together they are the failure losslint exists for:
the short last batch of every epoch gets a loss and gradient B/b times too large,
and momentum carries that step on for ~1/(1 - mu) steps, so the loss spikes once
per pass over the data (ssd_keras, Stack Overflow 47824598). Where the three meet,
this linker links the findings to each other (``Finding.related_locations``) and raises them
all to error. A finding lists of each role (loss scale, partial batch, momentum) the
other members of its chains, up to ``NEAREST`` of them: the nearest, each saying how
many there are, where a chain has more (a script of hundreds of training cells). A loss ∝ 1/b and a partial last batch alone already spike: they are
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

import heapq
import os
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from losslint.discovery import display_path
from losslint.findings import Finding, RelatedLocation, Severity
from losslint.project import file_key
from losslint.rules.base import ChainRole, chain_role, linker

if TYPE_CHECKING:
    from losslint.context import FileContext

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


_LISTED = 3  # references named in a chain's message
# The links a finding lists per role (loss scale, partial batch, momentum) of its
# chains' other members: the nearest ones, with how many there are. A script of many
# training cells makes one chain of hundreds of members; listing every other member
# on every member made the output quadratic (180 MB of JSON at 320 cells).
NEAREST = 3


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


@dataclass(eq=False)
class _Selection:
    """The partial batches and momentum findings in a path's files: shared by every
    chain whose path holds the same ones (in a script of many training cells, one
    selection for every cell's loss)."""

    partials: list[Finding]
    momentum: list[Finding]
    chains: list[int] = field(default_factory=list)  # the chains on it, in order

    @property
    def members(self) -> list[Finding]:
        return [*self.partials, *self.momentum]


@dataclass(eq=False)
class _Chain:
    root: str
    summary: str
    loss: Finding
    selection: _Selection


@dataclass(eq=False)
class _Links:
    """The links a group of findings gets, in the order the chains give them: each
    distinct location once (``links``), with the role of the finding it links to
    (``roles``) and how many there are of each role (``counts``); where each
    finding's own link is among them (``position``), and the findings whose link
    another finding repeats, which leave their own out one by one (``ambiguous``)."""

    walk: list[Finding]
    links: tuple[RelatedLocation, ...]
    index: dict[RelatedLocation, int]
    position: dict[int, int]
    ambiguous: set[int]
    roles: list[ChainRole | None]
    counts: dict[ChainRole | None, int]
    places: dict[tuple[ChainRole | None, str], list[tuple[int, int, int]]] | None = None  # see _places
    in_order: dict[ChainRole | None, list[int]] | None = None  # the links of each role, by number

    def indexed(self) -> tuple[dict, dict[ChainRole | None, list[int]]]:
        """``_places`` of the links, worked out once (only for a chain with more
        than ``NEAREST`` members of a role)."""
        if self.places is None or self.in_order is None:
            self.places, self.in_order = _places(self.links, self.roles)
        return self.places, self.in_order

    def listed(self, role: ChainRole | None, excluded: int | None) -> int:
        """How many links of ``role`` a finding whose own link is ``excluded`` has."""
        return self.counts[role] - (excluded is not None and self.roles[excluded] is role)

    def candidates(self, finding: Finding, role: ChainRole | None, excluded: int | None) -> list[int]:
        """At least the ``NEAREST`` links of ``role`` nearest ``finding`` (see
        ``_distance``) and every link as near as the last of them, found by
        bisection in the role's links of the finding's file (each sorted by cell and
        line), then the role's first links in other files."""
        places_of, in_order = self.indexed()
        cell, line = finding.cell or 0, finding.span.line
        places = places_of.get((role, finding.path), [])
        start = bisect_left(places, (cell, line, -1))

        def block(place: tuple[int, int, int]) -> tuple[int, ...]:
            # beyond the finding's cell, a whole cell is as near as its nearest line
            return place[:2] if place[0] == cell else place[:1]

        found: list[int] = []
        for side in (range(start - 1, -1, -1), range(start, len(places))):
            taken, last = 0, None
            for i in side:
                place = places[i]
                if taken >= NEAREST and block(place) != last:
                    break
                if place[2] != excluded:
                    found.append(place[2])
                    taken, last = taken + 1, block(place)
        if len(found) < NEAREST:
            others = (n for n in in_order[role] if self.links[n].path != finding.path)
            found += [n for _, n in zip(range(NEAREST - len(found)), others)]
        return found


def _places(links: tuple[RelatedLocation, ...], roles: list[ChainRole | None]) -> tuple[dict, dict]:
    """(the links of each role in each file as (cell, line, number), sorted; the
    numbers of each role's links in order)."""
    places: dict[tuple[ChainRole | None, str], list[tuple[int, int, int]]] = {}
    in_order: dict[ChainRole | None, list[int]] = {}
    for number, (link, role) in enumerate(zip(links, roles)):
        places.setdefault((role, link.path), []).append((link.cell or 0, link.span.line, number))
        in_order.setdefault(role, []).append(number)
    for listed in places.values():
        listed.sort()
    return places, in_order


@linker
def link_full_chain(findings: list[Finding]) -> None:
    """Link the findings of every chain and raise their severity. Chains of one path
    share their partial batches and momentum, and the findings in the same chains
    share their links. Each finding lists, of each role among its chains' other
    members, all of them if they are at most ``NEAREST``, else the ``NEAREST``
    nearest it with how many there are (``nearest`` is the definition): the work and
    the output are linear in the findings and the paths."""
    roles = {id(f): chain_role(f.code) for f in findings}
    partials = [f for f in findings if roles[id(f)] is ChainRole.PARTIAL_BATCH]
    if not partials:
        return
    momentum = [f for f in findings if roles[id(f)] is ChainRole.MOMENTUM]
    chains = _chains([f for f in findings if roles[id(f)] in LOSS_SCALE], roles, partials, momentum)
    if not chains:
        return
    link_cache: dict[int, RelatedLocation] = {}

    def link_of(finding: Finding) -> RelatedLocation:
        link = link_cache.get(id(finding))
        if link is None:
            link = link_cache[id(finding)] = link_to(finding)
        return link

    # a loss is in the chains it starts; a partial batch or momentum finding in the
    # chains of every selection holding it (the selections in their first chain's order)
    of_loss: dict[int, list[int]] = {}
    for number, chain in enumerate(chains):
        of_loss.setdefault(id(chain.loss), []).append(number)
    of_member: dict[int, list[_Selection]] = {}
    for selection in dict.fromkeys(chain.selection for chain in chains):
        for member in selection.members:
            of_member.setdefault(id(member), []).append(selection)
    shared: dict[tuple[int, ...], tuple[_Links, list[int]]] = {}
    for finding in findings:
        if id(finding) in of_loss:
            mine = of_loss[id(finding)]
            selections = [chains[number].selection for number in mine]
            key = (0, *map(id, selections))
            if key not in shared:
                shared[key] = (_shared_links([m for s in selections for m in s.members], link_of, roles), [])
            links = shared[key][0]
        elif id(finding) in of_member:
            selections = of_member[id(finding)]
            key = (1, *map(id, selections))
            if key not in shared:
                order = list(heapq.merge(*(s.chains for s in selections)))
                walk: list[Finding] = []
                added: set[int] = set()
                for number in order:
                    chain = chains[number]
                    walk.append(chain.loss)
                    if id(chain.selection) not in added:
                        added.add(id(chain.selection))
                        walk.extend(chain.selection.members)
                shared[key] = (_shared_links(walk, link_of, roles), order)
            links, mine = shared[key]
        else:
            continue
        finding.related_locations = _related(finding, links, link_of, roles)
        floor = Severity.ERROR if any(s.momentum for s in selections) else Severity.WARNING
        if finding.severity.rank < floor.rank:
            finding.severity = floor
        if MARKER not in finding.message:
            first = chains[mine[0]]
            text = first.summary
            others = list(dict.fromkeys(chains[n].root for n in mine[1:] if chains[n].root != first.root))
            if others:
                text += f"; the same on {'another training path' if len(others) == 1 else f'{len(others)} more training paths'} ({', '.join(others)})"
            finding.message += f" [{text}]"


def _chains(losses: list[Finding], roles: dict[int, ChainRole | None], partials: list[Finding], momentum: list[Finding]) -> list[_Chain]:
    """Every chain: a loss on one of its paths with the partial batches (and the
    momentum) in that path's files; the same findings reached from another root once."""
    by_file: dict[str, tuple[list[tuple[int, Finding]], list[tuple[int, Finding]]]] = {}
    for kind, found in enumerate((partials, momentum)):
        for number, finding in enumerate(found):
            by_file.setdefault(file_key(finding.path), ([], []))[kind].append((number, finding))
    of_files: dict[frozenset[str], _Selection] = {}
    interned: dict[tuple[int, ...], _Selection] = {}
    chains: list[_Chain] = []
    seen: set[tuple[int, int]] = set()
    for loss in losses:
        for root, files in _own_path(loss):
            selection = of_files.get(files)
            if selection is None:
                held = [by_file[key] for key in files if key in by_file]
                chosen = [[f for _, f in sorted((p for h in held for p in h[kind]), key=lambda p: p[0])] for kind in (0, 1)]
                identity = tuple(id(f) for f in (*chosen[0], *chosen[1]))
                selection = of_files[files] = interned.setdefault(identity, _Selection(chosen[0], chosen[1]))
            if not selection.partials:
                continue
            if not selection.momentum and (roles[id(loss)] is not ChainRole.SPIKING_LOSS or loss.severity is Severity.INFO):
                continue  # an accumulation window needs momentum to spike; an INFO loss saw only full batches
            if (id(loss), id(selection)) in seen:
                continue  # the same findings reached from another root
            seen.add((id(loss), id(selection)))
            selection.chains.append(len(chains))
            chains.append(_Chain(root, _summary(root, loss, selection.partials, selection.momentum), loss, selection))
    return chains


def _shared_links(walk: list[Finding], link_of: Callable[[Finding], RelatedLocation], roles: dict[int, ChainRole | None]) -> _Links:
    """The links of the findings met in ``walk``, each location once, in order."""
    index: dict[RelatedLocation, int] = {}
    owners: dict[RelatedLocation, set[int]] = {}
    link_roles: list[ChainRole | None] = []
    for finding in walk:
        link = link_of(finding)
        if link not in index:
            index[link] = len(index)
            link_roles.append(roles[id(finding)])
        owners.setdefault(link, set()).add(id(finding))
    position: dict[int, int] = {}
    ambiguous: set[int] = set()
    for link, ids in owners.items():
        if len(ids) == 1:
            position[next(iter(ids))] = index[link]
        else:
            ambiguous |= ids
    counts: dict[ChainRole | None, int] = {}
    for role in link_roles:
        counts[role] = counts.get(role, 0) + 1
    return _Links(walk, tuple(index), index, position, ambiguous, link_roles, counts)


def _related(
    finding: Finding, shared: _Links, link_of: Callable[[Finding], RelatedLocation], roles: dict[int, ChainRole | None]
) -> tuple[RelatedLocation, ...]:
    """The finding's related locations followed by the links of its chains' other
    members, each location once: of each role, all of them if there are at most
    ``NEAREST``, else the ``NEAREST`` nearest (``nearest``)."""
    own = tuple(finding.related_locations)
    if id(finding) in shared.ambiguous:  # another finding at its location: walk the members
        others = [f for f in shared.walk if f is not finding]
        return _merged(own, nearest(finding, [(link_of(f), roles[id(f)]) for f in others]))
    at = shared.position.get(id(finding))
    if all(shared.listed(role, at) <= NEAREST for role in shared.counts):
        links = shared.links if at is None else shared.links[:at] + shared.links[at + 1 :]
    else:
        chosen: list[int] = []
        capped: dict[int, int] = {}
        for role in shared.counts:
            listed = shared.listed(role, at)
            if listed <= NEAREST:
                chosen += [n for n in shared.indexed()[1][role] if n != at]
                continue
            near = sorted(shared.candidates(finding, role, at), key=lambda n: _distance(finding, shared.links[n], n))
            for n in near[:NEAREST]:
                chosen.append(n)
                capped[n] = listed
        links = tuple(_counted(shared.links[n], capped[n]) if n in capped else shared.links[n] for n in sorted(chosen))
        return _merged(own, links)  # (a counted link is in no index: a finding linked twice has it already)
    if any(location in shared.index for location in own):
        return _merged(own, links)
    return own + links


def nearest(finding: Finding, links: list[tuple[RelatedLocation, ChainRole | None]]) -> list[RelatedLocation]:
    """The definition the linker keeps to: of ``links`` (the links of a finding's
    chains' other members, in order, with the role of each), each distinct one once,
    and of each role all of them if there are at most ``NEAREST``, else the
    ``NEAREST`` nearest the finding (``_distance``), each saying how many there are;
    in their order."""
    distinct = list(dict.fromkeys(links))
    counts: dict[ChainRole | None, int] = {}
    for _, role in distinct:
        counts[role] = counts.get(role, 0) + 1
    kept: dict[int, RelatedLocation] = {}
    for role, count in counts.items():
        numbered = [(n, link) for n, (link, r) in enumerate(distinct) if r is role]
        if count > NEAREST:
            numbered = sorted(numbered, key=lambda item: _distance(finding, item[1], item[0]))[:NEAREST]
        kept.update((n, _counted(link, count) if count > NEAREST else link) for n, link in numbered)
    return [kept[n] for n in sorted(kept)]


def _distance(finding: Finding, link: RelatedLocation, number: int) -> tuple:
    """How far a linked member is from the finding: in its file before any other
    file, then by cell, by line, and in the chains' order."""
    same = link.path == finding.path
    return (not same, abs((link.cell or 0) - (finding.cell or 0)) if same else 0, abs(link.span.line - finding.span.line) if same else 0, number)


def _counted(link: RelatedLocation, count: int) -> RelatedLocation:
    return replace(link, message=f"{link.message} (one of {count}: the {NEAREST} nearest are listed)")


def _merged(own: tuple[RelatedLocation, ...], links: Iterable[RelatedLocation]) -> tuple[RelatedLocation, ...]:
    related = list(own)
    present = set(own)
    for link in links:
        if link not in present:
            present.add(link)
            related.append(link)
    return tuple(related)


def on_training_paths(ctx: "FileContext", findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings of an LL1xx rule, each carrying the training paths of its file
    (worked out once per file, and only when there is a finding)."""
    paths: tuple[str, ...] | None = None
    for finding in findings:
        if paths is None:
            paths = training_paths(ctx)
        finding.training_modules = paths
        yield finding
