"""systemd's notify protocol (sd_notify(3)): state lines in one datagram to $NOTIFY_SOCKET.

    notify("READY=1")                       # once serving
    notify("RELOADING=1", monotonic_usec()) # a SIGHUP reload begins (MONOTONIC_USEC= required)
    notify("STOPPING=1")                    # a graceful stop begins

Without NOTIFY_SOCKET every call does nothing. A failure to send is logged once and never
raised: a service manager that went away must not take the daemon down. "@name" is an
abstract socket. Thread-safe (one socket per call, no shared state but the logged flag).
"""

from __future__ import annotations

import os
import socket
import time

import structlog

_log = structlog.get_logger("reactorsvc.daemon")
_failed_once = False  # one writer at a time in practice; a second log line is harmless


def monotonic_usec() -> str:
    """The MONOTONIC_USEC= line systemd wants beside RELOADING=1 (CLOCK_MONOTONIC, µs)."""
    return f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def notify(*lines: str) -> bool:
    """Send the state lines; True when sent, False without NOTIFY_SOCKET or on failure."""
    global _failed_once
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode(), address)
    except OSError as exc:
        if not _failed_once:
            _failed_once = True
            _log.warning("sd_notify_failed", socket=path, error=str(exc))
        return False
    return True
