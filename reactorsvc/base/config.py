"""EventConfig: what an EventBase should be built with (libevent's event_config)."""

from __future__ import annotations

from .._checks import check_int, check_seconds  # re-exported: the reactor's callers use them
from .backends import KNOWN_METHODS, resolve_method
from .flags import _ALL_BASE_FLAGS, _ALL_FEATURES, EVENT_BASE_FLAG_IGNORE_ENV

__all__ = ["EventConfig", "check_int", "check_seconds"]


class EventConfig:
    """Settings for a new EventBase. Not thread-safe; use it from one thread, then pass it on."""

    def __init__(self) -> None:
        self.avoided: set[str] = set()
        self.required_features = 0
        self.flags = 0
        self.max_dispatch_interval: float | None = None
        self.max_dispatch_callbacks: int | None = None
        self.limit_callbacks_after_prio = 1

    def avoid_method(self, name: str) -> None:
        """Never use the backend called `name` (one of epoll, kqueue, poll, select)."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if name not in KNOWN_METHODS:
            raise ValueError(f"name: unknown method {name!r}; known: {', '.join(KNOWN_METHODS)}")
        self.avoided.add(name)

    def require_features(self, mask: int) -> None:
        """Only use a backend having every EV_FEATURE_* bit in `mask` (replaces earlier calls)."""
        check_int(mask, "mask")
        if mask & ~_ALL_FEATURES or mask < 0:
            raise ValueError(f"mask: unknown feature bits {mask & ~_ALL_FEATURES:#x}")
        self.required_features = mask

    def set_flag(self, flag: int) -> None:
        """Set one or more EVENT_BASE_FLAG_* bits."""
        check_int(flag, "flag")
        if flag & ~_ALL_BASE_FLAGS or flag < 0:
            raise ValueError(f"flag: unknown base flag bits {flag & ~_ALL_BASE_FLAGS:#x}")
        self.flags |= flag

    def set_max_dispatch_interval(self, max_interval: float | None, max_callbacks: int,
                                  min_priority: int) -> None:
        """Bound a pass over an active queue of priority >= min_priority.

        The loop polls again after `max_callbacks` callbacks (negative: no limit) or after
        `max_interval` seconds (None: no limit), so newly ready higher-priority events get in.
        """
        if max_interval is not None:
            max_interval = check_seconds(max_interval, "max_interval")
        check_int(max_callbacks, "max_callbacks")
        check_int(min_priority, "min_priority")
        if min_priority < 0:
            raise ValueError(f"min_priority must be >= 0, got {min_priority}")
        self.max_dispatch_interval = max_interval
        self.max_dispatch_callbacks = None if max_callbacks < 0 else max(1, max_callbacks)
        self.limit_callbacks_after_prio = min_priority

    def resolve_method(self) -> str:
        """The backend an EventBase built from this config would use ("epoll", ...), without
        building one; ReactorError naming what is avoided, disabled or required when none fits.

        Cheap: no kernel object is made. A backend that fits but then fails to initialise
        (epoll_create failing with EMFILE, ...) is found only by EventBase(), which falls
        through to the next one, so this names the method EventBase tries first.
        """
        return resolve_method(self.avoided, self.required_features,
                              bool(self.flags & EVENT_BASE_FLAG_IGNORE_ENV))
