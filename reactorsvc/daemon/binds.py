"""The master's listening sockets: bound once, before any child exists, shared by all of them.

bind_listeners() binds every listener of a config (or takes the socket systemd passed for its
address, LISTEN_FDS), reusing the sockets of a previous set whose bind is unchanged, so a
reload neither rebinds nor drops a queue. Sockets are inheritable by fork (not by exec), so
every child accepts from the same kernel queue: a child that dies leaves its siblings the
connections still queued.

Thread contract: the master's single thread.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Union

import structlog

from ..io.sockets import bind_tcp, bind_unix, remove_unix_path
from ..workers.systemd import listen_fds
from .config import Config, ListenerConfig
from .configvalues import parse_bind

_log = structlog.get_logger("reactorsvc.daemon")


@dataclass
class BoundListener:
    """The sockets of one bind address, and the Unix socket file we created for it."""

    key: tuple                          # (bind, reuse_port): what makes a socket reusable
    sockets: list[socket.socket]
    unix_created: list[tuple] = field(default_factory=list)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        for created in self.unix_created:
            remove_unix_path(*created)


class BindError(OSError):
    """A listener that cannot bind; ``listener`` names it."""

    def __init__(self, listener: str, exc: OSError) -> None:
        super().__init__(exc.errno, f"listener {listener!r}: {exc.strerror or exc}")
        self.listener = listener


def _key(lc: ListenerConfig) -> tuple:
    return (lc.bind, lc.io.reuse_port)


def _bound_to(sock: socket.socket, where: Union[tuple, str]) -> bool:
    try:
        name = sock.getsockname()
    except OSError:
        return False
    if isinstance(where, str):
        return name == where
    return sock.family in (socket.AF_INET, socket.AF_INET6) and name[:2] == where


def _bind(lc: ListenerConfig, inherited: list[socket.socket]) -> BoundListener:
    where = parse_bind(lc.bind)
    taken = _take(lc, inherited)
    if taken:
        for sock in taken:
            sock.listen(lc.io.backlog)
        return BoundListener(_key(lc), taken)
    if isinstance(where, str):
        sock, created = bind_unix(where, lc.io.backlog)
        return BoundListener(_key(lc), [sock], [created])
    return BoundListener(_key(lc), bind_tcp(where[0], where[1], lc.io.backlog,
                                                        lc.io.reuse_port))


def bind_listeners(cfg: Config, previous: dict[str, BoundListener] | None = None,
                   inherited: list[socket.socket] | None = None) -> dict[str, BoundListener]:
    """{listener name: BoundListener} for `cfg`; sockets of `previous` with the same bind are
    reused (not closed, not copied). BindError names the listener; whatever this call bound
    is closed again first."""
    reusable = {bl.key: bl for bl in (previous or {}).values()}
    inherited = inherited if inherited is not None else []
    out: dict[str, BoundListener] = {}
    try:
        for lc in cfg.listeners:
            if lc.datagram:
                continue  # refused with processes > 1 (config.py); never a stream socket
            if _key(lc) in reusable:
                out[lc.name] = reusable.pop(_key(lc))
                continue
            try:
                out[lc.name] = _bind(lc, inherited)
            except OSError as exc:
                raise BindError(lc.name, exc) from None
    except BaseException:
        _unused(inherited)
        kept = {id(bl) for bl in (previous or {}).values()}
        for bl in out.values():
            if id(bl) not in kept:
                bl.close()
        raise
    _unused(inherited)
    return out


def inherited_sockets() -> list[socket.socket]:
    """systemd's LISTEN_FDS sockets (empty when not socket-activated)."""
    socks = listen_fds()
    if socks:
        _log.info("socket_activation", fds=[s.fileno() for s in socks])
    return socks


def sockets_by_name(bound: dict[str, BoundListener]) -> dict[str, list[socket.socket]]:
    return {name: bl.sockets for name, bl in bound.items()}


def activated_sockets(cfg: Config) -> dict[str, list[socket.socket]]:
    """The single-process daemon's view of LISTEN_FDS: {listener name: its inherited sockets}
    for the listeners whose address systemd passed (the others bind as usual)."""
    inherited = inherited_sockets()
    out = {}
    for lc in cfg.listeners:
        if not lc.datagram and (taken := _take(lc, inherited)):
            out[lc.name] = taken
    _unused(inherited)
    return out


def _take(lc: ListenerConfig, inherited: list[socket.socket]) -> list[socket.socket]:
    """Remove from `inherited` and return the sockets bound to the listener's address."""
    where = parse_bind(lc.bind)
    taken = [s for s in inherited if _bound_to(s, where)]
    for sock in taken:
        inherited.remove(sock)
    if taken:
        _log.info("listener_inherited", listener=lc.name, fds=[s.fileno() for s in taken])
    return taken


def _unused(inherited: list[socket.socket]) -> None:
    for sock in inherited:
        _log.warning("inherited_socket_unused", fd=sock.fileno(),
                     reason="no listener of the config binds its address")
        sock.close()
