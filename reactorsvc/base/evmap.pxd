# Compiled build only (setup.py): the fd map's classes as cdef classes with typed slots.
cimport cython
from .event cimport Event

# The flags (flags.py) as C constants, so tests of C-int bits stay C operations.
cdef int EV_CLOSED, EV_ET, EV_READ, EV_WRITE

cdef class FdSlot:
    cdef public list events
    cdef public Py_ssize_t nread
    cdef public Py_ssize_t nwrite
    cdef public Py_ssize_t nclose
    cdef public bint et
    cpdef int mask(self) except -1

cdef class IoMap:
    cdef public object backend
    cdef public dict slots
    @cython.locals(slot=FdSlot, bits=int, old=int, new=int)
    cpdef bint add(self, Event ev) except -1
    @cython.locals(slot=FdSlot, bits=int, old=int, gone=int)
    cpdef bint remove(self, Event ev) except -1
