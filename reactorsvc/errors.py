"""The exceptions users catch."""

from __future__ import annotations

__all__ = ["ReactorError"]


class ReactorError(RuntimeError):
    """Misuse of the reactor: reentrant loop, use after free, wrong thread, ..."""
