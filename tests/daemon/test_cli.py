"""The command line as a user runs it: `check -c` on every config, broken configs through `check`
and `serve` (exact FILE:LINE: key.path: message on stderr, exit 2, nothing bound), usage errors
and --version."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

import reactorsvc
from reactorsvc.daemon.config import config_to_dict, load_config

from ..helpers import REPO, connect, echo_roundtrip, free_ports
from .conftest import CONFIG_FILES, run_cli, stop, write_config

# A full config for the broken-config cases; each case edits one line of it.
BASE = """\
# the base of the broken-config cases
workers: 2
dispatch: round_robin
listeners:
  - name: echo
    bind: 127.0.0.1:{p1}
    service: echo
    write_buffer:
      high: 65536
      low: 16384
  - name: web
    bind: 127.0.0.1:{p2}
    service: http-hello
    options:
      body: "hi\\n"
      max_request_line: 8192
logging:
  level: info
admin:
  bind: 127.0.0.1:{p3}
shutdown:
  grace: 1
"""

# (id, line of BASE to replace (its text), the new line ("" deletes it), the line the error
#  names (None: the edited line; else the text of that line), key path, message). Lines and
#  messages may use the ports {p1}, {p2} (listeners) and {p3} (admin).
CASES = [
    ("unknown-key", "workers: 2", "wrkers: 2", None, "wrkers",
     "unknown key 'wrkers'; did you mean 'workers'?"),
    ("wrong-type", "workers: 2", "workers: many", None, "workers",
     "expected an integer or 'auto', got string 'many'"),
    ("out-of-range", "workers: 2", "workers: 300", None, "workers",
     "workers 300 out of range 1..256"),
    ("bad-choice", "dispatch: round_robin", "dispatch: round-robin", None, "dispatch",
     "unknown dispatch policy 'round-robin'; did you mean 'round_robin'?"),
    ("duplicate-key", "dispatch: round_robin", "workers: 3", None, "workers",
     "duplicate key 'workers' (first at line 2)"),
    ("yaml-syntax", "    service: echo", "   service: echo", None, "listeners",
     "YAML syntax error: while parsing a block collection: expected <block end>, "
     "but found '<block mapping start>'"),
    ("port-out-of-range", "    bind: 127.0.0.1:{p1}", "    bind: 127.0.0.1:70000", None,
     "listeners[0].bind", "port 70000 out of range 1..65535"),
    ("bind-without-port", "    bind: 127.0.0.1:{p1}", "    bind: localhost", None,
     "listeners[0].bind",
     "expected 'host:port', '[ipv6]:port' or 'unix:/path', got 'localhost'"),
    ("duplicate-bind", "    bind: 127.0.0.1:{p2}", "    bind: 127.0.0.1:{p1}", None,
     "listeners[1].bind", "address 127.0.0.1:{p1} is already used by listeners[0] (line 6)"),
    ("admin-bind-taken", "  bind: 127.0.0.1:{p3}", "  bind: 127.0.0.1:{p2}", None, "admin.bind",
     "address 127.0.0.1:{p2} is already used by listeners[1] (line 12)"),
    ("admin-unix", "  bind: 127.0.0.1:{p3}", "  bind: unix:/tmp/admin.sock", None, "admin.bind",
     "must be host:port (a Unix socket is not allowed)"),
    ("duplicate-name", "  - name: web", "  - name: echo", None, "listeners[1].name",
     "duplicate listener name 'echo' (first at line 5)"),
    ("missing-service", "    service: echo", "", "  - name: echo", "listeners[0]",
     "missing required key 'service'"),
    ("unknown-service", "    service: echo", "    service: ecko", None, "listeners[0].service",
     "unknown service 'ecko'; did you mean 'echo'? (a service is a built-in name: "
     "echo, discard, http-hello, or an import path 'package.module:factory')"),
    ("service-not-importable", "    service: echo", "    service: no_such_pkg.mod:factory", None,
     "listeners[0].service",
     "service 'no_such_pkg.mod:factory': cannot import 'no_such_pkg.mod': "
     "ModuleNotFoundError: No module named 'no_such_pkg'"),
    ("service-import-raises", "    service: echo", "    service: broken_service:factory", None,
     "listeners[0].service",
     "service 'broken_service:factory': cannot import 'broken_service': "
     "RuntimeError: broken on purpose"),
    ("service-no-such-attribute", "    service: echo",
     "    service: reactorsvc.daemon.services.echo:Nope", None, "listeners[0].service",
     "service 'reactorsvc.daemon.services.echo:Nope': 'reactorsvc.daemon.services.echo' "
     "has no attribute 'Nope'"),
    ("unknown-option", "      max_request_line: 8192", "      max_request_lines: 8192", None,
     "listeners[1].options.max_request_lines",
     "service 'http-hello' has no option 'max_request_lines' (accepted: body, "
     "body_timeout, drain_idle, header_timeout, keepalive_timeout, max_body, "
     "max_header_size, max_request_line)"),
    ("option-wrong-type", '      body: "hi\\n"', "      body: 42", None,
     "listeners[1].options.body",
     "service 'http-hello': body must be a string, not int"),
    ("unknown-listener-key", "    service: http-hello", "    servise: http-hello", None,
     "listeners[1].servise", "unknown key 'servise'; did you mean 'service'?"),
    ("watermarks-inverted", "      low: 16384", "      low: 99999", None,
     "listeners[0].write_buffer.low", "write_buffer_low 99999 is above write_buffer_high 65536"),
    ("log-level", "  level: info", "  level: verbose", None, "logging.level",
     "unknown log level 'verbose' (valid: debug, info, warning, error)"),
    ("grace-negative", "  grace: 1", "  grace: -1", None, "shutdown.grace",
     "grace must be a finite number of seconds > 0, got -1"),
]
BROKEN_SERVICE = 'raise RuntimeError("broken on purpose")\n'


def broken_config(tmp_path: Path, old: str, new: str) -> tuple[Path, list[int], str, int]:
    """BASE with fresh ports and one line edited; (path, ports, the text, the edited line)."""
    ports = free_ports(3)
    values = dict(p1=ports[0], p2=ports[1], p3=ports[2])
    lines = BASE.format(**values).splitlines()
    target = old.format(**values)
    index = lines.index(target)
    if new:
        lines[index] = new.format(**values)
    else:
        del lines[index]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    (tmp_path / "broken_service.py").write_text(BROKEN_SERVICE)
    return path, ports, text, index + 1


def expected_error(path: Path, text: str, ports: list[int], edited: int, where: str | None,
                   key: str, message: str) -> str:
    values = dict(p1=ports[0], p2=ports[1], p3=ports[2])
    line = edited if where is None else text.splitlines().index(where) + 1
    return f"{path}:{line}: {key}: {message.format(**values)}\n"


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_config(tmp_path, case, command):
    _, old, new, where, key, message = case
    path, ports, text, edited = broken_config(tmp_path, old, new)
    expected = expected_error(path, text, ports, edited, where, key, message)
    with ExitStack() as held:
        if command == "serve":
            # Hold every port the file names: a daemon that bound anything before finding the
            # error would fail on the bind (exit 1) instead of reporting it.
            for port in ports:
                s = held.enter_context(socket.socket())
                s.bind(("127.0.0.1", port))
                s.listen(1)
            result = run_cli("serve", "-c", str(path), "--log-format", "json", cwd=tmp_path)
        else:
            result = run_cli("check", "-c", str(path), cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (2, expected, "")


def test_base_of_the_broken_cases_is_valid(tmp_path):
    """The cases above break a config that is otherwise fine (so the edit is the only error)."""
    path, ports, _, _ = broken_config(tmp_path, "workers: 2", "workers: 2")
    result = run_cli("check", "-c", str(path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert yaml.safe_load(result.stdout)["listeners"][1]["bind"] == f"127.0.0.1:{ports[1]}"


@pytest.mark.parametrize("command", ["check", "serve"])
def test_missing_config_file(tmp_path, command):
    path = tmp_path / "nope.yaml"
    result = run_cli(command, "-c", str(path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{path}: cannot read config: No such file or directory\n"


@pytest.mark.parametrize("source", CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
def test_check_prints_the_effective_config(tmp_path, source):
    result = run_cli("check", "-c", str(source), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    printed = yaml.safe_load(result.stdout)
    assert printed == config_to_dict(load_config(source))
    written = yaml.safe_load(source.read_text())
    assert [lc["bind"] for lc in printed["listeners"]] == \
        [lc["bind"] for lc in written["listeners"]]
    assert printed["admin"]["bind"] == written["admin"]["bind"]
    assert printed["shutdown"]["grace"] == written["shutdown"]["grace"]
    # Every listener is spelled out with its defaults filled in.
    for lc in printed["listeners"]:
        assert set(lc) == {"name", "bind", "service", "options", "backlog", "reuse_port",
                           "max_connections", "idle_timeout", "read_timeout", "write_timeout",
                           "write_buffer", "tls"}
    # The printed config is itself a valid config that prints the same.
    again = tmp_path / "effective.yaml"
    again.write_text(result.stdout)
    second = run_cli("check", "-c", str(again), cwd=tmp_path)
    assert (second.returncode, second.stdout) == (0, result.stdout)


def test_check_of_echo_yaml_exact_values(tmp_path):
    result = run_cli("check", "-c", str(REPO / "configs" / "echo.yaml"), cwd=tmp_path)
    printed = yaml.safe_load(result.stdout)
    assert printed["workers"] == 2
    assert printed["dispatch"] == "least_connections"
    assert printed["backend"] == {"avoid": ["select"], "require": []}
    assert printed["listeners"][0]["write_buffer"] == {"high": 131072, "low": 32768}
    assert printed["listeners"][0]["idle_timeout"] == 300.0


def test_packaged_default_is_configs_default():
    packaged = REPO / "reactorsvc" / "daemon" / "default.yaml"
    assert packaged.read_text() == (REPO / "configs" / "default.yaml").read_text()


def test_user_service_from_the_working_directory(daemon, tmp_path):
    (tmp_path / "my_service.py").write_text(
        "from reactorsvc.daemon.services.echo import EchoProtocol\n\n"
        "def factory(prefix=''):\n    return EchoProtocol()\n")
    source = (REPO / "configs" / "echo.yaml").read_text()
    cfg = write_config(tmp_path, source.replace("service: echo ", "service: my_service:factory "))
    assert cfg.data["listeners"][0]["service"] == "my_service:factory"
    d = daemon(cfg, cwd=tmp_path)
    with connect(cfg.listeners["echo"]) as s:
        assert echo_roundtrip(s, b"mine") == b"mine"
    assert stop(d) == 0


# -- usage ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, complaint", [
    ([], "the following arguments are required: command"),
    (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    (["serve", "--log-format", "xml"], "argument --log-format: invalid choice: 'xml'"),
    (["serve", "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    (["serve", "--bogus"], "unrecognized arguments: --bogus"),
    (["check"], "the following arguments are required: -c/--config"),
    (["serve", "-c"], "argument -c/--config: expected one argument"),
], ids=["no-command", "unknown-command", "bad-log-format", "bad-log-level", "unknown-option",
        "check-without-file", "config-without-value"])
def test_usage_errors_exit_2(tmp_path, argv, complaint):
    result = run_cli(*argv, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("usage: reactorsvc"), result.stderr
    assert complaint in result.stderr, result.stderr


def test_version(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"reactorsvc {reactorsvc.__version__}\n", "")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'version = "{reactorsvc.__version__}"' in pyproject


def test_help(tmp_path):
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("-c", "--log-format", "--log-level"):
        assert option in result.stdout
