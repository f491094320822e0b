"""LL304 lightning-momentum-without-clipping: a LightningModule whose
``configure_optimizers`` returns a momentum optimizer, trained by a ``Trainer``
without ``gradient_clip_val``.

Lightning clips for the user under automatic optimization, so the finding and
its fix (``gradient_clip_val=1.0``) go on the ``Trainer(...)`` call, wherever that
is: the module may live in ``model.py`` and the Trainer in ``train.py``; the
``@collector`` below records every LightningModule's optimizers and whether it
clips by itself (``configure_gradient_clipping``, ``on_before_optimizer_step``),
and every class's bases, so that ``class UNet(UNetBase)`` in a third file is known
to train with UNetBase's optimizer; the Trainer's own ``fit(model)`` names the class. Under manual optimization
(``self.automatic_optimization = False``) Lightning refuses gradient_clip_val;
there the clip goes in ``training_step``, before ``opt.step()``:
``self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")``.
A Trainer built from ``**kwargs`` (``Trainer(**cfg)``) is judged only where the
dict is a section of a config file the code reads (``Trainer(**cfg.trainer)`` after
``cfg = OmegaConf.load("conf/train.yaml")``): the finding and its fix then go in
that file, at ``gradient_clip_val`` or at the section lacking it
(rules/config_checks.py); otherwise it is not judged. A module built by
``hydra.utils.instantiate(cfg.model)`` whose ``configure_optimizers`` calls what
``__init__`` was given (``self.hparams.optimizer(params=...)`` after
``self.save_hyperparameters()``, ``self.opt(...)`` after ``self.opt = optimizer``)
trains with the optimizer that section's node for that parameter names
(``optimizer: {_target_: torch.optim.Adam, _partial_: true}``, its keys the arguments). One built
from configuration, ``LightningCLI(Model, DataModule)`` or
``Trainer.from_argparse_args(args)``, gets gradient_clip_val from the run's
configuration: an info finding at that call says which key to set
(``trainer.gradient_clip_val``, ``--gradient_clip_val``), with no fix; quiet when
the call names a configuration file (not read: it may set the key) or the
parser's ``--gradient_clip_val`` default clips. Hugging Face's
``HfArgumentParser``/``TrlParser`` need nothing: TrainingArguments clips by
default (max_grad_norm=1.0).
"""

from __future__ import annotations

import ast
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Iterable

from losslint.analysis.names import argument, dotted, keyword, last_part
from losslint.analysis.walk import statements
from losslint.config import Settings
from losslint.context import FileContext
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, InsertBefore, NodeEdit, RelatedLocation, Severity, Span, set_keyword
from losslint.project import ModuleFacts, ProjectFacts, collector, family_fact, file_key
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.momentum_common import (
    Clip,
    Momentum,
    clip_of,
    clips_reaching,
    configured_optimizer,
    enclosing_statement,
    gate_fix,
    gate_of,
    is_lightning_module,
    step_sites,
)
from losslint.rules.momentum_flow import Resolver, _optimizer_entries
from losslint.analysis.configs import ConfigNode, ConfigRef, add_entry, located, set_scalar
from losslint.analysis.trainer_configs import cli_configs_found
from losslint.rules.config_checks import config_finding, config_fix, shared_note

_CLIP_HOOKS = ("configure_gradient_clipping", "on_before_optimizer_step", "on_after_backward")


@family_fact  # (held inside LightningClasses)
@dataclass(slots=True)  # (one per class or builder of every file: a project holds many)
class LightningModuleFacts:
    momenta: list[Momentum] = field(default_factory=list)  # what configure_optimizers returns
    manual: bool = False  # automatic_optimization = False
    clips_itself: bool = False  # a hook clips
    lines: list[int] = field(default_factory=list)  # where those optimizers are built
    module: str = ""  # the module that defines it
    bases: list[str] = field(default_factory=list)  # its base classes' names
    lightning: bool = False  # derives from LightningModule itself
    # ``__init__`` parameters configure_optimizers calls to build its optimizer
    # (``self.hparams.optimizer(params=...)``), and the lines of those calls
    given_optimizers: list[str] = field(default_factory=list)
    given_lines: list[int] = field(default_factory=list)


@family_fact
@dataclass
class LightningClasses:
    """A module's classes with bases, by name: its LightningModules and the classes
    that may derive from one defined in another file."""

    classes: dict[str, LightningModuleFacts] = field(default_factory=dict)


def module_facts(ctx: FileContext, resolver: Resolver, cls: ast.ClassDef) -> LightningModuleFacts:
    facts = LightningModuleFacts(module=ctx.module, lightning=is_lightning_module(ctx, cls))
    facts.bases = [last_part(ctx.qualname(b) or "") for b in cls.bases]
    found = resolver.configured(cls)
    facts.momenta = [f.momentum for f in found]
    facts.lines = [f.call.lineno for f in found if f.call is not None]
    if not facts.momenta:
        given = _given_optimizer_calls(ctx, cls)
        facts.given_optimizers, facts.given_lines = [name for name, _ in given], [call.lineno for _, call in given]
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == "automatic_optimization" for t in node.targets
        ):
            facts.manual = isinstance(node.value, ast.Constant) and node.value.value is False
        if isinstance(node, ast.FunctionDef) and node.name in _CLIP_HOOKS:
            clips = [clip_of(ctx, c) for c in ast.walk(node) if isinstance(c, ast.Call)]
            if any(c is not None and gate_of(ctx, c) is None for c in clips):
                facts.clips_itself = True
    return facts


