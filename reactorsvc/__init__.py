"""reactorsvc: libevent's event core in Python, with a one-loop-per-thread server framework.

Only the public names of the design document are exported here.
"""

from . import _hotpath

# Before any hot module is imported: which build of the hot path runs (see _hotpath.py).
COMPILED: bool = _hotpath.select()

from .base import Event, EventBase, EventConfig, supported_methods
from .base.flags import *  # noqa: F401,F403  (EV_*, EVLOOP_*, EVENT_BASE_FLAG_*, EV_FEATURE_*)
from .base.flags import __all__ as _flag_names
from .errors import ReactorError
from .io import (DatagramTransport, Listener, Protocol, Transport, connect, open_datagram_endpoint,
                 start_server)
from .workers.server import Server

__version__ = "0.1.0"

__all__ = ["COMPILED", "DatagramTransport", "Event", "EventBase", "EventConfig", "Listener", "Protocol",
           "ReactorError", "Server", "Transport", "connect", "open_datagram_endpoint", "start_server",
           "supported_methods", *_flag_names]
