"""Buffer (libevent's evbuffer): chunk handling, EOL styles, search, size limit, real sockets."""

from __future__ import annotations

import array
import errno
import os
import random
import socket

import pytest

from reactorsvc.io.buffer import (
    EOL_ANY, EOL_CRLF, EOL_CRLF_STRICT, EOL_LF, EOL_NUL, SCRATCH_SIZE, Buffer, BufferFull,
    EolStyle,
)


def chunked(*parts: bytes, **kwargs) -> Buffer:
    """A buffer whose chunk boundaries are exactly between ``parts``."""
    buf = Buffer(**kwargs)
    for part in parts:
        buf.append(part)
    return buf


# ---------------------------------------------------------------------------- append / read


def test_append_bytes_keeps_the_object_and_bytearray_is_copied():
    data = b"x" * 100
    buf = Buffer()
    buf.append(data)
    assert buf.read() is data  # no copy for immutable bytes
    mutable = bytearray(b"abc")
    buf.append(mutable)
    buf.append(memoryview(mutable)[1:])
    mutable[:] = b"ZZZ"  # the caller mutating its buffer must not change ours
    assert buf.read() == b"abcbc"


def test_append_any_buffer_counts_bytes_not_items():
    buf = Buffer()
    buf.append(array.array("i", [1, 2, 3]))
    assert len(buf) == 3 * array.array("i").itemsize
    assert buf.read() == array.array("i", [1, 2, 3]).tobytes()


@pytest.mark.parametrize("bad", ["text", 5, None, True, [b"a"]])
def test_append_rejects_non_bytes_naming_the_argument(bad):
    buf = Buffer()
    with pytest.raises(TypeError, match=r"^data must be a bytes-like object, not "):
        buf.append(bad)
    assert len(buf) == 0


def test_len_read_peek_across_chunks():
    buf = chunked(b"hello", b" ", b"world", b"!")
    assert len(buf) == 12
    assert buf.peek(3) == b"hel"
    assert buf.peek(8) == b"hello wo"  # spans three chunks
    assert buf.peek(8) == b"hello wo"
    assert len(buf) == 12
    assert buf.read(7) == b"hello w"
    assert buf.read(0) == b""
    assert len(buf) == 5
    assert buf.peek() == b"orld!"
    assert buf.read(100) == b"orld!"  # more than buffered: what there is
    assert buf.read() == b""
    assert buf.peek(4) == b""


def test_drain_partial_whole_and_past_the_end():
    buf = chunked(b"abc", b"def", b"ghi")
    assert buf.drain(2) == 2
    assert buf.peek() == b"cdefghi"
    assert buf.drain(4) == 4  # ends exactly on a chunk boundary
    assert buf.peek() == b"ghi"
    assert buf.drain(10) == 3
    assert len(buf) == 0
    assert buf.drain(1) == 0


@pytest.mark.parametrize("method", ["drain", "read", "peek"])
def test_bad_counts_name_the_argument(method):
    buf = Buffer(b"abc")
    with pytest.raises(ValueError, match=r"^n must be >= 0"):
        getattr(buf, method)(-2)
    with pytest.raises(TypeError, match=r"^n must be an int, not str"):
        getattr(buf, method)("1")
    with pytest.raises(TypeError, match=r"^n must be an int, not float"):
        getattr(buf, method)(1.0)
    assert buf.peek() == b"abc"


def test_extend_is_all_or_nothing():
    buf = Buffer(max_size=10)
    buf.extend([b"abc", bytearray(b"de"), b""])
    assert buf.peek() == b"abcde"
    with pytest.raises(BufferFull):
        buf.extend([b"123", b"456"])
    assert buf.peek() == b"abcde"
    with pytest.raises(TypeError, match=r"^chunks item must be a bytes-like object, not str"):
        buf.extend([b"x", "y"])
    assert buf.peek() == b"abcde"


# ---------------------------------------------------------------------------- search


def test_search_spans_chunk_boundaries():
    # "needle" split over four chunks, one of them shorter than the pattern's overlap.
    buf = chunked(b"xxne", b"e", b"dl", b"e yy needle")
    assert buf.search(b"needle") == 2
    assert buf.search(b"needle", 3) == 12
    assert buf.search(b"needle", 13) == -1
    assert buf.search(b"eed", 0) == 3
    assert buf.search(b"e yy") == 7
    assert buf.search(b"absent") == -1
    buf.drain(3)  # the head chunk now starts at an offset
    assert buf.search(b"needle") == 9
    assert buf.search(bytearray(b"edl")) == 1


