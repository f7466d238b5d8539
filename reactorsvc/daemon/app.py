"""The daemon: a Config → a running Server, signals, SIGHUP reload.

run_daemon() is what `reactorsvc serve` calls: it sets up logging, builds the Server from the
config, serves until SIGTERM/SIGINT (graceful stop with the configured grace, exit 0) and
reloads the file on SIGHUP: log settings and service options apply at once (to new
connections), new listeners bind, removed ones close without dropping their connections. A
broken file is logged with its FILE:LINE error and the running config stays.
"""

from __future__ import annotations

import signal
from typing import Any

import structlog

from ..base import EventConfig
from ..base.flags import EV_FEATURE_EARLY_CLOSE, EV_FEATURE_ET, EV_FEATURE_FDS, EV_FEATURE_O1
from ..workers.server import Server
from . import sdnotify
from .admin import AdminProtocol
from .config import Config, ConfigError, ListenerConfig, load_config
from .configvalues import parse_bind, service_target
from .logging import configure_logging
from .services import make_factory

_log = structlog.get_logger("reactorsvc.daemon")
_FEATURES = {"ET": EV_FEATURE_ET, "O1": EV_FEATURE_O1, "FDS": EV_FEATURE_FDS,
             "EARLY_CLOSE": EV_FEATURE_EARLY_CLOSE}


def event_config_factory(cfg: Config):
    """A callable making the EventConfig every base of this daemon is built with."""
    def make() -> EventConfig:
        ec = EventConfig()
        for name in cfg.backend.avoid:
            ec.avoid_method(name)
        mask = 0
        for name in cfg.backend.require:
            mask |= _FEATURES[name]
        ec.require_features(mask)
        return ec
    return make


def _listener_kwargs(lc: ListenerConfig) -> dict[str, Any]:
    return {"max_connections": lc.max_connections, "idle_timeout": lc.idle_timeout,
            "read_timeout": lc.read_timeout, "write_timeout": lc.write_timeout,
            "write_buffer": (lc.write_buffer.high, lc.write_buffer.low)}


def _factory(lc: ListenerConfig):
    return make_factory(service_target(lc.service), lc.options)


def build_server(cfg: Config, sockets: dict[str, list] | None = None, admin: bool = True) -> Server:
    """The Server a config describes (not started).

    `sockets`: {listener name: bound sockets} to serve instead of binding `bind` (a forked
    child of the master, systemd socket activation); `admin`: whether to serve admin.bind.
    """
    server = Server(None, workers=cfg.workers, dispatch=cfg.dispatch,
                    event_config=event_config_factory(cfg))
    for lc in cfg.listeners:
        where = (sockets or {}).get(lc.name) or parse_bind(lc.bind)
        server.add_listener(lc.name, _factory(lc), where=where, backlog=lc.backlog,
                            reuse_port=lc.reuse_port, **_listener_kwargs(lc))
    if admin and cfg.admin.bind is not None:
        host, port = parse_bind(cfg.admin.bind)
        server.add_admin(host, port, lambda: AdminProtocol(server))
    server.shutdown_grace = cfg.shutdown.grace
    server.health_delay = cfg.shutdown.health_delay
    return server


class Daemon:
    """A running daemon: the server, the config it runs, and the reload logic."""

    def __init__(self, cfg: Config, config_path: str | None, log_format: str | None,
                 log_level: str | None) -> None:
        self.cfg = cfg
        self.path = config_path
        self._log_format = log_format
        self._log_level = log_level
        self._configure_logging(cfg)
        from .binds import activated_sockets
        self.server = build_server(cfg, sockets=activated_sockets(cfg))
        self.server.on_started = lambda: sdnotify.notify("READY=1")

    def _configure_logging(self, cfg: Config) -> None:
        configure_logging(self._log_level or cfg.logging.level, self._log_format or cfg.logging.format)

    def run(self) -> int:
        extra = {signal.SIGHUP: self.reload} if hasattr(signal, "SIGHUP") else {}
        # Beside the Server's own stop handlers: tell systemd the stop has begun.
        extra.update({signum: self._stopping for signum in (signal.SIGTERM, signal.SIGINT)})
        try:
            self.server.serve_forever(extra_signals=extra)
        except OSError as exc:  # a bind that failed: nothing is left running
            _log.error("start_failed", error=str(exc))
            return 1
        _log.info("daemon_exit")
        return 0

    @staticmethod
    def _stopping(signum: int) -> None:
        sdnotify.notify("STOPPING=1")

    def reload(self, signum: int = 0) -> None:
        """SIGHUP: re-read the file and apply what can change live (systemd hears
        RELOADING=1, then READY=1 once done, whether the file was good or not)."""
        if self.path is None:
            _log.info("reload_skipped", reason="running the built-in config; nothing to re-read")
            return
        sdnotify.notify("RELOADING=1", sdnotify.monotonic_usec())
        try:
            self._reload()
        finally:
            sdnotify.notify("READY=1")

    def _reload(self) -> None:
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            _log.error("reload_failed", error=str(exc), kept="the running config")
            return
        self._configure_logging(new)
        old = {lc.name: lc for lc in self.cfg.listeners}
        fresh = {lc.name: lc for lc in new.listeners}
        for name in old.keys() - fresh.keys():
            self.server.remove_listener(name)
        for name, lc in fresh.items():
            try:
                if name not in old or old[name].bind != lc.bind or old[name].backlog != lc.backlog \
                        or old[name].reuse_port != lc.reuse_port:
                    if name in old:
                        self.server.remove_listener(name)
                    self.server.add_listener(name, _factory(lc), where=parse_bind(lc.bind),
                                             backlog=lc.backlog, reuse_port=lc.reuse_port,
                                             **_listener_kwargs(lc))
                else:
                    self.server.update_listener(name, _factory(lc), **_listener_kwargs(lc))
            except (OSError, ValueError) as exc:
                _log.error("reload_listener_failed", listener=name, error=str(exc))
        for what in ("workers", "dispatch", "backend", "admin"):
            if getattr(new, what) != getattr(self.cfg, what):
                _log.warning("reload_needs_restart", setting=what)
        self.server.shutdown_grace = new.shutdown.grace
        self.server.health_delay = new.shutdown.health_delay
        self.cfg = new
        _log.info("reloaded", path=self.path, listeners=sorted(fresh))


def run_daemon(cfg: Config, *, config_path: str | None = None, log_format: str | None = None,
               log_level: str | None = None) -> int:
    """`reactorsvc serve`: run until SIGTERM/SIGINT; the exit status.

    With `processes` > 1 a master forks that many children (daemon/master.py); with 1 the
    daemon is this one process, as before.
    """
    if cfg.processes > 1:
        from .master import run_master
        return run_master(cfg, config_path=config_path, log_format=log_format,
                          log_level=log_level)
    daemon = Daemon(cfg, config_path, log_format, log_level)
    _log.info("daemon_starting", config=config_path or "<built-in default>", workers=cfg.workers,
              dispatch=cfg.dispatch, listeners=[f"{lc.name}={lc.bind}" for lc in cfg.listeners],
              admin=cfg.admin.bind)
    return daemon.run()
