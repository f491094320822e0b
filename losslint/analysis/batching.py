"""What a batching pipeline is, independent of any rule.

- The arguments a call gets, written or handed over in ``**dicts``
  (``CallArguments``, ``dict_entries``), and boolean options such as ``drop_last``
  (``read_flag``).
- A torch ``DataLoader`` (``is_dataloader``, ``DataLoaderAnalysis``): its dataset,
  batch size, sampler and drop_last; N and B; whether it shuffles; whether an epoch
  ever ends (a sampler of a billion samples, an IterableDataset that streams
  forever); what it is for, by use or by what the callers of a loader factory
  hand it; whether the run stops within a pass (``bounded_within_pass``).
- A ``tf.data`` ``.batch()`` (``tf_short_batchings``): its pipeline followed back to
  the source (``pipeline_of``), N, B and drop_remainder, whether batches span
  epochs, what it trains.
- ``Batching``: the N, B and drop flag of either, for the loss family's question
  "which pipeline feeds this loss" (``batching_calls``, ``batching_of``).

The partial-batch rules (LL2xx) judge what this finds (is the last batch short,
how severe, the message, the fix); the loss rules (LL1xx) ask it about the
pipeline that feeds a loss. Both read the same N, B and drop flags.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from losslint.analysis.calls import CallSite, call_sites
from losslint.analysis.hierarchy import derives_from
from losslint.analysis.names import argument, dotted, has_star_kwargs, last_part
from losslint.analysis.origins import dict_entries
from losslint.analysis.roles import Role, bound_name, only_read_without_steps, pipeline_role, words_role
from losslint.analysis.sizes import TFDS_SIZES, length, sample_count, tfds_split_length
from losslint.analysis.walk import tree_index
from losslint.findings import RelatedLocation
from losslint.project import UNKNOWN, ModuleFacts, ProjectFacts, argparse_dest, collector, family_fact

if TYPE_CHECKING:
    from losslint.context import FileContext


def is_partial(n: int | None, b: int | None) -> bool:
    """N and B known, B > 1, and the last batch of a pass short (N > B: an epoch
    that is one batch of all N has no partial batch)."""
    n, b = known_sizes(n, b)
    return n is not None and b is not None and b > 1 and n > b and n % b != 0


def value_source(ctx: FileContext, node: ast.expr | None) -> ast.AST | None:
    """Where in this file the value ``node`` reads is written, when that is not
    ``node`` itself: the value a name was bound to (``BATCH = 64``, ``train_ds =
    TensorDataset(...)``, an element of ``random_split(...)``), or the
    ``add_argument`` call an ``args.x`` reads. None for a literal, a parameter, or
    a value written in another file."""
    if isinstance(node, ast.Name):
        binding = ctx.values.binding_before(node)
        if binding is None or binding.value is None or binding.parameter is not None:
            return None
        return binding.value if hasattr(binding.value, "lineno") else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        for call in ctx.nodes_of(ast.Call):
            if (
                isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument" and argparse_dest(call) == node.attr
                and any(kw.arg == "default" for kw in call.keywords)
            ):
                return call
    return None


def size_sources(ctx: FileContext, at: ast.AST, n: int | None, n_node: ast.expr | None, b: int | None, b_node: ast.expr | None) -> list[RelatedLocation]:
    """Related locations for a finding at ``at``: where its known N and B come
    from, when that is outside ``at`` in this file (the expression itself, such as
    a pipeline's ``from_tensor_slices`` source, or what it reads)."""
    first, last = getattr(at, "lineno", 0), getattr(at, "end_lineno", None) or getattr(at, "lineno", 0)
    found = []
    for what, value, node in (("N", n, n_node), ("B", b, b_node)):
        if value is None or node is None:
            continue
        source = value_source(ctx, node)
        if source is None and not first <= getattr(node, "lineno", first) <= last:
            source = node
        if source is not None and not first <= getattr(source, "lineno", first) <= last:
            found.append(ctx.related(source, f"{what} = {value} comes from here"))
    return found


def known_sizes(n: int | None, b: int | None) -> tuple[int | None, int | None]:
    """N and B as numbers only where they make sense: a dataset of no samples or a
    batch size below one is something we failed to read, never a number."""
    return (n if n is not None and n > 0 else None), (b if b is not None and b > 0 else None)


@dataclass
class Flag:
    """A boolean option of a call such as ``drop_last``: where it is, and its value."""

    node: ast.expr | None  # the value expression, None when the option is absent
    value: object  # True, False, or UNKNOWN
    note: str = ""  # "args.drop_last defaults to False"
    fixable: bool = True  # False: set in several places (a **dict's branches), no one edit sets it


def read_flag(ctx: FileContext, call: ast.Call, name: str, position: int | None) -> Flag:
    node = argument(call, name, position)
    if node is None:
        # **kwargs may carry it: we cannot know.
        return Flag(None, UNKNOWN if has_star_kwargs(call) else False)
    value = ctx.values.value(node)
    if value is None:
        value = False
    if value not in (True, False):
        return Flag(node, UNKNOWN)
    note = ""
    if value is False and not isinstance(node, ast.Constant):
        note = f" ({ctx.text(node)} defaults to False)"
    return Flag(node, value, note)


# -- keyword arguments, and **dicts ------------------------------------------------

class CallArguments:
    """The keyword arguments a call gets: those written, and those of its
    ``**d`` where ``d`` can be read (``complete`` is False when some cannot)."""

    def __init__(self, ctx: FileContext, call: ast.Call) -> None:
        self.ctx, self.call = ctx, call
        self.unpacked: dict[str, list[ast.expr]] = {}
        self.complete = True
        for kw in call.keywords:
            if kw.arg is not None:
                continue
            found = dict_entries(ctx, kw.value)
            if found is None:
                self.complete = False
                continue
            for key, values in found.items():
                self.unpacked.setdefault(key, []).extend(values)

    def written(self, name: str, position: int | None = None) -> ast.expr | None:
        return argument(self.call, name, position)

    def candidates(self, name: str, position: int | None = None) -> list[ast.expr]:
        """Every expression the argument may be given by (none: absent, when complete)."""
        node = argument(self.call, name, position)
        return [node] if node is not None else list(self.unpacked.get(name, []))

    def single(self, name: str, position: int | None = None) -> ast.expr | None:
        """The one expression that gives the argument; None when absent or when
        branches give it different values."""
        found = self.candidates(name, position)
        if len(found) == 1:
            return found[0]
        if found and len({ast.dump(n) for n in found}) == 1:
            return found[0]
        return None

    def flag(self, name: str, position: int | None) -> Flag:
        """``read_flag`` across ``**d``: False only when no way of passing it can be True."""
        found = self.candidates(name, position)
        if not found:
            return Flag(None, False if self.complete else UNKNOWN)
        if argument(self.call, name, position) is found[0]:
            return read_flag(self.ctx, self.call, name, position)
        values = {self.ctx.values.value(n) for n in found}
        if not values <= {False, None}:
            return Flag(None, UNKNOWN)
        # Set in the dict: the fix sets it there (a keyword beside **d would repeat it).
        return Flag(found[0], False, f" ({self.ctx.text(found[0])} in the keyword dict)", fixable=len(found) == 1)


# -- generators that never end --------------------------------------------------

def _loop_breaks(loop: ast.While) -> bool:
    """A ``break`` of this loop or a ``return`` anywhere in it (not in a nested
    function): the loop may end."""
    stack: list[tuple[ast.AST, bool]] = [(child, True) for child in ast.iter_child_nodes(loop)]
    while stack:
        node, own = stack.pop()
        if isinstance(node, ast.Return) or (isinstance(node, ast.Break) and own):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        inner = own and not isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False


def endless_generator(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A generator whose body runs into a ``while True:`` loop that yields and
    neither breaks nor returns: a stream (an RL experience source, fresh noise) with
    no end, so no last batch of an epoch. A loop behind an ``if`` may be skipped: not
    endless."""
    return any(
        isinstance(statement, ast.While)
        and isinstance(statement.test, ast.Constant)
        and bool(statement.test.value)
        and any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(statement))
        and not _loop_breaks(statement)
        for statement in function.body
    )


# -- torch DataLoaders -----------------------------------------------------------

DATALOADERS = {
    "torch.utils.data.DataLoader",
    "torch.utils.data.dataloader.DataLoader",
    "torch_geometric.loader.DataLoader",
    "torch_geometric.data.DataLoader",
    "monai.data.DataLoader",
}
# DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers,
#            collate_fn, pin_memory, drop_last, ...)
BATCH_SIZE_POS, SAMPLER_POS, BATCH_SAMPLER_POS, DROP_LAST_POS = 1, 3, 4, 8
# An epoch of this many samples never ends in a real run (RandomSampler(replacement=True,
# num_samples=int(1e10)): training stops by an iteration count long before).
_ENDLESS_EPOCH = 10**9
_RANDOM_SAMPLERS = {"RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "DistributedSampler"}


@family_fact
@dataclass
class IterableDatasets:
    """Per module: its IterableDataset classes, each with how its stream may end:
    "endless" (``__iter__`` is, or returns, a generator that never ends), "handed"
    (``__iter__`` calls the function given to ``__init__``, at ``handed[cls]``: its
    position and parameter) or "stream" (nothing says)."""

    streams: dict[str, str] = field(default_factory=dict)
    handed: dict[str, tuple[int, str]] = field(default_factory=dict)


def _iter_source(cls: ast.ClassDef) -> str | tuple[int, str] | None:
    """How an IterableDataset's ``__iter__`` gets its items: "endless" (a generator
    that never ends, here or in a method it returns), (position, name) (it returns
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
                return (parameters.index(node.value.id), node.value.id)
    return None


@collector
def _endless_iterable_datasets(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Project IterableDatasets, and how their stream may have no end (see
    ``_iter_source``; "stream" when nothing says)."""
    if "IterableDataset" not in source:
        return
    found = IterableDatasets()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(last_part(dotted(b)) == "IterableDataset" for b in node.bases):
            how = _iter_source(node)
            if isinstance(how, tuple):
                found.streams[node.name], found.handed[node.name] = "handed", how
            else:
                found.streams[node.name] = how or "stream"
    if found.streams:
        facts.put(found)


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
    ways = {
        (facts.streams[name], facts.handed.get(name))
        for _, facts in ctx.project.each(IterableDatasets, scope=ctx.file or None)
        if name in facts.streams
    }
    if len(ways) != 1:
        return False  # not a project IterableDataset, or two classes of that name that disagree
    how, handed = ways.pop()
    if how != "handed" or handed is None:
        return how == "endless"
    position, parameter = handed
    given = argument(dataset, parameter, position)
    return given is not None and any(endless_generator(f) for f in _functions_named(ctx, given, dataset))


def _iterable_dataset(ctx: FileContext, dataset: ast.expr | None) -> bool:
    """A project IterableDataset (its ``__len__``, if any, is only a hint)."""
    if isinstance(dataset, ast.Name):
        dataset = ctx.values.resolve_name(dataset)
    if not (isinstance(dataset, ast.Call) and isinstance(dataset.func, (ast.Name, ast.Attribute))):
        return False
    name = last_part(ctx.qualname(dataset.func) or dotted(dataset.func) or "")
    return any(name in facts.streams for _, facts in ctx.project.each(IterableDatasets, scope=ctx.file or None))


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
    or a name that is one of them whichever branch chose it. (Once per call and
    file: several rules ask of every call.)"""
    key = ("batching.is_dataloader", call)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _dataloader_class(ctx, call.func)
    return found


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


class DataLoaderAnalysis:
    """What one DataLoader call is: its dataset, batch size, sampler and drop_last
    (written, or handed over in a **dict), N and B, whether it shuffles, whether an
    epoch ever ends, and what it is for (by use, or by what its callers hand it)."""

    def __init__(self, ctx: FileContext, call: ast.Call) -> None:
        self.ctx, self.call = ctx, call
        # Arguments written in the call or handed over in a **dict it can read.
        self.arguments = CallArguments(ctx, call)
        self.dataset = self.arguments.single("dataset", 0)
        self.batch_size_node = self.arguments.single("batch_size", BATCH_SIZE_POS)
        self.sampler = self.arguments.single("sampler", SAMPLER_POS)
        self.forwarded: set[str] = set()  # keys callers hand over through this function's **kwargs
        if not self.arguments.complete:
            self._read_forwarded_kwargs()
        self.drop_last = self.arguments.flag("drop_last", DROP_LAST_POS)
        self.caller_roles: set[Role] = set()  # roles the callers of a loader factory give it

    def _read_forwarded_kwargs(self) -> None:
        """``def make_loader(args, **kwargs): DataLoader(ds, ..., **kwargs)``: the keys
        every caller hands over into ``**kwargs`` (the project call graph; none may
        carry drop_last, a sampler or shuffle)."""
        function = self.ctx.enclosing(self.call, ast.FunctionDef, ast.AsyncFunctionDef)
        kwarg = function.args.kwarg.arg if function is not None and function.args.kwarg else None
        unread = [
            kw.value for kw in self.call.keywords
            if kw.arg is None and (dict_entries(self.ctx, kw.value) is None)
        ]
        if function is None or not unread or not all(isinstance(v, ast.Name) and v.id == kwarg for v in unread):
            return
        sites = call_sites(self.ctx, function)
        keys: set[str] = set()
        for site in sites:
            if site.call is not None:
                for kw in site.call.keywords:
                    if kw.arg is None:
                        entries = dict_entries(self.ctx, kw.value)
                        if entries is None:
                            return
                        keys.update(entries)
            elif site.record is None or site.record.unpacked_unread:
                return
            else:
                keys.update(site.record.unpacked)
            keys.update(site.extra_keywords)  # keywords that land in **kwargs
        if not sites or keys & {"drop_last", "batch_sampler", "sampler", "shuffle"}:
            return
        self.forwarded = keys
        self.arguments.complete = True

    def trains_with_remainder(self) -> bool:
        """A training loader whose last batch of a pass holds what is left over: it
        batches by batch_size (no batch_sampler, batching on, a batch size given: the
        default is 1) and drop_last is False."""
        if self.arguments.candidates("batch_sampler", BATCH_SAMPLER_POS):
            return False  # the batch sampler forms the batches; drop_last is not allowed
        if self.drop_last.value is not False:
            return False  # drop_last=True, or a value we cannot know
        if isinstance(self.batch_size_node, ast.Constant) and self.batch_size_node.value is None:
            return False  # batching disabled
        if not self.arguments.candidates("batch_size", BATCH_SIZE_POS) and self.arguments.complete and (
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
        training when a caller says so: shuffle=True for the parameter that gives
        shuffle (in this file or another that calls it: the project call graph), or a
        dataset or a result named for training (in this file). Evaluation when a
        caller says that."""
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
            default_values = {name: self.ctx.values.value(defaults[name]) if name in defaults else UNKNOWN for name in shuffle_parameters}
            sites = call_sites(self.ctx, function)
            if not sites and (any(value is True for value in default_values.values()) or _evaluated(shuffle, default_values) is True):
                roles.add(Role.TRAIN)  # shuffles with the defaults, and no caller says otherwise
            for site in sites:
                # shuffle=(mode == "train"): the expression with what the call passes
                passed = {name: self._passed_or_unknown(site, name, default_values[name]) for name in shuffle_parameters}
                evaluated = _evaluated(shuffle, passed)
                if evaluated is UNKNOWN and _compares_to_training(shuffle):
                    evaluated = True  # shuffle=(mode == "train") with a mode not known here: a training loader in that mode
                # else (shuffle=shuffle and sampler is None): what the parameters are, the defaults where not passed
                values = {evaluated} if isinstance(evaluated, bool) else set(passed.values())
                if True in values:
                    roles.add(Role.TRAIN)
                elif False in values:
                    roles.add(Role.EVAL)
        dataset = self.dataset
        if isinstance(dataset, ast.Name) and dataset.id in parameters:
            for site in call_sites(self.ctx, function, across_files=False):
                passed = site.arguments.get(dataset.id)
                for text in (bound_name(self.ctx, site.call), self.ctx.text(passed) if passed is not None else None):
                    role = words_role(text) if text else Role.UNKNOWN
                    if role is not Role.UNKNOWN:
                        roles.add(role)
                        break
        return roles

    def _passed_or_unknown(self, site: CallSite, parameter: str, default: object) -> object:
        """What a call site passes for ``parameter`` (UNKNOWN when not known), or
        ``default`` when it passes nothing."""
        if parameter in site.arguments:
            return self.ctx.values.value(site.arguments[parameter])
        passed = site.passed.get(parameter)
        if passed is not None:
            return passed.value if passed.known else UNKNOWN
        return default

    def _passed_value(self, site: CallSite, parameter: str) -> object:
        """The value a call site passes for ``parameter``: this file's resolved, another
        file's literal; None when not passed or not known."""
        if parameter in site.arguments:
            return self.ctx.values.value(site.arguments[parameter])
        passed = site.passed.get(parameter)
        return passed.value if passed is not None and passed.known else None

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



def _compares_to_training(expr: ast.expr) -> bool:
    """``mode == "train"``, ``split in ("train", "trainval")``: a test for a training mode."""
    return isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], (ast.Eq, ast.In)) and any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and words_role(n.value) is Role.TRAIN
        for n in ast.walk(expr.comparators[0])
    )


def _evaluated(expr: ast.expr, values: dict[str, object]) -> object:
    """``mode == "train"``, ``not is_test``, ``split in ("train", "trainval")`` with the
    parameters' values: True/False, or UNKNOWN when a value or the form is not known."""
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, ast.Name):
        return values.get(expr.id, UNKNOWN)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        operand = _evaluated(expr.operand, values)
        return UNKNOWN if operand is UNKNOWN else not operand
    if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
        items = [_evaluated(e, values) for e in expr.elts]
        return UNKNOWN if UNKNOWN in items else tuple(items)
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1:
        left, right = _evaluated(expr.left, values), _evaluated(expr.comparators[0], values)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        op = expr.ops[0]
        try:
            if isinstance(op, (ast.Eq, ast.NotEq)):
                return (left == right) is isinstance(op, ast.Eq)
            if isinstance(op, (ast.In, ast.NotIn)):
                return (left in right) is isinstance(op, ast.In)  # type: ignore[operator]
        except TypeError:
            return UNKNOWN
    return UNKNOWN


