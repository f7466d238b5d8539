"""Server(ssl=): TLS handshakes in the worker threads, connection_made after them, failures
counted per worker (stats() → /metrics), others served."""

from __future__ import annotations

import socket
import ssl

import pytest

from ..helpers import wait_for
from .conftest import Echo, Made, worker_stats


def _client(tls_certs, address):
    raw = socket.create_connection(address, timeout=5)
    return tls_certs.client_context().wrap_socket(raw, server_hostname="localhost")


@pytest.mark.timeout(30)
def test_server_tls_echo_on_every_worker_and_failures_counted(serve, tls_certs):
    made = Made(Echo)
    server = serve(made, workers=2, ssl=tls_certs.server_context())
    address = server.addresses[0]
    clients = [_client(tls_certs, address) for _ in range(4)]
    try:
        for i, c in enumerate(clients):
            c.sendall(b"hello %d" % i)
            assert c.recv(64) == b"hello %d" % i
    finally:
        for c in clients:
            c.close()
    made.wait_lost(4)
    threads = {p.thread.name for p in made.protocols}
    assert threads == {"reactorsvc-worker-0", "reactorsvc-worker-1"}
    with socket.create_connection(address, timeout=5) as plain:
        plain.sendall(b"not tls\r\n\r\n")
        try:
            while plain.recv(4096):
                pass
        except ConnectionResetError:
            pass
    wait_for(lambda: sum(worker_stats(server, "tls_handshake_failures")) == 1,
               what="the failed handshake to be counted")
    assert len(made.protocols) == 5 and made.protocols[-1].calls == []


def test_server_ssl_argument_is_checked(tls_certs):
    from reactorsvc import Server
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext or None"):
        Server(Echo, ssl="cert.pem")
    with pytest.raises(ValueError, match="server-side context"):
        Server(Echo, ssl=ssl.create_default_context())


@pytest.mark.timeout(20)
def test_server_datagram_endpoint_on_every_worker(serve):
    import threading

    from reactorsvc import Server
    from reactorsvc.daemon.services.echo import EchoProtocol
    threads = []

    class Echo2(EchoProtocol):
        def datagram_received(self, data, addr):
            threads.append(threading.current_thread().name)
            super().datagram_received(data, addr)

    server = Server(workers=2)
    server.add_datagram_endpoint("udp", Echo2, where=("127.0.0.1", 0))
    server.start()
    try:
        [address] = server.datagram_addresses
        assert len(server.datagram_endpoints["udp"]) == 2
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
        try:
            for i, c in enumerate(clients):
                c.settimeout(5)
                c.sendto(b"dgram %d" % i, address)
                assert c.recvfrom(100) == (b"dgram %d" % i, address)
        finally:
            for c in clients:
                c.close()
        assert set(threads) <= {"reactorsvc-worker-0", "reactorsvc-worker-1"}
    finally:
        server.stop(0)
    assert all(t.is_closing() for t in server.datagram_endpoints["udp"])