def _given_optimizer_calls(ctx: FileContext, cls: ast.ClassDef) -> list[tuple[str, ast.Call]]:
    """The optimizers ``configure_optimizers`` returns by calling what ``__init__`` was
    given (a partial the caller passes, Hydra's ``_partial_: true`` config):
    ``self.hparams.optimizer(params=...)`` or ``self.hparams["optimizer"](...)`` after
    ``self.save_hyperparameters()``, ``self.opt(...)`` after ``self.opt = optimizer``,
    ``hydra.utils.instantiate(self.hparams.optimizer, params=...)``: each with the
    ``__init__`` parameter's name."""
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    init, configure = methods.get("__init__"), methods.get("configure_optimizers")
    if init is None or configure is None:
        return []
    parameters = [a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)][1:]
    saved = _saved_hyperparameters(init, parameters)
    stored = {  # self.attribute -> the parameter it holds
        target.attr: node.value.id
        for node in ast.walk(init)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in parameters
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    given = []
    for ret in (n for n in ast.walk(configure) if isinstance(n, ast.Return) and n.value is not None):
        for entry in _optimizer_entries(ret.value):
            for value in _bound_value(ctx, entry):
                name = _called_parameter(ctx, value, saved, stored) if isinstance(value, ast.Call) else None
                if name is not None and all(value is not call for _, call in given):  # one call, returned twice
                    given.append((name, value))
    return given


def _saved_hyperparameters(init: ast.FunctionDef, parameters: list[str]) -> set[str]:
    """The ``__init__`` parameters ``self.save_hyperparameters(...)`` keeps in
    ``self.hparams``: all of them, the names it lists, less those it ignores; none
    where it saves something else (a dict) or names them in a way not read here."""
    saved: set[str] = set()
    for call in (n for n in ast.walk(init) if isinstance(n, ast.Call)):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "save_hyperparameters"):
            continue
        if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args):
            return set()
        kept = {a.value for a in call.args} if call.args else set(parameters)
        ignore = keyword(call, "ignore")
        if ignore is not None:
            items = ignore.value.elts if isinstance(ignore.value, (ast.List, ast.Tuple)) else [ignore.value]
            if not all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
                return set()
            kept -= {i.value for i in items}
        saved |= kept & set(parameters)
    return saved


def _called_parameter(ctx: FileContext, call: ast.Call, saved: set[str], stored: dict[str, str]) -> str | None:
    """The ``__init__`` parameter this call calls (or hands to ``hydra.utils.instantiate``)."""
    func: ast.expr = call.func
    qual = ctx.qualname(func) or ""
    if last_part(qual) == "instantiate" and "hydra" in qual and call.args:
        func = call.args[0]
    hparams = isinstance(func, (ast.Attribute, ast.Subscript)) and _is_self_attribute(func.value, "hparams")
    if isinstance(func, ast.Subscript) and hparams and isinstance(func.slice, ast.Constant) and isinstance(func.slice.value, str):
        return func.slice.value if func.slice.value in saved else None
    if isinstance(func, ast.Attribute) and hparams:
        return func.attr if func.attr in saved else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return stored.get(func.attr)
    return None


