"""A SIGHUP reload in the master: validate, bind what is new, then roll the children.

One slot at a time: fork a child of the new config, wait until it says it serves, then drain
the child it replaces (which closes its copies of the sockets and finishes its connections
while the new one already accepts from the same queues): no connection is refused. The
first new child to serve commits the reload (the master's config and sockets become the new
ones, so replacements from then on are new ones too). A broken file, a bind that fails, or a
first new child that dies or does not serve within READY_TIMEOUT changes nothing (logged).
Sockets the new config no longer uses close when the roll ends; the old children holding
copies of them are draining by then. A SIGHUP during a roll is done after it.

Thread contract: the master's single thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import signal
import structlog

from ..base import Event
from .binds import BindError, bind_listeners
from .config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from .children import Child
    from .master import Master

_log = structlog.get_logger("reactorsvc.daemon")
READY_TIMEOUT = 30.0


class Roll:
    """One reload in progress (see the module docstring)."""

    @classmethod
    def start(cls, m: Master) -> None:
        if m.path is None:
            _log.info("reload_skipped", reason="running the built-in config; nothing to re-read")
            return
        try:
            new = load_config(m.path)
        except ConfigError as exc:
            _log.error("reload_failed", error=str(exc), kept="the running config")
            return
        m.reloading()
        try:
            bound = bind_listeners(new, previous=m.bound)
        except BindError as exc:
            _log.error("reload_failed", error=str(exc), listener=exc.listener,
                       kept="the running config")
            m.notify_ready()
            return
        m.configure_logging(new)
        m.generation += 1
        m.roll = roll = cls(m, new, bound)
        _log.info("reload_rolling", generation=m.generation, processes=new.processes)
        roll._next()

    def __init__(self, m: Master, cfg: Config, bound: dict) -> None:
        self._m = m
        self.cfg = cfg
        self.bound = bound
        self._old_bound = m.bound
        self._slot = 0
        self._pending: Child | None = None
        self._timer: Event | None = None
        self._committed = False
        self.again = False

    def _next(self) -> None:
        m = self._m
        if self._slot >= self.cfg.processes:
            self._finish()
            return
        self._pending = m.spawn(self._slot, self.cfg, self.bound, on_ready=self._ready)
        if self._pending is None:
            self._failed(None)
            return
        self._timer = Event.timer(m.base, self._on_timeout)
        self._timer.add(READY_TIMEOUT)

    def _on_timeout(self, fd: int, what: int, arg: object) -> None:
        if self._pending is not None:
            _log.error("reload_child_not_ready", pid=self._pending.pid, seconds=READY_TIMEOUT)
            self._pending.signal(signal.SIGKILL)  # its exit comes back through child_exited

    def _ready(self, child: Child) -> None:
        m = self._m
        self._timer.delete()
        if not self._committed:
            self._commit()
        old = m.slots[child.slot]
        m.slots[child.slot] = child
        if old is not None:
            old.drain()
        self._pending = None
        self._slot += 1
        self._next()

    def _commit(self) -> None:
        m = self._m
        self._committed = True
        m.cfg, m.bound = self.cfg, self.bound
        grow = self.cfg.processes - len(m.slots)
        if grow > 0:
            m.slots += [None] * grow
            m.fails += [0] * grow

    def child_exited(self, child: Child) -> bool:
        """The reaper: True when `child` was the roll's new one (handled here)."""
        if child is not self._pending:
            return False
        self._timer.delete()
        self._pending = None
        self._failed(child)
        return True

    def _failed(self, child: Child | None) -> None:
        m = self._m
        if not self._committed:
            _log.error("reload_failed", error="a child of the new config did not start",
                       kept="the running config and children")
            self._close_unused(keep=self._old_bound)
            m.roll = None
            m.notify_ready()
            return
        # Committed: the old child of this slot goes, a new one comes back with back-off.
        old = m.slots[self._slot]
        m.slots[self._slot] = None
        if old is not None:
            old.drain()
        m.schedule_replacement(self._slot, failed=True)
        self._slot += 1
        self._next()

    def _finish(self) -> None:
        m = self._m
        n = self.cfg.processes
        for old in m.slots[n:]:
            if old is not None:
                old.drain()
        del m.slots[n:]
        del m.fails[n:]
        self._close_unused(keep=self.bound)
        m.roll = None
        _log.info("reloaded", path=m.path, generation=m.generation, processes=n,
                  listeners=sorted(self.bound))
        m.notify_ready()
        if self.again:
            Roll.start(m)

    def _close_unused(self, keep: dict) -> None:
        kept = {id(bl) for bl in keep.values()}
        for bl in list(self.bound.values()) + list(self._old_bound.values()):
            if id(bl) not in kept:
                bl.close()
                kept.add(id(bl))

    def abandon(self) -> None:
        """A stop during the roll: the master closes whatever either config had bound."""
        m = self._m
        merged = dict(self._old_bound)
        merged.update({f"{name} (new)": bl for name, bl in self.bound.items()})
        m.bound = {name: bl for name, bl in merged.items()}
        if self._timer is not None:
            self._timer.delete()
        m.roll = None
