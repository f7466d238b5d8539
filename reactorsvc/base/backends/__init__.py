"""Backend preference table, probing and environment overrides.

Order is libevent's: epoll, then kqueue where it exists, then poll, then select. A backend
is skipped when the config avoids it, when EVENT_NO<NAME> is set in the environment (unless
EVENT_BASE_FLAG_IGNORE_ENV), or when it lacks a required feature.
"""

from __future__ import annotations

import os
import select as _select

from ._interface import Backend

KNOWN_METHODS = ("epoll", "kqueue", "poll", "select")


def _available() -> dict[str, type[Backend]]:
    table: dict[str, type[Backend]] = {}
    if hasattr(_select, "epoll"):
        from .epoll import EpollBackend
        table["epoll"] = EpollBackend
    if hasattr(_select, "kqueue"):
        from .kqueue import KqueueBackend
        table["kqueue"] = KqueueBackend
    if hasattr(_select, "poll"):
        from .poll import PollBackend
        table["poll"] = PollBackend
    from .select import SelectBackend
    table["select"] = SelectBackend
    return table


_AVAILABLE = _available()


def supported_methods() -> list[str]:
    """Backends usable on this platform, in preference order."""
    return list(_AVAILABLE)


def env_disabled(name: str) -> bool:
    """True when EVENT_NO<NAME> is present in the environment (any value, as libevent)."""
    return f"EVENT_NO{name.upper()}" in os.environ


def choose_backend(avoid: set[str], require: int, ignore_env: bool) -> Backend | None:
    """Instantiate the first acceptable backend, or None when none fits."""
    for name, cls in _AVAILABLE.items():
        if name in avoid or (not ignore_env and env_disabled(name)):
            continue
        if cls.features & require != require:
            continue
        return cls()
    return None


def backend_class(name: str) -> type[Backend]:
    return _AVAILABLE[name]
