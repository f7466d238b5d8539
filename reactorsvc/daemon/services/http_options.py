"""http-hello's options: names, defaults and checks, defined once here.

``validate_options(**options)`` is the service's ``validate_options`` hook (see
services/__init__.py): the daemon's config check and ``HttpHelloProtocol.__init__`` both call
it, so a bad value is refused with the same ServiceError (a ValueError) naming the option.
"""

from __future__ import annotations

import math
from typing import Any

from reactorsvc.daemon.services import ServiceError

DEFAULTS: dict[str, Any] = {
    "body": "Hello, world!\n",
    "max_request_line": 8192,      # bytes, else 414
    "max_header_size": 65536,      # bytes, else 431
    "max_body": 1 << 20,           # bytes of a request body, else 413 (null: no limit)
    "header_timeout": 10.0,        # seconds from a request's first byte to its complete head
    "body_timeout": 30.0,          # seconds from the head to the end of its body, else 408
    "keepalive_timeout": 75.0,     # seconds a connection may wait idle for its next request
    "drain_idle": 0.5,             # on drain: idle this long (seconds) means closed at once
}


def _count(name: str, value: Any, least: int = 1, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an integer or null" if nullable else "an integer"
        raise ServiceError(f"{name} must be {kind}, not {type(value).__name__}", name)
    if value < least:
        raise ServiceError(f"{name} must be >= {least}, got {value}", name)
    return value


def _seconds(name: str, value: Any, nullable: bool = True) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number of seconds or null" if nullable else "a number of seconds"
        raise ServiceError(f"{name} must be {kind}, not {type(value).__name__}", name)
    if not 0 < value < math.inf:
        raise ServiceError(f"{name} must be > 0, got {value}", name)
    return float(value)


def validate_options(
    body: str | bytes = DEFAULTS["body"],
    max_request_line: int = DEFAULTS["max_request_line"],
    max_header_size: int = DEFAULTS["max_header_size"],
    max_body: int | None = DEFAULTS["max_body"],
    header_timeout: float | None = DEFAULTS["header_timeout"],
    body_timeout: float | None = DEFAULTS["body_timeout"],
    keepalive_timeout: float | None = DEFAULTS["keepalive_timeout"],
    drain_idle: float = DEFAULTS["drain_idle"],
) -> dict[str, Any]:
    """Check http-hello's options; return them normalised or raise ServiceError naming one."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        raise ServiceError(f"body must be a string, not {type(body).__name__}", "body")
    return {
        "body": body,
        "max_request_line": _count("max_request_line", max_request_line),
        "max_header_size": _count("max_header_size", max_header_size),
        "max_body": _count("max_body", max_body, least=0, nullable=True),
        "header_timeout": _seconds("header_timeout", header_timeout),
        "body_timeout": _seconds("body_timeout", body_timeout),
        "keepalive_timeout": _seconds("keepalive_timeout", keepalive_timeout),
        "drain_idle": _seconds("drain_idle", drain_idle, nullable=False),
    }
