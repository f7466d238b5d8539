"""`reactorsvc check` and `reactorsvc serve` agree on every config: check exits 0 exactly when
serve starts (its ``server_started`` line; then SIGTERM, exit 0), and a config check refuses
(exit 2, ``FILE:LINE: key: message``) makes serve exit 2 with the same line, before binding.

The configs: the shipped ones, and one for each defect `check` used to pass while `serve` died
(a backend section no backend fits, a NUL in a Unix path, ``localhost`` beside 127.0.0.1, a
built-in function as service, durations past the maximum), beside valid variants.
`check` runs in-process (the CLI's own main()), `serve` as a subprocess. The loader's own error
cases (test_config.py) go through both commands in-process; test_cli.py runs its broken configs
through both as subprocesses.
"""

from __future__ import annotations

import signal
from pathlib import Path

from reactorsvc.cli import main as cli_main

from ..helpers import free_ports
from .conftest import CONFIG_FILES, ConfigFile, write_config
from .test_config import ERROR_CASES

BASE = """\
{head}listeners:
  - name: a
    bind: 127.0.0.1:{p0}
    service: echo
{extra}admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: {grace}
"""

# name -> (text before listeners, text after the first listener, grace). {p0} {p1} {tmp} are
# filled in: ports free a moment ago, the test's directory.
VARIANTS = {
    # valid ones
    "plain": ("", "", "1"),
    "unix-and-options": ("", "  - name: u\n    bind: unix:{tmp}/u.sock\n    service: discard\n"
                             "    max_connections: 3\n    idle_timeout: 30\n"
                             "    write_buffer: {{high: 1000}}\n", "1"),
    "hash-reuse-port": ("dispatch: hash\n", "  - name: b\n    bind: 127.0.0.1:{p1}\n"
                                            "    service: http-hello\n    reuse_port: true\n", "1"),
    "require-et": ("backend: {{require: [ET]}}\n", "", "1"),
    "accept-workers": ("accept: workers\n", "  - name: u\n    bind: unix:{tmp}/u.sock\n"
                                             "    service: discard\n", "1"),
    # defects of issue 12: check passed, serve failed
    "avoid-three": ("backend: {{avoid: [epoll, poll, select]}}\n", "", "1"),
    "early-close-without-epoll": ("backend: {{avoid: [epoll], require: [EARLY_CLOSE]}}\n", "", "1"),
    "nul-in-unix-path": ("", '  - name: u\n    bind: "unix:{tmp}/a\\0b"\n    service: echo\n', "1"),
    "localhost-beside-127": ("", "  - name: b\n    bind: localhost:{p0}\n    service: echo\n", "1"),
    "builtin-service": ("", "  - name: b\n    bind: 127.0.0.1:{p1}\n    service: os:getcwd\n", "1"),
    "grace-past-maximum": ("", "", "1.0e+10"),
    "idle-past-maximum": ("", "    idle_timeout: 40000000\n", "1"),
    "yaml-tag": ("workers: !!int abc\n", "", "1"),
}


def _write(name: str, tmp_path: Path) -> ConfigFile:
    tmp_path = tmp_path / name
    tmp_path.mkdir()
    p0, p1, admin = free_ports(3)
    head, extra, grace = VARIANTS[name]
    text = BASE.format(head=head, extra=extra, grace=grace, p0="{p0}", admin=admin)
    text = text.format(p0=p0, p1=p1, tmp=tmp_path)
    path = tmp_path / "daemon.yaml"
    path.write_text(text)
    return ConfigFile(path, text, {})  # some are not even YAML safe_load can read


def _check(path: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    status = cli_main(["check", "-c", str(path)])
    return status, capsys.readouterr().err


def test_check_and_serve_agree(daemon, tmp_path, capsys):
    """Every serve starts at once (they run side by side, so the test takes one start's time)."""
    configs = {}
    for path in CONFIG_FILES:
        (tmp_path / path.name).mkdir()
        configs[path.name] = write_config(tmp_path / path.name, path)
    configs.update({name: _write(name, tmp_path) for name in VARIANTS})
    checked = {name: _check(cfg.path, capsys) for name, cfg in configs.items()}
    daemons = {name: daemon(cfg, ready=False) for name, cfg in configs.items()}
    for name, (status, err) in checked.items():
        d = daemons[name]
        if status == 0:
            assert err == "", name
            d.wait_log("server_started", timeout=20.0)
            d.signal(signal.SIGTERM)
            assert d.wait(15.0) == 0, f"{name}: {d.tail()}"
        else:
            assert status == 2 and err.startswith(f"{configs[name].path}:"), (name, err)
            assert d.wait(15.0) == 2, f"{name}: {d.tail()}"
            assert d.log_path.read_text() == err, name  # the same line, and nothing else
    accepted = sorted(name for name, (status, _) in checked.items() if status == 0)
    assert accepted == sorted([p.name for p in CONFIG_FILES] + [
        "plain", "unix-and-options", "hash-reuse-port", "require-et", "accept-workers"])


def test_check_and_serve_refuse_every_loader_error_case_alike(tmp_path, capsys):
    """The loader's error cases (test_config.py): `serve` refuses each exactly as `check` does,
    before anything binds (run in-process: a refused config returns before the server exists)."""
    for name, text, _ in ERROR_CASES:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        results = []
        for command in ("check", "serve"):
            capsys.readouterr()
            status = cli_main([command, "-c", str(path)])
            results.append((status, capsys.readouterr().err))
        assert results[0] == results[1], name
        assert results[0][0] == 2 and results[0][1].startswith(f"{path}:"), (name, results)
