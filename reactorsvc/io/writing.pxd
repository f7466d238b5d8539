# Compiled build only (setup.py): the write half as a cdef class over ConnectionState, so the
# direct path (write -> _send_now -> send) tests C flags and makes a C call.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING
from libc.errno cimport EAGAIN, EINTR, errno
from .state cimport ConnectionState

cdef extern from "errno.h":
    const int EWOULDBLOCK  # == EAGAIN on Linux, not on every system

cdef extern from "sys/socket.h" nogil:
    const int MSG_NOSIGNAL
    ssize_t send(int fd, const void *buf, size_t n, int flags)

ctypedef const char *_cbytes

cdef class WritingMixin(ConnectionState):
    @cython.locals(n=Py_ssize_t, sfd=int, buf=_cbytes, size=Py_ssize_t, err=int)
    cpdef _send_now(self, data)
