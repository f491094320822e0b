"""LL201, LL202, LL205: a training ``torch.utils.data.DataLoader`` without
``drop_last=True``.

One analysis, three outcomes: with the dataset size N and batch size B known and
N % B != 0, LL201 gives the numbers (LL205 when N % B == 1 and the model has
BatchNorm1d: training crashes on the last batch); when N or B cannot be known,
LL202 says so at lower severity. The fix, ``drop_last=True``, is safe: full
batches train exactly as before.
"""

from __future__ import annotations

import ast
from typing import Iterable

from losslint.analysis.hierarchy import derives_from
from losslint.analysis.names import argument, dotted, last_part
from losslint.analysis.roles import Role, bound_name, only_read_without_steps, pipeline_role, words_role
from losslint.analysis.sizes import length
from losslint.analysis.walk import walk
from losslint.context import FileContext
from losslint.findings import Finding, Severity
from losslint.project import ModuleFacts, collector
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.partial_batch_common import (
    CallArguments,
    describe_last_batch,
    dict_entries,
    is_partial,
    endless_generator,
    known_sizes,
    related_extra,
    set_flag_fix,
    unless_shuffled,
    unshuffled_note,
)

DATALOADERS = {
    "torch.utils.data.DataLoader",
    "torch.utils.data.dataloader.DataLoader",
    "torch_geometric.loader.DataLoader",
    "torch_geometric.data.DataLoader",
    "monai.data.DataLoader",
}
# DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers,
#            collate_fn, pin_memory, drop_last, ...)
_BATCH_SIZE_POS, _SAMPLER_POS, _BATCH_SAMPLER_POS, _DROP_LAST_POS = 1, 3, 4, 8

_FIX = "add drop_last=True"
# An epoch of this many samples never ends in a real run (RandomSampler(replacement=True,
# num_samples=int(1e10)): training stops by an iteration count long before).
_ENDLESS_EPOCH = 10**9
_RANDOM_SAMPLERS = {"RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "DistributedSampler"}
_STREAMS_KEY = "endless_iterable_datasets"


def _iter_source(cls: ast.ClassDef) -> object:
    """How an IterableDataset's ``__iter__`` gets its items: "endless" (a generator
    that never ends, here or in a method it returns), [position, name] (it returns
    the call of a function handed to ``__init__``, as lightning-bolts'
    ExperienceSourceDataset(generate_batch) does), or None."""
    methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
    iterate = methods.get("__iter__")
    if iterate is None:
        return None
    if endless_generator(iterate):
        return "endless"
    returns = [n for n in ast.walk(iterate) if isinstance(n, ast.Return) and n.value is not None]
    if len(returns) != 1:
        return None
    value = returns[0].value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "iter" and len(value.args) == 1:
        value = value.args[0]
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and dotted(value.func.value) == "self"):
        return None
    attr = value.func.attr
    if attr in methods:
        return "endless" if endless_generator(methods[attr]) else None
    init = methods.get("__init__")
    if init is None:
        return None
    parameters = [a.arg for a in init.args.args[1:]]
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and dotted(node.targets[0]) == f"self.{attr}":
            if isinstance(node.value, ast.Name) and node.value.id in parameters:
                return [parameters.index(node.value.id), node.value.id]
    return None


