"""The reactor: libevent's event core. Imports nothing above it."""

from .backends import supported_methods
from .config import EventConfig
from .event import Event
from .eventbase import EventBase

__all__ = ["Event", "EventBase", "EventConfig", "supported_methods"]