def _is_self_attribute(node: ast.expr, attribute: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attribute and isinstance(node.value, ast.Name) and node.value.id == "self"


@collector
def _collect_lightning(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    # LightningModules, and classes that may derive from one defined in another file
    # (``class UNet(PrecipRegressionBase)``, whose file need not say "Lightning")
    if "ightning" not in source and "configure_optimizers" not in source:
        subclasses = {
            node.name: LightningModuleFacts(module=facts.module, bases=[(dotted(b) or "").rpartition(".")[2] for b in node.bases])
            for node in statements(tree)
            if isinstance(node, ast.ClassDef) and node.bases
        }
        if subclasses:
            facts.put(LightningClasses(subclasses))
        return
    ctx = FileContext(facts.module.replace(".", "/") + ".py", facts.module, source, tree, ProjectFacts({facts.module: facts}), Settings())
    resolver = Resolver(ctx, cross_file=False)
    found = {cls.name: module_facts(ctx, resolver, cls) for cls in ctx.nodes_of(ast.ClassDef) if cls.bases}
    if found:
        facts.put(LightningClasses(found))


class Modules:
    """The project's LightningModules by class name, through inheritance: a subclass
    trains with what its nearest ancestor's ``configure_optimizers`` returns, and
    clips if any class on the way does."""

    _DEPTH = 8

    def __init__(self, ctx: FileContext) -> None:
        self.here = ctx.module
        self.ctx = ctx
        self.classes: dict[str, list[LightningModuleFacts]] = {}
        self.files: dict[int, str] = {}  # id of a class's facts -> its file
        self.near: dict[str, str] = {}  # class name -> the module a config names it in
        for key, found in ctx.project.each(LightningClasses, scope=ctx.file or None):
            self._add(key, found)

    def _add(self, key: str, found: LightningClasses) -> None:
        for name, facts in found.classes.items():
            if id(facts) not in self.files:
                self.files[id(facts)] = key
                self.classes.setdefault(name, []).append(facts)

    def add_target(self, target: str) -> None:
        """A class a config names by its dotted path (Hydra's ``_target_``): its module's
        classes join those the file's imports reach (``instantiate(cfg.model)`` needs no
        import), and the name means that module's class."""
        module, _, name = target.rpartition(".")
        key = self.ctx.project.resolve(module, self.ctx.file or None) if module else None
        found = self.ctx.project.modules[key].get(LightningClasses) if key is not None else None
        if found is not None and name in found.classes:
            self._add(key, found)
            self.near[name] = found.classes[name].module

    def _lookup(self, name: str, near: str) -> LightningModuleFacts | None:
        """The class of that name: defined in ``near`` (the module using the name) or
        here if so, else the only one, else the first (unrelated scripts reuse names)."""
        candidates = self.classes.get(name, [])
        for module in (near, self.here):
            for facts in candidates:
                if facts.module == module:
                    return facts
        return candidates[0] if candidates else None

    def chain(self, name: str) -> list[LightningModuleFacts]:
        """The class and its ancestors known to the project, nearest first; empty when
        it does not derive from LightningModule."""
        chain: list[LightningModuleFacts] = []
        current = self._lookup(name, self.near.get(name, self.here))
        while current is not None and len(chain) < self._DEPTH and current not in chain:
            chain.append(current)
            if current.lightning:
                return chain
            near = current.module
            current = next((found for b in current.bases if (found := self._lookup(b, near)) is not None), None)
        return []

    def resolved(self, name: str) -> LightningModuleFacts | None:
        chain = self.chain(name)
        if not chain:
            return None
        configured = next((c for c in chain if c.momenta or c.given_optimizers), chain[0])
        resolved = LightningModuleFacts(
            configured.momenta,
            any(c.manual for c in chain),
            any(c.clips_itself for c in chain),
            configured.lines,
            configured.module,
            given_optimizers=configured.given_optimizers,
            given_lines=configured.given_lines,
        )
        if id(configured) in self.files:  # its optimizers are shown where that class builds them
            self.files[id(resolved)] = self.files[id(configured)]
        return resolved


def _instantiated(ctx: FileContext, call: ast.Call) -> ConfigRef | None:
    """``hydra.utils.instantiate(cfg.trainer, ...)``: the config mapping it builds
    an object from (its ``_target_`` names the class), or None."""
    if last_part(ctx.qualname(call.func) or "") != "instantiate" or "hydra" not in (ctx.qualname(call.func) or "") or not call.args:
        return None
    section = ctx.values.config_entry(call.args[0])
    return section if section is not None and section.node is not None and section.node.is_mapping else None


def _target_class(section: ConfigRef) -> str:
    """The ``_target_`` an instantiated config section names (``lightning.pytorch.Trainer``)."""
    assert section.node is not None
    target = section.document.scalar(section.node.get("_target_"))
    return target if isinstance(target, str) else ""


def _config_section(ctx: FileContext, call: ast.Call) -> ConfigRef | None:
    """``Trainer(**cfg.trainer)`` (other keywords beside it allowed) where
    ``cfg.trainer`` is a mapping of a config file the code reads; or
    ``hydra.utils.instantiate(cfg.trainer)`` of a Lightning Trainer."""
    instantiated = _instantiated(ctx, call)
    if instantiated is not None:
        return instantiated
    spread = [kw.value for kw in call.keywords if kw.arg is None]
    if len(spread) != 1 or call.args:
        return None
    section = ctx.values.config_entry(spread[0])
    if section is None or section.node is None or not section.node.is_mapping:
        return None
    return section


def _is_trainer(ctx: FileContext, call: ast.Call) -> bool:
    if isinstance(call.func, (ast.Attribute, ast.Name)) and (dotted(call.func) or "").endswith("instantiate"):
        section = _instantiated(ctx, call)
        target = _target_class(section) if section is not None else ""
        return last_part(target) == "Trainer" and target.startswith(("lightning", "pytorch_lightning"))
    return _is_trainer_class(ctx, call.func)


def _is_cli(ctx: FileContext, call: ast.Call) -> bool:
    qual = ctx.qualname(call.func) or ""
    return last_part(qual) == "LightningCLI" and qual.startswith(("lightning", "pytorch_lightning"))


def _is_argparse_trainer(ctx: FileContext, call: ast.Call) -> bool:
    """``Trainer.from_argparse_args(args)`` (Lightning 1.x)."""
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "from_argparse_args" and _is_trainer_class(ctx, func.value)


def _is_trainer_class(ctx: FileContext, node: ast.expr) -> bool:
    qual = ctx.qualname(node) or ""
    return last_part(qual) == "Trainer" and (qual.startswith(("lightning", "pytorch_lightning")) or qual in ("L.Trainer", "pl.Trainer"))


def _names_config_file(call: ast.Call) -> bool:
    """A YAML file named anywhere in the call (``parser_kwargs={"default_config_files":
    ["config.yaml"]}``): it may set trainer.gradient_clip_val; it is not read."""
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.endswith((".yaml", ".yml", ".json"))
        for n in ast.walk(call)
    )


def _bound_value(ctx: FileContext, node: ast.expr) -> list[ast.expr]:
    """What a name holds where it is used: its last binding before that line when
    straight-line order tells, else every binding (``if ...: net = A() else: net = B()``)."""
    if not isinstance(node, ast.Name):
        return [node]
    binding = ctx.values.binding_before(node)
    if binding is not None:
        return [binding.value] if binding.value is not None and not binding.path else []
    return [b.value for b in ctx.values.bindings(node.id, node) or [] if b.value is not None and not b.path]


def _trained_classes(ctx: FileContext, trainer: ast.Call) -> list[str]:
    return [name for name, _section in _trained_models(ctx, trainer)]


def _trained_models(ctx: FileContext, trainer: ast.Call) -> list[tuple[str, ConfigRef | None]]:
    """Classes of the modules handed to this Trainer's ``fit(...)``: the fit calls whose
    receiver is this very Trainer (a notebook builds several under one name); each with
    the config section ``hydra.utils.instantiate(cfg.model)`` builds it from."""
    models: list[tuple[str, ConfigRef | None]] = []
    for call in ctx.nodes_of(ast.Call):
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("fit", "tune")):
            continue
        if func.value is not trainer and not any(v is trainer for v in _bound_value(ctx, func.value)):
            continue
        for model in _bound_value(ctx, argument(call, "model", 0)):
            if isinstance(model, ast.Call):
                section = _instantiated(ctx, model)  # hydra.utils.instantiate(cfg.model): its _target_'s class
                models.append((last_part(_target_class(section)), section) if section is not None else (last_part(ctx.qualname(model.func)), None))
    return models


