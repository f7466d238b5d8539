# Compiled build only (setup.py): the timer heap and the common-timeout FIFOs as cdef classes.
cimport cython

cdef class CommonQueue:
    cdef public object duration
    cdef public object entries
    cdef public Py_ssize_t dead
    cdef public object heap_entry

cdef class TimerHeap:
    cdef public list _heap
    cdef public Py_ssize_t _dead
    cdef public object _seq
    cdef public dict _common
    @cython.locals(entry=list)
    cpdef list schedule(self, double deadline, target, CommonQueue queue=*)
    cdef _point_heap_at(self, CommonQueue queue, double deadline)
    @cython.locals(queue=CommonQueue)
    cpdef cancel(self, list entry)
    @cython.locals(heap=list)
    cdef _cancel_heap_entry(self, list entry)
    @cython.locals(heap=list)
    cpdef next_deadline(self)
    @cython.locals(heap=list, out=list, entry=list)
    cpdef list pop_expired(self, double now)
    cdef _expire_common(self, CommonQueue queue, double now, list out)
