"""Where an optimizer stepped somewhere was built: the data flow the LL3xx rules
follow from ``optimizer.step()`` back to ``torch.optim.SGD(..., momentum=0.9)``.

Followed within a file: names and their assignments (tuple unpacking too),
``self.optimizer`` set in another method, function parameters back to the calls
that pass them, helper functions that return an optimizer, and the wrappers that
hand back the same optimizer (``accelerator.prepare``, ``amp.initialize``,
Horovod's ``DistributedOptimizer``, Lookahead). Across files, through the facts
the ``@collector`` below records for every module: helper builders
(``def make_optimizer(model): return SGD(...)``) and optimizers passed to a
function or class defined elsewhere (``train_one_epoch(model, optimizer)``,
``Trainer(model, optimizer=...)``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from losslint.analysis.calls import CallSite, bind, call_sites, skips_first
from losslint.analysis.names import argument, dotted, last_part
from losslint.analysis.objects import ObjectResolver
from losslint.analysis.walk import statements, walk
from losslint.config import Settings
from losslint.context import FileContext
from losslint.project import UNKNOWN, ModuleFacts, ProjectFacts, collector, family_fact
from losslint.rules.momentum_common import (
    TIMM_FACTORIES,
    Clip,
    ClippingFunctions,
    OwnOptimizers,
    clipping_functions,
    own_optimizers,
    clip_of,
    clips_reaching,
    gate_of,
    step_sites,
    trains_on_data,
    TORCH_OPTIMIZERS,
    Momentum,
    is_lightning_module,
    torch_optimizer,
)

_MAX_DEPTH = 6
# Calls that hand back the optimizer they were given (argument name, or position).
_WRAPPERS = {"DistributedOptimizer", "Lookahead", "LARC", "OSS", "SWA", "LookaheadOptimizer", "ShardedOptimizer"}
# A class of the project that wraps an optimizer is named for it: ScheduledOptim, NoamOpt, ...
_WRAPPER_NAME = re.compile(r"(Opt|Optim|Optimizer|OptimizerWrapper)$")
_PREPARERS = {"prepare", "initialize", "prepare_optimizer", "setup", "setup_optimizers"}


@dataclass
class Found:
    """One optimizer an expression may hold."""

    momentum: Momentum
    call: ast.Call | None = None  # its construction, when in this file
    params_root: ast.expr | None = None  # X of ``X.parameters()`` it was built with, in this file
    accelerator: ast.expr | None = None  # the accelerate/Fabric object that prepared it
    managed: bool = False  # a DeepSpeed engine: clipping is its config's business
    origin: str = ""  # "built at line 12", "built by make_optimizer() in optim.py"
    # params_root is a parameter name of the function that steps (matched through a call)
    params_in_callee: bool = False
    # held by an object that steps it for us (``ScheduledOptim(Adam(...))``): no param_groups
    wrapped: bool = False
    # built on one branch of another file's builder (``if name == "Adam":``): whether the
    # argument this file passes selects it (True/False/None: not known), and that argument
    selected: bool | None = None
    selector: ast.expr | None = None
    # built in another file (a builder's): that file's key and the construction's line
    related_path: str = ""
    related_line: int = 0


@family_fact  # (held inside ModuleMomentum)
@dataclass(slots=True)  # (one per class or builder of every file: a project holds many)
class BuilderFact:
    """``def make_optimizer(model, ...): return SGD(model.parameters(), ...)``."""

    momenta: list[Momentum]
    params_index: int | None  # which parameter feeds ``.parameters()`` (or is the params)
    params_name: str | None
    via_parameters: bool  # the builder calls ``.parameters()`` on it
    # per optimizer (in ``momenta``'s order), the option that selects it:
    # ``if name == "Adam":`` -> (the parameter, its position, "Adam"); None: unconditional
    choices: list[tuple[str, int, str] | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # where each optimizer is built, in ``momenta``'s order


@family_fact  # (held inside ModuleMomentum)
@dataclass(slots=True)  # (one per class or builder of every file: a project holds many)
class PassFact:
    """An optimizer passed to a function or class: ``train(model, optimizer)``."""

    callee: str
    position: int | None
    keyword: str | None
    momentum: Momentum | None
    builder: str = ""  # built by a helper of another module: its builder fact decides
    # The call's line: the call graph (``analysis/calls.py``) tells which function of
    # which file it reaches, and what else it passes.
    line: int = 0  # the call's line: its site in the call graph (``analysis/calls.py``)


def _same_module(target: str, module: str) -> bool:
    """Does the qualified name ``target`` (``pkg.engine.train``) name something
    defined in ``module`` (``pkg.engine``, or a script imported as ``engine``)?"""
    owner = target.rpartition(".")[0]
    return bool(owner) and (owner == module or owner.rpartition(".")[2] == module.rpartition(".")[2])


# ``def train(model, loader, optimizer): ... optimizer.step()``: a module-level function
# that steps the optimizer it is handed, after a backward(): (the parameter's name, its
# position among the positional parameters or None, the step's line, whether clipping
# that runs with the defaults reaches the step in its module). A plain tuple: cached as is.
StepperFact = tuple[str, "int | None", int, bool]


@family_fact  # (held inside ModuleMomentum)
@dataclass
class HelperFact:
    """A class whose ``__call__`` does the backward and the step for the optimizer it is
    handed: timm's ``NativeScaler``, called as ``loss_scaler(loss, optimizer,
    clip_grad=None, parameters=None)``. Whether it clips depends on what the call
    passes: ``clip_grad`` left to its default None skips the clip inside."""

    optimizer: str  # the parameter that takes the optimizer
    optimizer_index: int | None  # its position for callers (None: keyword-only)
    line: int  # the step's line
    clipped: bool  # a clip inside runs whatever the call passes
    # the parameter whose default keeps the clip off ("" and not clipped: no clip at all),
    # its position for callers, when the clip runs ("not_none", "positive", "truthy")
    gate: str = ""
    gate_index: int | None = None
    gate_test: str = ""
    # parameters the clip reads that default to None (``parameters``): a call that turns
    # the clip on must pass them too
    clip_inputs: list[str] = field(default_factory=list)


@family_fact  # (held inside ModuleMomentum)
@dataclass
class HelperPassFact:
    """An object built from a class handed to a function: ``train_one_epoch(...,
    loss_scaler)`` with ``loss_scaler = NativeScaler()``; ``target`` is the class as this
    file's imports name it (``util.misc.NativeScalerWithGradNormCount``)."""

    callee: str
    position: int | None
    keyword: str | None
    target: str
    line: int


