"""yacs / detectron2 configs: the defaults a module builds (``_C = CN()``,
``_C.SOLVER.MOMENTUM = 0.9``, ``_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})``)
and the YAML configs that are merged on top of them (``cfg.merge_from_file``,
docs/semantics.md §5).

- ``defaults_of(tree)``: every key path the module's top level sets on a root
  ``CfgNode``, with its literal value and the ``ast`` node of that value.
- ``yaml_overrides(root, defaults)``: the YAML files under a project root that can
  be merged onto those defaults (yacs raises a KeyError for a key the defaults do not
  have, so a YAML with another key belongs to other defaults, or to defaults that
  code extends first; it is left out), each with its ``_BASE_`` chain merged as
  detectron2's ``CfgNode.merge_from_file`` does (the base first, paths relative to
  the YAML's folder): key path -> (value, line). A YAML that another names as its
  ``_BASE_`` is judged through that one.

YAML is read by ``analysis/configs.py`` (the one config reader: ruamel.yaml, values
with their lines), only when a defaults module with a clip switch is judged. Such a
module records a ``YacsDefaults`` fact, and ``yaml_dependencies`` lists the YAML files
its findings depend on (every one under its project root: a new or edited YAML may
merge onto its defaults), which the result cache keys it on
(``configs.dependencies_of``).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

from losslint.analysis.configs import ConfigNode, load_config
from losslint.project import ModuleFacts, ProjectFacts, collector, family_fact

Path_ = tuple[str, ...]
_CONFIG_NODES = ("CN", "CfgNode", "ConfigNode")
_SKIPPED_DIRS = {"node_modules", "site-packages", "__pycache__", "build", "dist", "venv", ".venv", "env"}
_PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
_MAX_YAML_FILES = 5000


def _is_config_node(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in _CONFIG_NODES


def _path(node: ast.expr, root: str) -> Path_ | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == root:
        return tuple(reversed(parts))
    return None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNKNOWN


_UNKNOWN = object()


def defaults_of(tree: ast.Module) -> dict[Path_, tuple[Any, ast.expr]]:
    """Key path -> (literal value, or a marker for a value not known statically; the
    value's node), for the keys a module's top level sets on its root CfgNode. A
    node built from a dict (``CN({"ENABLED": False})``) contributes its entries."""
    roots = {
        stmt.targets[0].id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        and _is_config_node(stmt.value)
    }
    found: dict[Path_, tuple[Any, ast.expr]] = {}
    if not roots:
        return found
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            continue
        path = next((p for root in roots if (p := _path(stmt.targets[0], root)) is not None), None)
        if not path:
            continue
        value = stmt.value
        if _is_config_node(value):
            found[path] = ({}, value)
            entries = value.args[0] if value.args else None  # type: ignore[attr-defined]
            if isinstance(entries, ast.Dict):
                for key, item in zip(entries.keys, entries.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found[(*path, key.value)] = (_literal(item), item)
        else:
            found[path] = (_literal(value), value)
    return found


def is_unknown(value: Any) -> bool:
    return value is _UNKNOWN


def project_root(path: str) -> str:
    """The nearest folder above ``path`` with a project marker, else the folder above
    its top package."""
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while True:
        if any(os.path.exists(os.path.join(probe, marker)) for marker in _PROJECT_MARKERS):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    while os.path.exists(os.path.join(folder, "__init__.py")) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def _yaml_files(root: str, excluded) -> Iterable[str]:
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS and not excluded(os.path.join(folder, d)))
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")):
                count += 1
                if count > _MAX_YAML_FILES:
                    return
                yield os.path.normpath(os.path.join(folder, name))


# A YAML's flattened keys: path -> (value, line), its _BASE_ chain merged in;
# memoised on the files' sizes and modification times.
_FLAT: dict[str, tuple[tuple, dict[Path_, tuple[Any, int]] | None]] = {}


def _stamp(path: str) -> tuple:
    try:
        stat = os.stat(path)
        return (stat.st_size, stat.st_mtime_ns)
    except OSError:
        return ()


def _flatten(node: ConfigNode, prefix: Path_, out: dict[Path_, tuple[Any, int]]) -> bool:
    """A mapping's leaves, with the line of each value; False for what yacs would
    not read as a config (a top level or key that is not a mapping of names)."""
    if not node.is_mapping:
        return False
    for key, child in node.value.items():
        if not isinstance(key, str):
            return False
        path = (*prefix, key)
        if child.is_mapping:
            if not _flatten(child, path, out):
                return False
        else:
            out[path] = (_plain(child), child.line)
    return True


def _plain(node: ConfigNode) -> Any:
    if isinstance(node.value, list):
        return [_plain(item) for item in node.value]
    return node.value


_BASES: dict[str, str] = {}  # a YAML -> its _BASE_ file
_TOP_KEY = re.compile(rb"^([A-Za-z_][\w\-]*)[ \t]*:", re.MULTILINE)


def _foreign_top_key(path: str, top: set[str]) -> bool:
    """Whether a YAML's text sets a top-level key (a plain key at column 0) that the
    defaults lack: it cannot merge onto them. Read as bytes, without parsing: a tree
    of YAML files for other tools (Hydra groups, CI) costs a read each, not a parse."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    return any(key.decode() not in top and key != b"_BASE_" for key in _TOP_KEY.findall(data))


def flat_yaml(path: str, _depth: int = 0) -> dict[Path_, tuple[Any, int]] | None:
    """The YAML's keys with its ``_BASE_`` chain merged (base first): path -> (value,
    line in the file that sets it); None when it cannot be read as a config."""
    stamp = _stamp(path)
    cached = _FLAT.get(path)
    if cached is not None and cached[0] == stamp and _depth == 0:
        return cached[1]
    result: dict[Path_, tuple[Any, int]] | None = None
    node = load_config(path).root if stamp and _depth < 10 else None
    own: dict[Path_, tuple[Any, int]] = {}
    if node is not None and _flatten(node, (), own):
        result = {}
        base = own.pop(("_BASE_",), None)
        if base is not None:
            if not isinstance(base[0], str):
                result = None
            else:
                base_path = os.path.normpath(os.path.join(os.path.dirname(path), os.path.expanduser(base[0])))
                _BASES[path] = base_path
                inherited = flat_yaml(base_path, _depth + 1)
                result = None if inherited is None else dict(inherited)
        if result is not None:
            result.update(own)
    if _depth == 0:
        _FLAT[path] = (stamp, result)
    return result


def yaml_overrides(root: str, defaults: dict[Path_, tuple[Any, ast.expr]], excluded=lambda _path: False) -> list[tuple[str, dict[Path_, tuple[Any, int]]]]:
    """The YAML configs under ``root`` that merge onto ``defaults`` (every key of
    theirs is a key of the defaults), with their keys."""
    top = {path[0] for path in defaults}
    found = []
    for path in _yaml_files(root, excluded):
        if _foreign_top_key(path, top):
            continue  # yacs would refuse it (a KeyError): not parsed at all
        flat = flat_yaml(path)
        if not flat or not all(key[0] in top for key in flat):
            continue
        if all(key in defaults for key in flat):
            found.append((path, flat))
    # a YAML that others name as their _BASE_ is judged through them (detectron2's Base-RCNN-FPN.yaml)
    bases = {_BASES.get(path) for path, _ in found}
    return [(path, flat) for path, flat in found if path not in bases]


# -- what a defaults module's findings depend on ----------------------------------------


@family_fact
@dataclass(frozen=True)
class YacsDefaults:
    """A module whose top level builds yacs defaults with detectron2's clip switch
    (``...CLIP_GRADIENTS.ENABLED``): LL306 judges it with the project's YAML configs."""

    clip_switches: int = 0


@collector
def _collect_yacs_defaults(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    if "CLIP_GRADIENTS" not in source:
        return
    switches = sum(1 for path in defaults_of(tree) if path[-2:] == ("CLIP_GRADIENTS", "ENABLED"))
    if switches:
        facts.put(YacsDefaults(switches))


def yaml_dependencies(project: ProjectFacts, key: str) -> list[str]:
    """The YAML files the findings of the module at ``key`` depend on: every YAML
    under its project root when it is a yacs defaults module with a clip switch."""
    facts = project.own(key)
    if facts is None or facts.get(YacsDefaults) is None:
        return []
    return list(_yaml_files(project_root(key), lambda _path: False))


def yaml_state(files: Iterable[tuple[str, bytes | None]]) -> list[str]:
    """For the run's files whose bytes hold detectron2's clip switch: the state of the
    YAML files under each one's project root (paths, sizes, modification times).
    A run whose files are all as they were, and these too, may replay its findings;
    a YAML edited, added or removed makes it judge again."""
    roots = sorted({project_root(path) for path, data in files if data is not None and b"CLIP_GRADIENTS" in data})
    state = []
    for root in roots:
        for path in _yaml_files(root, lambda _path: False):
            state.append(f"{path}|{'|'.join(map(str, _stamp(path)))}")
    return state