@collector
def _endless_iterable_datasets(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Project IterableDatasets, and how their stream may have no end (see
    ``_iter_source``; "stream" when nothing says)."""
    if "IterableDataset" not in source:
        return
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(last_part(dotted(b)) == "IterableDataset" for b in node.bases):
            found[node.name] = _iter_source(node) or "stream"
    if found:
        facts.extra[_STREAMS_KEY] = found


def _endless_stream(ctx: FileContext, dataset: ast.expr | None) -> bool:
    """The dataset is a project IterableDataset whose items never run out: its
    ``__iter__`` loops forever, or calls the generator it was given
    (``ExperienceSourceDataset(self.train_batch)``), which does. An epoch never
    ends, so there is no last batch of one."""
    if isinstance(dataset, ast.Name):
        dataset = ctx.values.resolve_name(dataset)
    if not (isinstance(dataset, ast.Call) and isinstance(dataset.func, (ast.Name, ast.Attribute))):
        return False
    name = last_part(ctx.qualname(dataset.func) or dotted(dataset.func) or "")
    ways = {str(how) for facts in related_extra(ctx, _STREAMS_KEY) for cls, how in facts.items() if cls == name}  # type: ignore[attr-defined]
    if len(ways) != 1:
        return False
    how = next(how for facts in related_extra(ctx, _STREAMS_KEY) for cls, how in facts.items() if cls == name)  # type: ignore[attr-defined]
    if how in ("endless", "stream"):
        return how == "endless"
    position, parameter = how  # type: ignore[misc]
    given = argument(dataset, parameter, position)
    return given is not None and any(endless_generator(f) for f in _functions_named(ctx, given, dataset))


def _iterable_dataset(ctx: FileContext, dataset: ast.expr | None) -> bool:
    """A project IterableDataset (its ``__len__``, if any, is only a hint)."""
    if isinstance(dataset, ast.Name):
        dataset = ctx.values.resolve_name(dataset)
    if not (isinstance(dataset, ast.Call) and isinstance(dataset.func, (ast.Name, ast.Attribute))):
        return False
    name = last_part(ctx.qualname(dataset.func) or dotted(dataset.func) or "")
    return any(name in facts for facts in related_extra(ctx, _STREAMS_KEY))  # type: ignore[operator]


def _functions_named(ctx: FileContext, given: ast.expr, at: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The function ``self.method`` (of the class ``at`` is in) or ``name`` (of the module) is."""
    if isinstance(given, ast.Attribute) and dotted(given.value) == "self":
        owner = ctx.enclosing(at, ast.ClassDef)
        body = owner.body if owner is not None else []
        name = given.attr
    elif isinstance(given, ast.Name):
        body, name = ctx.tree.body, given.id
    else:
        return []
    return [f for f in body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == name]


_CALLERS_KEY = "loader_factory_calls"
_UNREAD = "?"  # a value or a **dict the collector cannot read


def _caller_record(call: ast.Call, function: ast.AST | None, dicts: dict[int, tuple[dict[str, list[ast.expr]], set[str]]]) -> dict[str, object] | None:
    """What a call hands a function that may build a loader: its literal shuffle=,
    drop_last= and the keys of its **dicts (when a literal of the calling function)."""
    record: dict[str, object] = {}
    for kw in call.keywords:
        if kw.arg in ("shuffle", "drop_last", "batch_sampler"):
            record[kw.arg] = kw.value.value if isinstance(kw.value, ast.Constant) else _UNREAD
        elif kw.arg is None:
            keys = _literal_dict_keys(kw.value, function, dicts)
            record["**"] = _UNREAD if keys is None else sorted(set(keys) | set(record.get("**") or []))  # type: ignore[arg-type]
    return record or None


def _literal_dict_keys(node: ast.expr, function: ast.AST | None, dicts: dict[int, tuple[dict[str, list[ast.expr]], set[str]]]) -> list[str] | None:
    if isinstance(node, ast.Dict):
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
            return [k.value for k in node.keys]  # type: ignore[union-attr]
        return None
    if isinstance(node, ast.Name) and function is not None:
        assigned, changed = _names_of(function, dicts)
        if len(assigned.get(node.id, ())) == 1 and node.id not in changed:
            return _literal_dict_keys(assigned[node.id][0], None, dicts)
    return None


def _names_of(function: ast.AST, dicts: dict[int, tuple[dict[str, list[ast.expr]], set[str]]]) -> tuple[dict[str, list[ast.expr]], set[str]]:
    """(name -> the values assigned to it, the names whose attributes other than
    get/items/keys/values are used) in ``function``: one walk per function, however
    many of its calls pass a **dict (``super().__init__(**kwargs)`` everywhere)."""
    known = dicts.get(id(function))
    if known is None:
        assigned: dict[str, list[ast.expr]] = {}
        changed: set[str] = set()
        for n in walk(function):
            if isinstance(n, ast.Assign):
                for name in {t.id for t in n.targets if isinstance(t, ast.Name)}:
                    assigned.setdefault(name, []).append(n.value)
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.attr not in ("get", "items", "keys", "values"):
                changed.add(n.value.id)
        known = dicts[id(function)] = (assigned, changed)
    return known


@collector
def _loader_factory_calls(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Calls that hand shuffle=, drop_last= or a **dict to a function (a loader
    factory in another module: ``create_dataloader(path, ..., shuffle=True)``)."""
    if "shuffle" not in source and "**" not in source:
        return
    calls: dict[str, list[dict[str, object]]] = {}
    dicts: dict[int, tuple[dict[str, list[ast.expr]], set[str]]] = {}
    stack: list[tuple[ast.AST, ast.AST | None]] = [(tree, None)]
    pop, push = stack.pop, stack.append
    while stack:
        node, function = pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node
        elif isinstance(node, ast.Call) and node.keywords and isinstance(node.func, (ast.Name, ast.Attribute)):
            record = _caller_record(node, function, dicts)
            if record is not None:
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                calls.setdefault(name, []).append(record)
        for field in node._fields:  # the children in ast.iter_child_nodes' order, without its generators
            value = getattr(node, field, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        push((item, function))
            elif isinstance(value, ast.AST):
                push((value, function))
    if calls:
        facts.extra[_CALLERS_KEY] = calls


def _project_calls(ctx: FileContext, function_name: str) -> list[dict[str, object]]:
    return [record for _, calls in ctx.project.extra(_CALLERS_KEY) for record in calls.get(function_name, [])]


def _dataloader_class(ctx: FileContext, func: ast.expr, depth: int = 0) -> bool:
    qual = ctx.qualname(func)
    if qual in DATALOADERS:
        return True
    if isinstance(func, (ast.Name, ast.Attribute)) and last_part(qual)[:1].isupper() and _derives_from_dataloader(ctx, func, qual):
        return True  # a project subclass, through any number of classes and files
    if isinstance(func, ast.Name) and depth < 3:
        # loader = DataLoader if image_weights else InfiniteDataLoader
        value = ctx.values.resolve_name(func)
        if isinstance(value, ast.IfExp):
            return _dataloader_class(ctx, value.body, depth + 1) and _dataloader_class(ctx, value.orelse, depth + 1)
        if isinstance(value, (ast.Name, ast.Attribute)):
            return _dataloader_class(ctx, value, depth + 1)
    return False


def _derives_from_dataloader(ctx: FileContext, func: ast.expr, qual: str) -> bool:
    """Once per class name and file: every ``Net()`` of a script asks again."""
    key = ("partial_batch_torch.derives_from_dataloader", qual)
    derives = ctx.memo.get(key)
    if derives is None:
        derives = ctx.memo[key] = derives_from(ctx, func, DATALOADERS)
    return derives


def is_dataloader(ctx: FileContext, call: ast.Call) -> bool:
    """A ``DataLoader(...)`` call: torch's (or a known re-export), a project subclass,
    or a name that is one of them whichever branch chose it."""
    return _dataloader_class(ctx, call.func)


def _sampler_call(ctx: FileContext, sampler: ast.expr) -> ast.expr:
    if isinstance(sampler, ast.Name):
        return ctx.values.resolve_name(sampler) or sampler
    return sampler


def _sampler_options(ctx: FileContext, sampler: ast.expr, depth: int = 0) -> list[ast.expr | None] | None:
    """The samplers a ``sampler=`` argument may be, branch by branch (None for no
    sampler): ``DistributedSampler(ds) if distributed else None``, or a name bound to
    one in each branch of an ``if``. None when a branch cannot be read."""
    if isinstance(sampler, ast.Constant) and sampler.value is None:
        return [None]
    if isinstance(sampler, ast.IfExp) and depth < 5:
        body, orelse = _sampler_options(ctx, sampler.body, depth + 1), _sampler_options(ctx, sampler.orelse, depth + 1)
        return None if body is None or orelse is None else body + orelse
    if isinstance(sampler, ast.Name) and depth < 5:
        bindings = ctx.values.bindings(sampler.id, sampler)
        if not bindings or any(b.value is None or b.path or b.parameter is not None for b in bindings):
            return [sampler]
        options: list[ast.expr | None] = []
        for binding in bindings:
            found = _sampler_options(ctx, binding.value, depth + 1)  # type: ignore[arg-type]
            if found is None:
                return None
            options.extend(found)
        return options
    return [sampler]


def _shuffle_without_sampler(ctx: FileContext, shuffle: ast.expr | None, sampler: ast.expr) -> bool | None:
    """The value of ``shuffle=`` in the branch where the sampler is None:
    ``shuffle=(sampler is None)`` is True there, ``shuffle=sampler is not None`` False."""
    if shuffle is None:
        return False
    if isinstance(shuffle, ast.Compare) and len(shuffle.ops) == 1 and isinstance(shuffle.comparators[0], ast.Constant):
        if shuffle.comparators[0].value is None and ast.dump(shuffle.left) == ast.dump(sampler):
            if isinstance(shuffle.ops[0], ast.Is):
                return True
            if isinstance(shuffle.ops[0], ast.IsNot):
                return False
    value = ctx.values.value(shuffle)
    return value if isinstance(value, bool) else None


def _sampler_shuffles(ctx: FileContext, sampler: ast.expr) -> bool | None:
    """True for a random sampler (a DistributedSampler unless shuffle=False), False
    for a sequential one, None when it cannot be told."""
    sampler = _sampler_call(ctx, sampler)
    if not isinstance(sampler, ast.Call):
        return None
    kind = last_part(ctx.qualname(sampler.func))
    if kind in _RANDOM_SAMPLERS:
        shuffle = argument(sampler, "shuffle", 3) if kind == "DistributedSampler" else None
        return shuffle is None or ctx.values.value(shuffle) is not False
    if kind == "SequentialSampler":
        return False
    return None


def _sampler_size(ctx: FileContext, sampler: ast.expr) -> tuple[int | None, str]:
    """Samples a sampler yields per epoch, and a note when that cannot be known."""
    sampler = _sampler_call(ctx, sampler)
    if not isinstance(sampler, ast.Call):
        return None, f"the sampler {ctx.text(sampler)} decides the number of samples"
    kind = last_part(ctx.qualname(sampler.func))
    if kind == "SubsetRandomSampler":
        return length(ctx, argument(sampler, "indices", 0)), ""
    if kind == "WeightedRandomSampler":
        return ctx.values.int_value(argument(sampler, "num_samples", 1)), ""
    if kind in ("RandomSampler", "SequentialSampler"):
        explicit = argument(sampler, "num_samples", 2)
        if explicit is not None:
            return ctx.values.int_value(explicit), ""
        return length(ctx, argument(sampler, "data_source", 0)), ""
    if kind == "DistributedSampler":
        return None, "a DistributedSampler gives each rank ceil(N / world size) samples"
    return None, f"the sampler {kind or ctx.text(sampler)} decides the number of samples"


def _has_batchnorm1d(ctx: FileContext) -> str | None:
    """Name of the BatchNorm1d evidence in this file: the layer itself, or a project
    model class that has one and is instantiated here."""
    for call in ctx.nodes_of(ast.Call):
        name = last_part(ctx.qualname(call.func))
        if name in ("BatchNorm1d", "SyncBatchNorm") and "BatchNorm1d" in ctx.source:
            return "BatchNorm1d"
        if name and ctx.project.has_batchnorm1d(name, ctx.file or None):
            return name
    return None


class DataLoaderAnalysis:
    """Everything the three rules need to know about one DataLoader call."""

    def __init__(self, ctx: FileContext, call: ast.Call) -> None:
        self.ctx, self.call = ctx, call
        # Arguments written in the call or handed over in a **dict it can read.
        self.arguments = CallArguments(ctx, call)
        self.dataset = self.arguments.single("dataset", 0)
        self.batch_size_node = self.arguments.single("batch_size", _BATCH_SIZE_POS)
        self.sampler = self.arguments.single("sampler", _SAMPLER_POS)
        self.forwarded: set[str] = set()  # keys callers hand over through this function's **kwargs
        if not self.arguments.complete:
            self._read_forwarded_kwargs()
        self.drop_last = self.arguments.flag("drop_last", _DROP_LAST_POS)
        self.caller_roles: set[Role] = set()  # roles the callers of a loader factory give it

    def _read_forwarded_kwargs(self) -> None:
        """``def make_loader(args, **kwargs): DataLoader(ds, ..., **kwargs)``: the keys
        every caller in the project hands over (none may carry drop_last)."""
        function = self.ctx.enclosing(self.call, ast.FunctionDef, ast.AsyncFunctionDef)
        kwarg = function.args.kwarg.arg if function is not None and function.args.kwarg else None
        unread = [
            kw.value for kw in self.call.keywords
            if kw.arg is None and (dict_entries(self.ctx, kw.value) is None)
        ]
        if function is None or not unread or not all(isinstance(v, ast.Name) and v.id == kwarg for v in unread):
            return
        records = _project_calls(self.ctx, function.name)
        keys: set[str] = set()
        for record in records:
            passed = record.get("**")
            if passed == _UNREAD or "drop_last" in record or "batch_sampler" in record:
                return
            keys.update(passed or [])  # type: ignore[arg-type]
        if not records or keys & {"drop_last", "batch_sampler", "sampler", "shuffle"}:
            return
        self.forwarded = keys
        self.arguments.complete = True

    def applies(self) -> bool:
        if self.arguments.candidates("batch_sampler", _BATCH_SAMPLER_POS):
            return False  # the batch sampler forms the batches; drop_last is not allowed
        if self.drop_last.value is not False:
            return False  # drop_last=True, or a value we cannot know
        if isinstance(self.batch_size_node, ast.Constant) and self.batch_size_node.value is None:
            return False  # batching disabled
        if not self.arguments.candidates("batch_size", _BATCH_SIZE_POS) and self.arguments.complete and (
            "batch_size" not in self.forwarded
        ):
            return False  # batch_size=1: every batch is full
        return self.role() is Role.TRAIN

    def role(self) -> Role:
        shuffles = {self.ctx.values.value(n) for n in self.arguments.candidates("shuffle", 2)}
        if shuffles == {False} and only_read_without_steps(self.ctx, self.call):
            return Role.EVAL  # unshuffled and only read (shuffle=False in a **dict too)
        role = pipeline_role(self.ctx, self.call, self.dataset)
        if role is Role.UNKNOWN and any(self.ctx.values.value(n) is True for n in self.arguments.candidates("shuffle", 2)):
            return Role.TRAIN  # shuffle=True from a **dict
        if role is Role.UNKNOWN:
            self.caller_roles = self._roles_from_callers()
            if Role.TRAIN in self.caller_roles:
                return Role.TRAIN
        return role

    def _roles_from_callers(self) -> set[Role]:
        """A loader factory (``def get_loader(ds, batch_size, shuffle)``) is for
        training when a caller says so: shuffle=True (in any module of the project),
        or a dataset or a result named for training (in this file). Evaluation when
        a caller says that."""
        function = self.ctx.enclosing(self.call, ast.FunctionDef, ast.AsyncFunctionDef)
        if function is None:
            return set()
        every = function.args
        parameters = [a.arg for a in [*every.posonlyargs, *every.args, *every.kwonlyargs]]
        is_method = isinstance(self.ctx.parents.get(function), ast.ClassDef)
        if is_method and parameters:
            parameters = parameters[1:]
        roles: set[Role] = set()
        shuffle = self.arguments.single("shuffle", 2)
        shuffle_parameters = {n.id for n in ast.walk(shuffle) if isinstance(n, ast.Name)} & set(parameters) if shuffle else set()
        if shuffle_parameters:
            defaults = dict(zip([a.arg for a in [*every.posonlyargs, *every.args]][-len(every.defaults):], every.defaults)) if every.defaults else {}
            defaults.update({a.arg: d for a, d in zip(every.kwonlyargs, every.kw_defaults) if d is not None})
            if any(self.ctx.values.value(defaults.get(name)) is True for name in shuffle_parameters):
                roles.add(Role.TRAIN)  # shuffles unless a caller says otherwise
            for record in _project_calls(self.ctx, function.name):
                if record.get("shuffle") is True:
                    roles.add(Role.TRAIN)
                elif record.get("shuffle") is False:
                    roles.add(Role.EVAL)
        dataset = self.dataset
        if isinstance(dataset, ast.Name) and dataset.id in parameters:
            position = parameters.index(dataset.id)
            for call in self.ctx.nodes_of(ast.Call):
                func = call.func
                if not ((isinstance(func, ast.Name) and func.id == function.name and not is_method) or (
                    isinstance(func, ast.Attribute) and func.attr == function.name and is_method
                )):
                    continue
                passed = argument(call, dataset.id, position)
                for text in (bound_name(self.ctx, call), self.ctx.text(passed) if passed is not None else None):
                    role = words_role(text) if text else Role.UNKNOWN
                    if role is not Role.UNKNOWN:
                        roles.add(role)
                        break
        return roles

    @property
    def factory(self) -> bool:
        """A loader factory whose callers decide that it trains: the fix belongs to
        the caller's choice (the same factory may build evaluation loaders)."""
        return bool(self.caller_roles)

    def shuffled(self) -> bool | None:
        """Whether each epoch sees the data in a new order: shuffle=True or a random
        sampler. None when it cannot be told."""
        if self.sampler is not None:
            options = _sampler_options(self.ctx, self.sampler)
            if options is None:
                return None
            shuffle = self.arguments.single("shuffle", 2)
            verdicts = {
                _shuffle_without_sampler(self.ctx, shuffle, self.sampler) if option is None else _sampler_shuffles(self.ctx, option)
                for option in options
            }
            return verdicts.pop() if len(verdicts) == 1 else (False if False in verdicts and None not in verdicts else None)
        values = {self.ctx.values.value(n) for n in self.arguments.candidates("shuffle", 2)}
        if values == {True}:
            return True
        if not values or values <= {False, None}:
            return False if self.arguments.complete or values else None
        return None

    def sizes(self) -> tuple[int | None, int | None, str]:
        b = self.ctx.values.int_value(self.batch_size_node)
        note = ""
        options = _sampler_options(self.ctx, self.sampler) if self.sampler is not None else [None]
        samplers = [option for option in options or [self.sampler] if option is not None]
        if samplers:
            # With no sampler in some branch the dataset's length decides there: N is one
            # number only where every branch agrees, so the first sampler speaks.
            n, note = _sampler_size(self.ctx, samplers[0])
            if n is not None and (len(samplers) != len(options or []) or len({ast.dump(o) for o in samplers}) > 1):
                n = None
        elif _iterable_dataset(self.ctx, self.dataset):
            # An IterableDataset's __iter__ decides how many samples an epoch has.
            n, note = None, f"{self.ctx.text(self.dataset)} is an IterableDataset: its __iter__, not __len__, decides N"
        else:
            n = length(self.ctx, self.dataset)
        n, b = known_sizes(n, b)
        return n, b, note

    def endless(self) -> bool:
        """An epoch that never ends in practice (a sampler of a billion samples, a
        stream that yields forever)."""
        n, _, _ = self.sizes()
        return (n is not None and n >= _ENDLESS_EPOCH) or (self.sampler is None and _endless_stream(self.ctx, self.dataset))

    def fix(self):
        if self.factory:
            return None  # drop_last=True would also cut the evaluation loaders it builds
        return unless_shuffled(set_flag_fix(self.ctx, self.call, self.drop_last, "drop_last", _FIX), self.shuffled())


_FACTORIES_KEY = "loader_factories"


@collector
def _loader_factories(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Module-level functions that build a batching DataLoader without drop_last=True
    (``create_dataloader(path, imgsz, batch_size, ..., shuffle=False)``): the line of
    the DataLoader, the parameters, and which of them set drop_last and batch_size."""
    if "DataLoader" not in source:
        return
    from losslint.config import Settings
    from losslint.project import ProjectFacts

    ctx = FileContext("", facts.module, source, tree, ProjectFacts(), Settings())
    found: dict[str, dict[str, object]] = {}
    for function in tree.body:
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        parameters = [a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]]
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and is_dataloader(ctx, call)):
                continue
            analysis = DataLoaderAnalysis(ctx, call)
            if analysis.arguments.candidates("batch_sampler", _BATCH_SAMPLER_POS):
                continue
            drop = analysis.drop_last.node
            drop_parameter = drop.id if isinstance(drop, ast.Name) and drop.id in parameters else None
            if analysis.drop_last.value is not False and drop_parameter is None:
                continue
            size = analysis.batch_size_node
            found[function.name] = {
                "line": call.lineno,
                "parameters": parameters,
                "drop": drop_parameter,
                "batch": size.id if isinstance(size, ast.Name) and size.id in parameters else None,
            }
            break
    if found:
        facts.extra[_FACTORIES_KEY] = found


def factory_calls(ctx: FileContext) -> Iterable[tuple[ast.Call, str]]:
    """Training calls of another file's loader factory (a module-level function that
    builds a DataLoader without drop_last=True): the finding belongs where the caller
    chooses training, e.g. yolov5's ``create_dataloader(train_path, ..., shuffle=True)``
    in train.py, with drop_last only behind ``quad``."""
    for call in ctx.nodes_of(ast.Call):
        if not isinstance(call.func, (ast.Name, ast.Attribute)):
            continue
        qual = ctx.qualname(call.func) or ""
        module, _, name = qual.rpartition(".")
        key = ctx.project.resolve(module, ctx.file or None) if module else None
        if key is None or key == ctx.file:
            continue
        facts = ctx.project.modules[key].extra.get(_FACTORIES_KEY, {}).get(name) if key in ctx.project.modules else None
        if not facts:
            continue
        parameters: list[str] = facts["parameters"]  # type: ignore[assignment]
        shuffle = argument(call, "shuffle", parameters.index("shuffle") if "shuffle" in parameters else None)
        bound = bound_name(ctx, call)
        role = words_role(bound) if bound else Role.UNKNOWN
        if role is Role.EVAL or (role is not Role.TRAIN and not (shuffle is not None and ctx.values.value(shuffle) is True)):
            continue
        note = ""
        if facts["drop"]:
            drop = str(facts["drop"])
            given = argument(call, drop, parameters.index(drop))
            if given is not None:
                if ctx.values.value(given) is not False:
                    continue  # the caller asks for drop_last, or a value we cannot know
                note = f" ({drop}={ctx.text(given)}, False by default)"
            else:
                note = f" ({drop} defaults to False)"
        b = None
        if facts["batch"]:
            batch = str(facts["batch"])
            b = ctx.values.int_value(argument(call, batch, parameters.index(batch)))
        if b == 1:
            continue
        where = f"{_relative(ctx, key)}:{facts['line']}"
        yield call, (
            f"training loader from {name} ({where}), which builds a DataLoader without drop_last=True{note} "
            f"({f'B={b}' if b is not None else 'B unknown'}): the size of the dataset is not known statically; unless "
            "N is a multiple of B the last batch of every epoch is smaller (no fix here: ask the factory for "
            "drop_last=True for the training loader)"
        )


def _relative(ctx: FileContext, path: str) -> str:
    import os

    try:
        return os.path.relpath(path, os.path.dirname(ctx.file)) if ctx.file else path
    except ValueError:
        return path


_TORCHTEXT_ITERATORS = {"BucketIterator", "Iterator"}


def _fix_note(analysis: DataLoaderAnalysis) -> str:
    if analysis.factory:
        function = analysis.ctx.enclosing(analysis.call, ast.FunctionDef, ast.AsyncFunctionDef)
        name = function.name if function is not None else "this function"
        return (
            f"; {name} builds loaders for its callers and a caller trains with this one: no fix here, where the "
            "same code may build evaluation loaders (pass drop_last=True for the training loader only)"
        )
    return unshuffled_note(analysis.shuffled())


def _unknown_reason(ctx: FileContext, analysis: DataLoaderAnalysis, n: int | None, b: int | None, note: str) -> str:
    parts = []
    if note:
        parts.append(note)
    elif n is None:
        parts.append(f"the size of {ctx.text(analysis.dataset) or 'the dataset'} is not known statically")
    if b is None:
        parts.append(f"batch_size={ctx.text(analysis.batch_size_node) or '?'} is not known statically")
    return "; ".join(parts)


def _bounded_within_pass(ctx: FileContext, n: int | None, b: int | None) -> bool:
    """A Lightning Trainer of this file that never reaches the last batch of a pass:
    ``limit_train_batches`` as a count (or a fraction below 1: the first batches
    only), or ``max_steps`` within the first pass (N and B known)."""
    for limited, steps in _trainer_bounds(ctx):
        if limited:
            return True
        if steps is not None and steps > 0 and n is not None and b is not None and steps <= n // b:
            return True
    return False


def _trainer_bounds(ctx: FileContext) -> list[tuple[bool, int | None]]:
    """Per Trainer call of the file: (does ``limit_train_batches`` stop a pass early,
    its ``max_steps``); read once per file, not once per loader."""
    bounds = ctx.memo.get("partial_batch_torch.trainer_bounds")
    if bounds is None:
        bounds = []
        for call in ctx.nodes_of(ast.Call):
            if not last_part(ctx.qualname(call.func) or "").endswith("Trainer"):
                continue
            limit = ctx.values.value(argument(call, "limit_train_batches"))
            limited = (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0) or (isinstance(limit, float) and 0 < limit < 1)
            bounds.append((limited, None if limited else ctx.values.int_value(argument(call, "max_steps"))))
        ctx.memo["partial_batch_torch.trainer_bounds"] = bounds
    return bounds


def _dataloaders(ctx: FileContext) -> Iterable[DataLoaderAnalysis]:
    for call in ctx.nodes_of(ast.Call):
        if is_dataloader(ctx, call):
            analysis = DataLoaderAnalysis(ctx, call)
            if analysis.applies() and not analysis.endless() and not _bounded_within_pass(ctx, *analysis.sizes()[:2]):
                yield analysis


@register
class PartialLastBatch(Rule):
    code = "LL201"
    chain = ChainRole.PARTIAL_BATCH
    name = "partial-last-batch"
    severity = Severity.WARNING
    triggers = ("DataLoader",)
    summary = "A training DataLoader without drop_last=True whose dataset size N is not a multiple of the batch size B."
    why = (
        "The last batch of every epoch then has N % B samples. A mean-reduced loss gives each of them B/b times "
        "the weight of a sample in a full batch, so the gradient of that step is noisier; a loss that is also "
        "normalized per batch (LL101, LL102) is B/b times too large there and spikes once per epoch, and a "
        "momentum optimizer carries the bad step on (LL301)."
    )
    fix_doc = (
        "Adds drop_last=True. Safe when the loader shuffles (shuffle=True or a random sampler): every full batch "
        "trains exactly as before and the N % B leftover samples differ from epoch to epoch. Unsafe when nothing "
        "shuffles: the same last samples are left out of every epoch (the message says which case applies). A "
        "loader factory whose callers decide that it trains gets no fix: it may also build evaluation loaders."
    )
    references = (
        "https://pytorch.org/docs/stable/data.html#torch.utils.data.DataLoader",
        "ssd_keras commit 3526a17 (\"Make loss independent of batch size\"); Stack Overflow 47824598",
    )
    flagged = (
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)
            """,
            message_contains=("N=1000, B=64", "40 samples"),
        ),
        Flagged(
            """
            import argparse
            import torch.utils.data as tud
            from torchvision import datasets

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=128)
            parser.add_argument("--drop-last", action="store_true")
            args = parser.parse_args()
            train_set = datasets.CIFAR10("data", train=True, download=True)
            loader = tud.DataLoader(
                train_set,
                batch_size=args.batch_size,
                drop_last=args.drop_last,
            )
            for x, y in loader:
                loss = model(x, y)
                loss.backward()
            """,
            fixed="""
            import argparse
            import torch.utils.data as tud
            from torchvision import datasets

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch-size", type=int, default=128)
            parser.add_argument("--drop-last", action="store_true")
            args = parser.parse_args()
            train_set = datasets.CIFAR10("data", train=True, download=True)
            loader = tud.DataLoader(
                train_set,
                batch_size=args.batch_size,
                drop_last=True,
            )
            for x, y in loader:
                loss = model(x, y)
                loss.backward()
            """,
            unsafe=True,
            message_contains=("N=50000, B=128", "80 samples", "args.drop_last defaults to False", "nothing shuffles"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, random_split
            from config import BATCH_SIZE

            full = MyDataset()
            train_ds, val_ds = random_split(full, [900, 100])
            train_loader = DataLoader(
                train_ds,
                batch_size=BATCH_SIZE,
                shuffle=True,
            )
            val_loader = DataLoader(val_ds, batch_size=BATCH_SIZE)
            """,
            files=(("config.py", "BATCH_SIZE = 64\n"),),
            fixed="""
            from torch.utils.data import DataLoader, random_split
            from config import BATCH_SIZE

            full = MyDataset()
            train_ds, val_ds = random_split(full, [900, 100])
            train_loader = DataLoader(
                train_ds,
                batch_size=BATCH_SIZE,
                shuffle=True,
                drop_last=True,
            )
            val_loader = DataLoader(val_ds, batch_size=BATCH_SIZE)
            """,
            message_contains=("N=900",),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            def train_one_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    torch.nn.functional.mse_loss(model(x), y).backward()
                    optimizer.step()

            @torch.no_grad()
            def evaluate(model, loader):
                return sum(float(model(x).sum()) for x, _ in loader)

            data = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=64, shuffle=True)
            train_one_epoch(model, data, optimizer)
            evaluate(model, data)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            def train_one_epoch(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad()
                    torch.nn.functional.mse_loss(model(x), y).backward()
                    optimizer.step()

            @torch.no_grad()
            def evaluate(model, loader):
                return sum(float(model(x).sum()) for x, _ in loader)

            data = DataLoader(TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1)), batch_size=64, shuffle=True, drop_last=True)
            train_one_epoch(model, data, optimizer)
            evaluate(model, data)
            """,
            message_contains=("N=1000", "B=64"),
        ),
        Flagged(
            """
            import argparse
            from torch.utils.data import DataLoader
            from torchvision.datasets import MNIST

            def get_data_loaders(train_batch_size, val_batch_size):
                train_loader = DataLoader(MNIST(".", train=True), batch_size=train_batch_size, shuffle=True)
                val_loader = DataLoader(MNIST(".", train=False), batch_size=val_batch_size)
                return train_loader, val_loader

            def run(train_batch_size, val_batch_size):
                train_loader, val_loader = get_data_loaders(train_batch_size, val_batch_size)

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch_size", type=int, default=64)
            parser.add_argument("--val_batch_size", type=int, default=1000)
            args = parser.parse_args()
            run(args.batch_size, args.val_batch_size)
            """,
            fixed="""
            import argparse
            from torch.utils.data import DataLoader
            from torchvision.datasets import MNIST

            def get_data_loaders(train_batch_size, val_batch_size):
                train_loader = DataLoader(MNIST(".", train=True), batch_size=train_batch_size, shuffle=True, drop_last=True)
                val_loader = DataLoader(MNIST(".", train=False), batch_size=val_batch_size)
                return train_loader, val_loader

            def run(train_batch_size, val_batch_size):
                train_loader, val_loader = get_data_loaders(train_batch_size, val_batch_size)

            parser = argparse.ArgumentParser()
            parser.add_argument("--batch_size", type=int, default=64)
            parser.add_argument("--val_batch_size", type=int, default=1000)
            args = parser.parse_args()
            run(args.batch_size, args.val_batch_size)
            """,
            message_contains=("N=60000, B=64",),
        ),
        Flagged(
            """
            import torch
            from torchvision import datasets

            train_kwargs = {"batch_size": 64}
            if torch.cuda.is_available():
                train_kwargs.update({"num_workers": 1, "shuffle": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs)
            """,
            fixed="""
            import torch
            from torchvision import datasets

            train_kwargs = {"batch_size": 64}
            if torch.cuda.is_available():
                train_kwargs.update({"num_workers": 1, "shuffle": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs, drop_last=True)
            """,
            message_contains=("N=60000, B=64",),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True)
            """,
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            train_ds = TensorDataset(torch.randn(1000, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True, drop_last=True)
            """,
            message_contains=("N=1000, B=64",),
        ),
        Flagged(
            """
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset

            dataset = TensorDataset(torch.randn(1000, 8))
            kfold = KFold(n_splits=5, shuffle=True)
            for fold, (train_ids, test_ids) in enumerate(kfold.split(dataset)):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True)
            """,
            fixed="""
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset

            dataset = TensorDataset(torch.randn(1000, 8))
            kfold = KFold(n_splits=5, shuffle=True)
            for fold, (train_ids, test_ids) in enumerate(kfold.split(dataset)):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True, drop_last=True)
            """,
            message_contains=("N=800, B=64",),
        ),
        Flagged(
            """
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True)

            trainer = pl.Trainer(max_steps=100, limit_train_batches=1.0)
            """,
            fixed="""
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True, drop_last=True)

            trainer = pl.Trainer(max_steps=100, limit_train_batches=1.0)
            """,
            message_contains=("N=1000, B=64",),
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_set = TensorDataset(torch.randn(50000, 8), torch.randint(0, 10, (50000,)))
            small_loader = DataLoader(train_set, batch_size=1024, shuffle=True)
            imgs, labels = next(iter(small_loader))
            criterion(net(imgs), labels).backward()
            """,
            why="only next(iter(loader)): one batch is taken to look at, no pass over the data reaches a last batch",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            if __name__ == "__main__":
                voc_train = TensorDataset(torch.randn(1000, 3))
                dataloader = DataLoader(voc_train, batch_size=64, shuffle=True)
                for ii, sample in enumerate(dataloader):
                    show(sample)
            """,
            why="a dataset module's demo: the loop only shows batches, and nothing in the file trains",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_ds = TensorDataset(torch.randn(1024, 8))
            train_loader = DataLoader(train_ds, batch_size=64, sampler=None, shuffle=True)
            """,
            why="sampler=None is no sampler: N is the dataset's 1024, a multiple of B",
        ),
        Quiet(
            """
            import torch
            from sklearn.model_selection import KFold
            from torch.utils.data import DataLoader, Subset, TensorDataset
            dataset = TensorDataset(torch.randn(1280, 8))
            for train_ids, test_ids in KFold(n_splits=5).split(dataset):
                train_loader = DataLoader(Subset(dataset, train_ids), batch_size=64, shuffle=True)
            """,
            why="k-fold training folds of 1280 - 1280 / 5 = 1024 samples: a multiple of B",
        ),
        Quiet(
            """
            import pytorch_lightning as pl
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            class Model(pl.LightningModule):
                def train_dataloader(self):
                    return DataLoader(TensorDataset(torch.randn(1000, 8)), batch_size=64, shuffle=True)

            trainer = pl.Trainer(max_steps=10)
            quick = pl.Trainer(limit_train_batches=20)
            """,
            why="max_steps=10 ends the run within the first pass of 15 full batches; limit_train_batches=20 stops every epoch before the short batch",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader, TensorDataset
            import torch

            def make_loader(batch_size):
                return DataLoader(TensorDataset(torch.randn(1000, 4)), batch_size=batch_size, shuffle=True)

            small = make_loader(32)
            large = make_loader(100)
            """,
            why="a parameter the file passes different values for is not known (LL202 reports it)",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=True)
            """,
            why="drop_last=True already",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            train_ds = TensorDataset(torch.randn(1024, 20))
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
            """,
            why="N % B == 0: every batch is full",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            val_ds = TensorDataset(torch.randn(1000, 20))
            val_loader = DataLoader(val_ds, batch_size=64)
            test_loader = DataLoader(TensorDataset(torch.randn(1000, 20)), batch_size=64, shuffle=False)
            """,
            why="evaluation loaders change no weights",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader
            from torchvision import datasets
            train_loader = DataLoader(datasets.CIFAR10("data", train=True), batch_size=256, drop_last=False)
            features = []
            with torch.no_grad():
                for images, _ in train_loader:
                    features.append(backbone(images))
            """,
            why="named train_*, but iterated only under no_grad (a feature bank): dropping samples would leave rows out",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader
            from torchvision import datasets

            @torch.no_grad()
            def extract_features(model, loader):
                return torch.cat([model(images) for images, _ in loader])

            data_loader_train = DataLoader(datasets.CIFAR10("data", train=True), batch_size=256, drop_last=False)
            bank = extract_features(backbone, data_loader_train)
            """,
            why="handed to a function of the file that runs without gradients (a kNN feature bank): it trains nothing",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader, BatchSampler, RandomSampler
            train_loader = DataLoader(train_ds, batch_sampler=BatchSampler(RandomSampler(train_ds), 64, True))
            """,
            why="a batch_sampler forms the batches",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, shuffle=True)
            """,
            why="batch_size defaults to 1: no batch is partial",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, drop_last=cfg.drop_last)
            """,
            why="drop_last is set from a value that cannot be known",
        ),
        Quiet(
            """
            import torch
            from torchvision import datasets
            train_kwargs = {"batch_size": 64, "shuffle": True}
            train_kwargs.update({"drop_last": True})
            train_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), **train_kwargs)
            other_loader = torch.utils.data.DataLoader(datasets.MNIST("data", train=True), shuffle=True, **cfg.loader_kwargs)
            """,
            why="drop_last=True handed over in the **dict; a **dict that cannot be read may carry it",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        bn = None
        for analysis in _dataloaders(ctx):
            n, b, _ = analysis.sizes()
            if not is_partial(n, b):
                continue
            assert n is not None and b is not None
            if n % b == 1:
                bn = bn or _has_batchnorm1d(ctx)
                if bn:
                    continue  # LL205 reports it, as an error
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note}: {describe_last_batch(n, b)}"
                f"{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, analysis.fix())


