"""Hydra apps: the config ``@hydra.main(config_path=..., config_name=...)`` hands its
function, composed statically as Hydra composes it (Hydra 1.1+ defaults lists).

``compose(primary, load)`` reads the primary config and its ``defaults:`` list:

- ``- trainer: default`` is the group ``trainer``'s ``default.yaml`` (groups are
  folders of the config directory; in a nested config, relative to its own group;
  ``/group`` from the config directory), placed at the group's package (``trainer``;
  ``group@pkg`` places it at ``pkg``; a ``# @package _global_`` header at the root,
  ``# @package a.b`` at ``a.b``); a list of options merges each;
- ``- default`` (a plain name) is a config of the same folder, at the same package;
- ``_self_`` is the config's own content, at its place in the list (after the
  list when not named: Hydra 1.1's order); ``override group: option`` replaces the
  choice of that group; ``optional`` skips a missing file;
- the files are merged in that order, as ``OmegaConf.merge``: mappings key by key,
  anything else replaced by the later file.

What cannot be known statically is unknown, never guessed: a group left to the
command line (``???``, an interpolated option ``${...}``), a missing file that is not
optional, a config that does not load. Their package is listed in
``Composition.unknown`` (the root when the group's files may write anywhere: a
``# @package`` header among them); a lookup under it is unknown. A group whose
option is ``null`` is not part of the run (``python train.py experiment=x`` adds it
on the command line: not what the code runs by default).

The composed tree is made of ``ConfigNode`` copies that carry the document that
wrote them (``node.document``) and, for a mapping, its node there (``node.own``):
a finding or fix on a composed node goes in that file (``configs.located``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Callable

from losslint.analysis.configs import ConfigDocument, ConfigNode
from losslint.project import file_key

_PACKAGE_HEADER = re.compile(r"^\s*#\s*@package\s+(\S+)\s*$")
_ENTRY_KEY = re.compile(r"^(?:(override|optional)\s+)?(?:(override|optional)\s+)?(/?[\w\-./]*?)(?:@([\w\-.]+))?$")
_MAX_PIECES = 200


@dataclass
class Piece:
    """One file of a composition: its key, the package its content goes to, and the
    defaults-list entry that chose it (``via``: the choosing config's key, the
    entry's line and column, its text; None for the primary config)."""

    key: str
    package: tuple[str, ...]
    via: tuple[str, int, int, str] | None = None


@dataclass
class Composition:
    primary: str
    document: ConfigDocument  # the composed config: root is the merged tree
    pieces: list[Piece] = field(default_factory=list)
    unknown: list[tuple[str, ...]] = field(default_factory=list)  # packages not known statically
    files: list[str] = field(default_factory=list)  # every config file read, the primary first
    probed: list[str] = field(default_factory=list)  # every file read or looked for (what a new result needs)

    def is_unknown(self, keys: tuple) -> bool:
        """Whether a lookup at ``keys`` may meet a piece that is not known."""
        return any(tuple(keys[: len(package)]) == package or package[: len(keys)] == tuple(keys) for package in self.unknown)

    def piece_of(self, key: str) -> Piece | None:
        return next((p for p in self.pieces if p.key == key), None)


def package_header(document: ConfigDocument) -> str | None:
    """The ``# @package X`` header of a YAML config (in its leading comments)."""
    for line in document.text.splitlines()[:20]:
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            return None
        match = _PACKAGE_HEADER.match(line)
        if match:
            return match.group(1)
    return None


def _with_yaml(name: str) -> str:
    return name if name.endswith((".yaml", ".yml")) else name + ".yaml"


class _Composer:
    def __init__(self, primary: str, load: Callable[[str], ConfigDocument], exists: Callable[[str], bool]) -> None:
        self.config_dir = os.path.dirname(primary)
        self.load, self.exists = load, exists
        self.pieces: list[Piece] = []
        self.unknown: list[tuple[str, ...]] = []
        self.files: list[str] = []
        self.probed: list[str] = [primary]
        self.overrides: dict[str, object] = {}  # group (from the config dir) -> option

    def group_package(self, group: str) -> tuple[str, ...]:
        return tuple(part for part in group.split("/") if part)

    def header_package(self, document: ConfigDocument, group_dir: str, default: tuple[str, ...]) -> tuple[str, ...] | None:
        header = package_header(document)
        if header is None or header == "_group_":
            return default
        if header == "_global_":
            return ()
        if header.startswith("_global_."):
            return tuple(header[len("_global_.") :].split("."))
        if header.startswith("_group_."):
            return self.group_package(group_dir) + tuple(header[len("_group_.") :].split("."))
        if "_" == header[:1]:
            return None  # _here_ and other forms: not followed
        return tuple(header.split("."))

    def may_write_anywhere(self, group: str) -> bool:
        """Whether a config of this group folder sets its own package (it may then
        write outside the group: an experiment's ``# @package _global_``)."""
        folder = os.path.join(self.config_dir, group)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return True
        for name in names:
            if name.endswith((".yaml", ".yml")):
                key = file_key(os.path.join(folder, name))
                if key not in self.probed:
                    self.probed.append(key)
                document = self.load(key)
                if package_header(document) not in (None, "_group_"):
                    return True
        return False

    def visit(self, key: str, group_dir: str, package: tuple[str, ...], via: tuple | None, depth: int) -> None:
        if depth > 16 or len(self.pieces) > _MAX_PIECES:
            self.unknown.append(package)
            return
        document = self.load(key)
        if key not in self.files:
            self.files.append(key)
        root = document.root
        if document.error is not None or (root is not None and not root.is_mapping):
            self.unknown.append(package)
            return
        defaults = root.get("defaults") if root is not None else None
        entries = list(defaults.value) if defaults is not None and isinstance(defaults.value, list) else []
        if defaults is not None and not isinstance(defaults.value, list):
            self.unknown.append(package)
        for entry in entries:  # overrides first: they change the choice of an entry met anywhere
            parsed = self.parse(entry, group_dir)
            if parsed is not None and parsed[0] == "override":
                self.overrides.setdefault(parsed[1], parsed[2])
        if not any(entry.value == "_self_" for entry in entries):
            entries.append(ConfigNode("_self_"))
        for entry in entries:
            if entry.value == "_self_":
                self.pieces.append(Piece(key, package, via))
                continue
            parsed = self.parse(entry, group_dir)
            if parsed is None:
                self.unknown.append(package)
                continue
            how, group, option, at, optional = parsed
            if how == "override":
                continue
            text = f"- {group}: {option}" if how == "group" else f"- {option}"
            where = (key, entry.line, entry.column, text)
            if how == "config":  # a config of the same folder (or from the config dir, /x)
                assert isinstance(option, str)
                path = option[1:] if option.startswith("/") else os.path.join(group_dir, option)
                self.include(path, os.path.dirname(path), package, where, optional, depth)
                continue
            option = self.overrides.get(group, option)
            target = package + self.group_package(group.split("/")[-1]) if not at else (() if at == "_global_" else package + tuple(at.split(".")))
            if at and at.startswith("_global_."):
                target = tuple(at[len("_global_.") :].split("."))
            if option is None:
                continue  # the group is not in the run unless the command line adds it
            options = option if isinstance(option, list) else [option]
            for one in options:
                if not isinstance(one, str) or one == "???" or "${" in one:
                    self.unknown.append(() if self.may_write_anywhere(group) else target)
                    continue
                self.include(os.path.join(group, one), group, target, where, optional, depth)

    def include(self, path: str, group: str, package: tuple[str, ...], via: tuple, optional: bool, depth: int) -> None:
        key = file_key(os.path.join(self.config_dir, _with_yaml(path)))
        if key not in self.probed:
            self.probed.append(key)
        if not self.exists(key):
            if not optional:
                self.unknown.append(package)
            return
        document = self.load(key)
        placed = self.header_package(document, group, package)
        if placed is None:
            self.unknown.append(())
            return
        self.visit(key, group, placed, via, depth + 1)

    def parse(self, entry: ConfigNode, group_dir: str) -> tuple | None:
        """(how, group, option, package, optional): ``group`` for ``- g: option``,
        ``override`` for ``- override g: option``, ``config`` for ``- name``."""
        if isinstance(entry.value, str):
            name = entry.value.strip()
            optional = name.startswith("optional ")
            name = name[len("optional ") :].strip() if optional else name
            if not name or "${" in name or "@" in name:
                return None
            return ("config", "", name, None, optional)
        if not isinstance(entry.value, dict) or len(entry.value) != 1:
            return None
        [(written, value)] = entry.value.items()
        match = _ENTRY_KEY.match(written.strip())
        if match is None or not match.group(3):
            return None
        flags = {match.group(1), match.group(2)}
        group = match.group(3)
        group = group[1:] if group.startswith("/") else os.path.join(group_dir, group).replace(os.sep, "/")
        option = value.value
        if isinstance(option, list):
            option = [item.value for item in option]
        elif isinstance(option, (dict,)):
            return None
        how = "override" if "override" in flags else "group"
        return (how, group, option, match.group(4), "optional" in flags)


def compose(primary: str, load: Callable[[str], ConfigDocument], exists: Callable[[str], bool] | None = None) -> Composition | None:
    """The composed config of a Hydra app whose primary config is at key ``primary``;
    None when the primary config does not load."""
    exists = exists or os.path.isfile
    document = load(primary)
    if document.root is None or not document.root.is_mapping:
        return None
    composer = _Composer(primary, load, exists)
    composer.visit(primary, "", (), None, 0)
    root: ConfigNode | None = None
    for piece in composer.pieces:
        piece_doc = load(piece.key)
        if piece_doc.root is None:
            continue
        content = {k: v for k, v in piece_doc.root.value.items() if not (k == "defaults" and isinstance(v.value, list))}
        node = _composed(replace(piece_doc.root, value=content), piece_doc, piece.package)
        for part in reversed(piece.package):
            node = ConfigNode({part: node}, node.keys[:-1], node.line, node.column, node.end_line, node.end_column, node.key_line, node.key_column)
        root = node if root is None else _merge(root, node)
    if root is None:
        root = ConfigNode({}, ())
    composed = ConfigDocument(primary, "yaml", "", root=root)
    composition = Composition(primary, composed, composer.pieces, composer.unknown, composer.files, composer.probed)
    composed.composition = composition
    return composition


def _composed(node: ConfigNode, document: ConfigDocument, keys: tuple) -> ConfigNode:
    """A document's node as part of the composed tree, at ``keys``, carrying its file."""
    if isinstance(node.value, dict):
        children = {k: _composed(child, document, keys + (k,)) for k, child in node.value.items()}
        return replace(node, value=children, keys=keys, document=document, own=node)
    return replace(node, keys=keys, document=document)


def _owns(node: ConfigNode) -> bool:
    """A mapping that is a whole file of the composition (a group's config placed at
    its package): where a key missing from that section is added."""
    return node.own is not None and node.own.keys == ()


def _merge(base: ConfigNode, new: ConfigNode) -> ConfigNode:
    """``OmegaConf.merge(base, new)`` on composed nodes."""
    if not (isinstance(base.value, dict) and isinstance(new.value, dict)):
        return new
    children = dict(base.value)
    for key, child in new.value.items():
        below = children.get(key)
        children[key] = _merge(below, child) if below is not None else child
    if base.own is not None and (_owns(base) or not _owns(new)):
        owner = base
    elif new.own is not None:
        owner = new
    else:
        owner = base
    return replace(owner, value=children)
