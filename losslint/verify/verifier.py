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

Every training of every program goes through one ``run_many`` call (the workers
stay busy); a row whose score is close to its threshold is run again with two
more seeds and judged on the medians.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from losslint.findings import Finding
from losslint.verify.decision import Judgement, judge_crash, judge_outlier, judge_spike
from losslint.verify.harness import HarnessOptions, RunResult, RunSpec, WorkerPool
from losslint.verify.programs import Program, applicability, is_clip_fix, symptom_direction

EXTRA_SEEDS = (1, 2)


@dataclass
class Row:
    subject: str
    finding: Finding | None  # None: the "all fixes" row
    fix: str
    applicability: str
    judgement: Judgement
    before: list[RunResult] = field(default_factory=list)
    after: list[RunResult] = field(default_factory=list)
    variant: str = ""
    inject: bool = False

    @property
    def code(self) -> str:
        return self.finding.code if self.finding else "all"

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.before + self.after)


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


@dataclass
class _Plan:
    subject: Subject
    variant: str
    finding: Finding | None
    inject: bool
    baseline: str = "original"  # the variant the fixed one is compared with
    seeds: tuple[int, ...] = (0,)
    fixed_judgement: Judgement | None = None  # decided without training


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "program"


def _plans(subject: Subject) -> list[_Plan]:
    program = subject.program
    assert program is not None
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


def _key(subject: Subject, variant: str, inject: bool, seed: int) -> str:
    return f"{subject.name}|{variant}|{'outlier' if inject else 'plain'}|{seed}"


def _specs(plans: list[_Plan], seeds_for: Callable[[_Plan], tuple[int, ...]]) -> list[RunSpec]:
    specs: dict[str, RunSpec] = {}
    for plan in plans:
        if plan.fixed_judgement is not None:
            continue
        subject = plan.subject
        assert subject.program is not None and subject.workdir is not None
        cost = 3.0 if "keras" in subject.program.frameworks else 1.0
        for seed in seeds_for(plan):
            for variant in (plan.baseline, plan.variant):
                key = _key(subject, variant, plan.inject, seed)
                if key not in specs:
                    directory = subject.workdir / variant
                    label = _variant_label(subject.program, variant) + (" with an outlier" if plan.inject else "")
                    label += f", seed {seed}" if seed else ""
                    specs[key] = RunSpec(
                        key=key,
                        program=directory / subject.program.script_relative,
                        frameworks=subject.program.frameworks,
                        argv=subject.argv,
                        cwd=directory,
                        inject=plan.inject,
                        seed_offset=seed * 1000,
                        cost=cost,
                        label=f"{subject.name}: {label}",
                        full_batches=subject.program.full_batches,
                        timeout=subject.timeout,
                    )
    return list(specs.values())


def _variant_label(program: Program, key: str) -> str:
    if key in ("original", "all"):
        return {"original": "original", "all": "all fixes"}[key]
    if key == "base":
        return "non-clip fixes"
    variant = program.variant(key)
    return f"{variant.finding.code} fix" + (" on the other fixes" if variant.baseline == "base" else "") if variant.finding else key


def _judge(plan: _Plan, results: dict[str, RunResult], options: HarnessOptions) -> Row:
    subject = plan.subject
    finding = plan.finding
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
    row.before = [results[_key(subject, plan.baseline, plan.inject, s)] for s in plan.seeds]
    row.after = [results[_key(subject, plan.variant, plan.inject, s)] for s in plan.seeds]
    first_before, first_after = row.before[0], row.after[0]
    kind = "outlier" if plan.inject else "spike"
    crash = judge_crash(
        first_before.status, first_before.describe_problem(), first_after.status, first_after.describe_problem(), kind
    )
    if crash is not None:
        row.judgement = crash
        return row
    before = [r.steps for r in row.before if r.ok]
    after = [r.steps for r in row.after if r.ok]
    if plan.inject:
        row.judgement = judge_outlier(before, after, options.inject_step, options.inject_factor)
    else:
        findings = [plan.finding] if plan.finding else subject.program.fixable()
        row.judgement = judge_spike(
            before,
            after,
            symptom_direction(findings),
            [r.complete_last for r in row.before if r.ok],
            [r.complete_last for r in row.after if r.ok],
        )
        if not plan.finding and row.judgement.verdict == "failed" and all(is_clip_fix(f) for f in subject.program.fixable()):
            row.judgement.reason += (
                "; a clip does not change the loss a step computes, so it cannot remove a spike that comes from the "
                "loss normalization or the partial last batch (see LL1xx/LL2xx)"
            )
    return row


def verify(
    subjects: list[Subject],
    options: HarnessOptions,
    progress: Callable[[RunSpec, str, float, int, int], None] | None = None,
) -> list[Subject]:
    """Train and judge every subject's fixes; fills ``subject.rows``."""
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

        run(_specs(plans, lambda plan: plan.seeds))
        rows = {id(plan): _judge(plan, results, options) for plan in plans}
        undecided = [plan for plan in plans if plan.fixed_judgement is None and not rows[id(plan)].judgement.decisive]
        if undecided:
            for plan in undecided:
                plan.seeds = (0, *EXTRA_SEEDS)
            run(_specs(undecided, lambda plan: EXTRA_SEEDS))
            for plan in undecided:
                rows[id(plan)] = _judge(plan, results, options)
    for plan in plans:
        row = rows[id(plan)]
        program = plan.subject.program
        clip_only = program is not None and all(is_clip_fix(f) for f in program.fixable())
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
