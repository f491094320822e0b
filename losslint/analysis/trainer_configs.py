"""Configs that a trainer reads from its command line: the path is not in the code
but in how the script is launched.

- ``LightningCLI(Model, DataModule)`` reads ``--config X.yaml`` (``-c``, repeated:
  merged in order) and ``parser_kwargs={"default_config_files": [...]}`` (also per
  subcommand: ``{"fit": {"default_config_files": [...]}}``).
- ``TrlParser(...)`` reads ``--config recipe.yaml`` (``parse_args_and_config``);
  ``HfArgumentParser(...)`` scripts take the YAML or JSON as their one positional
  argument (``python run.py args.yaml``, the ``sys.argv[1].endswith(".json")``
  idiom of transformers' examples).
- ``accelerate launch --config_file acc.yaml script.py`` reads accelerate's config;
  its ``deepspeed_config_file`` names the DeepSpeed JSON the engine runs with.

Where a launch is found (``launches``): the command lines in the project's shell
scripts (``*.sh``, ``*.bash``, ``*.slurm``) and Markdown/reST files (READMEs), in
the project's folders (the nearest folder above the script with ``.git``,
``pyproject.toml``, ``setup.py`` or ``setup.cfg``; at most 4 levels deep, hidden
folders and virtual environments left out). A command names the script as a path
(relative to the project's root or to the launcher's folder) or as ``-m
package.module``; continued lines (``\\``) are joined and ``{a,b}`` is expanded as
the shell does (two launches). The paths after the script are looked up from the
project's root, then from the launcher's folder: the first that exists. A path
with a ``$VARIABLE`` is unknown, never guessed.

Without a launch, LightningCLI's configs are looked for in its well-known layout:
``configs/*.yaml`` or ``config/*.yaml`` beside the script or at the project's root
whose top-level keys are all LightningCLI's (``trainer``, ``model``, ``data``,
``optimizer``, ``lr_scheduler``, ``seed_everything``, ``ckpt_path``, or a
subcommand ``fit:`` holding them) and include ``trainer``, ``model`` or ``data``;
each such file is one launch.

The reads are ``ConfigRead``s of ``analysis/configs.py`` (``how`` one of
``LAUNCHED``), recorded at the call (the LightningCLI, the parser, the
``Accelerator``/Trainer), and resolved by ``launched_paths`` when the project's
configs are looked up (registered in ``configs.LAUNCH_FINDERS``): discovery, the
cache's keys and the language server see them like any other read. Launchers are
read when resolved, never cached with a file's facts: editing a launch script
changes which configs a script reads, and so the cache keys of its findings.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from dataclasses import dataclass
from typing import Callable

from losslint.analysis import configs
from losslint.analysis.configs import ConfigRead, ConfigReads, is_config_path, load_config
from losslint.analysis.names import dotted
from losslint.analysis.walk import tree_index
from losslint.project import ModuleFacts, ProjectFacts, collector

LIGHTNING_CLI = "LightningCLI --config"
HF_PARSER = "HfArgumentParser --config"
TRL_PARSER = "TrlParser --config"
ACCELERATE = "accelerate launch --config_file"
LAUNCHED = (LIGHTNING_CLI, HF_PARSER, TRL_PARSER, ACCELERATE)

_PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
_LAUNCHER_SUFFIXES = (".sh", ".bash", ".slurm", ".md", ".rst")
_SKIPPED_FOLDERS = {"node_modules", "venv", "env", "site-packages", "__pycache__", "build", "dist", "wandb", "outputs", "logs"}
_MAX_DEPTH = 4
_MAX_LAUNCHERS = 400
_MAX_LAUNCHER_BYTES = 256_000

CLI_KEYS = {"trainer", "model", "data", "optimizer", "lr_scheduler", "seed_everything", "ckpt_path"}
CLI_SUBCOMMANDS = ("fit", "validate", "test", "predict")


# -- what the code says -------------------------------------------------------------------


def _is_named(call: ast.Call, *names: str) -> bool:
    return (dotted(call.func) or "").rpartition(".")[2] in names


def _parser_subclasses(tree: ast.Module) -> set[str]:
    """Classes of this file deriving from HfArgumentParser or TrlParser."""
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any((dotted(b) or "").rpartition(".")[2] in ("HfArgumentParser", "TrlParser") for b in node.bases)
    }


def default_config_files(call: ast.Call) -> list[str]:
    """The literal ``default_config_files`` of a LightningCLI's ``parser_kwargs``
    (directly, or under a subcommand: ``{"fit": {"default_config_files": [...]}}``)."""
    found: list[str] = []
    for kw in call.keywords:
        if kw.arg != "parser_kwargs":
            continue
        for node in ast.walk(kw.value):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "default_config_files" and isinstance(value, (ast.List, ast.Tuple)):
                        found += [e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            elif isinstance(node, ast.Call) and (dotted(node.func) or "") == "dict":
                for inner in node.keywords:
                    if inner.arg == "default_config_files" and isinstance(inner.value, (ast.List, ast.Tuple)):
                        found += [e.value for e in inner.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return [path for path in found if is_config_path(path)]


@collector
def _launched_reads(tree: ast.Module, source: str, facts: ModuleFacts) -> None:
    """Record the launched reads after ``configs``' own collector (registered before
    this one: this module imports it), into the same ``ConfigReads`` fact."""
    if not any(word in source for word in ("LightningCLI", "ArgumentParser", "TrlParser", "Accelerator", "Trainer")):
        return
    subclasses = _parser_subclasses(tree) if "Parser" in source else set()
    reads: list[ConfigRead] = []
    accelerate_at: ast.Call | None = None
    for node in tree_index(tree)[0]:  # ast.walk's order; the walk the collectors share
        if not isinstance(node, ast.Call):
            continue
        if _is_named(node, "LightningCLI"):
            reads.append(ConfigRead("", LIGHTNING_CLI, node.lineno, node.col_offset))
            reads += [ConfigRead(path, "LightningCLI", node.lineno, node.col_offset) for path in default_config_files(node)]
        elif _is_named(node, "TrlParser"):
            reads.append(ConfigRead("", TRL_PARSER, node.lineno, node.col_offset))
        elif _is_named(node, "HfArgumentParser", *subclasses):
            reads.append(ConfigRead("", HF_PARSER, node.lineno, node.col_offset))
        elif accelerate_at is None and (_is_named(node, "Accelerator") or (_is_named(node, "Trainer", "SFTTrainer", "DPOTrainer") and any(k.arg == "args" for k in node.keywords))):
            accelerate_at = node
    if accelerate_at is not None:
        reads.append(ConfigRead("", ACCELERATE, accelerate_at.lineno, accelerate_at.col_offset))
    if not reads:
        return
    existing = facts.get(ConfigReads)
    facts.put(ConfigReads((existing.reads if existing is not None else []) + reads))


# -- how the script is launched -----------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """One command line that runs a script: where it is written, the configs passed to
    the script (in order), its ``--key value`` arguments, accelerate's config."""

    launcher: str  # the key of the file holding the command
    line: int
    configs: tuple[str, ...]
    overrides: tuple[tuple[str, str], ...]
    accelerate_config: str | None = None

    def override(self, *keys: str) -> str | None:
        """The last value given on the command line for one of ``keys``."""
        found = None
        for key, value in self.overrides:
            if key in keys:
                found = value
        return found


