"""The command line of the stress harness: `reactorsvc stress` and `python -m reactorsvc.stress`."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence

from reactorsvc import supported_methods

from .runner import run_stress


def _count(option: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reactorsvc stress",
        description="Hammer looping EventBases from many threads and check the reactor's "
                    "thread contract. Exit status 1 on any violation.")
    parser.add_argument("--threads", type=_count("--threads"), default=4,
                        help="hammer threads (default 4)")
    parser.add_argument("--bases", type=_count("--bases"), default=2,
                        help="EventBases, each looping in its own thread (default 2)")
    parser.add_argument("--seconds", type=_seconds, default=5.0,
                        help="how long to hammer (default 5)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="hammer i draws from random.Random(seed + i) (default 0)")
    parser.add_argument("--backend", default=None,
                        help=f"backend to use, one of: {', '.join(supported_methods())} "
                             "(default: the preferred one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; 0 when no violation was found, 1 otherwise, 2 on bad arguments."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.backend is not None and args.backend not in supported_methods():
            parser.error(f"--backend: {args.backend!r} is not available here (supported: "
                         f"{', '.join(supported_methods())})")
    except SystemExit as exc:  # argparse reports bad arguments with exit status 2
        return exc.code if isinstance(exc.code, int) else 2
    report = run_stress(args.threads, args.bases, args.seconds, args.seed, args.backend, sys.stdout)
    return 0 if report.ok else 1
