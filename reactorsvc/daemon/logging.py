"""structlog set-up for the daemon: JSON lines when stderr is not a TTY, console otherwise.

Only the daemon calls configure_logging(); the library never configures logging on import.
Calling it again (SIGHUP reload) changes the level and format live.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog events to `stream` (stderr) as JSON lines or console text.

    fmt: "json", "console" or "auto" (console when the stream is a TTY). Not thread-safe with
    concurrent logging calls of other threads only in that a line may use the old settings.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in ("json", "console", "auto"):
        raise ValueError(f"fmt must be json, console or auto, got {fmt!r}")
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if fmt == "json" else _keep_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=lambda *args: _LineLogger(stream),
        cache_logger_on_first_use=False,
    )


def _keep_exc_info(logger: object, name: str, event: dict) -> dict:
    return event  # the console renderer formats exc_info itself


class _LineLogger:
    """Writes each rendered event as one line in one write(2) where the stream has an fd.

    The master of `processes: N` and its children share one stderr: print() writes the text
    and its newline separately, so two processes' lines could interleave mid-line. A single
    write of a line up to PIPE_BUF bytes is atomic on a pipe. Callable from any thread.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.StringIO and the like
            self._fd = None

    def msg(self, message: str) -> None:
        line = message + "\n"
        if self._fd is None:
            self._stream.write(line)
            self._stream.flush()
            return
        self._stream.flush()  # anything the stream still buffers goes first
        data = line.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(self._fd, data):]

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg
