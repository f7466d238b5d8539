# Compiled build only (setup.py): the C socket calls that reading.py and writing.py make on the
# per-message path, and the one rule for which failures mean "not now" (what the socket module
# turns into BlockingIOError or InterruptedError). A .pxd with no module: nothing to import.
from libc.errno cimport EAGAIN, EINTR

cdef extern from "errno.h":
    const int EWOULDBLOCK  # == EAGAIN on Linux, not on every system

cdef extern from "sys/socket.h" nogil:
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    ssize_t send(int fd, const void *buf, size_t n, int flags)

cdef inline bint would_block(int err) noexcept nogil:
    """True for the errors after which the call is simply retried on the next event."""
    return err == EAGAIN or err == EWOULDBLOCK or err == EINTR
