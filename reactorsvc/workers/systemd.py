"""Sockets passed by systemd socket activation (sd_listen_fds(3)): LISTEN_PID, LISTEN_FDS.

    server = Server(MyProtocol, sockets=listen_fds())
"""

from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment: bool = True) -> list[socket.socket]:
    """The listening sockets systemd passed to this process (fds 3, 4, ...), or [].

    Only when LISTEN_PID names this process, as sd_listen_fds() checks; the fds are marked
    close-on-exec. With `unset_environment` the variables are removed so that child processes
    do not take the sockets for theirs. ValueError when the variables are malformed.
    """
    pid, count = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    if pid is None or count is None:
        return []
    if not pid.isdigit() or not count.isdigit():
        raise ValueError(f"LISTEN_PID={pid!r} / LISTEN_FDS={count!r}: expected decimal numbers")
    if int(pid) != os.getpid():
        return []
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        socks.append(socket.socket(fileno=fd))
    return socks
