"""The chain linker (rules/loss_chain.py) shares the work of chains of one path
(a script of many training cells has one selection of partial batches and
momentum for every cell's loss). Whatever it shares, every finding must get
exactly what the plain definition gives: checked here against that definition,
written out one chain and one finding at a time, on random sets of findings
(several files and paths, findings at the same location, a finding listed twice,
related locations of their own)."""

from __future__ import annotations

import copy
import random
from dataclasses import replace

import pytest

from losslint.findings import Finding, RelatedLocation, Severity, Span
from losslint.project import file_key
from losslint.rules.base import ChainRole, all_rules, chain_role
from losslint.rules.loss_chain import LOSS_SCALE, MARKER, NEAREST, _own_path, _summary, link_full_chain, link_to


def plain_link(findings: list[Finding]) -> None:
    """The definition: every chain (a loss on one of its paths with the partial
    batches and momentum in that path's files; the same members once), then each
    finding's chains in order, each chain's other members linked once; of each role,
    all of those links if there are at most NEAREST, else the NEAREST nearest the
    finding (in its file before other files, then by cell, line and order), each
    saying how many there are; the finding's own related locations first."""
    roles = {id(f): chain_role(f.code) for f in findings}
    partials = [f for f in findings if roles[id(f)] is ChainRole.PARTIAL_BATCH]
    momentum = [f for f in findings if roles[id(f)] is ChainRole.MOMENTUM]
    chains, seen = [], set()
    for loss in (f for f in findings if roles[id(f)] in LOSS_SCALE):
        for root, files in _own_path(loss):
            chain_partials = [f for f in partials if file_key(f.path) in files]
            chain_momentum = [f for f in momentum if file_key(f.path) in files]
            if not chain_partials:
                continue
            if not chain_momentum and (roles[id(loss)] is not ChainRole.SPIKING_LOSS or loss.severity is Severity.INFO):
                continue
            members = [loss, *chain_partials, *chain_momentum]
            identity = frozenset(map(id, members))
            if identity not in seen:
                seen.add(identity)
                chains.append((root, _summary(root, loss, chain_partials, chain_momentum), members, bool(chain_momentum)))
    for finding in findings:
        mine = [c for c in chains if any(m is finding for m in c[2])]
        if not mine:
            continue
        links, tails = [], []  # (link, role), each distinct link once, in the chains' order
        for _, _, members, _ in mine:
            tail = [id(m) for m in members[1:]]
            for other in members if tail not in tails else members[:1]:
                if other is not finding and link_to(other) not in [link for link, _ in links]:
                    links.append((link_to(other), roles[id(other)]))
            tails.append(tail)
        kept = []
        for number, (link, role) in enumerate(links):
            same_role = [(n, other) for n, (other, r) in enumerate(links) if r is role]
            if len(same_role) <= NEAREST:
                kept.append(link)
                continue
            def distance(item):
                n, other = item
                same = other.path == finding.path
                return (not same, abs((other.cell or 0) - (finding.cell or 0)) if same else 0,
                        abs(other.span.line - finding.span.line) if same else 0, n)
            if number in [n for n, _ in sorted(same_role, key=distance)[:NEAREST]]:
                kept.append(replace(link, message=f"{link.message} (one of {len(same_role)}: the {NEAREST} nearest are listed)"))
        related = list(finding.related_locations)
        related += [link for link in kept if link not in related]
        finding.related_locations = tuple(related)
        floor = Severity.ERROR if any(c[3] for c in mine) else Severity.WARNING
        if finding.severity.rank < floor.rank:
            finding.severity = floor
        if MARKER not in finding.message:
            text = mine[0][1]
            others = list(dict.fromkeys(c[0] for c in mine[1:] if c[0] != mine[0][0]))
            if others:
                text += f"; the same on {'another training path' if len(others) == 1 else f'{len(others)} more training paths'} ({', '.join(others)})"
            finding.message += f" [{text}]"


CODES = {"loss": ("LL101", "LL104", "LL102"), "partial": ("LL201", "LL202"), "momentum": ("LL301", "LL302"), "other": ("LL005",)}


