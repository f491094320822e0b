"""LL301 momentum-without-clipping (PyTorch loops) and LL305 clip-before-unscale.

LL301 starts from every ``optimizer.step()`` (``scaler.step(optimizer)``,
``xm.optimizer_step(optimizer)``), follows the optimizer back to where it was
built (``momentum_flow``) and, when that is a momentum optimizer, looks for
clipping that reaches the step: a clipping call in the stepping function, in a
function it calls, or in one that calls it, or a clamping gradient hook anywhere
in the file. Clipping that only happens when a flag is set whose default is off
(``--clip-grad`` default None) does not count: the finding then goes where that
default is, and the fix sets it.

The fix inserts ``torch.nn.utils.clip_grad_norm_(<params>, max_norm=1.0)`` right
before the step, which is after ``backward()``: inside the ``if`` that steps under
gradient accumulation, after ``scaler.unscale_(optimizer)`` under AMP (inserted
when missing, never twice), inside the closure for ``step(closure)``, and through
the accelerator that prepared the optimizer (it unscales itself).

HF ``TrainingArguments`` clip by default (``max_grad_norm=1.0``); only a
``max_grad_norm <= 0`` with a momentum ``optim`` is a finding here.

LL305 finds a clip under a GradScaler before ``scaler.unscale_``: the threshold is
then applied to gradients multiplied by the loss scale (65536 at the start).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

from losslint.analysis import hf_arguments
from losslint.analysis.names import argument, dotted, keyword, last_part
from losslint.context import FileContext
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, InsertBefore, NodeEdit, RelatedLocation, Severity, cst, set_keyword
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.momentum_common import (
    ADAM,
    Clip,
    Gate,
    Momentum,
    StepSite,
    branch_state,
    clip_of,
    clips_reaching,
    enclosing_statement,
    function_of,
    gate_fix,
    gate_of,
    is_clip_flag,
    is_lightning_module,
    step_sites,
    trains_on_data,
)
from losslint.project import UNKNOWN
from losslint.rules.momentum_flow import (
    Found,
    HelperFact,
    HelperResolver,
    clip_runs,
    helpers_of,
    ModuleMomentum,
    Resolver,
    _same_module,
    is_wrapper_class,
    module_parameters,
    params_owner,
    set_by_other_callers,
)

_REFERENCES = (
    "https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html",
    "https://pytorch.org/docs/stable/notes/amp_examples.html#gradient-clipping",
    "docs/semantics.md §4 (single-spike measurements: SGD momentum 0.9 vs Adam)",
)
# -- the fix ---------------------------------------------------------------------------


def _text(ctx: FileContext, node: ast.expr) -> str:
    return dotted(node) or ctx.text(node)


def _visible(ctx: FileContext, root: ast.expr, site: ast.AST, built_at: ast.AST | None, in_callee: bool = False) -> bool:
    """Can ``root`` (the model the optimizer was built from) be named at the step?"""
    if isinstance(root, ast.Attribute):
        base = root
        while isinstance(base, ast.Attribute):
            base = base.value
        if isinstance(base, ast.Name) and base.id == "self":
            return built_at is None or ctx.enclosing(site, ast.ClassDef) is ctx.enclosing(built_at, ast.ClassDef)
        root = base
    if not isinstance(root, ast.Name):
        return False
    at_site = ctx.values.bindings(root.id, site)
    if built_at is None or in_callee:
        return bool(at_site)  # a parameter of the stepping function, matched by the caller
    at_build = ctx.values.bindings(root.id, built_at)
    if at_site is None and at_build is None:
        return True  # the same name from outside the file (an import, a global of a notebook)
    return bool(at_site) and bool(at_build) and at_site[0].scope is at_build[0].scope


def clip_parameters(ctx: FileContext, found: list[Found], site: StepSite) -> str | None:
    """What the inserted clip clips: exactly what the optimizer steps. ``model.parameters()``
    only where every optimizer the step may hold was built from that module's
    ``.parameters()`` alone, nameable at the step; otherwise the optimizer's own
    parameters (a list of param-group dicts, a consumed generator, a list deleted after
    the build or several modules chained are not clip_grad_norm_'s to take). None when
    neither can be named (a wrapper object that does the step for its optimizer)."""
    texts = set()
    for item in found:
        root = item.params_root
        plain = root is not None and (item.call is None or module_parameters(item.call) is not None)
        if not plain and isinstance(root, ast.Name) and item.call is not None:
            # AdamW(optimizer_grouped_parameters): groups of one model's named_parameters()
            groups = ctx.values.resolve_name(root)
            owner = params_owner(groups) if groups is not None else None
            root, plain = (owner, True) if owner is not None else (root, False)
        if not plain or not _visible(ctx, root, site.call, item.call, item.params_in_callee):
            texts = set()
            break
        texts.add(f"{_text(ctx, root)}.parameters()")
    if len(texts) == 1:
        return texts.pop()
    if any(f.wrapped for f in found):
        return None
    return f'[p for group in {_text(ctx, site.optimizer)}.param_groups for p in group["params"]]'


def _unscaled_already(ctx: FileContext, site: StepSite, function: ast.AST) -> bool:
    optimizer = _text(ctx, site.optimizer)
    for call in ast.walk(function):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "unscale_"
            and call.args
            and _text(ctx, call.args[0]) == optimizer
        ):
            return True
    return False


def _closure_return(ctx: FileContext, site: StepSite) -> ast.Return | None:
    """The ``return loss`` of the closure handed to ``step(closure)``."""
    if not isinstance(site.closure, ast.Name):
        return None
    scope = function_of(ctx, site.call)
    for node in ast.walk(scope):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == site.closure.id:
            last = node.body[-1]
            return last if isinstance(last, ast.Return) else None
    return None


def _owns_its_lines(ctx: FileContext, statement: ast.stmt) -> bool:
    """Nothing but this statement (and a comment) on its lines: ``loss.backward(); opt.step()``
    or ``if ok: opt.step()`` leave no line to insert a clip before."""
    lines = ctx.source.splitlines()
    if statement.end_lineno is None or statement.end_col_offset is None or statement.end_lineno > len(lines):
        return False
    first, last = lines[statement.lineno - 1], lines[statement.end_lineno - 1]
    before = first.encode("utf-8")[: statement.col_offset].decode("utf-8", "replace")
    after = last.encode("utf-8")[statement.end_col_offset:].decode("utf-8", "replace").strip()
    return not before.strip() and (not after or after.startswith("#"))


def insert_clip_fix(ctx: FileContext, found: list[Found], site: StepSite) -> Fix | None:
    max_norm = repr(float(ctx.settings.clip_max_norm))
    function = function_of(ctx, site.call)
    params = clip_parameters(ctx, found, site)
    if params is None:
        return None
    anchor: ast.stmt | None
    if site.closure is not None:
        anchor = _closure_return(ctx, site)
        where = "inside the closure, after backward()"
    else:
        anchor = enclosing_statement(ctx, site.call)
        where = "before step()"
    if anchor is None or isinstance(anchor, (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef)):
        return None
    if not _owns_its_lines(ctx, anchor):
        return None
    prepared = next((f for f in found if f.accelerator is not None), None)
    statements: list[str] = []
    imports: tuple[str, ...] = ()
    if prepared is not None:
        accelerator = _text(ctx, prepared.accelerator)
        clip = f"{accelerator}.clip_grad_norm_({params}, max_norm={max_norm})"
        function_text = ctx.source if function is ctx.tree else ctx.text(function)
        if "accumulate(" in function_text or "gradient_accumulation" in function_text:
            clip = f"if {accelerator}.sync_gradients:\n    {clip}\n"
        statements.append(clip)
        description = f"clip gradients with {accelerator}.clip_grad_norm_(max_norm={max_norm}) {where}"
    else:
        if site.scaler is not None and not _unscaled_already(ctx, site, function):
            statements.append(f"{_text(ctx, site.scaler)}.unscale_({_text(ctx, site.optimizer)})")
        statements.append(f"torch.nn.utils.clip_grad_norm_({params}, max_norm={max_norm})")
        imports = ("import torch",)
        description = f"clip gradients to max_norm={max_norm} {where}"
        if len(statements) == 2:
            description = f"unscale, then clip gradients to max_norm={max_norm} {where}"
    return Fix(description, Applicability.UNSAFE, (InsertBefore(ctx.span(anchor), tuple(statements)),), imports)


def clip_root(ctx: FileContext, clip: Clip) -> str | None:
    """Whose parameters a clip clips: ``discriminator`` in
    ``clip_grad_norm_(discriminator.parameters(), 1.0)``."""
    target = argument(clip.call, "parameters", 0)
    if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and target.func.attr == "parameters":
        return dotted(target.func.value)
    return dotted(target) if isinstance(target, (ast.Name, ast.Attribute)) else None


def optimizer_root(found: list[Found]) -> str | None:
    roots = {dotted(f.params_root) for f in found if f.params_root is not None}
    return roots.pop() if len(roots) == 1 else None


def _single_step(ctx: FileContext, node: ast.AST) -> bool:
    """A step at a script's top level in no loop (``if __name__ == "__main__":`` smoke
    code that steps once on random tensors): no sequence of batches, so nothing for a
    momentum to carry a spike into."""
    parent = ctx.parents.get(node)
    while parent is not None:
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        parent = ctx.parents.get(parent)
    return True


def _optimizes_inputs(ctx: FileContext, build: ast.Call) -> bool:
    """``Adam([target])`` with ``target = content.clone().requires_grad_(True)``: the
    optimizer updates tensors made trainable by hand (an image in neural style
    transfer, an adversarial input), not a model's parameters, so there are no
    batches whose size could vary and no per-epoch step to carry on."""
    params = build.args[0] if build.args else None
    if not isinstance(params, (ast.List, ast.Tuple)) or not params.elts:
        return False
    for element in params.elts:
        if not isinstance(element, ast.Name):
            return False
        bindings = ctx.values.bindings(element.id, build) or []
        values = [b.value for b in bindings if b.value is not None]
        if not values or not all(_made_trainable(v) for v in values):
            return False
    return True


def _made_trainable(value: ast.expr) -> bool:
    for node in ast.walk(value):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "requires_grad_":
            return True
        if isinstance(node, ast.Call) and any(
            kw.arg == "requires_grad" and isinstance(kw.value, ast.Constant) and kw.value.value is True for kw in node.keywords
        ):
            return not (isinstance(node.func, ast.Attribute) and node.func.attr == "Parameter")
    return False


def _caller_decides(ctx: FileContext, gate: Gate | None, clip: Clip) -> Gate | None:
    """No gate where its flag is a parameter of the stepping function that the callers
    in other files pass (``max_norm: float = 0`` in engine.py, handed
    ``args.clip_max_norm`` by main.py): the default never runs there."""
    if gate is None or not isinstance(gate.flag, ast.Name):
        return gate
    bindings = ctx.values.bindings(gate.flag.id, clip.call) or []
    for binding in bindings:
        if binding.parameter is not None and isinstance(binding.scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if set_by_other_callers(ctx, binding.scope, gate.flag.id):
                return None
    return gate


def judge_step(
    rule: Rule, ctx: FileContext, resolver: Resolver, site: StepSite, found: list[Found], other_roots: frozenset[str] = frozenset()
) -> Finding | None:
    """The finding (with its fix) for a momentum optimizer's step, or None when
    clipping reaches it. ``other_roots``: the models of the other optimizers stepped
    in the same function; a clip of one of those (a GAN's discriminator) does not
    protect this optimizer."""
    if not found or any(f.managed for f in found) or not any(f.momentum.is_momentum for f in found):
        return None
    if not trains_on_data(ctx, resolver, site.call) or _single_step(ctx, site.call):
        return None
    if all(f.call is not None and _optimizes_inputs(ctx, f.call) for f in found):
        return None  # style transfer, adversarial inputs: no model trained on batches
    own_root = optimizer_root(found)
    clips = [
        c for c in clips_reaching(ctx, resolver, site.call)
        if (root := clip_root(ctx, c)) is None or root == own_root or root not in other_roots
    ]
    gates = [_caller_decides(ctx, gate_of(ctx, clip, step=site.call), clip) for clip in clips]
    if clips and any(g is None for g in gates):
        return None  # clipping that runs with the defaults (or that we cannot rule out)
    choice = Choice(ctx, found)
    momentum, subject, severity = choice.momentum, choice.subject(), choice.severity
    related = built_where(ctx, found)
    if clips:
        gate = max((g for g in gates if g is not None), key=lambda g: is_clip_flag(ctx.text(g.flag)))
        node, fix = gate_fix(ctx, gate, "the clip at line %d runs" % clips[0].call.lineno)
        message = (
            f"{subject} steps with gradient clipping only when {ctx.text(gate.flag)} is set, and "
            f"{gate.describe(ctx)}: with the defaults nothing is clipped. {momentum.describe()}"
        )
        related.append(ctx.related(clips[0].call, f"the clip, which runs only when {ctx.text(gate.flag)} is set"))
        if node is not None:
            related.append(ctx.related(site.call, "the optimizer's step"))
        return ctx.finding(rule, node if node is not None else clips[0].call, message, fix, severity=severity, related=related)
    fix = insert_clip_fix(ctx, found, site)
    message = f"{subject} steps with no gradient clipping before it: {momentum.describe()}"
    return ctx.finding(rule, site.call, message, fix, severity=severity, related=related)


def built_where(ctx: FileContext, found: list[Found]) -> list[RelatedLocation]:
    """Where each optimizer a step may hold is built: in this file, or by a builder of
    another file (the line its facts kept)."""
    related: list[RelatedLocation] = []
    seen: set[tuple[str, int]] = set()
    for item in found:
        if not item.momentum.is_momentum:
            continue
        if item.call is not None and ("", item.call.lineno) not in seen:
            seen.add(("", item.call.lineno))
            related.append(ctx.related(item.call, f"{item.momentum.optimizer} is built here"))
        elif item.related_path and item.related_line and (item.related_path, item.related_line) not in seen:
            seen.add((item.related_path, item.related_line))
            related.append(RelatedLocation.at(display_path(Path(item.related_path)), item.related_line, f"{item.momentum.optimizer} is built here"))
    return related


def _selection(item: Found) -> tuple[object, ast.expr | None]:
    """A builder's branch in another file: selected by this file's argument or not."""
    if item.selected is None:
        return UNKNOWN, None
    return (True, None) if item.selected else (False, item.selector)


class Choice:
    """What one ``step()`` may step: every optimizer the expression can hold, which of
    them the defaults select (``if args.adam: Adam(...) else: RMSprop(...)`` with
    ``--adam`` off selects RMSprop), and how to name them all, each with the line
    that builds it, in the message."""

    def __init__(self, ctx: FileContext, found: list[Found]) -> None:
        self.ctx = ctx
        self.found = found
        states = {id(f): branch_state(ctx, f.call) if f.call is not None else _selection(f) for f in found}
        self.states = states
        by_default = [f for f in found if states[id(f)][0] is True]
        self.default = by_default[0] if len(by_default) == 1 else None
        momentous = [f for f in found if f.momentum.is_momentum]
        chosen = self.default if self.default is not None and self.default.momentum.is_momentum else None
        self.momentum = chosen.momentum if chosen else max((f.momentum for f in momentous), key=lambda m: m.severity.rank)
        # a momentum optimizer only on a branch the defaults do not take, or beside
        # optimizers without momentum: a risk for those who choose it, not a certainty
        self.optional = chosen is None and len(momentous) < len(found)

    @property
    def severity(self) -> Severity:
        return Severity.INFO if self.optional else self.momentum.severity

    def _one(self, item: Found) -> str:
        if item.momentum.is_momentum:
            text = f"{item.momentum.optimizer} {item.origin}" if item.origin else item.momentum.optimizer
        else:
            text = f"{item.momentum.optimizer} (no momentum)"  # its line is not a finding's place
        state, flag = self.states[id(item)]
        if state is False and flag is not None:
            text += f", not chosen with the default {self.ctx.text(flag)}={self.ctx.values.value(flag)!r}"
        elif item is self.default and len(self.found) > 1:
            text += ", the default"
        return text

    def subject(self) -> str:
        items = list(dict.fromkeys(self._one(f) for f in self.found))
        if len(items) == 1:
            only = self.found[0]
            return f"{only.momentum.optimizer} ({only.origin})" if only.origin else only.momentum.optimizer
        return f"the optimizer (one of: {'; '.join(items)})"


# -- an optimizer handed to another file's training function ------------------------------


def stepper_of(ctx: FileContext, call: ast.Call) -> tuple[str, tuple, str, str] | None:
    """The module-level function of another project file that ``call`` reaches and that
    steps an optimizer it is handed: (its name, its stepper fact, its module, its file), following
    imports and the re-exports of packages (``from utils import train`` where
    ``utils/__init__.py`` does ``from .train_utils import train``)."""
    qual = ctx.qualname(call.func) or ""
    owner, _, name = qual.rpartition(".")
    if not owner:
        return None
    own_key = ctx.project.resolve(ctx.module, ctx.file or None)
    targets, seen = [owner], set()
    for _ in range(4):
        following = []
        for module in targets:
            key = ctx.project.resolve(module, ctx.file or None)
            if key is None or key == own_key or key in seen:
                continue
            seen.add(key)
            facts = ctx.project.modules[key]
            record = facts.get(ModuleMomentum)
            if record is None:
                continue
            if name in record.steppers:
                return name, record.steppers[name], facts.module, key
            following.extend(record.imported_from.get(name, ()))
        targets = following
    return None


def handed_findings(rule: Rule, ctx: FileContext, resolver: Resolver) -> Iterable[Finding]:
    """``train(args, model, loader, optimizer)`` with ``train`` in another file stepping it
    unclipped, reached through a re-export (``from utils import train``, ``train`` being
    ``utils/train_utils.py``'s): the stepping file cannot tell it is handed this optimizer,
    so the finding goes where the optimizer is built, naming the step (no fix: the clip
    belongs in the other file). Where the import names the defining module, the stepping
    file reports it at its step, with the fix, and this one stays quiet."""
    reported: set[int] = set()
    for call in ctx.nodes_of(ast.Call):
        if not isinstance(call.func, (ast.Name, ast.Attribute)) or "." not in (ctx.qualname(call.func) or ""):
            continue
        stepper = stepper_of(ctx, call)
        if stepper is None:
            continue
        name, (param, index, line, clipped), module, stepper_path = stepper
        if _same_module(ctx.qualname(call.func) or "", module):
            continue  # the step's own file judges it (momentum_flow's passes)
        argument_node = argument(call, param, index)
        if clipped or argument_node is None:
            continue
        found = [f for f in resolver.resolve(argument_node) if f.call is not None or f.origin]
        if not found or any(f.managed for f in found) or not any(f.momentum.is_momentum for f in found):
            continue
        choice = Choice(ctx, found)
        built = {id(f.call): f.call for f in found}
        node = next(iter(built.values())) if len(built) == 1 and found[0].call is not None else call
        if id(node) in reported:
            continue
        reported.add(id(node))
        message = (
            f"{choice.subject()} is stepped by {name}() at {module.replace('.', '/')}.py:{line} (called at line "
            f"{call.lineno}) with no gradient clipping before it: {choice.momentum.describe()}"
        )
        related = [] if node is call else [ctx.related(call, f"the optimizer is handed to {name}() here")]
        if stepper_path:
            related.append(RelatedLocation.at(display_path(Path(stepper_path)), line, f"{name}() steps it here, unclipped"))
        yield ctx.finding(rule, node, message, None, severity=choice.severity, related=related)


# -- a helper object that does the step (a loss scaler) ----------------------------------------


def _helper_calls(ctx: FileContext) -> Iterable[ast.Call]:
    """Calls of an object (``loss_scaler(...)``, ``self.loss_scaler(...)``) with at least
    an argument for the loss and one for the optimizer: a helper's ``__call__``."""
    for call in ctx.nodes_of(ast.Call):
        if isinstance(call.func, (ast.Name, ast.Attribute)) and len(call.args) + len(call.keywords) >= 2:
            yield call


def helper_findings(rule: Rule, ctx: FileContext, resolver: Resolver) -> Iterable[Finding]:
    """``loss_scaler(loss, optimizer, parameters=model.parameters())`` where the helper's
    ``__call__`` does the backward and the step and clips only when ``clip_grad`` is
    passed (timm's ``NativeScaler``, ``clip_grad=None``): reported at the call, which
    decides. A ``clip_grad`` passed from a flag whose default is None is the
    flag-conditional case: reported where that default is, when it is in this file."""
    helpers = HelperResolver(ctx, helpers_of(ctx, resolver))
    for call in _helper_calls(ctx):
        if isinstance(call.func, ast.Name) and call.func.id in helpers.functions():
            continue  # a function of this file, not an object
        held = [h for h in helpers.resolve(call.func) if not h.fact.clipped]
        if not held:
            continue
        helper = held[0]
        fact = helper.fact
        given = argument(call, fact.optimizer, fact.optimizer_index)
        found = [f for f in resolver.resolve(given) if f.call is not None or f.origin] if given is not None else []
        if not found or any(f.managed for f in found) or not any(f.momentum.is_momentum for f in found):
            continue
        clips = clips_reaching(ctx, resolver, call)
        if any(_caller_decides(ctx, gate_of(ctx, clip, step=call), clip) is None for clip in clips):
            continue  # clipping of its own that runs with the defaults
        where = f"{display_path(Path(helper.path))}:{fact.line}" if helper.path else f"line {fact.line}"
        choice = Choice(ctx, found)
        related = built_where(ctx, found)
        if helper.path:
            related.append(RelatedLocation.at(display_path(Path(helper.path)), fact.line, f"{helper.name}() steps it here"))
        else:
            related.append(RelatedLocation.at(ctx.path, fact.line, f"{helper.name}() steps it here"))
        stepped = f"{choice.subject()} is stepped by {helper.name}() (at {where})"
        if not fact.gate:
            message = f"{stepped}, which never clips the gradients: {choice.momentum.describe()}"
            yield ctx.finding(rule, call, message, None, severity=choice.severity, related=related)
            continue
        passed = argument(call, fact.gate, fact.gate_index)
        if passed is None:
            message = (
                f"{stepped}, which clips only when {fact.gate} is passed, and this call leaves {fact.gate} "
                f"to its default: nothing is clipped. {choice.momentum.describe()}"
            )
            yield ctx.finding(rule, call, message, _helper_fix(ctx, call, fact), severity=choice.severity, related=related)
            continue
        value = ctx.values.value(passed)
        if value is UNKNOWN or clip_runs(fact.gate_test, value):
            continue
        gate = Gate(passed, value)
        node, fix = gate_fix(ctx, gate, f"{helper.name}() clips")
        message = (
            f"{stepped}, which clips only when {fact.gate} is set, and this call passes {ctx.text(passed)}, "
            f"which defaults to {value!r}: with the defaults nothing is clipped. {choice.momentum.describe()}"
        )
        if node is not None:
            related.append(ctx.related(call, f"{helper.name}() is called here with {fact.gate}={ctx.text(passed)}"))
        yield ctx.finding(rule, node if node is not None else call, message, fix, severity=choice.severity, related=related)


def _helper_fix(ctx: FileContext, call: ast.Call, fact: HelperFact) -> Fix | None:
    """Pass ``clip_grad=1.0``, where the call passes what the clip then reads
    (``parameters``: ``NativeScaler`` asserts it is not None)."""
    if any(argument(call, name, None) is None for name in fact.clip_inputs):
        return None
    max_norm = repr(float(ctx.settings.clip_max_norm))
    edit = NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, fact.gate, max_norm))
    return Fix(f"pass {fact.gate}={max_norm}", Applicability.UNSAFE, (edit,))


