# Compiled build only (setup.py): BaseCore as a cdef class with typed slots, and its lock-held
# bookkeeping as C-level methods for Event and the loop. Slots read without the lock from
# other threads are C values or objects written once (core.py's module docstring).
cimport cython
from .event cimport Event
from .evmap cimport IoMap
from .lock cimport BaseLock
from .notify cimport Notifier
from .timers cimport TimerHeap

# The flags (flags.py) as C constants, so tests of an event's C-int bits stay C operations.
cdef int EV_CLOSED, EV_FINALIZE, EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE, _IO

cdef class BaseCore:
    cdef public object method
    cdef public object features
    cdef public unsigned long long n_callbacks
    cdef public unsigned long long n_iterations
    cdef public unsigned long long n_wakeups
    cdef public object _backend
    cdef public object _flags
    cdef public bint _locked
    cdef public bint _cache_time
    cdef public BaseLock _lock
    cdef public object _cond
    cdef public IoMap _io
    cdef public object _sigmap
    cdef public object _sigsrc
    cdef public object _sig_ev
    cdef public TimerHeap _timers
    cdef public int _npriorities
    cdef public list _activeq
    cdef public Py_ssize_t _nactive
    cdef public object _deferred
    cdef public Py_ssize_t _nevents
    cdef public unsigned long _running
    cdef public object _current
    cdef public Py_ssize_t _waiters
    cdef public bint _break
    cdef public bint _exit
    cdef public bint _continue
    cdef public int _running_prio
    cdef public bint _got_break
    cdef public bint _got_exit
    cdef public double _now_cache
    cdef public object _max_callbacks
    cdef public object _max_interval
    cdef public object _limit_prio
    cdef public bint _freed
    cdef public bint _needs_reinit
    cdef public Notifier _notifier
    cdef public object _notify_ev
    cdef public object _exception_handler
    cdef public bint _sleeping
    cdef object __weakref__

    cpdef _check_usable(self)
    cpdef _recount_locked(self, Event ev)
    @cython.locals(notify=bint, now=double, counted=bint)
    cpdef bint _add_locked(self, Event ev, timeout) except -1
    @cython.locals(timers=TimerHeap)
    cpdef bint _schedule_locked(self, Event ev, double deadline, timeout) except -1
    cpdef bint _remove_timer_locked(self, Event ev) except -1
    cpdef _deactivate_locked(self, Event ev)
    @cython.locals(earliest=bint, was_counted=bint)
    cpdef bint _del_locked(self, Event ev, bint keep_active=*) except -1
    cpdef bint _activate_locked(self, Event ev, res, ncalls=*) except -1
    @cython.locals(running=object)
    cpdef _wake(self)
    cpdef double _clock(self) except? -1.0
