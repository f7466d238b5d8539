"""BaseLock: the base's reentrant lock in the compiled build (threading.RLock in the pure one).

The loop releases and re-takes its base's lock around every callback and every wait, and
Event.add()/activate() take it: in the compiled build, threading.RLock's acquire() and
release() are Python method calls there (a lookup, then an argument parse for acquire), the
largest share of the locked base's cost over NOLOCK (benchmarks/icount.py chain vs
chain-nolock). BaseLock is that same reentrant lock as a cdef class the compiled modules call
at C level: a mutex (cython.pymutex: a PyMutex on 3.13+, a PyThread_type_lock before; a
blocked acquire() waits with the GIL released), the owner's thread id and a recursion count.

It keeps what the base relies on from RLock: a blocking, reentrant acquire(); release() by
the owner only (RuntimeError otherwise; the last level unlocks); `with`; and the protocol of
threading.Condition (`_is_owned`, `_release_save`, `_acquire_restore`), so Condition.wait()
releases every level and restores them. Not a general RLock: no non-blocking or timed
acquire (the base never needs one; acquire() takes no arguments, so a caller that asks for
one fails loudly).

new_lock() makes the lock of a new base (and of a base's child after fork): BaseLock in the
compiled build; threading.RLock in the pure one, where this class would be Python code slower
than RLock's C. The class is the reference the compiled one is built from, and tests compare
it with RLock in both builds (tests/base/test_lock.py).

Threads: `_owner` is read without the mutex by every thread that acquires (is it me?). Only
the owner writes it, with the mutex held: its own id after locking, 0 before unlocking. A
reader compares it only with its own id, which no other thread ever stores, so a stale value
equals the reader's id only if the reader itself stored it and has not cleared it since. The
compiled build loads and stores it as a relaxed atomic C integer (no torn value without a
GIL). `_count` is read and written by the owner only (__repr__ shows it to the owner only).
"""

from __future__ import annotations

import threading

try:
    import cython
except ImportError:  # a pure install without Cython: see reactorsvc/_nocython.py
    from .. import _nocython as cython

if not cython.compiled:
    # The compiled build has C versions of these (lock.pxd): the thread id as a C integer,
    # and relaxed atomic accesses of _owner.
    from _thread import allocate_lock as _allocate_lock
    from _thread import get_ident as _thread_ident

    def _load_owner(lock: BaseLock) -> int:
        return lock._owner

    def _store_owner(lock: BaseLock, owner: int) -> None:
        lock._owner = owner


class BaseLock:
    """A reentrant lock: RLock's semantics as the base uses them (see the module docstring).
    Any thread; acquire() blocks (with the GIL released) while another thread holds it."""

    __slots__ = ("_mutex", "_owner", "_count")

    def __init__(self) -> None:
        self._owner = 0
        self._count = 0
        if not cython.compiled:  # compiled: a C mutex field, set up with the object
            self._mutex = _allocate_lock()

    def acquire(self) -> bool:
        """Take the lock, blocking while another thread holds it; reentrant. True."""
        me = _thread_ident()
        if _load_owner(self) == me:
            self._count += 1
            return True
        self._mutex.acquire()
        _store_owner(self, me)
        self._count = 1
        return True

    def release(self) -> None:
        """Give back one level; the last one unlocks. RuntimeError unless the caller holds it."""
        if _load_owner(self) != _thread_ident() or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            _store_owner(self, 0)
            self._mutex.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- threading.Condition's protocol (an RLock's) ----------------------------------------

    def _is_owned(self) -> bool:
        return _load_owner(self) == _thread_ident() and self._count > 0

    def _release_save(self) -> tuple:
        """Release every level (Condition.wait); the state _acquire_restore() puts back."""
        if not self._is_owned():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, _load_owner(self))
        self._count = 0
        _store_owner(self, 0)
        self._mutex.release()
        return state

    def _acquire_restore(self, state: tuple) -> None:
        self._mutex.acquire()
        _store_owner(self, state[1])
        self._count = state[0]

    def __repr__(self) -> str:
        # _count only when the caller owns the lock: no other thread may read it (docstring).
        owner = _load_owner(self)
        count = f" count={self._count}" if owner == _thread_ident() else ""
        return (f"<{'locked' if owner else 'unlocked'} {type(self).__module__}.BaseLock "
                f"owner={owner}{count}>")


def new_lock() -> BaseLock | threading.RLock:
    """The lock of a new base: BaseLock compiled, threading.RLock pure (module docstring)."""
    if cython.compiled:
        return BaseLock()
    return threading.RLock()
