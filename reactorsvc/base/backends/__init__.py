"""Backend preference table, probing and environment overrides.

Order is libevent's: epoll, then kqueue where it exists, then poll, then select. A backend
is skipped when the config avoids it, when EVENT_NO<NAME> is set in the environment (unless
EVENT_BASE_FLAG_IGNORE_ENV), when it lacks a required feature, or when its kernel object cannot
be created (the next one is tried). The ReactorError for "none fits" says why each one is out.
"""

from __future__ import annotations

import os
import select as _select

from ...errors import ReactorError
from ..flags import feature_names
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


def _unfit_reason(name: str, cls: type[Backend], avoid: set[str], require: int,
                  ignore_env: bool) -> str | None:
    """Why backend `name` cannot serve this config, or None when it can."""
    if name in avoid:
        return "avoided"
    if not ignore_env and env_disabled(name):
        return f"disabled by EVENT_NO{name.upper()}"
    missing = require & ~cls.features
    if missing:
        return f"lacks {feature_names(missing)}"
    return None


def _no_fit(reasons: list[str], avoid: set[str], require: int) -> ReactorError:
    return ReactorError(
        f"no event backend fits this config ({'; '.join(reasons)}); avoided: "
        f"{', '.join(sorted(avoid)) or 'none'}; required features: {feature_names(require)}")


def resolve_method(avoid: set[str], require: int, ignore_env: bool) -> str:
    """The name of the backend choose_backend() would try first; ReactorError (saying why each
    backend is out) when none fits. Creates no kernel object: a backend that then fails to
    initialise is only found by EventBase(), which falls through to the next one."""
    reasons = []
    for name, cls in _AVAILABLE.items():
        reason = _unfit_reason(name, cls, avoid, require, ignore_env)
        if reason is None:
            return name
        reasons.append(f"{name}: {reason}")
    raise _no_fit(reasons, avoid, require)


def choose_backend(avoid: set[str], require: int, ignore_env: bool) -> Backend:
    """Instantiate the first acceptable backend; one whose kernel object cannot be made
    (epoll_create failing with EMFILE, ...) is skipped for the next. ReactorError naming each
    backend's reason when none is left."""
    reasons = []
    for name, cls in _AVAILABLE.items():
        reason = _unfit_reason(name, cls, avoid, require, ignore_env)
        if reason is None:
            try:
                return cls()
            except OSError as exc:
                reason = f"cannot initialise: {exc}"
        reasons.append(f"{name}: {reason}")
    raise _no_fit(reasons, avoid, require)


def backend_class(name: str) -> type[Backend]:
    return _AVAILABLE[name]
