"""Validation by building: what ``serve`` will construct from a Config, constructed at ``check``.

``check_buildable(cfg)`` runs after the YAML is parsed. It does not repeat the owners' rules;
it asks the owners, and turns their ValueError/TypeError/ReactorError into ConfigError at the
key (from ``cfg.source``):
- the reactor: ``event_config(cfg.backend)`` builds the EventConfig and asks it which backend it
  resolves to (no backend left by ``avoid``/``require``, or the environment's EVENT_NO*, is the
  ReactorError that EventBase() would raise in ``serve``);
- the workers layer: ``make_policy(cfg.dispatch)`` and ``check_accept(cfg.accept, cfg.dispatch)``
  (accept: workers takes no dispatch policy but the default);
- the io layer's name resolution: every TCP bind is resolved as the Listener will resolve it,
  and no two listeners (nor the admin endpoint) may share an address once resolved
  (``localhost:P`` beside ``127.0.0.1:P``);
- the services: each is imported and its factory built with its options
  (``services.make_factory``: signature, ``validate_options``, a protocol class or function).

Thread-safety: as config.py (imports take Python's import lock).
"""

from __future__ import annotations

from typing import Callable

from ..base import EventConfig
from ..errors import ReactorError
from ..workers.dispatch import check_accept, make_policy
from .config import BackendConfig, Config
from .configvalues import binds_overlap, parse_bind, resolve_bind
from .services import make_factory, resolve
from .yamlpos import ConfigError

__all__ = ["check_buildable", "event_config", "event_config_factory", "probe_backend"]


def event_config(backend: BackendConfig) -> EventConfig:
    """The EventConfig every base of a daemon with this ``backend`` section is built with."""
    ec = EventConfig()
    for name in backend.avoid:
        ec.avoid_method(name)
    ec.require_features(backend.require_mask)
    return ec


def event_config_factory(cfg: Config) -> Callable[[], EventConfig]:
    """A callable making a fresh EventConfig for each base (Server's ``event_config``)."""
    return lambda: event_config(cfg.backend)


def probe_backend(backend: BackendConfig) -> str:
    """The backend a base built with this section gets; ReactorError when none fits (the
    reactor's own answer, EventConfig.resolve_method: avoid, require and EVENT_NO*)."""
    return event_config(backend).resolve_method()


def _fail(cfg: Config, path: str, message: str) -> ConfigError:
    return ConfigError(cfg.source.filename, cfg.source.lines.get(path, 1), path, message)


def check_buildable(cfg: Config) -> None:
    """ConfigError for the first thing ``serve`` could not build from ``cfg``."""
    _check_backend(cfg)
    try:
        make_policy(cfg.dispatch)
    except ValueError as exc:
        raise _fail(cfg, "dispatch", str(exc)) from None
    try:
        check_accept(cfg.accept, cfg.dispatch)
    except ValueError as exc:  # ``argument``: the key at fault (dispatch beside accept: workers)
        raise _fail(cfg, getattr(exc, "argument", "accept"), str(exc)) from None
    _check_binds(cfg)
    _check_services(cfg)


def _check_backend(cfg: Config) -> None:
    given = [p for p in ("backend.avoid", "backend.require") if p in cfg.source.lines]
    path = given[0] if len(given) == 1 else "backend"
    try:
        probe_backend(cfg.backend)
    except (ReactorError, ValueError, TypeError) as exc:
        raise _fail(cfg, path, f"no usable backend: {exc}") from None


def _check_binds(cfg: Config) -> None:
    """No two listeners, nor a listener and the admin endpoint, may share a resolved address."""
    binds = [(f"listeners[{i}].bind", lc.bind) for i, lc in enumerate(cfg.listeners)]
    if cfg.admin.bind is not None:
        binds.append(("admin.bind", cfg.admin.bind))
    seen: list = []  # (resolved addresses, parsed bind, bind text, key path)
    for path, bind in binds:
        parsed = parse_bind(bind)
        try:
            resolved = resolve_bind(parsed)
        except OSError as exc:
            raise _fail(cfg, path, exc.strerror or str(exc)) from None
        for other, other_parsed, other_bind, other_path in seen:
            if any(binds_overlap(a, b) for a in resolved for b in other):
                how = ("is already used by" if parsed == other_parsed
                       else f"overlaps {other_bind} of")
                line = cfg.source.lines.get(other_path)
                raise _fail(cfg, path, f"address {bind} {how} {other_path.rpartition('.')[0]} "
                                       f"(line {line})")
        seen.append((resolved, parsed, bind, path))


def _check_services(cfg: Config) -> None:
    """Import every service and build its factory now, so a bad one fails before anything binds.

    Import problems point at ``service``; option problems at the option's own line when the
    service names it (ServiceError.option), else at ``options`` (or ``service`` if absent).
    """
    lines = cfg.source.lines
    for i, listener in enumerate(cfg.listeners):
        path = f"listeners[{i}]"
        try:
            resolve(listener.service)
        except ValueError as exc:
            raise _fail(cfg, f"{path}.service", str(exc)) from None
        try:
            make_factory(listener.service, listener.options)
        except ValueError as exc:
            option = getattr(exc, "option", None)
            candidates = [f"{path}.options.{option}"] if option else []
            candidates += [f"{path}.options", f"{path}.service"]
            where = next(p for p in candidates if p in lines)
            raise _fail(cfg, where, str(exc)) from None
