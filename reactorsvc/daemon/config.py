"""The daemon's configuration: YAML file → validated, frozen dataclasses.

Data flow: ``load_config(path)`` reads bytes → ``load_config_text`` → ``yamlpos.parse`` (nodes
with lines, bounded in size, depth and alias expansion) → the ``_parse_*`` functions below (one
per section, keys taken in document order, so the error reported is the first one in the file)
→ ``configbuild.check_buildable``, which builds what the owners build at serve time (the
EventConfig and the backend it resolves to, the dispatch policy, the resolved binds, the service factories)
so that ``check`` accepts exactly what ``serve`` runs. The first problem raises ConfigError,
whose ``str()`` is ``FILE:LINE: key.path: what is wrong``.

No value is re-declared here: a listener's backlog, timeouts and watermarks are the io layer's
``ListenerOptions`` (built from the YAML keys, which are its field names; ``_GROUPS`` says which
fields nest), backend and feature names are the reactor's tables, dispatch policies are
``workers.dispatch.POLICIES``. ``Config.source`` keeps the line of every key path, so a failure
at serve or reload time (a bind) can still be reported as ``FILE:LINE: key.path``.

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
from typing import Any, Callable, Union

import yaml

from ..base.backends import KNOWN_METHODS
from ..base.flags import FEATURE_NAMES
from ..io.options import ListenerOptions
from ..workers.dispatch import ACCEPT_MODES, POLICIES
from ..workers.sizing import auto_workers
from .configvalues import BUILTIN_SERVICES, parse_bind, service_target
from .yamlpos import (ConfigError, Map, Node, Scalar, describe, parse, read_choice, read_int,
                      read_list, read_map, read_seconds, read_str, to_plain)
from .configtransport import UDP_PREFIX, TlsConfig, check_transports, parse_tls

__all__ = [
    "Config", "BackendConfig", "ListenerConfig", "LoggingConfig", "AdminConfig",
    "ShutdownConfig", "Source", "ConfigError", "load_config", "load_config_text",
    "default_config", "config_to_dict", "config_to_yaml", "service_target", "parse_bind",
    "LOG_LEVELS", "LOG_FORMATS", "BUILTIN_SERVICES", "MAX_WORKERS", "MAX_PROCESSES",
    "ListenerOptions",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console", "auto")
MAX_WORKERS = 256
MAX_PROCESSES = 256
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
# How ListenerOptions' fields are spelled in YAML: a field with one of these prefixes sits in
# a nested mapping (write_buffer_high -> write_buffer: {high: ...}); every other field is a
# key of the listener itself. The fields themselves are ListenerOptions' (io/options.py).
_GROUPS = {"write_buffer": "write_buffer_"}


def _default_workers() -> int:
    """`workers: auto`: what pays on this interpreter (workers/sizing.py)."""
    return auto_workers(MAX_WORKERS)


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
            mask |= FEATURE_NAMES[name]
        return mask


@dataclass(frozen=True)
class ListenerConfig:
    """One listening socket, the service that handles its connections, and the io layer's
    ListenerOptions (backlog, timeouts, watermarks ...) exactly as they reach the Listener."""

    name: str
    bind: str  # "host:port", "[ipv6]:port" or "unix:/path"; see parse_bind()
    service: str  # a BUILTIN_SERVICES name or "package.module:factory"
    options: dict[str, Any] = field(default_factory=dict)  # passed through to the service factory
    io: ListenerOptions = field(default_factory=ListenerOptions)
    tls: TlsConfig | None = None  # a server certificate: every connection speaks TLS

    @property
    def datagram(self) -> bool:
        """True for a ``udp:HOST:PORT`` bind (a datagram endpoint, not a listening socket)."""
        return self.bind.startswith(UDP_PREFIX)

    @property
    def address(self) -> Union[tuple, str]:
        """(host, port) for TCP (IPv6 host without brackets), or the path for a Unix socket."""
        return parse_bind(self.bind)

    @property
    def target(self) -> str:
        """The service as "module:attr" (built-in names resolved)."""
        return service_target(self.service)


@dataclass(frozen=True)
class Source:
    """Where a Config came from: the file name and the line of every key path read."""

    filename: str
    lines: dict = field(default_factory=dict)

    def where(self, path: str) -> str:
        """``FILE:LINE: path`` (``FILE: path`` when the line is unknown)."""
        line = self.lines.get(path)
        return f"{self.filename}:{line}: {path}" if line else f"{self.filename}: {path}"


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
    accept: str = "supervisor"  # or "workers": each worker accepts on its own SO_REUSEPORT socket
    backend: BackendConfig = field(default_factory=BackendConfig)
    listeners: list[ListenerConfig] = field(default_factory=list)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)
    source: Source = field(default_factory=lambda: Source("<built>"), compare=False, repr=False)


# ---------------------------------------------------------------------------- public functions

def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML config file; ConfigError names FILE:LINE of the first problem."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(filename, None, "<root>", f"cannot read config: {reason}") from None
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
    cfg = _parse_config(filename, root)
    from .configbuild import check_buildable  # it imports the services: only when needed
    check_buildable(cfg)
    lines = cfg.source.lines
    check_transports(filename, cfg.listeners, lines, _is_datagram_service)
    if cfg.accept == "workers" and cfg.processes != 1:  # the children inherit bound sockets
        raise ConfigError(filename, lines["accept"], "accept",
                          f"accept: workers needs processes: 1 (processes is {cfg.processes}: its "
                          "children share the master's sockets, which cannot be bound once per "
                          "worker)")
    for i, lc in enumerate(cfg.listeners):
        if lc.datagram and cfg.processes != 1:  # the master binds stream sockets only
            raise ConfigError(filename, lines[f"listeners[{i}].bind"], f"listeners[{i}].bind",
                              f"a datagram listener ({lc.bind}) needs processes: 1 "
                              f"(processes is {cfg.processes})")
    return cfg


def _is_datagram_service(service: str) -> bool:
    """False when the service is a class without datagram_received (a function: unknown)."""
    from .services import resolve  # imports the service: only when needed
    target = resolve(service)
    return not isinstance(target, type) or callable(getattr(target, "datagram_received", None))


def default_config() -> Config:
    """The built-in default: the packaged default.yaml (an echo service on 127.0.0.1:7000)."""
    text = importlib.resources.files(__package__).joinpath("default.yaml").read_text("utf-8")
    return load_config_text(text, "<default>")


def config_to_dict(cfg: Config) -> dict:
    """The effective config as plain dicts and lists, keys in file order.

    Loading its YAML (config_to_yaml) gives a Config equal to ``cfg``.
    """
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "source":
            continue
        if f.name == "listeners":
            out[f.name] = [_listener_dict(lc) for lc in value]
        else:
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


# ListenerOptions' fields a YAML listener sets directly; its ssl* fields come from the ``tls:``
# block instead (app.py builds the SSLContext: a context is not a YAML value).
_IO_FIELDS = tuple(n for n in ListenerOptions.field_names() if not n.startswith("ssl"))


def _listener_dict(lc: ListenerConfig) -> dict:
    out = {"name": lc.name, "bind": lc.bind, "service": lc.service, "options": lc.options}
    for name in _IO_FIELDS:
        group, sub = _yaml_key(name)
        if sub is None:
            out[name] = getattr(lc.io, name)
        else:
            out.setdefault(group, {})[sub] = getattr(lc.io, name)
    out["tls"] = None if lc.tls is None else dataclasses.asdict(lc.tls)
    return out


def _yaml_key(field_name: str) -> tuple[str, str | None]:
    """(group, key) for a ListenerOptions field in a nested mapping, else (field, None)."""
    for group, prefix in _GROUPS.items():
        if field_name.startswith(prefix):
            return group, field_name[len(prefix):]
    return field_name, None


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


def _parse_config(fn: str, root: Map) -> Config:
    lines: dict = {}
    readers = {
        "workers": lambda f, n, p: _read_count(f, n, p, MAX_WORKERS, _default_workers),
        "processes": lambda f, n, p: _read_count(f, n, p, MAX_PROCESSES,
                                                 lambda: max(1, min(os.cpu_count() or 1, MAX_PROCESSES))),
        "dispatch": lambda f, n, p: read_choice(f, n, p, POLICIES, "dispatch policy"),
        "accept": lambda f, n, p: read_choice(f, n, p, ACCEPT_MODES, "accept mode"),
        "backend": lambda f, n, p: _parse_backend(f, n, p, lines),
        "listeners": lambda f, n, p: _parse_listeners(f, n, p, lines),
        "logging": lambda f, n, p: LoggingConfig(**_fields(f, n, p, _LOGGING_READERS, lines)),
        "admin": lambda f, n, p: AdminConfig(**_fields(f, n, p, _ADMIN_READERS, lines)),
        "shutdown": lambda f, n, p: ShutdownConfig(**_fields(f, n, p, _SHUTDOWN_READERS, lines)),
    }
    values = _fields(fn, root, "", readers, lines)
    _require(fn, root, "<root>", values, ("listeners",))
    return Config(**values, source=Source(fn, lines))


def _read_count(fn: str, node: Node, path: str, most: int, auto: Callable[[], int]) -> int:
    """workers / processes: 1..most, or auto (what `auto()` says)."""
    if isinstance(node, Scalar) and node.value == "auto":
        return auto()
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
        "avoid": lambda f, n, p: _read_names(f, n, p, KNOWN_METHODS, "backend"),
        "require": lambda f, n, p: _read_names(f, n, p, tuple(FEATURE_NAMES), "feature"),
    }
    lines[path] = node.line
    return BackendConfig(**_fields(fn, node, path, readers, lines))


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
    if not unix and bind.startswith(("unix:", UDP_PREFIX)):
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


def _parse_listeners(fn: str, node: Node, path: str, lines: dict) -> list:
    items = read_list(fn, node, path)
    if not items:
        raise ConfigError(fn, node.line, path, "at least one listener is required")
    listeners = [_parse_listener(fn, item, f"{path}[{i}]", lines) for i, item in enumerate(items)]
    names: dict = {}
    for i, listener in enumerate(listeners):
        if listener.name in names:
            raise ConfigError(fn, lines[f"{path}[{i}].name"], f"{path}[{i}].name",
                              f"duplicate listener name {listener.name!r} "
                              f"(first at line {names[listener.name]})")
        names[listener.name] = lines[f"{path}[{i}].name"]
    return listeners


_LISTENER_READERS = {"name": _read_name, "bind": _read_bind, "service": _read_service}


def _parse_listener(fn: str, item: Node, path: str, lines: dict) -> ListenerConfig:
    """name/bind/service/options here; every other key is a ListenerOptions field, built by
    ListenerOptions itself (its TypeError/ValueError become the ConfigError of that key)."""
    io_keys = {_yaml_key(name)[0] for name in _IO_FIELDS}
    lines[path] = item.line
    values: dict = {}
    io: dict = {}
    for key, entry in read_map(fn, item, path,
                               [*_LISTENER_READERS, "options", "tls", *io_keys]).items():
        key_path = _join(path, key)
        lines[key_path] = entry.node.line
        if key in _LISTENER_READERS:
            values[key] = _LISTENER_READERS[key](fn, entry.node, key_path)
        elif key == "tls":
            values[key] = parse_tls(fn, entry.node, key_path, lines)
        elif key == "options":
            values[key] = _read_options(fn, entry.node, key_path, lines)
        elif key in _GROUPS:
            subkeys = {_yaml_key(n)[1]: n for n in _IO_FIELDS
                       if _yaml_key(n)[0] == key}
            for sub, sub_entry in read_map(fn, entry.node, key_path, subkeys).items():
                lines[f"{key_path}.{sub}"] = sub_entry.node.line
                io[subkeys[sub]] = to_plain(sub_entry.node)
        else:
            io[key] = to_plain(entry.node)
    _require(fn, item, path, values, ("name", "bind", "service"))
    try:
        values["io"] = ListenerOptions(**io)
    except (TypeError, ValueError) as exc:
        argument = getattr(exc, "argument", None)
        group, sub = _yaml_key(argument) if argument else (None, None)
        key_path = path if group is None else _join(path, group if sub is None else f"{group}.{sub}")
        raise ConfigError(fn, lines.get(key_path, item.line), key_path, str(exc)) from None
    return ListenerConfig(**values)
