# Compiled build only (setup.py): the loop's phases as C-level methods of a cdef class, with
# typed locals (flags and counts are C ints; events, slots and the heap typed objects).
cimport cython
from .core cimport BaseCore
from .event cimport Event
from .evmap cimport FdSlot
from .lock cimport BaseLock
from .timers cimport TimerHeap

# The flags (flags.py) as C constants, so tests of C-int bits stay C operations.
cdef int EV_PERSIST, EV_TIMEOUT, EVLOOP_NO_EXIT_ON_EMPTY, EVLOOP_NONBLOCK, EVLOOP_ONCE, _NO_PRIO

cdef class Dispatcher(BaseCore):
    @cython.locals(once=bint, nonblock=bint, exit_on_empty=bint, timers=TimerHeap, heap=list,
                   slots=dict, lock=BaseLock, locked=bint, cache_time=bint, activeq=list, simple=bint,
                   now=double, activated=Py_ssize_t, slot=FdSlot, ev=Event,
                   bits=int, what=int, ran=Py_ssize_t, busy=bint, top=double)
    cpdef int _run_locked(self, int flags) except -1
    @cython.locals(ev=Event)
    cdef _expire_timers_locked(self, double now)
    @cython.locals(lock=BaseLock, locked=bint, count=Py_ssize_t, popped=Py_ssize_t, ev=Event)
    cdef Py_ssize_t _run_single_queue_locked(self, queue) except -1
    @cython.locals(ran=Py_ssize_t, count=Py_ssize_t, prio=int)
    cdef Py_ssize_t _process_active_locked(self) except -1
    @cython.locals(lock=BaseLock, locked=bint, count=Py_ssize_t, popped=Py_ssize_t, ev=Event)
    cdef Py_ssize_t _run_queue_locked(self, queue, bint bounded) except -2
    cdef _run_again_locked(self, Event ev, res, left)
    @cython.locals(now=double, run_at=double)
    cdef _reschedule_persist_locked(self, Event ev, res)
    @cython.locals(lock=BaseLock, locked=bint, count=Py_ssize_t)
    cdef Py_ssize_t _process_deferred_locked(self) except -2
