#!/usr/bin/env python3
"""Instructions per callback, counted by valgrind's callgrind: a repeatable A/B of the hot path.

Wall and CPU time on a shared 2-CPU machine move by 10-25 % between runs, more than most
hot-path changes are worth. Instruction counts do not move: this script runs each case under
`valgrind --tool=callgrind` at two sizes and prints (instructions(big) - instructions(small))
/ (big - small), so start-up and warm-up cancel out.

    .venv/bin/python benchmarks/icount.py                      # every case, this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/icount.py chain active

Caveat: the absolute counts are several times what native speed suggests (a bare
`for i in range(n): x += i` counts ~490 instructions per iteration here, where it runs in
~24 ns natively); the cause is not pinned down (this CPython is built without valgrind
support, so pymalloc stays on). Compare implementations of the same work, not absolutes.
Cases, each chain.py's own code: chain (N=100, A=1, a locked base), chain-nolock, asyncio and
uvloop (add_reader; uvloop when installed), floor (the bare select.epoll loop), active and
active-nolock (100 self-re-activating events), timers and timers-nolock (one-shot timers,
random delays in [0, 50 ms)).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys

SIZES = {"chain": (2_000, 12_000), "floor": (2_000, 12_000), "asyncio": (2_000, 12_000),
         "uvloop": (2_000, 12_000), "active": (20_000, 120_000), "timers": (5_000, 25_000)}
CASES = ["chain", "chain-nolock", "asyncio", "uvloop", "floor", "active", "active-nolock",
         "timers", "timers-nolock"]


def run_case(case: str, n: int) -> None:
    """chain.py's own implementation of `case` for n units: 10 small warm-up runs (the adaptive
    interpreter specialises), then the measured one."""
    import random

    import chain  # the benchmark's code, so both tools measure the same thing
    from _common import Ring

    def one(k: int) -> None:
        kind, _, variant = case.partition("-")
        if kind == "timers":
            rng = random.Random(1)
            chain.timers_reactorsvc([rng.random() * 0.05 for _ in range(k)], variant == "nolock")
        elif kind == "active":
            chain.active_reactorsvc(100, k, variant == "nolock")
        else:
            ring = Ring(100)
            try:
                if kind == "floor":
                    chain.chain_floor(ring, 1, k)
                elif kind in ("asyncio", "uvloop"):
                    chain.chain_asyncio(ring, 1, k, kind)
                else:
                    chain.chain_reactorsvc(ring, 1, k, variant == "nolock")
            finally:
                ring.close()
    for _ in range(10):
        one(200)
    one(n)


def count(case: str, n: int) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--run", case, str(n)],
                         capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--run"]:
        run_case(argv[1], int(argv[2]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("icount.py needs valgrind (Debian: apt-get install valgrind)")
    cases = argv or CASES
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {CASES}")
    print(f"instructions per callback (timers: per timer), callgrind, Python {sys.version.split()[0]}")
    for case in cases:
        if case == "uvloop" and importlib.util.find_spec("uvloop") is None:
            print(f"{case:<14} {'(not installed)':>9}")
            continue
        small, big = SIZES[case.split("-")[0]]
        per = (count(case, big) - count(case, small)) / (big - small)
        print(f"{case:<14} {per:>9,.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
