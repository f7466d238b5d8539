"""The event pass yamlpos.parse makes before composing a document.

PyYAML's parser keeps an explicit stack, its composer recurses: walking the events first
refuses nesting deeper than a bound before the composer can hit the recursion limit. The walk
also tracks the key path it has reached, so that a YAML syntax error (raised by the parser
during this walk) can be reported at ``listeners[0].options`` rather than at the document.

A Scan belongs to one parse (yamlpos.parse makes a fresh one): safe from any thread.
"""

from __future__ import annotations

import yaml

__all__ = ["Scan", "TooDeep"]


class TooDeep(ValueError):
    """Collections nested past the bound; ``line`` (1-based) is where the deepest one starts."""

    def __init__(self, line: int, max_depth: int) -> None:
        super().__init__(f"collections nested more than {max_depth} deep")
        self.line = line


class Scan:
    """One pass over the event stream; ``run(text)`` raises TooDeep past ``max_depth`` (and
    PyYAML's own errors), after which ``path()`` says where it stopped."""

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        self._frames: list[list] = []  # [is_map, key or index, expecting a key, is a key]

    def path(self, limit: int | None = None) -> str:
        """The innermost collection reached, with its key when inside a value: "<root>" at top.
        ``limit``: at most that many levels, then "..." (for the nesting error)."""
        parts = ""
        for i, (is_map, at, expect_key, _) in enumerate(self._frames):
            if limit is not None and i == limit:
                return parts + "..."
            inner = i == len(self._frames) - 1
            if not is_map:
                if not inner:  # the innermost sequence has no item open (scalars end at once)
                    parts += f"[{at}]"
            elif at is not None and not (inner and expect_key):
                parts += f".{at}" if parts else str(at)
        return parts or "<root>"

    def run(self, text: str) -> None:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                as_key = self._begin_value(None)
                if len(self._frames) >= self._max_depth:
                    raise TooDeep(event.start_mark.line + 1, self._max_depth)
                is_map = isinstance(event, yaml.MappingStartEvent)
                self._frames.append([is_map, None if is_map else 0, True, as_key])
            elif isinstance(event, yaml.CollectionEndEvent):
                if not self._frames.pop()[3]:  # a complex key is followed by its value
                    self._end_value()
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if not self._begin_value(getattr(event, "value", "*")):
                    self._end_value()

    def _begin_value(self, scalar: str | None) -> bool:
        """A node starts (``scalar``: its text, None for a collection); True if it is a mapping
        key, which becomes the current key."""
        frame = self._frames[-1] if self._frames else None
        if frame is not None and frame[0] and frame[2]:
            frame[1], frame[2] = scalar if scalar is not None else "?", False
            return True
        return False

    def _end_value(self) -> None:
        if not self._frames:
            return
        frame = self._frames[-1]
        if frame[0]:
            frame[2] = True
        else:
            frame[1] += 1