def bounded_within_pass(ctx: FileContext, n: int | None, b: int | None) -> bool:
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
    bounds = ctx.memo.get("batching.trainer_bounds")
    if bounds is None:
        bounds = []
        for call in ctx.nodes_of(ast.Call):
            if not last_part(ctx.qualname(call.func) or "").endswith("Trainer"):
                continue
            limit = ctx.values.value(argument(call, "limit_train_batches"))
            limited = (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0) or (isinstance(limit, float) and 0 < limit < 1)
            bounds.append((limited, None if limited else ctx.values.int_value(argument(call, "max_steps"))))
        ctx.memo["batching.trainer_bounds"] = bounds
    return bounds


# -- tf.data .batch() ------------------------------------------------------------

TF_PACKAGES = ("tensorflow", "tensorflow_datasets", "keras", "tf_keras")
# Batching transformations and the position of their drop_remainder parameter:
# batch(batch_size, drop_remainder=False, ...); padded_batch(batch_size,
# padded_shapes=None, padding_values=None, drop_remainder=False, ...);
# ragged_batch(batch_size, drop_remainder=False, ...).
BATCHING = {"batch": 1, "padded_batch": 3, "ragged_batch": 1}
# tf.data transformations that keep the number of elements.
SAME_SIZE = {"map", "shuffle", "cache", "prefetch", "with_options", "enumerate", "snapshot", "apply_options"}


