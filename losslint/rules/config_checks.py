"""Findings in config files, under the existing rules' codes.

A rule that judges Python code may find that the setting deciding a risk sits in
a config file the code reads (``analysis/configs.py``): the finding then goes in
that file, at the key (or at the section where the key is missing), with a
related location at the code that consumes it, and its fix edits the config in
place (``configs.TextEdit``: comments, order and layout kept). ``config_finding``
makes such a finding; the checker (checking.py) reports it with the config's own
findings, where ``# noqa`` comments of YAML and TOML apply.

A check that belongs to an existing rule but reads only configs registers here
with ``@config_check(code, triggers)``: the checker runs it with that rule, so
``--select``, ``--ignore`` and ``noqa`` treat its findings as the rule's. The
DeepSpeed check below is LL301's: a DeepSpeed engine clips only by its JSON's
``gradient_clipping``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from losslint.analysis import configs, hf_arguments, trainer_configs  # (trainer_configs: its collector and launch finders register)
from losslint.analysis.configs import ConfigDocument, ConfigNode, TextEdit
from losslint.discovery import display_path
from losslint.findings import Applicability, Finding, Fix, RelatedLocation, Severity, Span
from losslint.project import UNKNOWN

if TYPE_CHECKING:
    from losslint.context import FileContext
    from losslint.rules.base import Rule
    from losslint.rules.momentum_common import Momentum
    from losslint.rules.momentum_lightning import LightningModuleFacts, Modules


@dataclass(frozen=True)
class ConfigCheck:
    code: str
    triggers: tuple[str, ...]
    check: Callable[["FileContext", "Rule"], Iterable[Finding]]


_CHECKS: dict[str, list[ConfigCheck]] = {}


def config_check(code: str, triggers: tuple[str, ...]) -> Callable:
    def register(fn: Callable[["FileContext", "Rule"], Iterable[Finding]]) -> Callable:
        _CHECKS.setdefault(code, []).append(ConfigCheck(code, triggers, fn))
        return fn

    return register


def checks_for(code: str) -> list[ConfigCheck]:
    return _CHECKS.get(code, [])


def all_triggers() -> dict[str, tuple[str, ...]]:
    """code -> the trigger words of its config checks."""
    return {code: tuple(t for c in checks for t in c.triggers) for code, checks in _CHECKS.items()}


def config_finding(
    rule: "Rule",
    document: ConfigDocument,
    at: ConfigNode,
    message: str,
    fix: Fix | None,
    severity: Severity | None = None,
    related: Iterable[RelatedLocation] = (),
    at_key: bool = True,
) -> Finding:
    """A finding in a config file, at a node's key (``at_key``) or at its value."""
    via = [RelatedLocation(display_path(Path(k)), Span(ln, col, ln, col), note) for k, ln, col, note in configs.reached_via(document, at)]
    related = (*related, *via)
    document, at = configs.located(document, at)  # a composed (Hydra) config's node: the file that wrote it
    if at_key:
        line, column = at.key_line, at.key_column
        end_line, end_column = (at.end_line, at.end_column) if at.end_line == at.key_line and not at.is_mapping else (at.key_line, at.key_column)
        if at.is_mapping or end_line != line:  # a section: its key only
            key_text = document.lines[line - 1][column:] if line <= len(document.lines) else ""
            end_line, end_column = line, column + len(key_text.split(":")[0].rstrip()) if document.kind != "json" or at.keys else column + 1
    else:
        line, column, end_line, end_column = at.line, at.column, at.end_line, at.end_column
    return Finding(
        code=rule.code,
        name=rule.name,
        message=message,
        severity=severity or rule.severity,
        path=display_path(Path(document.key)),
        span=Span(line, column, end_line, max(end_column, column)),
        fix=fix,
        related_locations=tuple(related),
    )


