# Compiled build only (setup.py): the read half as a cdef class over WritingMixin (a cdef class
# has one C base: state.py's module docstring), so the read callback tests C flags.
cimport cython
from .writing cimport WritingMixin

cdef class ReadingMixin(WritingMixin):
    @cython.locals(n=Py_ssize_t)
    cpdef _on_readable(self, fd, what, arg)
