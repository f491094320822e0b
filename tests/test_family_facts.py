"""Typed per-family facts: registered kinds only, read back by kind, scoped to
what a file may borrow from, and round-tripped by the cache as data."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from losslint import cache
from losslint.project import FAMILY_FACTS, ModuleFacts, ProjectFacts, family_fact, file_key


@family_fact
@dataclass
class _SeenBatches:
    sizes: dict[str, int] = field(default_factory=dict)


def test_put_get_by_kind():
    facts = ModuleFacts(module="train")
    assert facts.get(_SeenBatches) is None
    facts.put(_SeenBatches({"loader": 64}))
    assert facts.get(_SeenBatches) == _SeenBatches({"loader": 64})


def test_unregistered_kind_is_refused():
    @dataclass
    class Loose:
        value: int = 0

    with pytest.raises(TypeError):
        ModuleFacts(module="m").put(Loose())
    with pytest.raises(TypeError):
        family_fact(type("NotADataclass", (), {}))


def test_each_is_scoped_to_related_files(tmp_path):
    project = ProjectFacts()
    for name, imports in (("a/train.py", ("a.data",)), ("a/data.py", ()), ("b/other.py", ())):
        facts = ModuleFacts(module=name[:-3].replace("/", "."), imports=imports)
        facts.put(_SeenBatches({name: 1}))
        project.add(facts, str(tmp_path / name))
    everywhere = project.each(_SeenBatches)
    assert len(everywhere) == 3
    scoped = project.each(_SeenBatches, scope=str(tmp_path / "a/train.py"))
    assert sorted(key for key, _ in scoped) == sorted(file_key(str(tmp_path / n)) for n in ("a/train.py", "a/data.py"))


def test_cache_round_trips_family_facts():
    assert "_SeenBatches" in FAMILY_FACTS
    facts = ModuleFacts(module="train")
    facts.put(_SeenBatches({"loader": 64}))
    assert cache.decode(cache.encode(facts)) == facts