@dataclass
class Pipeline:
    """A tf.data method chain, followed back through the names it was assigned to."""

    steps: list[ast.Call] = field(default_factory=list)  # method calls, source first
    root: ast.expr | None = None  # what the first step is called on
    root_path: tuple[int, ...] = ()  # the root was unpacked: (ds_train, ds_test) = tfds.load(...)
    names: list[str] = field(default_factory=list)  # names followed, nearest first

    def methods(self) -> list[str]:
        return [call.func.attr for call in self.steps if isinstance(call.func, ast.Attribute)]


def is_module_path(ctx: FileContext, node: ast.expr) -> bool:
    """``tf.data.Dataset`` (a path through an imported module), not a value."""
    text = dotted(node)
    return text is not None and text.split(".")[0] in ctx.imports.aliases


def pipeline_of(ctx: FileContext, expr: ast.expr) -> Pipeline:
    pipeline = Pipeline()
    steps: list[ast.Call] = []
    for _ in range(30):
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and not is_module_path(ctx, expr.func.value):
            steps.append(expr)
            expr = expr.func.value
            continue
        if isinstance(expr, ast.Name):
            pipeline.names.append(expr.id)
            binding = ctx.values.binding_before(expr)
            if binding is None or binding.value is None:
                break
            value, path = binding.value, binding.path
            # train, test = datasets["train"], datasets["test"]: follow the element.
            while path and isinstance(value, (ast.Tuple, ast.List)) and path[0] < len(value.elts):
                value, path = value.elts[path[0]], path[1:]
            if path:
                expr, pipeline.root_path = value, path
                break
            expr = value
            continue
        if isinstance(expr, ast.Attribute):
            pipeline.names.append(expr.attr)
        break
    pipeline.steps = list(reversed(steps))
    pipeline.root = expr
    return pipeline


