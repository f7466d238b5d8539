"""Making listening sockets: TCP (IPv4/IPv6) and Unix, with errors that name the address.

Every function either returns sockets that are bound, listening and non-blocking, or raises
having closed whatever it opened. Thread-safe (no shared state).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys

from .._checks import check_int

__all__ = ["bind_tcp", "bind_unix", "check_host_port", "check_unix_path", "remove_unix_path",
           "resolve", "SUN_PATH_MAX"]


def check_host_port(host: object, port: object, *, passive: bool) -> None:
    """TypeError/ValueError naming host or port when they cannot be an address."""
    if host is not None and not isinstance(host, str):
        raise TypeError(f"host must be a str{' or None' if passive else ''}, "
                        f"not {type(host).__name__}")
    if not passive and not host:
        raise ValueError("host must be a non-empty host name or address")
    check_int(port, "port", 0, 65535)


def resolve(host: str | None, port: int, *, passive: bool) -> list[tuple]:
    """getaddrinfo for stream sockets; socket.gaierror names the host on failure."""
    flags = socket.AI_PASSIVE if passive else 0
    try:
        infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                                   0, flags)
    except socket.gaierror as exc:
        raise socket.gaierror(exc.errno, f"cannot resolve host {host!r}: {exc.strerror}") from None
    seen = set()
    unique = []
    for info in infos:
        key = (info[0], info[4][:2])
        if key not in seen:
            seen.add(key)
            unique.append(info)
    return unique


def bind_tcp(host: str | None, port: int, backlog: int, reuse_port: bool) -> list[socket.socket]:
    """One listening socket per address ``host`` resolves to (IPv6 ones with IPV6_V6ONLY)."""
    check_host_port(host, port, passive=True)
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port=True is not supported on this platform (no SO_REUSEPORT)")
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, _, addr in resolve(host, port, passive=True):
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                # Each family gets its own socket: a dual-stack [::] would clash with 0.0.0.0.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot bind {addr[0]!r} port {addr[1]}: "
                              f"{exc.strerror}") from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


# sun_path's size, its terminating NUL included: 108 bytes on Linux, 104 on the BSDs and macOS.
SUN_PATH_MAX = 108 if sys.platform.startswith("linux") else 104


def check_unix_path(path: str | bytes | os.PathLike) -> str | bytes:
    """``path`` as str/bytes; ValueError when it is empty, holds a NUL byte, or is too long for
    a Unix socket (its encoded size must be below SUN_PATH_MAX)."""
    if not hasattr(socket, "AF_UNIX"):
        raise ValueError("Unix sockets are not supported on this platform")
    path = os.fspath(path)
    if not path:
        raise ValueError("path must not be empty")
    if (b"\0" if isinstance(path, bytes) else "\0") in path:
        raise ValueError(f"path contains a NUL byte: {path!r}")
    size = len(os.fsencode(path))
    if size >= SUN_PATH_MAX:
        raise ValueError(f"path is {size} bytes long; a Unix socket path must be shorter than "
                         f"{SUN_PATH_MAX} bytes: {path!r}")
    return path


def bind_unix(path: str | bytes | os.PathLike, backlog: int) -> tuple[socket.socket, tuple]:
    """A listening Unix socket at ``path`` and (path, inode) to remove it by later.

    A stale socket file at ``path`` is replaced (as asyncio does); any other file is an error.
    """
    path = check_unix_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise FileExistsError(errno.EEXIST, f"{path!r} exists and is not a socket")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(path)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot bind Unix socket {path!r}: {exc.strerror}") from None
        inode = os.stat(path).st_ino
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, (path, inode)


def remove_unix_path(path: str | bytes, inode: int) -> None:
    """Remove the socket file we created, unless something else has replaced it since."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass  # already gone
