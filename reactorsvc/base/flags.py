"""libevent's constants, with libevent's values."""

from __future__ import annotations

# Event bits.
EV_TIMEOUT = 0x01
EV_READ = 0x02
EV_WRITE = 0x04
EV_SIGNAL = 0x08
EV_PERSIST = 0x10
EV_ET = 0x20
EV_FINALIZE = 0x40
EV_CLOSED = 0x80

# loop() flags.
EVLOOP_ONCE = 0x01
EVLOOP_NONBLOCK = 0x02
EVLOOP_NO_EXIT_ON_EMPTY = 0x04

# EventConfig flags.
EVENT_BASE_FLAG_NOLOCK = 0x01
EVENT_BASE_FLAG_IGNORE_ENV = 0x02
EVENT_BASE_FLAG_NO_CACHE_TIME = 0x08
EVENT_BASE_FLAG_PRECISE_TIMER = 0x20

# Backend features.
EV_FEATURE_ET = 0x01
EV_FEATURE_O1 = 0x02
EV_FEATURE_FDS = 0x04
EV_FEATURE_EARLY_CLOSE = 0x08

#: Feature names (EV_FEATURE_ without the prefix) → bits: the one table of these names.
FEATURE_NAMES = {"ET": EV_FEATURE_ET, "O1": EV_FEATURE_O1, "FDS": EV_FEATURE_FDS,
                 "EARLY_CLOSE": EV_FEATURE_EARLY_CLOSE}


def feature_names(mask: int) -> str:
    """'ET|EARLY_CLOSE' for a feature mask; 'none' for 0."""
    return "|".join(name for name, bit in FEATURE_NAMES.items() if mask & bit) or "none"


_ALL_EVENT_BITS = (EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL | EV_PERSIST | EV_ET
                   | EV_FINALIZE | EV_CLOSED)
_ALL_LOOP_FLAGS = EVLOOP_ONCE | EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY
_ALL_BASE_FLAGS = (EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_IGNORE_ENV
                   | EVENT_BASE_FLAG_NO_CACHE_TIME | EVENT_BASE_FLAG_PRECISE_TIMER)
_ALL_FEATURES = EV_FEATURE_ET | EV_FEATURE_O1 | EV_FEATURE_FDS | EV_FEATURE_EARLY_CLOSE

__all__ = [n for n in dir() if n.startswith(("EV_", "EVLOOP_", "EVENT_BASE_FLAG_", "EV_FEATURE_"))]
