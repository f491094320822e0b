"""The result cache: warm runs parse nothing and report exactly what a cold run
does; a change anywhere that can change a finding (the file, another file's
facts, the settings, losslint itself) is never answered from the cache; broken
entries are ignored; runs that share the cache do not tear it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import losslint
import losslint.parallel
from losslint import cache as cache_module
from losslint.cache import Cache, DetachedFix
from losslint.cli import main
from losslint.config import Settings
from losslint.engine import Linter
from losslint.findings import Span

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader
    from data import Samples

    loader = DataLoader(Samples(), batch_size=64, shuffle=True)
    """
)


def data_py(length: int) -> str:
    return textwrap.dedent(
        f"""\
        from torch.utils.data import Dataset

        class Samples(Dataset):
            def __len__(self):
                return {length}

            def __getitem__(self, i):
                return i
        """
    )


UTIL = "import os\n\nROOT = os.getcwd()\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'proj'\n")  # a project root: the cache goes there
    (root / "train.py").write_text(TRAIN)
    (root / "data.py").write_text(data_py(1000))
    (root / "util.py").write_text(UTIL)
    return root


def lint(root: Path, cache_dir: Path | None, settings: Settings | None = None, **run) -> list[tuple]:
    linter = Linter(settings or Settings(), jobs=1, cache=Cache(cache_dir) if cache_dir else None)
    run.setdefault("fix_edits", False)  # (with edits, files with fixable findings are checked again)
    report = linter.run([root], **run)
    return [(Path(f.path).name, f.span.line, f.code, f.message, f.severity.value) for f in report.findings]


class ParseCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = losslint.parallel.source_from_bytes

        def counting(source, data):
            self.count += 1
            return original(source, data)

        monkeypatch.setattr(losslint.parallel, "source_from_bytes", counting)


def test_warm_run_parses_nothing_and_reports_the_same(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold = lint(project, cache_dir)
    assert [(name, code) for name, _, code, _, _ in cold] == [("train.py", "LL201")]
    parses = ParseCounter(monkeypatch)
    assert lint(project, cache_dir) == cold
    assert parses.count == 0


def test_another_files_facts_invalidate_the_findings_that_depend_on_them(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]
    (project / "data.py").write_text(data_py(1024))  # 1024 % 64 == 0: no partial batch
    assert lint(project, cache_dir) == []
    (project / "data.py").write_text(data_py(1000))
    parses = ParseCounter(monkeypatch)
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]
    assert parses.count == 2  # data.py scanned, train.py checked again; util.py remembered


def test_a_file_no_rule_reads_keeps_its_entry_when_the_project_changes(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    lint(project, cache_dir)
    (project / "data.py").write_text(data_py(1024))
    parses = ParseCounter(monkeypatch)
    lint(project, cache_dir)
    # data.py changed (scanned again) and train.py depends on the project (checked
    # again); util.py has no rule's trigger word and is answered from the cache.
    assert parses.count == 2


def test_the_files_own_edit_and_the_settings_are_part_of_the_key(project: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]
    (project / "train.py").write_text(TRAIN.replace("shuffle=True)", "shuffle=True, drop_last=True)"))
    assert lint(project, cache_dir) == []
    (project / "train.py").write_text(TRAIN)
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]
    assert lint(project, cache_dir, Settings(ignore=["LL201"])) == []
    assert [f[2] for f in lint(project, cache_dir, Settings(dataset_sizes={"Samples": 640}))] == []
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]


def test_a_new_losslint_never_reads_the_old_entries(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    lint(project, cache_dir)
    old_roots = {p.name for p in cache_dir.iterdir() if p.is_dir()}
    monkeypatch.setattr(losslint, "__version__", "999.0")
    cache_module.code_digest.cache_clear()
    try:
        parses = ParseCounter(monkeypatch)
        assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]
        assert parses.count == 3  # every file scanned again (train.py checked on the same parse)
        new_roots = {p.name for p in cache_dir.iterdir() if p.is_dir()}
        assert new_roots and not (new_roots & old_roots)  # the old build's entries are gone
    finally:
        monkeypatch.undo()
        cache_module.code_digest.cache_clear()


