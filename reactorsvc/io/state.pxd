# Compiled build only (setup.py): a Connection's slots as a cdef class. The flags are C bools,
# the byte counters and timestamps C numbers; what callers choose (watermarks, timeouts) and
# the objects stay Python objects. Every slot is public: tls.py, client.py and the tests read
# and write them as in the pure build. Unlike a pure slot, an object slot reads None before
# its first assignment (Connection.__init__ sets all but the socket's, which _attach and _begin
# set before any path reads them).
cdef class ConnectionState:
    cdef public object _base
    cdef public object _sock
    cdef public object _protocol
    cdef public object _calls
    cdef public object _data_received
    cdef public object _recv_into
    cdef public object _send
    cdef public object _scratch
    cdef public object _wbuf
    cdef public object _read_ev
    cdef public object _write_ev
    cdef public bint _direct
    cdef public bint _owned
    cdef public bint _started
    cdef public bint _paused
    cdef public bint _read_eof
    cdef public bint _eof
    cdef public bint _closing
    cdef public bint _lost
    cdef public bint _sock_closed
    cdef public bint _protocol_paused
    cdef public object _high
    cdef public object _low
    cdef public object _worker
    cdef public object _extra
    cdef public object _on_close
    cdef public object _connector
    cdef public object _tls
    cdef public unsigned long long bytes_in
    cdef public unsigned long long bytes_out
    cdef public object _idle_timeout
    cdef public object _read_timeout
    cdef public object _write_timeout
    cdef public bint _timed
    cdef public object _timer
    cdef public double _last_read
    cdef public double _last_write
    cdef public double _write_progress
    cdef public object _handles
    cdef object __weakref__
