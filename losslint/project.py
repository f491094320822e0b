"""The project-wide pass: facts that rules need from files other than the one
they judge (a dataset class's length in ``data.py``, an argparse default in
``options.py``, a constant in ``config.py``, a model with BatchNorm1d).

Collected from every file's ``ast`` before any rule runs. The collectors look at
module-level statements and class bodies only, plus ``add_argument`` calls when
the text has them, so the pass costs little more than the parse itself.
Families that need facts of their own register a collector with
``@collector``; facts are plain data so they can cross process boundaries.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

from losslint.analysis.names import dotted
from losslint.analysis.walk import statements, tree_index

# A literal we can carry between files: int, float, bool, str or None.
Literal = Any
UNKNOWN = object()

F = TypeVar("F")
# Every kind of per-family fact, by class name: what a ModuleFacts may hold and the
# cache may rebuild (each is a dataclass whose fields the cache checks by annotation).
FAMILY_FACTS: dict[str, type] = {}


def family_fact(cls: type[F]) -> type[F]:
    """Register a dataclass as a kind of per-family fact (``ModuleFacts.put/get``,
    ``ProjectFacts.each``). Names are unique: one kind, one class."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__qualname__} must be a dataclass")
    if FAMILY_FACTS.setdefault(cls.__name__, cls) is not cls:
        raise TypeError(f"two family facts named {cls.__name__}")
    return cls


@dataclass
class ModuleFacts:
    """What one module contributes."""

    module: str  # dotted module name, relative to the linted root
    is_package: bool = False  # the module is a package's __init__.py (its own package)
    constants: dict[str, Literal] = field(default_factory=dict)
    argparse_defaults: dict[str, Literal] = field(default_factory=dict)  # dest -> default
    config_defaults: dict[str, Literal] = field(default_factory=dict)  # field/key -> default
    dataset_lengths: dict[str, int | None] = field(default_factory=dict)  # Dataset class -> len
    batchnorm1d_classes: set[str] = field(default_factory=set)
    # the modules it imports, as absolute dotted names (``from a.b import c``: a.b and a.b.c)
    imports: tuple[str, ...] = ()
    # typed per-family facts, one dataclass instance per kind (``family_fact``), by kind name
    family: dict[str, Any] = field(default_factory=dict)

    def get(self, kind: type[F]) -> F | None:
        """This module's fact of one kind, or None when its collector found nothing."""
        return self.family.get(kind.__name__)

    def put(self, fact: Any) -> None:
        """Record a fact; its class must be a ``family_fact``."""
        kind = type(fact)
        if FAMILY_FACTS.get(kind.__name__) is not kind:
            raise TypeError(f"{kind.__qualname__} is not registered with @family_fact")
        self.family[kind.__name__] = fact


def file_key(path: str) -> str:
    """What a file is known by in the project: its absolute, normalized path. Two
    scripts both named ``main.py`` in sibling folders are two modules."""
    return os.path.normpath(os.path.abspath(path))


