"""The master's graceful stop (SIGTERM/SIGINT): health first, then sockets, then children.

1. /healthz turns 503 and systemd hears STOPPING=1, while everything still serves for
   shutdown.health_delay seconds (a balancer's checks see it and move traffic away);
2. the master closes its copies of the listening sockets, then SIGTERMs every child, which
   closes its own copies first and then drains its connections within shutdown.grace;
3. once every child is reaped the master exits 0; children still alive grace + 5 s after
   step 2 are killed (SIGKILL). A second SIGTERM/SIGINT kills them at once.

Thread contract: the master's single thread.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import structlog

from ..base import Event
from . import sdnotify

if TYPE_CHECKING:
    from .master import Master

_log = structlog.get_logger("reactorsvc.daemon")
KILL_MARGIN = 5.0


class Drain:
    """The stop of one master; begin() once per signal, check_done() after each reap."""

    def __init__(self, master: Master) -> None:
        self._m = master
        self._children_told = False

    def begin(self, signum: int) -> None:
        m = self._m
        if m.state != "running":
            _log.warning("stop_now", signal=signum, children=len(m.children))
            self._kill_all()
            return
        m.state = "draining"
        sdnotify.notify("STOPPING=1")
        delay = m.cfg.shutdown.health_delay
        _log.info("stop_requested", signal=signum, grace=m.cfg.shutdown.grace, health_delay=delay)
        if m.roll is not None:
            m.roll.abandon()
        if delay > 0:
            Event.timer(m.base, self._stop_children).add(delay)
        else:
            self._stop_children()

    def _stop_children(self, fd: int = -1, what: int = 0, arg: object = None) -> None:
        m = self._m
        for bl in m.bound.values():
            bl.close()
        m.bound = {}
        _log.info("children_draining", children=len(m.children), grace=m.cfg.shutdown.grace)
        for child in list(m.children.values()):
            child.drain()
        self._children_told = True
        Event.timer(m.base, self._on_timeout).add(m.cfg.shutdown.grace + KILL_MARGIN)
        self.check_done()

    def _on_timeout(self, fd: int, what: int, arg: object) -> None:
        if self._m.children:
            _log.error("stop_timeout", children=sorted(self._m.children))
            self._kill_all()

    def _kill_all(self) -> None:
        for child in list(self._m.children.values()):
            child.signal(signal.SIGKILL)

    def check_done(self) -> None:
        if self._children_told and not self._m.children:
            self._m.finished()