# -- Hugging Face Trainer -----------------------------------------------------------------



def hf_findings(rule: Rule, ctx: FileContext) -> Iterable[Finding]:
    for call in ctx.nodes_of(ast.Call):
        qual = ctx.qualname(call.func) or ""
        if last_part(qual) not in hf_arguments.TRANSFORMERS_ARGUMENTS or not ("transformers" in qual or "trl" in qual or "." not in qual):
            continue
        max_grad_norm = keyword(call, "max_grad_norm")
        if max_grad_norm is None:
            continue  # the default, 1.0: the Trainer clips
        value = ctx.values.value(max_grad_norm.value)
        optim = keyword(call, "optim")
        optim_value = ctx.values.value(optim.value) if optim is not None else hf_arguments.DEFAULT_OPTIM
        if isinstance(optim_value, str) and optim_value.lower().startswith(hf_arguments.PLAIN_OPTIMS):
            continue
        gate = None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            continue
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            if not isinstance(max_grad_norm.value, ast.Constant):
                gate = Gate(max_grad_norm.value, value)
        else:
            continue  # not known statically
        momentum = Momentum(f"the Trainer's {optim_value if isinstance(optim_value, str) else 'optimizer'}", ADAM, 0.9, 0.999)
        max_norm = repr(float(ctx.settings.clip_max_norm))
        if gate is not None:
            node, fix = gate_fix(ctx, gate, "the Trainer clips")
            if fix is None:
                node = max_grad_norm.value
                fix = Fix(f"set max_grad_norm={max_norm}", Applicability.UNSAFE, (NodeEdit(ctx.span(max_grad_norm.value), "BaseExpression", lambda _n: cst.parse_expression(max_norm)),))
            message = f"TrainingArguments(max_grad_norm={ctx.text(max_grad_norm.value)}) and {gate.describe(ctx)}: the Trainer clips only when max_grad_norm > 0. {momentum.describe()}"
            yield ctx.finding(rule, node, message, fix, severity=Severity.INFO)
            continue
        edit = NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, "max_grad_norm", max_norm))
        fix = Fix(f"set max_grad_norm={max_norm} (the Trainer's default)", Applicability.UNSAFE, (edit,))
        message = (
            f"TrainingArguments(max_grad_norm={ctx.text(max_grad_norm.value)}) turns off the Trainer's gradient clipping "
            f"(on by default, max_grad_norm=1.0): {momentum.describe()}"
        )
        yield ctx.finding(rule, max_grad_norm.value, message, fix, severity=Severity.INFO)


