"""TLS on MemoryBIO: real clients (Python's ssl module, openssl s_client, curl), mutual TLS,
reactorsvc's own connect(ssl=), bad clients (plain TCP, garbage, a stalled handshake), flow
control, close_notify vs abort, BufferedProtocol, extra info and argument checks."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from structlog.testing import capture_logs

import reactorsvc
from reactorsvc.base.flags import EVLOOP_NO_EXIT_ON_EMPTY
from reactorsvc.daemon.services.http_hello import HttpHelloProtocol
from reactorsvc.io import connect, start_server

from .conftest import Recorder, run_until, small_sndbuf


class LoopThread:
    """base's loop in a thread, so blocking clients can run in the test's thread."""

    def __init__(self, base: reactorsvc.EventBase) -> None:
        self.base = base
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="tls-test-loop")
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            self.base.loop(EVLOOP_NO_EXIT_ON_EMPTY)

    def call(self, fn, *args):
        """fn(*args) in the loop thread; its result (bounded wait)."""
        done = threading.Event()
        box = []
        self.base.call_soon_threadsafe(lambda: (box.append(fn(*args)), done.set()))
        assert done.wait(5), "the loop did not answer"
        return box[0]

    def stop(self) -> None:
        def brk():
            self._stop = True
            self.base.loopbreak()
        self.base.call_soon_threadsafe(brk)
        self.thread.join(5)


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.made = threading.Event()
        self.info: dict = {}
        self.lost: list = []
        self.lost_event = threading.Event()
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport
        self.info = {k: transport.get_extra_info(k) for k in
                     ("ssl_object", "peercert", "cipher", "sslcontext", "peername")}
        self.info["can_write_eof"] = transport.can_write_eof()
        self.made.set()

    def data_received(self, data):
        self.transport.write(data)
        if b"\n" in data:
            self.transport.close()

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        self.lost.append(exc)
        self.lost_event.set()


@pytest.fixture
def tls_server(base, tls_certs):
    """tls_server(factory=Echo, client_auth=False, **kw) -> (listener, protocols, loop)."""
    started = []

    def make(factory=Echo, client_auth=False, **kwargs):
        protocols: list = []

        def build():
            p = factory()
            protocols.append(p)
            return p

        listener = start_server(base, build, ssl=tls_certs.server_context(client_auth), **kwargs)
        loop = LoopThread(base)
        started.append((listener, loop))
        return listener, protocols, loop

    yield make
    for listener, loop in started:
        loop.stop()
        # Connections that are closing finish here, so their sockets are closed, not collected.
        run_until(base, lambda: listener.counters()["open"] == 0, what="connections to end")
        listener.close()


def _tls_client(tls_certs, address, with_cert=False, hostname="localhost"):
    raw = socket.create_connection(address, timeout=5)
    # Ragged EOFs raise, so a missing close_notify is seen.
    return tls_certs.client_context(with_cert).wrap_socket(raw, server_hostname=hostname,
                                                           suppress_ragged_eofs=False)


def _recv_all(sock) -> bytes:
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


@pytest.mark.timeout(20)
def test_python_ssl_client_echo_small_and_bulk_then_close_notify(tls_server, tls_certs):
    listener, protocols, loop = tls_server()
    bulk = bytes(range(11, 256)) * 4096  # ~1 MiB, no newline (Echo closes at one)
    with _tls_client(tls_certs, listener.addresses[0]) as client:
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"
        client.sendall(bulk)
        got = bytearray()
        while len(got) < len(bulk):
            got += client.recv(65536)
        assert got == bulk
        client.sendall(b"bye\n")
        # The server's close() sends close_notify: a clean end, not SSLEOFError.
        assert _recv_all(client) == b"bye\n"
    [proto] = protocols
    assert proto.lost_event.wait(5) and proto.lost == [None]
    info = proto.info
    assert isinstance(info["ssl_object"], ssl.SSLObject)
    assert info["sslcontext"] is info["ssl_object"].context
    assert info["cipher"][1].startswith("TLSv1.")
    assert info["peercert"] is None and info["can_write_eof"] is False
    assert listener.tls_handshake_failures == 0


@pytest.mark.timeout(20)
def test_abort_sends_no_close_notify(tls_server, tls_certs):
    class AbortOnData(Echo):
        def data_received(self, data):
            self.transport.abort()

    listener, protocols, loop = tls_server(AbortOnData)
    with _tls_client(tls_certs, listener.addresses[0]) as client:
        client.sendall(b"x")
        with pytest.raises(ssl.SSLEOFError):
            client.recv(10)


@pytest.mark.timeout(20)
def test_mutual_tls_client_certificate_required(tls_server, tls_certs):
    listener, protocols, loop = tls_server(client_auth=True)
    with _tls_client(tls_certs, listener.addresses[0], with_cert=True) as client:
        client.sendall(b"who\n")
        assert _recv_all(client) == b"who\n"
    subject = dict(item[0] for item in protocols[0].info["peercert"]["subject"])
    assert subject["commonName"] == "reactorsvc test client"
    # Without a certificate: refused in the handshake, the protocol never hears of it.
    with capture_logs() as logs:
        with _tls_client(tls_certs, listener.addresses[0]) as client:
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                client.sendall(b"x\n")
                client.recv(10)
        assert _wait_failures(loop, listener, 1)
    assert len(protocols) == 2 and not protocols[1].made.is_set() and not protocols[1].lost
    failed = [e for e in logs if e["event"] == "tls_handshake_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "info"
    assert not [e for e in logs if e["log_level"] in ("error", "warning")]


def _wait_failures(loop, listener, n, timeout=5.0) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loop.call(lambda: listener.tls_handshake_failures) >= n:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.timeout(30)
def test_plain_tcp_and_garbage_clients_are_closed_counted_and_others_served(tls_server, tls_certs):
    listener, protocols, loop = tls_server()
    address = listener.addresses[0]
    with capture_logs() as logs:
        for junk in (b"GET / HTTP/1.0\r\n\r\n", bytes(range(256)) * 8):
            with socket.create_connection(address, timeout=5) as plain:
                plain.sendall(junk)
                try:
                    while plain.recv(4096):
                        pass  # an alert, perhaps; then the server closes
                except ConnectionResetError:
                    pass
        assert _wait_failures(loop, listener, 2)
        with _tls_client(tls_certs, address) as client:
            client.sendall(b"ok\n")
            assert _recv_all(client) == b"ok\n"
    assert [p.made.is_set() for p in protocols] == [False, False, True]
    assert not protocols[0].lost and not protocols[1].lost
    assert not [e for e in logs if e["log_level"] in ("error", "warning", "critical")]
    assert not [e for e in logs if "exc_info" in e]


@pytest.mark.timeout(20)
def test_a_stalled_handshake_is_closed_at_ssl_handshake_timeout(tls_server, tls_certs):
    listener, protocols, loop = tls_server(ssl_handshake_timeout=0.3)
    with socket.create_connection(listener.addresses[0], timeout=10) as silent:
        assert silent.recv(10) == b""  # the server gave up on us
    assert _wait_failures(loop, listener, 1)
    assert not protocols[0].made.is_set() and not protocols[0].lost


@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_s_client(tls_server, tls_certs):
    listener, protocols, loop = tls_server()
    host, port = listener.addresses[0]
    out = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-CAfile",
                          str(tls_certs.ca), "-verify_return_error", "-servername", "localhost",
                          "-quiet"], input=b"hello s_client\n", capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello s_client\n"


@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_cacert_against_http_hello_over_tls(tls_server, tls_certs):
    listener, protocols, loop = tls_server(HttpHelloProtocol)
    host, port = listener.addresses[0]
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(tls_certs.ca),
                          "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"Hello")


class Client(Recorder):
    def __init__(self, early: bytes = b"") -> None:
        super().__init__()
        self.early = early


@pytest.mark.timeout(20)
def test_reactorsvc_client_early_writes_and_close_notify(base, tls_certs):
    server_protos: list = []
    listener = start_server(base, lambda: server_protos.append(Recorder()) or server_protos[-1],
                            ssl=tls_certs.server_context())
    try:
        host, port = listener.addresses[0]
        proto = Recorder()
        t = connect(base, lambda: proto, host, port, ssl=tls_certs.client_context(),
                    server_hostname="localhost")
        t.write(b"early")  # before the handshake: kept as plaintext, counted
        assert t.get_write_buffer_size() == 5
        run_until(base, lambda: server_protos and server_protos[0].data == b"early")
        assert proto.names() == ["made"] and t.get_extra_info("cipher") is not None
        t.close()
        srv = server_protos[0]
        run_until(base, lambda: srv.lost and proto.lost)
        assert srv.names() == ["made", "data", "eof", "lost"] and srv.lost_exc() is None
        assert proto.lost_exc() is None
    finally:
        listener.close()


@pytest.mark.timeout(20)
def test_tls_flow_control_pauses_and_resumes_writing(base, tls_certs):
    server_protos: list = []

    def factory():
        p = Recorder()
        server_protos.append(p)
        return p

    listener = start_server(base, factory, ssl=tls_certs.server_context())
    try:
        host, port = listener.addresses[0]
        proto = Recorder()
        t = connect(base, lambda: proto, host, port, ssl=tls_certs.client_context(),
                    server_hostname="localhost")
        run_until(base, lambda: server_protos and server_protos[0].names() == ["made"])
        srv = server_protos[0]
        srv.transport.pause_reading()
        small_sndbuf(t)
        t.set_write_buffer_limits(high=64 * 1024)
        for _ in range(64):
            t.write(b"y" * 16384)  # 1 MiB of plaintext into a peer that does not read
        assert "pause" in proto.names()
        assert t.get_write_buffer_size() > 64 * 1024
        srv.transport.resume_reading()
        run_until(base, lambda: len(srv.data) == 1 << 20, timeout=10)
        assert proto.names()[-1] == "resume" and t.get_write_buffer_size() <= 16 * 1024
        t.abort()
        run_until(base, lambda: srv.lost)
    finally:
        listener.close()


@pytest.mark.timeout(20)
def test_default_context_verifies_so_our_test_ca_is_refused(base, tls_certs):
    listener = start_server(base, Recorder, ssl=tls_certs.server_context())
    try:
        host, port = listener.addresses[0]
        proto = Recorder()
        connect(base, lambda: proto, "localhost", port, ssl=True)
        run_until(base, lambda: proto.lost)
        assert proto.names() == ["lost"]
        assert isinstance(proto.lost_exc(), ssl.SSLCertVerificationError)
        run_until(base, lambda: listener.tls_handshake_failures == 1)
    finally:
        listener.close()


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(5)
        self.got = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.got += self.buf[:nbytes]
        self.transport.write(bytes(self.buf[:nbytes]))

    def connection_lost(self, exc):
        pass


@pytest.mark.timeout(20)
def test_buffered_protocol_over_tls(tls_server, tls_certs):
    listener, protocols, loop = tls_server(BufferedEcho)
    payload = b"0123456789" * 1000
    with _tls_client(tls_certs, listener.addresses[0]) as client:
        client.sendall(payload)
        got = bytearray()
        while len(got) < len(payload):
            got += client.recv(65536)
    assert bytes(got) == payload


def test_tls_argument_checks(base, tls_certs):
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext or None, not str"):
        start_server(base, Recorder, ssl="yes")
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext or None, not bool"):
        start_server(base, Recorder, ssl=True)
    with pytest.raises(ValueError, match="ssl must be a server-side context"):
        start_server(base, Recorder, ssl=tls_certs.client_context())
    with pytest.raises(ValueError, match="ssl_handshake_timeout must be a finite"):
        start_server(base, Recorder, ssl=tls_certs.server_context(), ssl_handshake_timeout=0)
    with pytest.raises(TypeError, match="ssl_shutdown_timeout must be a number"):
        start_server(base, Recorder, ssl=tls_certs.server_context(), ssl_shutdown_timeout="1")
    with pytest.raises(ValueError, match="ssl must be a client-side context"):
        connect(base, Recorder, "127.0.0.1", 1, ssl=tls_certs.server_context())
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext, a bool or None, not int"):
        connect(base, Recorder, "127.0.0.1", 1, ssl=1)
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        connect(base, Recorder, "127.0.0.1", 1, server_hostname="x")
    with pytest.raises(TypeError, match="server_hostname must be a str"):
        connect(base, Recorder, "127.0.0.1", 1, ssl=True, server_hostname=b"x")


@pytest.mark.timeout(20)
def test_close_that_cannot_flush_ends_at_ssl_shutdown_timeout(tls_server, tls_certs):
    class FloodThenClose(Echo):
        def data_received(self, data):
            self.transport.write(b"f" * (8 << 20))  # more than the socket buffers hold
            self.transport.close()

    listener, protocols, loop = tls_server(FloodThenClose, ssl_shutdown_timeout=0.3)
    with _tls_client(tls_certs, listener.addresses[0]) as client:
        client.sendall(b"go")  # and never read
        assert protocols and protocols[0].lost_event.wait(10)
        [exc] = protocols[0].lost
        assert isinstance(exc, TimeoutError) and "TLS shutdown timed out" in str(exc)
