"""End-to-end echo: one asyncio.Protocol class on asyncio and on Server; many clients, in order."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time

import pytest

from ..helpers import TIMEOUT, recv_exactly, recv_until_eof
from .conftest import Echo, Made, worker_stats


class AsyncioEndpoint:
    """loop.create_server(factory) on an asyncio loop running in a thread of its own."""

    def __init__(self, factory) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asyncio-echo")
        self.thread.start()
        coro = self.loop.create_server(factory, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)
        self.address = self.server.sockets[0].getsockname()[:2]

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


@pytest.fixture(params=["asyncio", "reactorsvc"])
def echo_endpoint(request, serve):
    """(Made(Echo), address, server thread name prefix) served by asyncio or by Server."""
    made = Made(Echo)
    if request.param == "asyncio":
        endpoint = AsyncioEndpoint(made)
        yield made, endpoint.address, "asyncio-echo"
        endpoint.close()
    else:
        server = serve(made, workers=2)
        yield made, server.addresses[0], "reactorsvc-worker-"


def test_same_asyncio_protocol_class_on_asyncio_and_on_server(echo_endpoint, clients):
    made, address, thread_prefix = echo_endpoint
    socks = [clients.connect(address) for _ in range(3)]
    for i, sock in enumerate(socks):
        for payload in (b"hello %d" % i, b"world" * 100):
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload
    for sock in socks:
        sock.shutdown(socket.SHUT_WR)  # eof_received returns None: the server closes
        assert recv_until_eof(sock) == b""
    made.wait_lost(3)
    assert len(made.protocols) == 3
    for proto in made.protocols:
        names = proto.names()
        assert names[0] == "made" and names[-2:] == ["eof", "lost"]
        assert set(names[1:-2]) == {"data"}
        assert proto.calls[-1] == ("lost", None)
        assert proto.thread.name.startswith(thread_prefix)
    received = sorted(b"".join(c[1] for c in p.calls if c[0] == "data") for p in made.protocols)
    assert received == sorted(b"hello %d" % i + b"world" * 100 for i in range(3))


def _message(cid: int, i: int) -> bytes:
    return b"%04d:%04d:payload\n" % (cid, i)   # 18 bytes, every one distinct


MSG_LEN = len(_message(0, 0))


def run_pipelined_clients(address: tuple, nclients: int, nmsgs: int, window: int,
                          timeout: float) -> list[bytes]:
    """nclients connections multiplexed on one selector, each sending nmsgs messages, one
    send() each, with up to `window` of them not yet echoed. Returns what each received."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    states: list[dict] = []
    try:
        for cid in range(nclients):
            sock = socket.create_connection(address, timeout=TIMEOUT)
            socks.append(sock)
            sock.setblocking(False)
            state = {"cid": cid, "sent": 0, "got": bytearray()}
            states.append(state)
            sel.register(sock, selectors.EVENT_READ, state)
            _send_more(sock, state, nmsgs, window)
        remaining = nclients
        deadline = time.monotonic() + timeout
        while remaining:
            left = deadline - time.monotonic()
            assert left > 0, f"{remaining} clients not done after {timeout} s"
            for key, _ in sel.select(left):
                state = key.data
                chunk = key.fileobj.recv(65536)
                assert chunk, f"client {state['cid']}: EOF after {len(state['got'])} bytes"
                state["got"] += chunk
                if len(state["got"]) == nmsgs * MSG_LEN:
                    remaining -= 1
                    sel.unregister(key.fileobj)
                else:
                    _send_more(key.fileobj, state, nmsgs, window)
        return [bytes(state["got"]) for state in states]
    finally:
        sel.close()
        for sock in socks:
            sock.close()


def _send_more(sock: socket.socket, state: dict, nmsgs: int, window: int) -> None:
    echoed = len(state["got"]) // MSG_LEN
    while state["sent"] < nmsgs and state["sent"] - echoed < window:
        message = _message(state["cid"], state["sent"])
        assert sock.send(message) == len(message)   # tiny: the socket buffer always takes it
        state["sent"] += 1


def test_200_clients_200_messages_echoed_in_order_on_4_workers(serve):
    made = Made(Echo)
    server = serve(made, workers=4)
    nclients, nmsgs = 200, 200
    got = run_pipelined_clients(server.addresses[0], nclients, nmsgs, window=8, timeout=20.0)
    for cid in range(nclients):
        assert got[cid] == b"".join(_message(cid, i) for i in range(nmsgs)), f"client {cid}"
    made.wait_lost(nclients)
    assert all(exc is None for _, exc in made.lost)
    server.stop(1)
    assert worker_stats(server, "connections_total") == [50, 50, 50, 50]
    per_worker = 50 * nmsgs * MSG_LEN
    assert worker_stats(server, "bytes_in") == [per_worker] * 4
    assert worker_stats(server, "bytes_out") == [per_worker] * 4
    sup = server.stats()["supervisor"]
    assert (sup["accepts"], sup["handoffs"], sup["rejected"]) == (200, 200, 0)