@family_fact
@dataclass
class ModuleMomentum:
    builders: dict[str, BuilderFact] = field(default_factory=dict)
    passes: list[PassFact] = field(default_factory=list)
    steppers: dict[str, StepperFact] = field(default_factory=dict)
    # ``from .train_utils import train`` (a package's __init__ re-exporting a name):
    # name -> the modules it may come from (as a package's own, as its sibling's)
    imported_from: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Keras models whose own ``train_step`` clips the gradients (``tf.clip_by_global_norm``)
    clipping_models: list[str] = field(default_factory=list)
    # classes whose ``__call__`` steps the optimizer it is handed (loss scalers), by name
    helpers: dict[str, HelperFact] = field(default_factory=dict)
    helper_passes: list[HelperPassFact] = field(default_factory=list)


def params_root(call: ast.Call) -> ast.expr | None:
    """The ``model`` of ``SGD(model.parameters())`` (see ``module_parameters``); a plain
    name passed as params (a builder's parameter, a list built elsewhere)."""
    params = argument(call, "params", 0) or argument(call, "model_or_params", 0)
    if params is None:
        return None
    owner = module_parameters(call)
    if owner is not None:
        return owner
    if isinstance(params, (ast.Name, ast.Attribute)):
        return params
    return None


def module_parameters(call: ast.Call) -> ast.expr | None:
    """``model`` when the optimizer steps exactly ``model.parameters()``: passed as is,
    through ``filter``/``list``, a comprehension over it, or as the ``params`` of every
    param group. None for anything else (several modules chained, named lists)."""
    params = argument(call, "params", 0) or argument(call, "model_or_params", 0)
    return params_owner(params) if params is not None else None


def params_owner(params: ast.expr) -> ast.expr | None:
    """``model`` when ``params`` (what an optimizer is given) is exactly its parameters:
    ``model.parameters()`` as is or filtered, or param groups each of ``model``'s; the
    weight-decay split of ``model.named_parameters()`` (two or more groups by name,
    Hugging Face's no_decay idiom) counts as all of them."""
    if isinstance(params, (ast.List, ast.Tuple)) and params.elts and all(isinstance(e, ast.Dict) for e in params.elts):
        owners = []
        for group in params.elts:
            value = next((v for k, v in zip(group.keys, group.values) if isinstance(k, ast.Constant) and k.value == "params"), None)
            owner = _parameters_of(value) if value is not None else None
            if owner is None and value is not None and len(params.elts) > 1:
                owner = _named_parameters_of(value)
            owners.append(owner)
        texts = {dotted(o) for o in owners}
        return owners[0] if None not in owners and len(texts) == 1 and None not in texts else None
    return _parameters_of(params)