def test_corrupt_and_truncated_entries_are_ignored_and_rewritten(project: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    cold = lint(project, cache_dir)
    entries = [p for p in cache_dir.rglob("*") if p.is_file() and p.name != ".gitignore"]
    assert len(entries) == 2  # the files' state and the run's findings
    for number, entry in enumerate(entries):
        blob = entry.read_bytes()
        if number % 3 == 0:
            entry.write_bytes(blob[: len(blob) // 2])  # torn
        elif number % 3 == 1:
            entry.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0xFF]))  # a flipped byte
        else:
            entry.write_bytes(b"")
    assert lint(project, cache_dir) == cold
    rewritten = [p for p in cache_dir.rglob("*") if p.is_file() and p.name != ".gitignore"]
    assert all(Cache(cache_dir).get(p.parent.parent.name, p.name) is not None for p in rewritten)


def test_a_crash_is_never_cached(project: Path, tmp_path: Path, monkeypatch):
    from losslint.rules.partial_batch_torch import PartialLastBatch

    cache_dir = tmp_path / "cache"

    def crash(self, ctx):
        raise RuntimeError("boom")

    with monkeypatch.context() as patched:
        patched.setattr(PartialLastBatch, "check", crash)
        assert "LL005" in [f[2] for f in lint(project, cache_dir)]
    assert [f[2] for f in lint(project, cache_dir)] == ["LL201"]


def test_fixes_carry_their_edits_when_asked_and_fix_runs_never_use_the_cache(project: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    linter = Linter(Settings(), jobs=1, cache=Cache(cache_dir))
    linter.run([project], fix_edits=False)
    warm = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project], fix_edits=False).findings
    assert isinstance(warm[0].fix, DetachedFix) and warm[0].fix.description
    reattached = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project]).findings
    assert reattached[0].fix is not None and not isinstance(reattached[0].fix, DetachedFix) and reattached[0].fix.edits
    # The cache holds train.py's finding; a fix run computes afresh and fixes it.
    report = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project], fix=True)
    assert sum(r.fixed for r in report.files) == 1
    assert "drop_last=True" in (project / "train.py").read_text()
    assert lint(project, cache_dir) == []


def run_cli(args: list[str], cwd: Path) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def test_cli_cache_location_gitignore_and_no_cache(project: Path, monkeypatch):
    monkeypatch.delenv(cache_module.ENV_CACHE_DIR, raising=False)
    code, out = run_cli(["check", "--no-cache", "."], project)
    assert code == 1 and "LL201" in out
    assert not (project / ".losslint_cache").exists()
    first = run_cli(["check", "."], project)
    assert (project / ".losslint_cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert run_cli(["check", "."], project) == first
    # The cache is never linted, nor walked into.
    assert ".losslint_cache" not in first[1]


def test_cli_json_edits_are_the_same_from_the_cache(project: Path, monkeypatch):
    monkeypatch.delenv(cache_module.ENV_CACHE_DIR, raising=False)
    cold = run_cli(["check", "--output-format", "json", "."], project)
    warm = run_cli(["check", "--output-format", "json", "."], project)
    assert cold == warm
    (finding,) = json.loads(cold[1])
    assert finding["fix"]["edits"], finding


@pytest.mark.slow
def test_concurrent_runs_sharing_the_cache_do_not_tear_it(project: Path, tmp_path: Path):
    for number in range(30):  # enough files that the two runs overlap
        (project / f"mod{number}.py").write_text(f"import torch\nLOSS_SCALE = {number}\n\ndef loss(x):\n    return x.sum() / {number + 1}\n")
    cache_dir = tmp_path / "cache"
    env = {**os.environ, cache_module.ENV_CACHE_DIR: str(cache_dir)}
    command = [sys.executable, "-m", "losslint", "check", "--output-format", "concise", "--no-progress", "-j", "1", str(project)]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert len({out for out, _ in outputs}) == 1, outputs
    assert all(run.returncode == 1 for run in runs), outputs
    assert not [p for p in cache_dir.rglob(".tmp-*")]  # no temporary file left behind
    warm = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert warm.stdout == outputs[0][0]


def test_json_edits_of_a_cross_file_finding_from_a_replayed_run(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    edits = []
    for run in range(3):  # cold, replayed, replayed
        if run:
            parses = ParseCounter(monkeypatch)
        findings = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project]).findings
        (finding,) = findings  # LL201 needs data.py's facts (N=1000)
        assert finding.code == "LL201" and finding.fix.line_edits
        edits.append(finding.fix.line_edits)
        if run:
            assert parses.count == 0  # the edits came from the cache with the finding
    assert edits[0] == edits[1] == edits[2]
    assert "drop_last=True" in edits[0][0].content


