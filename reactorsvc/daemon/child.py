"""A forked child of the master (daemon/master.py): one Server on the inherited sockets.

run_child() is called in the child right after os.fork() and never returns (os._exit). It
first cuts every tie to the master's state: the GC is frozen (no object of the master is ever
finalised here, so no fd number the child reuses is closed behind its back), every inherited
fd but stdio, the listening sockets and the child's end of its channel is closed (the master's
epoll fd, admin socket, signal wake-up pair and the other children's channels), and the
master's signal handlers and wake-up fd are dropped. Nothing of the master's EventBase is
touched: an epoll_ctl() on the inherited epoll fd would change the master's own interest set.

Then it builds the Server of its config on the inherited sockets (shared accept queues with
its siblings), starts it, and says {"ready": pid} on the channel. The main thread waits in
sigwait() for SIGTERM (SIGINT and SIGHUP are the master's: ignored), then stops the server with shutdown.grace (listeners close
first, then connections drain) and exits 0. A channel thread answers the master's "stats"
requests with one JSON line ({"stats": Server.stats(), "events": dump of every base}) and, on
EOF (the master is gone), sends this process SIGTERM; PR_SET_PDEATHSIG does the same on Linux.
Exit status 3: the server could not start (logged).
"""

from __future__ import annotations

import ctypes
import gc
import io
import json
import os
import signal
import socket
import sys
import threading

import structlog

from ..io.balance import AcceptShare
from .app import build_server
from .config import Config

_log = structlog.get_logger("reactorsvc.daemon")
_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM,)
START_FAILED = 3


def run_child(cfg: Config, sockets: dict[str, list[socket.socket]], chan: socket.socket,
              master_pid: int, slot: int, master_signals: tuple, share: AcceptShare) -> None:
    """The child's whole life (see the module docstring); never returns."""
    status = START_FAILED
    try:
        _detach(sockets, chan, master_pid, master_signals)
        structlog.contextvars.bind_contextvars(process=slot)
        status = _serve(cfg, sockets, chan, share)
    except BaseException:  # even SystemExit: a forked child must never unwind into the master's code
        try:
            _log.error("child_failed", slot=slot, exc_info=True)
        except BaseException:
            pass
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)


def _detach(sockets: dict, chan: socket.socket, master_pid: int, master_signals: tuple) -> None:
    gc.freeze()
    signal.set_wakeup_fd(-1)
    for signum in master_signals:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the master's: it rolls children
    # Ctrl-C reaches the whole process group: the master drains the children, one SIGTERM each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != master_pid:  # the master died before prctl() took effect
        os.kill(os.getpid(), signal.SIGTERM)
    keep = {0, 1, 2, chan.fileno()} | {s.fileno() for socks in sockets.values() for s in socks}
    _close_fds_except(keep)
    # SIGTERM stays blocked (as the master held it around fork): this process and every
    # thread it starts leave it to the sigwait() in _serve.
    signal.pthread_sigmask(signal.SIG_SETMASK, set(STOP_SIGNALS))


def _close_fds_except(keep: set[int]) -> None:
    try:
        fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        fds = list(range(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listdir fd itself, already gone


def _serve(cfg: Config, sockets: dict, chan: socket.socket, share: AcceptShare) -> int:
    try:
        # The siblings accept on the same sockets: each keeps about its share (io/balance.py).
        server = build_server(cfg, sockets=sockets, admin=False, accept_share=share)
        server.health_delay = 0.0  # the master's: it waited before telling this child to stop
        server.start()
    except Exception as exc:
        _log.error("child_start_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        return START_FAILED
    chan.sendall(json.dumps({"ready": os.getpid()}).encode() + b"\n")
    threading.Thread(target=_answer_master, args=(server, chan), name="reactorsvc-channel",
                     daemon=True).start()
    signum = signal.sigwait(set(STOP_SIGNALS))
    _log.info("child_stopping", signal=signum, grace=cfg.shutdown.grace)
    server.stop(cfg.shutdown.grace)
    return 0


def _answer_master(server, chan: socket.socket) -> None:
    """The channel thread: one JSON line per request; EOF (the master died) stops the child.

    The channel's only writer once it runs (the ready line was written before it started)."""
    reader = chan.makefile("rb")
    try:
        for line in reader:
            if line.strip() == b"stats":
                chan.sendall(json.dumps(_snapshot(server)).encode() + b"\n")
    except OSError:
        pass
    _log.warning("master_gone", action="draining")
    os.kill(os.getpid(), signal.SIGTERM)


def _snapshot(server) -> dict:
    """Server.stats() and a dump of every base (both thread-safe)."""
    buf = io.StringIO()
    for name, base in server.bases():
        buf.write(f"== {name} ==\n")
        try:
            base.dump_events(buf)
        except Exception as exc:  # a base freed meanwhile (a worker replaced, a stop)
            buf.write(f"  unavailable: {exc}\n")
    return {"stats": server.stats(), "events": buf.getvalue()}