def project_root(folder: str) -> str:
    current = folder
    for _ in range(12):
        if any(os.path.exists(os.path.join(current, marker)) for marker in _PROJECT_MARKERS):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return folder


_LAUNCHER_FILES: dict[str, list[str]] = {}  # project root -> its launcher files (once per process)
_COMMANDS: dict[str, tuple[tuple[int, int], list[tuple[int, str]]]] = {}  # launcher -> (stat, its command lines)


def _launcher_files(root: str) -> list[str]:
    found = _LAUNCHER_FILES.get(root)
    if found is not None:
        return found
    found = []
    base_depth = root.rstrip(os.sep).count(os.sep)
    for folder, subfolders, files in os.walk(root):
        if folder.count(os.sep) - base_depth >= _MAX_DEPTH:
            subfolders[:] = []
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in _SKIPPED_FOLDERS and not d.endswith(".egg-info"))
        found += [os.path.join(folder, name) for name in sorted(files) if name.lower().endswith(_LAUNCHER_SUFFIXES)]
        if len(found) >= _MAX_LAUNCHERS:
            break
    _LAUNCHER_FILES[root] = found = found[:_MAX_LAUNCHERS]
    return found


def _command_lines(launcher: str) -> list[tuple[int, str]]:
    """The launcher's lines, continuations (``\\``) joined, with their first line number."""
    try:
        stat = os.stat(launcher)
    except OSError:
        return []
    signature = (stat.st_mtime_ns, stat.st_size)
    cached = _COMMANDS.get(launcher)
    if cached is not None and cached[0] == signature:
        return cached[1]
    commands: list[tuple[int, str]] = []
    if stat.st_size <= _MAX_LAUNCHER_BYTES:
        try:
            with open(launcher, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            lines = []
        pending, start = "", 0
        for number, line in enumerate(lines, 1):
            if not pending:
                start = number
            stripped = line.rstrip()
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            text = (pending + stripped).strip()
            pending = ""
            if ".py" in text or " -m " in text:
                commands.append((start, text))
    _COMMANDS[launcher] = (signature, commands)
    return commands


_BRACES = re.compile(r"\{([^{}$]*,[^{}$]*)\}")


def _expand_braces(token: str) -> list[str]:
    match = _BRACES.search(token)
    if match is None:
        return [token]
    out = []
    for choice in match.group(1).split(","):
        out += _expand_braces(token[: match.start()] + choice + token[match.end() :])
    return out


def _tokens(command: str) -> list[str]:
    command = command.strip().lstrip("$>").strip().strip("`")
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


def _names_script(token: str, index: int, tokens: list[str], script: str, bases: tuple[str, ...], root: str) -> bool:
    if token.endswith(".py"):
        return any(os.path.normpath(os.path.join(base, token)) == script for base in bases)
    if index > 0 and tokens[index - 1] == "-m":
        relative = os.path.relpath(script, root)
        module = relative[: -len(".py")].replace(os.sep, ".") if relative.endswith(".py") else ""
        return module == token or (module.endswith(".__main__") and module[: -len(".__main__")] == token)
    return False


def _find(path: str, bases: tuple[str, ...], exists: Callable[[str], bool]) -> str | None:
    if "$" in path or not path:
        return None
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return os.path.normpath(path) if exists(os.path.normpath(path)) else None
    for base in bases:
        key = os.path.normpath(os.path.join(base, path))
        if exists(key):
            return key
    return None


def _parse_launch(launcher: str, line: int, tokens: list[str], at: int, bases: tuple[str, ...], exists: Callable[[str], bool]) -> list[Launch]:
    before, after = tokens[:at], tokens[at + 1 :]
    accelerate = None
    if "accelerate" in before:
        for index, token in enumerate(before):
            if token in ("--config_file", "--config-file") and index + 1 < len(before):
                accelerate = _find(before[index + 1], bases, exists)
            elif token.startswith(("--config_file=", "--config-file=")):
                accelerate = _find(token.partition("=")[2], bases, exists)
    choices: list[list[str]] = [[]]  # config paths, one list per brace alternative
    overrides: list[tuple[str, str]] = []
    index = 0
    while index < len(after):
        token = after[index]
        if token in ("|", "&&", ";", "||", ">", "2>&1", "&") or token.startswith((">", "2>")):
            break
        value = None
        if token in ("--config", "-c", "--config_file", "--config-file") and index + 1 < len(after):
            value, index = after[index + 1], index + 1
        elif token.startswith(("--config=", "--config_file=")):
            value = token.partition("=")[2]
        elif token.startswith("--") and "=" in token:
            overrides.append((token[2:].partition("=")[0], token.partition("=")[2]))
        elif token.startswith("--") and index + 1 < len(after) and not after[index + 1].startswith("-"):
            overrides.append((token[2:], after[index + 1]))
            index += 1
        elif not token.startswith("-") and is_config_path(token):
            value = token
        if value is not None:
            options = _expand_braces(value)
            choices = [chosen + [option] for chosen in choices for option in options] if len(options) > 1 else [chosen + [value] for chosen in choices]
        index += 1
    launches = []
    for chosen in choices:
        found = tuple(key for key in (_find(p, bases, exists) for p in chosen) if key is not None)
        if len(found) == len(chosen):  # every config of the command exists (else the launch is not known)
            launches.append(Launch(launcher, line, found, tuple(overrides), accelerate))
    return launches


def launches(script: str, exists: Callable[[str], bool] | None = None) -> list[Launch]:
    """The command lines of the script's project that run it (see the module's docstring)."""
    exists = exists or os.path.isfile
    script = os.path.normpath(script)
    root = project_root(os.path.dirname(script))
    stem = os.path.basename(script)[: -len(".py")] if script.endswith(".py") else os.path.basename(script)
    found: list[Launch] = []
    for launcher in _launcher_files(root):
        for line, command in _command_lines(launcher):
            if stem not in command:
                continue
            tokens = _tokens(command)
            bases = (root, os.path.dirname(launcher))
            for index, token in enumerate(tokens):
                if _names_script(token, index, tokens, script, bases, root):
                    found += _parse_launch(launcher, line, tokens, index, bases, exists)
                    break
    return found


def is_cli_document(document: configs.ConfigDocument) -> bool:
    """A YAML whose top-level keys are all LightningCLI's (or one subcommand holding them)."""
    root = document.root
    if root is None or not root.is_mapping or not root.value:
        return False
    keys = set(root.value)
    if len(keys) == 1 and next(iter(keys)) in CLI_SUBCOMMANDS:
        inner = root.get(next(iter(keys)))
        keys = set(inner.value) if inner is not None and inner.is_mapping else set()
    return bool(keys) and keys <= CLI_KEYS and bool(keys & {"trainer", "model", "data"})


def layout_configs(script: str) -> list[str]:
    """LightningCLI's configs by layout: ``configs/*.yaml`` / ``config/*.yaml`` beside
    the script or at the project's root, that read as a LightningCLI config."""
    folder = os.path.dirname(os.path.normpath(script))
    found = []
    for base in dict.fromkeys((folder, project_root(folder))):
        for name in ("configs", "config"):
            directory = os.path.join(base, name)
            if not os.path.isdir(directory):
                continue
            for entry in sorted(os.listdir(directory)):
                key = os.path.join(directory, entry)
                if entry.lower().endswith((".yaml", ".yml")) and os.path.isfile(key) and is_cli_document(load_config(key)):
                    found.append(key)
    return found


def cli_launches(script: str, read_paths: list[str] | None = None, exists: Callable[[str], bool] | None = None) -> list[Launch]:
    """How a LightningCLI script runs: its launches (each with ``default_config_files``
    first, as LightningCLI applies them), or one launch per config of the layout."""
    defaults = tuple(read_paths or ())
    found = [Launch(l.launcher, l.line, defaults + l.configs, l.overrides, l.accelerate_config) for l in launches(script, exists)]
    if found:
        return found
    if defaults:
        return [Launch(script, 0, defaults, ())]
    return [Launch(key, 0, (key,), ()) for key in layout_configs(script)]


def deepspeed_file_node(document: configs.ConfigDocument) -> configs.ConfigNode | None:
    """accelerate's ``deepspeed_config_file`` (top-level, or under ``deepspeed_config:``)."""
    root = document.root
    if root is None or not root.is_mapping:
        return None
    section = root.get("deepspeed_config")
    return root.get("deepspeed_config_file") or (section.get("deepspeed_config_file") if section is not None and section.is_mapping else None)


def accelerate_deepspeed_json(launch: Launch, exists: Callable[[str], bool]) -> str | None:
    """The DeepSpeed JSON that accelerate's config names (``deepspeed_config_file``),
    looked up from the project's root, the accelerate config's folder, the launcher's."""
    if launch.accelerate_config is None:
        return None
    document = load_config(launch.accelerate_config)
    node = deepspeed_file_node(document)
    path = document.scalar(node) if node is not None else None
    if not isinstance(path, str) or not path.lower().endswith(".json"):
        return None
    folder = os.path.dirname(launch.launcher)
    return _find(path, (project_root(folder), os.path.dirname(launch.accelerate_config), folder), exists)


def launched_paths(read: ConfigRead, script: str, exists: Callable[[str], bool]) -> list[str]:
    """The config files a launched read reaches (``configs.LAUNCH_FINDERS``)."""
    if read.how == LIGHTNING_CLI:
        return list(dict.fromkeys(key for launch in cli_launches(script, None, exists) for key in launch.configs))
    if read.how in (HF_PARSER, TRL_PARSER):
        return list(dict.fromkeys(key for launch in launches(script, exists) for key in launch.configs))
    if read.how == ACCELERATE:
        found = (accelerate_deepspeed_json(launch, exists) for launch in launches(script, exists))
        return list(dict.fromkeys(key for key in found if key is not None))
    return []


for _how in LAUNCHED:
    configs.LAUNCH_FINDERS[_how] = launched_paths


def cli_configs_found(project: ProjectFacts, script: str) -> bool:
    """Whether a LightningCLI script's configs are found: then LL304 judges them
    (rules/config_checks.py), not the call."""
    return bool(cli_launches(script, None, configs._exists_in(project)))


def many_processes(launch: Launch) -> bool:
    """Whether the launch runs several processes (accelerate's ``num_processes`` > 1):
    then accelerate's ``even_batches`` fills each process's last batch by wrapping
    around the data, and no batch is partial."""
    if launch.accelerate_config is None:
        return False
    document = load_config(launch.accelerate_config)
    root = document.root
    count = document.scalar(root.get("num_processes")) if root is not None and root.is_mapping else None
    return isinstance(count, int) and not isinstance(count, bool) and count > 1