def shared_note(ctx: "FileContext", document: ConfigDocument) -> str:
    """Where a config is read by several scripts, say so (a fix there changes them all)."""
    readers = configs.readers_of(ctx.project, document.key)
    if len(readers) < 2:
        return ""
    names = ", ".join(display_path(Path(r)) for r in readers[:4]) + (", ..." if len(readers) > 4 else "")
    return f"; this config is read by {len(readers)} scripts ({names}): the fix applies to all of them"


def config_fix(description: str, edit: TextEdit | None) -> Fix | None:
    return Fix(description, Applicability.UNSAFE, (edit,)) if edit is not None else None


# -- LL301: a DeepSpeed JSON without gradient_clipping ----------------------------------

# DeepSpeed's own optimizer types (lowercased, as it matches them) and torch's that it
# builds by name; Adam-like ones carry beta1 (0.9 unless "betas" says otherwise).
_DS_ADAM_LIKE = {
    "adam", "adamw", "lamb", "onebitadam", "zerooneadam", "onebitlamb", "fusedadam", "fusedlamb", "cpuadam",
    "deepspeedcpuadam", "muadam", "muadamw", "lion", "fusedlion", "nadam", "radam", "adamax",
}
_DS_SGD_LIKE = {"sgd", "musgd", "rmsprop"}


def _ds_optimizer(document: ConfigDocument, section: ConfigNode) -> tuple[str, float] | None:
    """(its name, β1 or μ) of the config's "optimizer" section when that is a
    momentum optimizer; None when it is not, or cannot be told."""
    type_node = section.get("type")
    name = document.scalar(type_node)
    if not isinstance(name, str):
        return None
    params = section.get("params")
    kind = name.lower().replace("_", "")
    if kind in _DS_ADAM_LIKE:
        betas = params.get("betas") if params is not None else None
        if betas is not None and isinstance(betas.value, list) and betas.value:
            beta1 = document.scalar(betas.value[0])
            if isinstance(beta1, (int, float)) and not isinstance(beta1, bool):
                return (name, float(beta1)) if beta1 > 0 else None
        return name, 0.9
    if kind in _DS_SGD_LIKE:
        momentum = document.scalar(params.get("momentum")) if params is not None else None
        if isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and momentum > 0:
            return name, float(momentum)
    return None