def source_package(ctx: FileContext, root: ast.expr | None) -> str | None:
    """Where the pipeline comes from: "tf" (tf.data, tfds, a keras dataset utility),
    "other" (🤗 datasets, torch, ...) or None (a parameter, an attribute: unknown)."""
    if isinstance(root, ast.Subscript):
        return source_package(ctx, root.value)
    if not isinstance(root, ast.Call):
        return None
    qual = ctx.qualname(root.func) or ""
    if qual.startswith(("tensorflow.data.", "tensorflow_datasets.")) or (
        qual.split(".")[0] in TF_PACKAGES and "_dataset_from_" in qual
    ):
        return "tf"
    if qual.split(".")[0] in ("datasets", "torch", "numpy", "pandas"):
        return "other"
    return None


def is_tf_pipeline(ctx: FileContext, pipeline: Pipeline) -> bool:
    source = source_package(ctx, pipeline.root)
    if source is not None:
        return source == "tf"
    # Unknown source (a function parameter, self.ds): in a TensorFlow file that
    # does not also use 🤗 datasets or torch (whose objects have .batch too).
    return ctx.imports.imports_any("tensorflow", "tensorflow_datasets") and not ctx.imports.imports_any("datasets", "torch")


def pipeline_size(ctx: FileContext, pipeline: Pipeline, upto: int) -> int | None:
    """Elements of the pipeline after its first ``upto`` steps, when known."""
    root = pipeline.root
    n: int | None = None
    if isinstance(root, ast.Call):
        name = last_part(ctx.qualname(root.func))
        if pipeline.root_path:
            n = tfds_split_length(ctx, root, pipeline.root_path) if name == "load" else None
        elif name == "from_tensor_slices":
            data = argument(root, "tensors", 0)
            if isinstance(data, (ast.Tuple, ast.List)) and data.elts:
                data = data.elts[0]
            elif isinstance(data, ast.Dict) and data.values:
                data = data.values[0]
            n = sample_count(ctx, data)
        elif name == "range":
            n = length(ctx, root)
        elif name == "load":
            n = tfds_split_length(ctx, root)
    elif isinstance(root, ast.Subscript) and not pipeline.root_path:
        n = _tfds_split_by_key(ctx, root)
    for step in pipeline.steps[:upto]:
        if n is None:
            return None
        method = step.func.attr if isinstance(step.func, ast.Attribute) else ""
        if method in SAME_SIZE:
            continue
        count = ctx.values.int_value(argument(step, "count", 0))
        if method == "take" and count is not None:
            n = n if count < 0 else min(n, count)
        elif method == "skip" and count is not None:
            n = 0 if count < 0 else max(0, n - count)
        else:
            return None
    return n


