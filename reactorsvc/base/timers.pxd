# Compiled build only (setup.py): the timer heap and the common-timeout FIFOs as cdef classes,
# and the compiled layout of the heap (timers.py's module docstring): `_heap` holds the entries,
# `_keys[i]` the (deadline, seq) of `_heap[i]` as C numbers; every move touches both.
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Realloc

cdef struct _Key:
    double deadline
    unsigned long long seq

cdef class CommonQueue:
    cdef public object duration
    cdef public object entries
    cdef public Py_ssize_t dead
    cdef public object heap_entry

@cython.final
cdef class TimerHeap:
    cdef public list _heap
    cdef public Py_ssize_t _dead
    cdef public object _seq
    cdef public dict _common
    cdef unsigned long long _cseq   # the compiled build's seq counter (the pure one: _seq)
    cdef _Key *_keys                # NULL until the first push (tp_alloc zeroes the fields)
    cdef Py_ssize_t _cap            # slots allocated in _keys
    @cython.locals(entry=list)
    cpdef list schedule(self, double deadline, target, CommonQueue queue=*)
    cdef _point_heap_at(self, CommonQueue queue, double deadline)
    @cython.locals(queue=CommonQueue)
    cpdef cancel(self, list entry)
    @cython.locals(heap=list)
    cdef _cancel_heap_entry(self, list entry)
    @cython.locals(heap=list)
    cpdef next_deadline(self)
    @cython.locals(heap=list, out=list, entry=list, top=double)
    cpdef list pop_expired(self, double now)
    @cython.locals(head=double)
    cdef _expire_common(self, CommonQueue queue, double now, list out)


cdef inline bint _key_lt(_Key *a, _Key *b) noexcept:
    return a.deadline < b.deadline or (a.deadline == b.deadline and a.seq < b.seq)


cdef inline void _keys_free(TimerHeap h) noexcept:
    PyMem_Free(h._keys)
    h._keys = NULL
    h._cap = 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline int _keys_push(TimerHeap h, double deadline, unsigned long long seq, list entry) except -1:
    cdef list heap = h._heap
    cdef Py_ssize_t pos = len(heap), parent
    cdef _Key key
    cdef _Key *grown
    if pos == h._cap:
        grown = <_Key *>PyMem_Realloc(h._keys, (h._cap * 2 if h._cap else 64) * sizeof(_Key))
        if grown == NULL:
            raise MemoryError()
        h._keys = grown
        h._cap = h._cap * 2 if h._cap else 64
    key.deadline = deadline
    key.seq = seq
    heap.append(entry)
    while pos > 0:
        parent = (pos - 1) >> 1
        if not _key_lt(&key, &h._keys[parent]):
            break
        h._keys[pos] = h._keys[parent]
        heap[pos] = heap[parent]
        pos = parent
    h._keys[pos] = key
    heap[pos] = entry
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _keys_sift_down(TimerHeap h, Py_ssize_t pos) noexcept:
    # The item at `pos` moves down to its place among len(_heap) items.
    cdef list heap = h._heap
    cdef Py_ssize_t n = len(heap), child = 2 * pos + 1
    cdef _Key *keys = h._keys
    cdef _Key key = keys[pos]
    cdef object entry = heap[pos]
    while child < n:
        if child + 1 < n and _key_lt(&keys[child + 1], &keys[child]):
            child += 1
        if not _key_lt(&keys[child], &key):
            break
        keys[pos] = keys[child]
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    keys[pos] = key
    heap[pos] = entry


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline list _keys_pop(TimerHeap h):
    cdef list heap = h._heap
    cdef Py_ssize_t last = len(heap) - 1
    cdef list top = heap[0]
    cdef object moved = heap.pop()
    if last > 0:
        h._keys[0] = h._keys[last]
        heap[0] = moved
        _keys_sift_down(h, 0)
    return top


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _keys_compact(TimerHeap h) noexcept:
    # Drop the cancelled entries (target None), keeping each survivor's key, then heapify.
    cdef list heap = h._heap
    cdef Py_ssize_t n = len(heap), i, kept = 0
    cdef list entry
    for i in range(n):
        entry = heap[i]
        if entry[2] is not None:
            h._keys[kept] = h._keys[i]
            heap[kept] = entry
            kept += 1
    del heap[kept:]
    i = kept // 2 - 1
    while i >= 0:
        _keys_sift_down(h, i)
        i -= 1