def _keyword(call: ast.Call, *names: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg in names:
            return kw.value
    return None


@config_check("LL301", triggers=("deepspeed",))
def deepspeed_without_clipping(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """``deepspeed.initialize(config="ds_config.json")`` whose JSON sets a momentum
    optimizer (or whose model's optimizer, handed in as ``optimizer=``, is one) and
    no ``gradient_clipping`` (or 0): DeepSpeed clips by that key alone (its default
    is 0.0, no clipping, before DeepSpeed PR #8068)."""
    if not configs.has_reads(ctx):
        return
    for read, key in configs.reads_of(ctx.project, ctx.file or ctx.path):
        if read.how != "deepspeed.initialize":
            continue
        call = next((c for c in ctx.nodes_of(ast.Call) if c.lineno == read.line and c.col_offset == read.column), None)
        document = configs.document_for(ctx.project, key)
        root = document.root
        if call is None or root is None or not root.is_mapping:
            continue
        section = root.get("optimizer")
        related = [ctx.related(call, "deepspeed.initialize reads this config here")]
        if section is not None and section.is_mapping:
            yield from _judge_deepspeed_json(ctx, rule, document, section, related)
            continue
        handed = _keyword(call, "optimizer")
        if handed is None or isinstance(handed, ast.Constant):
            continue
        from losslint.rules.momentum_flow import Resolver  # (the LL3 family's optimizer following)

        momenta = [f.momentum for f in Resolver(ctx).resolve(handed)]
        if not momenta or not all(m.is_momentum for m in momenta):
            continue
        what = f"the model's optimizer ({momenta[0].optimizer}) is stepped by the engine"
        yield from _judge_deepspeed_json(ctx, rule, document, None, related, what, momenta[0].severity)


def _judge_deepspeed_json(
    ctx: "FileContext",
    rule: "Rule",
    document: ConfigDocument,
    section: ConfigNode | None,
    related: list[RelatedLocation],
    what: str | None = None,
    severity: Severity | None = None,
) -> Iterable[Finding]:
    """A DeepSpeed JSON whose engine steps a momentum optimizer (its ``"optimizer"``
    ``section``, or ``what`` the code hands in) with no ``gradient_clipping`` (or 0)."""
    root = document.root
    assert root is not None
    if what is None:
        assert section is not None
        found = _ds_optimizer(document, section)
        if found is None:
            return
        name, coefficient = found
        what = f'its "optimizer" section builds {name} ({"β1" if name.lower() not in _DS_SGD_LIKE else "momentum"} {coefficient:g})'
        severity = Severity.WARNING if name.lower() in _DS_SGD_LIKE else Severity.INFO
    clipping = root.get("gradient_clipping")
    max_norm = repr(float(ctx.settings.clip_max_norm))
    note = shared_note(ctx, document)
    if clipping is not None:
        value = document.scalar(clipping)
        if value is UNKNOWN or isinstance(value, str) or (isinstance(value, (int, float)) and value > 0):
            return  # clips, or "auto" (filled in by the HF Trainer), or unknown
        message = (
            f'DeepSpeed config sets "gradient_clipping": {clipping.value!r}, so the engine never clips, and {what}: '
            f"a gradient spike (a small last batch, an outlier) is carried on by its momentum{note}"
        )
        fix = config_fix(f'set "gradient_clipping" to {max_norm}', configs.set_scalar(document, clipping, max_norm))
        yield config_finding(rule, document, clipping, message, fix, severity, related, at_key=True)
        return
    message = (
        f'DeepSpeed config without "gradient_clipping", and {what}: the engine clips only by that key '
        f"(default 0.0, off, before DeepSpeed PR #8068), so a gradient spike (a small last batch, an outlier) "
        f"is carried on by its momentum{note}"
    )
    fix = config_fix(f'add "gradient_clipping": {max_norm}', configs.add_entry(document, root, "gradient_clipping", max_norm))
    yield config_finding(rule, document, section if section is not None else root, message, fix, severity, related, at_key=True)


# -- trainers configured from their command line (analysis/trainer_configs.py) ----------


def _calls_at(ctx: "FileContext", read: configs.ConfigRead) -> ast.Call | None:
    return next((c for c in ctx.nodes_of(ast.Call) if c.lineno == read.line and c.col_offset == read.column), None)


def _own_read_list(ctx: "FileContext") -> list[configs.ConfigRead]:
    facts = ctx.project.own(ctx.file) if ctx.file else None
    reads = facts.get(configs.ConfigReads) if facts is not None else None
    return reads.reads if reads is not None else []


def _launch_related(launch: "trainer_configs.Launch", what: str) -> list[RelatedLocation]:
    if not launch.line:
        return []
    return [RelatedLocation.at(display_path(Path(launch.launcher)), launch.line, what)]


def _number(text: str | None) -> float | None | object:
    """A command-line value as a number, None for null/None, UNKNOWN otherwise."""
    if text is None:
        return UNKNOWN
    if text.lower() in ("null", "none", "~"):
        return None
    try:
        return float(text)
    except ValueError:
        return UNKNOWN


def _cli_node(documents: list[ConfigDocument], *keys: str) -> tuple[ConfigDocument, ConfigNode] | None:
    """The node at ``keys`` as LightningCLI merges its configs (the last that sets it
    wins), in the plain layout or under a ``fit:`` subcommand."""
    found = None
    for document in documents:
        for prefix in ((), ("fit",)):
            node = document.node(prefix + keys)
            if node is not None:
                found = (document, node)
    return found


def _cli_optimizer(documents: list[ConfigDocument]) -> "Momentum | None":
    """LightningCLI's ``optimizer:`` (``class_path: torch.optim.SGD`` with ``init_args``,
    or a bare class name), used when the model does not configure its optimizers."""
    from losslint.rules.momentum_common import configured_optimizer

    found = _cli_node(documents, "optimizer")
    if found is None:
        return None
    document, node = found
    if node.is_mapping:
        name = document.scalar(node.get("class_path"))
        init = node.get("init_args")
        settings = {k: _plain_value(document, v) for k, v in init.value.items()} if init is not None and init.is_mapping else {}
    else:
        name, settings = document.scalar(node), {}
    return configured_optimizer(name, settings) if isinstance(name, str) else None


def _plain_value(document: ConfigDocument, node: ConfigNode) -> object:
    if isinstance(node.value, list):
        return [document.scalar(item) for item in node.value]
    return document.scalar(node)


def _append_section(document: ConfigDocument, section: str, key: str, literal: str) -> TextEdit | None:
    """``section:\\n  key: literal`` at the end of a block-style YAML document."""
    if document.kind != "yaml" or document.root is None or document.root.flow:
        return None
    nested = [c for s in document.root.value.values() if s.is_mapping and not s.flow for c in s.value.values()]
    indent = min((c.key_column for c in nested), default=2) or 2
    lines = document.lines
    end = len(lines)
    separator = "" if document.text.endswith("\n") or not document.text else "\n"
    return TextEdit(end + 1 if separator == "" else end, 0 if separator == "" else len(lines[-1]), end + 1 if separator == "" else end,
                    0 if separator == "" else len(lines[-1]), f"{separator}{section}:\n{' ' * indent}{key}: {literal}\n")


def _cli_model(ctx: "FileContext", modules: "Modules", call: ast.Call, documents: list[ConfigDocument]) -> "tuple[str, LightningModuleFacts] | None":
    """The LightningModule a LightningCLI trains and its facts: the class given to the
    call, or the config's ``model.class_path`` (subclass mode: looked up in the module
    the path names, as LightningCLI imports it)."""
    from losslint.analysis.names import argument, dotted, last_part
    from losslint.rules.momentum_lightning import LightningClasses

    model = argument(call, "model_class", 0)
    name, module = None, None
    if isinstance(model, (ast.Name, ast.Attribute)):
        name = last_part(ctx.qualname(model) or dotted(model) or "")
        if name == "LightningModule":
            name = None
    if name is None:
        found = _cli_node(documents, "model", "class_path") or _cli_node(documents, "model")
        path = found[0].scalar(found[1]) if found is not None else None
        if not isinstance(path, str) or not path:
            return None
        module, _, name = path.rpartition(".")
    facts = modules.resolved(name)
    if facts is None and module:
        imported = ctx.project.imported(module, ctx.file or None)
        classes = imported.get(LightningClasses) if imported is not None else None
        own = classes.classes.get(name) if classes is not None else None
        facts = own if own is not None and own.lightning else None
    return (name, facts) if facts is not None else None


@config_check("LL304", triggers=("LightningCLI",))
def lightning_cli_without_clipping(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """``LightningCLI(Model, DataModule)`` run with ``--config X.yaml`` (found in the
    project's launch scripts and READMEs, ``default_config_files``, or the
    ``configs/*.yaml`` layout): a momentum optimizer (the model's
    ``configure_optimizers``, or the config's ``optimizer:``) and no
    ``trainer.gradient_clip_val`` in the merged configs or on the command line is
    LL304 in the config, at its ``trainer:`` section (or at a null/0 value)."""
    from losslint.rules.momentum_lightning import Modules

    reads = _own_read_list(ctx)
    if not any(r.how == trainer_configs.LIGHTNING_CLI for r in reads):
        return
    script = ctx.file or ctx.path
    exists = configs._exists_in(ctx.project)
    modules = Modules(ctx)
    max_norm = repr(float(ctx.settings.clip_max_norm))
    for read in reads:
        if read.how != trainer_configs.LIGHTNING_CLI:
            continue
        call = _calls_at(ctx, read)
        if call is None:
            continue
        defaults = [key for r in reads if r.how == "LightningCLI" and (r.line, r.column) == (read.line, read.column) for key in [configs.resolve_path(r, script, exists)] if key]
        for launch in trainer_configs.cli_launches(script, defaults, exists):
            documents = [configs.document_for(ctx.project, key) for key in launch.configs]
            if not documents or any(d.root is None or not d.root.is_mapping for d in documents):
                continue
            if launch.override("trainer.gradient_clip_val") is not None:
                continue  # the command line sets it
            trained = _cli_model(ctx, modules, call, documents)
            if trained is None:
                continue
            name, facts = trained
            if facts.manual or facts.clips_itself:
                continue
            momenta = [m.resolved(ctx.project) for m in facts.momenta]
            if not momenta:
                optimizer = _cli_optimizer(documents)
                momenta = [optimizer] if optimizer is not None else []
            if not momenta or not all(m.is_momentum for m in momenta):
                continue
            momentum = momenta[0]
            related = [ctx.related(call, "LightningCLI builds the Trainer from this config here")]
            related += _launch_related(launch, "the run is launched with this config here")
            built = ctx.project.resolve(facts.module, ctx.file or None) if facts.module else None
            related += [RelatedLocation.at(display_path(Path(built)), line, f"{momentum.optimizer} is built here, in configure_optimizers") for line in facts.lines[:1] if built]
            clip = _cli_node(documents, "trainer", "gradient_clip_val")
            names = ", ".join(Path(d.key).name for d in documents)
            subject = f"{name} ({momentum.optimizer}) is trained by LightningCLI with {names}"
            if clip is not None:
                document, node = clip
                value = document.scalar(node)
                if not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)):
                    continue  # clips, or not known statically
                message = f"{subject}, whose trainer.gradient_clip_val is {node.value!r}: nothing is clipped. {momentum.describe()}{shared_note(ctx, document)}"
                fix = config_fix(f"set gradient_clip_val to {max_norm}", configs.set_scalar(document, node, max_norm))
                yield config_finding(rule, document, node, message, fix, momentum.severity, related)
                continue
            section = _cli_node(documents, "trainer")
            if section is not None and section[1].is_mapping:
                document, node = section
                edit = configs.add_entry(document, node, "gradient_clip_val", max_norm)
            else:
                document, node = documents[-1], documents[-1].root
                edit = _append_section(document, "trainer", "gradient_clip_val", max_norm) if set(node.value) - {"fit"} else None
            message = (
                f"{subject}, and no trainer.gradient_clip_val is set there or on the command line (Lightning's default: no clipping): "
                f"{momentum.describe()}{shared_note(ctx, document)}"
            )
            yield config_finding(rule, document, node, message, config_fix(f"add gradient_clip_val: {max_norm}", edit), momentum.severity, related)


# -- Hugging Face TrainingArguments from a YAML/JSON (HfArgumentParser, TrlParser) -------

# Keys that make a YAML/JSON one of TrainingArguments (not a model or data section).
_HF_ARGUMENT_KEYS = {"per_device_train_batch_size", "num_train_epochs", "learning_rate", "output_dir", "gradient_accumulation_steps", "max_steps", "max_grad_norm"}
_HF_PARSER_TRIGGERS = ("parse_yaml_file", "parse_json_file", "TrlParser", "HfArgumentParser")


def _arguments_classes(ctx: "FileContext") -> list[str]:
    """The TrainingArguments-like classes the file's parsers fill (``HfArgumentParser((
    ModelArguments, DataArguments, TrainingArguments))``, ``TrlParser((ScriptArguments,
    SFTConfig, ModelConfig))``): names ending in TrainingArguments or Config."""
    from losslint.analysis.names import dotted

    found = []
    for call in ctx.nodes_of(ast.Call):
        if not call.args or (dotted(call.func) or "").rpartition(".")[2] not in ("HfArgumentParser", "TrlParser"):
            continue
        first = call.args[0]
        for element in first.elts if isinstance(first, (ast.Tuple, ast.List)) else [first]:
            name = (dotted(element) or "").rpartition(".")[2]
            if name.endswith("TrainingArguments") or (name.endswith("Config") and name != "ModelConfig"):
                found.append(name)
    return found


def _hf_documents(ctx: "FileContext") -> Iterable[tuple[configs.ConfigRead, ConfigDocument, list, str]]:
    """(the read, the TrainingArguments document, the launches passing it, the arguments
    class) for each YAML/JSON the file's parsers read."""

    classes = _arguments_classes(ctx)
    if not classes:
        return
    cls = next((c for c in classes if c in hf_arguments.SUPERVISED_ARGUMENTS), classes[0])
    script = ctx.file or ctx.path
    launched = None
    seen = set()
    for read, key in configs.reads_of(ctx.project, script):
        if read.how not in ("parse_yaml_file", "parse_json_file", trainer_configs.HF_PARSER, trainer_configs.TRL_PARSER) or key in seen:
            continue
        seen.add(key)
        document = configs.document_for(ctx.project, key)
        root = document.root
        if root is None or not root.is_mapping or not (set(root.value) & _HF_ARGUMENT_KEYS):
            continue
        if read.how in (trainer_configs.HF_PARSER, trainer_configs.TRL_PARSER):
            launched = launched if launched is not None else trainer_configs.launches(script, configs._exists_in(ctx.project))
            passing = [launch for launch in launched if key in launch.configs]
        else:
            passing = []
        yield read, document, passing, cls


def _overridden(launches: list, key: str) -> bool:
    return any(launch.override(key) is not None for launch in launches)


@config_check("LL301", triggers=_HF_PARSER_TRIGGERS)
def hf_yaml_without_clipping(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """A TrainingArguments YAML/JSON setting ``max_grad_norm`` to 0 or null with a
    momentum ``optim``: the Trainer clips only when max_grad_norm > 0 (default 1.0),
    so a config without the key is quiet."""
    from losslint.rules.momentum_common import ADAM, Momentum

    max_norm = repr(float(ctx.settings.clip_max_norm))
    for read, document, passing, cls in _hf_documents(ctx):
        root = document.root
        node = root.get("max_grad_norm")
        if node is None or _overridden(passing, "max_grad_norm"):
            continue
        value = document.scalar(node)
        if not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0)):
            continue  # clips, or not known statically
        optim = document.scalar(root.get("optim")) if root.get("optim") is not None else hf_arguments.DEFAULT_OPTIM
        if not hf_arguments.has_momentum(optim):
            continue
        momentum = Momentum(f"the Trainer's {optim}", ADAM, 0.9, 0.999)
        call = _calls_at(ctx, read)
        related = [ctx.related(call, f"{cls} are read from this config here")] if call is not None else []
        related += [r for launch in passing for r in _launch_related(launch, "the run is launched with this config here")]
        message = (
            f"{cls} from this config sets max_grad_norm: {node.value!r}, which turns off the Trainer's gradient clipping "
            f"(on by default, max_grad_norm=1.0): {momentum.describe()}{shared_note(ctx, document)}"
        )
        fix = config_fix(f"set max_grad_norm to {max_norm} (the Trainer's default)", configs.set_scalar(document, node, max_norm))
        yield config_finding(rule, document, node, message, fix, Severity.INFO, related)


