# Compiled build only (setup.py): Notifier as a cdef class. `pending` and the fds are C
# values: producers read and write them without a lock (notify.py's module docstring).
cdef class Notifier:
    cdef public int read_fd
    cdef public int write_fd
    cdef public object kind
    cdef public bint pending
    cdef public object _local
    cdef public list _cells
    cpdef notify(self)
