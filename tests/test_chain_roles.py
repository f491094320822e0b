"""A rule's place among the causes of a per-epoch spike is declared on the rule
(``Rule.chain``): the chain linker, verify and explain ask the registry, so a new
family rule touches only its own module."""

from __future__ import annotations

from losslint.rules.base import ChainRole, all_rules, chain_role


def test_every_family_rule_declares_its_place_in_the_chain():
    undeclared = [r.code for r in all_rules() if r.code[2] in "123" and not isinstance(r.chain, ChainRole)]
    assert undeclared == []


def test_only_the_linters_own_findings_declare_none():
    assert {r.code for r in all_rules() if r.chain is None} == {r.code for r in all_rules() if r.code.startswith("LL0")}


def test_each_role_belongs_to_its_family():
    for rule in all_rules():
        role = rule.chain
        if role is None:
            continue
        family = {True: "1"}.get(role.scales_loss) or {True: "2"}.get(role.short_last_batch) or {True: "3"}.get(role.unclipped)
        assert family == rule.code[2], (rule.code, role)


def test_the_registry_answers_by_code():
    assert chain_role("LL201") is ChainRole.PARTIAL_BATCH
    assert chain_role("LL003") is None and chain_role("LL999") is None
