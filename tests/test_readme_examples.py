"""Every ```python block of README.md runs as written, each in a fresh interpreter.

An HTML comment just before a block says how to run it (key=value, shell quoting):
- no comment, or no `serves`: it runs to completion with exit status 0 (and prints `prints`);
- `serves=HOST:PORT`: it serves forever there; a real client connects and checks the echo, then
  the example is stopped: with SIGTERM and the exit status `sigterm` when given, else killed;
- `name=N` names a block; `uses=N` runs N's imports, classes and functions first (the names
  the README says it reuses, without running N's own serving code).
A block without an `example:` comment is a plain runnable one; every block is run.
"""

from __future__ import annotations

import ast
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from .helpers import REPO, connect, echo, port_is_free, subprocess_env, wait_for

_BLOCK_RE = re.compile(r"(?:<!-- example: (?P<spec>.*?) -->\n)?```python\n(?P<code>.*?)```",
                       re.DOTALL)
_BACKPRESSURE = 4 << 20  # more than a transport's 64 KiB high-water mark, and the kernel's buffers


@dataclass
class Example:
    line: int
    code: str
    spec: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def _examples() -> list[Example]:
    text = (REPO / "README.md").read_text()
    found = []
    for m in _BLOCK_RE.finditer(text):
        spec = dict(item.split("=", 1) for item in shlex.split(m.group("spec") or ""))
        found.append(Example(text.count("\n", 0, m.start("code")) + 1, m.group("code"), spec))
    return found


EXAMPLES = _examples()


def _definitions(code: str) -> str:
    """The imports, classes and functions of a block: what another block may reuse."""
    keep = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef)
    return ast.unparse([node for node in ast.parse(code).body if isinstance(node, keep)])


def _source(example: Example) -> str:
    if "uses" not in example.spec:
        return example.code
    [used] = [e for e in EXAMPLES if e.spec.get("name") == example.spec["uses"]]
    return _definitions(used.code) + "\n\n" + example.code


def _params(examples: list[Example]) -> list:
    return [pytest.param(e, id=e.id) for e in examples]


def _start(example: Example) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _source(example)], cwd=REPO,
                            env=subprocess_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _address(example: Example) -> tuple[str, int]:
    host, _, port = example.spec["serves"].rpartition(":")
    return host, int(port)


def _client_connects(proc: subprocess.Popen, address: tuple):
    if proc.poll() is not None:
        pytest.fail(f"the example exited with {proc.returncode} before serving:\n"
                    f"{proc.stderr.read()}")
    try:
        return connect(address)
    except ConnectionRefusedError:
        return None


def _stop(proc: subprocess.Popen, example: Example) -> tuple[str, str]:
    if "sigterm" in example.spec:
        proc.send_signal(signal.SIGTERM)
    else:
        proc.kill()
    try:
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if "sigterm" in example.spec:
        assert proc.returncode == int(example.spec["sigterm"]), err
    return out, err


def test_the_readme_has_examples_of_each_kind():
    assert len(EXAMPLES) >= 3
    assert any("serves" in e.spec for e in EXAMPLES)
    assert all(e.spec.get("uses") in {None, *(x.spec.get("name") for x in EXAMPLES)}
               for e in EXAMPLES)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("example", _params(EXAMPLES))
def test_readme_example_runs(example):
    if "serves" not in example.spec:
        proc = subprocess.run([sys.executable, "-c", _source(example)], cwd=REPO,
                              env=subprocess_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert example.spec.get("prints", "") in proc.stdout, proc.stdout
        return
    _serve_and_echo(example, b"hello from the README\n")


def _serve_and_echo(example: Example, payload: bytes) -> None:
    address = _address(example)
    if not port_is_free(address[1]):
        pytest.skip(f"{example.spec['serves']} is in use; the example names that port")
    proc = _start(example)
    try:
        with wait_for(lambda: _client_connects(proc, address), 20,
                      f"the example to serve {example.spec['serves']}") as client:
            echo(client, payload)
    finally:
        _stop(proc, example)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("example", _params([e for e in EXAMPLES if "serves" in e.spec]))
def test_readme_server_echoes_more_than_its_write_buffer_holds(example):
    """A client that sends 4 MiB before it reads: the echo's output passes the high-water mark,
    so the transport asks the protocol to pause writing; the echo must still come back whole."""
    address = _address(example)
    if not port_is_free(address[1]):
        pytest.skip(f"{example.spec['serves']} is in use; the example names that port")
    proc = _start(example)
    try:
        client = wait_for(lambda: _client_connects(proc, address), 20,
                          f"the example to serve {example.spec['serves']}")
        with client:
            chunk = bytes(range(256)) * 256
            sent = 0
            while sent < _BACKPRESSURE:
                client.sendall(chunk)
                sent += len(chunk)
            client.shutdown(socket.SHUT_WR)
            got = bytearray()
            while data := client.recv(1 << 16):
                got += data
            assert len(got) == sent
    finally:
        _stop(proc, example)