def _tfds_split_by_key(ctx: FileContext, node: ast.Subscript) -> int | None:
    """``datasets["train"]`` where ``datasets, info = tfds.load("mnist", with_info=True)``
    (or ``datasets = tfds.load("mnist")``): tfds.load without a split returns a dict
    of all splits."""
    key = ctx.values.value(node.slice)
    if not isinstance(key, str) or not isinstance(node.value, ast.Name):
        return None
    binding = ctx.values.binding_before(node.value)
    if binding is None or not isinstance(binding.value, ast.Call):
        return None
    call = binding.value
    if not (ctx.qualname(call.func) or "").startswith("tensorflow_datasets") or argument(call, "split", 1) is not None:
        return None
    with_info = ctx.values.value(argument(call, "with_info")) is True
    if binding.path != ((0,) if with_info else ()):
        return None
    name = ctx.values.value(argument(call, "name", 0))
    sizes = TFDS_SIZES.get(name) if isinstance(name, str) else None
    return sizes.get(key) if sizes else None


def _outermost(ctx: FileContext, call: ast.Call) -> tuple[ast.expr, list[str]]:
    """The whole chain a call is part of (``ds.batch(32).prefetch(1)``), and the
    methods applied after it."""
    node: ast.expr = call
    after: list[str] = []
    while True:
        parent = ctx.parents.get(node)
        grand = ctx.parents.get(parent) if parent is not None else None
        if isinstance(parent, ast.Attribute) and isinstance(grand, ast.Call) and grand.func is parent:
            after.append(parent.attr)
            node = grand
            continue
        return node, after


