"""Nothing crashes the run. Generated programs (hypothesmith) and mutated real
files (truncated, lines deleted, bytes flipped) never raise and never make a rule
crash: every failure is an LL0xx finding; a fix either gives code that parses or
is refused (LL004). Bad input end to end through the command line gets a clear
message and the right exit code while the other files are still linted and
nothing is written half. And ``check`` never runs the code it reads.

The examples here are bounded to keep CI fast; the long fuzzing run is the same
tests with more examples (README, "Fuzzing"):

    LOSSLINT_FUZZ_EXAMPLES=3000 python -m pytest tests/test_robustness.py -k fuzz
"""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from losslint.config import Settings
from losslint.engine import fix_text, lint_text

hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")
from hypothesis import HealthCheck, given, settings as hypothesis_settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("LOSSLINT_FUZZ_EXAMPLES", "0"))
ALL_RULES = Settings(select=["ALL"])
# Real training code to mutate: the fixtures (every framework the rules know).
SEEDS = sorted(p for p in (REPO / "fixtures").rglob("*.py") if p.stat().st_size < 20_000)


def assert_no_crash(text: str, path: str = "fuzzed.py") -> None:
    findings = lint_text(text, ALL_RULES, path=path)
    crashes = [f.message for f in findings if f.code == "LL005"]
    assert not crashes, crashes
    assert all(f.code.startswith("LL") and f.span.line >= 1 for f in findings)
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        assert any(f.code in ("LL002", "LL003") for f in findings), "an unparsable file must be reported"
        return
    fixed, remaining = fix_text(text, ALL_RULES, unsafe=True, path=path)
    if fixed != text:
        ast.parse(fixed)  # a fix only ever produces code that parses...
    else:  # ...or is refused and reported
        fixable = [f for f in remaining if f.fix is not None]
        assert not fixable or any(f.code == "LL004" for f in remaining), fixable


# -- generated programs -----------------------------------------------------------


@hypothesis_settings(
    max_examples=EXAMPLES or 25,
    deadline=None,
    derandomize=not EXAMPLES,  # CI: the same examples every run
    suppress_health_check=list(HealthCheck),
)
@given(source=hypothesmith.from_grammar())
def test_fuzz_generated_programs_never_crash(source: str):
    assert_no_crash(source)


@hypothesis_settings(
    max_examples=EXAMPLES or 15,
    deadline=None,
    derandomize=not EXAMPLES,
    suppress_health_check=list(HealthCheck),
)
@given(source=hypothesmith.from_node())
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith's own compile() of odd programs
def test_fuzz_generated_syntax_trees_never_crash(source: str):
    assert_no_crash(source)


# -- mutated real files -------------------------------------------------------------


def mutations(seed: int, text: str) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    data = text.encode("utf-8")
    lines = text.splitlines(keepends=True)
    out = []
    cut = rng.randrange(1, max(len(text), 2))
    out.append(("truncated", text[:cut]))
    kept = [line for line in lines if rng.random() > 0.15]
    out.append(("lines deleted", "".join(kept)))
    if lines:
        start = rng.randrange(len(lines))
        out.append(("a block deleted", "".join(lines[:start] + lines[start + rng.randint(1, 8):])))
        swapped = list(lines)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        swapped[i], swapped[j] = swapped[j], swapped[i]
        out.append(("lines swapped", "".join(swapped)))
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if flipped:
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    out.append(("bytes flipped", bytes(flipped).decode("utf-8", errors="surrogateescape")))
    return out