@config_check("LL207", triggers=_HF_PARSER_TRIGGERS)
def hf_yaml_partial_last_batch(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """A TrainingArguments YAML/JSON without ``dataloader_drop_last: true``: as LL207
    judges ``TrainingArguments(...)`` in code (the train set's size is not known
    from a config; quiet for a batch of 1, ``do_train: false``, a run bounded by
    ``max_steps``, and for on-policy trainers' configs)."""
    for read, document, passing, cls in _hf_documents(ctx):
        if cls not in hf_arguments.SUPERVISED_ARGUMENTS:
            continue
        root = document.root
        flag = root.get("dataloader_drop_last")
        flag_value = document.scalar(flag) if flag is not None else False
        if flag_value is not False or _overridden(passing, "dataloader_drop_last"):
            continue  # true, or not known statically
        if document.scalar(root.get("do_train")) is False:
            continue
        max_steps = document.scalar(root.get("max_steps")) if root.get("max_steps") is not None else -1
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps > 0 or _overridden(passing, "max_steps"):
            continue  # bounded by steps (or not known): no pass over the data need end
        batch = root.get("per_device_train_batch_size")
        b = document.scalar(batch) if batch is not None else hf_arguments.DEFAULT_BATCH_SIZE
        if b == 1 or _overridden(passing, "per_device_train_batch_size"):
            continue
        if passing and all(trainer_configs.many_processes(launch) for launch in passing):
            continue  # every run has several processes: accelerate fills the last batch
        shown = f"per_device_train_batch_size: {b}" if batch is not None else f"per_device_train_batch_size={hf_arguments.DEFAULT_BATCH_SIZE} (the default)"
        call = _calls_at(ctx, read)
        related = [ctx.related(call, f"{cls} are read from this config here")] if call is not None else []
        related += [r for launch in passing for r in _launch_related(launch, "the run is launched with this config here")]
        message = (
            f"{cls} from this config without dataloader_drop_last: true (the HF default is false), {shown}: the train "
            "dataset size is not known statically; unless it is a multiple of the batch size, the last batch of every "
            f"epoch on one process is smaller{shared_note(ctx, document)}"
        )
        literal = "true"
        if flag is not None:
            edit, at = configs.set_scalar(document, flag, literal), flag
        else:
            edit, at = configs.add_entry(document, root, "dataloader_drop_last", literal), batch if batch is not None else root
        fix = Fix("set dataloader_drop_last: true", Applicability.SAFE, (edit,)) if edit is not None else None
        yield config_finding(rule, document, at, message, fix, None, related)


# -- accelerate launch --config_file: the DeepSpeed JSON it names -------------------------


@config_check("LL301", triggers=("Accelerator", "Trainer"))
def accelerate_deepspeed_without_clipping(ctx: "FileContext", rule: "Rule") -> Iterable[Finding]:
    """``accelerate launch --config_file acc.yaml train.py`` whose config names a
    ``deepspeed_config_file``: the DeepSpeed engine clips by that JSON's
    ``gradient_clipping`` alone (accelerate's ``clip_grad_norm_`` leaves it to the
    engine), judged as a JSON ``deepspeed.initialize`` reads when the JSON's
    ``"optimizer"`` section builds a momentum optimizer."""

    script = ctx.file or ctx.path
    for read, key in configs.reads_of(ctx.project, script):
        if read.how != trainer_configs.ACCELERATE:
            continue
        document = configs.document_for(ctx.project, key)
        root = document.root
        section = root.get("optimizer") if root is not None and root.is_mapping else None
        if section is None or not section.is_mapping:
            continue  # the script's optimizer: not judged here
        call = _calls_at(ctx, read)
        related = [ctx.related(call, "the script trains with this DeepSpeed config here")] if call is not None else []
        for launch in trainer_configs.launches(script, configs._exists_in(ctx.project)):
            if launch.accelerate_config is not None and trainer_configs.accelerate_deepspeed_json(launch, configs._exists_in(ctx.project)) == key:
                named = trainer_configs.deepspeed_file_node(configs.load_config(launch.accelerate_config))
                line = named.key_line if named is not None else 1
                related.append(RelatedLocation.at(display_path(Path(launch.accelerate_config)), line, "accelerate's config names this DeepSpeed JSON here"))
                related += _launch_related(launch, "accelerate launch runs the script with that config here")
        yield from _judge_deepspeed_json(ctx, rule, document, section, list(dict.fromkeys(related)))
