"""`losslint lsp` through a real client: a small JSON-RPC client speaking LSP over
the server's stdin/stdout (initialize, didOpen, publishDiagnostics, codeAction,
applying the returned edit, didChange, didSave)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

# Each test starts a language server process: seconds each. `pytest -m "not slow"` skips them.
pytestmark = pytest.mark.slow

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    train_ds = TensorDataset(torch.randn(1000, 20), torch.randint(0, 10, (1000,)))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    """
)
FIXED = TRAIN.replace("shuffle=True)", "shuffle=True, drop_last=True)")
TIMEOUT = 30


class Client:
    """Just enough of an LSP client: framing, requests, notifications, and answers
    to the server's own requests."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "losslint", "lsp"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "XDG_CACHE_HOME": str(cwd / ".cache")},
        )
        self.messages: queue.Queue = queue.Queue()
        self.pending: list[dict] = []  # messages read while waiting for another
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
            self.messages.put(json.loads(stream.read(int(headers["content-length"]))))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def _next(self) -> dict:
        try:
            message = self.messages.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError("no message from the server in time") from None
        if "method" in message and "id" in message:  # a request from the server
            self.send({"id": message["id"], "result": None})
        return message

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message["result"]
            self.pending.append(message)

    def notification(self, method: str) -> dict:
        for index, message in enumerate(self.pending):
            if message.get("method") == method:
                return self.pending.pop(index)["params"]
        while True:
            message = self._next()
            if message.get("method") == method:
                return message["params"]
            self.pending.append(message)

    def close(self) -> None:
        try:
            self.request("shutdown", None)  # type: ignore[arg-type]
            self.notify("exit", None)  # type: ignore[arg-type]
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


@pytest.fixture
def client(workspace: Path):
    client = Client(workspace)
    result = client.request(
        "initialize",
        {
            "processId": None,
            "rootUri": workspace.as_uri(),
            "workspaceFolders": [{"uri": workspace.as_uri(), "name": "demo"}],
            "capabilities": {"textDocument": {"codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "source"]}}}}},
        },
    )
    client.capabilities = result["capabilities"]
    client.notify("initialized", {})
    yield client
    client.close()


def open_document(client: Client, path: Path, text: str) -> dict:
    client.notify("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}})
    return client.notification("textDocument/publishDiagnostics")


def offset(text: str, position: dict) -> int:
    """A UTF-16 LSP position as an offset into ``text``."""
    lines = text.splitlines(keepends=True)
    before = "".join(lines[: position["line"]])
    line = lines[position["line"]] if position["line"] < len(lines) else ""
    units, chars = 0, 0
    while units < position["character"] and chars < len(line):
        units += 2 if ord(line[chars]) > 0xFFFF else 1
        chars += 1
    return len(before) + chars


def apply(text: str, edit: dict, uri: str) -> str:
    if "documentChanges" in edit and edit["documentChanges"]:
        [change] = edit["documentChanges"]
        assert change["textDocument"]["uri"] == uri
        edits = change["edits"]
    else:
        edits = edit["changes"][uri]
    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        start, end = offset(text, e["range"]["start"]), offset(text, e["range"]["end"])
        text = text[:start] + e["newText"] + text[end:]
    return text


def test_capabilities(client: Client):
    kinds = client.capabilities["codeActionProvider"]["codeActionKinds"]
    assert "quickfix" in kinds and "source.fixAll.losslint" in kinds
    assert client.capabilities["textDocumentSync"]


def test_diagnostics_quick_fix_and_fix_all(client: Client, workspace: Path):
    uri = (workspace / "train.py").as_uri()
    published = open_document(client, workspace / "train.py", TRAIN)
    assert published["uri"] == uri
    [diagnostic] = published["diagnostics"]
    assert diagnostic["code"] == "LL201" and diagnostic["source"] == "losslint"
    assert diagnostic["severity"] == 2  # warning
    column = TRAIN.splitlines()[4].index("DataLoader")
    assert diagnostic["range"]["start"] == {"line": 4, "character": column}
    assert "N=1000, B=64" in diagnostic["message"]
    doc = Path(unquote(urlparse(diagnostic["codeDescription"]["href"]).path))
    assert doc.read_text().startswith("# LL201 partial-last-batch")

    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}},
    )
    titles = [a["title"] for a in actions]
    assert titles == ["LL201: add drop_last=True", "losslint: fix all"]
    quick_fix = actions[0]
    assert quick_fix["kind"] == "quickfix" and quick_fix["isPreferred"] is True
    assert apply(TRAIN, quick_fix["edit"], uri) == FIXED
    assert apply(TRAIN, actions[1]["edit"], uri) == FIXED

    # The editor applies the edit: the document changes, the diagnostic goes.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": apply(TRAIN, quick_fix["edit"], uri)}]},
    )
    assert client.notification("textDocument/publishDiagnostics")["diagnostics"] == []
    assert client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": []}}) == []


def test_related_information_names_the_other_causes_of_the_chain(client: Client, workspace: Path):
    text = TRAIN + textwrap.dedent(
        """\
        model = torch.nn.Linear(20, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y) / x.size(0)
            loss.backward()
            optimizer.step()
        """
    )
    uri = (workspace / "train.py").as_uri()
    diagnostics = {d["code"]: d for d in open_document(client, workspace / "train.py", text)["diagnostics"]}
    assert {"LL101", "LL201", "LL301"} <= set(diagnostics)
    # The chain's links (the rule's own evidence, where N comes from, may come first).
    related = [r for r in diagnostics["LL201"]["relatedInformation"] if r["message"].endswith("on the same training path")]
    assert [r["location"]["uri"] for r in related] == [uri, uri]
    assert [r["location"]["range"]["start"] for r in related] == [diagnostics["LL101"]["range"]["start"], diagnostics["LL301"]["range"]["start"]]
    assert related[0]["message"].startswith("LL101: a loss that scales as 1/batch size")


def test_fix_all_on_save_kind(client: Client, workspace: Path):
    uri = (workspace / "train.py").as_uri()
    open_document(client, workspace / "train.py", TRAIN)
    everywhere = {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": everywhere, "context": {"diagnostics": [], "only": ["source.fixAll"]}},
    )
    [action] = actions
    assert action["kind"] == "source.fixAll.losslint"
    assert apply(TRAIN, action["edit"], uri) == FIXED


def test_unsaved_text_and_utf16_columns(client: Client, workspace: Path):
    # The buffer, not the file on disk, is linted; a character outside the BMP is two UTF-16 units.
    text = TRAIN.replace("train_loader = ", 'note = "🔥"; train_loader = ')
    [diagnostic] = open_document(client, workspace / "train.py", text)["diagnostics"]
    line = text.splitlines()[4]
    assert diagnostic["range"]["start"]["character"] == line.index("DataLoader") + 1


def test_facts_from_other_files_and_refresh_on_save(client: Client, workspace: Path):
    (workspace / "data.py").write_text(
        "from torch.utils.data import Dataset\n\nclass Windows(Dataset):\n    def __len__(self):\n        return 1000\n"
    )
    text = "from torch.utils.data import DataLoader\nfrom data import Windows\n\nloader = DataLoader(Windows(), batch_size=64, shuffle=True)\n"
    (workspace / "loop.py").write_text(text)
    [diagnostic] = open_document(client, workspace / "loop.py", text)["diagnostics"]
    assert "N=1000, B=64" in diagnostic["message"]
    # data.py changes on disk and is saved: loop.py is linted again with the new length.
    (workspace / "data.py").write_text((workspace / "data.py").read_text().replace("1000", "1024"))
    client.notify("textDocument/didSave", {"textDocument": {"uri": (workspace / "data.py").as_uri()}})
    for _ in range(3):
        published = client.notification("textDocument/publishDiagnostics")
        if published["uri"] == (workspace / "loop.py").as_uri():
            break
    assert published["diagnostics"] == []  # 1024 % 64 == 0


def test_workspace_configuration_is_respected(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nignore = ["LL201"]\n')
    (tmp_path / "train.py").write_text(TRAIN)
    client = Client(tmp_path)
    try:
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        assert open_document(client, tmp_path / "train.py", TRAIN)["diagnostics"] == []
    finally:
        client.close()


def test_close_clears_diagnostics(client: Client, workspace: Path):
    uri = (workspace / "train.py").as_uri()
    assert open_document(client, workspace / "train.py", TRAIN)["diagnostics"]
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.notification("textDocument/publishDiagnostics") == {"uri": uri, "diagnostics": []}


def test_the_command_and_the_server_import_no_protocol_library():
    done = subprocess.run([sys.executable, "-m", "losslint", "lsp", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "language server" in done.stdout
    # The server speaks the protocol itself: no pygls/lsprotocol (about 400 ms of CPU to
    # import) at its start, and `losslint check` imports no part of the server.
    probe = "import sys, losslint.lsp.server; print(sorted(m for m in ('pygls', 'lsprotocol', 'cattrs') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"
    probe = "import sys, losslint.cli; print('losslint.lsp.server' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_incremental_changes_in_utf16_units(client: Client, workspace: Path):
    # A range counted in UTF-16 units after a character outside the BMP (two units).
    uri = (workspace / "train.py").as_uri()
    text = TRAIN.replace("train_loader = ", 'note = "🔥"; train_loader = ')
    assert open_document(client, workspace / "train.py", text)["diagnostics"]
    line = text.splitlines()[4]
    start = line.index("shuffle=True)") + len("shuffle=True") + 1  # + 1: the emoji's second unit
    change = {"range": {"start": {"line": 4, "character": start}, "end": {"line": 4, "character": start}}, "text": ", drop_last=True"}
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]})
    published = client.notification("textDocument/publishDiagnostics")
    assert published["version"] == 2 and published["diagnostics"] == []  # the edit landed inside the call
    # A deletion across a line ending, then an insertion: the changes apply in order.
    changes = [
        {"range": {"start": {"line": 3, "character": 0}, "end": {"line": 4, "character": 0}}, "text": ""},
        {"range": {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 0}}, "text": TRAIN.splitlines(keepends=True)[3]},
    ]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3}, "contentChanges": changes})
    assert client.notification("textDocument/publishDiagnostics")["diagnostics"] == []
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 9, "character": 0}}, "context": {"diagnostics": []}},
    )
    assert actions == []  # the server's text is the edited one: nothing left to fix


def test_position_encoding_negotiated(workspace: Path):
    text = TRAIN.replace("train_loader = ", 'note = "🔥"; train_loader = ')
    line = text.splitlines()[4]
    for offered, chosen, character in (
        (["utf-8", "utf-16"], "utf-8", len(line[: line.index("DataLoader")].encode("utf-8"))),
        (["utf-32", "utf-16"], "utf-32", line.index("DataLoader")),
        (None, "utf-16", line.index("DataLoader") + 1),
    ):
        client = Client(workspace)
        try:
            capabilities = {"general": {"positionEncodings": offered}} if offered else {}
            result = client.request("initialize", {"processId": None, "rootUri": workspace.as_uri(), "capabilities": capabilities})
            assert result["capabilities"]["positionEncoding"] == chosen
            client.notify("initialized", {})
            [diagnostic] = open_document(client, workspace / "train.py", text)["diagnostics"]
            assert diagnostic["range"]["start"]["character"] == character
        finally:
            client.close()


def test_changes_arriving_together_are_linted_on_the_last_text(client: Client, workspace: Path):
    uri = (workspace / "train.py").as_uri()
    assert open_document(client, workspace / "train.py", TRAIN)["diagnostics"]
    texts = [TRAIN + f"print({n})\n" for n in range(5)] + [FIXED]
    for version, text in enumerate(texts, start=2):  # sent at once, as a fast typist's editor does
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]})
    versions = []
    while not versions or versions[-1] != len(texts) + 1:
        published = client.notification("textDocument/publishDiagnostics")
        versions.append(published["version"])
    assert versions == sorted(versions) and published["diagnostics"] == []


def test_protocol_errors_and_shutdown(workspace: Path):
    client = Client(workspace)
    client.request("initialize", {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}})
    client.send({"id": 77, "method": "textDocument/hover", "params": {}})
    while (answer := client._next()).get("id") != 77:
        pass
    assert answer["error"]["code"] == -32601  # MethodNotFound
    client.notify("$/cancelRequest", {"id": 1})  # notifications it does not know are ignored
    assert client.request("shutdown", None) is None  # type: ignore[arg-type]
    client.notify("exit", None)  # type: ignore[arg-type]
    assert client.process.wait(timeout=10) == 0


def test_quick_fix_anywhere_on_the_diagnostics_lines_and_for_listed_diagnostics(client: Client, workspace: Path):
    uri = (workspace / "train.py").as_uri()
    [diagnostic] = open_document(client, workspace / "train.py", TRAIN)["diagnostics"]
    line = diagnostic["range"]["start"]["line"]

    def titles(range_: dict, diagnostics: list) -> list[str]:
        actions = client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": range_, "context": {"diagnostics": diagnostics}})
        return [a["title"] for a in actions]

    # The cursor at the start of the line, before the finding's columns: still offered.
    cursor = {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}
    assert "LL201: add drop_last=True" in titles(cursor, [])
    # Elsewhere in the file, but the client names the diagnostic (a click on it in a problems list).
    elsewhere = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    assert "LL201: add drop_last=True" in titles(elsewhere, [diagnostic])
    # Elsewhere, no diagnostic named: only "fix all".
    assert titles(elsewhere, []) == ["losslint: fix all"]


def test_configuration_changes_are_watched_and_open_documents_relinted(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "train.py").write_text(TRAIN)
    client = Client(tmp_path)
    try:
        capabilities = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": capabilities})
        client.notify("initialized", {})
        registration = client.notification("client/registerCapability")["registrations"][0]
        assert registration["method"] == "workspace/didChangeWatchedFiles"
        globs = [w["globPattern"] for w in registration["registerOptions"]["watchers"]]
        assert "**/pyproject.toml" in globs and "**/losslint.toml" in globs
        assert open_document(client, tmp_path / "train.py", TRAIN)["diagnostics"]
        # The user ignores LL201 in the configuration: no restart needed.
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n\n[tool.losslint]\nignore = [\"LL201\"]\n")
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "pyproject.toml").as_uri(), "type": 2}]})
        assert client.notification("textDocument/publishDiagnostics")["diagnostics"] == []
        # And a new losslint.toml next to it takes over (type 1: created).
        (tmp_path / "losslint.toml").write_text('select = ["LL2"]\n')
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "losslint.toml").as_uri(), "type": 1}]})
        assert [d["code"] for d in client.notification("textDocument/publishDiagnostics")["diagnostics"]] == ["LL201"]
    finally:
        client.close()


# -- training configs (issue 13): a config's own diagnostics, and the scripts reading it --------

READS_YAML = textwrap.dedent(
    """\
    import torch, yaml
    from torch.utils.data import DataLoader, TensorDataset

    cfg = yaml.safe_load(open("conf.yaml"))
    ds = TensorDataset(torch.randn(1000, 4))
    loader = DataLoader(ds, batch_size=cfg["data"]["batch_size"], shuffle=True)
    """
)


def published_for(client: Client, uri: str) -> dict:
    """The next diagnostics published for ``uri`` (others' on the way are skipped)."""
    for _ in range(5):
        published = client.notification("textDocument/publishDiagnostics")
        if published["uri"] == uri:
            return published
    raise AssertionError(f"no diagnostics for {uri}")


def batch_messages(published: dict) -> list[str]:
    return [d["message"] for d in published["diagnostics"] if d["code"] == "LL201"]


def test_scripts_reading_a_config_are_relinted_when_it_changes_on_disk_or_in_its_buffer(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "train.py").write_text(READS_YAML)
    config = tmp_path / "conf.yaml"
    config.write_text("data:\n  batch_size: 48\n")
    train_uri, config_uri = (tmp_path / "train.py").as_uri(), config.as_uri()
    client = Client(tmp_path)
    try:
        capabilities = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": capabilities})
        client.notify("initialized", {})
        registration = client.notification("client/registerCapability")["registrations"][0]
        assert "**/*.yaml" in [w["globPattern"] for w in registration["registerOptions"]["watchers"]]
        [message] = batch_messages(open_document(client, tmp_path / "train.py", READS_YAML))
        assert "B=48" in message
        # The config changes on disk (another tool, a git checkout): the script is linted again.
        config.write_text("data:\n  batch_size: 64\n")
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": config_uri, "type": 2}]})
        [message] = batch_messages(published_for(client, train_uri))
        assert "B=64" in message
        # The config is opened and edited, not saved: the script is judged on the buffer.
        client.notify("textDocument/didOpen", {"textDocument": {"uri": config_uri, "languageId": "yaml", "version": 1, "text": config.read_text()}})
        assert published_for(client, config_uri)["diagnostics"] == []  # nothing to report in the YAML itself
        client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": config_uri, "version": 2}, "contentChanges": [{"text": "data:\n  batch_size: 40\n"}]},
        )
        assert batch_messages(published_for(client, train_uri)) == []  # 1000 % 40 == 0
        # A Python file linted meanwhile sees the buffer too, not the disk.
        client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": train_uri, "version": 2}, "contentChanges": [{"text": READS_YAML + "\n"}]},
        )
        assert batch_messages(published_for(client, train_uri)) == []
    finally:
        client.close()