@register
class PossiblePartialLastBatch(Rule):
    code = "LL202"
    chain = ChainRole.PARTIAL_BATCH
    name = "possible-partial-last-batch"
    severity = Severity.INFO
    triggers = ("DataLoader", "BucketIterator", "Iterator(", "dataloader(")  # create_dataloader(...): a factory's call
    summary = "A training DataLoader without drop_last=True where the dataset size or the batch size is not known statically."
    why = PartialLastBatch.why + " Here losslint cannot tell whether N % B != 0; for a random N it is, (B-1)/B of the time."
    fix_doc = PartialLastBatch.fix_doc
    references = PartialLastBatch.references
    flagged = (
        Flagged(
            """
            from torch.utils.data import DataLoader
            train_loader = DataLoader(ImageFolder(args.data), batch_size=32, shuffle=True)
            """,
            fixed="""
            from torch.utils.data import DataLoader
            train_loader = DataLoader(ImageFolder(args.data), batch_size=32, shuffle=True, drop_last=True)
            """,
            message_contains=("not known statically",),
        ),
        Flagged(
            """
            import torch

            def get_data_loader(dataset, batch_size, shuffle=False):
                data_loader = torch.utils.data.DataLoader(dataset=dataset, batch_size=batch_size, shuffle=shuffle)
                return data_loader

            def train_fn(model, data_loader, optimizer):
                for x, y in data_loader:
                    optimizer.zero_grad()
                    loss_fn(model(x), y).backward()
                    optimizer.step()

            train_data_loader = get_data_loader(train_data, 128, shuffle=True)
            valid_data_loader = get_data_loader(valid_data, 128)
            """,
            fixed=None,
            message_contains=("get_data_loader builds loaders for its callers",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, DistributedSampler
            def train_dataloader(self):
                return DataLoader(self.ds, batch_size=16, sampler=DistributedSampler(self.ds))
            """,
            fixed="""
            from torch.utils.data import DataLoader, DistributedSampler
            def train_dataloader(self):
                return DataLoader(self.ds, batch_size=16, sampler=DistributedSampler(self.ds), drop_last=True)
            """,
            message_contains=("DistributedSampler",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            class InfiniteDataLoader(DataLoader):
                pass

            def create_dataloader(dataset, batch_size, shuffle=False, quad=False):
                loader = DataLoader if quad else InfiniteDataLoader
                return loader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)

            train_loader = create_dataloader(train_set, 16, shuffle=True)
            val_loader = create_dataloader(val_set, 32)
            """,
            fixed=None,
            message_contains=("create_dataloader builds loaders for its callers", "no fix here"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                train_loader = DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs)
                return train_loader

            def main(args):
                kwargs = {"num_workers": 4, "pin_memory": True}
                loader = make_data_loader(args, **kwargs)
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                train_loader = DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs, drop_last=True)
                return train_loader

            def main(args):
                kwargs = {"num_workers": 4, "pin_memory": True}
                loader = make_data_loader(args, **kwargs)
            """,
            message_contains=("not known statically",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def get_dataloaders(batch_size=16):
                return DataLoader(load_data("train"), shuffle=True, batch_size=batch_size)

            def training_function(config):
                batch_size = int(config["batch_size"])
                train_loader = get_dataloaders(batch_size)

            config = {"lr": 2e-5, "batch_size": 16}
            training_function(config)
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def get_dataloaders(batch_size=16):
                return DataLoader(load_data("train"), shuffle=True, batch_size=batch_size, drop_last=True)

            def training_function(config):
                batch_size = int(config["batch_size"])
                train_loader = get_dataloaders(batch_size)

            config = {"lr": 2e-5, "batch_size": 16}
            training_function(config)
            """,
            files=(("library.py", '_DEFAULT_KWARGS = {"batch_size": 1}\n'),),
            message_contains=("(B=16)",),
        ),
        Flagged(
            """
            from torchtext.data import BucketIterator
            train_iterator = BucketIterator(train, batch_size=opt.batch_size, device=device, train=True)
            val_iterator = BucketIterator(val, batch_size=opt.batch_size, device=device)
            """,
            fixed=None,
            message_contains=("torchtext BucketIterator", "no drop-last option"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params))
                for batch in tqdm(iterable=data_loader):
                    self.model(batch).loss.backward()
                    self.optimizer.step()
            """,
            fixed="""
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params, drop_last=True))
                for batch in tqdm(iterable=data_loader):
                    self.model(batch).loss.backward()
                    self.optimizer.step()
            """,
            unsafe=True,
            message_contains=("nothing shuffles this data",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, IterableDataset

            class Stream(IterableDataset):
                def __len__(self):
                    return 1000

                def __iter__(self):
                    yield from read_records(self.files)

            train_loader = DataLoader(Stream(), batch_size=64)
            """,
            fixed="""
            from torch.utils.data import DataLoader, IterableDataset

            class Stream(IterableDataset):
                def __len__(self):
                    return 1000

                def __iter__(self):
                    yield from read_records(self.files)

            train_loader = DataLoader(Stream(), batch_size=64, drop_last=True)
            """,
            unsafe=True,
            message_contains=("Stream() is an IterableDataset: its __iter__, not __len__, decides N",),
        ),
        Flagged(
            """
            import argparse
            from loaders import create_dataloader

            parser = argparse.ArgumentParser()
            parser.add_argument("--quad", action="store_true")
            opt = parser.parse_args()
            train_loader = create_dataloader(opt.train_path, 16, shuffle=True, quad=opt.quad)
            val_loader = create_dataloader(opt.val_path, 32)
            """,
            fixed=None,
            files=((
                "loaders.py",
                """
                from torch.utils.data import DataLoader

                def create_dataloader(path, batch_size, shuffle=False, quad=False):
                    dataset = LoadImages(path)
                    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)
                """,
            ),),
            message_contains=("create_dataloader (loaders.py:5)", "B=16", "quad=opt.quad"),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class Reinforce(LightningModule):
                def train_batch(self):
                    while True:
                        for state, qval in self.play_episode():
                            yield state, qval
                        if self.total_steps % self.batches_per_epoch == 0:
                            break

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=8)
            """,
            fixed="""
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class Reinforce(LightningModule):
                def train_batch(self):
                    while True:
                        for state, qval in self.play_episode():
                            yield state, qval
                        if self.total_steps % self.batches_per_epoch == 0:
                            break

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=8, drop_last=True)
            """,
            unsafe=True,
            files=(("experience.py", """
                    from torch.utils.data import IterableDataset

                    class ExperienceSourceDataset(IterableDataset):
                        def __init__(self, generate_batch):
                            self.generate_batch = generate_batch

                        def __iter__(self):
                            return self.generate_batch()
                    """),),
            message_contains=("B=8", "is an IterableDataset"),
        ),
        Flagged(
            """
            import torch

            if opt.distributed:
                train_sampler = torch.utils.data.distributed.DistributedSampler(train_data)
            else:
                train_sampler = None
            train_loader = torch.utils.data.DataLoader(
                train_data, batch_size=opt.batch_size, shuffle=(train_sampler is None), sampler=train_sampler
            )
            """,
            fixed="""
            import torch

            if opt.distributed:
                train_sampler = torch.utils.data.distributed.DistributedSampler(train_data)
            else:
                train_sampler = None
            train_loader = torch.utils.data.DataLoader(
                train_data, batch_size=opt.batch_size, shuffle=(train_sampler is None), sampler=train_sampler, drop_last=True
            )
            """,
            message_contains=("DistributedSampler",),
        ),
        Flagged(
            """
            from torch.utils.data import DataLoader, SequentialSampler

            train_sampler = SequentialSampler(train_data) if opt.ordered else None
            train_loader = DataLoader(train_data, batch_size=32, shuffle=False, sampler=train_sampler)
            """,
            fixed="""
            from torch.utils.data import DataLoader, SequentialSampler

            train_sampler = SequentialSampler(train_data) if opt.ordered else None
            train_loader = DataLoader(train_data, batch_size=32, shuffle=False, sampler=train_sampler, drop_last=True)
            """,
            unsafe=True,
            message_contains=("nothing shuffles this data",),
        ),
    )
    quiet = (
        Quiet(
            """
            from torch.utils.data import DataLoader
            def val_dataloader(self):
                return DataLoader(self.val_ds, batch_size=32)
            """,
            why="evaluation loader",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            loader = DataLoader(ds, batch_size=32)
            """,
            why="nothing says it trains (no train name, no shuffle, no backward() over it)",
        ),
        Quiet(
            """
            import torch
            from torch.utils.data import DataLoader, RandomSampler
            sampler = RandomSampler(train_dataset, replacement=True, num_samples=int(1e10))
            train_loader = DataLoader(train_dataset, sampler=sampler, batch_size=config.batch_size)
            """,
            why="an epoch of 10^10 samples never ends: the run stops by an iteration count first",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader

            def make_data_loader(args, **kwargs):
                return DataLoader(Folder(args.root), batch_size=args.batch_size, shuffle=True, **kwargs)

            def main(args):
                loader = make_data_loader(args, drop_last=True)
                other = make_data_loader(args, **load_options())
            """,
            why="a caller may hand drop_last over through **kwargs",
        ),
        Quiet(
            """
            from torchtext.data import BucketIterator
            train_iterator = BucketIterator(train, batch_size=1, train=True)
            """,
            why="a batch of one is never partial",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader
            from experience import ExperienceSourceDataset

            class A2C(LightningModule):
                def train_batch(self):
                    while True:
                        for _ in range(self.batch_size):
                            self.states.append(self.env.step(self.agent(self.state)))
                        for idx in range(self.batch_size):
                            yield self.states[idx]

                def train_dataloader(self):
                    return DataLoader(ExperienceSourceDataset(self.train_batch), batch_size=32)
            """,
            files=(("experience.py", """
                    from torch.utils.data import IterableDataset

                    class ExperienceSourceDataset(IterableDataset):
                        def __init__(self, generate_batch):
                            self.generate_batch = generate_batch

                        def __iter__(self):
                            return self.generate_batch()
                    """),),
            why="the IterableDataset streams from a generator that never ends (an RL experience source): no epoch ends, so no last batch",
        ),
        Quiet(
            """
            from loaders import create_dataloader

            train_loader = create_dataloader(opt.train_path, 16, shuffle=True, quad=True)
            val_loader = create_dataloader(opt.val_path, 32, shuffle=True)
            """,
            files=((
                "loaders.py",
                """
                from torch.utils.data import DataLoader

                def create_dataloader(path, batch_size, shuffle=False, quad=False):
                    dataset = LoadImages(path)
                    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=quad)
                """,
            ),),
            why="the training call asks the factory for drop_last; the other call builds a validation loader",
        ),
        Quiet(
            """
            from torch.utils.data import DataLoader

            def get_train_dataloader(self):
                params = {"batch_size": self.args.batch_size, "shuffle": False}
                data_loader = self.accelerator.prepare(DataLoader(self.train_dataset, **params))
                for batch in tqdm(iterable=data_loader, desc="reference log probs"):
                    self.reference_logps.append(self.compute_reference_log_probs(batch))
                return super().get_train_dataloader()
            """,
            why="unshuffled and only read by a loop that never steps: a precomputation over the training set",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for analysis in _dataloaders(ctx):
            n, b, note = analysis.sizes()
            if (n is not None and b is not None) or b == 1:
                continue  # LL201 / LL205 decide; a batch of one is never partial
            batch = f"B={b}" if b is not None else "B unknown"
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note} ({batch}): "
                f"{_unknown_reason(ctx, analysis, n, b, note)}; unless N is a multiple of B the last batch "
                f"of every epoch is smaller{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, analysis.fix())
        yield from self._torchtext_iterators(ctx)
        for call, message in factory_calls(ctx):
            yield ctx.finding(self, call, message)

    def _torchtext_iterators(self, ctx: FileContext) -> Iterable[Finding]:
        """torchtext's (legacy) BucketIterator/Iterator for training: no drop-last option."""
        for call in ctx.nodes_of(ast.Call):
            qual = ctx.qualname(call.func) or ""
            if not (qual.startswith("torchtext.") and last_part(qual) in _TORCHTEXT_ITERATORS):
                continue
            train = argument(call, "train")
            role = Role.TRAIN if train is not None and ctx.values.value(train) is True else pipeline_role(ctx, call, argument(call, "dataset", 0))
            b = ctx.values.int_value(argument(call, "batch_size", 1))
            if role is not Role.TRAIN or b == 1 or argument(call, "repeat") is not None and ctx.values.value(argument(call, "repeat")) is not False:
                continue
            batch = f"B={b}" if b is not None else "B unknown"
            message = (
                f"training torchtext {last_part(qual)} ({batch}) keeps the last, short batch of every epoch and has no "
                "drop-last option; unless N is a multiple of B the last batch of every epoch is smaller (no fix: "
                "filter it out in the training loop, or move to a DataLoader with drop_last=True)"
            )
            yield ctx.finding(self, call, message)


