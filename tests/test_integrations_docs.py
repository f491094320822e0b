"""The snippets of docs/integrations.md, run as far as this machine can without the
editors: every language server configuration names a command that starts the
server and completes an LSP handshake; the ALE and flycheck commands run on a
buffer piped to stdin and their error patterns read every line they print; the
VS Code extension is valid JavaScript and JSON; the GitHub workflow's losslint
steps run and their SARIF validates."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # language servers, Vim, node and losslint processes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)


def section(heading: str) -> str:
    start = DOC.index(heading)
    following = re.search(r"^#{2,3} ", DOC[start + len(heading):], flags=re.MULTILINE)
    return DOC[start: start + len(heading) + (following.start() if following else len(DOC))]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def losslint_command(words: list[str]) -> list[str]:
    """The snippet's command, run with this interpreter's losslint."""
    assert words[0] == "losslint", words
    return [sys.executable, "-m", "losslint", *words[1:]]


def handshake(command: list[str], cwd: Path) -> dict:
    """initialize / initialized / didOpen / shutdown with the server the snippet
    starts: returns the diagnostics published for train.py."""
    from test_integrations_lsp import Client, open_document

    assert command == [sys.executable, "-m", "losslint", "lsp"]
    client = Client(cwd)  # starts exactly that command
    try:
        client.request("initialize", {"processId": None, "rootUri": cwd.as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        return open_document(client, cwd / "train.py", TRAIN)
    finally:
        client.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def test_neovim_snippets_start_the_server(project: Path):
    lua = blocks(section("### Neovim (0.10 or later)"), "lua")
    assert len(lua) == 2 and "vim.fs.root(args.buf" in lua[0] and "vim.lsp.enable(\"losslint\")" in lua[1]
    for snippet in lua:
        [cmd] = re.findall(r"cmd = \{ (.*?) \}", snippet)
        words = [w.strip().strip('"') for w in cmd.split(",")]
        assert words == ["losslint", "lsp"]
        [diagnostic] = handshake(losslint_command(words), project)["diagnostics"]
        assert diagnostic["code"] == "LL201"


def test_helix_snippet_is_valid_toml_and_starts_the_server(project: Path):
    [snippet] = blocks(section("### Helix"), "toml")
    config = tomllib.loads(snippet)
    server = config["language-server"]["losslint"]
    assert "losslint" in config["language"][0]["language-servers"]
    assert handshake(losslint_command([server["command"], *server["args"]]), project)["diagnostics"]


def test_vscode_extension_is_valid_and_starts_the_server(project: Path, tmp_path: Path):
    text = section("### VS Code")
    package, *settings = blocks(text, "json")
    manifest = json.loads(package)
    assert manifest["main"] == "./extension.js" and "vscode-languageclient" in manifest["dependencies"]
    assert json.loads("{" + settings[0] + "}")["[python]"]["editor.codeActionsOnSave"] == {"source.fixAll.losslint": "explicit"}
    [extension] = blocks(text, "js")
    [server] = re.findall(r"\{ command: \"(\w+)\", args: \[(.*?)\] \}", extension)
    words = [server[0], *(w.strip().strip('"') for w in server[1].split(","))]
    assert handshake(losslint_command(words), project)["diagnostics"]
    if shutil.which("node"):
        (tmp_path / "extension.js").write_text(extension)
        done = subprocess.run(["node", "--check", str(tmp_path / "extension.js")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# ALE's ale#handlers#unix#HandleAsWarning (autoload/ale/handlers/unix.vim), as a Python pattern.
ALE_UNIX_FORMAT = re.compile(r"^[a-zA-Z]?:?[^:]+:(\d+):?(\d+)?:? ?(.+)$")


def ale_linter(tmp_path: Path) -> dict:
    """The ALE snippet sourced by the real Vim, with ale#linter#Define stubbed to
    hand back the linter it defines."""
    [snippet] = blocks(section("### Vim (ALE) and Emacs (flycheck)"), "vim")
    if shutil.which("vim") is None:
        command = re.search(r"'command': '(.*?)'", snippet).group(1)  # type: ignore[union-attr]
        return {"command": command, "callback": re.search(r"'callback': '(.*?)'", snippet).group(1)}  # type: ignore[union-attr]
    (tmp_path / "snippet.vim").write_text(snippet)
    out = tmp_path / "linter.json"
    script = tmp_path / "run.vim"
    stub = tmp_path / "runtime" / "autoload" / "ale" / "linter.vim"  # where Vim looks for ale#linter#*
    stub.parent.mkdir(parents=True)
    stub.write_text("function! ale#linter#Define(filetype, linter) abort\n  let g:defined = a:linter\nendfunction\n")
    script.write_text(
        f"set runtimepath^={tmp_path / 'runtime'}\n"
        f"source {tmp_path / 'snippet.vim'}\n"
        f"call writefile([json_encode(g:defined)], '{out}')\nqall!\n"
    )
    done = subprocess.run(["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-S", str(script)], capture_output=True, text=True, timeout=60)
    assert out.exists(), done.stdout + done.stderr
    return json.loads(out.read_text())


def test_ale_command_over_stdin_and_its_pattern(project: Path, tmp_path: Path):
    linter = ale_linter(tmp_path)
    assert linter["callback"] == "ale#handlers#unix#HandleAsWarning"
    words = shlex.split(linter["command"].replace("%s", str(project / "train.py")))
    (project / "train.py").write_text("")  # the unsaved buffer is what is linted, not the file
    done = subprocess.run(losslint_command(words), cwd=project, input=TRAIN, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(ALE_UNIX_FORMAT.match(line) for line in lines)
    line, column, message = ALE_UNIX_FORMAT.match(lines[0]).groups()  # type: ignore[union-attr]
    assert (int(line), int(column)) == (5, 16) and message.startswith("LL201 [*] training DataLoader")


def flycheck_pattern(rule: str) -> re.Pattern[str]:
    """flycheck's rx error pattern of the snippet, translated to a Python pattern."""
    body = rule.strip()
    assert body.startswith("(warning line-start") and body.endswith("line-end)")
    translations = [
        ('(file-name)', r"(?P<file>[^:]+)"), ('":"', ":"), ("line", r"(?P<line>\d+)"), ("column", r"(?P<column>\d+)"),
        ('": "', ": "), ('(id "LL" (= 3 digit))', r"(?P<id>LL\d{3})"), ('(optional " [*]")', r"(?: \[\*\])?"),
        ('" "', " "), ("(message)", r"(?P<message>.+)"),
    ]
    middle = body[len("(warning line-start"): -len("line-end)")].strip()
    pattern = ""
    while middle:
        for source, target in translations:
            if middle.startswith(source):
                pattern += target
                middle = middle[len(source):].lstrip()
                break
        else:
            raise AssertionError(f"untranslated flycheck pattern: {middle!r}")
    return re.compile(f"^{pattern}$")