def mutation_cases() -> list[tuple[str, int]]:
    rounds = max(1, EXAMPLES // max(len(SEEDS), 1)) if EXAMPLES else 1
    return [(p.relative_to(REPO).as_posix(), r) for p in SEEDS for r in range(rounds)]


@pytest.mark.parametrize("seed_file,round_", mutation_cases())
def test_fuzz_mutated_real_files_never_crash(seed_file: str, round_: int):
    text = (REPO / seed_file).read_text(encoding="utf-8")
    for kind, mutated in mutations(zlib.crc32(f"{seed_file}:{round_}".encode()), text):
        try:
            mutated.encode("utf-8")
        except UnicodeEncodeError:  # flipped bytes that are not UTF-8: through the byte path
            assert_bytes_reported(mutated.encode("utf-8", errors="surrogateescape"))
            continue
        try:
            assert_no_crash(mutated, path=Path(seed_file).name)
        except AssertionError as error:
            raise AssertionError(f"{kind} {seed_file}: {error}") from error


def assert_bytes_reported(data: bytes) -> None:
    from losslint.discovery import Target
    from losslint.engine import Linter, SourceFile, parse_source

    linter = Linter(ALL_RULES)
    source = parse_source(SourceFile(Target(Path("x.py"), "x.py"), "x"), data)
    findings = linter.check(source, linter.facts_for([source])).findings
    assert not [f for f in findings if f.code == "LL005"]
    if source.tree is None:
        assert any(f.code in ("LL002", "LL003") for f in findings)


def test_deeply_nested_code_is_a_finding_not_a_crash():
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
    findings = lint_text(deep, ALL_RULES)
    assert [f.code for f in findings] == ["LL003"]
    long_chain = "loss = " + " + ".join(["a"] * 20000) + "\n"
    assert_no_crash(long_chain)


# -- bad input, end to end ------------------------------------------------------------

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)