@register
class BatchNormSingletonBatch(Rule):
    code = "LL205"
    chain = ChainRole.SINGLETON_BATCH
    name = "batchnorm-singleton-batch"
    severity = Severity.ERROR
    triggers = ("DataLoader",)  # the BatchNorm1d may be in another file
    summary = "N % B == 1 without drop_last=True while the model has BatchNorm1d: the last batch of every epoch has one sample."
    why = (
        "BatchNorm in training mode needs more than one value per channel: on the one-sample batch it raises "
        "\"ValueError: Expected more than 1 value per channel when training\" and training stops at the end of "
        "the first epoch (or, with a tolerant layer, normalizes by a variance of zero)."
    )
    fix_doc = PartialLastBatch.fix_doc
    references = ("https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html",)
    flagged = (
        Flagged(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
            train_loader = DataLoader(TensorDataset(torch.randn(129, 8)), batch_size=32, shuffle=True)
            """,
            fixed="""
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset

            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
            train_loader = DataLoader(TensorDataset(torch.randn(129, 8)), batch_size=32, shuffle=True, drop_last=True)
            """,
            message_contains=("N=129, B=32", "1 sample", "Expected more than 1 value per channel"),
        ),
        Flagged(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from models import Net

            model = Net()
            train_loader = DataLoader(TensorDataset(torch.randn(1001, 8)), batch_size=100, shuffle=True)
            """,
            files=(
                (
                    "models.py",
                    """
                    from torch import nn
                    class Net(nn.Module):
                        def __init__(self):
                            super().__init__()
                            self.bn = nn.BatchNorm1d(8)
                    """,
                ),
            ),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset
            from models import Net

            model = Net()
            train_loader = DataLoader(TensorDataset(torch.randn(1001, 8)), batch_size=100, shuffle=True, drop_last=True)
            """,
            message_contains=("Net",),
        ),
    )
    quiet = (
        Quiet(
            """
            import torch
            from torch import nn
            from torch.utils.data import DataLoader, TensorDataset
            model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16))
            train_loader = DataLoader(TensorDataset(torch.randn(130, 8)), batch_size=32, shuffle=True)
            """,
            why="N % B == 2: LL201's business, no crash",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        bn = None
        for analysis in _dataloaders(ctx):
            n, b, _ = analysis.sizes()
            if not is_partial(n, b) or n % b != 1:  # type: ignore[operator]
                continue
            bn = bn or _has_batchnorm1d(ctx)
            if not bn:
                continue
            fix = analysis.fix()
            message = (
                f"training DataLoader without drop_last=True{analysis.drop_last.note}: N={n}, B={b} leaves a last "
                f"batch of 1 sample, and the model has BatchNorm ({bn}): training raises \"Expected more than 1 "
                "value per channel when training\" at the end of the first epoch"
                f"{_fix_note(analysis)}"
            )
            yield ctx.finding(self, analysis.call, message, fix)
