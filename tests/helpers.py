"""Helpers shared by every test package (imported as ``from ..helpers import ...``; fixtures
stay in the conftest.py files).

- ``wait_for``: poll a condition with a bound, fail the test naming what did not happen.
- ports: ``free_ports``, ``port_is_free``.
- blocking clients: ``connect``, ``recv_exactly``, ``recv_until_eof``, ``echo_roundtrip``,
  ``echo``, ``http_get``, ``healthy``.
- /metrics: ``parse_metrics`` (prometheus_client's parser is the oracle), ``metrics``,
  ``metric_sum``, ``wait_metrics``.
- backends: ``only_method``, the EventConfig of a base on exactly one backend;
  ``on_one_backend``, for a test whose subject is not the backend.
- subprocesses: ``REPO``, ``subprocess_env``.

Every wait polls a condition with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import pytest
from prometheus_client.parser import text_string_to_metric_families

import reactorsvc

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 5.0  # bound on every wait for something that must happen

Address = Union[tuple, str]  # (host, port) or a Unix socket path


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT,
             what: Union[str, Callable[[], str]] = "condition", interval: float = 0.005) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value.

    After ``timeout`` seconds the test fails naming ``what`` (a callable is asked then). For state
    only observable by polling (stats counters, a port, a log file).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {text}")
        time.sleep(interval)


# -- ports ----------------------------------------------------------------------------------------

def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct ports of 127.0.0.1 that nothing listened on a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound (and listened on) right now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


# -- blocking clients -----------------------------------------------------------------------------

def connect(address: Address, timeout: float = TIMEOUT) -> socket.socket:
    """A connected blocking socket (TCP or Unix) with a timeout on every operation."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address if isinstance(address, str) else address[:2])
    except BaseException:
        s.close()
        raise
    return s


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes (the socket's timeout bounds each recv); AssertionError on early EOF."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))  # no n-byte buffer per call
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes: {data!r}")
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket) -> bytes:
    """Everything until the peer closes (each recv bounded by the socket's timeout)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send ``payload``; as many bytes as were sent, as they came back."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def echo(sock: socket.socket, payload: bytes) -> None:
    """Send payload and assert the very same bytes come back."""
    assert echo_roundtrip(sock, payload) == payload


def http_get(address: tuple, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """(status, body) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def healthy(admin: tuple) -> bool:
    """Whether GET /healthz answers 200 right now (False if nothing listens yet)."""
    try:
        return http_get(admin, "/healthz", timeout=1.0)[0] == 200
    except OSError:
        return False


# -- /metrics -------------------------------------------------------------------------------------

Samples = dict[tuple, float]  # {(sample name, ((label, value), ...) sorted): value}


def parse_metrics(text: str) -> tuple[dict[str, str], Samples]:
    """Prometheus text format, read by prometheus_client's parser → ({family: type}, samples).

    A family is named as the parser names it (a counter ``x_total`` is family ``x``); no family
    may appear twice (a gauge ``x`` beside a counter ``x_total`` would), nor a sample.
    """
    assert text.endswith("\n"), "the exposition must end with a newline"
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in types, f"family {family.name!r} given twice ({family.type} " \
                                         f"and {types[family.name]})"
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"sample given twice: {key}"
            samples[key] = sample.value
    return types, samples


def metrics(admin: tuple) -> tuple[dict[str, str], Samples]:
    """GET /metrics on ``admin``, parsed by ``parse_metrics``."""
    status, body = http_get(admin, "/metrics")
    assert status == 200, body
    return parse_metrics(body.decode())


def metric_sum(samples: Samples, name: str, **labels: str) -> float:
    """The sum of one metric over all its label sets (e.g. over workers) that carry ``labels``."""
    values = [v for (n, lbl), v in samples.items()
              if n == name and all(dict(lbl).get(k) == want for k, want in labels.items())]
    assert values, f"no samples of {name} {labels or ''}"
    return sum(values)


def wait_metrics(admin: tuple, expected: dict[str, float], timeout: float = TIMEOUT) -> Samples:
    """Poll /metrics until each named metric, summed over its label sets, equals its value.

    The counters are updated by the worker threads right after the syscalls they count, so a
    client can see its echo before the daemon's counter moves: wait, don't read once.
    Returns the last samples.
    """
    last: dict = {}

    def matches() -> bool:
        last["samples"] = metrics(admin)[1]
        last["sums"] = {name: metric_sum(last["samples"], name) for name in expected}
        return last["sums"] == expected

    wait_for(matches, timeout, lambda: f"metrics {expected}; still {last['sums']}", interval=0.02)
    return last["samples"]


# -- backends -------------------------------------------------------------------------------------

def only_method(method: str | None, flags: int = 0) -> reactorsvc.EventConfig:
    """An EventConfig that allows exactly `method` (None: any) and ignores the environment, so
    that EVENT_NO* variables cannot silently change the backend under test."""
    cfg = reactorsvc.EventConfig()
    if method is not None:
        for other in reactorsvc.supported_methods():
            if other != method:
                cfg.avoid_method(other)
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV | flags)
    return cfg


def on_one_backend(fixture: str = "method") -> pytest.MarkDecorator:
    """Run a test on the preferred backend only, not once per backend, by giving the backend
    fixture `fixture` (conftest's `method`) one parameter. For tests whose subject is time passing
    (a timeout kept off by traffic, a grace waited out): their seconds would triple while the
    backend's part, a timed wait, is covered by the shorter tests beside them."""
    return pytest.mark.parametrize(fixture, reactorsvc.supported_methods()[:1], indirect=True)


# -- subprocesses ---------------------------------------------------------------------------------

# Where the reactorsvc under test was imported from: the source tree (a pure, editable install)
# or the venv's site-packages (the compiled build, a regular install).
PACKAGE_ROOT = Path(reactorsvc.__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """The environment for a reactorsvc subprocess, which must run the build under test.

    PYTHONPATH: the directory this process imported reactorsvc from first, then this checkout
    (for `tests.*`). PYTHONSAFEPATH (3.11+): `python -m`/`-c` with the checkout as cwd would
    otherwise put ./reactorsvc, the pure modules, ahead of an installed compiled build; the
    REACTORSVC_PURE of a pure pass is inherited with the rest of the environment."""
    env = dict(os.environ)
    roots = dict.fromkeys([str(PACKAGE_ROOT), str(REPO)])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*roots, env.get("PYTHONPATH")]))
    env["PYTHONSAFEPATH"] = "1"
    env.pop("PYTHONWARNINGS", None)
    return env
