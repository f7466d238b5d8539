"""Value checks shared by the config loader and the daemon: bind addresses and services.

``parse_bind`` turns "host:port", "[ipv6]:port" or "unix:/path" into what a socket binds to;
``resolve_bind`` resolves a host name as the Listener will when it binds (getaddrinfo), and
``binds_overlap`` says whether two such addresses collide on Linux. ``service_target`` maps a
service name (a built-in of ``services.BUILTIN`` or "package.module:factory") to "module:attr"
without importing anything; ``services.make_factory`` does the importing. Each function raises
ValueError with a message fit to follow ``FILE:LINE: key.path:``.

All functions are pure and safe to call from any thread.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Union

from ..io.sockets import check_unix_path, resolve
from .services import BUILTIN as BUILTIN_SERVICES  # built-in name -> "module:attr"
from .yamlpos import suggest

__all__ = ["BUILTIN_SERVICES", "service_target", "parse_bind", "binds_overlap", "resolve_bind"]

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_IMPORT_PATH_RE = re.compile(rf"{_DOTTED}:{_DOTTED}")
_HOST_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def service_target(service: str) -> str:
    """"module:attr" for a built-in service name or an import path; ValueError otherwise."""
    if service in BUILTIN_SERVICES:
        return BUILTIN_SERVICES[service]
    if _IMPORT_PATH_RE.fullmatch(service):
        return service
    builtins = ", ".join(BUILTIN_SERVICES)
    hint = suggest(service, BUILTIN_SERVICES).split(" (valid")[0]
    raise ValueError(f"unknown service {service!r}{hint} (a service is a built-in name: "
                     f"{builtins}, or an import path 'package.module:factory')")


def parse_bind(text: str) -> Union[tuple, str]:
    """"host:port", "[v6]:port" → (host, port); "unix:/path" → path; "udp:host:port" (a
    datagram listener) → (host, port); else ValueError (why)."""
    if text.startswith("udp:"):
        parsed = parse_bind(text[len("udp:"):])
        if isinstance(parsed, str):
            raise ValueError("a udp: bind takes host:port, not a Unix socket path")
        return parsed
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if not path:
            raise ValueError("unix socket path is empty")
        return check_unix_path(path)  # the io layer's limits (sun_path size, NUL)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected 'host:port', '[ipv6]:port' or 'unix:/path', got {text!r}")
    host = _parse_host(host)
    if not port_text.isdigit():
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535")
    return host, port


def _parse_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"unclosed '[' in {host!r}")
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"{host[1:-1]!r} is not a valid IPv6 address") from None
    if not host:
        raise ValueError("missing host (use 0.0.0.0 or [::] for all interfaces)")
    if ":" in host:
        raise ValueError(f"an IPv6 address needs brackets, as in '[{host}]:PORT'")
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
    if len(host) > 253 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name or IP address")
    return host.lower()


def _host_family(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None  # a host name: it may resolve to either family


def binds_overlap(a: Union[tuple, str], b: Union[tuple, str]) -> bool:
    """Whether two parse_bind() results cannot both be bound (Linux rules, SO_REUSEADDR set)."""
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and \
            os.path.normpath(a) == os.path.normpath(b)
    (host_a, port_a), (host_b, port_b) = a, b
    if port_a != port_b:
        return False
    if host_a == host_b or "::" in (host_a, host_b):  # "::" is dual-stack by default
        return True
    for wildcard, other in ((host_a, host_b), (host_b, host_a)):
        if wildcard == "0.0.0.0" and _host_family(other) in (4, None):
            return True
    return False


def resolve_bind(address: Union[tuple, str]) -> list:
    """The addresses a parse_bind() result binds: [(ip, port), ...] for TCP (every address the
    host resolves to, as the Listener binds them all), [path] for a Unix socket.

    OSError (socket.gaierror naming the host) when the name does not resolve.
    """
    if isinstance(address, str):
        return [address]
    host, port = address
    return [info[4][:2] for info in resolve(host, port, passive=True)]
