"""Fixtures for the reactor contract suite: `backend`, one EventBase per backend (make_base and
pair, the base factory and socketpairs, live in tests/conftest.py).

Every behaviour test takes `backend`, so it runs once per method in `supported_methods()`
(libevent's test.sh runs regress once per EVENT_NO* combination; this is the same idea).
Tests list `pair` before `backend` so the base is freed before the sockets are closed.
"""

from __future__ import annotations

import time

import pytest

import reactorsvc


@pytest.fixture(params=reactorsvc.supported_methods())
def backend(request, make_base):
    """An EventBase on one backend; the suite runs once per supported method."""
    return make_base(request.param)


@pytest.fixture
def spin():
    """spin(seconds): busy-wait on the monotonic clock (for tests whose subject is time)."""
    def _spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    return _spin
