"""The shape of a rule, and the registry.

A rule is a class in a module of ``losslint/rules/`` (one rule, or a small family
that shares its analysis). It carries, side by side:

- its identity: ``code`` (LL + three digits; the first digit is the family),
  ``name`` (kebab-case, stable), ``severity``, ``default_enabled``;
- ``triggers``: substrings of which a file must contain at least one for the rule
  to look at it at all (the cheap pre-filter that keeps non-training files off the
  analysis path);
- its documentation (``summary``, ``why``, ``fix_doc``, ``references``), printed
  by ``losslint rule CODE``;
- its test cases (``flagged`` with their exact fixed output, ``quiet``), which
  ``tests/test_rule_examples.py`` runs for every rule and which also give the
  documentation its example.
"""

from __future__ import annotations

import enum
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable

from losslint.findings import Applicability, Finding, Severity

if TYPE_CHECKING:
    from losslint.context import FileContext


@dataclass(frozen=True)
class Flagged:
    """Code the rule must flag, and what its fix must turn it into.
    ``fixed`` is None only where the rule has no fix for this case."""

    code: str
    fixed: str | None
    count: int = 1
    message_contains: tuple[str, ...] = ()
    unsafe: bool = False  # the fix needs --unsafe-fixes
    files: tuple[tuple[str, str], ...] = ()  # other project files (name, source)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", textwrap.dedent(self.code).lstrip("\n"))
        if self.fixed is not None:
            object.__setattr__(self, "fixed", textwrap.dedent(self.fixed).lstrip("\n"))
        object.__setattr__(self, "files", tuple((n, textwrap.dedent(s).lstrip("\n")) for n, s in self.files))


@dataclass(frozen=True)
class Quiet:
    """Code the rule must leave alone, and why (the reason is part of the docs)."""

    code: str
    why: str = ""
    files: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", textwrap.dedent(self.code).lstrip("\n"))
        object.__setattr__(self, "files", tuple((n, textwrap.dedent(s).lstrip("\n")) for n, s in self.files))


class ChainRole(enum.Enum):
    """A rule's place among the causes of a per-epoch loss spike, declared on the
    rule (``chain = ChainRole.PARTIAL_BATCH``): the chain linker
    (rules/loss_chain.py), ``verify`` and ``explain`` ask it, never a list of
    codes. Every LL1xx-LL3xx rule declares one. The value says what the cause is,
    in the words a chain's message uses."""

    SPIKING_LOSS = "a loss that scales as 1/batch size"  # spikes on a short last batch, even without momentum
    ACCUMULATION_WINDOW = "a partial gradient-accumulation window"  # a short last step; linked only with momentum
    DIPPING_LOSS = "a summed loss divided by the nominal batch size"  # under-weights the last batch: a dip
    PARTIAL_BATCH = "a partial last batch"
    SINGLETON_BATCH = "a last batch of one sample under BatchNorm"  # a crash, not a spike: never linked
    MOMENTUM = "momentum without clipping"
    INEFFECTIVE_CLIP = "a clip that meets scaled gradients"  # clipping before unscale_ under AMP

    @property
    def scales_loss(self) -> bool:
        """A loss whose weight of the last batch is wrong (the LL1xx causes)."""
        return self in (ChainRole.SPIKING_LOSS, ChainRole.ACCUMULATION_WINDOW, ChainRole.DIPPING_LOSS)

    @property
    def short_last_batch(self) -> bool:
        """A pipeline whose last batch of a pass is short (the LL2xx causes)."""
        return self in (ChainRole.PARTIAL_BATCH, ChainRole.SINGLETON_BATCH)

    @property
    def unclipped(self) -> bool:
        """A step that no clip bounds (the LL3xx causes): its fix is a clip, which
        verify judges on an injected outlier batch."""
        return self in (ChainRole.MOMENTUM, ChainRole.INEFFECTIVE_CLIP)

    @property
    def dips(self) -> bool:
        """Its symptom is an under-weighted last step (a dip), not a spike."""
        return self in (ChainRole.DIPPING_LOSS, ChainRole.ACCUMULATION_WINDOW)


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    default_enabled: ClassVar[bool] = True
    triggers: ClassVar[tuple[str, ...]] = ()
    fix_applicability: ClassVar[Applicability] = Applicability.SAFE
    # Test files train toy models to check code; the training-dynamics rules leave
    # them alone unless `lint-test-files = true`.
    skips_test_files: ClassVar[bool] = True

    summary: ClassVar[str]  # one line: what it finds
    why: ClassVar[str]  # why it hurts training
    fix_doc: ClassVar[str]  # what the fix does, and its safety
    references: ClassVar[tuple[str, ...]] = ()

    flagged: ClassVar[tuple[Flagged, ...]] = ()
    quiet: ClassVar[tuple[Quiet, ...]] = ()
    # Its place among the causes of a per-epoch spike (None: the linter's own LL0xx).
    chain: ClassVar[ChainRole | None] = None

    def check(self, ctx: "FileContext") -> Iterable[Finding]:
        raise NotImplementedError

    @property
    def family(self) -> str:
        return self.code[:3] + "xx"


_REGISTRY: dict[str, type[Rule]] = {}

# Linkers see every finding of a run (all files) after the rules have judged each
# file, and may link findings (``Finding.related_locations``) and raise their
# severity: the causes of a per-epoch spike on one training path (LL1xx + LL2xx + LL3xx).
Linker = Callable[[list[Finding]], None]
_LINKERS: list[Linker] = []


def linker(fn: Linker) -> Linker:
    _LINKERS.append(fn)
    return fn


def all_linkers() -> list[Linker]:
    all_rules()
    return list(_LINKERS)


def register(cls: type[Rule]) -> type[Rule]:
    for attr in ("code", "name", "summary", "why", "fix_doc"):
        if not getattr(cls, attr, None):
            raise TypeError(f"rule {cls.__name__} lacks {attr}")
    if cls.code in _REGISTRY or any(r.name == cls.name for r in _REGISTRY.values()):
        raise TypeError(f"duplicate rule {cls.code} {cls.name}")
    _REGISTRY[cls.code] = cls
    return cls


def all_rules() -> list[type[Rule]]:
    from losslint.rules import load_all  # (imports every rule module once, which registers it)

    load_all()
    return [_REGISTRY[code] for code in sorted(_REGISTRY)]


def find_rule(code_or_name: str) -> type[Rule] | None:
    key = code_or_name.strip()
    for rule in all_rules():
        if rule.code == key.upper() or rule.name == key.lower():
            return rule
    return None


@lru_cache(maxsize=None)
def _roles() -> dict[str, ChainRole | None]:
    return {rule.code: rule.chain for rule in all_rules()}


def chain_role(code: str) -> ChainRole | None:
    """The chain role its rule declares for a finding's code (None: no such rule,
    or the linter's own LL0xx)."""
    return _roles().get(code)
