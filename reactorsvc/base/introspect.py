"""What a base holds, for foreach_event(), dump_events() and free() (libevent's event_base_foreach_event)."""

from __future__ import annotations

from time import monotonic
from typing import TextIO

from .flags import EV_CLOSED, EV_ET, EV_PERSIST, EV_READ, EV_SIGNAL, EV_WRITE

_NAMES = ((EV_READ, "Read"), (EV_WRITE, "Write"), (EV_CLOSED, "EOF"), (EV_SIGNAL, "Signal"),
          (EV_PERSIST, "Persist"), (EV_ET, "ET"))


def all_events(base) -> list:
    """Every added or active event, internal ones included, each once (lock held)."""
    seen: dict[int, object] = {}
    for slot in base._io.slots.values():
        for ev in slot.events:
            seen[id(ev)] = ev
    for events in base._sigmap.slots.values():
        for ev in events:
            seen[id(ev)] = ev
    for ev in base._timers.targets():
        seen[id(ev)] = ev
    for queue in base._activeq:
        for ev in queue:
            seen[id(ev)] = ev
    return list(seen.values())


def user_events(base) -> list:
    return [ev for ev in all_events(base) if not ev._internal]


def _describe(ev) -> str:
    kinds = " ".join(name for bit, name in _NAMES if ev._events & bit) or "Timer"
    what = f"signal {ev._fd}" if ev._events & EV_SIGNAL else f"fd {ev._fd}"
    return f"{what} [{kinds}] priority {ev._priority}"


def dump(base, file: TextIO) -> None:
    """libevent's event_base_dump_events, in words (lock held)."""
    now = monotonic()
    events = user_events(base)
    file.write(f"Inserted events ({base.method}, {base._nevents} added):\n")
    for ev in events:
        if ev._inserted or ev._timer is not None:
            line = f"  {_describe(ev)}"
            if ev._timer is not None:
                line += f" Timeout={ev._deadline:.6f} (in {ev._deadline - now:.6f} s)"
            file.write(line + f" callback={getattr(ev._callback, '__qualname__', ev._callback)!s}\n")
    file.write("Active events:\n")
    for ev in events:
        if ev._active:
            file.write(f"  {_describe(ev)} res={ev._res:#x} ncalls={ev._ncalls}\n")