def random_findings(rng: random.Random) -> list[Finding]:
    files = [f"/project/f{i}.py" for i in range(rng.randint(1, 4))]
    found = []
    for _ in range(rng.randint(1, 18)):
        kind = rng.choice(("loss", "partial", "partial", "momentum", "other"))
        path = rng.choice(files)
        line = rng.randint(1, 5)  # few places: findings at the same location happen
        own = tuple(
            RelatedLocation(path, Span(n, 0, n, 1), rng.choice(("the optimizer is built here", "LL201: a partial last batch on the same training path")))
            for n in rng.sample(range(1, 5), rng.randint(0, 2))
        )
        finding = Finding(
            rng.choice(CODES[kind]), "name", "message", rng.choice(list(Severity)), path,
            Span(line, rng.randint(0, 1), line, 2), cell=rng.choice((None, None, 1)), related_locations=own,
        )
        if kind == "loss" and rng.random() < 0.7:
            finding.training_modules = tuple("\n".join(rng.sample(files, rng.randint(1, len(files)))) for _ in range(rng.randint(1, 3)))
        found.append(finding)
    if rng.random() < 0.1:
        found.append(found[0])  # one finding object listed twice
    return found


def outcome(findings: list[Finding]) -> list[tuple]:
    return [(f.message, f.severity, f.related_locations) for f in findings]


@pytest.mark.parametrize("seed", range(4))
def test_the_linker_gives_what_the_definition_gives(seed: int):
    all_rules()
    rng = random.Random(seed)
    linked = 0
    for _ in range(400):
        findings = random_findings(rng)
        expected = copy.deepcopy(findings)
        plain_link(expected)
        link_full_chain(findings)
        assert outcome(findings) == outcome(expected)
        linked += sum(MARKER in f.message for f in findings)
    assert linked > 100  # the random sets do make chains


def test_many_cells_of_one_script_link_each_member_to_its_nearest():
    """A script of repeated training cells: every loss is in a chain with every
    partial batch and momentum finding of the file. Each finding names, of each
    role, the NEAREST members nearest it (its own cell's first) and how many there
    are: the output grows with the cells, not with their square."""
    all_rules()
    cells = 60
    findings = []
    for cell in range(cells):
        line = 10 * cell
        findings += [
            Finding("LL101", "loss", "loss", Severity.WARNING, "/project/train.py", Span(line + 1, 4, line + 1, 9)),
            Finding("LL202", "partial", "partial", Severity.INFO, "/project/train.py", Span(line + 2, 4, line + 2, 9)),
            Finding("LL301", "momentum", "momentum", Severity.WARNING, "/project/train.py", Span(line + 3, 4, line + 3, 9)),
        ]
    expected = copy.deepcopy(findings)
    plain_link(expected)
    link_full_chain(findings)
    assert outcome(findings) == outcome(expected)
    assert all(f.severity is Severity.ERROR for f in findings)
    # a loss: three partial batches and three momentum findings; the others also three losses
    assert {len(f.related_locations) for f in findings if f.code == "LL101"} == {2 * NEAREST}
    assert {len(f.related_locations) for f in findings if f.code != "LL101"} == {3 * NEAREST}
    middle = findings[3 * 30 : 3 * 31]  # cell 30: lines 301, 302, 303
    def listed(finding: Finding) -> list[tuple[int, str, str]]:
        return [(r.span.line, r.message[:5], r.message.rsplit(" (", 1)[1]) for r in finding.related_locations]

    # in the chains' order: the partial batches, then the momentum findings (then the losses)
    of_all, of_the_others = f"one of {cells}: the {NEAREST} nearest are listed)", f"one of {cells - 1}: the {NEAREST} nearest are listed)"
    assert listed(middle[0]) == [
        (292, "LL202", of_all), (302, "LL202", of_all), (312, "LL202", of_all),
        (293, "LL301", of_all), (303, "LL301", of_all), (313, "LL301", of_all),
    ]
    # a partial batch: the other partial batches (282 and 322 are as near: the first in order)
    assert listed(middle[1]) == [
        (282, "LL202", of_the_others), (292, "LL202", of_the_others), (312, "LL202", of_the_others),
        (293, "LL301", of_all), (303, "LL301", of_all), (313, "LL301", of_all),
        (291, "LL101", of_all), (301, "LL101", of_all), (311, "LL101", of_all),
    ]


def test_the_nearest_of_a_large_chain_are_counted_in_the_random_sets():
    """The random sets above do exercise the cap (a role with more than NEAREST
    members), so the comparison with the definition covers it."""
    all_rules()
    rng = random.Random(7)
    counted = 0
    for _ in range(200):
        findings = random_findings(rng)
        link_full_chain(findings)
        counted += sum(r.message.endswith("nearest are listed)") for f in findings for r in f.related_locations)
    assert counted > 100
