"""One EventBase per worker thread; a supervisor accepts and hands fds off; the Server facade."""