@dataclass
class ProjectFacts:
    """Every file's facts, keyed by the file (``file_key``), never by module name:
    a tree of example scripts has many ``main`` and ``utils`` modules.

    What one file may borrow from others is what Python would let it reach: the
    modules it imports (resolved from its own folder first, as ``sys.path[0]`` is
    a script's folder), transitively, the modules that import it (they may call it
    with their values), and what those import. A sibling script that shares
    nothing with it contributes nothing, so a file's findings do not depend on
    which unrelated files are in the run."""

    modules: dict[str, ModuleFacts] = field(default_factory=dict)
    # from [tool.losslint] dataset-sizes: the project's own dataset classes
    configured_dataset_sizes: dict[str, int] = field(default_factory=dict)
    # the text of project files that are not on disk as linted (in-memory sources),
    # by key: what analysis that reads another file's source reads instead
    unsaved: dict[str, str] = field(default_factory=dict)

    def copy(self) -> "ProjectFacts":
        """A copy that facts can be added to without changing this one (fixing a
        file re-collects its facts)."""
        return ProjectFacts(dict(self.modules), dict(self.configured_dataset_sizes), dict(self.unsaved))

    def add(self, facts: ModuleFacts, path: str | None = None) -> None:
        self.modules[file_key(path) if path is not None else facts.module] = facts
        self._index = None
        self._graph = None
        self._by_name = None
        self._resolved = None
        self._of_kind = None
        self._reach = None
        self._related = {}

    # -- the import graph ------------------------------------------------------
    _graph: dict[str, set[str]] | None = None
    _by_name: dict[str, list[str]] | None = None
    _importers: dict[str, set[str]] | None = None
    _related: dict[str, "FileSet"] | None = None
    _reach: "_Reach | None" = None
    # resolve's answers, and the last components a namespace module could end in
    # (a file's stem, a package's folder): rules ask the same imports again and again
    _resolved: dict[tuple[str, str | None], str | None] | None = None
    _stems: frozenset[str] = frozenset()

    def resolve(self, module: str, importer: str | None = None) -> str | None:
        """The key of the project file that ``import module`` reaches from the file
        ``importer``: a module of that name in the importer's folder or the
        nearest folder above it; else the only one of that name. None when there
        is none, or several and nothing prefers one."""
        if self._by_name is None or self._resolved is None:
            self._by_name = defaultdict(list)
            for key, facts in self.modules.items():
                self._by_name[facts.module].append(key)
            self._resolved = {}
            self._stems = frozenset(_stem(key) for key in self.modules)
        asked = (module, importer)
        if asked not in self._resolved:
            self._resolved[asked] = self._resolve(module, importer)
        return self._resolved[asked]

    def _resolve(self, module: str, importer: str | None) -> str | None:
        assert self._by_name is not None
        candidates = self._by_name.get(module, [])
        if not candidates:
            return self._namespace_module(module, importer)
        if len(candidates) == 1:
            return candidates[0]
        if importer is None:
            return None
        folder = os.path.dirname(file_key(importer))
        best: tuple[int, str] | None = None
        for key in candidates:
            shared = os.path.commonpath([folder, os.path.dirname(key)]) if os.path.isabs(key) else ""
            if shared and folder.startswith(shared):
                depth = shared.count(os.sep)
                if best is None or depth > best[0]:
                    best = (depth, key)
                elif depth == best[0]:
                    best = (depth, "")  # two equally near: no preference
        return best[1] or None if best else None

    def _namespace_module(self, module: str, importer: str | None) -> str | None:
        """``import utils.loss`` where ``utils`` is a folder without ``__init__.py`` (a
        namespace package, whose modules the project names by their stem only):
        utils/loss.py beside the importer or in a folder above it."""
        parts = module.split(".")
        if len(parts) < 2 or importer is None or parts[-1] not in self._stems:
            return None
        folder = os.path.dirname(file_key(importer))
        while True:
            for candidate in (os.path.join(folder, *parts) + ".py", os.path.join(folder, *parts, "__init__.py")):
                if candidate in self.modules:
                    return candidate
            parent = os.path.dirname(folder)
            if parent == folder:
                return None
            folder = parent

    def _build_graph(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {key: set() for key in self.modules}
        for key, facts in self.modules.items():
            for name in facts.imports:
                target = self.resolve(name, key)
                if target is not None and target != key:
                    graph[key].add(target)
        return graph

    def related(self, path: str | None) -> "FileSet | None":
        """The keys of the files ``path`` may borrow values from (itself included);
        None when ``path`` is not a file of this project (every file, as before)."""
        if path is None:
            return None
        key = file_key(path)
        if key not in self.modules:
            return None
        if self._related is None:
            self._related = {}
        if key not in self._related:
            if self._reach is None:
                self._reach = _Reach(self.modules, self._import_graph()[0])
            self._related[key] = self._reach.of(key)
        return self._related[key]

    def imports_of(self, path: str) -> frozenset[str]:
        """The keys of the project files ``path`` imports directly (resolved from its
        folder first); empty for a file outside the project."""
        return frozenset(self._import_graph()[0].get(file_key(path), ()))

    def importers_of(self, path: str) -> frozenset[str]:
        """The keys of the project files that import ``path`` directly."""
        return frozenset(self._import_graph()[1].get(file_key(path), ()))

    def _import_graph(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """(file -> the files it imports, file -> the files importing it), as ``related`` builds them."""
        if self._graph is None or self._importers is None:
            self._graph = self._build_graph()
            self._importers = defaultdict(set)
            for source, targets in self._graph.items():
                for target in targets:
                    self._importers[target].add(source)
        return self._graph, self._importers

    def own(self, path: str) -> ModuleFacts | None:
        return self.modules.get(file_key(path))

    def imported(self, module: str, importer: str | None) -> ModuleFacts | None:
        key = self.resolve(module, importer)
        return self.modules.get(key) if key is not None else None

    # -- lookups ---------------------------------------------------------------
    _index: dict | None = None

    def _build_index(self) -> dict:
        index: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for key, facts in self.modules.items():
            for kind in ("argparse_defaults", "config_defaults", "dataset_lengths"):
                for name, value in getattr(facts, kind).items():
                    index[kind][name].append((key, value))
            for name in facts.batchnorm1d_classes:
                index["batchnorm1d"][name].append((key, True))
        return index

    def _unique(self, kind: str, name: str, scope: str | None) -> Literal:
        """The one value the files within reach of ``scope`` (a file's path; every
        file when None) agree on, else UNKNOWN."""
        if self._index is None:
            self._index = self._build_index()
        reach = self.related(scope)
        values = [value for key, value in self._index[kind].get(name, []) if reach is None or key in reach]
        if values and all(v == values[0] for v in values):
            return values[0]
        return UNKNOWN

    def argparse_default(self, dest: str, scope: str | None = None) -> Literal:
        return self._unique("argparse_defaults", dest, scope)

    def config_default(self, name: str, scope: str | None = None) -> Literal:
        return self._unique("config_defaults", name, scope)

    def dataset_length(self, class_name: str, scope: str | None = None) -> int | None | object:
        """len() of a project Dataset class: an int, None (a dataset class whose size
        is unknown) or UNKNOWN (not a dataset class of this project)."""
        if class_name in self.configured_dataset_sizes:
            return self.configured_dataset_sizes[class_name]
        return self._unique("dataset_lengths", class_name, scope)

    def has_batchnorm1d(self, class_name: str, scope: str | None = None) -> bool:
        return self._unique("batchnorm1d", class_name, scope) is True

    def constant(self, module: str, name: str, importer: str | None = None) -> Literal:
        """A module-level constant of the module ``importer`` reaches by that name; a
        module named only by its last component (``from config import X`` with
        config.py in a package) matches when unique."""
        facts = self.imported(module, importer)
        if facts is None:
            last = module.rpartition(".")[2]
            candidates = [f for f in self.modules.values() if f.module.rpartition(".")[2] == last]
            facts = candidates[0] if len(candidates) == 1 else None
        if facts is None:
            return UNKNOWN
        return facts.constants.get(name, UNKNOWN)

    def each(self, kind: type[F], scope: str | None = None) -> list[tuple[str, F]]:
        """Every module's fact of one kind, as (file key, fact), in a stable order;
        with ``scope`` (a file), only the files it may borrow from (``related``)."""
        reach = self.related(scope)
        if self._of_kind is None:
            self._of_kind = {}
        if kind.__name__ not in self._of_kind:  # (few files hold a kind; a file's reach can be the whole project)
            self._of_kind[kind.__name__] = [(key, fact) for key, facts in sorted(self.modules.items()) if (fact := facts.get(kind)) is not None]
        return [(key, fact) for key, fact in self._of_kind[kind.__name__] if reach is None or key in reach]

    _of_kind: dict[str, list[tuple[str, Any]]] | None = None


def _stem(key: str) -> str:
    """What ``import a.b`` names a file by last: b for a/b.py and for a/b/__init__.py."""
    stem = os.path.basename(key).removesuffix(".py")
    return os.path.basename(os.path.dirname(key)) if stem == "__init__" else stem


class _Reach:
    """``ProjectFacts.related`` for every file: the files reached by imports from
    any file that reaches this one by being imported. Files that import each other
    (one strongly connected part of the import graph) share one answer, and the
    closures are bitsets over the files, each built once per part: a package where
    every module reaches every other costs a few big-integer ORs per part, not a
    graph walk per file."""

    def __init__(self, files: Iterable[str], imports: dict[str, set[str]]) -> None:
        self.names = sorted(set(files).union(*imports.values()) if imports else set(files))
        self.position = position = {name: i for i, name in enumerate(self.names)}
        successors = [[position[t] for t in imports.get(name, ()) if t in position] for name in self.names]
        parts = _strong_components(successors)  # each after every part it reaches
        self.part = [0] * len(self.names)
        for number, members in enumerate(parts):
            for member in members:
                self.part[member] = number
        below: list[int] = []  # files reached from a part, as bits over files
        above: list[set[int]] = [set() for _ in parts]  # parts that reach a part
        for number, members in enumerate(parts):
            bits = 0
            for member in members:
                bits |= 1 << member
                for child in successors[member]:
                    if self.part[child] != number:
                        bits |= below[self.part[child]]
                        above[self.part[child]].add(number)
            below.append(bits)
        self.below = below
        self.above = above
        self.answers: dict[int, FileSet] = {}

    def of(self, key: str) -> "FileSet":
        number = self.part[self.position[key]]
        if number not in self.answers:
            bits = 0
            for upper in _closure([number], lambda p: self.above[p]):
                bits |= self.below[upper]
            self.answers[number] = FileSet(bits, self)
        return self.answers[number]


class FileSet(AbstractSet):
    """A set of the project's files as one bitset over ``_Reach.names``: a file's
    reach can be most of a large project, and every file of it has one."""

    __slots__ = ("_bits", "_reach")

    def __init__(self, bits: int, reach: _Reach) -> None:
        self._bits = bits
        self._reach = reach

    def __contains__(self, key: object) -> bool:
        position = self._reach.position.get(key)  # type: ignore[arg-type]
        return position is not None and (self._bits >> position) & 1 == 1

    def __iter__(self) -> Iterator[str]:
        bits = self._bits
        while bits:
            lowest = bits & -bits
            yield self._reach.names[lowest.bit_length() - 1]
            bits ^= lowest

    def __len__(self) -> int:
        return self._bits.bit_count()


def _strong_components(successors: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components of a graph over 0..n-1, iteratively,
    each listed after every component it reaches."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []
    for root in range(len(successors)):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def _closure(start: Iterable, step: Callable[[Any], Iterable]) -> set:
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


# -- collection ----------------------------------------------------------------

Collector = Callable[[ast.Module, str, ModuleFacts], None]
_COLLECTORS: list[Collector] = []


def collector(fn: Collector) -> Collector:
    """Register a per-module fact collector (called with tree, source text, facts)."""
    _COLLECTORS.append(fn)
    return fn


def collect_module_facts(tree: ast.Module, source: str, module: str, is_package: bool = False) -> ModuleFacts:
    facts = ModuleFacts(module=module, is_package=is_package)
    for fn in _COLLECTORS:
        fn(tree, source, facts)
    return facts


def literal_value(node: ast.expr, names: dict[str, Literal] | None = None) -> Literal:
    """Evaluate a small constant expression (numbers, arithmetic, known names)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str, type(None))):
        return node.value
    if isinstance(node, ast.Name) and names is not None and node.id in names:
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal_value(node.operand, names)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        return UNKNOWN
    if isinstance(node, ast.BinOp):
        left, right = literal_value(node.left, names), literal_value(node.right, names)
        return arithmetic(node.op, left, right)
    return UNKNOWN


def arithmetic(op: ast.operator, left: Literal, right: Literal) -> Literal:
    numeric = (int, float)
    if not (isinstance(left, numeric) and isinstance(right, numeric)) or isinstance(left, bool) or isinstance(right, bool):
        return UNKNOWN
    try:
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.FloorDiv):
            return left // right
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.Mod):
            return left % right
        if isinstance(op, ast.Pow) and abs(right) < 64:
            return left**right
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    return UNKNOWN


@collector
def _module_constants(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target.id, stmt.value
        else:
            continue
        result = literal_value(value, facts.constants)
        if result is UNKNOWN:
            facts.constants.pop(target, None)  # reassigned to something unknown
        elif target in facts.constants and facts.constants[target] != result:
            facts.constants[target] = UNKNOWN
        else:
            facts.constants[target] = result
        if isinstance(value, ast.Dict):
            _dict_defaults(value, facts)
    facts.constants = {k: v for k, v in facts.constants.items() if v is not UNKNOWN}


def _dict_defaults(node: ast.Dict, facts: ModuleFacts) -> None:
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            result = literal_value(value, facts.constants)
            if result is not UNKNOWN:
                facts.config_defaults[key.value] = result


def argparse_dest(call: ast.Call) -> str | None:
    """The attribute name ``add_argument`` stores into (``--batch-size`` -> batch_size)."""
    for kw in call.keywords:
        if kw.arg == "dest" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    flags = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not flags:
        return None
    long_flags = [f for f in flags if f.startswith("--")]
    chosen = long_flags[0] if long_flags else flags[0]
    return chosen.lstrip("-").replace("-", "_") or None


def _absl_flag(node: ast.Call, facts: ModuleFacts) -> None:
    """``flags.DEFINE_float("momentum", 0.9, "...")`` (absl, ``tf.app.flags``): read as
    ``FLAGS.momentum`` alike ``args.momentum``, so it is kept with the parsers' defaults."""
    name = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "name"), None)
    default = node.args[1] if len(node.args) > 1 else next((kw.value for kw in node.keywords if kw.arg == "default"), None)
    if isinstance(name, ast.Constant) and isinstance(name.value, str) and default is not None:
        value = literal_value(default, facts.constants)
        if value is not UNKNOWN:
            facts.argparse_defaults[name.value] = value


@collector
def _argparse_defaults(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if "add_argument" not in source and "DEFINE_" not in source:
        return
    for node in tree_index(tree)[0]:  # ast.walk's order, the walk shared with the other collectors
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("DEFINE_"):
            _absl_flag(node, facts)
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            continue
        dest = argparse_dest(node)
        if dest is None:
            continue
        default: Literal = None  # argparse's own default
        action = None
        for kw in node.keywords:
            if kw.arg == "default":
                default = literal_value(kw.value, facts.constants)
            elif kw.arg == "action" and isinstance(kw.value, ast.Constant):
                action = kw.value.value
        if action == "store_true" and not any(kw.arg == "default" for kw in node.keywords):
            default = False
        elif action == "store_false" and not any(kw.arg == "default" for kw in node.keywords):
            default = True
        if default is not UNKNOWN:
            facts.argparse_defaults[dest] = default


_DATASET_BASES = {"Dataset", "TensorDataset", "IterableDataset", "Sequence", "PyDataset", "VisionDataset"}


@collector
def _classes(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    for node in statements(tree):  # classes are statements: ast.walk's order, expressions skipped
        if not isinstance(node, ast.ClassDef):
            continue
        # Config-style classes: `batch_size: int = 64` at class level.
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                value = literal_value(stmt.value, facts.constants)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                value = literal_value(stmt.value, facts.constants)
                stmt_target = stmt.targets[0]
                if value is not UNKNOWN:
                    facts.config_defaults.setdefault(stmt_target.id, value)
                continue
            else:
                continue
            if value is not UNKNOWN:
                facts.config_defaults.setdefault(stmt.target.id, value)
        bases = {(dotted(b) or "").rpartition(".")[2] for b in node.bases}
        if bases & _DATASET_BASES:
            facts.dataset_lengths[node.name] = _constant_len(node, facts.constants)
        if "BatchNorm1d" in source and any(
            isinstance(n, ast.Attribute) and n.attr == "BatchNorm1d" or isinstance(n, ast.Name) and n.id == "BatchNorm1d"
            for n in ast.walk(node)
        ):
            facts.batchnorm1d_classes.add(node.name)


def _constant_len(cls: ast.ClassDef, constants: dict[str, Literal]) -> int | None:
    """``def __len__(self): return 1000`` (or a module constant) -> 1000."""
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__len__":
            returns = [n for n in ast.walk(stmt) if isinstance(n, ast.Return) and n.value is not None]
            if len(returns) == 1:
                value = literal_value(returns[0].value, constants)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
    return None


@collector
def _imports(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    # ``from .x import y`` is relative to the package the module is in, which for a
    # package's __init__.py is the package itself
    package = facts.module if facts.is_package else facts.module.rpartition(".")[0]
    names: list[str] = []
    for node in statements(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                names.append(base)
            names.extend(f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*")
    facts.imports = tuple(dict.fromkeys(names))