def _given_from_config(facts: LightningModuleFacts, section: ConfigRef | None, cls: str) -> tuple[LightningModuleFacts, list[RelatedLocation]]:
    """A module whose configure_optimizers calls an ``__init__`` parameter, built by
    ``hydra.utils.instantiate(cfg.model)``: that parameter is the section's node of its
    name (``optimizer: {_target_: torch.optim.Adam, _partial_: true, lr: ...}``), whose
    ``_target_`` and keys are the optimizer and its arguments. The facts with those
    optimizers, and where each ``_target_`` is; unchanged when any is not known."""
    if facts.momenta or not facts.given_optimizers or section is None or section.node is None:
        return facts, []
    momenta, related = [], []
    for parameter in facts.given_optimizers:
        node = section.node.get(parameter)
        target = node.get("_target_") if node is not None and node.is_mapping else None
        name = section.document.scalar(target) if target is not None else None
        if node is None or target is None or not isinstance(name, str):
            return facts, []
        settings = {key: _literal(section, child) for key, child in node.value.items() if not key.startswith("_")}
        momentum = configured_optimizer(name, settings, f"{last_part(name)} from {'.'.join(map(str, node.keys))}")
        if momentum is None:
            return facts, []
        momenta.append(momentum)
        document, written = located(section.document, target)
        span = Span(written.key_line, written.key_column, written.end_line, written.end_column)
        note = f"the optimizer's class ({'.'.join(map(str, target.keys))}), handed to {cls}({parameter}=...) by hydra.utils.instantiate"
        related.append(RelatedLocation(display_path(Path(document.key)), span, note))
    return replace(facts, momenta=momenta, lines=facts.given_lines), related


def _literal(section: ConfigRef, node: ConfigNode) -> object:
    """A config value as the optimizer receives it (``betas: [0.9, 0.98]`` a list)."""
    if isinstance(node.value, list):
        return [section.document.scalar(item) for item in node.value]
    return section.document.scalar(node)


def _built_related(ctx: FileContext, trained: list[LightningModuleFacts], modules: "Modules") -> list[RelatedLocation]:
    """The constructions of the optimizers ``configure_optimizers`` returns, as related locations."""
    related = []
    for facts in trained:
        key = modules.files.get(id(facts))
        for line, momentum in zip(facts.lines, facts.momenta):
            if key is None or not momentum.is_momentum:
                continue
            where = ctx.path if key == (ctx.file and file_key(ctx.file)) else display_path(Path(key))
            related.append(RelatedLocation.at(where, line, f"{momentum.optimizer} is built here, in configure_optimizers"))
    return list(dict.fromkeys(related))