def _fit_role(ctx: FileContext, node: ast.expr, names: set[str]) -> Role:
    """TRAIN when ``node`` (or a name in ``names``) is what ``fit`` trains on; EVAL
    when it is ``validation_data`` or what ``evaluate``/``predict`` gets."""
    for call in ctx.nodes_of(ast.Call):
        if not isinstance(call.func, ast.Attribute) or call.func.attr not in ("fit", "evaluate", "predict", "fit_generator"):
            continue
        for role, arg in ((Role.TRAIN, argument(call, "x", 0)), (Role.EVAL, argument(call, "validation_data", 7))):
            if arg is None:
                continue
            if arg is node or (isinstance(arg, ast.Name) and arg.id in names):
                return role if call.func.attr in ("fit", "fit_generator") else Role.EVAL
    return Role.UNKNOWN


def tf_pipeline_role(ctx: FileContext, call: ast.Call, pipeline: Pipeline) -> Role:
    outer, after = _outermost(ctx, call)
    name = bound_name(ctx, outer)
    candidates = [name] if name else []
    candidates += pipeline.names
    function = ctx.enclosing(call, ast.FunctionDef, ast.AsyncFunctionDef)
    if function is not None:
        candidates.append(function.name)
    if pipeline.root is not None and not pipeline.root_path:
        candidates.append(ctx.text(pipeline.root))
    for text in candidates:
        role = words_role(text)
        if role is not Role.UNKNOWN:
            return role
    if "shuffle" in pipeline.methods() or "shuffle" in after:
        return Role.TRAIN
    parent = ctx.parents.get(outer)
    assigned = set()
    if isinstance(parent, ast.Assign):
        assigned = {t.id for t in parent.targets if isinstance(t, ast.Name)}
    return _fit_role(ctx, outer, assigned)


@dataclass
class TfBatching:
    """A training tf.data ``.batch()`` whose last batch of a pass may be short."""

    call: ast.Call
    method: str  # batch, padded_batch, ragged_batch
    pipeline: Pipeline
    flag: Flag  # drop_remainder (False here)
    b: int | None
    n: int | None

    def shuffled(self) -> bool:
        return "shuffle" in self.pipeline.methods()


def tf_short_batchings(ctx: FileContext) -> Iterable[TfBatching]:
    """The tf.data ``.batch()`` calls of this file that train and may end a pass
    with a short batch: no drop_remainder=True, no ``.repeat()`` before them (the
    batches then span epochs), no ``.take(len // B)`` after them, a batch size
    other than 1, and N not known to be a multiple of B."""
    if not ctx.imports.imports_any(*TF_PACKAGES):
        return
    for call in ctx.nodes_of(ast.Call):
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in BATCHING) or is_module_path(ctx, func.value):
            continue
        flag = read_flag(ctx, call, "drop_remainder", BATCHING[func.attr])
        if flag.value is not False:
            continue  # drop_remainder=True, or a value that cannot be known
        pipeline = pipeline_of(ctx, func.value)
        if "repeat" in pipeline.methods() or not is_tf_pipeline(ctx, pipeline):
            continue  # batches span epochs: no partial batch at an epoch boundary
        if tf_pipeline_role(ctx, call, pipeline) is not Role.TRAIN:
            continue
        if _takes_full_batches(ctx, call):
            continue
        n, b = known_sizes(pipeline_size(ctx, pipeline, len(pipeline.steps)), ctx.values.int_value(argument(call, "batch_size", 0)))
        if b == 1:
            continue  # a batch of one is never partial
        if n is not None and b is not None and not is_partial(n, b):
            continue  # every batch is full, or each epoch is one batch of all N
        yield TfBatching(call, func.attr, pipeline, flag, b, n)


def _takes_full_batches(ctx: FileContext, call: ast.Call) -> bool:
    """``.batch(bs)...take(len(x) // bs)``: the epoch takes only as many batches as
    are full, so the short one is never reached."""
    size = argument(call, "batch_size", 0)
    node: ast.AST = call
    while True:
        parent = ctx.parents.get(node)
        grand = ctx.parents.get(parent) if parent is not None else None
        if not (isinstance(parent, ast.Attribute) and isinstance(grand, ast.Call) and grand.func is parent):
            return False
        if parent.attr == "repeat":
            return False
        if parent.attr == "take":
            count = argument(grand, "count", 0)
            return (
                isinstance(count, ast.BinOp) and isinstance(count.op, ast.FloorDiv) and size is not None
                and ast.dump(count.right) == ast.dump(size)
            )
        node = grand


# -- both kinds, as the loss family asks: which pipeline feeds a loss ---------------

@dataclass
class Batching:
    """The training data pipeline a loss is computed on: its N, B and whether it
    drops the last partial batch. Any field may be unknown (None)."""

    call: ast.Call | None
    n: int | None
    b: int | None
    drops: bool | None  # drop_last / drop_remainder: True, False, or unknown
    batch_size_node: ast.expr | None = None
    what: str = "DataLoader"

    @property
    def batches_per_epoch(self) -> int | None:
        if self.n is None or self.b is None or self.b <= 0:
            return None
        return self.n // self.b if self.drops else -(-self.n // self.b)

    @property
    def last_batch(self) -> int | None:
        """Size of the last batch when it is partial, 0 when every batch is full."""
        if self.drops is True:
            return 0
        if self.n is None or self.b is None or self.b <= 0:
            return None
        return self.n % self.b

    def numbers(self) -> str:
        """"N=1000, B=64: the last batch of every epoch has 40 samples" or ""."""
        last = self.last_batch
        if not last or self.n is None or self.b is None:
            return ""
        return f"N={self.n}, B={self.b}: the last batch of every epoch has {last} sample{'s' if last != 1 else ''}"


