"""ListenerOptions: how a listener accepts and how its connections are served — one frozen value.

The io layer owns these options because it is the layer that uses them: the Listener reads
``backlog``, ``reuse_port`` and ``max_connections``; ``Connection.start`` reads the timeouts and
the write-buffer watermarks. Everything above (Server, Supervisor, Worker, the daemon's YAML)
builds one ListenerOptions and passes it along unchanged; nobody re-declares a field or re-checks
a value. The object validates itself on construction: a bad field raises a TypeError/ValueError
from reactorsvc._checks whose ``argument`` attribute is the field's name.

Limits: ``backlog`` 0..65535 (Linux caps listen(2)'s backlog at net.core.somaxconn, itself at
most 65535 on older kernels); timeouts as ``_checks.check_timeout`` (> 0, at most MAX_SECONDS);
watermarks asyncio's (high >= low >= 0; a missing half: high = 4 * low, low = high // 4).

Frozen and immutable: safe to share between threads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._checks import (BadArgumentValue, check_bool, check_int, check_optional_int,
                       check_timeout)
from .tls import check_tls_options
from .writing import DEFAULT_HIGH

__all__ = ["ListenerOptions", "MAX_BACKLOG"]

MAX_BACKLOG = 65535


@dataclass(frozen=True)
class ListenerOptions:
    """A listener's accept settings and its connections' transport settings.

    ``write_buffer_high``/``write_buffer_low`` given as None are filled in by asyncio's rule,
    so two options built from equivalent inputs compare equal.
    """

    backlog: int = 1024
    reuse_port: bool = False
    max_connections: int | None = None
    idle_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    write_buffer_high: int | None = None
    write_buffer_low: int | None = None
    ssl: Any = None                 # a server-side ssl.SSLContext: TLS on every connection
    ssl_handshake_timeout: float = 60.0
    ssl_shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        check_int(self.backlog, "backlog", 0, MAX_BACKLOG)
        check_bool(self.reuse_port, "reuse_port")
        check_optional_int(self.max_connections, "max_connections", 1)
        for name in ("idle_timeout", "read_timeout", "write_timeout"):
            object.__setattr__(self, name, check_timeout(getattr(self, name), name))
        high = check_optional_int(self.write_buffer_high, "write_buffer_high", 0)
        low = check_optional_int(self.write_buffer_low, "write_buffer_low", 0)
        if high is None:
            high = DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if low > high:
            raise BadArgumentValue("write_buffer_low", f"write_buffer_low {low} is above "
                                                       f"write_buffer_high {high}")
        ssl, _, handshake, shutdown = check_tls_options(
            self.ssl, server_side=True, handshake_timeout=self.ssl_handshake_timeout,
            shutdown_timeout=self.ssl_shutdown_timeout)
        object.__setattr__(self, "ssl_handshake_timeout", handshake)
        object.__setattr__(self, "ssl_shutdown_timeout", shutdown)
        object.__setattr__(self, "write_buffer_high", high)
        object.__setattr__(self, "write_buffer_low", low)

    def replace(self, **changes: Any) -> ListenerOptions:
        """A copy with ``changes`` applied (validated like a new one)."""
        return dataclasses.replace(self, **changes)

    @property
    def timeouts(self) -> dict[str, float | None]:
        """idle/read/write timeouts as Connection's keyword arguments."""
        return {"idle_timeout": self.idle_timeout, "read_timeout": self.read_timeout,
                "write_timeout": self.write_timeout}

    @property
    def tls(self) -> dict[str, Any]:
        """ssl and its timeouts as Connection's keyword arguments."""
        return {"ssl": self.ssl, "ssl_handshake_timeout": self.ssl_handshake_timeout,
                "ssl_shutdown_timeout": self.ssl_shutdown_timeout}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
