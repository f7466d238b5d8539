"""Suite-wide fixtures: every test leaves no fd, thread, unfreed EventBase, signal handler or
signal wakeup fd behind; make_base (an EventBase on exactly one backend, freed afterwards), pair
(a non-blocking socketpair) and run_forked. Plain helpers (waits, clients, /metrics) are in
helpers.py."""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading
import time
import traceback
import warnings
import weakref

import pytest

import reactorsvc
from reactorsvc.base.lifecycle import live_bases

from .helpers import only_method


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


_SIGNALS = sorted(signal.valid_signals())


def _signal_handlers() -> dict[int, object]:
    """Python-level handler of every signal (the reactor installs its own for signal events)."""
    return {signum: signal.getsignal(signum) for signum in _SIGNALS}


def _timeout_plugin(handler: object) -> bool:
    # pytest-timeout's SIGALRM handler: set per test, cancelled early when a test fails.
    return getattr(handler, "__module__", None) == "pytest_timeout"


def _wakeup_fd() -> int:
    """signal.set_wakeup_fd's current fd, read by setting it back (main thread only)."""
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


def _new_live_bases(before: weakref.WeakSet) -> list[reactorsvc.EventBase]:
    """Bases made since `before` and not freed; gc first only when there seem to be some (a
    base dropped in a reference cycle is not a leak of the test's, a base still reachable is)."""
    new = [b for b in live_bases if b not in before]
    if new:
        del new
        gc.collect()
        new = [b for b in live_bases if b not in before]
    return new


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves fds open, threads running, EventBases not freed, signal handlers
    installed or the signal wakeup fd changed (libevent's test-fdleak, libuv's
    MAKE_VALGRIND_HAPPY)."""
    fds_before = _open_fds()
    threads_before = _live_threads()
    bases_before = weakref.WeakSet(live_bases)
    handlers_before = _signal_handlers()
    wakeup_before = _wakeup_fd()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    # Threads told to stop may need a moment to finish: wait on them, with a bound.
    deadline = time.monotonic() + 5.0
    extra = _live_threads() - threads_before
    for t in extra:
        t.join(max(0.0, deadline - time.monotonic()))
    leaked_threads = [t.name for t in _live_threads() - threads_before]
    leaked_bases = [repr(b) for b in _new_live_bases(bases_before)]
    handlers = _signal_handlers()
    changed = {signal.Signals(n).name: (handlers_before[n], handlers[n]) for n in _SIGNALS
               if handlers[n] != handlers_before[n]
               and not _timeout_plugin(handlers[n]) and not _timeout_plugin(handlers_before[n])}
    wakeup = _wakeup_fd()
    leaked_fds = sorted(_open_fds() - fds_before)
    details = {}
    for fd in leaked_fds:
        try:
            details[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the listdir fd itself, gone by now
    assert not leaked_threads, f"test leaked threads: {leaked_threads}"
    assert not leaked_bases, f"test left EventBases not freed: {leaked_bases}"
    assert not changed, f"test left signal handlers changed (before, after): {changed}"
    assert wakeup == wakeup_before, f"test left signal.set_wakeup_fd at {wakeup}, " \
                                    f"not {wakeup_before}"
    assert not details, f"test leaked fds: {details}"


def _run_forked(child) -> int:
    """Run child() in a forked process; its return value is the exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads alive
        pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = child()
        except BaseException:  # noqa: BLE001 -- anything escaping in the child is a failure
            traceback.print_exc()
            code = 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child died: status {status:#x}"
    return os.WEXITSTATUS(status)


@pytest.fixture
def run_forked():
    """run_forked(child) -> the exit status of child() run in a forked process."""
    return _run_forked


# -- EventBases and socketpairs, for every test package ------------------------------------

def build_base(method: str | None = None, flags: int = 0,
               dispatch: tuple | None = None) -> reactorsvc.EventBase:
    """An EventBase that uses exactly `method` (all others avoided), env ignored."""
    cfg = only_method(method, flags)
    if dispatch is not None:
        cfg.set_max_dispatch_interval(*dispatch)
    base = reactorsvc.EventBase(cfg)
    if method is not None:
        assert base.method == method
    return base


def _free_quietly(base: reactorsvc.EventBase) -> None:
    try:
        base.free()
    except reactorsvc.ReactorError:
        pass  # freed by the test already, or still looping in a stuck thread (that test fails)


@pytest.fixture(params=reactorsvc.supported_methods())
def method(request) -> str:
    """A backend name: each test taking `method` (or a fixture built on it) runs once per
    method in supported_methods(); helpers.on_one_backend narrows a test to one."""
    return request.param


@pytest.fixture
def make_base(request):
    """Factory: make_base(method=None, flags=0, dispatch=None) -> EventBase, freed afterwards."""
    made = []

    def factory(method=None, flags=0, dispatch=None):
        base = build_base(method, flags, dispatch)
        made.append(base)
        return base

    yield factory
    for base in made:
        _free_quietly(base)


@pytest.fixture
def pair():
    """A connected, non-blocking AF_UNIX stream socketpair (closed afterwards)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


# -- TLS test certificates, generated per test session (no private key is committed) ----------

class TlsCerts:
    """Paths of a test CA, a server certificate for localhost/127.0.0.1 and a client one."""

    def __init__(self, directory) -> None:
        self.dir = directory
        self.ca = directory / "ca.pem"
        self.server_cert, self.server_key = directory / "server.pem", directory / "server.key"
        self.client_cert, self.client_key = directory / "client.pem", directory / "client.key"

    def server_context(self, client_auth: bool = False):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if client_auth:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca)
        return ctx

    def client_context(self, with_cert: bool = False):
        import ssl
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


def _openssl(*args: str) -> None:
    import subprocess
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory) -> TlsCerts:
    """A CA, a server and a client certificate (EC P-256), made with the openssl CLI."""
    import shutil
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test certificates (.ci/run installs it)")
    certs = TlsCerts(tmp_path_factory.mktemp("tls"))
    d = certs.dir
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", str(d / "ca.key"), "-out", str(certs.ca), "-days", "2",
             "-subj", "/CN=reactorsvc test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, cn, ext in (("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "reactorsvc test client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", *key, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
                 "-subj", f"/CN={cn}")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(certs.ca), "-CAkey",
                 str(d / "ca.key"), "-set_serial", "1" if name == "server" else "2", "-days", "2",
                 "-out", str(d / f"{name}.pem"), "-extfile", str(d / f"{name}.ext"))
    return certs
