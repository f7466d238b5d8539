"""What `check` used to accept (or crash on) and `serve` could not run: YAML that raised other
exceptions than ConfigError or froze the loader, and values only the owners' objects reject
(the backend choice, Unix paths, resolved addresses, the service factory)."""

from __future__ import annotations

import threading

import pytest

from reactorsvc import EventBase, EventConfig, ReactorError, supported_methods
from reactorsvc.daemon.config import ConfigError, load_config_text
from reactorsvc.daemon.yamlpos import MAX_DEPTH, MAX_INT_CHARS, MAX_VALUES

LISTENER = """\
listeners:
  - name: a
    bind: 127.0.0.1:7000
    service: echo
"""


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "x.yaml")
    assert info.value.path, "every ConfigError names a key path"
    return info.value


@pytest.mark.parametrize("value, message", [
    ("!!int abc", "YAML error: tag:yaml.org,2002:int 'abc': invalid literal for int()"),
    ("!!float x", "YAML error: tag:yaml.org,2002:float 'x': could not convert string to float"),
    ("!!int ''", "YAML error: tag:yaml.org,2002:int '': "),
    ("!!bool maybe", "YAML error: tag:yaml.org,2002:bool 'maybe': "),
    ("!!timestamp 2020-99-99", "YAML error: tag:yaml.org,2002:timestamp '2020-99-99': "),
])
def test_a_tag_whose_constructor_fails_is_a_config_error(value, message):
    err = error(f"workers: {value}\n" + LISTENER)
    assert (err.line, err.path) == (1, "workers")
    assert err.message.startswith(message), err.message


@pytest.mark.parametrize("key", ["workers", "listeners[0].backlog", "listeners[0].max_connections"])
def test_huge_integers_are_refused_by_length(key):
    digits = "9" * 5000  # past CPython's int-from-string digit limit (ValueError there)
    if key == "workers":
        text = f"workers: {digits}\n" + LISTENER
    else:
        text = LISTENER + f"    {key.rpartition('.')[2]}: {digits}\n"
    err = error(text)
    assert err.path == key
    assert err.message == f"integer of 5000 characters, more than the {MAX_INT_CHARS} allowed"


def test_a_long_but_allowed_integer_is_a_range_error():
    err = error(LISTENER + "    backlog: 99999999999999999999\n")
    assert err.message == "backlog 99999999999999999999 out of range 0..65535"


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_before_the_recursive_composer(opening, closing):
    depth = 100_000  # deep enough for PyYAML's composer to hit the recursion limit
    err = error(LISTENER + "    options: " + opening * depth + closing * depth + "\n")
    assert err.line == 5 and err.path.startswith("listeners[0].options")
    assert err.path.endswith("...") and len(err.path) < 40
    assert err.message == f"collections nested more than {MAX_DEPTH} deep"


def test_nesting_up_to_the_limit_is_fine():
    nested = "[" * (MAX_DEPTH - 5) + "]" * (MAX_DEPTH - 5)  # 5 levels lead to it
    with pytest.raises(ConfigError, match="has no option 'deep'"):
        load_config_text(LISTENER + f"    options: {{deep: {nested}}}\n")


def _bomb(levels: int) -> str:
    text = "    options:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n"
    return text


def test_an_alias_bomb_is_refused_at_the_anchor_that_crosses_the_limit():
    done: list = []

    def load() -> None:
        with pytest.raises(ConfigError) as info:
            load_config_text(LISTENER + _bomb(9), "x.yaml")
        done.append(info.value)

    worker = threading.Thread(target=load, daemon=True)  # a regression would hang: bounded
    worker.start()
    worker.join(10.0)
    assert done, "loading an alias bomb did not finish within 10 s"
    err = done[0]
    assert (err.line, err.path) == (10, "listeners[0].options.l4")  # 111,111 values
    assert err.message == (f"more than {MAX_VALUES} values once aliases are expanded "
                           "(an alias bomb?)")


def test_a_few_aliases_are_fine():
    with pytest.raises(ConfigError, match="has no option 'l0'"):
        load_config_text(LISTENER + _bomb(3))


def test_a_huge_file_is_refused():
    err = error(LISTENER + "# " + "x" * (1024 * 1024) + "\n")
    assert (err.line, err.path) == (1, "<root>")
    assert err.message.endswith("characters, more than the 1048576 allowed")


