"""Editors: the real YAML language server (npm yaml-language-server, pinned in package-lock.json)
reads the `# yaml-language-server: $schema=...` line of every spec, reports schema errors and offers
completions for layer types, arguments and values. Spoken to over stdio as an editor does (LSP)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, TEST_SPECS

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_editor")

SERVER = ROOT / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
MODELINE = "# yaml-language-server: $schema=../schemas/netspec.schema.json\n"
TIMEOUT = 60


class LanguageServer:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", str(SERVER), "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        self.inbox: queue.Queue = queue.Queue()
        self.next_id = 0
        self.diagnostics: dict[str, list] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                key, _, value = line.decode().partition(":")
                if key.lower() == "content-length":
                    length = int(value)
            self.inbox.put(json.loads(stream.read(length)))

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def _pump(self, until) -> dict:
        end = time.monotonic() + TIMEOUT
        while True:
            try:
                msg = self.inbox.get(timeout=max(0.05, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("the language server did not answer in time") from None
            if "method" in msg and "id" in msg:  # a request from the server: configuration etc.
                items = (msg.get("params") or {}).get("items", [])
                result = [{"validate": True, "completion": True, "hover": True} for _ in items] \
                    if msg["method"] == "workspace/configuration" else None
                self._send({"id": msg["id"], "result": result})
                continue
            if msg.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics[msg["params"]["uri"]] = msg["params"]["diagnostics"]
            if until(msg):
                return msg

    def request(self, method: str, params) -> object:
        self.next_id += 1
        rid = self.next_id
        self._send({"id": rid, "method": method, "params": params})
        msg = self._pump(lambda m: m.get("id") == rid and "method" not in m)
        assert "error" not in msg, msg
        return msg["result"]

    def notify(self, method: str, params) -> None:
        self._send({"method": method, "params": params})

    def open(self, path: Path, text: str) -> list:
        """Open a document (its text need not be on disk) and wait for its diagnostics."""
        uri = path.resolve().as_uri()
        self.diagnostics.pop(uri, None)
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1,
                                                              "text": text}})
        self._pump(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri)
        return self.diagnostics[uri]

    def complete(self, path: Path, line: int, character: int) -> list[str]:
        result = self.request("textDocument/completion", {"textDocument": {"uri": path.resolve().as_uri()},
                                                          "position": {"line": line, "character": character}})
        items = result["items"] if isinstance(result, dict) else result
        return [item["label"] for item in items]

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _install() -> None:
    """`make test` installs the pinned server (npm ci); a bare `pytest` does the same when it is missing."""
    if SERVER.exists():
        return
    npm = shutil.which("npm")
    assert npm, "the editor tests need Node.js and npm (the YAML language server is an npm package)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True,
                   timeout=600)


@pytest.fixture(scope="module")
def server():
    _install()
    assert shutil.which("node"), "the editor tests need Node.js"
    ls = LanguageServer()
    try:
        init = ls.request("initialize", {"processId": os.getpid(), "rootUri": ROOT.as_uri(),
                                         "capabilities": {"workspace": {"configuration": True}}})
        assert init["capabilities"]["completionProvider"]
        ls.notify("initialized", {})
        ls.notify("workspace/didChangeConfiguration",
                  {"settings": {"yaml": {"validate": True, "completion": True, "schemaStore": {"enable": False}}}})
        yield ls
    finally:
        ls.close()


SHIPPED = sorted(SPECS.glob("*.yaml"))


def test_every_shipped_spec_names_the_schema():
    for path in SHIPPED:
        assert path.read_text(encoding="utf-8").startswith(MODELINE), path


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_specs_have_no_diagnostics(server, path):
    assert server.open(path, path.read_text(encoding="utf-8")) == []


# The schema cases of the error corpus, each opened beside specs/ so that the modeline finds the schema.
# Every one must be flagged on the line netspec reports; the message fragment is the server's own.
SCHEMA_CASES = {
    "schema_bad_enum": "Value is not accepted",
    "schema_bad_initializer_type": "Value is not accepted",
    "schema_bad_input_shape": "Value is below the minimum of 1",
    "schema_bad_name": "String does not match the pattern",
    "schema_bad_version": "Value must be 1",
    "schema_bool_for_int": "Incorrect type",
    "schema_missing_required_arg": 'Missing property "units"',
    "schema_negative_units": "Value is below the minimum of 1",
    "schema_unknown_argument": "is not allowed",
    "schema_unknown_top_key": "is not allowed",
}


def _corpus_case(stem: str) -> tuple[str, int]:
    text = (TEST_SPECS / "invalid" / f"{stem}.yaml").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("# expect:"))
    line = int(header.split()[2].split(":")[0])
    return MODELINE + text, line  # the modeline moves every line down by one (0-based: line itself)


@pytest.mark.parametrize("stem", sorted(SCHEMA_CASES), ids=sorted(SCHEMA_CASES))
def test_schema_errors_are_reported_on_their_line(server, stem):
    text, line = _corpus_case(stem)
    diags = server.open(SPECS / f"_editor_{stem}.yaml", text)
    errors = [d for d in diags if d.get("severity") == 1]
    assert errors, f"no error reported for {stem}"
    on_line = [d for d in errors if d["range"]["start"]["line"] == line]
    assert on_line, f"{stem}: errors at lines {[d['range']['start']['line'] + 1 for d in errors]}, netspec says {line}"
    assert any(SCHEMA_CASES[stem] in d["message"] for d in on_line), [d["message"] for d in on_line]


def test_did_you_mean_values_come_from_the_schema(server):
    text = MODELINE + "netspec: 1\nname: t\ninputs: {x: [8]}\nnodes:\n  - {type: Dense, units: 4, activation: rleu}\n"
    diags = server.open(SPECS / "_editor_activation.yaml", text)
    assert any("relu" in d["message"] and d["range"]["start"]["line"] == 5 for d in diags), diags


def test_completes_layer_types(server):
    text = MODELINE + "netspec: 1\nname: t\ninputs: {x: [8]}\nnodes:\n  - type: Con\n"
    path = SPECS / "_editor_types.yaml"
    server.open(path, text)
    labels = server.complete(path, 5, len("  - type: Con"))
    for name in ("Conv2D", "Conv1D", "Concatenate", "Dense", "BatchNormalization", "MultiHeadAttention"):
        assert name in labels, name
    assert "Lambda" not in labels  # excluded from specs: arbitrary Python


def test_completes_arguments_of_the_layer_type(server):
    text = MODELINE + "netspec: 1\nname: t\ninputs: {x: [8]}\nnodes:\n  - type: Conv2D\n    \n"
    path = SPECS / "_editor_args.yaml"
    server.open(path, text)
    labels = server.complete(path, 6, 4)
    for arg in ("filters", "kernel_size", "strides", "padding", "kernel_initializer", "name", "in", "repeat"):
        assert arg in labels, arg
    assert "units" not in labels  # a Dense argument, not a Conv2D one


def test_completes_argument_values(server):
    text = MODELINE + "netspec: 1\nname: t\ninputs: {x: [8]}\nnodes:\n  - type: Dense\n    units: 4\n    activation: \n"
    path = SPECS / "_editor_values.yaml"
    server.open(path, text)
    labels = server.complete(path, 7, len("    activation: "))
    for value in ("relu", "gelu", "softmax", "sigmoid"):
        assert value in labels, value
