"""From programs to verdicts: which trainings to run, and what each one proves.

For a program with findings, each fix is one row of the report:

- a fix of the loss normalization or of the partial last batch (LL1xx, LL2xx) is
  judged on the epoch-boundary spike: the original against the program with that
  fix alone;
- a clip (LL3xx) is judged on an injected outlier batch, both runs with the same
  outlier: the program with every other fix (the original when there is none)
  against the same with the clip added; on a loss still scaled by 1/B a clip at
  max_norm=1.0 would never engage, so it is judged where the user will use it;
- when there are several fixes, or only clips, an ``all fixes`` row judges the
  program with every fix on the spike: a clip alone never removes the spike of a
  1/b loss (clipping does not change the logged loss), and this row says so.

A program losslint finds clean is trained as a negative control: a boundary
effect beyond its null is a finding of its own.

Every training goes through one pool of workers, in two rounds: the originals
first (fail-fast: a program that cannot be trained stops there), then every
variant with every seed (3 by default, the same seeds for before and after),
and the original at its real last batch when the smoke run shrank it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from losslint.findings import Finding
from losslint.verify.decision import Judgement, judge_control, judge_crash, judge_outlier, judge_spike
from losslint.verify.harness import HarnessOptions, RunResult, RunSpec, WorkerPool
from losslint.verify.programs import Program, applicability, is_clip_fix, symptom_direction

DEFAULT_SEEDS = 3


@dataclass
class Row:
    subject: str
    finding: Finding | None  # None: the "all fixes" row, or the negative control
    fix: str
    applicability: str
    judgement: Judgement
    before: list[RunResult] = field(default_factory=list)
    after: list[RunResult] = field(default_factory=list)
    variant: str = ""
    inject: bool = False

    @property
    def code(self) -> str:
        if self.finding:
            return self.finding.code
        return "control" if self.variant == "control" else "all"

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.before + self.after)


@dataclass
class RealSize:
    """S of the original at its real last batch (k*B + N % B samples), beside the smoke size."""

    real_last: int
    smoke_last: int
    judgement: Judgement | None = None
    runs: list[RunResult] = field(default_factory=list)
    problem: str = ""


@dataclass
class Subject:
    """One program to verify: a built-in scenario or a user's script."""

    name: str
    kind: str  # "scenario" or "script"
    program: Program | None
    argv: tuple[str, ...] = ()
    problem: str | None = None  # why nothing could be verified
    notes: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    workdir: Path | None = None
    timeout: float | None = None  # seconds per training, when not the options' own
    control: bool = False  # no finding: trained as a negative control
    real: RealSize | None = None
    log_tail: str = ""  # the program's own output when it could not be trained
    needs_cuda: bool = False


@dataclass
class _Plan:
    subject: Subject
    variant: str
    finding: Finding | None
    inject: bool
    baseline: str = "original"  # the variant the fixed one is compared with
    fixed_judgement: Judgement | None = None  # decided without training


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "program"


def _plans(subject: Subject) -> list[_Plan]:
    program = subject.program
    assert program is not None
    if subject.control:
        return [_Plan(subject, "control", None, inject=False, baseline="original")]
    plans = []
    fixable = program.fixable()
    for variant in program.variants:
        if variant.finding is None:
            continue
        plan = _Plan(subject, variant.key, variant.finding, inject=is_clip_fix(variant.finding), baseline=variant.baseline)
        if variant.error:
            plan.fixed_judgement = Judgement("outlier" if plan.inject else "spike", "failed", variant.error)
        plans.append(plan)
    if len(fixable) >= 2 or (fixable and all(is_clip_fix(f) for f in fixable)):
        plans.append(_Plan(subject, "all", None, inject=False))
    return plans


def _key(subject: Subject, variant: str, inject: bool, seed: int, remainder: str = "smoke") -> str:
    return f"{subject.name}|{variant}|{'outlier' if inject else 'plain'}|{seed}" + ("|real" if remainder == "real" else "")


