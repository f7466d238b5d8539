# Compiled build only (setup.py): EventBase as a cdef class (its slots are BaseCore's; the
# Lifecycle and Reporting mixins stay Python classes).
from .dispatch cimport Dispatcher

cdef class EventBase(Dispatcher):
    pass
