"""Constants, supported_methods(), EventConfig and the EVENT_NO* environment (regress.c's
test_methods, test_base_features, test_base_environ, in spirit)."""

from __future__ import annotations

import pytest
import structlog

import reactorsvc
from reactorsvc import EventConfig, EventBase, ReactorError

KNOWN = ("epoll", "kqueue", "poll", "select")


def test_constants_keep_libevent_values():
    values = {
        "EV_TIMEOUT": 0x01, "EV_READ": 0x02, "EV_WRITE": 0x04, "EV_SIGNAL": 0x08,
        "EV_PERSIST": 0x10, "EV_ET": 0x20, "EV_FINALIZE": 0x40, "EV_CLOSED": 0x80,
        "EVLOOP_ONCE": 0x01, "EVLOOP_NONBLOCK": 0x02, "EVLOOP_NO_EXIT_ON_EMPTY": 0x04,
        "EVENT_BASE_FLAG_NOLOCK": 0x01, "EVENT_BASE_FLAG_IGNORE_ENV": 0x02,
        "EVENT_BASE_FLAG_NO_CACHE_TIME": 0x08, "EVENT_BASE_FLAG_PRECISE_TIMER": 0x20,
        "EV_FEATURE_ET": 0x01, "EV_FEATURE_O1": 0x02, "EV_FEATURE_FDS": 0x04,
        "EV_FEATURE_EARLY_CLOSE": 0x08,
    }
    assert {name: getattr(reactorsvc, name) for name in values} == values
    assert issubclass(ReactorError, RuntimeError)


def test_supported_methods_in_preference_order():
    methods = reactorsvc.supported_methods()
    assert isinstance(methods, list) and methods
    assert set(methods) <= set(KNOWN)
    assert methods == sorted(methods, key=KNOWN.index)
    # Linux has all three portable-ish interfaces.
    assert [m for m in methods if m != "kqueue"] == ["epoll", "poll", "select"]


def test_default_base_uses_first_method(make_base):
    base = make_base()
    assert base.method == reactorsvc.supported_methods()[0]


@pytest.mark.parametrize("avoided", reactorsvc.supported_methods())
def test_avoid_method_picks_next_preferred(avoided):
    cfg = EventConfig()
    cfg.avoid_method(avoided)
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV)
    with EventBase(cfg) as base:
        rest = [m for m in reactorsvc.supported_methods() if m != avoided]
        assert base.method == rest[0]


def test_avoiding_every_method_is_a_reactor_error():
    cfg = EventConfig()
    for m in reactorsvc.supported_methods():
        cfg.avoid_method(m)
    with pytest.raises(ReactorError):
        EventBase(cfg)


def test_require_edge_triggered_picks_a_backend_that_has_it():
    cfg = EventConfig()
    cfg.require_features(reactorsvc.EV_FEATURE_ET)
    with EventBase(cfg) as base:
        assert base.features & reactorsvc.EV_FEATURE_ET
        assert base.method == "epoll"


def test_require_features_no_backend_has_is_a_reactor_error():
    cfg = EventConfig()
    # epoll cannot watch regular files (FDS); poll/select cannot do edge triggering.
    cfg.require_features(reactorsvc.EV_FEATURE_ET | reactorsvc.EV_FEATURE_FDS)
    with pytest.raises(ReactorError):
        EventBase(cfg)


def test_require_fds_avoids_epoll():
    cfg = EventConfig()
    cfg.require_features(reactorsvc.EV_FEATURE_FDS)
    with EventBase(cfg) as base:
        assert base.method in ("poll", "select")
        assert base.features & reactorsvc.EV_FEATURE_FDS


def test_features_match_backend(backend):
    f = backend.features
    if backend.method == "epoll":
        assert f & reactorsvc.EV_FEATURE_ET
        assert f & reactorsvc.EV_FEATURE_O1
        assert f & reactorsvc.EV_FEATURE_EARLY_CLOSE
        assert not f & reactorsvc.EV_FEATURE_FDS
    elif backend.method in ("poll", "select"):
        assert not f & reactorsvc.EV_FEATURE_ET
        assert f & reactorsvc.EV_FEATURE_FDS
    if backend.method == "select":
        assert not f & reactorsvc.EV_FEATURE_EARLY_CLOSE


def _env_var(method: str) -> str:
    return "EVENT_NO" + method.upper()


def test_env_var_disables_the_default_method(monkeypatch):
    for m in reactorsvc.supported_methods():
        monkeypatch.delenv(_env_var(m), raising=False)
    default = reactorsvc.supported_methods()[0]
    monkeypatch.setenv(_env_var(default), "1")
    with EventBase(EventConfig()) as base:
        assert base.method != default
        assert base.method == reactorsvc.supported_methods()[1]
    with EventBase() as base:
        assert base.method != default


def test_ignore_env_flag_ignores_env_vars(monkeypatch):
    default = reactorsvc.supported_methods()[0]
    for m in reactorsvc.supported_methods():
        monkeypatch.setenv(_env_var(m), "1")
    cfg = EventConfig()
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV)
    with EventBase(cfg) as base:
        assert base.method == default


def test_env_disabling_every_method_is_a_reactor_error(monkeypatch):
    for m in reactorsvc.supported_methods():
        monkeypatch.setenv(_env_var(m), "1")
    with pytest.raises(ReactorError):
        EventBase(EventConfig())


def test_show_method_env_logs_the_chosen_method(monkeypatch):
    monkeypatch.setenv("EVENT_SHOW_METHOD", "1")
    with structlog.testing.capture_logs() as logs:
        with EventBase() as base:
            method = base.method
    assert any(method in map(str, entry.values()) for entry in logs), logs


def test_set_flag_rejects_unknown_bits():
    cfg = EventConfig()
    with pytest.raises(ValueError, match="flag"):
        cfg.set_flag(0x1000)


def test_negative_max_interval_is_a_value_error():
    cfg = EventConfig()
    with pytest.raises(ValueError, match="max_interval"):
        cfg.set_max_dispatch_interval(-1.0, 10, 0)


@pytest.mark.parametrize("flag", [reactorsvc.EVENT_BASE_FLAG_NOLOCK,
                                  reactorsvc.EVENT_BASE_FLAG_PRECISE_TIMER,
                                  reactorsvc.EVENT_BASE_FLAG_NO_CACHE_TIME])
def test_flagged_bases_run_timers(make_base, flag):
    base = make_base(flags=flag)
    fired = []
    ev = reactorsvc.Event.timer(base, lambda fd, what, arg: fired.append((fd, what, arg)), "x")
    ev.add(0.001)
    assert base.loop() == 1
    assert fired == [(-1, reactorsvc.EV_TIMEOUT, "x")]