def _spec(subject: Subject, variant: str, inject: bool, seed: int, remainder: str = "smoke") -> RunSpec:
    program = subject.program
    assert program is not None and subject.workdir is not None
    directory = subject.workdir / variant
    label = _variant_label(program, variant) + (" with an outlier" if inject else "")
    label += f", seed {seed}" if seed else ""
    label += ", real last batch" if remainder == "real" else ""
    return RunSpec(
        key=_key(subject, variant, inject, seed, remainder),
        program=directory / program.script_relative,
        frameworks=program.frameworks,
        argv=subject.argv,
        cwd=directory,
        inject=inject,
        seed_offset=seed * 1000,
        cost=3.0 if "keras" in program.frameworks else 1.0,
        label=f"{subject.name}: {label}",
        full_batches=program.full_batches,
        timeout=subject.timeout,
        remainder=remainder,
    )


def _specs(plans: list[_Plan], seeds: tuple[int, ...]) -> list[RunSpec]:
    specs: dict[str, RunSpec] = {}
    for plan in plans:
        if plan.fixed_judgement is not None:
            continue
        variants = (plan.baseline,) if plan.variant == "control" else (plan.baseline, plan.variant)
        for seed in seeds:
            for variant in variants:
                spec = _spec(plan.subject, variant, plan.inject, seed)
                specs.setdefault(spec.key, spec)
    return list(specs.values())


def _variant_label(program: Program, key: str) -> str:
    if key in ("original", "all"):
        return {"original": "original", "all": "all fixes"}[key]
    if key == "base":
        return "non-clip fixes"
    variant = program.variant(key)
    return f"{variant.finding.code} fix" + (" on the other fixes" if variant.baseline == "base" else "") if variant.finding else key


def _judge(plan: _Plan, results: dict[str, RunResult], options: HarnessOptions, seeds: tuple[int, ...]) -> Row:
    subject = plan.subject
    finding = plan.finding
    if plan.variant == "control":
        fix = "none: losslint finds nothing (negative control)"
    else:
        fix = finding.fix.description if finding and finding.fix else "every fix above together"
    row = Row(
        subject.name,
        finding,
        fix,
        applicability(finding) if finding else "-",
        Judgement("spike", "inconclusive", ""),
        variant=plan.variant,
        inject=plan.inject,
    )
    if plan.fixed_judgement is not None:
        row.judgement = plan.fixed_judgement
        return row
    row.before = [results[_key(subject, plan.baseline, plan.inject, s)] for s in seeds]
    if plan.variant == "control":
        runs = [r for r in row.before if r.ok]
        if not runs:
            row.judgement = Judgement("spike", "inconclusive", f"the program cannot be run ({row.before[0].describe_problem()})")
            return row
        row.judgement = judge_control([r.steps for r in runs], [r.complete_last for r in runs])
        return row
    row.after = [results[_key(subject, plan.variant, plan.inject, s)] for s in seeds]
    kind = "outlier" if plan.inject else "spike"
    first_before = next((r for r in row.before if not r.ok), row.before[0])
    first_after = next((r for r in row.after if not r.ok), row.after[0])
    crash = judge_crash(
        first_before.status, first_before.describe_problem(), first_after.status, first_after.describe_problem(), kind
    )
    if crash is not None:
        row.judgement = crash
        return row
    before = [r.steps for r in row.before]
    after = [r.steps for r in row.after]
    flags_b = [r.complete_last for r in row.before]
    flags_a = [r.complete_last for r in row.after]
    if plan.inject:
        row.judgement = judge_outlier(before, after, options.inject_step, options.inject_factor, flags_b, flags_a)
    else:
        findings = [plan.finding] if plan.finding else subject.program.fixable()
        row.judgement = judge_spike(before, after, symptom_direction(findings), flags_b, flags_a)
        if not plan.finding and row.judgement.verdict == "failed" and all(is_clip_fix(f) for f in subject.program.fixable()):
            row.judgement.reason += (
                "; a clip does not change the loss a step computes, so it cannot remove a spike that comes from the "
                "loss normalization or the partial last batch (see LL1xx/LL2xx)"
            )
    return row


