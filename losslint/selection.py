"""Rule selectors, as in ``--select``, ``--ignore``, config and ``# noqa``:
a code (``LL201``), a code prefix (``LL2``, ``LL``), ``ALL``, or a rule name
(``partial-last-batch``)."""

from __future__ import annotations

from typing import Iterable

from losslint.config import ConfigError, Settings
from losslint.rules.base import Rule, all_rules


def selector_matches(selector: str, code: str, name: str) -> bool:
    selector = selector.strip()
    if not selector:
        return False
    if selector.upper() == "ALL":
        return True
    return code.startswith(selector.upper()) or selector.lower() == name


def validate_selectors(selectors: Iterable[str], where: str) -> None:
    rules = all_rules()
    for selector in selectors:
        if not any(selector_matches(selector, r.code, r.name) for r in rules):
            raise ConfigError(f"{where}: {selector!r} matches no rule (see `losslint rules`)")


def enabled_rules(settings: Settings) -> list[type[Rule]]:
    validate_selectors(settings.select or [], "select")
    validate_selectors(settings.extend_select, "extend-select")
    validate_selectors(settings.ignore, "ignore")
    chosen = []
    for rule in all_rules():
        if settings.select is None:
            on = rule.default_enabled
        else:
            on = any(selector_matches(s, rule.code, rule.name) for s in settings.select)
        on = on or any(selector_matches(s, rule.code, rule.name) for s in settings.extend_select)
        if on and not any(selector_matches(s, rule.code, rule.name) for s in settings.ignore):
            chosen.append(rule)
    return chosen
