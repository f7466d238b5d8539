# Compiled build only (setup.py): the read half as a cdef class over WritingMixin (a cdef class
# has one C base: state.py's module docstring), so the read callback tests C flags.
cimport cython
from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport errno
from ._sysio cimport recv, would_block
from .writing cimport WritingMixin

ctypedef char *_cchars

cdef class ReadingMixin(WritingMixin):
    @cython.locals(n=Py_ssize_t, sfd=int, err=int, view=Py_buffer, area=_cchars, size=Py_ssize_t)
    cpdef _on_readable(self, fd, what, arg)
