"""Fixtures for the reactor contract suite: one EventBase per backend, socketpairs, a base factory.

Every behaviour test takes `backend`, so it runs once per method in `supported_methods()`
(libevent's test.sh runs regress once per EVENT_NO* combination; this is the same idea).
Tests list `pair` before `backend` so the base is freed before the sockets are closed.
"""

from __future__ import annotations

import socket
import time

import pytest

import reactorsvc


def build_base(method: str | None = None, flags: int = 0,
               dispatch: tuple | None = None) -> reactorsvc.EventBase:
    """An EventBase that uses exactly `method` (all others avoided), env ignored."""
    cfg = reactorsvc.EventConfig()
    if method is not None:
        for other in reactorsvc.supported_methods():
            if other != method:
                cfg.avoid_method(other)
    # The environment must not silently change the backend under test.
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV | flags)
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
        pass  # the test freed it already


@pytest.fixture(params=reactorsvc.supported_methods())
def backend(request):
    """An EventBase on one backend; the suite runs once per supported method."""
    base = build_base(request.param)
    yield base
    _free_quietly(base)


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


@pytest.fixture
def spin():
    """spin(seconds): busy-wait on the monotonic clock (for tests whose subject is time)."""
    def _spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    return _spin
