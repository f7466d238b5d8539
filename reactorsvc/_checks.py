"""Argument checks for the whole package: integers in a range, booleans, durations.

Every layer (the reactor, io, workers, the daemon's YAML reader) checks its arguments with
these functions, so one rule has one wording. Each raises ``BadArgumentType`` (a TypeError) or
``BadArgumentValue`` (a ValueError) whose message starts with the argument's name and whose
``argument`` attribute is that name, so a caller that maps names to something else (the daemon
maps them to config keys and lines) needs no parsing of messages.

Limits that come from the platform live here too:
- ``MAX_SECONDS``: the longest duration (timeout, grace period) the package accepts, one year.
  CPython's waits (``threading.Condition.wait``) overflow past ``threading.TIMEOUT_MAX``
  (~292 years on Linux); a year is far below that and above any sensible timeout, so a typo
  such as an extra zero or two is refused rather than silently meaning "forever".
  The reactor's own timers (``Event.add``) take any finite delay: its backends clamp each wait.

Pure functions, no state: safe from any thread.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["BadArgumentType", "BadArgumentValue", "MAX_SECONDS", "check_int", "check_bool",
           "check_seconds", "check_timeout", "check_optional_int"]

MAX_SECONDS = 365 * 24 * 3600.0


class BadArgumentType(TypeError):
    """An argument of the wrong type; ``argument`` names it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class BadArgumentValue(ValueError):
    """An argument of the right type but out of its range; ``argument`` names it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def _type_name(value: object) -> str:
    return type(value).__name__


def check_int(value: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` if it is an int (bool excluded) within lo..hi (None: unbounded on that side)."""
    if type(value) is bool or not isinstance(value, int):
        raise BadArgumentType(name, f"{name} must be an int, not {_type_name(value)}")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise BadArgumentValue(name, f"{name} {value} out of range {lo}..{hi}")
    if lo is not None and value < lo:
        raise BadArgumentValue(name, f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise BadArgumentValue(name, f"{name} must be at most {hi}, got {value}")
    return value


def check_optional_int(value: object, name: str, lo: int | None = None,
                       hi: int | None = None) -> int | None:
    """None, or check_int(value, name, lo, hi)."""
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int):
        raise BadArgumentType(name, f"{name} must be an int or None, not {_type_name(value)}")
    return check_int(value, name, lo, hi)


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is exactly True or False."""
    if type(value) is not bool:
        raise BadArgumentType(name, f"{name} must be a bool, not {_type_name(value)}")
    return value


def check_seconds(value: object, name: str, *, positive: bool = False,
                  maximum: float | None = None) -> float:
    """A finite number of seconds >= 0 (> 0 if ``positive``; at most ``maximum`` if given),
    as a float."""
    if type(value) is bool or not isinstance(value, (int, float)):
        raise BadArgumentType(name, f"{name} must be a number of seconds, not {_type_name(value)}")
    rule = "> 0" if positive else ">= 0"
    seconds = _finite(value, name, rule)
    if seconds < 0 or (positive and seconds == 0):
        raise BadArgumentValue(name, f"{name} must be a finite number of seconds {rule}, "
                                     f"got {value!r}")
    _at_most(seconds, value, name, maximum)
    return seconds


def check_timeout(value: object, name: str, *, maximum: float | None = MAX_SECONDS) -> float | None:
    """None, or a finite number of seconds > 0 and at most ``maximum`` (MAX_SECONDS)."""
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, (int, float)):
        raise BadArgumentType(name, f"{name} must be a number of seconds or None, "
                                    f"not {_type_name(value)}")
    seconds = _finite(value, name, "> 0")
    if seconds <= 0:
        raise BadArgumentValue(name, f"{name} must be a finite number of seconds > 0, "
                                     f"got {value!r}")
    _at_most(seconds, value, name, maximum)
    return seconds


def _finite(value: Any, name: str, rule: str) -> float:
    try:
        seconds = float(value)  # an int too large for a float overflows
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise BadArgumentValue(name, f"{name} must be a finite number of seconds {rule}, "
                                     f"got {value!r}")
    return seconds


def _at_most(seconds: float, value: Any, name: str, maximum: float | None) -> None:
    if maximum is not None and seconds > maximum:
        raise BadArgumentValue(name, f"{name} must be at most {maximum:g} seconds "
                                     f"({maximum / 86400:g} days), got {value!r}")