def test_a_run_that_wants_edits_after_one_that_did_not(project: Path, tmp_path: Path, monkeypatch):
    """A text run caches findings without line edits; a JSON run then checks only
    the files whose fixes lack them, and a text run reuses the JSON run's entries."""
    cache_dir = tmp_path / "cache"
    (project / "clean.py").write_text("import torch\nfrom torch.utils.data import DataLoader\n\nX = 1\n")
    lint(project, cache_dir, fix_edits=False)
    parses = ParseCounter(monkeypatch)
    (finding,) = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project], fix_edits=True).findings
    assert finding.fix.line_edits and parses.count == 1  # train.py only
    parses.count = 0
    (finding,) = Linter(Settings(), jobs=1, cache=Cache(cache_dir)).run([project], fix_edits=False).findings
    assert finding.fix.line_edits and parses.count == 0


def test_a_run_reads_one_entry_or_two(project: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cold = lint(project, cache_dir)
    reads = []
    original = Cache.get

    def counting(self, kind, key):
        reads.append(kind)
        return original(self, kind, key)

    monkeypatch.setattr(Cache, "get", counting)
    assert lint(project, cache_dir) == cold
    assert reads == ["run"]
    (project / "util.py").write_text(UTIL + "\nHOME = 1\n")
    reads.clear()
    assert lint(project, cache_dir) == cold
    assert reads == ["run", "files"]  # a change: the files' last state, one entry


# -- entries are data: a crafted entry never runs code ------------------------------


class _RunsCode:
    """A pickle that, when loaded, creates ``marker`` (as a poisoned entry would run anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _checksummed(magic: bytes, payload: bytes) -> bytes:
    import hashlib

    return magic + hashlib.blake2b(payload, digest_size=16).digest() + payload


def _crafted_entries(marker: Path) -> dict[str, bytes]:
    import pickle

    code = pickle.dumps(_RunsCode(marker))
    return {
        "old format, pickle": _checksummed(b"LLC1", code),
        "new magic, pickle": _checksummed(cache_module._MAGIC, code),
        "a type off the allow-list": _checksummed(
            cache_module._MAGIC,
            json.dumps({"~": "o", "n": "os.system", "v": {"command": f"touch {marker}"}}).encode(),
        ),
        "a losslint module's function": _checksummed(
            cache_module._MAGIC,
            json.dumps({"~": "o", "n": "losslint.fixes.write_atomic", "v": {"path": str(marker), "text": ""}}).encode(),
        ),
        "an allowed type with a field of the wrong type": _checksummed(
            cache_module._MAGIC,
            json.dumps({"~": "t", "v": ["x", [[{"~": "o", "n": "losslint.findings.Span", "v": {"line": "1", "column": 0, "end_line": 1, "end_column": 0}}]]]}).encode(),
        ),
    }


@pytest.mark.parametrize("kind", ["old format, pickle", "new magic, pickle", "a type off the allow-list", "a losslint module's function", "an allowed type with a field of the wrong type"])
def test_a_crafted_entry_is_a_miss_and_runs_no_code(project: Path, tmp_path: Path, monkeypatch, kind: str):
    monkeypatch.delenv(cache_module.ENV_CACHE_DIR, raising=False)
    marker = tmp_path / "code-ran"
    expected = run_cli(["check", "--no-cache", "--output-format", "json", "."], project)
    run_cli(["check", "."], project)  # the entries' paths (computable offline from the paths and the settings)
    entries = [p for p in (project / ".losslint_cache").rglob("*") if p.is_file() and p.name != ".gitignore"]
    assert {p.parent.parent.name for p in entries} == {"run", "files"}
    for entry in entries:
        entry.write_bytes(_crafted_entries(marker)[kind])
    assert run_cli(["check", "--output-format", "json", "."], project) == expected
    assert not marker.exists()
    # The poisoned entries were replaced by good ones.
    assert all(Cache(project / ".losslint_cache").get(p.parent.parent.name, p.name) is not None for p in entries)


def test_the_pickle_really_would_have_run_code(tmp_path: Path):
    import pickle

    marker = tmp_path / "code-ran"
    pickle.loads(pickle.dumps(_RunsCode(marker)))  # what the old cache did with an entry
    assert marker.exists()


def test_every_fixtures_facts_and_findings_survive_the_cache(tmp_path: Path):
    """Every kind of family fact the collectors keep must round-trip through the
    cache (a kind the allow-list did not know would make its module's entry be
    silently never written)."""
    from losslint.discovery import Target
    from losslint.parallel import scan_file

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    linter = Linter(Settings(select=["ALL"]), jobs=1)
    extras = set()
    for path in sorted(fixtures.rglob("*.py")):
        scan, _ = scan_file(linter, Target(path, str(path)), path.stem, path.read_bytes())
        assert cache_module.decode(json.loads(json.dumps(cache_module.encode(scan)))) == scan, path
        extras |= set(scan.facts.family) if scan.facts else set()
    assert {"ModuleMomentum", "LightningClasses", "BatchingCounts"} <= extras  # the dataclass-valued facts were exercised
    findings = Linter(Settings(select=["ALL"]), jobs=1).run([fixtures]).findings
    portable = [cache_module.portable(f) for f in findings]
    assert cache_module.decode(json.loads(json.dumps(cache_module.encode(portable)))) == portable


def test_a_value_the_schema_does_not_know_is_not_written(tmp_path: Path):
    cache = Cache(tmp_path / "cache")
    cache.put("files", "ab" * 20, {"x": object()})
    assert cache.get("files", "ab" * 20) is None
    cache.put("files", "cd" * 20, {"x": ({1, 2}, frozenset({"a"}), (1.5, None), [True])})
    assert cache.get("files", "cd" * 20) == {"x": ({1, 2}, frozenset({"a"}), (1.5, None), [True])}
    span = {"~": "o", "n": "losslint.findings.Span", "v": {"line": 1, "column": 0, "end_line": 1, "end_column": 0}}
    assert cache_module.decode(span) == Span(1, 0, 1, 0)
    for bad in ({**span["v"], "line": "1"}, {**span["v"], "line": True}, {"line": 1}, {**span["v"], "extra": 1}):
        with pytest.raises((ValueError, TypeError, KeyError)):
            cache_module.decode({**span, "v": bad})


def test_a_finding_with_related_locations_round_trips():
    from losslint.findings import Finding, RelatedLocation, Severity

    finding = Finding(
        "LL301",
        "momentum-without-clipping",
        "m",
        Severity.WARNING,
        "train.py",
        Span(9, 4, 9, 20),
        related_locations=(
            RelatedLocation("train.py", Span(3, 12, 3, 40), "the optimizer is built here"),
            RelatedLocation("nb.ipynb", Span(2, 0, 2, 5), "LL201: a partial last batch", cell=4),
        ),
    )
    assert cache_module.decode(json.loads(json.dumps(cache_module.encode(finding)))) == finding


def test_a_warm_rerun_imports_no_rule_and_replays_the_linked_findings(tmp_path: Path):
    """Issue 15: a re-run that finds every file as it was replays the run's findings,
    already linked (the chain of fixtures/torch_focal_project), without importing a
    rule module or libcst."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    env = {**os.environ, "LOSSLINT_CACHE_DIR": str(tmp_path / "cache")}
    probe = (
        "import sys\nfrom losslint.cli import main\n"
        "try:\n    main(['check', '--exit-zero', '--no-progress', '--output-format', 'json', sys.argv[1]])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('libcst', 'losslint.rules.partial_batch_torch', 'losslint.rules.loss_chain') if m in sys.modules), file=sys.stderr)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", probe, str(fixtures)], env=env, capture_output=True, text=True, timeout=300) for _ in range(2)]
    cold, warm = (json.loads(run.stdout) for run in runs)
    assert cold == warm and any(f["related_locations"] for f in cold)
    assert runs[0].stderr.strip().splitlines()[-1] != "[]"  # (the probe sees the imports of a cold run)
    assert runs[1].stderr.strip().splitlines()[-1] == "[]", runs[1].stderr
