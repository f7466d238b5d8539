# Compiled build only (setup.py): Event as a cdef class with typed slots. The flags are C
# ints (a read from another thread without the lock cannot see a freed object: core.py's
# module docstring); the values a caller chooses (fd, res, ncalls) stay Python objects, so a
# huge int behaves as in the pure build.
from .core cimport BaseCore

cdef class Event:
    cdef public BaseCore _base
    cdef public object _fd
    cdef public int _events
    cdef public object _callback
    cdef public object _arg
    cdef public int _priority
    cdef public bint _inserted
    cdef public object _timer
    cdef public double _deadline
    cdef public object _interval
    cdef public bint _active
    cdef public object _res
    cdef public object _ncalls
    cdef public bint _counted
    cdef public bint _internal
    cdef public bint _freed
    cdef public bint _finalizing
    cdef object __weakref__