def _torch_batching(ctx: FileContext, call: ast.Call) -> Batching:
    analysis = DataLoaderAnalysis(ctx, call)
    n, b, _ = analysis.sizes()
    if analysis.batch_size_node is None and not has_star_kwargs(call):
        b = 1
    drops = analysis.drop_last.value if analysis.drop_last.value in (True, False) else None
    return Batching(call, n, b, drops, analysis.batch_size_node)


def _tf_batching(ctx: FileContext, call: ast.Call) -> Batching:
    """``ds.batch(B, drop_remainder=...)``; N from the pipeline below it."""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else "batch"
    b_node = argument(call, "batch_size", 0)
    flag = read_flag(ctx, call, "drop_remainder", BATCHING.get(method, 1))
    drops = flag.value if flag.value in (True, False) else None
    pipeline = pipeline_of(ctx, call.func.value) if isinstance(call.func, ast.Attribute) else Pipeline()
    n = pipeline_size(ctx, pipeline, len(pipeline.steps))
    return Batching(call, n, ctx.values.int_value(b_node), drops, b_node, what=f"tf.data {method}()")


def _is_tf_batch(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr in BATCHING


def batching_calls(ctx: FileContext) -> list[ast.Call]:
    """The batch-forming calls of this file: torch DataLoaders and tf.data ``.batch()``."""
    calls = ctx.memo.get("batching.calls")  # once per file, not once per loss
    if calls is None:
        calls = []
        for call in ctx.nodes_of(ast.Call):
            if ctx.qualname(call.func) in DATALOADERS or (_is_tf_batch(call) and (call.args or call.keywords)):
                calls.append(call)
        ctx.memo["batching.calls"] = calls
    return list(calls)


def batching_ids(ctx: FileContext) -> set[int]:
    """The ids of ``batching_calls``."""
    ids = ctx.memo.get("batching.ids")
    if ids is None:
        ids = ctx.memo["batching.ids"] = {id(call) for call in batching_calls(ctx)}
    return ids


def batching_of(ctx: FileContext, call: ast.Call) -> Batching:
    """N, B and drop flag of one of ``batching_calls``."""
    return _tf_batching(ctx, call) if _is_tf_batch(call) else _torch_batching(ctx, call)


def training_pipelines(ctx: FileContext) -> list[ast.Call]:
    """The batching calls of this file not known to be for evaluation."""
    found = ctx.memo.get("batching.training")
    if found is None:
        found = ctx.memo["batching.training"] = []
        for call in batching_calls(ctx):
            dataset = call.func.value if _is_tf_batch(call) else argument(call, "dataset", 0)  # type: ignore[union-attr]
            if pipeline_role(ctx, call, dataset) is not Role.EVAL:
                found.append(call)
    return list(found)


def tf_partial_batches(ctx: FileContext) -> set[int] | None:
    """The ids of the tf.data ``.batch()`` calls of this file that train and may
    end a pass with a short batch (``tf_short_batchings``). None when the file
    builds no tf.data batches."""
    if not ctx.imports.imports_any(*TF_PACKAGES) or not any(_is_tf_batch(call) for call in ctx.nodes_of(ast.Call)):
        return None
    return {id(batching.call) for batching in tf_short_batchings(ctx)}


@family_fact
@dataclass
class BatchingCounts:
    """Per module: how many batch-forming calls drop the last partial batch
    (``drop_last=True``/``drop_remainder=True`` written) and how many may not."""

    dropping: int = 0
    keeping: int = 0


@collector
def _batching_counts(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if "DataLoader" not in source and ".batch(" not in source:
        return
    counts = BatchingCounts()
    for node in tree_index(tree)[0]:  # ast.walk's order; the walk the collectors share
        if not isinstance(node, ast.Call):
            continue
        # ds.shuffle(n).batch(b): a chained call has no dotted name, its attribute is the call
        name = node.func.attr if isinstance(node.func, ast.Attribute) else last_part(dotted(node.func))
        if name not in ("DataLoader", "batch", "padded_batch"):
            continue
        flag = "drop_last" if name == "DataLoader" else "drop_remainder"
        value = next((kw.value for kw in node.keywords if kw.arg == flag), None)
        if isinstance(value, ast.Constant) and value.value is True:
            counts.dropping += 1
        else:
            counts.keeping += 1
    facts.put(counts)


def project_always_drops(project: ProjectFacts, scope: str | None = None) -> bool:
    """Every batch-forming call of the project (of the files ``scope`` may borrow
    from, when given) drops the last partial batch."""
    counts = [facts for _, facts in project.each(BatchingCounts, scope=scope)]
    return sum(c.dropping for c in counts) > 0 and sum(c.keeping for c in counts) == 0
