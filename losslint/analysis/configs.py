"""Config documents (``.yaml``/``.yml``, ``.json``, ``.toml``) that training code
reads, as project facts: every key and value with its position, and what each
Python file reads.

API (other families and rule modules use only these):

- ``load_config(key, text=None) -> ConfigDocument``: the document at a file key
  (``project.file_key``), parsed from ``text`` or read from disk; memoised on the
  text. YAML and JSON are read with ruamel.yaml's round-trip loader (JSON is
  YAML's flow style; comments, order and positions kept), TOML with tomlkit.
  ``doc.error`` says why a document could not be read (then ``doc.root`` is None).
- ``ConfigNode``: ``value`` is a plain scalar (str, int, float, bool, None), a
  ``dict[str, ConfigNode]`` or a ``list[ConfigNode]``; ``line``/``column`` where
  the value starts (1-based line, 0-based column), ``end_line``/``end_column``
  where it ends, ``key_line``/``key_column`` where its key is (the value's own
  position for the root and list items), ``keys`` its path from the root.
  ``doc.node(("trainer", "gradient_clip_val"))`` finds one; ``doc.scalar(node)``
  is its value with OmegaConf interpolation (``${data.batch_size}``) resolved
  inside the document, ``UNKNOWN`` where it cannot be (``${oc.env:X}``, a
  relative or missing key, text around the ``${...}``): never a guess.
- ``ConfigReads`` (a ``family_fact``): the reads a Python file makes, each a
  ``ConfigRead`` (the call's position, the path as written, how it was read).
  ``resolve_path(read, script)`` is the file it reaches; ``reads_of(project,
  key)`` the resolved config keys a Python file reads; ``readers_of(project,
  config_key)`` the Python files that read a config.
- ``TextEdit`` and ``apply_edits(text, edits)``: a fix in a config is positional
  edits of its text (comments, order and layout kept); the result must load again
  (``load_config``) or the fix is refused by the fix stage.

How a read is found (``read_path``): ``OmegaConf.load(P)``, ``yaml.safe_load/
load/full_load(open(P))`` and ``json.load(open(P))`` (also through ``with
open(P) as f``), ``toml.load(P)``/``tomllib.load(open(P, "rb"))``,
``parser.parse_yaml_file(P)``/``parse_json_file(P)`` (HfArgumentParser),
``deepspeed.initialize(config=P)`` / ``config_params=P``. P is a string literal,
a module constant, a name assigned one literal in the file, a parameter's
literal default, an argparse default of the same file (``args.config``), or
``os.path.join``/``Path /`` of those with ``os.path.dirname(__file__)`` or
``Path(__file__).parent`` (relative to the script's folder).

Where a relative path points (``resolve_path``): Python opens it relative to the
working directory, which the code does not say. losslint looks in the script's
folder, then in each folder above it up to the project's root (the nearest
folder with ``.git``, ``pyproject.toml``, ``setup.py`` or ``setup.cfg``): a
script run from the repository root (``python src/train.py``) and one run from
its own folder both find their config. The first file that exists wins.

Nothing here imports libcst; ruamel.yaml and tomlkit are imported only when a
document is loaded.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from losslint.analysis.names import dotted
from losslint.analysis.walk import tree_index
from losslint.project import UNKNOWN, ModuleFacts, ProjectFacts, collector, family_fact, file_key, literal_value

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
_PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
_SCRIPT_DIR = "\0script-dir\0"  # a path part standing for the script's own folder


def is_config_path(path: str) -> bool:
    return path.lower().endswith(CONFIG_SUFFIXES)


def kind_of(path: str) -> str:
    lower = path.lower()
    return "json" if lower.endswith(".json") else "toml" if lower.endswith(".toml") else "yaml"


# -- documents --------------------------------------------------------------------------


@dataclass
class ConfigNode:
    value: Any
    keys: tuple = ()
    line: int = 1
    column: int = 0
    end_line: int = 1
    end_column: int = 0
    key_line: int = 1
    key_column: int = 0
    flow: bool = False  # a container written inline ({...} / [...])
    # In a composed config (Hydra, analysis/hydra_configs.py): the document that wrote
    # this node, and for a mapping its node there (None in a plain document).
    document: Any = field(default=None, repr=False, compare=False)
    own: Any = field(default=None, repr=False, compare=False)

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    def get(self, key: str) -> "ConfigNode | None":
        return self.value.get(key) if isinstance(self.value, dict) else None

    def last_line(self) -> int:
        """The last line this node's text takes (a section: its last entry's)."""
        if isinstance(self.value, dict) and self.value:
            return max(self.end_line, *(child.last_line() for child in self.value.values()))
        if isinstance(self.value, list) and self.value:
            return max(self.end_line, *(child.last_line() for child in self.value))
        return self.end_line


@dataclass
class ConfigDocument:
    key: str  # the file's key (absolute path)
    kind: str  # yaml, json or toml
    text: str
    root: ConfigNode | None = None
    error: str | None = None
    composition: Any = field(default=None, repr=False, compare=False)  # a Hydra app's composed config

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def node(self, keys: Iterable[str]) -> ConfigNode | None:
        node = self.root
        for key in keys:
            if node is None:
                return None
            node = node.get(key) if isinstance(key, str) else (node.value[key] if isinstance(node.value, list) and 0 <= key < len(node.value) else None)
        return node

    def scalar(self, node: ConfigNode | None, depth: int = 0) -> Any:
        """The node's plain value, interpolations resolved; UNKNOWN for a container
        or what cannot be resolved statically."""
        if node is None or isinstance(node.value, (dict, list)) or depth > 10:
            return UNKNOWN
        value = node.value
        if isinstance(value, str) and "${" in value:
            match = _INTERPOLATION.fullmatch(value.strip())
            if match is None or self.kind == "json":
                return UNKNOWN  # text around it, a resolver (${oc.env:X}), or JSON (no interpolation)
            return self.scalar(self.node(match.group(1).split(".")), depth + 1)
        return value


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\}")

_DOCUMENTS: dict[str, tuple[str, ConfigDocument]] = {}


def load_config(key: str, text: str | None = None) -> ConfigDocument:
    """The document at ``key``, from ``text`` or the file on disk (memoised)."""
    if text is None:
        try:
            with open(key, "rb") as handle:
                data = handle.read()
            text = data.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            return ConfigDocument(key, kind_of(key), "", error=str(error))
    cached = _DOCUMENTS.get(key)
    if cached is not None and cached[0] == text:
        return cached[1]
    document = parse_config(key, text)
    if len(_DOCUMENTS) > 256:
        _DOCUMENTS.clear()
    _DOCUMENTS[key] = (text, document)
    return document


def parse_config(key: str, text: str) -> ConfigDocument:
    kind = kind_of(key)
    document = ConfigDocument(key, kind, text)
    try:
        document.root = _parse_toml(text) if kind == "toml" else _parse_yaml(text, kind)
        if kind == "json":
            json.loads(text)  # JSON proper: what YAML would also accept is not enough
    except Exception as error:  # (the libraries raise many kinds; a broken config is simply not read)
        document.root = None
        document.error = f"{type(error).__name__}: {error}".splitlines()[0]
    return document


def _parse_yaml(text: str, kind: str) -> ConfigNode | None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    documents = list(yaml.load_all(text))
    if not documents:
        return None
    lines = text.splitlines()
    data = documents[0]
    root = _yaml_node(data, (), 0, 0, lines, kind == "json")
    root.key_line, root.key_column = root.line, root.column
    return root


def _yaml_node(data: Any, keys: tuple, line0: int, col0: int, lines: list[str], json_like: bool) -> ConfigNode:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(data, CommentedMap):
        children: dict[str, ConfigNode] = {}
        for key in data:
            if not isinstance(key, (str, int, float, bool)):
                continue
            key_pos = data.lc.key(key) or (line0, col0)
            value_pos = data.lc.value(key) or key_pos
            child = _yaml_node(data[key], keys + (str(key),), value_pos[0], value_pos[1], lines, json_like)
            child.key_line, child.key_column = key_pos[0] + 1, key_pos[1]
            if isinstance(data[key], (CommentedMap, CommentedSeq)) and not _is_flow(data[key]):
                child.line, child.column = child.key_line, child.key_column
            children[str(key)] = child
        node = ConfigNode(children, keys, line0 + 1, col0, flow=_is_flow(data))
        _container_end(node, lines)
        return node
    if isinstance(data, CommentedSeq):
        items = []
        for index, item in enumerate(data):
            pos = data.lc.item(index) or (line0, col0)
            child = _yaml_node(item, keys + (index,), pos[0], pos[1], lines, json_like)
            child.key_line, child.key_column = child.line, child.column
            items.append(child)
        node = ConfigNode(items, keys, line0 + 1, col0, flow=_is_flow(data))
        _container_end(node, lines)
        return node
    line = lines[line0] if 0 <= line0 < len(lines) else ""
    end = _scalar_end(line, col0, json_like)
    return ConfigNode(_plain(data), keys, line0 + 1, col0, line0 + 1, end, line0 + 1, col0)


def _is_flow(data: Any) -> bool:
    style = getattr(getattr(data, "fa", None), "flow_style", lambda: None)
    return bool(style())


def _container_end(node: ConfigNode, lines: list[str]) -> None:
    children = list(node.value.values()) if isinstance(node.value, dict) else list(node.value)
    if children:
        last = max(children, key=lambda c: (c.end_line, c.end_column))
        node.end_line, node.end_column = last.end_line, last.end_column
    else:
        node.end_line, node.end_column = node.line, node.column


def _scalar_end(line: str, start: int, json_like: bool) -> int:
    """Where a scalar written at ``line[start:]`` ends: its closing quote, or the
    end of a plain scalar (before a comment, or JSON's , } ])."""
    if start >= len(line):
        return start
    quote = line[start]
    if quote in "\"'":
        index = start + 1
        while index < len(line):
            if line[index] == "\\" and quote == '"':
                index += 2
                continue
            if line[index] == quote:
                if quote == "'" and line[index + 1 : index + 2] == "'":
                    index += 2
                    continue
                return index + 1
            index += 1
        return len(line)
    stops = ",}]" if json_like else ""
    end = start
    while end < len(line) and line[end] not in stops and not (line[end] == "#" and end > start and line[end - 1] in " \t"):
        end += 1
    return start + len(line[start:end].rstrip())


def _plain(value: Any) -> Any:
    """ruamel's scalar subclasses as plain Python values."""
    name = type(value).__name__
    if value is None or type(value) in (str, int, float, bool):
        return value
    if name == "ScalarBoolean":
        return bool(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return UNKNOWN  # dates, tagged objects: not a value the rules use


# TOML: tomlkit reads the values; positions come from the lines (tables and keys).
_TOML_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_TOML_KEY = re.compile(r"^(\s*)([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"))*\s*=\s*")


def _parse_toml(text: str) -> ConfigNode:
    import tomlkit

    data = tomlkit.parse(text).unwrap()
    positions: dict[tuple, tuple[int, int, int, int]] = {}  # keys -> (key line, key col, value line, value col)
    table: tuple = ()
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        header = _TOML_TABLE.match(line)
        if header is not None and not line.lstrip().startswith("[["):
            table = tuple(_toml_key_parts(header.group(1)))
            positions.setdefault(table, (number, line.index("["), number, line.index("[")))
            continue
        if line.lstrip().startswith("[["):
            table = ("\0array",)  # arrays of tables: their keys get no positions
            continue
        match = _TOML_KEY.match(line)
        if match is not None and table[:1] != ("\0array",):
            keys = table + tuple(_toml_key_parts(line[: match.end()].rstrip().rstrip("=")))
            positions.setdefault(keys, (number, len(match.group(1)), number, match.end()))
    return _toml_node(data, (), positions, lines)


def _toml_key_parts(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


def _toml_node(data: Any, keys: tuple, positions: dict, lines: list[str]) -> ConfigNode:
    key_line, key_col, line, col = positions.get(keys, (1, 0, 1, 0))
    if isinstance(data, dict):
        children = {str(k): _toml_node(v, keys + (str(k),), positions, lines) for k, v in data.items()}
        node = ConfigNode(children, keys, key_line, key_col, key_line=key_line, key_column=key_col)
        _container_end(node, lines)
        return node
    if isinstance(data, list):
        node = ConfigNode([ConfigNode(_plain(v) if not isinstance(v, (dict, list)) else UNKNOWN, keys + (i,), line, col) for i, v in enumerate(data)], keys, line, col, line, col, key_line, key_col)
        return node
    text_line = lines[line - 1] if 0 < line <= len(lines) else ""
    return ConfigNode(_plain(data), keys, line, col, line, _scalar_end(text_line, col, True), key_line, key_col)


# -- fixes: positional edits ----------------------------------------------------------


@dataclass(frozen=True)
class TextEdit:
    """Replace the text from (line, column) to (end_line, end_column) (1-based lines,
    0-based columns) with ``content``: a config fix keeps everything else as it is."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


def apply_edits(text: str, edits: Iterable[TextEdit]) -> str:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[min(line - 1, len(starts) - 1)] + column

    for edit in sorted(edits, key=lambda e: (e.line, e.column), reverse=True):
        text = text[: offset(edit.line, edit.column)] + edit.content + text[offset(edit.end_line, edit.end_column) :]
    return text


def line_edits(text: str, edits: Iterable[TextEdit]) -> list[tuple[int, int, str]]:
    """The edits as (line, end_line, content) replacements of whole lines [line, end_line)."""
    import difflib

    before = text.splitlines(keepends=True)
    after = apply_edits(text, edits).splitlines(keepends=True)
    changes = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            changes.append((i1 + 1, i2 + 1, "".join(after[j1:j2])))
    return changes


def located(document: ConfigDocument, node: ConfigNode) -> tuple[ConfigDocument, ConfigNode]:
    """The file a node was written in and its node there: a node of a composed config
    (Hydra) belongs to one of the files composed; any other node to ``document``."""
    if node.document is not None:
        return node.document, node.own if node.own is not None else node
    return document, node


def reached_via(document: ConfigDocument, node: ConfigNode) -> list[tuple[str, int, int, str]]:
    """Where a composed config's defaults list chose the file that wrote ``node``:
    (the choosing config's key, line, column, a note); empty for a plain document."""
    composition = document.composition
    if composition is None or node.document is None:
        return []
    piece = composition.piece_of(node.document.key)
    if piece is None or piece.via is None:
        return []
    key, line, column, entry = piece.via
    name = os.path.basename(node.document.key)
    return [(key, line, column, f"{name} is composed into the Hydra config by this defaults-list entry ({entry})")]


def set_scalar(document: ConfigDocument, node: ConfigNode, literal: str) -> TextEdit:
    """Replace a scalar's text (``gradient_clip_val: null`` -> ``1.0``)."""
    return TextEdit(node.line, node.column, node.end_line, node.end_column, literal)


def add_entry(document: ConfigDocument, section: ConfigNode, key: str, literal: str) -> TextEdit | None:
    """Add ``key: literal`` to a mapping, in its own style: a block mapping of YAML
    (after its last entry, at its entries' indentation), a JSON object (before its
    first key, at its indentation), a TOML table (after its last key). None where
    that cannot be done without reformatting (an inline mapping, an empty one)."""
    document, section = located(document, section)
    entries = list(section.value.values()) if isinstance(section.value, dict) else []
    lines = document.lines
    if not entries:
        return None
    first = min(entries, key=lambda c: (c.key_line, c.key_column))
    if document.kind == "json":
        quoted = json.dumps(key)
        first_line = lines[first.key_line - 1] if first.key_line <= len(lines) else ""
        if first_line[: first.key_column].strip() == "":  # the first key on its own line
            content = f"{quoted}: {literal},\n{first_line[: first.key_column]}"  # the first key's own indentation
        else:
            content = f"{quoted}: {literal}, "
        return TextEdit(first.key_line, first.key_column, first.key_line, first.key_column, content)
    if section.flow or any(child.key_line == section.key_line for child in entries if section.keys):
        return None
    last_line = section.last_line()
    indent = lines[first.key_line - 1][: first.key_column] if first.key_line <= len(lines) else ""
    if indent.strip():
        return None  # entries after a "- " or on the key's line: not a plain block
    separator = " = " if document.kind == "toml" else ": "
    written = json.dumps(key) if document.kind == "toml" and not re.fullmatch(r"[A-Za-z0-9_\-]+", key) else key
    if last_line > len(lines):
        return None
    if last_line == len(lines) and not document.text.endswith("\n"):
        end = len(lines[last_line - 1])
        return TextEdit(last_line, end, last_line, end, f"\n{indent}{written}{separator}{literal}")
    return TextEdit(last_line + 1, 0, last_line + 1, 0, f"{indent}{written}{separator}{literal}\n")


# -- what Python files read ------------------------------------------------------------


@family_fact
@dataclass
class ConfigRead:
    path: str  # as written (a literal, or what a constant or default gives), parts joined by /
    how: str  # the reading call: OmegaConf.load, yaml.safe_load, deepspeed.initialize, ...
    line: int  # the reading call (for deepspeed.initialize: that call)
    column: int
    script_relative: bool = False  # built from the script's own folder (__file__)


@family_fact
@dataclass
class ConfigReads:
    reads: list[ConfigRead] = field(default_factory=list)

    def at(self, node: ast.AST) -> ConfigRead | None:
        for read in self.reads:
            if read.line == getattr(node, "lineno", -1) and read.column == getattr(node, "col_offset", -1):
                return read
        return None


_YAML_LOADERS = {"safe_load", "load", "full_load", "unsafe_load", "round_trip_load"}
_TRIGGERS = ("OmegaConf", "yaml", "json", "toml", "deepspeed", "parse_yaml_file", "parse_json_file", "hydra")


def read_kind(call: ast.Call) -> str | None:
    """Which config read ``call`` is (its dotted name's last parts), or None."""
    name = dotted(call.func) or ""
    parts = name.split(".")
    last = parts[-1]
    owner = parts[-2] if len(parts) > 1 else ""
    if owner == "OmegaConf" and last == "load":
        return "OmegaConf.load"
    if owner in ("yaml", "ruamel_yaml") and last in _YAML_LOADERS:
        return f"yaml.{last}"
    if owner == "json" and last == "load":
        return "json.load"
    if owner in ("toml", "tomllib", "tomli") and last == "load":
        return f"{owner}.load"
    if last in ("parse_yaml_file", "parse_json_file") and isinstance(call.func, ast.Attribute):
        return last
    if owner == "deepspeed" and last == "initialize":
        return "deepspeed.initialize"
    if owner == "hydra" and last == "main" and call.keywords + call.args:
        return "hydra.main"
    return None


def _path_argument(call: ast.Call, how: str) -> ast.expr | None:
    if how == "deepspeed.initialize":
        for kw in call.keywords:
            if kw.arg in ("config", "config_params"):
                return kw.value
        return None
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg in ("stream", "fp", "f", "file", "yaml_file", "json_file", "path", "fname"):
            return kw.value
    return None


class _PathEvaluator:
    """What a path expression is, from this file alone: literals, module constants,
    a name assigned one string literal, a parameter's string default, an argparse
    default (``args.config``), joined with the script's folder."""

    def __init__(self, tree: ast.Module, facts: ModuleFacts) -> None:
        self.facts = facts
        self.names: dict[str, Any] = {}
        self.opened: dict[str, ast.expr] = {}  # ``with open(P) as f``: f -> P
        seen: dict[str, list[ast.expr | None]] = {}
        for node in tree_index(tree)[0]:  # ast.walk's order; the walk the collectors share
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        seen.setdefault(target.id, []).append(node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
                seen.setdefault(node.target.id, []).append(getattr(node, "value", None) if isinstance(node, ast.AnnAssign) else None)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args
                positional = arguments.posonlyargs + arguments.args
                for arg, default in zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults):
                    seen.setdefault(arg.arg, []).append(default)
                for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
                    seen.setdefault(arg.arg, []).append(default)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    expr = item.context_expr
                    if isinstance(item.optional_vars, ast.Name) and isinstance(expr, ast.Call) and _is_open(expr) and expr.args:
                        self.opened[item.optional_vars.id] = expr.args[0]
        self.assigned = {name: values[0] for name, values in seen.items() if len(values) == 1 and values[0] is not None}

    def path(self, node: ast.expr | None, depth: int = 0) -> tuple[str, bool] | None:
        """(the path, whether it starts at the script's folder), or None."""
        if node is None or depth > 8:
            return None
        if isinstance(node, ast.Call) and _is_open(node) and node.args:
            return self.path(node.args[0], depth + 1)
        if isinstance(node, ast.Name) and node.id in self.opened:
            return self.path(self.opened[node.id], depth + 1)
        parts = self._parts(node, depth)
        if parts is None:
            return None
        script = parts[0] == _SCRIPT_DIR
        parts = [p for p in parts if p != _SCRIPT_DIR]
        if not parts or any(not isinstance(p, str) or not p for p in parts):
            return None
        return "/".join(p.rstrip("/") if i < len(parts) - 1 else p for i, p in enumerate(parts)), script

    def hydra_path(self, call: ast.Call) -> tuple[str, bool] | None:
        """``@hydra.main(config_path="conf", config_name="config")``: the primary
        config, relative to the script's folder as Hydra resolves ``config_path``
        (``.yaml`` added to the name). None without a config path (no config
        directory) or for a package path (``pkg://``)."""
        arguments = dict(zip(("config_path", "config_name"), call.args))
        arguments.update((kw.arg, kw.value) for kw in call.keywords if kw.arg in ("config_path", "config_name"))
        folder = self.path(arguments.get("config_path"))
        name = self.path(arguments.get("config_name"))
        if folder is None or name is None or ":" in folder[0]:
            return None
        file = name[0] if name[0].endswith((".yaml", ".yml")) else name[0] + ".yaml"
        joined = os.path.normpath(os.path.join(folder[0], file)).replace(os.sep, "/")
        return joined, not os.path.isabs(folder[0])

    def _parts(self, node: ast.expr, depth: int) -> list[str] | None:
        if depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if _is_script_dir(node):
            return [_SCRIPT_DIR]
        if isinstance(node, ast.Name):
            if node.id in self.facts.constants and isinstance(self.facts.constants[node.id], str):
                return [self.facts.constants[node.id]]
            if node.id in self.assigned:
                return self._parts(self.assigned[node.id], depth + 1)
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id != "self":
            default = self.facts.argparse_defaults.get(node.attr)
            return [default] if isinstance(default, str) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # Path(a) / "b"
            left, right = self._parts(node.left, depth + 1), self._parts(node.right, depth + 1)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.Call):
            name = dotted(node.func) or ""
            if name in ("os.path.join", "path.join", "osp.join") and node.args and not node.keywords:
                joined: list[str] = []
                for arg in node.args:
                    part = self._parts(arg, depth + 1)
                    if part is None:
                        return None
                    joined += part
                return joined
            if name in ("Path", "pathlib.Path", "str", "os.path.abspath", "os.path.realpath", "os.path.expanduser") and len(node.args) == 1:
                return self._parts(node.args[0], depth + 1)
        value = literal_value(node, self.facts.constants)
        return [value] if isinstance(value, str) else None


def _is_open(call: ast.Call) -> bool:
    return (dotted(call.func) or "") in ("open", "io.open", "codecs.open")


def _is_script_dir(node: ast.expr) -> bool:
    """``os.path.dirname(__file__)`` (also of its abspath/realpath), ``Path(__file__).parent``."""
    text = ast.unparse(node) if isinstance(node, (ast.Call, ast.Attribute)) else ""
    if "__file__" not in text:
        return False
    compact = text.replace(" ", "")
    return compact in {
        "os.path.dirname(__file__)", "os.path.dirname(os.path.abspath(__file__))", "os.path.dirname(os.path.realpath(__file__))",
        "Path(__file__).parent", "Path(__file__).resolve().parent", "Path(__file__).absolute().parent",
        "pathlib.Path(__file__).parent", "pathlib.Path(__file__).resolve().parent", "osp.dirname(__file__)",
        "osp.dirname(osp.abspath(__file__))",
    }


@collector
def _config_reads(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if not any(word in source for word in _TRIGGERS):
        return
    evaluator: _PathEvaluator | None = None
    reads = []
    for node in tree_index(tree)[0]:  # ast.walk's order; the walk the other collectors share
        if not isinstance(node, ast.Call):
            continue
        how = read_kind(node)
        if how is None:
            continue
        evaluator = evaluator or _PathEvaluator(tree, facts)
        found = evaluator.hydra_path(node) if how == "hydra.main" else evaluator.path(_path_argument(node, how))
        if found is None or not is_config_path(found[0]):
            continue
        reads.append(ConfigRead(found[0], how, node.lineno, node.col_offset, found[1]))
    if reads:
        facts.put(ConfigReads(reads))


def resolve_path(read: ConfigRead, script: str, exists: Callable[[str], bool] | None = None) -> str | None:
    """The key of the config file a read reaches from the script at key ``script``
    (see the module's docstring for the rule), or None when none exists."""
    exists = exists or os.path.isfile
    raw = os.path.expanduser(read.path)
    if os.path.isabs(raw):
        key = file_key(raw)
        return key if exists(key) else None
    folder = os.path.dirname(file_key(script))
    if read.script_relative:
        key = file_key(os.path.join(folder, raw))
        return key if exists(key) else None
    for _ in range(8):
        key = file_key(os.path.join(folder, raw))
        if exists(key):
            return key
        if any(os.path.exists(os.path.join(folder, marker)) for marker in _PROJECT_MARKERS):
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
    return None


def _exists_in(project: ProjectFacts) -> Callable[[str], bool]:
    return lambda key: key in project.unsaved or os.path.isfile(key)


# Reads whose file is named by how the script is launched (a shell script, a README
# command, a tool's layout), not by the code: ``how`` -> finder(read, script, exists)
# -> the config keys; analysis/trainer_configs.py registers them.
LAUNCH_FINDERS: dict[str, Callable[[ConfigRead, str, Callable[[str], bool]], list[str]]] = {}


def reads_of(project: ProjectFacts, script: str) -> list[tuple[ConfigRead, str]]:
    """The reads of a Python file (its key), each with the config file it reaches."""
    facts = project.own(script)
    reads = facts.get(ConfigReads) if facts is not None else None
    if reads is None:
        return []
    found = []
    for read in reads.reads:
        if read.how in LAUNCH_FINDERS:  # named by how the script is launched (analysis/trainer_configs.py)
            found += [(read, key) for key in LAUNCH_FINDERS[read.how](read, script, _exists_in(project))]
            continue
        key = resolve_path(read, script, _exists_in(project))
        if key is None:
            continue
        if read.how == "hydra.main":  # every file the app's config is composed of
            composition = composition_for(project, key)
            found += [(read, file) for file in (composition.files if composition is not None else [key])]
        else:
            found.append((read, key))
    return found


def dependencies_of(project: ProjectFacts, script: str) -> list[str]:
    """Every config file the findings of a Python file depend on (what the result
    cache keys it on): the files it reads (a Hydra app's composition whole), and the
    YAML files that merge onto yacs defaults it builds (analysis/yacs_configs.py)."""
    from losslint.analysis.yacs_configs import yaml_dependencies

    return [key for _, key in reads_of(project, script)] + yaml_dependencies(project, script)


def files_read(read: ConfigRead, script: str) -> list[str]:
    """The config files one read reaches from the script at key ``script`` (from
    disk): the file, or every file of a Hydra app's composition."""
    if read.how in LAUNCH_FINDERS:
        return LAUNCH_FINDERS[read.how](read, script, os.path.isfile)
    key = resolve_path(read, script)
    if key is None:
        return []
    if read.how != "hydra.main":
        return [key]
    from losslint.analysis.hydra_configs import compose

    composition = _memo_composition(key, {}, lambda: compose(key, load_config))
    return composition.files if composition is not None else [key]


_COMPOSITIONS: dict[str, tuple[tuple, Any]] = {}


def _memo_composition(key: str, unsaved: dict[str, str], make: Callable[[], Any]) -> Any:
    """A composition, again only when a file it read (or looked for) changed."""

    def stamp(keys: Iterable[str]) -> tuple:
        marks = []
        for one in keys:
            try:
                stat = os.stat(one)
                marks.append((one, stat.st_size, stat.st_mtime_ns, unsaved.get(one)))
            except OSError:
                marks.append((one, None, None, unsaved.get(one)))
        return tuple(marks)

    cached = _COMPOSITIONS.get(key)
    if cached is not None and cached[1] is not None and cached[0] == stamp(cached[1].probed):
        return cached[1]
    composition = make()
    if len(_COMPOSITIONS) > 64:
        _COMPOSITIONS.clear()
    _COMPOSITIONS[key] = (stamp(composition.probed) if composition is not None else (), composition)
    return composition


def composition_for(project: ProjectFacts, key: str) -> Any:
    """The composed config (``hydra_configs.Composition``) of the Hydra app whose
    primary config is at ``key``, as the run sees its files."""
    from losslint.analysis.hydra_configs import compose

    return _memo_composition(
        key, project.unsaved, lambda: compose(key, lambda k: document_for(project, k), _exists_in(project))
    )


def readers_of(project: ProjectFacts, config: str) -> list[str]:
    """The Python files of the project that read the config at key ``config``."""
    config = file_key(config)
    return [script for script, _ in project.each(ConfigReads) if any(key == config for _, key in reads_of(project, script))]


def document_for(project: ProjectFacts, key: str) -> ConfigDocument:
    """A config as the run sees it: an unsaved text (an editor's buffer, a fix being
    checked, a test's string) before the file on disk."""
    return load_config(key, project.unsaved.get(key))


# -- the value resolver's side: keys as values ------------------------------------------


@dataclass
class ConfigRef:
    """An expression of Python code that stands for a place in a config document:
    ``cfg.trainer`` after ``cfg = OmegaConf.load("conf/train.yaml")``. ``node`` is
    None when the document lacks the key (``parent`` is the deepest node found)."""

    document: ConfigDocument
    keys: tuple
    node: ConfigNode | None
    parent: ConfigNode | None
    read: ConfigRead

    def scalar(self) -> Any:
        return self.document.scalar(self.node)


_PASS_THROUGH = {"to_container", "to_object", "create", "structured"}  # OmegaConf.<x>(cfg) is cfg's content


def config_ref(ctx: Any, node: ast.expr, bindings: Callable[[ast.Name], list], depth: int = 0) -> ConfigRef | None:
    """The config place ``node`` stands for, if it reads one (``cfg.data.batch_size``,
    ``cfg["trainer"]``, ``trainer_cfg`` bound to ``cfg.trainer``); else None.
    ``bindings(name)``: the bindings a name sees (the value resolver's)."""
    if depth > 12:
        return None
    if isinstance(node, ast.Call):
        reads = _own_reads(ctx)
        read = reads.at(node) if reads is not None else None
        if read is not None and read.how not in ("deepspeed.initialize", "hydra.main") and read.how not in LAUNCH_FINDERS:
            key = resolve_path(read, ctx.file or ctx.path, _exists_in(ctx.project))
            if key is None:
                return None
            document = document_for(ctx.project, key)
            if document.root is None:
                return None
            return ConfigRef(document, (), document.root, None, read)
        name = dotted(node.func) or ""
        if name.rpartition(".")[2] in _PASS_THROUGH and "OmegaConf" in name and len(node.args) == 1:
            return config_ref(ctx, node.args[0], bindings, depth + 1)
        return None
    if isinstance(node, ast.Attribute):
        key: Any = node.attr
        base = node.value
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, (str, int)):
        key = node.slice.value
        base = node.value
    elif isinstance(node, ast.Name):
        found = bindings(node)
        if found and len(found) == 1 and found[0].how == "param":
            return _parameter_ref(ctx, found[0], bindings, depth)
        if not found or len(found) != 1 or found[0].path or found[0].value is None or found[0].parameter is not None:
            return None
        return config_ref(ctx, found[0].value, bindings, depth + 1)
    else:
        return None
    parent = config_ref(ctx, base, bindings, depth + 1)
    if parent is None:
        return None
    composition = parent.document.composition
    if composition is not None and composition.is_unknown(parent.keys + (key,)):
        return None  # a piece of the composed config that cannot be known (a group left to the command line)
    if parent.node is None:
        return ConfigRef(parent.document, parent.keys + (key,), None, parent.parent, parent.read)
    if isinstance(parent.node.value, dict) and isinstance(key, str):
        child = parent.node.value.get(key)
    elif isinstance(parent.node.value, list) and isinstance(key, int) and -len(parent.node.value) <= key < len(parent.node.value):
        child = parent.node.value[key]
    else:
        return None  # a method of the object (cfg.get, cfg.items), or a list index out of range
    return ConfigRef(parent.document, parent.keys + (key,), child, parent.node if child is None else None, parent.read)


def _parameter_ref(ctx: Any, binding: Any, bindings: Callable[[ast.Name], list], depth: int) -> ConfigRef | None:
    """A parameter that holds a config: the first parameter of a function decorated
    with ``@hydra.main`` (the composed config), or a parameter of a function of this
    file that every call site of this file passes the same config place."""
    function = binding.stmt
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or binding.parameter is None:
        return None
    position, name = binding.parameter
    reads = _own_reads(ctx)
    for decorator in function.decorator_list:
        read = reads.at(decorator) if reads is not None and isinstance(decorator, ast.Call) else None
        if read is None or read.how != "hydra.main":
            continue
        if position != 0:
            return None
        key = resolve_path(read, ctx.file or ctx.path, _exists_in(ctx.project))
        composition = composition_for(ctx.project, key) if key is not None else None
        if composition is None:
            return None
        document = composition.document
        return ConfigRef(document, (), document.root, None, read)
    if depth > 6:
        return None
    memo = ctx.memo.setdefault("config_parameters", {})
    if (function, name) in memo:
        return memo[(function, name)]
    memo[(function, name)] = None  # (a recursive call passing it on reads None)
    found = _passed_ref(ctx, function, position, name, bindings, depth)
    memo[(function, name)] = found
    return found


def _passed_ref(ctx: Any, function: ast.AST, position: int | None, name: str, bindings: Callable[[ast.Name], list], depth: int) -> ConfigRef | None:
    """The config place every call of ``function`` in this file passes as its
    parameter ``name`` (at ``position``), or None."""
    refs = []
    for call in ctx.nodes_of(ast.Call):
        if not (isinstance(call.func, ast.Name) and call.func.id == function.name):
            continue
        passed = next((kw.value for kw in call.keywords if kw.arg == name), None)
        if passed is None and position is not None and position < len(call.args):
            passed = call.args[position]
        ref = config_ref(ctx, passed, bindings, depth + 1) if passed is not None and not isinstance(passed, ast.Starred) else None
        if ref is None:
            return None
        refs.append(ref)
    if not refs or any(r.document is not refs[0].document or r.keys != refs[0].keys for r in refs):
        return None
    return refs[0]


def _own_reads(ctx: Any) -> ConfigReads | None:
    memo = ctx.memo
    if "config_reads" not in memo:
        facts = ctx.project.own(ctx.file) if ctx.file else None
        memo["config_reads"] = facts.get(ConfigReads) if facts is not None else None
    return memo["config_reads"]


def has_reads(ctx: Any) -> bool:
    return _own_reads(ctx) is not None