def test_search_edge_arguments():
    buf = chunked(b"ab", b"cd")
    assert buf.search(b"") == 0
    assert buf.search(b"", 4) == 4
    assert buf.search(b"", 5) == -1
    assert buf.search(b"abcde") == -1
    with pytest.raises(ValueError, match=r"^start must be >= 0, got -1"):
        buf.search(b"a", -1)
    with pytest.raises(TypeError, match=r"^pattern must be a bytes-like object, not str"):
        buf.search("a")


def test_search_matches_bytes_find_randomized():
    rng = random.Random(4)
    for _ in range(300):
        parts = [bytes(rng.choice(b"ab") for _ in range(rng.randint(1, 5)))
                 for _ in range(rng.randint(1, 8))]
        buf = chunked(*parts)
        skip = rng.randint(0, len(buf) - 1)
        buf.drain(skip)
        flat = b"".join(parts)[skip:]
        pattern = bytes(rng.choice(b"ab") for _ in range(rng.randint(1, 6)))
        start = rng.randint(0, len(flat))
        assert buf.search(pattern, start) == flat.find(pattern, start), (parts, skip, pattern)


# ---------------------------------------------------------------------------- readline


def drain_lines(buf: Buffer, style) -> list[bytes]:
    lines = []
    while (line := buf.readline(style)) is not None:
        lines.append(line)
    return lines


def test_eol_lf():
    buf = Buffer(b"one\ntwo\r\n\nthree")
    assert drain_lines(buf, EOL_LF) == [b"one", b"two\r", b""]
    assert buf.peek() == b"three"  # an incomplete line stays buffered
    buf.append(b"\n")
    assert buf.readline(EOL_LF) == b"three"
    assert len(buf) == 0


def test_eol_crlf_accepts_both_and_waits_for_lf_after_a_trailing_cr():
    buf = Buffer(b"a\r\nb\nc\r\r\n\r\n\nd\r")
    assert drain_lines(buf, EOL_CRLF) == [b"a", b"b", b"c\r", b"", b""]
    assert buf.peek() == b"d\r"  # CR at the end: wait for the LF
    buf.append(b"\n")
    assert buf.readline(EOL_CRLF) == b"d"
    assert len(buf) == 0


def test_eol_crlf_strict_treats_a_lone_lf_as_data():
    buf = Buffer(b"a\nb\r\n\r\nc\r")
    assert drain_lines(buf, EOL_CRLF_STRICT) == [b"a\nb", b""]
    assert buf.peek() == b"c\r"
    buf.append(b"x\r\n")
    assert buf.readline(EOL_CRLF_STRICT) == b"c\rx"


def test_eol_any_eats_the_whole_run_of_cr_and_lf():
    buf = Buffer(b"a\r\n\r\nb\n\rc\rd\n")
    assert drain_lines(buf, EOL_ANY) == [b"a", b"b", b"c", b"d"]
    assert len(buf) == 0


def test_eol_any_trailing_cr_ends_the_line_as_libevent_does():
    buf = Buffer(b"a\r")
    assert buf.readline(EOL_ANY) == b"a"
    buf.append(b"\nb\n")
    assert drain_lines(buf, EOL_ANY) == [b"", b"b"]


def test_eol_nul():
    buf = Buffer(b"k\0v\0\0rest")
    assert drain_lines(buf, EOL_NUL) == [b"k", b"v", b""]
    assert buf.peek() == b"rest"


@pytest.mark.parametrize("style, eol", [
    (EOL_LF, b"\n"), (EOL_CRLF, b"\r\n"), (EOL_CRLF, b"\n"), (EOL_CRLF_STRICT, b"\r\n"),
    (EOL_ANY, b"\r\n"), (EOL_NUL, b"\0"),
])
def test_line_and_eol_spanning_chunks(style, eol):
    # The line, and the EOL itself, are cut into one-byte chunks.
    buf = chunked(*(bytes([c]) for c in b"line one" + eol + b"tail"))
    buf.drain(1)
    assert buf.search_eol(style) == (7, len(eol))
    assert buf.readline(style) == b"ine one"
    assert buf.peek() == b"tail"
    assert buf.readline(style) is None
    assert buf.peek() == b"tail"


def test_search_eol_from_start_and_crlf_at_start_position():
    buf = Buffer(b"ab\r\ncd\r\n")
    assert buf.search_eol(EOL_CRLF, 0) == (2, 2)
    assert buf.search_eol(EOL_CRLF, 4) == (6, 2)
    # libevent: a CR before `start` is not part of the EOL found from `start`.
    assert buf.search_eol(EOL_CRLF, 3) == (3, 1)
    assert buf.search_eol(EOL_CRLF_STRICT, 7) == (-1, 0)
    assert buf.search_eol(EOL_ANY, 1) == (2, 2)


def test_bad_eol_style_is_named():
    buf = Buffer(b"a\n")
    with pytest.raises(ValueError, match=r"^eol_style must be one of \['ANY', "):
        buf.readline(7)
    with pytest.raises(TypeError, match=r"^eol_style must be an EolStyle, not str"):
        buf.readline("\n")
    assert buf.readline(int(EolStyle.LF)) == b"a"


# ---------------------------------------------------------------------------- size limit


def test_size_limit_rejects_and_appends_nothing():
    buf = Buffer(b"12345", max_size=8)
    with pytest.raises(BufferFull) as info:
        buf.append(b"6789")
    assert str(info.value) == ("buffer size limit exceeded: max_size is 8 bytes, "
                               "the buffer would hold 9 bytes")
    assert (info.value.limit, info.value.size) == (8, 9)
    assert isinstance(info.value, ValueError)
    assert buf.peek() == b"12345"
    buf.append(b"678")  # exactly to the limit is fine
    assert len(buf) == 8
    buf.drain(2)
    buf.append(bytearray(b"ab"))
    assert buf.peek() == b"345678ab"


def test_size_limit_arguments():
    with pytest.raises(ValueError, match=r"^max_size must be >= 0, got -1"):
        Buffer(max_size=-1)
    with pytest.raises(TypeError, match=r"^max_size must be an int, not str"):
        Buffer(max_size="10")
    buf = Buffer(b"abcd")
    buf.max_size = 2  # lowering below the current size stops growth, drops nothing
    assert len(buf) == 4
    with pytest.raises(BufferFull):
        buf.append(b"e")
    buf.max_size = None
    buf.append(b"e")
    assert buf.peek() == b"abcde"


def test_read_from_respects_the_size_limit(pair):
    a, b = pair
    b.sendall(b"0123456789")
    buf = Buffer(b"xy", max_size=6)
    assert buf.read_from(a) == 4  # only the room left
    assert buf.peek() == b"xy0123"
    with pytest.raises(BufferFull, match=r"max_size is 6 bytes"):
        buf.read_from(a)
    assert a.recv(100) == b"456789"  # nothing was consumed from the socket


# ---------------------------------------------------------------------------- real sockets


def test_read_from_socket_counts_and_eof(pair):
    a, b = pair
    buf = Buffer()
    with pytest.raises(BlockingIOError):
        buf.read_from(a)
    b.sendall(b"hello")
    assert buf.read_from(a) == 5
    b.sendall(b"world")
    assert buf.read_from(a, max=3) == 3
    assert buf.read_from(a) == 2
    assert buf.read() == b"helloworld"
    b.shutdown(socket.SHUT_WR)
    assert buf.read_from(a) == 0
    assert len(buf) == 0


def test_read_from_reuses_scratch_without_aliasing(pair):
    a, b = pair
    buf = Buffer()
    b.sendall(b"first")
    buf.read_from(a)
    first = buf.peek()
    b.sendall(b"SECOND")
    buf.read_from(a)
    assert first == b"first"  # the second read into the same scratch did not overwrite it
    assert buf.read() == b"firstSECOND"


def test_read_from_caps_one_read_at_the_scratch_size(pair):
    a, b = pair
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    payload = os.urandom(SCRATCH_SIZE + 1000)
    b.setblocking(True)
    b.sendall(payload)
    buf = Buffer()
    assert buf.read_from(a, max=10 * SCRATCH_SIZE) == SCRATCH_SIZE
    assert buf.read_from(a) == 1000
    assert buf.read() == payload


