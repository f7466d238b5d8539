"""Buffered I/O on top of the reactor: Buffer, Connection (Transport), Listener, connect."""
