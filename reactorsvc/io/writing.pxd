# Compiled build only (setup.py): the write half as a cdef class over ConnectionState, so the
# direct path (write -> _send_now -> send) tests C flags and makes a C call.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING
from libc.errno cimport errno
from ._sysio cimport send, would_block
from .state cimport ConnectionState

cdef int _SEND_FLAGS  # writing.py's, a C int here: read by the C send() on every direct write

ctypedef const char *_cbytes

cdef class WritingMixin(ConnectionState):
    @cython.locals(n=Py_ssize_t, sfd=int, buf=_cbytes, size=Py_ssize_t, err=int)
    cpdef _send_now(self, data)