def test_flycheck_command_over_stdin_and_its_pattern(project: Path):
    [snippet] = blocks(section("### Vim (ALE) and Emacs (flycheck)"), "elisp")
    command = re.search(r":command \((.*?)\)\n", snippet, flags=re.DOTALL).group(1)  # type: ignore[union-attr]
    words = shlex.split(command.replace("source-original", str(project / "train.py")))
    assert ":standard-input t" in snippet
    rule = re.search(r":error-patterns\s*\((\(warning .*?line-end\))\)", snippet, flags=re.DOTALL).group(1)  # type: ignore[union-attr]
    pattern = flycheck_pattern(rule)
    done = subprocess.run(losslint_command(words), cwd=project, input=TRAIN, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    matches = [pattern.match(line) for line in done.stdout.splitlines()]
    assert matches and all(matches), done.stdout
    assert (matches[0]["file"], matches[0]["line"], matches[0]["id"]) == ("train.py", "5", "LL201")


def test_github_workflow_steps_run_and_the_sarif_validates(project: Path):
    import yaml
    from test_integrations_output import validate

    workflow = yaml.safe_load(blocks(section("## CI: SARIF and GitHub annotations"), "yaml")[0])
    steps = workflow["jobs"]["losslint"]["steps"]
    runs = [s["run"] for s in steps if s.get("run", "").startswith("losslint ")]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert workflow["jobs"]["losslint"]["permissions"]["security-events"] == "write"
    [command] = runs
    words, _, target = command.partition(" > ")
    assert target == upload["with"]["sarif_file"]
    done = subprocess.run(losslint_command(shlex.split(words)), cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # --exit-zero: the upload step runs
    document = json.loads(done.stdout)
    validate(document)
    assert [r["ruleId"] for r in document["runs"][0]["results"]] == ["LL201"]
