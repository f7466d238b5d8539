"""Which backend a config gets: EventConfig.resolve_method() (no loop built), the fall-through
when a backend's kernel object cannot be made, and a ReactorError that says why none fits."""

from __future__ import annotations

import contextlib
import os
import resource

import pytest

import reactorsvc
from reactorsvc import (EV_FEATURE_EARLY_CLOSE, EVENT_BASE_FLAG_IGNORE_ENV, EVENT_BASE_FLAG_NOLOCK,
                        EventBase, EventConfig, ReactorError)

HAS_EPOLL = "epoll" in reactorsvc.supported_methods()


def _config(*avoid: str, flags: int = EVENT_BASE_FLAG_IGNORE_ENV) -> EventConfig:
    cfg = EventConfig()
    for name in avoid:
        cfg.avoid_method(name)
    cfg.set_flag(flags)
    return cfg


@contextlib.contextmanager
def _no_new_fds():
    """RLIMIT_NOFILE lowered to the lowest free fd: creating any fd fails with EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = os.dup(0)
    os.close(probe)
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("method", reactorsvc.supported_methods())
def test_resolve_method_names_what_event_base_uses(method):
    cfg = _config(*(m for m in reactorsvc.supported_methods() if m != method))
    assert cfg.resolve_method() == method
    with EventBase(cfg) as base:
        assert base.method == method


def test_resolve_method_with_every_backend_avoided_names_them():
    cfg = _config(*reactorsvc.supported_methods())
    with pytest.raises(ReactorError) as info:
        cfg.resolve_method()
    for name in reactorsvc.supported_methods():
        assert f"{name}: avoided" in str(info.value)
    with pytest.raises(ReactorError, match="epoll: avoided" if HAS_EPOLL else "avoided"):
        EventBase(cfg)


@pytest.mark.skipif(not HAS_EPOLL, reason="only epoll has EARLY_CLOSE here")
def test_required_feature_no_other_backend_has_is_named():
    cfg = _config("epoll")
    cfg.require_features(EV_FEATURE_EARLY_CLOSE)
    with pytest.raises(ReactorError) as info:
        cfg.resolve_method()
    message = str(info.value)
    assert "epoll: avoided" in message
    assert "poll: lacks EARLY_CLOSE" in message
    assert "required features: EARLY_CLOSE" in message


def test_an_environment_disabled_backend_is_named(monkeypatch):
    first = reactorsvc.supported_methods()[0]
    monkeypatch.setenv(f"EVENT_NO{first.upper()}", "1")
    cfg = _config(*reactorsvc.supported_methods()[1:], flags=0)
    with pytest.raises(ReactorError, match=f"{first}: disabled by EVENT_NO{first.upper()}"):
        cfg.resolve_method()


@pytest.mark.skipif(not HAS_EPOLL, reason="needs a backend that makes a kernel object")
def test_a_backend_that_fails_to_initialise_falls_through_to_the_next():
    # NOLOCK: no notifier fd, so only epoll_create() needs a new fd; poll and select do not.
    cfg = _config(flags=EVENT_BASE_FLAG_IGNORE_ENV | EVENT_BASE_FLAG_NOLOCK)
    assert cfg.resolve_method() == "epoll"
    with _no_new_fds():
        base = EventBase(cfg)
    try:
        assert base.method == reactorsvc.supported_methods()[1]
    finally:
        base.free()


@pytest.mark.skipif(not HAS_EPOLL, reason="needs a backend that makes a kernel object")
def test_when_the_only_fitting_backend_fails_to_initialise_the_error_says_so():
    cfg = _config(*reactorsvc.supported_methods()[1:],
                  flags=EVENT_BASE_FLAG_IGNORE_ENV | EVENT_BASE_FLAG_NOLOCK)
    with _no_new_fds(), pytest.raises(ReactorError, match=r"epoll: cannot initialise: .*Errno 24"):
        EventBase(cfg)