def _named_parameters_of(node: ast.expr) -> ast.expr | None:
    """``model`` of ``[p for n, p in model.named_parameters() if ...]``."""
    if not (isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1):
        return None
    loop = node.generators[0]
    target, source = loop.target, loop.iter
    if not (isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(node.elt, ast.Name)):
        return None
    if not (isinstance(target.elts[1], ast.Name) and target.elts[1].id == node.elt.id):
        return None
    if isinstance(source, ast.Call) and isinstance(source.func, ast.Attribute) and source.func.attr == "named_parameters":
        owner = source.func.value
        return owner if isinstance(owner, (ast.Name, ast.Attribute)) else None
    return None


def _parameters_of(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parameters":
        owner = node.func.value
        return owner if isinstance(owner, (ast.Name, ast.Attribute)) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("filter", "list", "tuple") and node.args:
        return _parameters_of(node.args[-1])
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
        return _parameters_of(node.generators[0].iter)
    return None


class Resolver(ObjectResolver[Found]):
    """The optimizers expressions of one file hold (with the project's facts): the
    generic following is ``analysis/objects.py``'s; this says what builds an optimizer,
    which calls hand one back, and what other files' builders and calls contribute."""

    max_depth = _MAX_DEPTH

    def __init__(self, ctx: FileContext, cross_file: bool = True) -> None:
        super().__init__(ctx)
        self.cross_file = cross_file

    # -- what builds or hands back an optimizer -----------------------------------------------
    def construct(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[Found] | None:
        ctx = self.ctx
        qual = ctx.qualname(call.func) or ""
        if not path:
            momentum = torch_optimizer(ctx, call)
            if momentum is not None:
                return [Found(momentum.resolved(ctx.project), call, params_root(call), origin=f"built at line {call.lineno}")]
        if qual.startswith("deepspeed.") and name == "initialize":
            return [Found(Momentum("a DeepSpeed engine's optimizer", "plain", 0.0), managed=True)]
        if name in _PREPARERS and isinstance(call.func, ast.Attribute):
            # accelerator.prepare(model, optimizer, loader) / amp.initialize(model, optimizer)
            index = path[0] if path else (0 if len(call.args) == 1 else None)
            target = argument(call, "optimizer", None) if index is None else (call.args[index] if index < len(call.args) else None)
            if target is None:
                return []
            found = self.resolve(target, depth + 1)
            if name in ("prepare", "setup", "setup_optimizers"):
                deepspeed = self._mentions_deepspeed()
                for item in found:
                    item.accelerator = item.accelerator or call.func.value
                    # accelerate under DeepSpeed hands clipping to the DeepSpeed config
                    item.managed = item.managed or deepspeed
            return found
        if (
            name == "optimizers"
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "self"
        ):
            return self.configured(ctx.enclosing(call, ast.ClassDef), path, depth)
        if name in _WRAPPERS and not path:
            target = argument(call, "optimizer", 0)
            return self.resolve(target, depth + 1) if target is not None else []
        if not path and _WRAPPER_NAME.search(name) and name not in TORCH_OPTIMIZERS:
            wrapped = self._wrapped(call, depth)
            if wrapped:
                return wrapped
        return None

    def _wrapped(self, call: ast.Call, depth: int) -> list[Found]:
        """``ScheduledOptim(Adam(...), lr_mul, ...)``, ``NoamOpt(size, factor, warmup, optimizer)``:
        a project's object that holds an optimizer and steps it in a method of its own."""
        keyword_target = argument(call, "optimizer", None)
        for target in [keyword_target] if keyword_target is not None else call.args:
            found = [f for f in self.resolve(target, depth + 1) if f.call is not None or f.origin]
            if found:
                for item in found:
                    item.wrapped = True
                return found
        return []

    def _mentions_deepspeed(self) -> bool:
        return self.ctx.imports.imports_any("deepspeed") or "DeepSpeedPlugin" in self.ctx.source or "deepspeed_plugin" in self.ctx.source

    def configured(self, cls: ast.ClassDef | None, path: tuple[int, ...] = (), depth: int = 0) -> list[Found]:
        """What a LightningModule's ``configure_optimizers`` returns (``self.optimizers()``):
        one optimizer, ``[opt_g, opt_d]``, ``([opts], [schedulers])``, ``{"optimizer": opt, ...}``;
        ``path`` picks one of several."""
        if cls is None:
            return []
        found: list[Found] = []
        for function in cls.body:
            if not (isinstance(function, ast.FunctionDef) and function.name == "configure_optimizers"):
                continue
            for ret in (n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None):
                for value in _optimizer_entries(ret.value):
                    found.extend(self.resolve(value, depth + 1))
                if path:
                    entries = _optimizer_entries(ret.value)
                    if path[0] < len(entries):
                        return self.resolve(entries[path[0]], depth + 1)
        return found

    # -- through helpers and parameters ------------------------------------------------------
    def returned(self, found: list[Found], function: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call) -> list[Found]:
        """A params root that is a parameter of the helper becomes the caller's argument."""
        bound = bind(function, call, isinstance(call.func, ast.Attribute))
        params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        for item in found:
            root = item.params_root
            if isinstance(root, ast.Name) and root.id in params:
                item.params_root = bound.arguments.get(root.id)
        return found

    def passed_locally(self, found: list[Found], function: ast.FunctionDef | ast.AsyncFunctionDef, site: CallSite) -> list[Found]:
        """``train(model, optimizer)`` and ``def train(model, optimizer)``: the same model."""
        for item in found:
            root = item.params_root
            if isinstance(root, ast.Name):
                item.params_root = _matching_parameter(function, site, root)
                item.params_in_callee = item.params_root is not None
        return found

    def passed_from_files(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str, sites: list[CallSite], depth: int
    ) -> list[Found]:
        """The optimizers other files hand this parameter, as their facts recorded them."""
        if not self.cross_file:
            return []
        found: list[Found] = []
        for site, passed in _passes_at(self.ctx, function, sites):
            if site.record is not None and not _same_module(site.record.target, self.ctx.module):
                continue  # handed through a re-export: reported where it is built (momentum_torch.handed_findings)
            if passed.keyword == parameter or (passed.keyword is None and _positional_parameter(function, site, passed.position) == parameter):
                origin = f"passed to {passed.callee}() from {_display(self.ctx, site.path)}"
                for momentum in self._passed_momenta(passed):
                    found.append(Found(momentum.resolved(self.ctx.project), origin=origin))
        return found

    def built_elsewhere(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[Found]:
        """A builder recorded in another module: ``make_optimizer(model)``."""
        if not self.cross_file or path:
            return []
        target = self.ctx.qualname(call.func) or ""
        for key, facts in self.ctx.project.each(ModuleMomentum, scope=self.ctx.file or None):
            builder = facts.builders.get(name)
            module = self.ctx.project.modules[key].module
            if builder is None or module == self.ctx.module or not _same_module(target, module):
                continue
            root = None
            if builder.params_index is not None:
                arg = argument(call, builder.params_name or "", builder.params_index)
                if arg is not None:
                    root = arg if builder.via_parameters else _parameters_owner(arg)
            origin = f"built by {name}() in {module.replace('.', '/')}.py, called at line {call.lineno}"
            found = []
            for index, momentum in enumerate(builder.momenta):
                item = Found(momentum.resolved(self.ctx.project), None, root, origin=origin)
                item.related_path, item.related_line = key, builder.lines[index] if index < len(builder.lines) else 0
                choice = builder.choices[index] if index < len(builder.choices) else None
                if choice is not None:
                    item.selector = argument(call, choice[0], choice[1])
                    value = self.ctx.values.value(item.selector) if item.selector is not None else None
                    item.selected = (value == choice[2]) if isinstance(value, str) else None
                found.append(item)
            return found
        return []

    def _passed_momenta(self, passed: PassFact) -> list[Momentum]:
        if passed.momentum is not None:
            return [passed.momentum]
        for _key, facts in self.ctx.project.each(ModuleMomentum, scope=self.ctx.file or None):
            builder = facts.builders.get(passed.builder)
            if builder is not None:
                return builder.momenta
        return []


def _display(ctx: FileContext, key: str) -> str:
    facts = ctx.project.modules.get(key)
    return facts.module.replace(".", "/") + ".py" if facts is not None else key


def _passes_at(
    ctx: FileContext, function: ast.FunctionDef | ast.AsyncFunctionDef, sites: list[CallSite]
) -> list[tuple[CallSite, PassFact]]:
    """The optimizers handed to ``function`` at other files' call sites: each site with
    the pass its file recorded at that line."""
    found = []
    for site in sites:
        facts = ctx.project.modules.get(site.path)
        record = facts.get(ModuleMomentum) if facts is not None else None
        if record is None or site.record is None:
            continue
        for passed in record.passes:
            if passed.line == site.line and passed.callee == site.record.name:
                found.append((site, passed))
    return found


def _positional_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef, site: CallSite, position: int | None) -> str | None:
    """The parameter the ``position``-th positional argument of another file's call binds."""
    if position is None or site.record is None or position >= len(site.record.positional):
        return None
    positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    # other files' calls are of module-level functions and of classes (``Trainer(...)``)
    offset = 1 if skips_first(function, method_call=False) else 0
    index = position + offset
    return positional[index] if index < len(positional) else None


def set_by_other_callers(ctx: FileContext, function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str) -> bool:
    """Does a call from another file that hands ``function`` an optimizer also pass
    ``parameter`` (``train_one_epoch(model, ..., optimizer, device, epoch, args.clip_max_norm)``
    in main.py)? Then its default is not what runs, whatever this file says."""
    others = [site for site in call_sites(ctx, function) if site.call is None]
    return any(site.gives(parameter) is not False for site, _ in _passes_at(ctx, function, others))


def is_wrapper_class(cls: ast.ClassDef | None) -> bool:
    """``class ScheduledOptim:``: its own ``self._optimizer.step()`` is judged where the
    training code calls the wrapper's step method, not inside it."""
    return cls is not None and bool(_WRAPPER_NAME.search(cls.name))


def _optimizer_entries(value: ast.expr) -> list[ast.expr]:
    """The optimizers in a ``configure_optimizers`` return value, in order."""
    if isinstance(value, ast.Dict):
        for key, item in zip(value.keys, value.values):
            if isinstance(key, ast.Constant) and key.value == "optimizer":
                return [item]
        return []
    if isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], (ast.List, ast.Tuple)):
        return _optimizer_entries(value.elts[0])  # ([optimizers], [schedulers])
    if isinstance(value, (ast.List, ast.Tuple)):
        entries: list[ast.expr] = []
        for element in value.elts:
            entries.extend(_optimizer_entries(element) if isinstance(element, ast.Dict) else [element])
        return entries
    return [value]


