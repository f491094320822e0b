"""The rule modules. Every module in this package is imported once (by
``all_rules``) so that its ``@register``-ed rules enter the registry: a new rule
module needs no edit here.

Families: LL0xx the linter's own (``io.py``), LL1xx loss normalization, LL2xx
partial last batch, LL3xx momentum without clipping. ``base.py`` is the rule
contract; modules named ``*_common.py`` hold what a family shares.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


load_all()
