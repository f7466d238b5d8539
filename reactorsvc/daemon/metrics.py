"""Prometheus text exposition of Server.stats(): the metric names, types and help texts.

Pure functions of a stats dict; the admin endpoint (admin.py) serves what they render.
Thread-safety: pure, callable from any thread.
"""

from __future__ import annotations

_WORKER_METRICS = (
    # (stats key, metric name, type, help)
    ("connections", "reactorsvc_worker_connections", "gauge", "Open connections."),
    ("connections_total", "reactorsvc_worker_connections_total", "counter", "Connections served."),
    ("bytes_in", "reactorsvc_worker_bytes_in_total", "counter", "Bytes received."),
    ("bytes_out", "reactorsvc_worker_bytes_out_total", "counter", "Bytes sent."),
    ("callbacks", "reactorsvc_worker_callbacks_total", "counter", "Event callbacks run."),
    ("wakeups", "reactorsvc_worker_wakeups_total", "counter", "Cross-thread wake-ups received."),
    ("iterations", "reactorsvc_worker_loop_iterations_total", "counter", "Event loop iterations."),
    ("errors", "reactorsvc_worker_errors_total", "counter", "Connections ended by an error."),
)
_SUPERVISOR_METRICS = (
    ("accepts", "reactorsvc_accepts_total", "counter", "Connections accepted."),
    ("handoffs", "reactorsvc_handoffs_total", "counter", "Connections handed to workers."),
    ("rejected", "reactorsvc_rejected_total", "counter", "Connections refused."),
    ("errors", "reactorsvc_accept_errors_total", "counter", "accept() errors."),
    ("accept_pauses", "reactorsvc_accept_pauses_total", "counter", "Times accepting paused."),
    ("worker_restarts", "reactorsvc_worker_restarts_total", "counter", "Workers replaced after dying."),
)


def render_metrics(stats: dict, draining: bool) -> str:
    """Prometheus text exposition (version 0.0.4) of Server.stats()."""
    out = ["# HELP reactorsvc_up 1 while serving, 0 while draining.", "# TYPE reactorsvc_up gauge",
           f"reactorsvc_up {0 if draining else 1}"]
    workers = stats.get("workers", [])
    for key, name, kind, text in _WORKER_METRICS:
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        out += [f'{name}{{worker="{i}"}} {w.get(key, 0)}' for i, w in enumerate(workers)]
    sup = stats.get("supervisor", {})
    for key, name, kind, text in _SUPERVISOR_METRICS:
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {sup.get(key, 0)}"]
    return "\n".join(out) + "\n"
