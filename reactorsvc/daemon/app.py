"""The daemon: a Config → a running Server, signals, SIGHUP reload.

run_daemon() is what `reactorsvc serve` calls: it sets up logging, builds the Server from the
config, serves until SIGTERM/SIGINT (graceful stop with the configured grace, exit 0).

SIGHUP reloads the file as one transaction: parse and validate it (the same bounded loader
as `check`), refuse by name a change that needs a restart (workers, processes, dispatch,
accept, backend, admin),
build every service factory, then let the Server bind every new address before anything
running changes (Server.replace_listeners). Only when all of that succeeded do the new
listeners start, the removed ones close (their connections are drained), options of kept listeners
change (backlog and max_connections in place; timeouts and watermarks for new connections),
and logging and shutdown.grace take the new values: one ``reloaded`` event. Any failure logs one
``reload_failed`` event (FILE:LINE: key, or the listener, its key and the OS reason) and the
whole old config keeps running.

A bind that fails at start is logged as ``start_failed`` naming the listener, its config key
with FILE:LINE and the OS reason; `serve` then exits with status 1 (a runtime failure: the
file was valid, the machine refused it).
"""

from __future__ import annotations

import signal
from typing import Any

import structlog

from ..errors import ReactorError
from ..io.balance import AcceptShare
from ..workers.server import Server
from . import sdnotify
from .admin import AdminProtocol
from .config import Config, ConfigError, load_config
from .configbuild import event_config_factory
from .configtransport import tls_context
from .configvalues import parse_bind, service_target
from .logging import configure_logging
from .services import make_factory

_log = structlog.get_logger("reactorsvc.daemon")
# Sections a running Server cannot change: a reload that changes one is refused, by name.
_RESTART_ONLY = ("workers", "processes", "dispatch", "accept", "backend", "admin")


def _listeners(cfg: Config) -> list[tuple]:
    """(name, protocol factory, where, ListenerOptions) of every stream listener, as the Server
    takes; a tls: listener's SSLContext is built on every call, so a SIGHUP reload re-reads
    rotated certificate files."""
    return [(lc.name, make_factory(service_target(lc.service), lc.options), parse_bind(lc.bind),
             lc.io if lc.tls is None else lc.io.replace(ssl=tls_context(lc.tls)))
            for lc in cfg.listeners if not lc.datagram]


def build_server(cfg: Config, sockets: dict[str, list] | None = None, admin: bool = True,
                 accept_share: AcceptShare | None = None) -> Server:
    """The Server a config describes (not started).

    `sockets`: {listener name: bound sockets} to serve instead of binding `bind` (a forked
    child of the master, systemd socket activation); `admin`: whether to serve admin.bind;
    `accept_share`: Server's (a child of the master, whose siblings share the sockets).
    """
    server = Server(None, workers=cfg.workers, dispatch=cfg.dispatch, accept=cfg.accept,
                    event_config=event_config_factory(cfg), accept_share=accept_share)
    for name, factory, where, options in _listeners(cfg):
        where = (sockets or {}).get(name) or where
        server.add_listener(name, factory, where=where, options=options)
    for lc in cfg.listeners:
        if lc.datagram:
            server.add_datagram_endpoint(lc.name, make_factory(service_target(lc.service), lc.options),
                                         where=parse_bind(lc.bind))
    if admin and cfg.admin.bind is not None:
        host, port = parse_bind(cfg.admin.bind)
        server.add_admin(host, port, lambda: AdminProtocol(server))
    server.shutdown_grace = cfg.shutdown.grace
    server.health_delay = cfg.shutdown.health_delay
    return server


def failure_fields(cfg: Config, exc: BaseException) -> dict[str, Any]:
    """listener, key (FILE:LINE: key.path) and reason of a bind or build error of ``cfg``."""
    name = getattr(exc, "listener", None)
    paths = {lc.name: f"listeners[{i}].bind" for i, lc in enumerate(cfg.listeners)}
    if name is None and isinstance(exc, OSError) and cfg.admin.bind is not None:
        name, path = "admin", "admin.bind"  # the only bind not made for a named listener
    else:
        path = paths.get(name, "listeners")
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
    key = cfg.source.where(path)
    return {"listener": name, "key": key, "reason": reason,
            "error": f"{key}: listener {name!r}: {reason}"}


def _restart_only_changes(old: Config, new: Config) -> ConfigError | None:
    for what in _RESTART_ONLY:
        if getattr(new, what) != getattr(old, what):
            lines = new.source.lines
            path = what if what in lines else next((p for p in lines if p.startswith(what)), what)
            return ConfigError(new.source.filename, lines.get(path, 1), path,
                               f"{what} cannot change while running (restart to apply it)")
    return None


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
            _log.error("start_failed", **failure_fields(self.cfg, exc))
            return 1
        _log.info("daemon_exit")
        return 0

    @staticmethod
    def _stopping(signum: int) -> None:
        sdnotify.notify("STOPPING=1")

    def reload(self, signum: int = 0) -> None:
        """SIGHUP: re-read the file and apply all of it, or none of it (see the module doc);
        systemd hears RELOADING=1, then READY=1 once done, whether the file was good or not."""
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
            refused = _restart_only_changes(self.cfg, new)
            if refused is not None:
                raise refused
        except ConfigError as exc:
            _log.error("reload_failed", error=str(exc), kept="the running config")
            return
        try:
            self.server.replace_listeners(_listeners(new))
        except (OSError, ValueError, TypeError, ReactorError) as exc:
            _log.error("reload_failed", kept="the running config", **failure_fields(new, exc))
            return
        self._configure_logging(new)
        self.server.shutdown_grace = new.shutdown.grace
        self.server.health_delay = new.shutdown.health_delay
        self.cfg = new
        _log.info("reloaded", path=self.path, listeners=sorted(lc.name for lc in new.listeners))


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
              dispatch=cfg.dispatch, accept=cfg.accept, listeners=[f"{lc.name}={lc.bind}" for lc in cfg.listeners],
              admin=cfg.admin.bind)
    return daemon.run()
