"""How a base reports errors raised by callbacks (asyncio's exception-handler API, a mixin).

Every layer reports a callback that raised through one helper, `call_exception_handler(context)`:
the event callbacks and deferred calls of the loop, finalize() callbacks, and the io layer's
protocol callbacks. `context` is a dict as in asyncio: "message" (what failed, in words),
"exception" (the exception, when there is one), and what the error is about: "event" and
"callback" for an Event, "callback" for a call_soon() function, "transport" and "protocol" for
a connection. The default report is one structlog event at error level (`protocol_callback_failed`
when the context names a protocol, else `callback_failed`) with the traceback; an embedder sees
the errors instead with `set_exception_handler(fn)`.
"""

from __future__ import annotations

from typing import Any, Callable

import structlog

_log = structlog.get_logger("reactorsvc.base")

ExceptionHandler = Callable[[Any, dict], Any]


class Reporting:
    """set/get/call_exception_handler and the default report; mixed into EventBase."""

    __slots__ = ()

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        """Report callback errors with handler(base, context) instead of the default structlog
        event; None restores the default. Any thread; reports that already started use the
        handler they read."""
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, not {type(handler).__name__}")
        with self._lock:
            self._exception_handler = handler

    def get_exception_handler(self) -> ExceptionHandler | None:
        """The handler set by set_exception_handler(), or None for the default. Any thread."""
        with self._lock:
            return self._exception_handler

    def default_exception_handler(self, context: dict) -> None:
        """The default report: one structlog error event with the context and the traceback.

        Context values other than "message" and "exception" are logged as their repr(); the
        Event under "event" is logged as `ev` (structlog's own key is `event`).
        """
        fields = {("ev" if key == "event" else key):
                  (value if type(value) in (int, str) else repr(value))
                  for key, value in context.items() if key not in ("message", "exception")}
        name = "protocol_callback_failed" if "protocol" in context else "callback_failed"
        _log.error(name, message=context.get("message", "callback failed"),
                   exc_info=context.get("exception") or False, **fields)

    def call_exception_handler(self, context: dict) -> None:
        """Report one error: the handler set by set_exception_handler(), else the default.

        Called in the thread where the callback raised (the loop thread; free()'s caller for
        finalize() callbacks), without the base lock held. A handler that raises is reported by
        the default handler along with the original context; SystemExit and KeyboardInterrupt
        from it propagate.
        """
        handler = self.get_exception_handler()
        if handler is None:
            self.default_exception_handler(context)
            return
        try:
            handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 -- a broken handler must not hide the report
            self.default_exception_handler(
                {**context, "message": "the exception handler failed", "exception": exc,
                 "context": context.get("message")})

    def _report_callback_error(self, ev: Any, what: int, exc: BaseException) -> None:
        """An Event's callback raised `exc` (loop thread, lock not held)."""
        self.call_exception_handler({"message": "event callback failed", "exception": exc,
                                     "event": ev, "callback": ev._callback, "fd": ev._fd,
                                     "what": what})

    def _report_call_error(self, fn: Any, exc: BaseException, message: str) -> None:
        """A call_soon() or finalize() function raised `exc` (lock not held)."""
        self.call_exception_handler({"message": message, "exception": exc, "callback": fn})
