"""Protocol callbacks that raise: reported through the base's exception handler (asyncio's
set_exception_handler), ending only their own connection (SystemExit and KeyboardInterrupt
included), while pause_writing()/resume_writing() errors are reported and the connection goes
on."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from reactorsvc.io.connection import Connection

from .conftest import Recorder, read_available, run_until


@pytest.fixture
def reports(base):
    """The contexts the base's exception handler receives."""
    got: list[dict] = []
    base.set_exception_handler(lambda b, context: got.append(context))
    yield got
    base.set_exception_handler(None)


def _serve(base, protocol):
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    conn = Connection.start(base, ours, protocol)
    run_until(base, lambda: protocol.transport is not None, what="connection_made")
    return conn, peer


class RaisesOnData(Recorder):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        raise self.exc


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), ValueError("bug")],
                         ids=["SystemExit", "KeyboardInterrupt", "ValueError"])
def test_a_raising_data_received_ends_only_its_connection(base, reports, exc):
    bad, good = RaisesOnData(exc), Recorder()
    bad_conn, bad_peer = _serve(base, bad)
    good_conn, good_peer = _serve(base, good)
    try:
        bad_peer.send(b"boom")
        run_until(base, lambda: bad.lost, what="the raising connection to close")
        assert bad.lost_exc() is exc
        [context] = reports
        assert context["exception"] is exc and "data_received" in context["message"]
        assert context["transport"] is bad_conn and context["protocol"] is bad
        good_peer.send(b"still here")
        run_until(base, lambda: bytes(good.data) == b"still here", what="the other connection")
        assert not good.lost and not good_conn.is_closing()
    finally:
        good_conn.abort()
        run_until(base, lambda: good.lost, what="cleanup")
        bad_peer.close()
        good_peer.close()


class RaisesOnMade(Recorder):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_connection_made_closes_that_connection(base, reports):
    proto = RaisesOnMade()
    conn, peer = _serve(base, proto)
    run_until(base, lambda: proto.lost, what="connection_lost")
    assert isinstance(proto.lost_exc(), KeyboardInterrupt)
    assert "connection_made" in reports[0]["message"]
    peer.close()


class FlakyFlowControl(Recorder):
    def pause_writing(self) -> None:
        super().pause_writing()
        raise RuntimeError("pause bug")

    def resume_writing(self) -> None:
        super().resume_writing()
        raise SystemExit("resume bug")


def test_pause_and_resume_writing_errors_are_reported_and_the_connection_goes_on(base, reports):
    proto = FlakyFlowControl()
    conn, peer = _serve(base, proto)
    payload = b"x" * (1 << 20)
    conn.write(payload)  # over the high watermark: pause_writing() raises inside write()
    assert proto.names() == ["made", "pause"]
    assert [c["message"] for c in reports] == ["protocol.pause_writing() failed"]
    assert not conn.is_closing()
    got = bytearray()
    run_until(base, lambda: read_available(peer, got) or len(got) >= len(payload)
              and "resume" in proto.names(), what="the flush and resume_writing()")
    assert isinstance(reports[1]["exception"], SystemExit)
    assert "resume_writing" in reports[1]["message"]
    conn.write(b"after")
    run_until(base, lambda: read_available(peer, got) or got.endswith(b"after"),
              what="a write after the errors")
    assert bytes(got) == payload + b"after" and not proto.lost
    conn.close()
    run_until(base, lambda: proto.lost, what="close")
    assert proto.lost_exc() is None
    peer.close()


def test_the_default_report_is_a_structlog_error(base):
    proto = RaisesOnData(ValueError("bug"))
    conn, peer = _serve(base, proto)
    peer.send(b"x")
    with capture_logs() as logs:
        run_until(base, lambda: proto.lost, what="connection_lost")
    [entry] = [e for e in logs if e["event"] == "protocol_callback_failed"]
    assert entry["log_level"] == "error" and "data_received" in entry["message"]
    assert entry["exc_info"] is proto.exc
    peer.close()
