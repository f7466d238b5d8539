"""One EventBase per worker thread; a supervisor accepts and hands fds off; the Server facade.

`systemd` is imported here so that `reactorsvc.workers.systemd.listen_fds()` resolves after a
plain `import reactorsvc`, as the README writes it (it needs only os and socket).
"""

from . import systemd  # noqa: F401  (reachable as reactorsvc.workers.systemd)
