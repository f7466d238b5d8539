"""The master of `processes: N` (N > 1): binds, forks N children, supervises, rolls reloads.

Order of a start: the config is already valid; every listener is bound (or taken from
LISTEN_FDS) and the admin socket too, so bind errors end the start (exit 1) before any child
exists; then the N children are forked while the master has no EventBase and no thread. Only
then does the master make its own base (EVENT_BASE_FLAG_NOLOCK, single-threaded: no lock can
be held by another thread at a later fork, and no thread is lost by one) serving the admin
endpoint, the children's channels (children.py), a stats timer and the signals (its own
wake-up fd, read like any fd). Later children (replacements, reloads) fork from inside a
callback of that loop; the child never touches the master's base (child.py).

Signals: SIGTERM/SIGINT stop (drain.py); SIGHUP reloads (roll.py); SIGCHLD reaps. A child that
dies is replaced: at once after a healthy run, with a doubling delay (0.25 s .. 10 s) after a
child that died before serving or soon after, logged as a crash loop from the third.

Thread contract: one thread, the main one; nothing here is thread-safe or needs to be.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import structlog

from ..base import Event, EventBase, EventConfig
from ..base.flags import EV_PERSIST, EV_READ, EVENT_BASE_FLAG_NOLOCK, EVLOOP_NO_EXIT_ON_EMPTY
from ..io.balance import AcceptTable
from ..io.listener import start_server
from ..io.sockets import bind_tcp
from . import sdnotify
from .admin import AdminProtocol
from .app import event_config_factory
from .binds import BindError, bind_listeners, inherited_sockets, sockets_by_name
from .children import Child, accept_cell, spawn
from .config import MAX_PROCESSES, Config
from .configvalues import parse_bind
from .logging import configure_logging
from .masteradmin import MasterAdmin
from .roll import Roll

_log = structlog.get_logger("reactorsvc.daemon")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
STATS_INTERVAL = 0.5
HEALTHY_AFTER = 5.0          # a child that served this long and died is replaced at once
BACKOFF_MIN, BACKOFF_MAX = 0.25, 10.0
CRASH_LOOP = 3


def _noop(signum: int, frame: object) -> None:
    """Keeps Python's C handler armed; the wake-up fd carries the signal to the loop."""