def _real_size(subject: Subject, first: RunResult) -> RealSize | None:
    """When the real last batch differs from the smoke run's, the original is run at it as well."""
    for entry in first.shrunk:
        real, smoke = entry.get("real_last"), entry.get("smoke_last")
        if entry.get("shrunk_to") != entry.get("n") and real is not None and smoke is not None and real != smoke:
            return RealSize(int(real), int(smoke))
    return None


def verify(
    subjects: list[Subject],
    options: HarnessOptions,
    progress: Callable[[RunSpec, str, float, int, int], None] | None = None,
    seeds: int = DEFAULT_SEEDS,
) -> list[Subject]:
    """Train and judge every subject's fixes; fills ``subject.rows``.

    The originals are trained first (seed 0): a program that crashes, hangs, needs
    arguments or a GPU stops there, with its own output; nothing else of it runs.
    Then every variant with every seed, and the original at its real last batch."""
    seed_list = tuple(range(max(1, seeds)))
    plans: list[_Plan] = []
    for subject in subjects:
        if subject.program is None or subject.problem:
            continue
        subject.workdir = options.workdir / _slug(subject.name)
        for variant in subject.program.variants:
            variant.write(subject.workdir / variant.key, subject.program)
        plans.extend(_plans(subject))

    results: dict[str, RunResult] = {}
    with WorkerPool(options) as pool:

        def run(specs: list[RunSpec]) -> None:
            done = [0]

            def report(spec: RunSpec, status: str, seconds: float) -> None:
                done[0] += 1
                if progress:
                    progress(spec, status, seconds, done[0], len(specs))

            results.update(pool.run(specs, report))

        trained = [s for s in subjects if s.workdir is not None and not s.problem]
        run([_spec(subject, "original", False, seed_list[0]) for subject in trained])
        for subject in trained:
            first = results[_key(subject, "original", False, seed_list[0])]
            if not first.ok:
                subject.problem = f"the original cannot be run: {first.describe_problem()}"
                subject.log_tail = first.log_tail
            else:
                subject.real = _real_size(subject, first)
        plans = [plan for plan in plans if not plan.subject.problem]
        specs = _specs(plans, seed_list)
        for subject in trained:
            if subject.real is not None and not subject.problem:
                specs.extend(_spec(subject, "original", False, seed, "real") for seed in seed_list)
        run([spec for spec in specs if spec.key not in results])
        rows = {id(plan): _judge(plan, results, options, seed_list) for plan in plans}
    for subject in trained:
        if subject.real is None or subject.problem:
            continue
        real_runs = [results[_key(subject, "original", False, seed, "real")] for seed in seed_list]
        subject.real.runs = real_runs
        ok = [r for r in real_runs if r.ok]
        if ok:
            subject.real.judgement = judge_control([r.steps for r in ok], [r.complete_last for r in ok])
        else:
            subject.real.problem = real_runs[0].describe_problem()
    for plan in plans:
        row = rows[id(plan)]
        program = plan.subject.program
        clip_only = program is not None and not plan.subject.control and all(is_clip_fix(f) for f in program.fixable())
        if plan.variant == "all" and clip_only and row.judgement.verdict == "inconclusive":
            # The row exists to show that a clip cannot remove a spike; without a spike it says nothing.
            plan.subject.notes.append(f"no epoch-boundary spike to remove: {row.judgement.reason}")
            continue
        plan.subject.rows.append(row)
    for subject in subjects:
        original = [r for key, r in results.items() if key.startswith(f"{subject.name}|original|")]
        for result in original:
            for note in result.notes:
                if note not in subject.notes:
                    subject.notes.append(note)
    return subjects
