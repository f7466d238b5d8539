"""The daemon's configuration: YAML file → validated, frozen dataclasses.

Data flow: ``load_config(path)`` reads bytes → ``load_config_text`` → ``yamlpos.parse`` (nodes
with lines) → the ``_parse_*`` functions below (one per section, keys taken in document order,
so the error reported is the first one in the file) → the cross checks that need the whole file
(duplicate listener names, overlapping binds, the admin bind) → services imported last, so a
typo elsewhere is reported before any user code runs. The first problem raises ConfigError,
whose ``str()`` is ``FILE:LINE: key.path: what is wrong``.

``default_config()`` loads the packaged ``default.yaml`` (the same text as configs/default.yaml).
``config_to_dict`` / ``config_to_yaml`` give the effective config back; loading that output
yields an equal Config. Every key is documented in docs/config.md.

Thread-safety: every function here is pure apart from importing service modules (which Python's
import lock serialises); all may be called from any thread. Config objects are frozen; treat
their lists and the options dicts as read-only too.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from dataclasses import dataclass, field
from typing import Any, Union

import yaml

from .configvalues import BUILTIN_SERVICES, binds_overlap, parse_bind, service_target
from .services import make_factory, resolve
from .yamlpos import (ConfigError, Map, Node, Scalar, describe, parse, read_bool, read_choice,
                      read_int, read_list, read_map, read_seconds, read_str, to_plain)

__all__ = [
    "Config", "BackendConfig", "ListenerConfig", "WriteBufferConfig", "LoggingConfig",
    "AdminConfig", "ShutdownConfig", "ConfigError", "load_config", "load_config_text",
    "default_config", "config_to_dict", "config_to_yaml", "service_target", "parse_bind",
    "DISPATCH_POLICIES", "BACKENDS", "FEATURES", "LOG_LEVELS", "LOG_FORMATS",
    "BUILTIN_SERVICES", "MAX_WORKERS", "MAX_PROCESSES",
]

DISPATCH_POLICIES = ("round_robin", "least_connections", "hash")
BACKENDS = ("epoll", "poll", "select", "kqueue")
#: Feature names → EV_FEATURE_* masks (DESIGN.md values), for EventConfig.require_features.
FEATURES = {"ET": 0x01, "O1": 0x02, "FDS": 0x04, "EARLY_CLOSE": 0x08}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console", "auto")
MAX_WORKERS = 256
MAX_PROCESSES = 256
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@dataclass(frozen=True)
class BackendConfig:
    """Backend preferences: names to avoid, EV_FEATURE names the backend must have."""

    avoid: list[str] = field(default_factory=list)
    require: list[str] = field(default_factory=list)

    @property
    def require_mask(self) -> int:
        """The OR of the required EV_FEATURE_* masks."""
        mask = 0
        for name in self.require:
            mask |= FEATURES[name]
        return mask


@dataclass(frozen=True)
class WriteBufferConfig:
    """Transport write-buffer watermarks in bytes (asyncio's defaults); 0 <= low <= high."""

    high: int = 64 * 1024
    low: int = 16 * 1024


@dataclass(frozen=True)
class ListenerConfig:
    """One listening socket and the service that handles its connections."""

    name: str
    bind: str  # "host:port", "[ipv6]:port" or "unix:/path"; see parse_bind()
    service: str  # a BUILTIN_SERVICES name or "package.module:factory"
    options: dict[str, Any] = field(default_factory=dict)  # passed through to the service factory
    backlog: int = 1024
    reuse_port: bool = False
    max_connections: int | None = None
    idle_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    write_buffer: WriteBufferConfig = field(default_factory=WriteBufferConfig)

    @property
    def address(self) -> Union[tuple, str]:
        """(host, port) for TCP (IPv6 host without brackets), or the path for a Unix socket."""
        return parse_bind(self.bind)

    @property
    def target(self) -> str:
        """The service as "module:attr" (built-in names resolved)."""
        return service_target(self.service)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto: console renderer on a TTY, else JSON lines


@dataclass(frozen=True)
class AdminConfig:
    """The admin HTTP endpoint; bind None (the default when the section is absent) disables it."""

    bind: str | None = None

    @property
    def address(self) -> tuple | None:
        return None if self.bind is None else parse_bind(self.bind)


@dataclass(frozen=True)
class ShutdownConfig:
    grace: float = 10.0  # seconds a graceful stop waits for connections to finish
    # Seconds between /healthz turning 503 and the listeners closing, while the daemon still
    # serves: time for a load balancer's health checks to move traffic away (0: none).
    health_delay: float = 0.0


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration, validated."""

    workers: int = field(default_factory=_default_workers)
    processes: int = 1  # >1: a master process and this many forked children (daemon/master.py)
    dispatch: str = "round_robin"
    backend: BackendConfig = field(default_factory=BackendConfig)
    listeners: list[ListenerConfig] = field(default_factory=list)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)


# ---------------------------------------------------------------------------- public functions

def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML config file; ConfigError names FILE:LINE of the first problem."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(filename, None, "", f"cannot read config: {reason}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.start + 1].hex()
        raise ConfigError(filename, line, "<root>", f"not valid UTF-8 (byte 0x{bad})") from None
    return load_config_text(text, filename)


def load_config_text(text: str, filename: str = "<default>") -> Config:
    """Validate config text; ``filename`` is only used in error messages."""
    root = parse(text, filename)
    if not isinstance(root, Map):
        got = "an empty document" if root is None else describe(root)
        line = 1 if root is None else root.line
        raise ConfigError(filename, line, "<root>", f"the top level must be a mapping, got {got}")
    cfg, lines = _parse_config(filename, root)
    _check_binds(filename, cfg, lines)
    _check_services(filename, cfg, lines)
    return cfg


def default_config() -> Config:
    """The built-in default: the packaged default.yaml (an echo service on 127.0.0.1:7000)."""
    text = importlib.resources.files(__package__).joinpath("default.yaml").read_text("utf-8")
    return load_config_text(text, "<default>")


def config_to_dict(cfg: Config) -> dict:
    """The effective config as plain dicts and lists, keys in file order.

    Loading its YAML (config_to_yaml) gives a Config equal to ``cfg``.
    """
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """config_to_dict as YAML text (what ``reactorsvc check`` prints)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------- section parsers
# Each returns the dataclass and records the line of every value it read in ``lines``
# (key path → line), which the cross checks use to point at the offending value.

def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fields(fn: str, node: Node, path: str, readers: dict, lines: dict) -> dict:
    """Read a mapping whose keys must be ``readers``' keys; reader(fn, node, path) -> value."""
    values = {}
    for key, entry in read_map(fn, node, path, readers).items():
        key_path = _join(path, key)
        values[key] = readers[key](fn, entry.node, key_path)
        lines[key_path] = entry.node.line
    return values


def _require(fn: str, node: Node, path: str, values: dict, keys: tuple) -> None:
    for key in keys:
        if key not in values:
            raise ConfigError(fn, node.line, path, f"missing required key {key!r}")


def _parse_config(fn: str, root: Map) -> tuple:
    lines: dict = {}
    readers = {
        "workers": lambda f, n, p: _read_count(f, n, p, MAX_WORKERS),
        "processes": lambda f, n, p: _read_count(f, n, p, MAX_PROCESSES),
        "dispatch": lambda f, n, p: read_choice(f, n, p, DISPATCH_POLICIES, "dispatch policy"),
        "backend": lambda f, n, p: _parse_backend(f, n, p, lines),
        "listeners": lambda f, n, p: _parse_listeners(f, n, p, lines),
        "logging": lambda f, n, p: LoggingConfig(**_fields(f, n, p, _LOGGING_READERS, lines)),
        "admin": lambda f, n, p: AdminConfig(**_fields(f, n, p, _ADMIN_READERS, lines)),
        "shutdown": lambda f, n, p: ShutdownConfig(**_fields(f, n, p, _SHUTDOWN_READERS, lines)),
    }
    values = _fields(fn, root, "", readers, lines)
    _require(fn, root, "<root>", values, ("listeners",))
    return Config(**values), lines


def _read_count(fn: str, node: Node, path: str, most: int) -> int:
    """workers / processes: 1..most, or auto (one per CPU)."""
    if isinstance(node, Scalar) and node.value == "auto":
        return max(1, min(os.cpu_count() or 1, most))
    if not isinstance(node, Scalar) or type(node.value) is not int:
        raise ConfigError(fn, node.line, path,
                          f"expected an integer or 'auto', got {describe(node)}")
    return read_int(fn, node, path, 1, most)


def _read_delay(fn: str, node: Node, path: str) -> float:
    """Seconds >= 0 (0 disables)."""
    if isinstance(node, Scalar) and type(node.value) in (int, float) and node.value <= 0:
        if node.value < 0:
            raise ConfigError(fn, node.line, path, f"must be 0 or more seconds, got {node.text}")
        return 0.0
    return read_seconds(fn, node, path)


def _read_names(fn: str, node: Node, path: str, choices, what: str) -> list:
    return [read_choice(fn, item, f"{path}[{i}]", choices, what)
            for i, item in enumerate(read_list(fn, node, path))]


def _parse_backend(fn: str, node: Node, path: str, lines: dict) -> BackendConfig:
    readers = {
        "avoid": lambda f, n, p: _read_names(f, n, p, BACKENDS, "backend"),
        "require": lambda f, n, p: _read_names(f, n, p, tuple(FEATURES), "feature"),
    }
    values = _fields(fn, node, path, readers, lines)
    if set(BACKENDS) <= set(values.get("avoid", ())):
        raise ConfigError(fn, lines[f"{path}.avoid"], f"{path}.avoid",
                          "avoids every backend: at least one must stay usable")
    return BackendConfig(**values)


_LOGGING_READERS = {
    "level": lambda f, n, p: read_choice(f, n, p, LOG_LEVELS, "log level"),
    "format": lambda f, n, p: read_choice(f, n, p, LOG_FORMATS, "log format"),
}
_ADMIN_READERS = {"bind": lambda f, n, p: _read_bind(f, n, p, nullable=True, unix=False)}
_SHUTDOWN_READERS = {"grace": read_seconds, "health_delay": _read_delay}


def _read_bind(fn: str, node: Node, path: str, *, nullable: bool = False,
               unix: bool = True) -> str | None:
    bind = read_str(fn, node, path, nullable=nullable)
    if bind is None:
        return None
    if not unix and bind.startswith("unix:"):
        raise ConfigError(fn, node.line, path, "must be host:port (a Unix socket is not allowed)")
    try:
        parse_bind(bind)
    except ValueError as exc:
        raise ConfigError(fn, node.line, path, str(exc)) from None
    return bind


def _read_name(fn: str, node: Node, path: str) -> str:
    name = read_str(fn, node, path)
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(fn, node.line, path,
                          f"name {name!r} may only contain letters, digits, '_', '.' and '-'")
    return name


def _read_service(fn: str, node: Node, path: str) -> str:
    service = read_str(fn, node, path)
    try:
        service_target(service)
    except ValueError as exc:
        raise ConfigError(fn, node.line, path, str(exc)) from None
    return service


def _read_options(fn: str, node: Node, path: str, lines: dict) -> dict:
    """Any mapping (null: none), kept as written; the service checks it (_check_services)."""
    if isinstance(node, Scalar) and node.value is None:
        return {}
    if not isinstance(node, Map):
        raise ConfigError(fn, node.line, path, f"expected a mapping, got {describe(node)}")
    for name, entry in node.entries.items():
        lines[f"{path}.{name}"] = entry.node.line
    return to_plain(node)


def _optional_seconds(fn: str, node: Node, path: str) -> float | None:
    return read_seconds(fn, node, path, nullable=True)


_LISTENER_READERS = {
    "name": _read_name,
    "bind": _read_bind,
    "service": _read_service,
    "backlog": lambda f, n, p: read_int(f, n, p, 1, 65535),
    "reuse_port": read_bool,
    "max_connections": lambda f, n, p: read_int(f, n, p, 1, None, nullable=True),
    "idle_timeout": _optional_seconds,
    "read_timeout": _optional_seconds,
    "write_timeout": _optional_seconds,
}


def _parse_listeners(fn: str, node: Node, path: str, lines: dict) -> list:
    items = read_list(fn, node, path)
    if not items:
        raise ConfigError(fn, node.line, path, "at least one listener is required")
    listeners = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        readers = dict(_LISTENER_READERS)
        readers["write_buffer"] = lambda f, n, p: _parse_write_buffer(f, n, p, lines)
        readers["options"] = lambda f, n, p: _read_options(f, n, p, lines)
        values = _fields(fn, item, item_path, readers, lines)
        _require(fn, item, item_path, values, ("name", "bind", "service"))
        listeners.append(ListenerConfig(**values))
    names: dict = {}
    for i, listener in enumerate(listeners):
        if listener.name in names:
            raise ConfigError(fn, lines[f"{path}[{i}].name"], f"{path}[{i}].name",
                              f"duplicate listener name {listener.name!r} "
                              f"(first at line {names[listener.name]})")
        names[listener.name] = lines[f"{path}[{i}].name"]
    return listeners


def _parse_write_buffer(fn: str, node: Node, path: str, lines: dict) -> WriteBufferConfig:
    readers = {"high": lambda f, n, p: read_int(f, n, p, 0, None),
               "low": lambda f, n, p: read_int(f, n, p, 0, None)}
    values = _fields(fn, node, path, readers, lines)
    # asyncio's rule for a missing half: high = 4 * low, low = high // 4.
    high = values.get("high", 4 * values["low"] if "low" in values else 64 * 1024)
    low = values.get("low", high // 4)
    if low > high:
        raise ConfigError(fn, lines[f"{path}.low"], f"{path}.low",
                          f"low watermark {low} is above the high watermark {high}")
    return WriteBufferConfig(high=high, low=low)


# ---------------------------------------------------------------------------- cross checks

def _check_binds(fn: str, cfg: Config, lines: dict) -> None:
    """No two listeners, nor a listener and the admin endpoint, may share an address."""
    seen: list = []  # (parsed, bind text, owner path)
    binds = [(f"listeners[{i}]", lst.bind) for i, lst in enumerate(cfg.listeners)]
    if cfg.admin.bind is not None:
        binds.append(("admin", cfg.admin.bind))
    for owner, bind in binds:
        parsed = parse_bind(bind)
        for other_parsed, other_bind, other_owner in seen:
            if binds_overlap(parsed, other_parsed):
                how = ("is already used by" if parsed == other_parsed
                       else f"overlaps {other_bind} of")
                raise ConfigError(fn, lines[f"{owner}.bind"], f"{owner}.bind",
                                  f"address {bind} {how} {other_owner} "
                                  f"(line {lines[f'{other_owner}.bind']})")
        seen.append((parsed, bind, owner))


def _check_services(fn: str, cfg: Config, lines: dict) -> None:
    """Import every service and check its options now, so a bad one fails before anything binds.

    Import problems point at ``service``; option problems at the option's own line when the
    service names it (ServiceError.option), else at ``options`` (or ``service`` if absent).
    """
    for i, listener in enumerate(cfg.listeners):
        path = f"listeners[{i}]"
        try:
            resolve(listener.service)
        except ValueError as exc:
            raise ConfigError(fn, lines[f"{path}.service"], f"{path}.service", str(exc)) from None
        try:
            make_factory(listener.service, listener.options)
        except ValueError as exc:
            option = getattr(exc, "option", None)
            candidates = [f"{path}.options.{option}"] if option else []
            candidates += [f"{path}.options", f"{path}.service"]
            where = next(p for p in candidates if p in lines)
            raise ConfigError(fn, lines[where], where, str(exc)) from None
