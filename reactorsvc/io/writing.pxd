# Compiled build only (setup.py): the write half as a cdef class over ConnectionState, so the
# direct path (write -> _send_now -> send) tests C flags and makes a C call.
cimport cython
from .state cimport ConnectionState

cdef class WritingMixin(ConnectionState):
    @cython.locals(n=Py_ssize_t)
    cpdef _send_now(self, data)
