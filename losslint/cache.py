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

Entries are pickles, each written to a temporary file and renamed into place, so
two runs sharing the cache never see a torn entry (the last to finish wins); each
carries a checksum, and an entry that does not load is ignored (and overwritten). A cache that cannot be
written (read-only checkout) is skipped silently: it only ever saves time.
The cache trusts its directory as it trusts the project's source files.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import pickle
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import losslint
from losslint.findings import Finding, Fix

CACHE_DIR_NAME = ".losslint_cache"
ENV_CACHE_DIR = "LOSSLINT_CACHE_DIR"
_MAGIC = b"LLC1"
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
    """A fix whose edits stayed behind (rules build edits from closures, which do
    not pickle): its description and applicability, for the report and the
    summary. ``Linter.run`` re-checks a file when its edits are needed."""


def portable(finding: Finding) -> Finding:
    """The finding with its fix reduced to a DetachedFix, so that it pickles."""
    fix = finding.fix
    if fix is None or isinstance(fix, DetachedFix):
        return finding
    return dataclasses.replace(finding, fix=DetachedFix(fix.description, fix.applicability, ()), related=list(finding.related))


def has_detached_fix(findings: list[Finding]) -> bool:
    return any(isinstance(f.fix, DetachedFix) for f in findings)


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
        """The entry, or None when missing, torn or corrupt."""
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
            return pickle.loads(payload)
        except Exception:  # an entry from an incompatible build: a miss
            return None

    def put(self, kind: str, key: str, value: Any) -> None:
        if not self.writable:
            return
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # something unpicklable in the facts: no entry, still correct
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


def cache_directory(settings: Any) -> Path:
    configured = os.environ.get(ENV_CACHE_DIR)
    if configured:
        return Path(configured)
    return Path(settings.root) / CACHE_DIR_NAME
