"""Tie a measured period to the code: run ``check`` and compare.

A partial-batch finding (LL2xx) that reports N and B implies ``ceil(N / B)``
batches per pass; with gradient accumulation over A micro-batches, ``ceil`` or
``floor`` of that over A optimizer steps (whether the last window steps); with a
DistributedSampler over W processes, each rank sees ``ceil(N / W)`` samples. A
finding whose steps per pass equal the period matches. One that knows B but not
N bounds N instead: P passes-steps of B samples hold between (P-1) B + 1 and P B.

The findings carry N and B in their messages only (``N=22239, B=16``); they are
read from there. The loss-scale (LL1xx) and momentum (LL3xx) findings linked with
a match (its ``related_locations``: the causes of a per-epoch spike on one training
path) or in the same file are reported with it. Which family a finding is of is the
chain role its rule declares (``Rule.chain``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from losslint.findings import Finding, RelatedLocation
from losslint.rules.base import ChainRole, chain_role

_N = re.compile(r"\bN=(\d+)")
_B = re.compile(r"\bB=(\d+)")
_ACCUMULATION = re.compile(r"(?:divided by|with) [^\s=]+=(\d+)")
_MOMENTUM = re.compile(r"(\w+) with momentum (\d*\.\d+)")


@dataclass
class Match:
    finding: Finding
    n: int | None
    b: int
    accumulation: int
    world_size: int
    expected: int | None  # steps per pass the finding implies (None: N unknown)
    bounds: tuple[int, int] | None = None  # N's range when N is unknown

    @property
    def location(self) -> str:
        return _where(self.finding)

    def describe(self) -> str:
        code = self.finding.code
        extra = "".join(
            f", {name}={value}" for name, value in (("accumulation", self.accumulation), ("world size", self.world_size)) if value > 1
        )
        if self.n is not None:
            last = _last_batch(self.n, self.b, self.world_size)
            return (
                f"{code} at {self.location} (N={self.n}, B={self.b}{extra}: {self.expected} steps, "
                f"a last batch of {last})"
            )
        low, high = self.bounds or (0, 0)
        return (
            f"{code} at {self.location} (B={self.b}{extra}, N not known statically): your training set has "
            f"between {low} and {high} samples"
        )


@dataclass
class CodeLink:
    paths: list[str]
    findings: list[Finding] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    others: list[Match] = field(default_factory=list)  # partial-batch findings whose steps per pass differ
    linked: list[Finding] = field(default_factory=list)  # LL1xx / LL3xx on the matches' training path

    def linked_sentences(self) -> list[str]:
        return [describe_linked(f) for f in self.linked]


def _last_batch(n: int, b: int, world_size: int) -> int:
    per_rank = math.ceil(n / world_size)
    return per_rank % b or b


def steps_per_pass(n: int, b: int, accumulation: int = 1, world_size: int = 1) -> set[int]:
    batches = math.ceil(math.ceil(n / world_size) / b)
    if accumulation <= 1:
        return {batches}
    return {math.ceil(batches / accumulation), max(1, batches // accumulation), batches}


def n_bounds(period: int, b: int, accumulation: int = 1, world_size: int = 1) -> tuple[int, int]:
    """The dataset sizes N for which a pass is ``period`` optimizer steps."""
    low_batches, high_batches = (period - 1) * accumulation + 1, period * accumulation
    low_rank, high_rank = (low_batches - 1) * b + 1, high_batches * b
    return (low_rank - 1) * world_size + 1, high_rank * world_size


def _where(finding: Finding) -> str:
    """"train.py:53", in a notebook "train.ipynb:cell 5:16": the notation of locations."""
    cell = f"cell {finding.cell}:" if finding.cell is not None else ""
    return f"{finding.path}:{cell}{finding.span.line}"


def _place(finding: Finding | RelatedLocation) -> tuple:
    return (finding.path, finding.cell, finding.span.line, finding.span.column)


def _role(finding: Finding, wanted: str) -> bool:
    """Whether the finding's rule declares a role of the kind ``wanted`` names
    (a ``ChainRole`` property: scales_loss, short_last_batch, unclipped)."""
    role: ChainRole | None = chain_role(finding.code)
    return role is not None and getattr(role, wanted)


def describe_linked(finding: Finding) -> str:
    where = _where(finding)
    code = finding.code
    if _role(finding, "unclipped"):
        found = _MOMENTUM.search(finding.message)
        if found and code != "LL305":
            momentum = float(found.group(2))
            carry = f" carries each spike on for ~{round(1 / (1 - momentum))} steps" if 0 < momentum < 1 else " carries each spike on"
            return f"{found.group(1)} momentum {found.group(2)} at {where}{carry} ({code})"
        if code == "LL305":
            return f"the gradient clip at {where} meets scaled gradients (before unscale_), so it does not stop the spike ({code})"
        return f"a momentum optimizer without gradient clipping at {where} carries each spike on ({code})"
    return {
        "LL101": f"the loss at {where} scales as 1/b ({code})",
        "LL102": f"the Keras loss at {where} is averaged twice and scales as 1/b ({code})",
        "LL103": f"the loss at {where} is divided by the nominal batch size while the last batch is smaller ({code})",
        "LL104": f"gradient accumulation at {where} leaves a partial last window every pass ({code})",
    }.get(code, f"{finding.name} at {where} ({code})")


def run_check(paths: list[Path], config: Path | None = None, use_cache: bool = True) -> list[Finding]:
    """The findings of ``losslint check PATHS``, through the same engine."""
    from losslint.cache import Cache, cache_directory
    from losslint.config import load_settings
    from losslint.engine import Linter

    settings = load_settings(config, paths)
    linter = Linter(settings, cache=Cache(cache_directory(settings)) if use_cache else None)
    return linter.run(paths, fix_edits=False).findings


def link(
    findings: list[Finding], period: int | None, tolerance: float, accumulation: int = 1, world_size: int = 1
) -> CodeLink:
    result = CodeLink(paths=[], findings=findings)
    by_place: dict[tuple, list[Finding]] = {}  # a chain's links name the places of its other findings
    for finding in findings:
        by_place.setdefault(_place(finding), []).append(finding)
    for finding in findings:
        if not _role(finding, "short_last_batch"):
            continue
        b = _B.search(finding.message)
        if b is None:
            continue
        n = _N.search(finding.message)
        windows = {accumulation} | _accumulations(finding, findings) if accumulation == 1 else {accumulation}
        for window in sorted(windows):
            if n is not None:
                expected = steps_per_pass(int(n.group(1)), int(b.group(1)), window, world_size)
                near = min(expected, key=lambda e: abs(e - period)) if period else min(expected)
                match = Match(finding, int(n.group(1)), int(b.group(1)), window, world_size, near)
                # to the step when every step is logged; within one over a logging interval
                if period is not None and abs(near - period) <= (0 if tolerance <= 1 else 1):
                    result.matches.append(match)
                    break
            elif period is not None:
                match = Match(finding, None, int(b.group(1)), window, world_size, None, n_bounds(period, int(b.group(1)), window, world_size))
                result.matches.append(match)
                break
        else:
            if n is not None:
                result.others.append(match)
    # a finding that knows N and matches makes the bounds of the unknown ones moot
    if any(m.n is not None for m in result.matches):
        result.others += [m for m in result.matches if m.n is None]
        result.matches = [m for m in result.matches if m.n is not None]
    seen: set[int] = set()
    for match in result.matches:
        related = [f for place in match.finding.related_locations for f in by_place.get(_place(place), ())]
        same_file = [f for f in findings if f.path == match.finding.path]
        for finding in related + same_file:
            if (_role(finding, "scales_loss") or _role(finding, "unclipped")) and id(finding) not in seen:
                seen.add(id(finding))
                result.linked.append(finding)
    result.linked.sort(key=lambda f: (not _role(f, "scales_loss"), f.sort_key))
    return result


def _accumulations(finding: Finding, findings: list[Finding]) -> set[int]:
    """Accumulation windows an LL104 finding in the same file reports."""
    return {
        int(found.group(1))
        for f in findings
        if f.code == "LL104" and f.path == finding.path
        for found in [_ACCUMULATION.search(f.message)]
        if found and int(found.group(1)) > 1
    }