def _backend_fits(avoid: list[str], require: int) -> bool:
    ec = EventConfig()
    for name in avoid:
        ec.avoid_method(name)
    ec.require_features(require)
    try:
        EventBase(ec).free()
    except ReactorError:
        return False
    return True


@pytest.mark.parametrize("backend, mask", [
    ("{avoid: [epoll, poll, select]}", 0),
    ("{avoid: [epoll], require: [EARLY_CLOSE]}", 0x08),
    ("{avoid: [epoll, kqueue, poll, select]}", 0),
])
def test_a_backend_section_no_backend_fits_is_refused(backend, mask):
    avoid = backend.partition("[")[2].partition("]")[0].split(", ") if "avoid" in backend else []
    if _backend_fits(avoid, mask):
        pytest.skip(f"a backend fits {backend} on this platform ({supported_methods()})")
    err = error(f"backend: {backend}\n" + LISTENER)
    assert err.line == 1 and err.path in ("backend", "backend.avoid")
    assert err.message.startswith("no usable backend: ")


def test_the_environment_is_honoured_as_serve_would(monkeypatch):
    for name in supported_methods():
        monkeypatch.setenv(f"EVENT_NO{name.upper()}", "1")
    err = error("backend: {avoid: []}\n" + LISTENER)
    assert err.path == "backend.avoid" and err.message.startswith("no usable backend: ")


def test_a_nul_in_a_unix_path_is_refused():
    err = error(LISTENER.replace("127.0.0.1:7000", '"unix:/tmp/a\\0b.sock"'))
    assert (err.line, err.path) == (3, "listeners[0].bind")
    assert err.message == "path contains a NUL byte: '/tmp/a\\x00b.sock'"


def test_localhost_beside_its_address_overlaps_after_resolving():
    text = LISTENER + "  - name: b\n    bind: localhost:7000\n    service: echo\n"
    err = error(text)
    assert (err.line, err.path) == (6, "listeners[1].bind")
    assert err.message == "address localhost:7000 overlaps 127.0.0.1:7000 of listeners[0] (line 3)"


def test_an_unresolvable_host_is_refused():
    err = error(LISTENER.replace("127.0.0.1", "no-such-host.invalid"))
    assert (err.line, err.path) == (3, "listeners[0].bind")
    assert "no-such-host.invalid" in err.message


@pytest.mark.parametrize("service, message", [
    ("os:getcwd", "service 'os:getcwd' is a built-in function, not a protocol factory"),
    ("collections:OrderedDict", "service 'collections:OrderedDict': class OrderedDict is not a "
                                "protocol"),
])
def test_a_service_that_makes_no_protocol_is_refused(service, message):
    err = error(LISTENER.replace("service: echo", f"service: {service}"))
    assert (err.line, err.path) == (4, "listeners[0].service")
    assert err.message.startswith(message)


@pytest.mark.parametrize("text, path, message", [
    (LISTENER + "    idle_timeout: 40000000\n", "listeners[0].idle_timeout",
     "idle_timeout must be at most 3.1536e+07 seconds (365 days), got 40000000"),
    (LISTENER + "shutdown: {grace: 1.0e+10}\n", "shutdown.grace",
     "grace must be at most 3.1536e+07 seconds (365 days), got 10000000000.0"),
])
def test_durations_beyond_a_year_are_refused(text, path, message):
    err = error(text)
    assert (err.path, err.message) == (path, message)


def test_grace_beyond_the_maximum_is_refused_by_the_server_too():
    from reactorsvc import Server
    server = Server(None)
    with pytest.raises(ValueError, match="grace must be at most"):
        server.shutdown_grace = 1e10
    with pytest.raises(ValueError, match="grace must be at most"):
        server.stop(1e10)


def test_listener_options_pass_from_yaml_to_the_server_unchanged():
    """One value: the ListenerOptions the loader built is the object the Server's listener holds."""
    from reactorsvc.daemon.app import build_server
    cfg = load_config_text(LISTENER + "    idle_timeout: 3\n    write_buffer: {low: 10}\n")
    server = build_server(cfg)
    [spec] = server._pending
    assert spec.options is cfg.listeners[0].io
    assert (spec.options.idle_timeout, spec.options.write_buffer_high) == (3.0, 40)
