"""YAML with line numbers: the layer under config.py that turns text into positioned values.

Data flow: ``parse(text, filename)`` composes the text with PyYAML's SafeLoader node API
(``yaml.compose``), then builds ``Scalar`` / ``Seq`` / ``Map`` nodes itself, because PyYAML's
constructor throws away the marks that say where each value came from. Every node and every
mapping key keeps its 1-based line, so a validator can report ``FILE:LINE: key.path: message``.

While building it also rejects what ``yaml.safe_load`` silently accepts: a key given twice in one
mapping (safe_load keeps the last), keys that are not strings, and recursive aliases. Merge keys
(``<<: *anchor``) are honoured: explicit keys win, then merged mappings in order.

Bounds, so that no text can make a reader hang or raise anything but ConfigError (the daemon
parses a reloaded file in its supervisor thread): at most MAX_TEXT characters, collections
nested at most MAX_DEPTH deep (checked on the event stream, before PyYAML's recursive
composer runs), at most MAX_VALUES values once every alias is expanded (an alias bomb — "billion
laughs" — is refused at the anchor that crosses it), and integers of at most MAX_INT_CHARS
characters. A tag whose constructor fails (``!!int abc``) is a ConfigError at its line.

The typed readers at the bottom (``read_int``, ``read_str``, ...) are what the validator calls;
each raises ConfigError naming the node's line and the dotted key path.

Everything here is pure and keeps no state between calls: safe to call from any thread.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Union

import yaml

from .._checks import check_int, check_timeout
from .yamlscan import Scan, TooDeep

__all__ = [
    "ConfigError", "suggest", "Scalar", "Seq", "Map", "Entry", "Node", "parse", "to_plain",
    "describe",
    "read_map", "read_list", "read_str", "read_bool", "read_int", "read_seconds", "read_choice",
    "MAX_TEXT", "MAX_DEPTH", "MAX_VALUES", "MAX_INT_CHARS",
]

MAX_TEXT = 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000
MAX_INT_CHARS = 40
_INT_TAG = "tag:yaml.org,2002:int"

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigError(Exception):
    """A config file is wrong; ``str()`` is ``FILE:LINE: key.path: what is wrong``.

    ``line`` is 1-based; it is None only when the file cannot be read at all, and then
    ``str()`` is ``FILE: what is wrong``. ``path`` is the dotted key path (``listeners[1].bind``),
    or ``<root>`` for a problem with the document as a whole.
    """

    def __init__(self, filename: str, line: int | None, path: str, message: str) -> None:
        self.filename = filename
        self.line = line
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.filename}: {self.message}"
        return f"{self.filename}:{self.line}: {self.path}: {self.message}"


@dataclass(frozen=True)
class Scalar:
    """A scalar as SafeLoader constructs it (str, int, float, bool, None, ...)."""

    value: Any
    line: int
    text: str  # the source text, for hints such as "quote it"


@dataclass(frozen=True)
class Seq:
    items: list
    line: int


@dataclass(frozen=True)
class Entry:
    """One mapping entry: the key's line (for key errors) and the value node."""

    key_line: int
    node: "Node"


@dataclass(frozen=True)
class Map:
    entries: dict  # str -> Entry, in document order
    line: int


Node = Union[Scalar, Seq, Map]


def parse(text: str, filename: str) -> Node | None:
    """Parse one YAML document into positioned nodes; None for an empty document.

    Raises ConfigError for YAML syntax errors (at the line of the problem), duplicate keys,
    non-string keys, unsupported tags and recursive aliases.
    """
    if len(text) > MAX_TEXT:
        raise ConfigError(filename, 1, "<root>", f"the file has {len(text)} characters, "
                                                 f"more than the {MAX_TEXT} allowed")
    scan = Scan(MAX_DEPTH)
    try:
        scan.run(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except TooDeep as exc:
        raise ConfigError(filename, exc.line, scan.path(4), str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or "invalid YAML"
        detail = f"{exc.context}: {problem}" if exc.context else problem
        raise ConfigError(filename, line, scan.path(), f"YAML syntax error: {detail}") from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, position) + 1
        raise ConfigError(filename, line, scan.path(), f"YAML syntax error: {exc}") from None
    if root is None:
        return None
    return _Builder(filename).build(root)


class _Builder:
    """Converts composed yaml nodes to Scalar/Seq/Map; memoised so aliases are not re-expanded."""

    def __init__(self, filename: str) -> None:
        self._filename = filename
        self._constructor = yaml.constructor.SafeConstructor()
        self._done: dict[int, Node] = {}
        self._sizes: dict[int, int] = {}   # id(yaml node) -> values in it, aliases expanded
        self._active: set[int] = set()

    def _error(self, ynode: yaml.Node, path: str, message: str) -> ConfigError:
        return ConfigError(self._filename, ynode.start_mark.line + 1, path or "<root>", message)

    def build(self, ynode: yaml.Node, path: str = "") -> Node:
        """The node for ``ynode``; ``path`` (the dotted key path) only names it in errors."""
        key = id(ynode)
        if key in self._done:
            return self._done[key]
        if key in self._active:
            raise self._error(ynode, path, "recursive alias: a node that contains itself")
        self._active.add(key)
        try:
            node = self._build_new(ynode, path)
        finally:
            self._active.discard(key)
        self._done[key] = node
        self._sizes[key] = size = 1 + sum(self._sizes.get(id(child), 1) for child in _children(ynode))
        if size > MAX_VALUES:
            raise self._error(ynode, path, f"more than {MAX_VALUES} values once aliases are "
                                           "expanded (an alias bomb?)")
        return node

    def _build_new(self, ynode: yaml.Node, path: str) -> Node:
        line = ynode.start_mark.line + 1
        if isinstance(ynode, yaml.ScalarNode):
            if ynode.tag == _INT_TAG and len(ynode.value) > MAX_INT_CHARS:
                raise self._error(ynode, path, f"integer of {len(ynode.value)} characters, "
                                               f"more than the {MAX_INT_CHARS} allowed")
            try:
                value = self._constructor.construct_object(ynode)
            except yaml.MarkedYAMLError as exc:
                raise self._error(ynode, path, f"YAML error: {exc.problem}") from None
            except Exception as exc:
                # A tag forced on text it cannot construct: !!int abc (ValueError), !!int ''
                # (IndexError), !!bool maybe (KeyError), ... SafeConstructor's scalar
                # constructors are pure functions of the text: any failure is the text's.
                raise self._error(ynode, path, f"YAML error: {ynode.tag} "
                                               f"{ynode.value[:40]!r}: {exc}") from None
            return Scalar(value, line, ynode.value)
        if isinstance(ynode, yaml.SequenceNode):
            if ynode.tag != _SEQ_TAG:
                raise self._error(ynode, path, f"unsupported YAML tag {ynode.tag!r}")
            items = [self.build(item, f"{path}[{i}]") for i, item in enumerate(ynode.value)]
            return Seq(items, line)
        if ynode.tag != _MAP_TAG:
            raise self._error(ynode, path, f"unsupported YAML tag {ynode.tag!r}")
        return Map(self._entries(ynode, path), line)

    def _entries(self, ynode: yaml.MappingNode, path: str) -> dict:
        entries: dict[str, Entry] = {}
        merged: dict[str, Entry] = {}
        for key_node, value_node in ynode.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(value_node, path):
                    for name, entry in source.entries.items():
                        merged.setdefault(name, entry)  # the first merged mapping wins
                continue
            name = self._key(key_node, path)
            key_path = f"{path}.{name}" if path else name
            if name in entries:
                first = entries[name].key_line
                raise self._error(key_node, key_path,
                                  f"duplicate key {name!r} (first at line {first})")
            entries[name] = Entry(key_node.start_mark.line + 1, self.build(value_node, key_path))
        for name, entry in merged.items():
            entries.setdefault(name, entry)  # explicit keys override merged ones
        return entries

    def _merge_sources(self, ynode: yaml.Node, path: str) -> list:
        nodes = ynode.value if isinstance(ynode, yaml.SequenceNode) else [ynode]
        sources = [self.build(n, path) for n in nodes]
        if not all(isinstance(s, Map) for s in sources):
            raise self._error(ynode, path, "a merge key '<<' needs a mapping or list of mappings")
        return sources

    def _key(self, key_node: yaml.Node, path: str) -> str:
        key = self.build(key_node, path)
        if not isinstance(key, Scalar) or not isinstance(key.value, str):
            raise self._error(key_node, path, f"mapping keys must be strings, got {describe(key)}")
        return key.value


def _children(ynode: yaml.Node) -> list:
    if isinstance(ynode, yaml.SequenceNode):
        return ynode.value
    if isinstance(ynode, yaml.MappingNode):
        return [n for pair in ynode.value for n in pair]
    return []


def to_plain(node: Node) -> Any:
    """The plain Python value of a node (dicts, lists, scalars), as yaml.safe_load gives it."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [to_plain(item) for item in node.items]
    return {name: to_plain(entry.node) for name, entry in node.entries.items()}


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", bytes: "binary"}


def describe(node: Node) -> str:
    """A short human description of a node for messages: "string 'four'", "a list", "null"."""
    if isinstance(node, Seq):
        return "a list"
    if isinstance(node, Map):
        return "a mapping"
    value = node.value
    if value is None:
        return "null"
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{kind} {node.text}"


def suggest(word: str, choices: Collection[str]) -> str:
    """'; did you mean 'x'?' for a near miss, else ' (valid: a, b, c)'."""
    by_fold = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_fold), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {by_fold[close[0]]!r}?"
    return f" (valid: {', '.join(choices)})"


def _fail(filename: str, node: Node, path: str, message: str) -> ConfigError:
    return ConfigError(filename, node.line, path, message)


def _type_error(filename: str, node: Node, path: str, expected: str) -> ConfigError:
    message = f"expected {expected}, got {describe(node)}"
    if isinstance(node, Scalar) and not isinstance(node.value, str) and "string" in expected:
        message += f" (quote it if you meant the string {node.text!r})"
    return _fail(filename, node, path, message)


def read_map(filename: str, node: Node, path: str, keys: Collection[str]) -> dict:
    """The entries of a mapping node whose keys must all be in ``keys``."""
    if not isinstance(node, Map):
        raise _type_error(filename, node, path, "a mapping")
    for name, entry in node.entries.items():
        if name not in keys:
            where = f"{path}.{name}" if path else name
            raise ConfigError(filename, entry.key_line, where,
                              f"unknown key {name!r}{suggest(name, keys)}")
    return node.entries


def read_list(filename: str, node: Node, path: str) -> list:
    if not isinstance(node, Seq):
        raise _type_error(filename, node, path, "a list")
    return node.items


def read_str(filename: str, node: Node, path: str, *, nullable: bool = False) -> str | None:
    if nullable and isinstance(node, Scalar) and node.value is None:
        return None
    if not isinstance(node, Scalar) or not isinstance(node.value, str):
        raise _type_error(filename, node, path, "a string" + (" or null" if nullable else ""))
    if not node.value.strip():
        raise _fail(filename, node, path, "must not be empty")
    return node.value


def read_bool(filename: str, node: Node, path: str) -> bool:
    if not isinstance(node, Scalar) or not isinstance(node.value, bool):
        raise _type_error(filename, node, path, "a boolean (true or false)")
    return node.value


def _key_name(path: str) -> str:
    return path.rpartition(".")[2] or path


def read_int(filename: str, node: Node, path: str, lo: int, hi: int | None = None,
             *, nullable: bool = False) -> int | None:
    """An integer in lo..hi (hi None: no upper bound). A boolean is not an integer."""
    if nullable and isinstance(node, Scalar) and node.value is None:
        return None
    if not isinstance(node, Scalar) or type(node.value) is not int:
        raise _type_error(filename, node, path, "an integer" + (" or null" if nullable else ""))
    try:
        return check_int(node.value, _key_name(path), lo, hi)
    except ValueError as exc:
        raise _fail(filename, node, path, str(exc)) from None


def read_seconds(filename: str, node: Node, path: str, *, nullable: bool = False) -> float | None:
    """A number of seconds > 0 and at most MAX_SECONDS, as a float (an integer is accepted)."""
    if nullable and isinstance(node, Scalar) and node.value is None:
        return None
    if not isinstance(node, Scalar) or type(node.value) not in (int, float):
        expected = "a number of seconds" + (" or null" if nullable else "")
        raise _type_error(filename, node, path, expected)
    try:
        return check_timeout(node.value, _key_name(path))
    except ValueError as exc:
        raise _fail(filename, node, path, str(exc)) from None


def read_choice(filename: str, node: Node, path: str, choices: Collection[str], what: str) -> str:
    """A string among ``choices``; an unknown one gets a did-you-mean hint."""
    value = read_str(filename, node, path)
    if value not in choices:
        raise _fail(filename, node, path, f"unknown {what} {value!r}{suggest(value, choices)}")
    return value
