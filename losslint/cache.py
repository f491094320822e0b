"""The result cache: ``.losslint_cache/`` at the project root (the configuration's
directory, else the working directory; ``LOSSLINT_CACHE_DIR`` moves it).

What is kept, for each set of paths linted (keyed on the paths and the settings),
is the last run's state of every file, keyed on content, never on timestamps:

- its *scan*: its project facts (``ModuleFacts``) and the rules whose trigger
  words its text contains, valid while its bytes and module name are the same;
- its *findings* (before cross-file linking, which is redone every run), valid
  while their key is the same: the bytes, the path, the module, the settings, and,
  when a rule looks at the file at all, a digest of the whole project's facts. A
  rule may read any module's facts, so a change of facts anywhere (a constant in
  ``losses.py``) re-checks every file that runs a rule (``train.py``); a file no
  rule looks at keeps its findings whatever the project;
- and the run's findings as a whole, replayed at once when no file changed.

(One entry per run, not one per file: creating thousands of small files cost more
than the parsing it saved.) See losslint.parallel for how a run uses them.

"The code" is the losslint version, the text of every losslint module (an
editable install changes without a version bump) and the Python version (the
``ast`` differs between versions): a new losslint never reads an old entry.

Entries are data, never code: JSON in which the only objects rebuilt are the
losslint types an entry needs (``ModuleFacts`` and the dataclasses of its
``extra``, findings, spans, enums, sets and tuples), looked up by name in an
explicit allow-list (``_allowed_type``) and checked field by field against
their type annotations; nothing named in an entry is ever imported or called.
An entry that does not match that schema, or whose checksum is wrong (torn,
damaged, another build's, an old pickle, or crafted), is a miss: the run
computes afresh and overwrites it. A forged entry can at worst misreport the
findings of the run that reads it, as editing the source files could; it
cannot run code. Each entry is written to a temporary file and renamed into
place, so two runs sharing the cache never see a torn entry (the last to
finish wins). A cache that cannot be written (read-only checkout) is skipped
silently: it only ever saves time.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import sys
import tempfile
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import losslint
from losslint.findings import Finding, Fix

CACHE_DIR_NAME = ".losslint_cache"
ENV_CACHE_DIR = "LOSSLINT_CACHE_DIR"
_MAGIC = b"LLC2"  # LLC1 was a pickle: never read again
_CHECKSUM_SIZE = 16


def digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """The losslint version, the source of every losslint module, the Python version."""
    package = Path(losslint.__file__).parent
    parts: list[bytes | str] = [losslint.__version__, sys.version]
    for path in sorted(package.rglob("*.py")):
        parts.append(path.relative_to(package).as_posix())
        try:
            parts.append(path.read_bytes())
        except OSError:
            parts.append("?")
    return digest(*parts)


def canonical(value: Any) -> str:
    """A text for ``value`` that is the same in every process (sets sorted, dict
    keys sorted, dataclasses by field): what the project digest is computed from.
    An object without a stable form falls back to its type name and ``repr``; an
    unstable ``repr`` only ever costs cache misses, never a stale hit."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, (list, tuple)):
        inner = ",".join(canonical(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if isinstance(value, dict):
        items = sorted((canonical(k), canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(f"{f.name}={canonical(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__qualname__}({fields})"
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def settings_digest(settings: Any) -> str:
    """Everything in the settings that can change a file's findings, and the root
    that relative patterns are relative to."""
    return digest(canonical(settings), str(settings.root))


# -- findings that cross process and run boundaries ----------------------------


@dataclasses.dataclass(frozen=True)
class DetachedFix(Fix):
    """A fix whose libcst edits stayed behind (rules build them from closures,
    which are not data): its description and applicability, for the report and
    the summary, and its ``line_edits`` when they were computed with it."""


def portable(finding: Finding) -> Finding:
    """The finding with its fix reduced to a DetachedFix: data only."""
    fix = finding.fix
    if fix is None or isinstance(fix, DetachedFix):
        return finding
    detached = DetachedFix(fix.description, fix.applicability, (), line_edits=fix.line_edits)
    return dataclasses.replace(finding, fix=detached)


def has_detached_fix(findings: list[Finding]) -> bool:
    return any(isinstance(f.fix, DetachedFix) for f in findings)


def lacks_line_edits(findings: list[Finding]) -> bool:
    """Is a fix among these without its line edits (computed by a run that did not want them)?"""
    return any(f.fix is not None and f.fix.line_edits is None and f.cell is None for f in findings)


# -- the store -------------------------------------------------------------------


class Cache:
    """Entries under ``directory/<code digest>/<kind>/<2 hex>/<key>``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.root = self.directory / code_digest()[:16]
        self.writable = True

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def get(self, kind: str, key: str) -> Any | None:
        """The entry, or None when missing, torn, damaged or not losslint's data."""
        try:
            blob = self._path(kind, key).read_bytes()
        except OSError:
            return None
        header = len(_MAGIC) + _CHECKSUM_SIZE
        if len(blob) < header or not blob.startswith(_MAGIC):
            return None
        payload = blob[header:]
        if hashlib.blake2b(payload, digest_size=_CHECKSUM_SIZE).digest() != blob[len(_MAGIC):header]:
            return None
        try:
            return decode(json.loads(payload))
        except (ValueError, TypeError, KeyError, RecursionError):  # not our schema: a miss
            return None

    def put(self, kind: str, key: str, value: Any) -> None:
        if not self.writable:
            return
        try:
            payload = json.dumps(encode(value), separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError, RecursionError):  # a value the schema does not know: no entry, still correct
            return
        blob = _MAGIC + hashlib.blake2b(payload, digest_size=_CHECKSUM_SIZE).digest() + payload
        path = self._path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._ensure_gitignore()
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(blob)
                os.replace(temporary, path)
            except BaseException:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
                raise
        except OSError:
            self.writable = False  # read-only checkout, full disk: run on without it

    _gitignore_done = False

    def _ensure_gitignore(self) -> None:
        if self._gitignore_done:
            return
        self._gitignore_done = True
        ignore = self.directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Written by losslint: the cache is not for version control.\n*\n", encoding="utf-8")
        self._prune_other_versions()

    def _prune_other_versions(self) -> None:
        """Entries of another losslint build can never be read again: remove them
        (best effort; another run may be using or removing them too)."""
        import shutil

        try:
            for child in self.directory.iterdir():
                if child.is_dir() and child != self.root:
                    shutil.rmtree(child, ignore_errors=True)
        except OSError:
            pass


# -- the entries' format: JSON, objects rebuilt from an allow-list ------------------
#
# A JSON value stands for itself (None, bool, int, float, str, list); anything
# else is an object {"~": tag, ...}: "t" a tuple, "s" a set, "f" a frozenset, "m"
# a dict with str keys, "d" another dict (its items as pairs), "e" an enum member ("n" type, "v" value), "o" a
# dataclass ("n" type, "v" its fields, those equal to their default left out).


@lru_cache(maxsize=1)
def _result_types() -> dict[str, type]:
    """losslint's own result types, by name."""
    from losslint.findings import Applicability, LineEdit, RelatedLocation, Severity, Span
    from losslint.parallel import Scan, _Remembered
    from losslint.project import ModuleFacts

    allowed = (
        Severity, Applicability, Span, LineEdit, RelatedLocation, DetachedFix, Finding, ModuleFacts, Scan, _Remembered,
    )
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in allowed}


@lru_cache(maxsize=None)
def _family_kinds(registered: int) -> dict[str, type]:
    """The kinds of per-family fact registered so far, by name (``registered``: how
    many, so that kinds registered since are seen)."""
    from losslint.project import FAMILY_FACTS

    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in FAMILY_FACTS.values()}


def _allowed_type(name: str) -> type | None:
    """The class an entry may rebuild under ``name``: losslint's own result types and
    the kinds of per-family fact registered with ``project.family_fact``. The rule
    modules register theirs when imported; they are imported here only for a name
    not known yet (an entry of facts), so that replaying a run's findings imports
    no rule (tests/test_cache.py checks the facts of every fixture round-trip)."""
    from losslint.project import FAMILY_FACTS

    found = _result_types().get(name) or _family_kinds(len(FAMILY_FACTS)).get(name)
    if found is None:
        from losslint.rules import load_all

        load_all()
        found = _family_kinds(len(FAMILY_FACTS)).get(name)
    return found


@lru_cache(maxsize=None)
def _schema(cls: type) -> tuple[dict[str, Callable[[Any], bool]], frozenset[str], dict[str, Any]]:
    """A dataclass's (field -> a check of its type, required fields, field -> default value)."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    required = frozenset(
        f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields
        if f.name not in required
    }
    return {f.name: _checker(hints[f.name]) for f in fields}, required, defaults


def encode(value: Any) -> Any:
    """``value`` as JSON data; TypeError for anything the allow-list does not hold."""
    kind = type(value)  # exact types: a str enum (Severity) is not a str here
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(v) for v in value]
    if kind is tuple:
        return {"~": "t", "v": [encode(v) for v in value]}
    if kind in (set, frozenset):
        return {"~": "f" if kind is frozenset else "s", "v": [encode(v) for v in value]}
    if kind is dict:
        if all(type(k) is str for k in value):
            return {"~": "m", "v": {k: encode(v) for k, v in value.items()}}
        return {"~": "d", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if _allowed_type(name) is not type(value):
        raise TypeError(f"not a cacheable type: {name}")
    if isinstance(value, enum.Enum):
        return {"~": "e", "n": name, "v": value.value}
    _, _, defaults = _schema(type(value))
    fields = {}
    for f in dataclasses.fields(value):
        if not f.init:
            continue
        item = getattr(value, f.name)
        if f.name in defaults and type(item) is type(defaults[f.name]) and item == defaults[f.name]:
            continue
        fields[f.name] = encode(item)
    return {"~": "o", "n": name, "v": fields}


_SCALARS = frozenset({type(None), bool, int, float, str})


def decode(data: Any) -> Any:
    """The value ``encode`` made; ValueError (or TypeError, KeyError) for anything
    else: an unknown tag or type name, a missing or unknown field, a field whose
    value does not have its annotated type."""
    kind = type(data)
    if kind in _SCALARS:
        return data
    if kind is list:
        return [v if type(v) in _SCALARS else decode(v) for v in data]
    if kind is not dict:
        raise ValueError("not cache data")
    tag = data["~"]
    if tag in ("t", "s", "f"):
        items = [v if type(v) in _SCALARS else decode(v) for v in _list(data["v"])]
        return tuple(items) if tag == "t" else set(items) if tag == "s" else frozenset(items)
    if tag == "m":
        if type(data["v"]) is not dict:
            raise ValueError("malformed mapping")
        return {k: v if type(v) in _SCALARS else decode(v) for k, v in data["v"].items()}
    if tag == "d":
        return {decode(k): decode(v) for k, v in (_pair(p) for p in _list(data["v"]))}
    cls = _allowed_type(data["n"]) if isinstance(data.get("n"), str) else None
    if cls is None:
        raise ValueError("not an allowed type")
    if tag == "e" and issubclass(cls, enum.Enum):
        return cls(data["v"])
    if tag != "o" or issubclass(cls, enum.Enum) or not isinstance(data["v"], dict):
        raise ValueError("malformed object")
    checks, required, _ = _schema(cls)
    fields = data["v"]
    if not (required <= fields.keys() <= checks.keys()):
        raise ValueError(f"fields of {cls.__qualname__} do not match")
    values = {}
    for name, raw in fields.items():
        value = decode(raw)
        if not checks[name](value):
            raise ValueError(f"{cls.__qualname__}.{name} does not have its annotated type")
        values[name] = value
    return cls(**values)


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError("malformed collection")
    return value


def _pair(value: Any) -> tuple[Any, Any]:
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError("malformed dict item")
    return value[0], value[1]


@lru_cache(maxsize=None)
def _checker(hint: Any) -> Callable[[Any], bool]:
    """A check that a decoded value has the annotated type ``hint`` (the typing
    forms the cache's dataclasses use), built once per annotation."""
    if hint is Any:
        return lambda value: True
    if hint is None or hint is type(None):
        return lambda value: value is None
    if hint is float:
        return lambda value: type(value) in (int, float)
    if hint in (int, str, bool):
        return lambda value: type(value) is hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_checker(a) for a in args]
        return lambda value: any(check(value) for check in options)
    if origin is None:
        if not isinstance(hint, type):
            raise TypeError(f"an annotation the cache cannot check: {hint!r}")
        return lambda value: isinstance(value, hint)
    if origin in (list, set, frozenset) or origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _checker(args[0]) if args else _checker(Any)
        return lambda value: isinstance(value, origin) and all(item(v) for v in value)
    if origin is tuple:
        items = [_checker(a) for a in args]
        return lambda value: isinstance(value, tuple) and len(value) == len(items) and all(c(v) for c, v in zip(items, value))
    if origin is dict:
        key, val = (_checker(args[0]), _checker(args[1])) if args else (_checker(Any), _checker(Any))
        return lambda value: isinstance(value, dict) and all(key(k) and val(v) for k, v in value.items())
    raise TypeError(f"an annotation the cache cannot check: {hint!r}")

def cache_directory(settings: Any) -> Path:
    """``LOSSLINT_CACHE_DIR``; else ``.losslint_cache/`` beside the configuration
    file or, without one, at the nearest project root above the working directory;
    else (no project: a run from /tmp or ~) under the user's cache directory."""
    configured = os.environ.get(ENV_CACHE_DIR)
    if configured:
        return Path(configured)
    if settings.config_path is None:
        from losslint.config import find_project_root, user_cache_dir

        root = find_project_root(Path.cwd())
        return root / CACHE_DIR_NAME if root is not None else user_cache_dir() / "results"
    return Path(settings.root) / CACHE_DIR_NAME