def test_an_open_config_gets_its_findings_and_quick_fix(tmp_path: Path):
    source = Path(__file__).resolve().parent.parent / "fixtures" / "configs" / "deepspeed_json"
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    for name in ("train.py", "ds_config.json"):
        (tmp_path / name).write_text((source / name).read_text())
    config = tmp_path / "ds_config.json"
    text, uri = config.read_text(), config.as_uri()
    client = Client(tmp_path)
    try:
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "json", "version": 1, "text": text}})
        [diagnostic] = published_for(client, uri)["diagnostics"]
        assert diagnostic["code"] == "LL301" and diagnostic["range"]["start"]["line"] == 3  # the "optimizer" key
        assert any(r["location"]["uri"] == (tmp_path / "train.py").as_uri() for r in diagnostic["relatedInformation"])
        actions = client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}})
        quick_fix = next(a for a in actions if a["title"].startswith("LL301"))
        fixed = apply(text, quick_fix["edit"], uri)
        assert '"gradient_clipping": 1.0' in fixed and json.loads(fixed)["optimizer"] == json.loads(text)["optimizer"]
        # The editor applies it: the finding goes, without a save.
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]})
        assert published_for(client, uri)["diagnostics"] == []
    finally:
        client.close()


def test_project_facts_are_read_back_from_the_cache_by_the_next_process(tmp_path: Path, monkeypatch):
    # An editor started again (or the next flake8 run) reads each unchanged file's facts
    # from losslint's cache instead of parsing the project again.
    from losslint import single_file
    from losslint.checking import FileChecker

    monkeypatch.setenv("LOSSLINT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    data = tmp_path / "data.py"
    data.write_text("from torch.utils.data import Dataset\n\nclass Windows(Dataset):\n    def __len__(self):\n        return 1000\n")
    loop = tmp_path / "loop.py"
    loop.write_text("from torch.utils.data import DataLoader\nfrom data import Windows\n\nloader = DataLoader(Windows(), batch_size=64, shuffle=True)\n")

    def messages() -> list[str]:
        single_file.forget_settings()  # as a new process: nothing held in memory
        return [f.message for f in single_file.prepare(loop, loop.read_text()).findings()]

    [first] = messages()
    assert "N=1000, B=64" in first
    assert len(list((tmp_path / "cache").rglob(f"{single_file.FACTS_KIND}/*/*"))) == 2
    with monkeypatch.context() as patched:
        def collected_again(self, source):
            raise AssertionError(f"facts collected again: {source.target.path}")

        patched.setattr(FileChecker, "module_facts", collected_again)
        assert messages() == [first]
    # A file whose bytes changed is collected again.
    data.write_text(data.read_text().replace("1000", "1024"))
    assert messages() == []  # 1024 % 64 == 0
    single_file.forget_settings()
