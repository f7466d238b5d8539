# Compiled build only (setup.py): BaseLock as a final cdef class the other compiled modules
# call at C level. The mutex is cython.pymutex (PyMutex on 3.13+, PyThread_type_lock before);
# _owner is accessed with relaxed atomics, since threads read it without the mutex (lock.py).
cimport cython

cdef extern from *:
    """
    #define __reactorsvc_load_owner(lock) __atomic_load_n(&(lock)->_owner, __ATOMIC_RELAXED)
    #define __reactorsvc_store_owner(lock, v) __atomic_store_n(&(lock)->_owner, (v), __ATOMIC_RELAXED)
    """
    unsigned long _load_owner "__reactorsvc_load_owner" (BaseLock lock) nogil
    void _store_owner "__reactorsvc_store_owner" (BaseLock lock, unsigned long owner) nogil

cdef extern from "pythread.h":
    unsigned long _thread_ident "PyThread_get_thread_ident" () nogil


@cython.final
cdef class BaseLock:
    cdef cython.pymutex _mutex
    cdef unsigned long _owner
    cdef Py_ssize_t _count
    @cython.locals(me="unsigned long")
    cpdef bint acquire(self) noexcept
    cpdef release(self)
    cpdef bint _is_owned(self)