def test_read_from_and_write_to_pipe_fds():
    r, w = os.pipe()
    try:
        buf = chunked(b"ab", b"cd", b"ef")
        buf.drain(1)
        assert buf.write_to(w) == 5
        assert len(buf) == 0
        assert buf.read_from(r, max=2) == 2
        assert buf.read_from(r) == 3
        assert buf.read() == b"bcdef"
    finally:
        os.close(r)
        os.close(w)


def test_bad_source_and_sink_are_named(pair):
    buf = Buffer(b"x")
    with pytest.raises(TypeError, match=r"^source must be a socket or an int fd, not str"):
        buf.read_from("sock")
    with pytest.raises(ValueError, match=r"^source must be a socket or an fd >= 0, got -1"):
        buf.read_from(-1)
    with pytest.raises(ValueError, match=r"^max must be >= 1"):
        buf.read_from(pair[0], max=0)
    with pytest.raises(TypeError, match=r"^sink must be a socket or an int fd, not NoneType"):
        buf.write_to(None)
    assert buf.peek() == b"x"


def test_write_to_sends_many_chunks_in_order(pair):
    a, b = pair
    parts = [bytes([65 + i % 26]) * (i + 1) for i in range(200)]  # > the iov cap
    buf = chunked(*parts)
    buf.drain(3)
    expected = b"".join(parts)[3:]
    assert buf.write_to(a) == len(expected)
    assert len(buf) == 0
    got = bytearray()
    while len(got) < len(expected):
        got += b.recv(65536)
    assert bytes(got) == expected
    assert buf.write_to(a) == 0  # nothing to send


def test_write_to_partial_send_keeps_the_rest(pair):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    payload = os.urandom(1 << 20)
    buf = chunked(*(payload[i:i + 10000] for i in range(0, len(payload), 10000)))
    sent = buf.write_to(a)
    assert 0 < sent < len(payload)
    assert len(buf) == len(payload) - sent
    assert buf.peek(100) == payload[sent:sent + 100]
    assert buf.write_to(a) == 0  # the peer reads nothing: kernel full, not an error
    got = bytearray()
    while len(got) < len(payload):  # the peer drains; each write_to makes progress
        try:
            got += b.recv(65536)
        except BlockingIOError:
            assert buf.write_to(a) > 0
    assert bytes(got) == payload
    assert len(buf) == 0


def test_write_to_closed_peer_raises(pair):
    a, b = pair
    b.close()
    buf = chunked(b"abc", b"def")
    with pytest.raises(OSError) as info:
        buf.write_to(a)
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
    assert buf.peek() == b"abcdef"


# ---------------------------------------------------------------------------- model test


def test_randomized_against_a_bytearray_model():
    rng = random.Random(20240401)
    buf = Buffer(max_size=4000)
    model = bytearray()
    for step in range(5000):
        op = rng.randrange(7)
        if op <= 1:
            data = bytes(rng.choice(b"ab\r\n") for _ in range(rng.randint(0, 40)))
            if len(model) + len(data) > 4000:
                with pytest.raises(BufferFull):
                    buf.append(data)
            elif op == 0:
                buf.append(data)
                model += data
            else:
                cut = rng.randint(0, len(data))
                buf.extend([data[:cut], b"", bytearray(data[cut:])])
                model += data
        elif op == 2:
            n = rng.randint(0, 50)
            assert buf.read(n) == bytes(model[:n]), step
            del model[:n]
        elif op == 3:
            n = rng.randint(0, 50)
            assert buf.peek(n) == bytes(model[:n]), step
        elif op == 4:
            n = rng.randint(0, 50)
            assert buf.drain(n) == min(n, len(model))
            del model[:n]
        elif op == 5:
            pattern = bytes(rng.choice(b"ab\r\n") for _ in range(rng.randint(1, 4)))
            start = rng.randint(0, len(model) + 1)
            assert buf.search(pattern, start) == model.find(pattern, start), step
        else:
            line = buf.readline(EOL_CRLF)
            lf = model.find(b"\n")
            if lf < 0:
                assert line is None, step
            else:
                end = lf - 1 if lf > 0 and model[lf - 1] == 13 else lf
                assert line == bytes(model[:end]), step
                del model[:lf + 1]
        assert len(buf) == len(model), step
    assert buf.read() == bytes(model)
