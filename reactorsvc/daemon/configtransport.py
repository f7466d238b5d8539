"""The transport keys of a listener: ``tls: {cert, key, client_ca, min_version}`` and
``bind: "udp:HOST:PORT"`` (datagrams). Parsing records lines like the other section parsers
(config.py); ``check_transports`` validates by building what the daemon will run — the real
SSLContext (io/tls.py's server_context, so unreadable files, bad PEM and a key that does not
match its certificate are found at ``check`` time) — and translates its errors to FILE:LINE.

Paths are taken relative to the config file's directory. Pure functions apart from reading
the certificate files; any thread.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from ..io.tls import TLSConfigError, server_context
from .yamlpos import ConfigError, Node, Scalar, read_choice, read_map, read_str

__all__ = ["TlsConfig", "parse_tls", "check_transports", "tls_context", "UDP_PREFIX"]

UDP_PREFIX = "udp:"
# Listener keys that only mean something for a stream listener.
_STREAM_ONLY = ("backlog", "max_connections", "idle_timeout", "read_timeout", "write_timeout",
                "write_buffer", "tls")


@dataclass(frozen=True)
class TlsConfig:
    """A listener's server certificate; client_ca set: clients must present a certificate."""

    cert: str
    key: str
    client_ca: str | None = None
    min_version: str = "1.2"


def _base_dir(fn: str) -> str:
    return os.path.dirname(os.path.abspath(fn)) if os.path.isfile(fn) else os.getcwd()


def parse_tls(fn: str, node: Node, path: str, lines: dict) -> TlsConfig | None:
    """The ``tls`` mapping (null: no TLS); cert and key required, paths made absolute."""
    if isinstance(node, Scalar) and node.value is None:
        return None
    readers = {"cert": False, "key": False, "client_ca": True}
    values: dict[str, Any] = {}
    for key, entry in read_map(fn, node, path, (*readers, "min_version")).items():
        key_path = f"{path}.{key}"
        lines[key_path] = entry.node.line
        if key == "min_version":  # 1.2 unquoted is a YAML float: take it as written
            n = entry.node
            if isinstance(n, Scalar) and isinstance(n.value, float) and n.value in (1.2, 1.3):
                values[key] = str(n.value)
            else:
                values[key] = read_choice(fn, n, key_path, ("1.2", "1.3"), "TLS version")
            continue
        value = read_str(fn, entry.node, key_path, nullable=readers[key])
        values[key] = None if value is None else os.path.join(_base_dir(fn), value)
    for key in ("cert", "key"):
        if key not in values:
            raise ConfigError(fn, node.line, path, f"missing required key {key!r}")
    return TlsConfig(**values)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """The SSLContext a listener serves with (files read now: a reload rotates them)."""
    return server_context(tls.cert, tls.key, tls.client_ca, tls.min_version)


def check_transports(fn: str, listeners: list, lines: dict, is_datagram_service) -> None:
    """udp: binds carry no stream-only keys and name a datagram service; every tls block
    builds a real SSLContext. The first problem raises ConfigError at its line."""
    for i, listener in enumerate(listeners):
        path = f"listeners[{i}]"
        if listener.bind.startswith(UDP_PREFIX):
            for key in _STREAM_ONLY:
                if f"{path}.{key}" in lines:
                    raise ConfigError(fn, lines[f"{path}.{key}"], f"{path}.{key}",
                                      f"does not apply to a datagram listener ({listener.bind})")
            if not is_datagram_service(listener.service):
                raise ConfigError(fn, lines[f"{path}.service"], f"{path}.service",
                                  f"service {listener.service!r} does not serve datagrams "
                                  "(it has no datagram_received)")
        if listener.tls is not None:
            try:
                tls_context(listener.tls)
            except TLSConfigError as exc:
                where = f"{path}.tls.{exc.option}"
                where = where if where in lines else f"{path}.tls"
                raise ConfigError(fn, lines[where], where, str(exc).split(": ", 1)[1]) from None