def _matching_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef, site: CallSite, root: ast.Name) -> ast.expr | None:
    """The callee's parameter that receives the caller's ``root`` (as a Name node of the
    callee's signature), or None."""
    for parameter, passed in site.arguments.items():
        if isinstance(passed, ast.Name) and passed.id == root.id:
            return ast.Name(id=parameter, ctx=ast.Load(), lineno=function.lineno, col_offset=0)
    return None


def _parameters_owner(arg: ast.expr) -> ast.expr | None:
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "parameters":
        return arg.func.value
    return None


def _optimizer_named(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "opt" in name.lower()


def _builds_optimizer(function: ast.FunctionDef) -> bool:
    """Does the function call an optimizer constructor (by its name) anywhere?"""
    for node in walk(function):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in TORCH_OPTIMIZERS or name in TIMM_FACTORIES:
                return True
    return False


def _builder_call(ctx: FileContext, value: ast.expr) -> str | None:
    """``optimizer = make_optimizer(model)`` with make_optimizer imported from another
    module: the helper's name, for the rule to look up among the project's builders."""
    if isinstance(value, ast.Name):
        resolved = ctx.values.resolve_name(value)
        value = resolved if resolved is not None else value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ctx.imports.aliases:
        return last_part(ctx.imports.aliases[value.func.id])
    return None


# -- the project-wide facts ------------------------------------------------------------

_TRIGGERS = ("optim", "Adam", "SGD", "Lion", "Lamb", "LAMB", "RMSprop", "Muon")


def _imported_from(tree: ast.Module, module: str) -> dict[str, tuple[str, ...]]:
    """Names a module binds by ``from X import name`` at its top level, with X made
    absolute. A relative import is read both as a package's ``__init__`` (``.x`` is
    ``module.x``) and as a plain module (``.x`` is a sibling): the facts do not say
    which file this was."""
    names: dict[str, tuple[str, ...]] = {}
    parts = module.split(".")
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            bases = []
            for package in (parts, parts[:-1]):
                package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                bases.append(".".join([*package, *([node.module] if node.module else [])]))
        else:
            bases = [node.module or ""]
        for alias in node.names:
            if alias.name != "*" and all(bases):
                names[alias.asname or alias.name] = tuple(dict.fromkeys(bases))
    return names


def _steppers(ctx: FileContext, resolver: Resolver) -> dict[str, StepperFact]:
    """The module-level functions that step an optimizer they receive as a parameter."""

    found: dict[str, StepperFact] = {}
    for site in step_sites(ctx):
        function = ctx.enclosing(site.call, ast.FunctionDef, ast.AsyncFunctionDef)
        if function is None or ctx.parents.get(function) is not ctx.tree or not isinstance(site.optimizer, ast.Name):
            continue
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        name = site.optimizer.id
        if name not in positional and name not in [a.arg for a in function.args.kwonlyargs]:
            continue
        if function.name in found or not trains_on_data(ctx, resolver, site.call):
            continue
        clipped = any(gate_of(ctx, clip, step=site.call) is None for clip in clips_reaching(ctx, resolver, site.call))
        index = positional.index(name) if name in positional else None
        found[function.name] = (name, index, site.call.lineno, clipped)
    return found


def _selecting_option(ctx: FileContext, function: ast.FunctionDef, call: ast.Call, offset: int) -> tuple[str, int, str] | None:
    """``if name == "Adam": optimizer = Adam(...)`` in a builder whose parameter ``name``
    picks the optimizer: (``name``, its position for callers, ``"Adam"``)."""
    params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    child: ast.AST = call
    parent = ctx.parents.get(call)
    while parent is not None and parent is not function:
        if isinstance(parent, ast.If) and child in parent.body:
            test = parent.test
            if (
                isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
                and isinstance(test.left, ast.Name) and test.left.id in params
                and isinstance(test.comparators[0], ast.Constant) and isinstance(test.comparators[0].value, str)
            ):
                return test.left.id, params.index(test.left.id) - offset, test.comparators[0].value
        child, parent = parent, ctx.parents.get(parent)
    return None


def _clipping_models(ctx: FileContext) -> list[str]:
    """Classes overriding ``train_step`` with a clip inside: ``model.fit`` runs that step,
    so the compiled optimizer's own clip arguments are not needed."""
    found = []
    for cls in ctx.nodes_of(ast.ClassDef):
        for function in cls.body:
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name == "train_step":
                clips = [c for n in walk(function) if isinstance(n, ast.Call) and (c := clip_of(ctx, n)) is not None]
                if any(gate_of(ctx, c) is None for c in clips):
                    found.append(cls.name)
    return found


# -- helper objects that do the step (loss scalers) ---------------------------------------


def clip_runs(test: str, value: object) -> bool:
    """Does a helper's clip run when its gate parameter is ``value`` (see ``HelperFact``)?"""
    if test == "not_none":
        return value is not None
    if test == "positive":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return bool(value)


def _gate_test(test: ast.expr, names: set[str], in_body: bool) -> tuple[str, str] | None:
    """(the parameter, when the guarded branch runs) for ``if clip_grad is not None:``,
    ``if max_norm > 0:``, ``if clip:`` (and their ``else`` branches)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _gate_test(test.operand, names, not in_body)
    if isinstance(test, ast.Name) and test.id in names:
        return (test.id, "truthy") if in_body else None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant)):
        return None
    left, op, constant = test.left, test.ops[0], test.comparators[0].value
    if not (isinstance(left, ast.Name) and left.id in names):
        return None
    if constant is None and (isinstance(op, ast.IsNot) and in_body or isinstance(op, ast.Is) and not in_body):
        return left.id, "not_none"
    if constant == 0 and not isinstance(constant, bool) and isinstance(op, ast.Gt) and in_body:
        return left.id, "positive"
    return None


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else UNKNOWN
    except ValueError:
        return UNKNOWN


def _clip_gate(ctx: FileContext, clip: Clip, function: ast.FunctionDef | ast.AsyncFunctionDef, defaults: dict[str, object]) -> tuple[str, str] | None:
    """The parameter of ``function`` whose default keeps ``clip`` off, and its test."""
    node: ast.AST = clip.call
    parent = ctx.parents.get(node)
    while parent is not None and parent is not function:
        if isinstance(parent, ast.If) and (node in parent.body or node in parent.orelse):
            tests = parent.test.values if isinstance(parent.test, ast.BoolOp) and isinstance(parent.test.op, ast.And) and node in parent.body else [parent.test]
            for test in tests:
                gate = _gate_test(test, set(defaults), node in parent.body)
                if gate is not None and defaults[gate[0]] is not UNKNOWN and not clip_runs(gate[1], defaults[gate[0]]):
                    return gate
        node, parent = parent, ctx.parents.get(parent)
    return None


def helper_fact(ctx: FileContext, resolver: "Resolver", function: ast.FunctionDef | ast.AsyncFunctionDef) -> HelperFact | None:
    """What a class's ``__call__`` tells its callers (see ``HelperFact``), or None when it
    does not step an optimizer it is handed after a backward()."""
    args = function.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)][1:]  # after self
    keyword_only = [a.arg for a in args.kwonlyargs]
    defaults: dict[str, object] = {a: _literal(d) for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults)} if args.defaults else {}
    defaults.update({a.arg: _literal(d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    site = next(
        (
            s for s in step_sites(ctx)
            if isinstance(s.optimizer, ast.Name) and s.optimizer.id in (*positional, *keyword_only)
            and ctx.enclosing(s.call, ast.FunctionDef, ast.AsyncFunctionDef) is function
        ),
        None,
    )
    if site is None or not trains_on_data(ctx, resolver, site.call):
        return None
    name = site.optimizer.id  # type: ignore[attr-defined]
    index = positional.index(name) if name in positional else None
    fact = HelperFact(name, index, site.call.lineno, clipped=False)
    for clip in (c for n in walk(function) if isinstance(n, ast.Call) and (c := clip_of(ctx, n)) is not None):
        gate = _clip_gate(ctx, clip, function, defaults)
        if gate is None:
            return HelperFact(name, index, site.call.lineno, clipped=True)
        fact.gate, fact.gate_test = gate
        fact.gate_index = positional.index(gate[0]) if gate[0] in positional else None
        given = argument(clip.call, "parameters", 0)
        if isinstance(given, ast.Name) and given.id in defaults and defaults[given.id] is None:
            fact.clip_inputs = [given.id]
    return fact


def _helpers(ctx: FileContext, resolver: "Resolver") -> dict[str, HelperFact]:
    """The file's top-level classes whose ``__call__`` steps the optimizer it is handed."""
    found: dict[str, HelperFact] = {}
    for cls in ctx.tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for function in cls.body:
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name == "__call__":
                fact = helper_fact(ctx, resolver, function)
                if fact is not None:
                    found[cls.name] = fact
    return found


def helpers_of(ctx: FileContext, resolver: "Resolver") -> dict[str, HelperFact]:
    """``_helpers`` of the file, worked out once per file."""
    found = ctx.memo.get("momentum_flow.helpers")
    if found is None:
        found = ctx.memo["momentum_flow.helpers"] = _helpers(ctx, resolver) if "__call__" in ctx.source else {}
    return found


def _helper_passes(ctx: FileContext) -> list[HelperPassFact]:
    """Objects built from a class of the project (``loss_scaler = NativeScaler()``) handed
    to a call: another file's helper may do the step with them."""
    found = []
    for call in ctx.nodes_of(ast.Call):
        callee = call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else None
        if callee is None:
            continue
        given = [(i, None, a) for i, a in enumerate(call.args)] + [(None, kw.arg, kw.value) for kw in call.keywords if kw.arg]
        for position, keyword_name, value in given:
            built = ctx.values.resolve_name(value) if isinstance(value, ast.Name) else None
            if not (isinstance(built, ast.Call) and isinstance(built.func, (ast.Name, ast.Attribute))):
                continue
            target = ctx.qualname(built.func) or ""
            if last_part(target)[:1].isupper() and (target.partition(".")[0] not in _NOT_PROJECT) and (
                "." in target or isinstance(built.func, ast.Name) and built.func.id in _class_names(ctx)
            ):
                qualified = target if "." in target else f"{ctx.module}.{target}"
                found.append(HelperPassFact(callee, position, keyword_name, qualified, call.lineno))
    return found


# Packages whose classes are never a project's helper
_NOT_PROJECT = frozenset({"torch", "tensorflow", "keras", "jax", "flax", "optax", "numpy", "transformers", "accelerate", "lightning", "pytorch_lightning", "apex", "deepspeed"})


def _class_names(ctx: FileContext) -> set[str]:
    return {n.name for n in ctx.tree.body if isinstance(n, ast.ClassDef)}


def helper_at(project: ProjectFacts, target: str, importer: str | None) -> tuple[HelperFact, str, str] | None:
    """The helper class ``target`` (``timm.utils.NativeScaler`` as ``importer`` imports it)
    names: (its fact, its module, its file key), following package re-exports."""
    owner, _, name = target.rpartition(".")
    targets, seen = [owner], set()
    for _ in range(4):
        following = []
        for module in targets:
            key = project.resolve(module, importer) if module else None
            if key is None or key in seen:
                continue
            seen.add(key)
            facts = project.modules[key]
            record = facts.get(ModuleMomentum)
            if record is None:
                continue
            if name in record.helpers:
                return record.helpers[name], facts.module, key
            following.extend(record.imported_from.get(name, ()))
        targets = following
    return None


@dataclass
class Helper:
    """A helper object an expression may hold, and where its class is."""

    fact: HelperFact
    name: str  # the class's name
    module: str  # its module ("" for this file's)
    path: str  # its file key ("" for this file)


class HelperResolver(ObjectResolver[Helper]):
    """The loss-scaler objects (``HelperFact``) expressions of one file hold: built here,
    returned by a helper, stored on ``self``, handed to a function by this file or by
    another file (``HelperPassFact``)."""

    max_depth = _MAX_DEPTH

    def __init__(self, ctx: FileContext, own: dict[str, HelperFact]) -> None:
        super().__init__(ctx)
        self.own = own

    def construct(self, call: ast.Call, name: str, depth: int, path: tuple[int, ...]) -> list[Helper] | None:
        if path:
            return None
        if isinstance(call.func, ast.Name) and call.func.id in self.own and call.func.id in _class_names(self.ctx):
            return [Helper(self.own[call.func.id], call.func.id, "", "")]
        target = self.ctx.qualname(call.func) or ""
        if "." in target and name[:1].isupper():
            found = helper_at(self.ctx.project, target, self.ctx.file or None)
            if found is not None:
                return [Helper(found[0], name, found[1], found[2])]
        return None

    def passed_from_files(self, function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str, sites: list[CallSite], depth: int) -> list[Helper]:
        found: list[Helper] = []
        for site in sites:
            facts = self.ctx.project.modules.get(site.path)
            record = facts.get(ModuleMomentum) if facts is not None else None
            if record is None or site.record is None:
                continue
            for passed in record.helper_passes:
                if passed.line != site.line or passed.callee != site.record.name:
                    continue
                if passed.keyword == parameter or (passed.keyword is None and _positional_parameter(function, site, passed.position) == parameter):
                    helper = helper_at(self.ctx.project, passed.target, site.path)
                    if helper is not None:
                        found.append(Helper(helper[0], last_part(passed.target), helper[1], helper[2]))
        return found


@collector
def _collect_momentum(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if "clip" in source or "Optimizer" in source:
        own = FileContext(facts.module + ".py", facts.module, source, tree, ProjectFacts({facts.module: facts}), Settings())
        clipping = clipping_functions(own) if "clip" in source else []
        if clipping:
            facts.put(ClippingFunctions(clipping))
        optimizers = own_optimizers(own) if "Optimizer" in source else {}
        if optimizers:
            facts.put(OwnOptimizers(optimizers))
    imported_from = _imported_from(tree, facts.module)
    if not any(t in source for t in _TRIGGERS):
        if imported_from:
            facts.put(ModuleMomentum(imported_from=imported_from))
        return
    ctx = FileContext(facts.module + ".py", facts.module, source, tree, ProjectFacts({facts.module: facts}), Settings())
    resolver = Resolver(ctx, cross_file=False)
    record = ModuleMomentum(imported_from=imported_from)
    if "train_step" in source:
        record.clipping_models = _clipping_models(ctx)
    if "step" in source and "backward" in source:
        record.steppers = _steppers(ctx, resolver)
        if "__call__" in source:
            record.helpers = _helpers(ctx, resolver)
    if "caler" in source:  # an object built from a project class that may be a loss scaler
        record.helper_passes = _helper_passes(ctx)
    for function in ctx.nodes_of(ast.FunctionDef):
        if not _builds_optimizer(function):
            continue
        if ctx.enclosing(function, ast.ClassDef) is not None and function.name != "configure_optimizers":
            if is_lightning_module(ctx, ctx.enclosing(function, ast.ClassDef)):
                continue
        returns = [n.value for n in statements(function) if isinstance(n, ast.Return) and n.value is not None]
        found = [f for value in returns for f in resolver.resolve(value)]
        if not found or any(f.managed for f in found):
            continue
        params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        offset = 1 if params[:1] in (["self"], ["cls"]) else 0
        index = name = None
        via_parameters = True
        roots = [f.params_root for f in found if isinstance(f.params_root, ast.Name)]
        if roots and roots[0].id in params:
            name = roots[0].id
            index = params.index(name) - offset
        choices = [_selecting_option(ctx, function, f.call, offset) if f.call is not None else None for f in found]
        lines = [f.call.lineno if f.call is not None else 0 for f in found]
        record.builders[function.name] = BuilderFact([f.momentum for f in found], index, name, via_parameters, choices, lines)
    for call in ctx.nodes_of(ast.Call):
        callee = call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else None
        if callee is None or callee in record.builders:
            continue
        # Optimizers travel under names that say so (optimizer, opt_g, optim); only those are followed.
        candidates = [(i, None, a) for i, a in enumerate(call.args) if _optimizer_named(a)]
        candidates += [
            (None, kw.arg, kw.value) for kw in call.keywords
            if kw.arg and (_optimizer_named(kw.value) or "opt" in kw.arg.lower() and isinstance(kw.value, (ast.Name, ast.Attribute, ast.Call)))
        ]
        for position, kw_name, value in candidates:
            if isinstance(value, ast.Call) and torch_optimizer(ctx, value) is None:
                continue
            for found in resolver.resolve(value):
                if found.call is not None or found.origin:
                    record.passes.append(PassFact(callee, position, kw_name, found.momentum, line=call.lineno))
            builder = _builder_call(ctx, value)
            if builder is not None:
                record.passes.append(PassFact(callee, position, kw_name, None, builder, line=call.lineno))
    if record.builders or record.passes or record.steppers or record.imported_from or record.clipping_models or record.helpers or record.helper_passes:
        facts.put(record)
