"""/metrics text, rendered from a stats dict and read back by prometheus_client's parser:
Prometheus naming (counters `_total`, bytes `_bytes_total`, no family shared by a gauge and a
counter), a `worker` / `listener` label on per-worker / per-listener series, and accept errors
counted apart from pauses."""

from __future__ import annotations

from reactorsvc.daemon.metrics import render_metrics

from ..helpers import REPO, parse_metrics

LISTENER = {"accepts": 7, "rejected": 1, "accept_pauses": 3, "emfile": 2, "accept_errors": 1,
            "open": 4}
WORKER = {"connections": 2, "connections_total": 5, "bytes_in": 10, "bytes_out": 9,
          "callbacks": 40, "wakeups": 3, "iterations": 30, "errors": 1}
STATS = {"workers": [WORKER, dict(WORKER, connections=0)],
         "supervisor": {"accepts": 12, "handoffs": 11, "rejected": 0, "errors": 1,
                        "accept_pauses": 3, "worker_restarts": 0},
         "listeners": {"echo": LISTENER, 'odd"name': dict(LISTENER, accepts=5)}}


def test_names_follow_prometheus_conventions():
    types, samples = parse_metrics(render_metrics(STATS, draining=False))
    for name, labels in samples:
        family = name.removesuffix("_total")
        kind = types.get(family) if family in types else types[name]
        assert (kind == "counter") == name.endswith("_total"), name
        if "bytes" in name:
            assert name.endswith("_bytes_total"), name
    assert types["reactorsvc_worker_open_connections"] == "gauge"
    assert types["reactorsvc_worker_connections"] == "counter"  # ..._connections_total


def test_per_worker_and_per_listener_series_are_labelled():
    _, samples = parse_metrics(render_metrics(STATS, draining=False))
    assert samples[("reactorsvc_worker_received_bytes_total", (("worker", "1"),))] == 10
    assert samples[("reactorsvc_worker_open_connections", (("worker", "1"),))] == 0
    assert samples[("reactorsvc_accepts_total", (("listener", "echo"),))] == 7
    assert samples[("reactorsvc_accepts_total", (("listener", 'odd"name'),))] == 5  # escaped
    assert samples[("reactorsvc_listener_open_connections", (("listener", "echo"),))] == 4
    assert samples[("reactorsvc_accept_pauses_total", (("listener", "echo"),))] == 3
    assert samples[("reactorsvc_handoff_errors_total", ())] == 1
    assert samples[("reactorsvc_up", ())] == 1


def test_accept_errors_count_emfile_and_other_failures_by_reason():
    _, samples = parse_metrics(render_metrics(STATS, draining=True))
    key = "reactorsvc_accept_errors_total"
    assert samples[(key, (("listener", "echo"), ("reason", "resources")))] == 2
    assert samples[(key, (("listener", "echo"), ("reason", "other")))] == 1
    assert samples[("reactorsvc_up", ())] == 0


def test_a_server_not_started_renders_every_family_without_series():
    types, samples = parse_metrics(render_metrics({"workers": [], "supervisor": {}}, False))
    assert "reactorsvc_accept_errors" in types and "reactorsvc_worker_open_connections" in types
    assert samples[("reactorsvc_up", ())] == 1


def test_the_readme_names_every_metric():
    _, samples = parse_metrics(render_metrics(STATS, draining=False))
    readme = (REPO / "README.md").read_text()
    missing = sorted({name for name, _ in samples if f"`{name}`" not in readme})
    assert not missing, f"README.md does not name {missing}"
