"""Accept shares: processes accepting on one shared listening socket keep about even counts.

Every process polling a shared socket (the children of `processes: N`) is woken by each new
connection, and the first to run takes whatever is queued: on a busy machine a burst of
long-lived connections lands mostly on one process (measured: 12–13 of 16). So each process
publishes how many connections it holds in a table of shared memory (an anonymous MAP_SHARED
mmap made by the master before it forks, so every child maps the same pages), and a Listener
given an AcceptShare does not accept while it holds more than ``SLACK`` connections above the
least loaded sibling (nginx's accept_disabled, with the siblings' real counts). A sibling that
is not accepting (draining, exited) publishes ABSENT and is left out.

Thread and process contract: a cell has one writer at a time — the supervisor loop thread of
the process that owns it (every Listener of a process runs on that one base), and the master
only after that process has exited (``AcceptTable.clear``). Readers may read a cell mid-write:
a torn value can only make one accept decision wrong, and the deferral it causes is bounded
(io/listener.py), so a queued connection is never stranded.
"""

from __future__ import annotations

import mmap

__all__ = ["ABSENT", "SLACK", "AcceptShare", "AcceptTable"]

ABSENT = -1
SLACK = 1   # connections a process may hold above the least loaded sibling before it defers


class AcceptTable:
    """``cells`` connection counts in memory shared with every process forked afterwards."""

    def __init__(self, cells: int) -> None:
        if type(cells) is not int or cells < 1:
            raise ValueError(f"cells must be an int >= 1, got {cells!r}")
        self._mem = mmap.mmap(-1, 4 * cells)   # anonymous and MAP_SHARED: survives fork() shared
        self._cells = memoryview(self._mem).cast("i")
        for i in range(cells):
            self._cells[i] = ABSENT

    def __len__(self) -> int:
        return len(self._cells)

    def share(self, cell: int) -> AcceptShare:
        """The handle of the process that will own ``cell`` (call it in that process)."""
        if not 0 <= cell < len(self._cells):
            raise ValueError(f"cell must be in 0..{len(self._cells) - 1}, got {cell}")
        return AcceptShare(self._cells, cell)

    def clear(self, cell: int) -> None:
        """The owner of ``cell`` has exited: leave it out (the master, after reaping it)."""
        self._cells[cell] = ABSENT

    def counts(self) -> list[int]:
        """Every cell (ABSENT for none), for figures and tests."""
        return self._cells.tolist()


class AcceptShare:
    """One process's cell in an AcceptTable: its open connections, and whether it is ahead.

    ``opened()``/``closed()``/``leave()`` are this process's supervisor loop thread's only
    (the cell's one writer); ``ahead()`` reads every cell.
    """

    def __init__(self, cells: memoryview, cell: int) -> None:
        self._cells = cells
        self._cell = cell
        self._open = 0
        self._left = False
        cells[cell] = 0

    def opened(self) -> None:
        self._open += 1
        self._publish()

    def closed(self) -> None:
        self._open -= 1
        self._publish()

    def leave(self) -> None:
        """This process stops accepting (its listeners close): siblings stop counting it."""
        self._left = True
        self._cells[self._cell] = ABSENT

    def _publish(self) -> None:
        if not self._left:
            self._cells[self._cell] = self._open

    def ahead(self) -> bool:
        """True while this process holds more than SLACK above the least loaded sibling."""
        if self._open <= SLACK:   # no sibling holds fewer than 0: skip reading the table
            return False
        counts = self._cells.tolist()
        counts[self._cell] = ABSENT
        live = [n for n in counts if n >= 0]
        return bool(live) and self._open > min(live) + SLACK