def losslint(args: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOSSLINT_CACHE_DIR": str(cwd.parent / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "losslint", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "syntax.py").write_text("def train(:\n    pass\n")
    (root / "latin1.py").write_bytes(b"name = '\xe9t\xe9'\n")
    (root / "nul.py").write_bytes(b"x = 1\n\x00\x00\n")
    (root / "binary.py").write_bytes(bytes(range(256)) * 64)
    with open(root / "huge.py", "wb") as out:  # 50 MB, over the default max-file-size
        line = b"x = 1  # padding padding padding padding padding padding padding\n"
        out.write(line * (50 * 1024 * 1024 // len(line) + 1))
    (root / "broken.py").symlink_to(root / "nowhere.py")
    (root / "loop_a.py").symlink_to(root / "loop_b.py")
    (root / "loop_b.py").symlink_to(root / "loop_a.py")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo.py")  # reading it would wait forever
    if os.geteuid() != 0:  # root reads files without permission
        (root / "secret.py").write_text(TRAIN)
        (root / "secret.py").chmod(0)
    # Enough real code (over parallel.PARALLEL_MIN_BYTES) that --jobs 2 uses worker processes.
    for folder in ("losslint", "losslint/rules"):
        for source in sorted((REPO / folder).glob("*.py")):
            (root / f"copy_{folder.replace('/', '_')}_{source.name}").write_bytes(source.read_bytes())
    return root


EXPECTED = {
    "syntax.py": ("LL003", "syntax error"),
    "latin1.py": ("LL002", "cannot be decoded"),
    "nul.py": ("LL002", "NUL byte (line 2)"),
    "binary.py": ("LL002", "NUL byte"),
    "huge.py": ("LL001", "over max-file-size"),
    "broken.py": ("LL001", "broken symbolic link"),
    "loop_a.py": ("LL001", "symbolic links"),
    "loop_b.py": ("LL001", "symbolic links"),
    "missing.py": ("LL001", "no such file"),
    "fifo.py": ("LL001", "not a regular file"),
    "secret.py": ("LL001", "Permission denied"),
    "train.py": ("LL201", "drop_last"),
}


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_bad_input_end_to_end(bad_tree: Path, jobs: str):
    done = losslint(["check", ".", "missing.py", "--output-format", "json", "--jobs", jobs], bad_tree)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    found: dict[str, list[tuple[str, str]]] = {}
    for finding in json.loads(done.stdout):
        found.setdefault(finding["path"], []).append((finding["code"], finding["message"]))
    for name, (code, words) in EXPECTED.items():
        if name == "secret.py" and os.geteuid() == 0:
            continue
        assert any(c == code and words in m for c, m in found[name]), (name, found.get(name))
    assert not [f for fs in found.values() for f in fs if f[0] == "LL005"]
    # The rule modules copied in were linted too (not just skipped).
    assert {p for p in found if p.startswith("copy_")} <= {p.name for p in bad_tree.glob("copy_*.py")}


@pytest.mark.parametrize(
    "name,code,words",
    [(n, c, w) for n, (c, w) in EXPECTED.items() if n not in ("train.py", "loop_b.py", "secret.py")],
)
def test_each_bad_path_alone_has_a_clear_message_and_exit_code(bad_tree: Path, name: str, code: str, words: str):
    done = losslint(["check", name, "--output-format", "concise"], bad_tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{code} " in done.stdout and words in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_fix_next_to_bad_input_writes_whole_files_only(bad_tree: Path):
    before = {p.name: p.read_bytes() for p in bad_tree.iterdir() if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK)}
    done = losslint(["check", ".", "--fix", "--unsafe-fixes", "--output-format", "concise"], bad_tree)
    assert done.returncode == 1, done.stderr
    after = {p.name: p.read_bytes() for p in bad_tree.iterdir() if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK)}
    assert set(after) == set(before)  # no temporary or backup file left
    changed = {name for name in before if after[name] != before[name]}
    assert "train.py" in changed
    for name in changed:
        ast.parse(after[name])  # every written file is whole, and parses
    for name in ("syntax.py", "latin1.py", "nul.py", "binary.py", "huge.py"):
        assert after[name] == before[name]


# -- check never runs the code it reads ------------------------------------------------------


def test_check_never_imports_or_runs_the_linted_code(tmp_path: Path):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    marker = tmp_path / "MARKER"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    (root / "pkg" / "__init__.py").write_text(payload)
    (root / "pkg" / "losses.py").write_text(payload + "def focal(x):\n    return x.mean()\n")
    (root / "conftest.py").write_text(payload)
    (root / "setup.py").write_text(payload)
    (root / "train.py").write_text(
        "import pkg\nfrom pkg.losses import focal\nimport torch\n" + payload + TRAIN + "loss = focal(torch.ones(3)) / 64\n"
    )
    for jobs in ("1", "2"):
        done = losslint(["check", ".", "--select", "ALL", "--jobs", jobs], root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "LL201" in done.stdout
    probe = (
        "import sys\nfrom pathlib import Path\nfrom losslint.config import Settings\nfrom losslint.engine import Linter\n"
        f"Linter(Settings(select=['ALL']), jobs=1).run([Path({str(root)!r})])\n"
        "print(sorted(m for m in sys.modules if m in ('astroid', 'pkg', 'train', 'conftest', 'setup') or m.startswith(('astroid.', 'pkg.'))))\n"
    )
    imported = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    # Neither the project's modules nor astroid (whose inference would import
    # C extensions it cannot read) are ever imported by a check.
    assert imported.stdout.strip() == "[]"
    assert not marker.exists()


# -- a bug of ours is an LL005 finding, never a crash of the run ----------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_crashing_collector_or_rule_is_an_ll005_and_the_rest_is_linted(tmp_path: Path, monkeypatch, jobs: int):
    import losslint.parallel as parallel
    from losslint import project as project_module
    from losslint.engine import Linter
    from losslint.rules.partial_batch_torch import PartialLastBatch

    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 2)
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "collector_bug.py").write_text("import torch\nloss = torch.ones(3).mean()\n")
    (root / "rule_bug.py").write_text(TRAIN.replace("train_ds", "rule_bug_ds"))

    def crashing_collector(tree, source, facts):
        if facts.module == "collector_bug":
            raise KeyError("collector bug")

    original_check = PartialLastBatch.check

    def crashing_rule(self, ctx):
        if ctx.module == "rule_bug":
            raise ZeroDivisionError("rule bug")
        return original_check(self, ctx)

    monkeypatch.setattr(project_module, "_COLLECTORS", [*project_module._COLLECTORS, crashing_collector])
    monkeypatch.setattr(PartialLastBatch, "check", crashing_rule)
    report = Linter(Settings(), jobs=jobs).run([root])
    found = {(Path(f.path).name, f.code) for f in report.findings}
    assert ("train.py", "LL201") in found
    assert ("collector_bug.py", "LL005") in found
    assert ("rule_bug.py", "LL005") in found
    assert report.internal_error
    messages = [f.message for f in report.findings if f.code == "LL005"]
    assert any("collecting project facts crashed" in m and "KeyError" in m for m in messages)
    assert any("LL201 crashed" in m and "ZeroDivisionError" in m for m in messages)
    # lint_text (the editors' and the flake8 plugin's path) survives it too.
    assert "LL005" in [f.code for f in lint_text("import torch\n", path="collector_bug.py")]
