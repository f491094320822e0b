"""The rule modules. ``load_all`` (called by ``rules.base.all_rules``, the
registry's only door) imports every module of this package once, so that its
``@register``-ed rules enter the registry: a new rule module needs no edit here.
Nothing is imported with the package itself: importing ``losslint.rules.base`` or
``losslint.rules.linter_problems`` (the engine's own LL0xx codes) costs no rule's
analysis, so `losslint --version` and `--help` start fast.

Families: LL0xx the linter's own (``linter_problems.py``), LL1xx loss
normalization, LL2xx partial last batch, LL3xx momentum without clipping.
``base.py`` is the rule contract; modules named ``*_common.py`` hold what a
family shares.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache


@lru_cache(maxsize=1)
def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
