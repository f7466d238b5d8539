"""Keep-alive HTTP clients in threads, counting what a restart or a reload may lose.

``HttpLoad(address, clients=4, per_connection=20)``: each thread opens a connection, sends up
to ``per_connection`` GETs on it (fewer when the server answers ``Connection: close``), closes
it and opens the next, until stop(). Counted per outcome:
- ``ok``: answered 200; ``bodies``: every distinct body seen, with its last time;
- ``refused``: a connect that failed (nothing was sent);
- ``failed``: a request that was sent and got no complete answer (reset, EOF, timeout) — what
  a zero-downtime restart must keep at 0.
``no_reconnect()`` lets every client finish its current connection but open no new one.
"""

from __future__ import annotations

import http.client
import threading
import time


class HttpLoad:
    def __init__(self, address: tuple, clients: int = 4, per_connection: int = 20,
                 timeout: float = 10.0) -> None:
        self._address = address
        self._per = per_connection
        self._timeout = timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._no_reconnect = threading.Event()
        self.ok = self.refused = 0
        self.failures: list[str] = []
        self.bodies: dict[bytes, float] = {}
        self._threads = [threading.Thread(target=self._run, name=f"http-load-{i}", daemon=True)
                         for i in range(clients)]
        self._in_connection = 0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def __enter__(self) -> HttpLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a load client did not finish"

    def no_reconnect(self) -> None:
        self._no_reconnect.set()

    def connections_open(self) -> int:
        with self._lock:
            return self._in_connection

    def wait_ok(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` more requests have been answered (the load is really running)."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, f"load stuck at {self.ok} answers: {self.failures}"
            assert not self.failures, self.failures
            time.sleep(0.01)

    def _run(self) -> None:
        while not self._stop.is_set() and not self._no_reconnect.is_set():
            conn = http.client.HTTPConnection(*self._address, timeout=self._timeout)
            try:
                conn.connect()
            except OSError:
                with self._lock:
                    self.refused += 1
                time.sleep(0.01)
                continue
            with self._lock:
                self._in_connection += 1
            try:
                self._use(conn)
            finally:
                conn.close()
                with self._lock:
                    self._in_connection -= 1

    def _use(self, conn: http.client.HTTPConnection) -> None:
        for _ in range(self._per):
            if self._stop.is_set():
                return
            try:
                conn.request("GET", "/")
            except OSError as exc:  # a send that failed: the server closed first, nothing lost
                return
            try:
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                return
            with self._lock:
                if resp.status == 200:
                    self.ok += 1
                    self.bodies[body] = time.monotonic()
                else:
                    self.failures.append(f"status {resp.status}: {body[:100]!r}")
            if resp.will_close:
                return
