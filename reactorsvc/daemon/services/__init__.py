"""Services: what a listener runs on each connection, and how a config names one.

A *service* is a callable ``target(**options) -> Protocol``, called once per
connection; the protocol factory given to ``Server``/``start_server`` is
``functools.partial(target, **options)``. A Protocol class whose ``__init__``
takes the options as keyword arguments is therefore a service as it is
(``EchoProtocol``, ``HttpHelloProtocol``), and so is any function returning a
protocol. The protocols are asyncio-compatible and run unchanged on asyncio.

A config names a service either by a built-in name (``BUILTIN``: echo, discard,
http-hello) or by an import path ``package.module:attr`` (``attr`` may be
dotted). ``make_factory`` resolves the name, checks the options eagerly
against the target's signature (unknown names, missing required ones) and,
when the target has a ``validate_options(**options) -> dict`` hook, against
that too (types, ranges; it returns the normalised options). Every failure is a
``ServiceError`` (a ValueError) whose message names the service and whose
``option`` attribute names the offending option, or is None when the service
itself is at fault: config validation can point at the right YAML key.

Thread-safety: ``make_factory`` and ``resolve`` may run in any thread (imports
take Python's import lock); the factory they return is called from worker
threads and builds independent per-connection objects.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from ...io.connection import check_protocol

__all__ = ["BUILTIN", "ServiceError", "make_factory", "resolve"]

BUILTIN: dict[str, str] = {
    "echo": "reactorsvc.daemon.services.echo:EchoProtocol",
    "discard": "reactorsvc.daemon.services.discard:DiscardProtocol",
    "http-hello": "reactorsvc.daemon.services.http_hello:HttpHelloProtocol",
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"({_IDENT}(?:\.{_IDENT})*):({_IDENT}(?:\.{_IDENT})*)")


class ServiceError(ValueError):
    """A service that cannot be loaded, or options it does not accept.

    ``option``: the option's name when one option is at fault, else None.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def resolve(target: str) -> Callable[..., Any]:
    """Return the callable a service name or ``package.module:attr`` path denotes.

    Raises ServiceError when the name is neither, the module does not import
    (whatever it raises while importing), the attribute is missing, or it is
    not callable.
    """
    if not isinstance(target, str):
        raise ServiceError(f"a service must be a string, not {type(target).__name__}")
    path = BUILTIN.get(target, target)
    match = _IMPORT_PATH.fullmatch(path)
    if match is None:
        raise ServiceError(
            f"unknown service {target!r}: not a built-in ({', '.join(BUILTIN)}) "
            f"nor a 'package.module:attr' import path"
        )
    module_name, attr_path = match.groups()
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing user code is a config error
        raise ServiceError(
            f"service {target!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ServiceError(
                f"service {target!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not callable(obj):
        raise ServiceError(f"service {target!r}: {attr_path!r} is not callable")
    return obj


def _check_signature(target: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # no introspectable signature (a C callable): leave it to the call
    params = sig.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        usable = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
        known = sorted(name for name, p in params.items() if p.kind in usable)
        for name in options:
            if name not in known:
                accepted = ", ".join(known) if known else "none"
                raise ServiceError(
                    f"service {target!r} has no option {name!r} (accepted: {accepted})", name
                )
    # Our own words, not sig.bind()'s: its message changes between Python versions.
    for name, p in params.items():
        if (p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
                and name not in options):
            raise ServiceError(f"service {target!r} cannot take these options: "
                               f"missing a required argument: {name!r}")
        if p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
            raise ServiceError(f"service {target!r} cannot take these options: "
                               f"it needs a positional argument {name!r}")


def _check_produces_protocols(target: str, fn: Callable[..., Any]) -> None:
    """A class must have the Protocol methods (the io layer's rule); a C built-in such as
    ``os:getcwd`` cannot be a protocol factory. A Python function is taken on trust: calling it
    here could have effects, and its result is checked per connection."""
    if inspect.isclass(fn):
        try:
            check_protocol(fn)
        except TypeError as exc:
            raise ServiceError(f"service {target!r}: class {fn.__qualname__} is not a protocol "
                               f"({exc})") from None
    elif inspect.isbuiltin(fn) or isinstance(fn, (type(len), type("".join))):
        raise ServiceError(f"service {target!r} is a built-in function, not a protocol factory "
                           "(a Protocol class, or a function returning a protocol)")


def make_factory(target: str, options: Mapping[str, Any] | None = None) -> Callable[[], Any]:
    """Resolve ``target`` and check ``options`` now; return the protocol factory.

    The result is ``functools.partial(service, **options)`` (options as
    normalised by the service's ``validate_options`` hook, if any). Raises
    ServiceError, naming the option at fault where there is one.
    """
    fn = resolve(target)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ServiceError(
            f"service {target!r}: options must be a mapping, not {type(options).__name__}"
        )
    _check_produces_protocols(target, fn)
    opts = dict(options)
    for name in opts:
        if not isinstance(name, str):
            raise ServiceError(f"service {target!r}: option names must be strings, got {name!r}")
    _check_signature(target, fn, opts)
    validate = getattr(fn, "validate_options", None)
    if callable(validate):
        try:
            opts = dict(validate(**opts))
        except ServiceError as exc:
            raise ServiceError(f"service {target!r}: {exc}", exc.option) from None
        except (TypeError, ValueError) as exc:
            raise ServiceError(f"service {target!r}: {exc}") from None
    return functools.partial(fn, **opts)
