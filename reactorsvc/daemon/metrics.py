"""Prometheus text exposition of Server.stats(): the metric names, types and help texts.

Naming follows Prometheus practice: counters end in `_total`, byte counts in `_bytes_total`, no
gauge shares a family name with a counter (`x` and `x_total` are one family to a parser), and a
per-worker or per-listener series carries a `worker` or `listener` label instead of a name of its
own. The tables below are the one list of what /metrics carries; tests read it with
prometheus_client's parser.

Pure functions of a stats dict; the admin endpoint (admin.py) serves what they render.
Thread-safety: pure, callable from any thread.
"""

from __future__ import annotations

from collections.abc import Iterable

# (stats key, metric name, type, help)
_WORKER_METRICS = (
    ("connections", "reactorsvc_worker_open_connections", "gauge", "Open connections."),
    ("connections_total", "reactorsvc_worker_connections_total", "counter", "Connections served."),
    ("bytes_in", "reactorsvc_worker_received_bytes_total", "counter", "Bytes received."),
    ("bytes_out", "reactorsvc_worker_sent_bytes_total", "counter", "Bytes sent."),
    ("callbacks", "reactorsvc_worker_callbacks_total", "counter", "Event callbacks run."),
    ("wakeups", "reactorsvc_worker_wakeups_total", "counter", "Cross-thread wake-ups received."),
    ("iterations", "reactorsvc_worker_loop_iterations_total", "counter", "Event loop iterations."),
    ("errors", "reactorsvc_worker_errors_total", "counter", "Connections ended by an error."),
    ("tls_handshake_failures", "reactorsvc_worker_tls_handshake_failures_total", "counter",
     "TLS handshakes that failed or timed out."),
    ("accepts", "reactorsvc_worker_accepts_total", "counter",
     "Connections this worker accepted itself (accept: workers)."),
)
# Keys of Listener.counters(), the listener's own names for its numbers.
_LISTENER_METRICS = (
    ("open", "reactorsvc_listener_open_connections", "gauge",
     "Connections accepted on this listener and still open."),
    ("accepts", "reactorsvc_accepts_total", "counter", "Connections accepted."),
    ("rejected", "reactorsvc_rejected_total", "counter",
     "Accepted connections closed at once because they could not be handed to a worker."),
    ("accept_pauses", "reactorsvc_accept_pauses_total", "counter",
     "Times accepting paused (max_connections, an accept-error back-off, a pause)."),
)
_ACCEPT_ERRORS = ("reactorsvc_accept_errors_total", "counter",
                  "accept() failures: reason=resources for EMFILE, ENFILE, ENOBUFS, ENOMEM.")
_ACCEPT_ERROR_REASONS = (("emfile", "resources"), ("accept_errors", "other"))
_SUPERVISOR_METRICS = (
    ("handoffs", "reactorsvc_handoffs_total", "counter", "Connections handed to workers."),
    ("errors", "reactorsvc_handoff_errors_total", "counter", "Hand-offs to a worker that failed."),
    ("worker_restarts", "reactorsvc_worker_restarts_total", "counter",
     "Workers replaced after dying."),
)

Series = Iterable[tuple[dict[str, str], float]]


def render_metrics(stats: dict, draining: bool) -> str:
    """Prometheus text exposition (version 0.0.4) of Server.stats()."""
    out: list[str] = []
    _family(out, "reactorsvc_up", "gauge", "1 while serving, 0 while draining.",
            [({}, 0 if draining else 1)])
    for name, kind, text, series in _server_families(stats, {}):
        _family(out, name, kind, text, series)
    return "\n".join(out) + "\n"


def _server_families(stats: dict, extra: dict[str, str]) -> list[tuple[str, str, str, list]]:
    """(name, type, help, series) of every family of one Server.stats(); `extra` labels
    (the master's `process`) come first on every series."""
    fams = []
    workers = stats.get("workers", [])
    for key, name, kind, text in _WORKER_METRICS:
        fams.append((name, kind, text, [({**extra, "worker": str(i)}, w.get(key, 0))
                                        for i, w in enumerate(workers)]))
    listeners = sorted(stats.get("listeners", {}).items())
    for key, name, kind, text in _LISTENER_METRICS:
        fams.append((name, kind, text, [({**extra, "listener": n}, c.get(key, 0))
                                        for n, c in listeners]))
    fams.append((*_ACCEPT_ERRORS, [({**extra, "listener": n, "reason": reason}, c.get(key, 0))
                                   for n, c in listeners for key, reason in _ACCEPT_ERROR_REASONS]))
    sup = stats.get("supervisor", {})
    for key, name, kind, text in _SUPERVISOR_METRICS:
        fams.append((name, kind, text, [(dict(extra), sup.get(key, 0))]))
    return fams


def _family(out: list[str], name: str, kind: str, text: str, series: Series) -> None:
    out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in series:
        out.append(f"{name}{_labels(labels)} {value}")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    # The exposition format's three escapes in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_PROCESS_METRICS = (
    # Prometheus' standard process metrics (client_golang/client_python names), per process.
    ("cpu_seconds", "process_cpu_seconds_total", "counter",
     "Total user and system CPU time spent in seconds."),
    ("resident_bytes", "process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("open_fds", "process_open_fds", "gauge", "Number of open file descriptors."),
    ("start_time", "process_start_time_seconds", "gauge",
     "Start time of the process since unix epoch in seconds."),
)


def render_master_metrics(children: list[tuple[str, dict]], processes: list[tuple[str, dict]],
                          draining: bool, master: dict) -> str:
    """The master's exposition (processes: N): every child's Server.stats() families with a
    `process` label (the child's slot), the process_* figures of each process (`processes`:
    (label, procstats.process_stats())), and the master's own figures (`master`: serving,
    restarts, stats_age: [(label, seconds)])."""
    out: list[str] = []
    _family(out, "reactorsvc_up", "gauge", "1 while serving, 0 while draining.",
            [({}, 0 if draining else 1)])
    # The families come in the same order whatever the stats: merge the children's series.
    per_child = [_server_families(stats, {"process": label}) for label, stats in children]
    for i, (name, kind, text, _) in enumerate(_server_families({}, {})):
        _family(out, name, kind, text, [s for fams in per_child for s in fams[i][3]])
    for key, name, kind, text in _PROCESS_METRICS:
        _family(out, name, kind, text, [({"process": label}, f[key]) for label, f in processes])
    _family(out, "reactorsvc_processes_serving", "gauge", "Child processes serving.",
            [({}, master["serving"])])
    _family(out, "reactorsvc_process_restarts_total", "counter",
            "Child processes replaced after dying.", [({}, master["restarts"])])
    _family(out, "reactorsvc_process_stats_age_seconds", "gauge",
            "Age of the figures a child last reported (a stuck child's keep growing).",
            [({"process": label}, age) for label, age in master["stats_age"]])
    return "\n".join(out) + "\n"
