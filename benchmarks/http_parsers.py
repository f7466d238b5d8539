"""Compare HTTP/1.1 request parsers: smuggling classics and a parse microbenchmark.

Run: ``python benchmarks/http_parsers.py [--quick]`` (needs the ``bench`` extra: httptools, h11; and
gunicorn_h1c if installed). For each parser it prints how it treats the request-smuggling
classics (``reject`` is what RFC 9112 asks for) and the median time to parse one pipelined
keep-alive GET, interleaved over rounds. Not imported by tests.
"""

from __future__ import annotations

import statistics
import sys
import time

GET = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"

CASES: dict[str, bytes] = {
    "CL of 5,000 digits": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "CL 2^64+5": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\n",
    "duplicate CL (conflicting)": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "CL + TE": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bare LF after chunk data": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n",
    "bare LF after chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n",
    "leading space in chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\na\r\n0\r\n\r\n",
    "junk in chunk extension": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01b\r\na\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
    "TE: chunked, identity": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
}


def _httptools(data: bytes) -> str:
    import httptools

    done: list[int] = []

    class P:
        def on_message_complete(self) -> None:
            done.append(1)

    parser = httptools.HttpRequestParser(P())
    try:
        parser.feed_data(data)
    except httptools.HttpParserError as exc:
        return f"reject ({type(exc).__name__})"
    return "accept" if done else "waits for more"


def _h11(data: bytes) -> str:
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "waits for more"
            if isinstance(event, h11.EndOfMessage):
                return "accept"
    except h11.RemoteProtocolError as exc:
        return f"reject ({exc.error_status_hint})"
    except ValueError as exc:  # what h11 raises on some malformed values
        return f"raises {type(exc).__name__}"


def _h1c(data: bytes) -> str:
    import gunicorn_h1c

    done: list[int] = []
    parser = gunicorn_h1c.H1CProtocol(on_message_complete=lambda: done.append(1))
    try:
        parser.feed(data)
    except gunicorn_h1c.ParseError as exc:
        return f"reject ({type(exc).__name__})"
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    return "accept" if done else "waits for more"


def _bench_httptools(n: int) -> float:
    import httptools

    class P:
        def on_url(self, url: bytes) -> None:
            pass

        def on_header(self, name: bytes, value: bytes) -> None:
            pass

        def on_message_complete(self) -> None:
            pass

    parser = httptools.HttpRequestParser(P())
    t = time.perf_counter()
    for _ in range(n):
        parser.feed_data(GET)
        parser.get_method()
        parser.should_keep_alive()
    return time.perf_counter() - t


def _bench_h11(n: int) -> float:
    import h11

    conn = h11.Connection(h11.SERVER)
    resp = h11.Response(status_code=200, headers=[("content-length", "0")])
    t = time.perf_counter()
    for _ in range(n):
        conn.receive_data(GET)
        conn.next_event()
        conn.next_event()
        conn.send(resp)
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
    return time.perf_counter() - t


def _bench_h1c(n: int) -> float:
    import gunicorn_h1c

    parser = gunicorn_h1c.H1CProtocol(on_message_complete=lambda: None)
    t = time.perf_counter()
    for _ in range(n):
        parser.feed(GET)
        parser.method  # noqa: B018  (what a server reads)
        parser.reset()  # not allowed inside a callback: once per request, after feed()
    return time.perf_counter() - t


def _available() -> dict[str, tuple]:
    found = {}
    for name, mod, probe, bench in (("httptools", "httptools", _httptools, _bench_httptools),
                                     ("h11", "h11", _h11, _bench_h11),
                                     ("gunicorn_h1c", "gunicorn_h1c", _h1c, _bench_h1c)):
        try:
            __import__(mod)
        except ImportError:
            continue
        found[name] = (probe, bench)
    return found


def main() -> None:
    quick = "--quick" in sys.argv[1:]  # a smoke run: the matrix, and timings that mean nothing
    parsers = _available()
    gil = getattr(sys, "_is_gil_enabled", None)
    print(f"python {sys.version.split()[0]}; GIL enabled after imports: "
          f"{gil() if gil else 'n/a (not a free-threaded build)'}")
    for label, data in CASES.items():
        print(f"{label:30s}", "  ".join(f"{n}: {p(data)}" for n, (p, _) in parsers.items()))
    n, rounds = (200, 1) if quick else (20000, 7)
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(rounds):  # interleaved, so drift hits every parser alike
        for name, (_, bench) in parsers.items():
            times[name].append(bench(n) / n * 1e6)
    base = statistics.median(times["httptools"]) if "httptools" in times else None
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = f"  {med / base:.2f}x httptools" if base else ""
        print(f"parse one keep-alive GET: {name:13s} {med:6.2f} us (median of {rounds}){ratio}")


if __name__ == "__main__":
    main()