def _built_where(ctx: FileContext, trained: list[LightningModuleFacts]) -> str:
    """``built at line 153 in configure_optimizers``, or ``model.py:48`` in another file."""
    places = []
    for facts in trained:
        for line in facts.lines:
            places.append(f"line {line}" if facts.module == ctx.module else f"{facts.module.replace('.', '/')}.py:{line}")
    places = list(dict.fromkeys(places))
    return f"built at {', '.join(places)} in configure_optimizers" if places else "from configure_optimizers"


@register
class LightningMomentumWithoutClipping(Rule):
    code = "LL304"
    chain = ChainRole.MOMENTUM
    name = "lightning-momentum-without-clipping"
    severity = Severity.WARNING
    triggers = ("Trainer", "automatic_optimization", "LightningCLI", "hydra.utils")
    fix_applicability = Applicability.UNSAFE
    summary = "A LightningModule with a momentum optimizer, trained by a Trainer without gradient_clip_val."
    why = (
        "configure_optimizers returns an optimizer that keeps a running average of gradients (SGD with momentum, "
        "Adam, ...), so one bad batch moves the weights for many steps after it (~1/(1-μ) for SGD; for Adam "
        "~1/(1-β2) steps of shrunk updates). Lightning clips only when the Trainer gets gradient_clip_val (or "
        "the module clips in configure_gradient_clipping / under manual optimization)."
    )
    fix_doc = (
        "Adds gradient_clip_val=1.0 to the Trainer (Lightning's algorithm defaults to 'norm'); under manual "
        "optimization inserts self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm=\"norm\") "
        "before opt.step(). For gradient_clip_val=args.x whose default is None, sets the default. The value is "
        "[tool.losslint] clip-max-norm. Unsafe: training changes. A LightningCLI whose --config YAML the project's "
        "launch commands (README, shell scripts), default_config_files or the configs/*.yaml layout name is "
        "reported and fixed in that YAML's trainer section (docs/configs.md). No fix for a Trainer built from "
        "configuration that is not found (LightningCLI, Trainer.from_argparse_args): the finding (info) names the "
        "key to set. A Trainer that "
        "takes its arguments from a YAML/JSON/TOML config the code reads (Trainer(**cfg.trainer) with cfg = "
        "OmegaConf.load(...)) is reported in that config, at its trainer section (or at a gradient_clip_val of "
        "null or 0), and fixed there with gradient_clip_val: 1.0, comments and layout kept."
    )
    references = (
        "https://lightning.ai/docs/pytorch/stable/common/trainer.html#gradient-clip-val",
        "https://lightning.ai/docs/pytorch/stable/model/manual_optimization.html#gradient-clipping",
    )
    flagged = (
        Flagged(
            """
            import lightning as L
            import torch

            class Classifier(L.LightningModule):
                def training_step(self, batch, batch_idx):
                    x, y = batch
                    return torch.nn.functional.cross_entropy(self(x), y)

                def configure_optimizers(self):
                    return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

            trainer = L.Trainer(max_epochs=10)
            trainer.fit(Classifier(), train_loader)
            """,
            fixed="""
            import lightning as L
            import torch

            class Classifier(L.LightningModule):
                def training_step(self, batch, batch_idx):
                    x, y = batch
                    return torch.nn.functional.cross_entropy(self(x), y)

                def configure_optimizers(self):
                    return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

            trainer = L.Trainer(max_epochs=10, gradient_clip_val=1.0)
            trainer.fit(Classifier(), train_loader)
            """,
            message_contains=("Classifier", "momentum 0.9"),
            unsafe=True,
        ),
        Flagged(
            """
            import pytorch_lightning as pl
            from model import LitModel

            model = LitModel()
            trainer = pl.Trainer(accelerator="gpu", devices=1)
            trainer.fit(model)
            """,
            files=(
                (
                    "model.py",
                    """
                    import pytorch_lightning as pl
                    import torch

                    class LitModel(pl.LightningModule):
                        def configure_optimizers(self):
                            optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
                            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 10)
                            return [optimizer], [scheduler]
                    """,
                ),
            ),
            fixed="""
            import pytorch_lightning as pl
            from model import LitModel

            model = LitModel()
            trainer = pl.Trainer(accelerator="gpu", devices=1, gradient_clip_val=1.0)
            trainer.fit(model)
            """,
            message_contains=("LitModel", "AdamW"),
            unsafe=True,
        ),
        Flagged(
            """
            import lightning as L
            import torch

            class GAN(L.LightningModule):
                def __init__(self):
                    super().__init__()
                    self.automatic_optimization = False

                def training_step(self, batch, batch_idx):
                    opt_g, opt_d = self.optimizers()
                    loss_d = self.discriminator_loss(batch)
                    opt_d.zero_grad()
                    self.manual_backward(loss_d)
                    opt_d.step()

                def configure_optimizers(self):
                    g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
                    d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
                    return [g, d], []
            """,
            fixed="""
            import lightning as L
            import torch

            class GAN(L.LightningModule):
                def __init__(self):
                    super().__init__()
                    self.automatic_optimization = False

                def training_step(self, batch, batch_idx):
                    opt_g, opt_d = self.optimizers()
                    loss_d = self.discriminator_loss(batch)
                    opt_d.zero_grad()
                    self.manual_backward(loss_d)
                    self.clip_gradients(opt_d, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
                    opt_d.step()

                def configure_optimizers(self):
                    g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
                    d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
                    return [g, d], []
            """,
            message_contains=("manual optimization", "β1=0.5"),
            unsafe=True,
        ),
        Flagged(
            """
            import lightning.pytorch as pl
            from models import unet

            if hparams.model == "UNetDS":
                net = unet.UNetDS(hparams=hparams)
            else:
                net = unet.UNet(hparams=hparams)
            trainer = pl.Trainer(max_epochs=hparams.epochs)
            trainer.fit(model=net)
            """,
            files=(
                (
                    "models/base.py",
                    """
                    import lightning.pytorch as pl
                    from torch import optim

                    class UNetBase(pl.LightningModule):
                        def configure_optimizers(self):
                            return optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
                    """,
                ),
                (
                    "models/unet.py",
                    """
                    from models.base import UNetBase

                    class UNet(UNetBase):
                        pass

                    class UNetDS(UNetBase):
                        pass
                    """,
                ),
            ),
            fixed="""
            import lightning.pytorch as pl
            from models import unet

            if hparams.model == "UNetDS":
                net = unet.UNetDS(hparams=hparams)
            else:
                net = unet.UNet(hparams=hparams)
            trainer = pl.Trainer(max_epochs=hparams.epochs, gradient_clip_val=1.0)
            trainer.fit(model=net)
            """,
            message_contains=("UNetDS, UNet (Adam built at models/base.py:6 in configure_optimizers)",),
            unsafe=True,
        ),
        Flagged(
            """
            from lightning.pytorch.cli import LightningCLI
            import lightning.pytorch as pl
            import torch

            class MoCo(pl.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.SGD(self.parameters(), lr=0.03, momentum=0.9)

            if __name__ == "__main__":
                LightningCLI(MoCo, seed_everything_default=42)
            """,
            fixed=None,
            message_contains=("MoCo (SGD built at line 7", "trainer.gradient_clip_val"),
        ),
        Flagged(
            """
            from argparse import ArgumentParser
            import pytorch_lightning as pl
            from pytorch_lightning import Trainer
            import torch

            class BYOL(pl.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.Adam(self.parameters(), lr=1e-3)

            parser = ArgumentParser()
            parser = Trainer.add_argparse_args(parser)
            args = parser.parse_args()
            model = BYOL()
            trainer = Trainer.from_argparse_args(args)
            trainer.fit(model)
            """,
            fixed=None,
            message_contains=("BYOL (Adam built at line 8", "--gradient_clip_val"),
        ),
    )
    quiet = (
        Quiet(
            """
            from lightning.pytorch.cli import LightningCLI
            import lightning.pytorch as pl
            import torch

            class MoCo(pl.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.SGD(self.parameters(), lr=0.03, momentum=0.9)

            LightningCLI(MoCo, parser_kwargs={"default_config_files": ["configs/moco.yaml"]})
            """,
            why="LightningCLI with a configuration file named in the code: it may set trainer.gradient_clip_val",
        ),
        Quiet(
            """
            from argparse import ArgumentParser
            import pytorch_lightning as pl
            from pytorch_lightning import Trainer
            import torch

            class BYOL(pl.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.Adam(self.parameters(), lr=1e-3)

            parser = ArgumentParser()
            parser.add_argument("--gradient_clip_val", type=float, default=1.0)
            args = parser.parse_args()
            trainer = Trainer.from_argparse_args(args)
            trainer.fit(BYOL())
            """,
            why="Trainer.from_argparse_args with a --gradient_clip_val that defaults to 1.0",
        ),

        Quiet(
            """
            import lightning.pytorch as pl
            from models.unet import UNet
            trainer = pl.Trainer(max_epochs=10)
            trainer.fit(UNet())
            """,
            files=(
                (
                    "models/base.py",
                    """
                    import lightning.pytorch as pl
                    import torch

                    class UNetBase(pl.LightningModule):
                        def configure_optimizers(self):
                            return torch.optim.Adam(self.parameters())

                        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                            self.clip_gradients(optimizer, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
                    """,
                ),
                ("models/unet.py", "from models.base import UNetBase\n\nclass UNet(UNetBase):\n    pass\n"),
            ),
            why="a subclass whose base class (in another file) clips in configure_gradient_clipping",
        ),
        Quiet(
            """
            import lightning as L
            import torch
            class M(L.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.Adam(self.parameters())
            trainer = L.Trainer(gradient_clip_val=0.5)
            trainer.fit(M())
            """,
            why="gradient_clip_val on the Trainer",
        ),
        Quiet(
            """
            import lightning as L
            import torch
            class M(L.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.SGD(self.parameters(), lr=0.1)
            trainer = L.Trainer()
            trainer.fit(M())
            """,
            why="plain SGD: momentum 0",
        ),
        Quiet(
            """
            import lightning as L
            import torch
            class M(L.LightningModule):
                def configure_optimizers(self):
                    return torch.optim.AdamW(self.parameters())
                def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                    self.clip_gradients(optimizer, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
            trainer = L.Trainer()
            trainer.fit(M())
            """,
            why="the module clips in configure_gradient_clipping",
        ),
        Quiet(
            """
            import lightning as L
            from somewhere import Model
            trainer = L.Trainer(**config["trainer"])
            trainer.fit(Model())
            """,
            why="a Trainer from a config: its arguments are not known",
        ),
        Quiet(
            """
            import lightning as L
            import torch
            class M(L.LightningModule):
                def __init__(self):
                    super().__init__()
                    self.automatic_optimization = False
                def training_step(self, batch, batch_idx):
                    opt = self.optimizers()
                    self.manual_backward(self.loss(batch))
                    self.clip_gradients(opt, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
                    opt.step()
                def configure_optimizers(self):
                    return torch.optim.Adam(self.parameters())
            """,
            why="manual optimization that clips before opt.step()",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        resolver = Resolver(ctx)
        yield from self._manual_steps(ctx, resolver)
        modules = Modules(ctx)
        here = [cls.name for cls in ctx.nodes_of(ast.ClassDef) if modules.chain(cls.name)]
        for call in ctx.nodes_of(ast.Call):
            finding = None
            if _is_trainer(ctx, call):
                finding = self._judge_trainer(ctx, call, modules, here)
            elif _is_cli(ctx, call) or _is_argparse_trainer(ctx, call):
                finding = self._judge_configured(ctx, call, modules, here)
            if finding is not None:
                yield finding

    def _judge_configured(self, ctx: FileContext, call: ast.Call, modules: Modules, here: list[str]) -> Finding | None:
        """A Trainer built from configuration: ``LightningCLI(Model, DataModule)`` (its
        ``trainer.gradient_clip_val`` comes from the YAML or the command line) or
        ``Trainer.from_argparse_args(args)`` (``--gradient_clip_val``). Info: the run's
        configuration decides, which the code does not show; quiet when the code names a
        configuration file (it may set the key) or the parser's default clips."""
        cli = _is_cli(ctx, call)
        if cli:
            model = argument(call, "model_class", 0)
            classes = [last_part(ctx.qualname(model))] if isinstance(model, (ast.Name, ast.Attribute)) else []
            if _names_config_file(call) or cli_configs_found(ctx.project, ctx.file or ctx.path):
                return None  # its configs are judged where they are (rules/config_checks.py)
        else:
            default = ctx.project.argparse_default("gradient_clip_val", ctx.file or None)
            if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0:
                return None
            classes = [c for c in _trained_classes(ctx, call) if modules.chain(c)] or here
        classes = [c for c in classes if modules.chain(c)]
        trained = [facts for c in classes if (facts := modules.resolved(c)) is not None]
        if not trained or any(m.manual or m.clips_itself for m in trained):
            return None
        momenta = [m.resolved(ctx.project) for facts in trained for m in facts.momenta]
        if not momenta or not all(m.is_momentum for m in momenta):
            return None
        momentum = momenta[0]
        subject = f"{', '.join(dict.fromkeys(classes))} ({momentum.optimizer} {_built_where(ctx, trained)})"
        if cli:
            how = (
                "is trained by LightningCLI, whose Trainer clips only if the configuration sets "
                "trainer.gradient_clip_val (in the YAML passed with --config, or --trainer.gradient_clip_val=1.0); "
                "none is named here"
            )
        else:
            how = (
                "is trained by Trainer.from_argparse_args, which clips only if --gradient_clip_val is given "
                "(Lightning's default: no clipping); give it a default, or pass gradient_clip_val"
            )
        message = f"{subject} {how}: {momentum.describe()}"
        return ctx.finding(self, call, message, None, severity=Severity.INFO, related=_built_related(ctx, trained, modules))

    def _judge_trainer(self, ctx: FileContext, call: ast.Call, modules: Modules, here: list[str]) -> Finding | None:
        section = _config_section(ctx, call)
        if section is None and (any(kw.arg is None for kw in call.keywords) or call.args):
            return None  # Trainer(**cfg) from a dict the code builds: not known
        models = _trained_models(ctx, call)
        for _c, model_section in models:
            if model_section is not None:
                modules.add_target(_target_class(model_section))
        models = [(c, section) for c, section in models if modules.chain(c)] or [(c, None) for c in here]
        classes = [c for c, _section in models]
        trained, given = [], []
        for c, model_section in models:
            if (facts := modules.resolved(c)) is not None:
                configured, where = _given_from_config(facts, model_section, c)
                if configured is not facts and id(facts) in modules.files:
                    modules.files[id(configured)] = modules.files[id(facts)]
                trained.append(configured)
                given.extend(where)
        if not trained or any(m.manual or m.clips_itself for m in trained):
            return None
        momenta = [m.resolved(ctx.project) for facts in trained for m in facts.momenta]
        if not momenta or not all(m.is_momentum for m in momenta):
            return None
        momentum = momenta[0]
        max_norm = repr(float(ctx.settings.clip_max_norm))
        clip = keyword(call, "gradient_clip_val")
        subject = f"{', '.join(dict.fromkeys(classes))} ({momentum.optimizer} {_built_where(ctx, trained)})"
        if section is not None and clip is None:
            return self._judge_config_section(ctx, call, section, subject, momentum, [*given, *_built_related(ctx, trained, modules)])
        if clip is not None:
            gate = gate_of(ctx, Clip(call, clip.value))
            if gate is None:
                value = ctx.values.value(clip.value)
                if not (value is None or value == 0):
                    return None
            else:
                node, fix = gate_fix(ctx, gate, "the Trainer clips")
                message = (
                    f"{subject} is trained with gradient_clip_val={ctx.text(clip.value)}, and {gate.describe(ctx)}: with the "
                    f"defaults nothing is clipped. {momentum.describe()}"
                )
                related = [ctx.related(call, "the Trainer")] if node is not None else []
                return ctx.finding(self, node or call, message, fix, severity=momentum.severity, related=related + _built_related(ctx, trained, modules))
        edit = NodeEdit(ctx.span(call), "Call", lambda node: set_keyword(node, "gradient_clip_val", max_norm))
        fix = Fix(f"add gradient_clip_val={max_norm}", Applicability.UNSAFE, (edit,))
        message = f"{subject} is trained by a Trainer without gradient_clip_val: {momentum.describe()}"
        return ctx.finding(self, call, message, fix, severity=momentum.severity, related=[*given, *_built_related(ctx, trained, modules)])

    def _judge_config_section(
        self, ctx: FileContext, call: ast.Call, section: ConfigRef, subject: str, momentum: Momentum, built: list[RelatedLocation]
    ) -> Finding | None:
        """``Trainer(**cfg.trainer)`` with the section in a config file: the finding and
        its fix go there, at ``gradient_clip_val`` (null or 0) or at the section that
        lacks it; quiet when the key clips or cannot be known."""
        document, node = section.document, section.node
        assert node is not None
        max_norm = repr(float(ctx.settings.clip_max_norm))
        related = [ctx.related(call, "the Trainer is built from this section here"), *built]
        note = shared_note(ctx, document)
        where = "the config" if not section.keys else f"the {'.'.join(map(str, section.keys))} section"
        clip = node.get("gradient_clip_val")
        if clip is not None:
            value = document.scalar(clip)
            if not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)):
                return None  # clips, or not known statically
            message = f"{subject} is trained by a Trainer built from {where}, whose gradient_clip_val is {clip.value!r}: nothing is clipped. {momentum.describe()}{note}"
            fix = config_fix(f"set gradient_clip_val to {max_norm}", set_scalar(document, clip, max_norm))
            return config_finding(self, document, clip, message, fix, momentum.severity, related)
        message = f"{subject} is trained by a Trainer built from {where}, which has no gradient_clip_val: {momentum.describe()}{note}"
        fix = config_fix(f"add gradient_clip_val: {max_norm}", add_entry(document, node, "gradient_clip_val", max_norm))
        return config_finding(self, document, node, message, fix, momentum.severity, related)

    def _manual_steps(self, ctx: FileContext, resolver: Resolver) -> Iterable[Finding]:
        max_norm = repr(float(ctx.settings.clip_max_norm))
        for site in step_sites(ctx):
            cls = ctx.enclosing(site.call, ast.ClassDef)
            if not is_lightning_module(ctx, cls) or site.scaler is not None:
                continue
            found = site.holds(resolver.resolve(site.optimizer))
            if not found or not all(f.momentum.is_momentum for f in found):
                continue
            clips = clips_reaching(ctx, resolver, site.call)
            if clips and any(gate_of(ctx, c) is None for c in clips):
                continue
            momentum = found[0].momentum
            statement = enclosing_statement(ctx, site.call)
            optimizer = ctx.text(site.optimizer)
            fix = None
            if isinstance(statement, ast.Expr):
                code = f'self.clip_gradients({optimizer}, gradient_clip_val={max_norm}, gradient_clip_algorithm="norm")'
                fix = Fix(f"clip with self.clip_gradients before {optimizer}.step()", Applicability.UNSAFE, (InsertBefore(ctx.span(statement), (code,)),))
            message = (
                f"{momentum.optimizer} steps under manual optimization with no self.clip_gradients before it "
                f"(the Trainer's gradient_clip_val does not apply): {momentum.describe()}"
            )
            yield ctx.finding(self, site.call, message, fix, severity=momentum.severity)