# -- the rules ---------------------------------------------------------------------------


# A project's own torch optimizers (fairseq's optim/adam.py), for the rule cases.
_OWN_TORCH_OPTIMIZERS = """
import torch

class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

class Adagrad(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, eps=1e-10):
        super().__init__(params, dict(lr=lr, eps=eps))
"""


@register
class MomentumWithoutClipping(Rule):
    code = "LL301"
    chain = ChainRole.MOMENTUM
    name = "momentum-without-clipping"
    severity = Severity.WARNING
    triggers = ("step(", "optimizer_step(", ".step_", "TrainingArguments", "optim")
    fix_applicability = Applicability.UNSAFE
    summary = "A PyTorch momentum optimizer (SGD with momentum, the Adam family, Lion, ...) steps with no gradient clipping on the way."
    why = (
        "A momentum optimizer keeps a running average of past gradients. One bad gradient (the small last batch of "
        "an epoch, a loss that scales as 1/batch size, an outlier) enters that average and keeps moving the "
        "weights: SGD with momentum μ carries it on for ~1/(1-μ) steps (10 at μ=0.9); Adam bounds the step but the "
        "inflated second moment shrinks the updates for ~1/(1-β2) steps. Clipping the gradient norm before "
        "step() caps what one batch can do. Clipping behind a flag whose default is off protects nobody who "
        "runs with the defaults. Severity: warning for SGD with momentum, info for Adam-type and Lion-type "
        "optimizers (bounded steps), and info where momentum is only one choice of an option (the message names "
        "each optimizer the step may hold, with its line, and the one the defaults choose)."
    )
    fix_doc = (
        "Inserts torch.nn.utils.clip_grad_norm_(<the optimizer's parameters>, max_norm=1.0) after backward() and "
        "right before step(); the parameters are model.parameters() only where the optimizer was built from "
        "exactly that, else the optimizer's own (its param_groups); no fix where step() shares its line with "
        "other code. Under AMP after scaler.unscale_(optimizer) (added once when missing), under "
        "gradient accumulation inside the `if` that steps, inside the closure for step(closure), through "
        "accelerator.clip_grad_norm_ when accelerate prepared the optimizer. For a clip behind a flag, sets the "
        "flag's default (add_argument(default=1.0), and a help text that states the old default). A loss-scaler "
        "helper that does the backward and the step (timm's NativeScaler: loss_scaler(loss, optimizer, "
        "clip_grad=None, parameters=...)) called without clip_grad: passes clip_grad=1.0 at the call, only where "
        "the call passes what the helper's clip reads (parameters). For HF TrainingArguments(max_grad_norm=0), sets 1.0. "
        "A DeepSpeed JSON config that deepspeed.initialize(config=...) reads, whose optimizer has momentum and "
        "which lacks gradient_clipping (or sets 0), is reported in the JSON and fixed there (\"gradient_clipping\": "
        "1.0), keeping its layout; DeepSpeed releases after its PR #8068 (June 2026) clip at 1.0 when the key is "
        "absent, so the finding names that. The max "
        "norm is [tool.losslint] clip-max-norm. Unsafe: it changes training (the clip is rarely active in a "
        "healthy run, but it is a new hyperparameter)."
    )
    references = _REFERENCES
    flagged = (
        Flagged(
            """
            import torch


            class NativeScaler:
                def __init__(self):
                    self._scaler = torch.cuda.amp.GradScaler()

                def __call__(self, loss, optimizer, clip_grad=None, parameters=None):
                    self._scaler.scale(loss).backward()
                    if clip_grad is not None:
                        self._scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
                    self._scaler.step(optimizer)
                    self._scaler.update()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            loss_scaler = NativeScaler()
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_scaler(loss_fn(model(x), y), optimizer, parameters=model.parameters())
            """,
            fixed="""
            import torch


            class NativeScaler:
                def __init__(self):
                    self._scaler = torch.cuda.amp.GradScaler()

                def __call__(self, loss, optimizer, clip_grad=None, parameters=None):
                    self._scaler.scale(loss).backward()
                    if clip_grad is not None:
                        self._scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
                    self._scaler.step(optimizer)
                    self._scaler.update()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            loss_scaler = NativeScaler()
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_scaler(loss_fn(model(x), y), optimizer, parameters=model.parameters(), clip_grad=1.0)
            """,
            message_contains=("is stepped by NativeScaler()", "leaves clip_grad to its default"),
            unsafe=True,
        ),
        Flagged(
            """
            import torch


            def train_step(batch, **kwargs):
                kwargs["optimizer"].zero_grad()
                kwargs["loss_fn"](kwargs["model"](batch[0]), batch[1]).backward()
                kwargs["optimizer"].step()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for batch in train_loader:
                train_step(batch, model=model, optimizer=optimizer, loss_fn=loss_fn)
            """,
            fixed="""
            import torch


            def train_step(batch, **kwargs):
                kwargs["optimizer"].zero_grad()
                kwargs["loss_fn"](kwargs["model"](batch[0]), batch[1]).backward()
                torch.nn.utils.clip_grad_norm_([p for group in kwargs["optimizer"].param_groups for p in group["params"]], max_norm=1.0)
                kwargs["optimizer"].step()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for batch in train_loader:
                train_step(batch, model=model, optimizer=optimizer, loss_fn=loss_fn)
            """,
            message_contains=("SGD (built at line 10)",),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            model = nn.Linear(20, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
            """,
            fixed="""
            import torch
            from torch import nn

            model = nn.Linear(20, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
            """,
            message_contains=("momentum 0.9", "~10 steps"),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from accelerate import Accelerator

            accelerator = Accelerator()
            no_decay = ["bias", "LayerNorm.weight"]
            optimizer_grouped_parameters = [
                {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
                {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
            ]
            optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=2e-5)
            model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
            for batch in loader:
                loss = model(**batch).loss
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            """,
            fixed="""
            import torch
            from accelerate import Accelerator

            accelerator = Accelerator()
            no_decay = ["bias", "LayerNorm.weight"]
            optimizer_grouped_parameters = [
                {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
                {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
            ]
            optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=2e-5)
            model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
            for batch in loader:
                loss = model(**batch).loss
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
                optimizer.zero_grad()
            """,
            message_contains=("AdamW (built at line 10)",),
            unsafe=True,
        ),
        Flagged(
            """
            import argparse
            import torch.optim as optim

            parser = argparse.ArgumentParser()
            parser.add_argument("--momentum", type=float, default=0.9)
            args = parser.parse_args()

            def train(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    model(x).loss(y).backward()
                    optimizer.step()

            def main(model, loader):
                optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=args.momentum)
                train(model, loader, optimizer)
            """,
            fixed="""
            import argparse
            import torch.optim as optim
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--momentum", type=float, default=0.9)
            args = parser.parse_args()

            def train(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    model(x).loss(y).backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                    optimizer.step()

            def main(model, loader):
                optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=args.momentum)
                train(model, loader, optimizer)
            """,
            message_contains=("args.momentum defaults to 0.9",),
            unsafe=True,
        ),
        Flagged(
            """
            import torch

            scaler = torch.amp.GradScaler("cuda")
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
            for step, (x, y) in enumerate(loader):
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(x, y) / accum_steps
                scaler.scale(loss).backward()
                if (step + 1) % accum_steps == 0:
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
            """,
            fixed="""
            import torch

            scaler = torch.amp.GradScaler("cuda")
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
            for step, (x, y) in enumerate(loader):
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(x, y) / accum_steps
                scaler.scale(loss).backward()
                if (step + 1) % accum_steps == 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
            """,
            message_contains=("AdamW", "β1=0.9", "second moment"),
            unsafe=True,
        ),
        Flagged(
            """
            import argparse
            import torch
            from torch.nn.utils import clip_grad_norm_

            parser = argparse.ArgumentParser()
            parser.add_argument("--clip-grad", type=float, default=None)
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
            for x, y in loader:
                loss = model(x, y)
                optimizer.zero_grad()
                loss.backward()
                if args.clip_grad is not None:
                    clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
            """,
            fixed="""
            import argparse
            import torch
            from torch.nn.utils import clip_grad_norm_

            parser = argparse.ArgumentParser()
            parser.add_argument("--clip-grad", type=float, default=1.0)
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
            for x, y in loader:
                loss = model(x, y)
                optimizer.zero_grad()
                loss.backward()
                if args.clip_grad is not None:
                    clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
            """,
            message_contains=("only when args.clip_grad is set", "defaults to None"),
            unsafe=True,
        ),
        Flagged(
            """
            import torch

            optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

            def closure():
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                return loss

            for x, y in loader:
                optimizer.step(closure)
            """,
            fixed="""
            import torch

            optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

            def closure():
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                return loss

            for x, y in loader:
                optimizer.step(closure)
            """,
            unsafe=True,
        ),
        Flagged(
            """
            from transformers import Trainer, TrainingArguments

            args = TrainingArguments(output_dir="out", learning_rate=5e-5, max_grad_norm=0.0)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            """,
            fixed="""
            from transformers import Trainer, TrainingArguments

            args = TrainingArguments(output_dir="out", learning_rate=5e-5, max_grad_norm=1.0)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            """,
            message_contains=("turns off the Trainer's gradient clipping",),
            unsafe=True,
        ),
        Flagged(
            """
            import argparse
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--adam", action="store_true")
            args = parser.parse_args()
            if args.adam:
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
            else:
                optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            fixed="""
            import argparse
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--adam", action="store_true")
            args = parser.parse_args()
            if args.adam:
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
            else:
                optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
            """,
            message_contains=(
                "Adam built at line 8, not chosen with the default args.adam=False",
                "RMSprop (no momentum), the default",
                "β1=0.5",
            ),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from optim import ScheduledOptim

            def train_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    loss_fn(model(x), y).backward()
                    optimizer.step_and_update_lr()

            optimizer = ScheduledOptim(torch.optim.Adam(net.parameters(), betas=(0.9, 0.98)), 2.0, 512, 4000)
            train_epoch(net, loader, optimizer)
            """,
            files=(
                (
                    "optim.py",
                    """
                    class ScheduledOptim:
                        def __init__(self, optimizer, lr_mul, d_model, n_warmup_steps):
                            self._optimizer = optimizer

                        def step_and_update_lr(self):
                            self._optimizer.step()
                    """,
                ),
            ),
            fixed="""
            import torch
            from optim import ScheduledOptim

            def train_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    loss_fn(model(x), y).backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                    optimizer.step_and_update_lr()

            optimizer = ScheduledOptim(torch.optim.Adam(net.parameters(), betas=(0.9, 0.98)), 2.0, 512, 4000)
            train_epoch(net, loader, optimizer)
            """,
            message_contains=("Adam (built at line 10)", "β2=0.98", "~50 steps"),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
            optimizer = torch.optim.AdamW(groups, lr=1e-4)
            for batch in loader:
                model(**batch).loss.backward()
                optimizer.step()
            """,
            fixed="""
            import torch
            groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
            optimizer = torch.optim.AdamW(groups, lr=1e-4)
            for batch in loader:
                model(**batch).loss.backward()
                torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm=1.0)
                optimizer.step()
            """,
            unsafe=True,
        ),
        Flagged(
            """
            import itertools
            import torch
            optimizer = torch.optim.Adam(itertools.chain(encoder.parameters(), decoder.parameters()), lr=1e-3)
            for x in loader:
                decoder(encoder(x)).mean().backward(); optimizer.step()
            """,
            fixed=None,
            message_contains=("Adam (built at line 3)",),
        ),
        Flagged(
            """
            import argparse
            import torch
            parser = argparse.ArgumentParser()
            parser.add_argument("--clip-grad", type=float, default=None, help="Clip gradient norm (default: None, no clipping)")
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                if args.clip_grad:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
            """,
            fixed="""
            import argparse
            import torch
            parser = argparse.ArgumentParser()
            parser.add_argument("--clip-grad", type=float, default=1.0, help="Clip gradient norm (default: 1.0)")
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                if args.clip_grad:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
            """,
            message_contains=("only when args.clip_grad is set",),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from utils import train

            model = build_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            for epoch in range(3):
                train(model, loader, optimizer, epoch)
            """,
            files=(
                ("utils.py", "from train_utils import setup, train\n"),
                (
                    "train_utils.py",
                    """
                    def train(model, loader, optimizer, epoch):
                        for batch in loader:
                            optimizer.zero_grad()
                            model(**batch).loss.backward()
                            optimizer.step()
                    """,
                ),
            ),
            fixed=None,
            message_contains=("AdamW (built at line 5) is stepped by train() at train_utils.py:5",),
        ),
        Flagged(
            """
            import torch
            from optim import WarmupAdam

            model = build_model()
            opt = WarmupAdam(model.parameters(), lr=1e-3, warmup=100)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                opt.step()
            """,
            files=(
                (
                    "optim.py",
                    """
                    import torch

                    class WarmupAdam(torch.optim.Adam):
                        def __init__(self, params, lr, warmup):
                            super().__init__(params, lr=lr)
                    """,
                ),
            ),
            fixed="""
            import torch
            from optim import WarmupAdam

            model = build_model()
            opt = WarmupAdam(model.parameters(), lr=1e-3, warmup=100)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                opt.step()
            """,
            message_contains=("WarmupAdam (derived from Adam)",),
            unsafe=True,
        ),
        Flagged(
            """
            import argparse
            from optim import make_optimizer

            parser = argparse.ArgumentParser()
            parser.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam"])
            args = parser.parse_args()
            optimizer = make_optimizer(model, args.optimizer)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            files=(
                (
                    "optim.py",
                    """
                    import torch

                    def make_optimizer(model, name="Adam", lr=0.01):
                        if name == "Adam":
                            return torch.optim.Adam(model.parameters(), lr=lr)
                        elif name == "SGD":
                            return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
                        raise ValueError(name)
                    """,
                ),
            ),
            fixed="""
            import argparse
            from optim import make_optimizer
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam"])
            args = parser.parse_args()
            optimizer = make_optimizer(model, args.optimizer)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm=1.0)
                optimizer.step()
            """,
            message_contains=(
                "Adam built by make_optimizer() in optim.py, called at line 7, not chosen with the default args.optimizer='SGD'",
                "SGD built by make_optimizer() in optim.py, called at line 7, the default",
                "SGD with momentum 0.9",
            ),
            unsafe=True,
        ),
        Flagged(
            """
            import argparse
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--do_train", action="store_true")
            parser.add_argument("--clip_grad", type=float, default=0.0)
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            if args.do_train:
                for x, y in loader:
                    loss = model(x, y)
                    loss.backward()
                    if args.clip_grad > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                    optimizer.step()
            """,
            fixed="""
            import argparse
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--do_train", action="store_true")
            parser.add_argument("--clip_grad", type=float, default=1.0)
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            if args.do_train:
                for x, y in loader:
                    loss = model(x, y)
                    loss.backward()
                    if args.clip_grad > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                    optimizer.step()
            """,
            message_contains=("only when args.clip_grad is set", "defaults to 0.0"),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from model import SpeakerEncoder

            model = SpeakerEncoder()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            for batch in loader:
                loss = model.loss(model(batch))
                loss.backward()
                model.do_gradient_ops()
                optimizer.step()
            """,
            fixed="""
            import torch
            from model import SpeakerEncoder

            model = SpeakerEncoder()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            for batch in loader:
                loss = model.loss(model(batch))
                loss.backward()
                model.do_gradient_ops()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
            """,
            files=(
                (
                    "model.py",
                    """
                    import torch
                    from torch.nn.utils import clip_grad_norm_

                    class SpeakerEncoder(torch.nn.Module):
                        def do_gradient_ops(self, clip=None):
                            self.similarity_weight.grad *= 0.01
                            if clip is not None:
                                clip_grad_norm_(self.parameters(), clip)
                    """,
                ),
            ),
            message_contains=("no gradient clipping",),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            from optim import Adam

            optimizer = Adam(model.parameters(), lr=5e-4)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            fixed="""
            import torch
            from optim import Adam

            optimizer = Adam(model.parameters(), lr=5e-4)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
            """,
            files=(("optim.py", _OWN_TORCH_OPTIMIZERS),),
            message_contains=("Adam (derived from torch.optim.Optimizer)", "β1=0.9, β2=0.98"),
            unsafe=True,
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            from optim import Adam, Adagrad

            optimizer = Adam(model.parameters(), lr=5e-4, betas=(0.0, 0.98))
            sparse = Adagrad(model.parameters(), lr=0.1)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
                sparse.step()
            """,
            files=(("optim.py", _OWN_TORCH_OPTIMIZERS),),
            why="the project's own Adam built with β1=0 keeps no first moment; its own Adagrad takes no momentum at all",
        ),
        Quiet(
            """
            import torch
            from model import SpeakerEncoder

            model = SpeakerEncoder()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            for batch in loader:
                loss = model.loss(model(batch))
                loss.backward()
                model.do_gradient_ops()
                optimizer.step()
            """,
            files=(
                (
                    "model.py",
                    """
                    import torch
                    from torch.nn.utils import clip_grad_norm_

                    class SpeakerEncoder(torch.nn.Module):
                        def do_gradient_ops(self):
                            self.similarity_weight.grad *= 0.01
                            clip_grad_norm_(self.parameters(), 3, norm_type=2)
                    """,
                ),
            ),
            why="the model's method (in another file) called before the step clips whatever it is passed",
        ),
        Quiet(
            """
            import argparse
            import torch

            parser = argparse.ArgumentParser()
            parser.add_argument("--do_train", action="store_true")
            parser.add_argument("--fp16", action="store_true")
            args = parser.parse_args()
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)
            if args.do_train:
                for batch in train_dataloader:
                    loss = model(*batch)
                    if args.fp16:
                        with amp.scale_loss(loss, optimizer) as scaled_loss:
                            scaled_loss.backward()
                        torch.nn.utils.clip_grad_norm_(amp.master_params(optimizer), 1.0)
                    else:
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
            """,
            why="each branch clips; `if args.do_train:` (off by default) encloses the step too: it decides whether training runs, not whether the clip does",
        ),
        Quiet(
            """
            import torch


            class NativeScaler:
                def __init__(self):
                    self._scaler = torch.cuda.amp.GradScaler()

                def __call__(self, loss, optimizer, clip_grad=None, parameters=None):
                    self._scaler.scale(loss).backward()
                    if clip_grad is not None:
                        self._scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
                    self._scaler.step(optimizer)
                    self._scaler.update()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            loss_scaler = NativeScaler()
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_scaler(loss_fn(model(x), y), optimizer, parameters=model.parameters(), clip_grad=1.0)
            """,
            why="a loss-scaler helper called with clip_grad: its __call__ clips before it steps",
        ),
        Quiet(
            """
            import torch

            def train_one_epoch(model, criterion, loader, optimizer, epoch, max_norm: float = 0):
                for x, y in loader:
                    loss = criterion(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    if max_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                    optimizer.step()
            """,
            why="the clip's threshold defaults to 0 here, but main.py, which hands over the optimizer, passes --clip_max_norm (0.1)",
            files=(
                (
                    "main.py",
                    """
                    import argparse
                    import torch
                    from train import train_one_epoch

                    parser = argparse.ArgumentParser()
                    parser.add_argument("--clip_max_norm", default=0.1, type=float)
                    args = parser.parse_args()
                    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
                    for epoch in range(300):
                        train_one_epoch(model, criterion, loader, optimizer, epoch, args.clip_max_norm)
                    """,
                ),
            ),
        ),
        Quiet(
            """
            import torch

            content = load_image("content.jpg")
            target = content.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([target], lr=0.003, betas=[0.5, 0.999])
            for step in range(2000):
                loss = style_loss(vgg(target), vgg(content))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            """,
            why="the optimizer updates an input made trainable by hand (neural style transfer), not a model trained on batches",
        ),
        Quiet(
            """
            import torch
            from utils import train

            model = build_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            for epoch in range(3):
                train(model, loader, optimizer, epoch)
            """,
            files=(
                ("utils.py", "from train_utils import setup, train\n"),
                (
                    "train_utils.py",
                    """
                    import torch

                    def train(model, loader, optimizer, epoch):
                        for batch in loader:
                            optimizer.zero_grad()
                            model(**batch).loss.backward()
                            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                            optimizer.step()
                    """,
                ),
            ),
            why="the training function a module re-exports clips before it steps",
        ),
        Quiet(
            """
            import torch
            from optim import ScaledSGD

            model = build_model()
            opt = ScaledSGD(model.parameters(), lr=0.1)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                opt.step()
            """,
            files=(("optim.py", "from torch.optim import SGD\n\nclass ScaledSGD(SGD):\n    pass\n"),),
            why="a project class derived from SGD, built without momentum (SGD's default is 0)",
        ),
        Quiet(
            """
            import argparse
            import torch
            from optim import make_optimizer

            parser = argparse.ArgumentParser()
            parser.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam"])
            args = parser.parse_args()
            optimizer = make_optimizer(model, args.optimizer)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            """,
            files=(
                (
                    "optim.py",
                    """
                    import torch

                    def make_optimizer(model, name="Adam", lr=0.01):
                        if name == "Adam":
                            return torch.optim.Adam(model.parameters(), lr=lr)
                        elif name == "SGD":
                            return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
                        raise ValueError(name)
                    """,
                ),
            ),
            why="whichever branch of another file's builder the option selects, the loop clips",
        ),
        Quiet(
            """
            import torch

            def plot_schedule():
                optimizer = torch.optim.Adam(dummy.parameters(), lr=1.0)
                for _ in range(100):
                    optimizer.step()

            def train(model, loader, optimizer):
                for x, y in loader:
                    loss_fn(model(x), y).backward()
                    optimizer.step()

            plot_schedule()
            """,
            why="a learning-rate schedule traced with step() and no backward(): a script's top level does not run every function of its file",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            why="SGD's momentum defaults to 0: no running average to carry a spike on",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.Adam(model.parameters())
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            """,
            why="clip_grad_norm_ before step()",
        ),
        Quiet(
            """
            import torch
            from torch.nn.utils import clip_grad_value_
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                clip_grad_value_(model.parameters(), 0.5)
                optimizer.step()
            """,
            why="clip_grad_value_",
        ),
        Quiet(
            """
            import torch
            from torch.nn.utils import get_total_norm, clip_grads_with_norm_
            optimizer = torch.optim.AdamW(model.parameters())
            def train_step(x, y):
                loss_fn(model(x), y).backward()
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                total = get_total_norm(grads)
                clip_grads_with_norm_(model.parameters(), 1.0, total)
                optimizer.step()
            """,
            why="get_total_norm + clip_grads_with_norm_",
        ),
        Quiet(
            """
            import torch
            from accelerate import Accelerator
            accelerator = Accelerator()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
            for batch in loader:
                with accelerator.accumulate(model):
                    accelerator.backward(model(**batch).loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            why="accelerate's clip_grad_norm_ on the syncing step",
        ),
        Quiet(
            """
            import torch
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
            model = FSDP(model)
            optimizer = torch.optim.AdamW(model.parameters())
            for batch in loader:
                model(batch).backward()
                model.clip_grad_norm_(1.0)
                optimizer.step()
            """,
            why="FSDP's clip_grad_norm_ method",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for p in model.parameters():
                p.register_hook(lambda grad: torch.clamp(grad, -1.0, 1.0))
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            why="a gradient hook clamps every gradient",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.Adagrad(model.parameters())
            lbfgs = torch.optim.LBFGS(model.parameters())
            rms = torch.optim.RMSprop(model.parameters())
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
                rms.step()
                lbfgs.step(closure)
            """,
            why="Adagrad, LBFGS and plain RMSprop keep no running average of gradients",
        ),
        Quiet(
            """
            import argparse
            import torch
            parser = argparse.ArgumentParser()
            parser.add_argument("--clip-grad", type=float, default=1.0)
            args = parser.parse_args()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for x, y in loader:
                loss_fn(model(x), y).backward()
                if args.clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
            """,
            why="the clip flag defaults to on",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.AdamW(model.parameters(), betas=(0.0, 0.99))
            for x, y in loader:
                loss_fn(model(x), y).backward()
                optimizer.step()
            """,
            why="β1 = 0: Adam without momentum",
        ),
        Quiet(
            """
            import deepspeed
            import torch
            optimizer = torch.optim.AdamW(model.parameters())
            engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config="ds.json")
            for batch in loader:
                engine.backward(engine(batch))
                engine.step()
            """,
            why="DeepSpeed clips by its config's gradient_clipping",
        ),
        Quiet(
            """
            from transformers import Trainer, TrainingArguments
            args = TrainingArguments(output_dir="out", learning_rate=5e-5)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            trainer.train()
            """,
            why="HF Trainer clips by default (max_grad_norm=1.0)",
        ),
        Quiet(
            """
            from transformers import HfArgumentParser, TrainingArguments, Trainer
            parser = HfArgumentParser((ModelArguments, TrainingArguments))
            model_args, training_args = parser.parse_args_into_dataclasses()
            trainer = Trainer(model=model, args=training_args, train_dataset=train_ds)
            trainer.train()
            """,
            why="TrainingArguments from HfArgumentParser: max_grad_norm defaults to 1.0, the HF Trainer clips",
        ),
        Quiet(
            """
            import torch
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            def clip(model):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            def train(x, y):
                loss_fn(model(x), y).backward()
                clip(model)
                optimizer.step()
            """,
            why="a helper called before step() clips",
        ),
        Quiet(
            """
            import torch
            def check_muon_step():
                param = torch.nn.Parameter(torch.ones(4))
                optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
                for _ in range(2):
                    param.grad = torch.ones_like(param)
                    optimizer.step()
            """,
            why="gradients set by hand (an optimizer's unit test): no backward(), no training data",
        ),
        Quiet(
            """
            import torch
            if __name__ == "__main__":
                model = build_model()
                opt = torch.optim.Adam(model.parameters(), lr=3e-4)
                loss = model(torch.randn(8, 3, 256, 256))
                opt.zero_grad()
                loss.backward()
                opt.step()
            """,
            why="one step at a script's top level, in no loop: a smoke test, not a training run",
        ),
        Quiet(
            """
            import torch
            from accelerate import Accelerator, DeepSpeedPlugin
            accelerator = Accelerator(deepspeed_plugin=DeepSpeedPlugin(hf_ds_config="ds.json"))
            optimizer = torch.optim.AdamW(model.parameters())
            model, optimizer = accelerator.prepare(model, optimizer)
            for batch in loader:
                accelerator.backward(model(**batch).loss)
                optimizer.step()
            """,
            why="accelerate under DeepSpeed: the DeepSpeed config's gradient_clipping decides",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        resolver = Resolver(ctx)
        seen: set[tuple[int, int]] = set()
        sites = [
            (site, site.holds(resolver.resolve(site.optimizer)))
            for site in step_sites(ctx)
            # LL304 judges LightningModules; a wrapper's own step is judged where it is called
            if not is_lightning_module(ctx, cls := ctx.enclosing(site.call, ast.ClassDef)) and not is_wrapper_class(cls)
        ]
        roots: dict[int, set[str]] = {}
        for site, found in sites:
            root = optimizer_root(found)
            if root:
                roots.setdefault(id(function_of(ctx, site.call)), set()).add(root)
        for site, found in sites:
            others = frozenset(roots.get(id(function_of(ctx, site.call)), set()) - {optimizer_root(found)})
            finding = judge_step(self, ctx, resolver, site, found, others)
            if finding is not None and (finding.span.line, finding.span.column) not in seen:
                seen.add((finding.span.line, finding.span.column))
                yield finding
        for finding in handed_findings(self, ctx, resolver):
            if (finding.span.line, finding.span.column) not in seen:
                seen.add((finding.span.line, finding.span.column))
                yield finding
        for finding in helper_findings(self, ctx, resolver):
            if (finding.span.line, finding.span.column) not in seen:
                seen.add((finding.span.line, finding.span.column))
                yield finding
        if "TrainingArguments" in ctx.source:
            yield from hf_findings(self, ctx)


@register
class ClipBeforeUnscale(Rule):
    code = "LL305"
    chain = ChainRole.INEFFECTIVE_CLIP
    name = "clip-before-unscale"
    severity = Severity.WARNING
    triggers = ("scaler",)
    fix_applicability = Applicability.UNSAFE
    summary = "Gradient clipping under a GradScaler before scaler.unscale_(optimizer): the threshold meets scaled gradients."
    why = (
        "GradScaler multiplies the loss, hence every gradient, by the loss scale (65536 at the start). A clip "
        "before scaler.unscale_ compares that scaled norm with max_norm: it either never fires or cuts every "
        "gradient to a tiny fraction, and the spike protection it was meant to give is gone. The order under AMP "
        "is backward -> scaler.unscale_(optimizer) -> clip -> scaler.step(optimizer) -> scaler.update()."
    )
    fix_doc = (
        "Inserts scaler.unscale_(optimizer) right before the clip (once; a second unscale_ of the same optimizer "
        "in one step raises, so a later unscale_ of it is removed). Unsafe: the effective threshold changes."
    )
    references = ("https://pytorch.org/docs/stable/notes/amp_examples.html#gradient-clipping",)
    flagged = (
        Flagged(
            """
            import torch
            scaler = torch.cuda.amp.GradScaler()
            for x, y in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda"):
                    loss = loss_fn(model(x), y)
                scaler.scale(loss).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
            """,
            fixed="""
            import torch
            scaler = torch.cuda.amp.GradScaler()
            for x, y in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda"):
                    loss = loss_fn(model(x), y)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
            """,
            message_contains=("before scaler.unscale_",),
            unsafe=True,
        ),
        Flagged(
            """
            import torch
            scaler = torch.amp.GradScaler()
            for x, y in loader:
                scaler.scale(loss_fn(model(x), y)).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.unscale_(optimizer)
                scaler.step(optimizer)
                scaler.update()
            """,
            fixed="""
            import torch
            scaler = torch.amp.GradScaler()
            for x, y in loader:
                scaler.scale(loss_fn(model(x), y)).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
            """,
            message_contains=("unscale_ at line 6 comes after it",),
            unsafe=True,
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            scaler = torch.amp.GradScaler()
            for x, y in loader:
                scaler.scale(loss_fn(model(x), y)).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
            """,
            why="the AMP order: unscale_, then clip",
        ),
        Quiet(
            """
            import torch
            for x, y in loader:
                loss_fn(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            """,
            why="no GradScaler",
        ),
        Quiet(
            """
            from accelerate import Accelerator
            accelerator = Accelerator(mixed_precision="fp16")
            for batch in loader:
                accelerator.backward(model(**batch).loss)
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            """,
            why="accelerate unscales inside its clip_grad_norm_",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        resolver = Resolver(ctx)
        by_function: dict[int, list[StepSite]] = {}
        for site in step_sites(ctx):
            if site.scaler is not None:
                by_function.setdefault(id(function_of(ctx, site.call)), []).append(site)
        for sites in by_function.values():
            function = function_of(ctx, sites[0].call)
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id if isinstance(call.func, ast.Name) else ""
                if name not in _TORCH_CLIPS or clip_of(ctx, call) is None:
                    continue
                if isinstance(call.func, ast.Attribute) and "accelerator" in (_text(ctx, call.func.value) or "").lower():
                    continue  # accelerate unscales inside its clip
                later_sites = [s for s in sites if s.call.lineno > call.lineno]
                site = _clipped_site(ctx, resolver, call, later_sites)
                if site is not None:
                    finding = self._judge(ctx, function, call, site)
                    if finding is not None:
                        yield finding

    def _judge(self, ctx: FileContext, function: ast.AST, call: ast.Call, site: StepSite) -> Finding | None:
        scaler, optimizer = _text(ctx, site.scaler), _text(ctx, site.optimizer)
        unscales = [
            c for c in ast.walk(function)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "unscale_"
            and _text(ctx, c.func.value) == scaler and (not c.args or _text(ctx, c.args[0]) == optimizer)
        ]
        if any(u.lineno < call.lineno for u in unscales):
            return None
        statement = enclosing_statement(ctx, call)
        if statement is None:
            return None
        edits: list = [InsertBefore(ctx.span(statement), (f"{scaler}.unscale_({optimizer})",))]
        later = ""
        for unscale in unscales:
            later = f"; the unscale_ at line {unscale.lineno} comes after it"
            stmt = enclosing_statement(ctx, unscale)
            if isinstance(stmt, ast.Expr) and stmt.value is unscale:
                edits.append(NodeEdit(ctx.span(stmt), "Expr", lambda _n: cst.RemovalSentinel.REMOVE))
        fix = Fix(f"call {scaler}.unscale_({optimizer}) before clipping", Applicability.UNSAFE, tuple(edits))
        message = (
            f"gradient clipping under a GradScaler before scaler.unscale_({optimizer}){later}: the threshold is "
            "compared with gradients multiplied by the loss scale, so the clip does not do what it says"
        )
        return ctx.finding(self, call, message, fix)


_TORCH_CLIPS = ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grads_with_norm_", "clip_grad_value")


def _clipped_site(ctx: FileContext, resolver: Resolver, call: ast.Call, sites: list[StepSite]) -> StepSite | None:
    """The scaler step a clip prepares: the one whose optimizer holds the clipped
    model's parameters, else the first step after the clip."""
    if not sites:
        return None
    root = clip_root(ctx, Clip(call, None))
    for site in sites:
        if root is not None and optimizer_root(resolver.resolve(site.optimizer)) == root:
            return site
    return sites[0]