class Master:
    """See the module docstring. run() is the whole life; the exit status."""

    def __init__(self, cfg: Config, path: str | None, log_format: str | None,
                 log_level: str | None) -> None:
        self.cfg = cfg
        self.path = path
        self._log_format, self._log_level = log_format, log_level
        self.bound: dict = {}
        self.children: dict[int, Child] = {}     # pid → child, every live one
        self.slots: list[Child | None] = [None] * cfg.processes   # the serving generation
        self.generation = 0
        self.state = "running"                   # running → draining → done
        self.restarts = 0
        self.roll: Roll | None = None
        self.base: EventBase | None = None
        self.fails = [0] * cfg.processes
        # Every child's open connections, in memory the children share (io/balance.py): made
        # before the first fork; a cell is the master's to clear only once its child exited.
        self.accepts = AcceptTable(2 * MAX_PROCESSES)
        self._admin_sock: socket.socket | None = None
        self._admin_listener = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._ready_sent = False
        from .drain import Drain
        self.drain = Drain(self)

    def configure_logging(self, cfg: Config) -> None:
        configure_logging(self._log_level or cfg.logging.level, self._log_format or cfg.logging.format)

    # -- start -----------------------------------------------------------------------------------

    def run(self) -> int:
        self.configure_logging(self.cfg)
        _log.info("master_starting", pid=os.getpid(), config=self.path or "<built-in default>",
                  processes=self.cfg.processes, workers=self.cfg.workers,
                  listeners=[f"{lc.name}={lc.bind}" for lc in self.cfg.listeners],
                  admin=self.cfg.admin.bind)
        try:
            self.bound = bind_listeners(self.cfg, inherited=inherited_sockets())
            if self.cfg.admin.bind is not None:
                host, port = parse_bind(self.cfg.admin.bind)
                self._admin_sock = bind_tcp(host, port, 128, False)[0]
        except OSError as exc:
            _log.error("start_failed", error=str(exc), listener=getattr(exc, "listener", "admin"))
            self._close_sockets()
            return 1
        self._install_signals()
        for slot in range(self.cfg.processes):
            self.slots[slot] = self.spawn(slot, self.cfg, self.bound)
        try:
            self._serve()
        finally:
            self._close_sockets()
            self._restore_signals()
        _log.info("master_exit")
        return 0

    def _install_signals(self) -> None:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in SIGNALS:
            signal.signal(signum, _noop)

    def _restore_signals(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_DFL)

    def _serve(self) -> None:
        ec = event_config_factory(self.cfg)()
        ec.set_flag(EVENT_BASE_FLAG_NOLOCK)
        self.base = base = EventBase(ec)
        for child in self.children.values():
            child.watch(base)
        Event(base, self._wake_r.fileno(), EV_READ | EV_PERSIST, self._on_wake).add()
        Event.timer(base, self._on_stats_timer).add(0)
        if self._admin_sock is not None:
            admin = MasterAdmin(self)
            self._admin_listener = start_server(base, lambda: AdminProtocol(admin),
                                                sock=self._admin_sock)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        try:
            while self.state != "done":
                base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            if self._admin_listener is not None:
                self._admin_listener.close()
            base.free()

    def _close_sockets(self) -> None:
        for bl in self.bound.values():
            bl.close()
        self.bound = {}
        if self._admin_sock is not None and self._admin_listener is None:
            self._admin_sock.close()

    # -- children --------------------------------------------------------------------------------

    def spawn(self, slot: int, cfg: Config, bound: dict, on_ready=None) -> Child | None:
        """Fork one child (signals held so none runs a master handler in it); None on failure."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            child = spawn(cfg, sockets_by_name(bound), slot, self.generation, SIGNALS, self.accepts)
        except OSError as exc:
            _log.error("fork_failed", slot=slot, error=str(exc))
            self.schedule_replacement(slot, failed=True)
            return None
        finally:
            if self.base is not None:  # before the loop runs they stay held (see _serve)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        child.on_ready = on_ready or self._on_child_ready
        self.children[child.pid] = child
        if self.base is not None:
            child.watch(self.base)
        return child

    def _on_child_ready(self, child: Child) -> None:
        self.notify_ready()

    def notify_ready(self) -> None:
        """READY=1 once every slot serves (at start and after a reload)."""
        if self.state == "running" and self.roll is None and not self._ready_sent and all(
                c is not None and c.state == "ready" for c in self.slots):
            self._ready_sent = True
            sdnotify.notify("READY=1", f"STATUS=serving with {len(self.slots)} processes")
            _log.info("master_ready", processes=len(self.slots),
                      pids=[c.pid for c in self.slots if c is not None])

    def reloading(self) -> None:
        self._ready_sent = False
        sdnotify.notify("RELOADING=1", sdnotify.monotonic_usec())

    def serving(self) -> list[Child]:
        return [c for c in self.children.values() if c.state == "ready"]

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._child_exited(child, status)

    def _child_exited(self, child: Child, status: int) -> None:
        child.close_channel()
        self.accepts.clear(accept_cell(child.slot, child.generation))
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"status {os.WEXITSTATUS(status)}")
        expected = child.state == "draining"
        (_log.info if expected else _log.warning)(
            "child_exited", slot=child.slot, pid=child.pid, generation=child.generation,
            exit=how, expected=expected)
        if self.roll is not None and self.roll.child_exited(child):
            return
        if child.slot < len(self.slots) and self.slots[child.slot] is child:
            self.slots[child.slot] = None
            if self.state == "running":
                healthy = child.ready_at is not None and time.monotonic() - child.ready_at >= HEALTHY_AFTER
                self.schedule_replacement(child.slot, failed=not healthy)
        self.drain.check_done()

    def schedule_replacement(self, slot: int, failed: bool) -> None:
        if slot >= len(self.fails):
            return
        self.fails[slot] = self.fails[slot] + 1 if failed else 0
        fails = self.fails[slot]
        delay = 0.0 if not fails else min(BACKOFF_MIN * 2 ** (fails - 1), BACKOFF_MAX)
        if fails >= CRASH_LOOP:
            _log.error("child_crash_loop", slot=slot, failures=fails, retry_in=delay)
        Event.timer(self.base, self._replace, slot).add(delay)

    def _replace(self, fd: int, what: int, slot: int) -> None:
        if self.state != "running" or slot >= len(self.slots) or self.slots[slot] is not None:
            return
        self.restarts += 1
        self.slots[slot] = self.spawn(slot, self.cfg, self.bound)

    # -- signals and timers ------------------------------------------------------------------------

    def _on_wake(self, fd: int, what: int, arg: object) -> None:
        try:
            data = self._wake_r.recv(512)
        except (BlockingIOError, InterruptedError):
            return
        for signum in dict.fromkeys(data):  # each signal once per batch, in arrival order
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum == signal.SIGHUP:
                self._reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.drain.begin(signum)

    def _on_stats_timer(self, fd: int, what: int, arg: object) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.state != "starting":
                child.ask_stats(now)
        if self.state != "done":
            Event.timer(self.base, self._on_stats_timer).add(STATS_INTERVAL)

    def _reload(self) -> None:
        if self.state != "running":
            return
        if self.roll is not None:
            self.roll.again = True
            _log.info("reload_queued", reason="a reload is rolling; the file is read again after it")
            return
        Roll.start(self)

    def finished(self) -> None:
        """Leave the loop (drain.py, once every child has exited)."""
        self.state = "done"
        self.base.loopbreak()


def run_master(cfg: Config, *, config_path: str | None = None, log_format: str | None = None,
               log_level: str | None = None) -> int:
    """`reactorsvc serve` with processes > 1: the exit status."""
    return Master(cfg, config_path, log_format, log_level).run()
