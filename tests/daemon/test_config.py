"""Config loading and validation: every error kind with its exact FILE:LINE message,
every file in configs/, the packaged default, and the round trip through config_to_dict."""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from reactorsvc.daemon.config import (
    Config, ConfigError, ListenerConfig, ListenerOptions, config_to_dict, config_to_yaml,
    default_config, load_config, load_config_text, parse_bind, service_target,
)
from reactorsvc.workers.sizing import auto_workers

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))

# One valid listener, lines 1-4, that the cases below extend.
LISTENER = """\
listeners:
  - name: a
    bind: 127.0.0.1:7000
    service: echo
"""


def load_error(tmp_path: Path, text: str) -> tuple[str, ConfigError]:
    """Write text to a file, load it, return (filename, the ConfigError raised)."""
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(path), info.value


# (id, file text, "LINE: key.path: message") — the first problem in the file is reported.
ERROR_CASES = [
    ("yaml-syntax", "workers: 2\nlisteners:\n  - name: a\n   bind: x\n",
     "4: listeners: YAML syntax error: while parsing a block collection: "
     "expected <block end>, but found '<block mapping start>'"),
    ("yaml-syntax-in-a-listener", LISTENER + "    options: {a: [1, 2}\n",
     "5: listeners[0].options.a: YAML syntax error: while parsing a flow sequence: "
     "expected ',' or ']', but got '}'"),
    ("yaml-syntax-mapping", "a: b\n c: d\n",
     "2: <root>: YAML syntax error: mapping values are not allowed here"),
    ("yaml-tab", "workers: 2\nlisteners:\n\t- a\n",
     "3: listeners: YAML syntax error: while scanning for the next token: "
     "found character '\\t' that cannot start any token"),
    ("top-level-list", "- name: a\n- name: b\n",
     "1: <root>: the top level must be a mapping, got a list"),
    ("top-level-scalar", "# a comment\nhello\n",
     "2: <root>: the top level must be a mapping, got string 'hello'"),
    ("empty-document", "# nothing but a comment\n",
     "1: <root>: the top level must be a mapping, got an empty document"),
    ("unknown-key-hint", "worker: 2\n" + LISTENER,
     "1: worker: unknown key 'worker'; did you mean 'workers'?"),
    ("unknown-key-list", "colour: red\n" + LISTENER,
     "1: colour: unknown key 'colour' (valid: workers, processes, dispatch, accept, backend, "
     "listeners, logging, admin, shutdown)"),
    ("unknown-listener-key", LISTENER + "    backlg: 5\n",
     "5: listeners[0].backlg: unknown key 'backlg'; did you mean 'backlog'?"),
    ("unknown-nested-key", LISTENER + "logging:\n  levl: info\n",
     "6: logging.levl: unknown key 'levl'; did you mean 'level'?"),
    ("unknown-write-buffer-key", LISTENER + "    write_buffer: {hi: 5}\n",
     "5: listeners[0].write_buffer.hi: unknown key 'hi'; did you mean 'high'?"),
    ("processes-zero", "processes: 0\n" + LISTENER,
     "1: processes: processes 0 out of range 1..256"),
    ("processes-too-many", "processes: 257\n" + LISTENER,
     "1: processes: processes 257 out of range 1..256"),
    ("processes-string", "processes: many\n" + LISTENER,
     "1: processes: expected an integer or 'auto', got string 'many'"),
    ("processes-float", "processes: 2.0\n" + LISTENER,
     "1: processes: expected an integer or 'auto', got float 2.0"),
    ("health-delay-negative", LISTENER + "shutdown:\n  health_delay: -1\n",
     "6: shutdown.health_delay: must be 0 or more seconds, got -1"),
    ("workers-string", "workers: four\n" + LISTENER,
     "1: workers: expected an integer or 'auto', got string 'four'"),
    ("workers-bool", "workers: true\n" + LISTENER,
     "1: workers: expected an integer or 'auto', got boolean true"),
    ("workers-float", "workers: 2.5\n" + LISTENER,
     "1: workers: expected an integer or 'auto', got float 2.5"),
    ("workers-zero", "workers: 0\n" + LISTENER, "1: workers: workers 0 out of range 1..256"),
    ("workers-too-many", "workers: 257\n" + LISTENER,
     "1: workers: workers 257 out of range 1..256"),
    ("backlog-string", LISTENER + "    backlog: '128'\n",
     "5: listeners[0].backlog: backlog must be an int, not str"),
    ("backlog-bool", LISTENER + "    backlog: yes\n",
     "5: listeners[0].backlog: backlog must be an int, not bool"),
    ("backlog-range", LISTENER + "    backlog: 65536\n",
     "5: listeners[0].backlog: backlog 65536 out of range 0..65535"),
    ("reuse-port-int", LISTENER + "    reuse_port: 1\n",
     "5: listeners[0].reuse_port: reuse_port must be a bool, not int"),
    ("max-connections-zero", LISTENER + "    max_connections: 0\n",
     "5: listeners[0].max_connections: max_connections must be at least 1, got 0"),
    ("grace-negative", LISTENER + "shutdown:\n  grace: -1\n",
     "6: shutdown.grace: grace must be a finite number of seconds > 0, got -1"),
    ("grace-string", LISTENER + "shutdown:\n  grace: 10s\n",
     "6: shutdown.grace: expected a number of seconds, got string '10s'"),
    ("idle-timeout-zero", LISTENER + "    idle_timeout: 0\n",
     "5: listeners[0].idle_timeout: idle_timeout must be a finite number of seconds > 0, got 0"),
    ("read-timeout-negative", LISTENER + "    read_timeout: -0.5\n",
     "5: listeners[0].read_timeout: read_timeout must be a finite number of seconds > 0, got -0.5"),
    ("write-timeout-infinite", LISTENER + "    write_timeout: .inf\n",
     "5: listeners[0].write_timeout: write_timeout must be a finite number of seconds > 0, got inf"),
    ("port-range", LISTENER.replace("7000", "70000"),
     "3: listeners[0].bind: port 70000 out of range 1..65535"),
    ("port-zero", LISTENER.replace("7000", "0"),
     "3: listeners[0].bind: port 0 out of range 1..65535"),
    ("bind-no-port", LISTENER.replace("127.0.0.1:7000", "localhost"),
     "3: listeners[0].bind: expected 'host:port', '[ipv6]:port' or 'unix:/path', "
     "got 'localhost'"),
    ("bind-port-not-number", LISTENER.replace("7000", "http"),
     "3: listeners[0].bind: port 'http' is not a number"),
    ("bind-ipv6-brackets", LISTENER.replace("127.0.0.1:7000", "::1:7000"),
     "3: listeners[0].bind: an IPv6 address needs brackets, as in '[::1]:PORT'"),
    ("bind-bad-ipv6", LISTENER.replace("127.0.0.1:7000", "'[::g]:7000'"),
     "3: listeners[0].bind: '::g' is not a valid IPv6 address"),
    ("bind-bad-ipv4", LISTENER.replace("127.0.0.1", "256.0.0.1"),
     "3: listeners[0].bind: '256.0.0.1' is not a valid IPv4 address"),
    ("bind-bad-host", LISTENER.replace("127.0.0.1", "bad_host"),
     "3: listeners[0].bind: 'bad_host' is not a valid host name or IP address"),
    ("bind-no-host", LISTENER.replace("127.0.0.1", ""),
     "3: listeners[0].bind: missing host (use 0.0.0.0 or [::] for all interfaces)"),
    ("bind-int", LISTENER.replace("127.0.0.1:7000", "7000"),
     "3: listeners[0].bind: expected a string, got integer 7000 "
     "(quote it if you meant the string '7000')"),
    ("bind-unix-empty", LISTENER.replace("127.0.0.1:7000", "'unix:'"),
     "3: listeners[0].bind: unix socket path is empty"),
    ("bind-unix-too-long", LISTENER.replace("127.0.0.1:7000", "unix:/" + "s" * 107),
     "3: listeners[0].bind: path is 108 bytes long; a Unix socket path must be shorter than 108 "
     f"bytes: '/{'s' * 107}'"),
    ("admin-unix", LISTENER + "admin:\n  bind: unix:/tmp/admin.sock\n",
     "6: admin.bind: must be host:port (a Unix socket is not allowed)"),
    ("duplicate-listener-name", LISTENER + "  - name: a\n    bind: 127.0.0.1:7001\n"
     "    service: echo\n",
     "5: listeners[1].name: duplicate listener name 'a' (first at line 2)"),
    ("duplicate-bind", LISTENER + "  - name: b\n    bind: 127.0.0.1:7000\n    service: echo\n",
     "6: listeners[1].bind: address 127.0.0.1:7000 is already used by listeners[0] (line 3)"),
    ("duplicate-bind-ipv6-spelling",
     LISTENER.replace("127.0.0.1", "'[::1]").replace("7000\n", "7000'\n", 1)
     + "  - name: b\n    bind: '[0:0::1]:7000'\n    service: echo\n",
     "6: listeners[1].bind: address [0:0::1]:7000 is already used by listeners[0] (line 3)"),
    ("overlapping-wildcard-bind",
     LISTENER + "  - name: b\n    bind: 0.0.0.0:7000\n    service: echo\n",
     "6: listeners[1].bind: address 0.0.0.0:7000 overlaps 127.0.0.1:7000 of listeners[0] "
     "(line 3)"),
    ("duplicate-unix-bind",
     LISTENER.replace("127.0.0.1:7000", "unix:/tmp/r.sock")
     + "  - name: b\n    bind: unix:/tmp//r.sock\n    service: echo\n",
     "6: listeners[1].bind: address unix:/tmp//r.sock overlaps unix:/tmp/r.sock of "
     "listeners[0] (line 3)"),
    ("admin-bind-duplicate", LISTENER + "admin:\n  bind: 127.0.0.1:7000\n",
     "6: admin.bind: address 127.0.0.1:7000 is already used by listeners[0] (line 3)"),
    ("dispatch-unknown", "dispatch: random\n" + LISTENER,
     "1: dispatch: unknown dispatch policy 'random' (valid: round_robin, least_connections, "
     "hash)"),
    ("dispatch-hint", "dispatch: round-robin\n" + LISTENER,
     "1: dispatch: unknown dispatch policy 'round-robin'; did you mean 'round_robin'?"),
    ("accept-unknown", "accept: worker\n" + LISTENER,
     "1: accept: unknown accept mode 'worker'; did you mean 'workers'?"),
    ("accept-workers-with-a-policy", "accept: workers\ndispatch: least_connections\n" + LISTENER,
     "2: dispatch: dispatch 'least_connections' needs accept: supervisor (with accept: workers "
     "the kernel picks the worker, by a hash of the connection's addresses)"),
    ("accept-workers-with-processes", "processes: 2\naccept: workers\n" + LISTENER,
     "2: accept: accept: workers needs processes: 1 (processes is 2: its children share the "
     "master's sockets, which cannot be bound once per worker)"),
    ("backend-avoid-unknown", "backend:\n  avoid: [poll, epol]\n" + LISTENER,
     "2: backend.avoid[1]: unknown backend 'epol'; did you mean 'epoll'?"),
    ("backend-avoid-not-list", "backend:\n  avoid: epoll\n" + LISTENER,
     "2: backend.avoid: expected a list, got string 'epoll'"),
    ("feature-unknown", "backend:\n  require: [SPEED]\n" + LISTENER,
     "2: backend.require[0]: unknown feature 'SPEED' (valid: ET, O1, FDS, EARLY_CLOSE)"),
    ("feature-case-hint", "backend:\n  require: [et]\n" + LISTENER,
     "2: backend.require[0]: unknown feature 'et'; did you mean 'ET'?"),
    ("watermarks", LISTENER + "    write_buffer:\n      high: 100\n      low: 200\n",
     "7: listeners[0].write_buffer.low: write_buffer_low 200 is above write_buffer_high 100"),
    ("watermark-negative", LISTENER + "    write_buffer: {low: -1}\n",
     "5: listeners[0].write_buffer.low: write_buffer_low must be at least 0, got -1"),
    ("log-level", LISTENER + "logging:\n  level: verbose\n",
     "6: logging.level: unknown log level 'verbose' (valid: debug, info, warning, error)"),
    ("log-level-hint", LISTENER + "logging:\n  level: warn\n",
     "6: logging.level: unknown log level 'warn'; did you mean 'warning'?"),
    ("log-format", LISTENER + "logging:\n  format: xml\n",
     "6: logging.format: unknown log format 'xml' (valid: json, console, auto)"),
    ("service-unknown", LISTENER.replace("service: echo", "service: ecoh"),
     "4: listeners[0].service: unknown service 'ecoh'; did you mean 'echo'? (a service is a "
     "built-in name: echo, discard, http-hello, or an import path 'package.module:factory')"),
    ("service-module-missing",
     LISTENER.replace("service: echo", "service: no_such_module_xyz.sub:factory"),
     "4: listeners[0].service: service 'no_such_module_xyz.sub:factory': cannot import "
     "'no_such_module_xyz.sub': ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ("service-option-unknown", LISTENER + "    options:\n      colour: red\n",
     "6: listeners[0].options.colour: service 'echo' has no option 'colour' (accepted: none)"),
    ("service-options-not-mapping", LISTENER + "    options: [1, 2]\n",
     "5: listeners[0].options: expected a mapping, got a list"),
    ("listeners-empty", "workers: 2\nlisteners: []\n",
     "2: listeners: at least one listener is required"),
    ("listeners-missing", "workers: 2\n",
     "1: <root>: missing required key 'listeners'"),
    ("listeners-not-list", "listeners:\n  name: a\n",
     "2: listeners: expected a list, got a mapping"),
    ("listener-not-mapping", "listeners:\n  - echo\n",
     "2: listeners[0]: expected a mapping, got string 'echo'"),
    ("listener-missing-bind", "listeners:\n  - name: a\n    service: echo\n",
     "2: listeners[0]: missing required key 'bind'"),
    ("listener-name-yaml-bool", LISTENER.replace("name: a", "name: no"),
     "2: listeners[0].name: expected a string, got boolean no "
     "(quote it if you meant the string 'no')"),
    ("listener-name-chars", LISTENER.replace("name: a", "name: my listener"),
     "2: listeners[0].name: name 'my listener' may only contain letters, digits, "
     "'_', '.' and '-'"),
    ("duplicate-key", "workers: 2\ndispatch: hash\nworkers: 3\n" + LISTENER,
     "3: workers: duplicate key 'workers' (first at line 1)"),
    ("duplicate-nested-key", LISTENER + "    bind: 127.0.0.1:7001\n",
     "5: listeners[0].bind: duplicate key 'bind' (first at line 3)"),
    ("non-string-key", LISTENER + "7: seven\n",
     "5: <root>: mapping keys must be strings, got integer 7"),
    ("unknown-tag", "workers: !cores 2\n" + LISTENER,
     "1: workers: YAML error: could not determine a constructor for the tag '!cores'"),
    ("recursive-alias", "workers: &w [*w]\n" + LISTENER,
     "1: workers[0]: recursive alias: a node that contains itself"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_error_message(tmp_path, text, expected):
    filename, err = load_error(tmp_path, text)
    assert str(err) == f"{filename}:{expected}"
    line, path, message = expected.split(": ", 2)
    assert (err.filename, err.line, err.path, err.message) == (filename, int(line), path, message)


def test_error_kinds_are_many_and_distinct():
    assert len(ERROR_CASES) >= 14
    assert len({c[0] for c in ERROR_CASES}) == len(ERROR_CASES)


def test_load_config_text_default_filename():
    with pytest.raises(ConfigError) as info:
        load_config_text("workers: 0\n" + LISTENER)
    assert str(info.value) == "<default>:1: workers: workers 0 out of range 1..256"
    with pytest.raises(ConfigError) as info:
        load_config_text("listeners: []\n", filename="configs/x.yaml")
    assert str(info.value) == "configs/x.yaml:1: listeners: at least one listener is required"


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config: No such file or directory"
    assert info.value.line is None


def test_not_utf8(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"workers: 2\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: <root>: not valid UTF-8 (byte 0xe9)"


# -- services given as import paths, resolved while the config loads ----------------------------

@pytest.fixture
def service_module(tmp_path, monkeypatch):
    """write(source) -> module name: a fresh importable module, removed from sys.modules after."""
    names = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"cfgtest_service_{len(names)}_{os.getpid()}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _with_service(service: str, extra: str = "") -> str:
    return LISTENER.replace("service: echo", f"service: {service}") + extra


def test_service_import_path_loads(service_module):
    mod = service_module("""
        import asyncio
        def make(greeting="hi"):
            return asyncio.Protocol()
    """)
    cfg = load_config_text(_with_service(f"{mod}:make", "    options: {greeting: yo}\n"))
    assert cfg.listeners[0].service == f"{mod}:make"
    assert cfg.listeners[0].options == {"greeting": "yo"}
    assert cfg.listeners[0].target == f"{mod}:make"


def test_service_attribute_missing(tmp_path, service_module):
    mod = service_module("x = 1\n")
    filename, err = load_error(tmp_path, _with_service(f"{mod}:make"))
    assert str(err) == (f"{filename}:4: listeners[0].service: service '{mod}:make': "
                        f"'{mod}' has no attribute 'make'")


def test_service_not_callable(tmp_path, service_module):
    mod = service_module("VALUE = 42\n")
    filename, err = load_error(tmp_path, _with_service(f"{mod}:VALUE"))
    assert str(err) == (f"{filename}:4: listeners[0].service: service '{mod}:VALUE': "
                        f"'VALUE' is not callable")


def test_service_module_raises_on_import(tmp_path, service_module):
    mod = service_module("raise RuntimeError('boom')\n")
    filename, err = load_error(tmp_path, _with_service(f"{mod}:make"))
    assert str(err) == (f"{filename}:4: listeners[0].service: service '{mod}:make': "
                        f"cannot import '{mod}': RuntimeError: boom")


def test_service_option_rejected_at_its_line(tmp_path, service_module):
    mod = service_module("def make(*, size=1):\n    return None\n")
    text = _with_service(f"{mod}:make", "    backlog: 5\n    options:\n      sise: 2\n")
    filename, err = load_error(tmp_path, text)
    assert str(err) == (f"{filename}:7: listeners[0].options.sise: service '{mod}:make' "
                        f"has no option 'sise' (accepted: size)")


def test_service_missing_required_option_points_at_service(tmp_path, service_module):
    mod = service_module("def make(*, size):\n    return None\n")
    filename, err = load_error(tmp_path, _with_service(f"{mod}:make"))
    assert str(err) == (f"{filename}:4: listeners[0].service: service '{mod}:make' cannot "
                        f"take these options: missing a required argument: 'size'")


def test_builtin_service_targets():
    assert service_target("echo") == "reactorsvc.daemon.services.echo:EchoProtocol"
    assert service_target("discard") == "reactorsvc.daemon.services.discard:DiscardProtocol"
    assert service_target("http-hello") == \
        "reactorsvc.daemon.services.http_hello:HttpHelloProtocol"
    assert service_target("pkg.mod:make.sub") == "pkg.mod:make.sub"
    with pytest.raises(ValueError, match=r"unknown service 'pkg\.mod'"):
        service_target("pkg.mod")


# -- values ---------------------------------------------------------------------------------

def test_parse_bind():
    assert parse_bind("127.0.0.1:7000") == ("127.0.0.1", 7000)
    assert parse_bind("[::1]:7000") == ("::1", 7000)
    assert parse_bind("[0:0::1]:1") == ("::1", 1)
    assert parse_bind("LocalHost:80") == ("localhost", 80)
    assert parse_bind("unix:/tmp/x.sock") == "/tmp/x.sock"
    with pytest.raises(ValueError, match=r"^port 65536 out of range 1\.\.65535$"):
        parse_bind("h:65536")


def test_defaults_fill_in():
    cfg = load_config_text(LISTENER)
    assert cfg.workers == auto_workers(256)
    assert (cfg.dispatch, cfg.backend.avoid, cfg.backend.require) == ("round_robin", [], [])
    assert (cfg.logging.level, cfg.logging.format) == ("info", "auto")
    assert cfg.admin.bind is None and cfg.admin.address is None
    assert cfg.shutdown.grace == 10.0
    assert (cfg.processes, cfg.shutdown.health_delay) == (1, 0.0)
    assert cfg.listeners == [ListenerConfig(name="a", bind="127.0.0.1:7000", service="echo")]
    assert cfg.listeners[0].io == ListenerOptions(write_buffer_high=65536, write_buffer_low=16384)


def test_values_are_converted():
    text = LISTENER + "    idle_timeout: 5\n    max_connections: null\n"
    text += "    write_buffer: {high: 4000}\n" + textwrap.dedent("""\
        workers: auto
        backend: {require: [ET, EARLY_CLOSE]}
        shutdown: {grace: 2}
        admin: {bind: "[::1]:9100"}
    """)
    cfg = load_config_text(text)
    listener = cfg.listeners[0]
    assert listener.io.idle_timeout == 5.0 and type(listener.io.idle_timeout) is float
    assert (listener.io.write_buffer_high, listener.io.write_buffer_low) == (4000, 1000)  # asyncio
    assert cfg.backend.require_mask == 0x01 | 0x08
    assert cfg.shutdown.grace == 2.0 and type(cfg.shutdown.grace) is float
    assert cfg.admin.address == ("::1", 9100)
    assert cfg.workers == auto_workers(256)


def test_low_watermark_alone_sets_high():
    cfg = load_config_text(LISTENER + "    write_buffer: {low: 100}\n")
    assert (cfg.listeners[0].io.write_buffer_high, cfg.listeners[0].io.write_buffer_low) == \
        (400, 100)


def test_merge_keys_and_anchors():
    cfg = load_config_text(textwrap.dedent("""\
        listeners:
          - &common
            name: a
            bind: 127.0.0.1:7000
            service: echo
            backlog: 77
          - <<: *common
            name: b
            bind: unix:/tmp/b.sock
    """))
    assert [(l.name, l.bind, l.io.backlog) for l in cfg.listeners] == \
        [("a", "127.0.0.1:7000", 77), ("b", "unix:/tmp/b.sock", 77)]
    assert cfg.listeners[1].address == "/tmp/b.sock"


# -- the shipped files --------------------------------------------------------------------------

def test_every_config_file_is_tested():
    assert [p.name for p in CONFIGS] == ["default.yaml", "echo.yaml", "http.yaml", "multi.yaml",
                                         "processes.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_file_loads_and_round_trips(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    again = load_config_text(config_to_yaml(cfg), "<round trip>")
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)


_KEY_LINE = re.compile(r"^\s*(?:- )?([A-Za-z_][\w-]*):")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_file_comments_every_key(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if _KEY_LINE.match(line):
            above = lines[i - 1].strip() if i else ""
            assert "#" in line or above.startswith("#"), f"{path.name}:{i + 1}: {line!r}"


def test_packaged_default_is_configs_default():
    packaged = importlib.resources.files("reactorsvc.daemon").joinpath("default.yaml")
    assert packaged.read_bytes() == (REPO / "configs" / "default.yaml").read_bytes()
    assert default_config() == load_config(REPO / "configs" / "default.yaml")


def test_default_config_values():
    cfg = default_config()
    assert cfg.listeners == [ListenerConfig(name="echo", bind="127.0.0.1:7000", service="echo")]
    assert cfg.listeners[0].address == ("127.0.0.1", 7000)
    assert cfg.admin.bind == "127.0.0.1:9100"
    assert cfg.workers == auto_workers(256)
    assert (cfg.dispatch, cfg.logging.level, cfg.logging.format) == ("round_robin", "info", "auto")
    assert cfg.accept == "supervisor"
    assert cfg.shutdown.grace == 10.0


def test_example_files():
    http = load_config(REPO / "configs" / "http.yaml")
    assert [(l.service, l.bind) for l in http.listeners] == [("http-hello", "127.0.0.1:8080")]
    echo = load_config(REPO / "configs" / "echo.yaml")
    assert [l.service for l in echo.listeners] == ["echo"]
    assert echo.listeners[0].io.idle_timeout is not None
    processes = load_config(REPO / "configs" / "processes.yaml")
    assert (processes.processes, processes.workers) == (2, 1)
    assert load_config_text("processes: auto\n" + LISTENER).processes == max(
        1, min(os.cpu_count() or 1, 256))
    multi = load_config(REPO / "configs" / "multi.yaml")
    services = [l.service for l in multi.listeners]
    assert services[:3] == ["echo", "discard", "http-hello"]
    unix = [l.address for l in multi.listeners if isinstance(l.address, str)]
    assert len(unix) == 1 and unix[0].startswith("/tmp/")
    tcp_ports = {l.address[1] for l in multi.listeners if not isinstance(l.address, str)}
    assert len(tcp_ports) == 3


def test_config_to_dict_shape():
    cfg = load_config_text(LISTENER + "    options: {}\n")
    d = config_to_dict(cfg)
    assert list(d) == ["workers", "processes", "dispatch", "accept", "backend", "listeners",
                       "logging", "admin", "shutdown"]
    assert d["listeners"][0]["write_buffer"] == {"high": 65536, "low": 16384}
    assert d["admin"] == {"bind": None}
    # Plain data only: safe_dump would refuse anything else.
    assert yaml.safe_load(yaml.safe_dump(d)) == d


def test_config_to_dict_round_trip_with_everything(tmp_path, service_module):
    mod = service_module("def make(**options):\n    return None\n")
    cfg = dataclasses.replace(
        default_config(),
        workers=3, dispatch="hash",
        listeners=[ListenerConfig(
            name="x", bind="[::1]:7001", service=f"{mod}:make",
            options={"nested": {"a": [1, 2.5, None, "s"]}, "flag": True},
            io=ListenerOptions(backlog=9, reuse_port=True, max_connections=5, idle_timeout=1.5,
                               read_timeout=2.0, write_timeout=3.0, write_buffer_high=10,
                               write_buffer_low=2))],
    )
    assert load_config_text(config_to_yaml(cfg)) == cfg


def test_docs_describe_every_key():
    doc = (REPO / "docs" / "config.md").read_text()
    d = config_to_dict(load_config(REPO / "configs" / "echo.yaml"))
    keys = set(d) | {f"{section}.{k}" for section in ("backend", "logging", "admin", "shutdown")
                     for k in d[section]}
    keys |= {k for k in d["listeners"][0]} | {"write_buffer.high", "write_buffer.low"}
    keys.discard("write_buffer")
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == []
