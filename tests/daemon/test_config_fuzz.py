"""Config fuzzing, seeded and bounded: mutated copies of configs/*.yaml and of the test fixtures
either load or raise ConfigError with a line and a non-empty key path — never another
exception, never a hang.

Mutations are of two kinds: structural (a value of the parsed document replaced by a hostile
one, a key dropped or added, a list item duplicated — then dumped back to YAML) and textual
(YAML punctuation, tags, anchors and aliases inserted, lines dropped, duplicated or re-indented).
Host names stay literal or ``localhost``, so no mutation waits on DNS.
"""

from __future__ import annotations

import copy
import random
import threading
import time

import pytest
import yaml

from reactorsvc.daemon.config import ConfigError, load_config_text

from .conftest import CONFIG_FILES
from .test_config import ERROR_CASES, LISTENER

SEED = 20261202
COUNT = 2400
TIME_LIMIT = 20.0

HOSTILE = [
    -1, 0, 1, 65536, 2 ** 70, 10 ** 30, 1.5, -0.0, 1e308, float("inf"), float("nan"), True,
    False, None, "", " ", "x", "auto", "echo", "os:getcwd", "nope.module:thing", "epoll",
    "EARLY_CLOSE", [], {}, [1, [2, [3]]], {"a": {"b": {}}}, "127.0.0.1:0", "127.0.0.1:7000",
    "localhost:7000", "0.0.0.0:7000", "[::1]:7000", "[::]:7000", "unix:", "unix:/tmp/a\0b",
    "unix:/" + "s" * 120, "unix:/tmp/fuzz.sock", "1e400", "!!int abc", "*a", "99" * 30,
]
PUNCTUATION = [":", "-", " ", "\t", "&a ", "*a", "!!int ", "!!binary ", "!!set ", "!!str ",
               "!!python/object:os.system ", "[", "]", "{", "}", "#", "'", '"', "? ", "|",
               ">", ",", "<<: *a", "%YAML 1.1\n", "---\n", "...\n", "\\0", "\x00", "\ufeff"]


def _sources() -> list[str]:
    texts = [path.read_text() for path in CONFIG_FILES]
    texts.append(LISTENER)
    texts += [case[1] for case in ERROR_CASES]
    return texts


def _paths(node, depth: int = 0):  # every (container, key) in a plain YAML tree
    if depth > 20:  # a recursive alias (a fixture) makes a cyclic tree: don't follow it
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _paths(value, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield node, i
            yield from _paths(value, depth + 1)


def _structural(rng: random.Random, text: str) -> str | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, (dict, list)) or "&" in text:  # cyclic aliases: not dumpable
        return None
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        spots = list(_paths(data))
        if not spots:
            break
        container, key = rng.choice(spots)
        action = rng.random()
        if action < 0.6:
            container[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif action < 0.75 and isinstance(container, dict):
            del container[key]
        elif action < 0.9 and isinstance(container, dict):
            container[rng.choice(["extra", "backlg", "write_buffer", "options", f"{key}x"])] = \
                copy.deepcopy(rng.choice(HOSTILE))
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return None


def _textual(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True) or ["\n"]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.5:
            line = lines[i]
            at = rng.randint(0, len(line))
            lines[i] = line[:at] + rng.choice(PUNCTUATION) + line[at:]
        elif action < 0.65:
            del lines[i]
            lines = lines or ["\n"]
        elif action < 0.8:
            lines.insert(i, lines[i])
        elif action < 0.9:
            lines[i] = "  " + lines[i]
        else:
            lines[i] = lines[i].lstrip()
    return "".join(lines)


def _mutants(count: int) -> list[str]:
    rng = random.Random(SEED)
    sources = _sources()
    out: list[str] = []
    while len(out) < count:
        source = rng.choice(sources)
        mutant = _structural(rng, source) if rng.random() < 0.5 else _textual(rng, source)
        if mutant is not None:
            out.append(mutant)
    return out


def _run(mutants: list[str], outcome: dict) -> None:
    for n, text in enumerate(mutants):
        try:
            load_config_text(text, "fuzz.yaml")
            outcome["loaded"] += 1
        except ConfigError as exc:
            if not exc.path or exc.line is None or exc.line < 1:
                outcome["bad"].append((n, text, f"ConfigError without line/path: {exc!r}"))
            outcome["rejected"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            outcome["bad"].append((n, text, f"{type(exc).__name__}: {exc}"))
        outcome["done"] = n + 1


@pytest.mark.timeout(60)
def test_mutated_configs_load_or_raise_config_error():
    mutants = _mutants(COUNT)
    outcome = {"loaded": 0, "rejected": 0, "bad": [], "done": 0}
    started = time.monotonic()
    runner = threading.Thread(target=_run, args=(mutants, outcome), daemon=True)
    runner.start()
    runner.join(TIME_LIMIT)
    elapsed = time.monotonic() - started
    assert not runner.is_alive(), (f"fuzzing hung or is too slow: {outcome['done']} of {COUNT} "
                                   f"in {elapsed:.1f} s; stuck on:\n{mutants[outcome['done']]}")
    assert outcome["bad"] == [], "\n\n".join(f"#{n}: {why}\n{text}"
                                             for n, text, why in outcome["bad"][:5])
    assert outcome["done"] == COUNT >= 2000
    # The mutations reach past the parser: both outcomes occur in quantity.
    assert outcome["loaded"] >= 20 and outcome["rejected"] >= 1000, outcome
