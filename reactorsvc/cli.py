"""The `reactorsvc` command: serve, check, stress.

Exit status: 0 on success, 1 on a failed stress run, 2 on usage or configuration errors
(reported as FILE:LINE: key: what is wrong, before anything binds).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reactorsvc", description="libevent-style reactor service daemon")
    p.add_argument("--version", action="version", version=f"reactorsvc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("-c", "--config", help="YAML config file (default: the built-in config)")
    serve.add_argument("--log-format", choices=["json", "console", "auto"], help="override logging.format")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                       help="override logging.level")
    check = sub.add_parser("check", help="validate a config file and print the effective config")
    check.add_argument("-c", "--config", required=True, help="YAML config file")
    sub.add_parser("stress", help="thread-safety stress test of the reactor", add_help=False)
    return p


def _load(path: str | None):
    from .daemon.config import ConfigError, default_config, load_config
    # Like gunicorn: `package.module:factory` services import from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_config(path) if path else default_config()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["stress"]:
        from .stress import main as stress_main
        return stress_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    config = _load(args.config)
    if config is None:
        return 2
    if args.command == "check":
        from .daemon.config import config_to_yaml
        sys.stdout.write(config_to_yaml(config))
        return 0
    from .daemon.app import run_daemon
    return run_daemon(config, config_path=args.config, log_format=args.log_format,
                      log_level=args.log_level)
