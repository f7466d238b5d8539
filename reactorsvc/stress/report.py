"""StressReport: the numbers and findings of one stress run, and how they are printed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StressReport:
    """Result of run_stress(). `ok` is True when no violation was found."""

    backend: str
    threads: int
    bases: int
    seconds: float
    seed: int
    elapsed: float = 0.0
    operations: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    callbacks: int = 0
    iterations: int = 0
    wakeups: int = 0
    wakeups_sent: int = 0
    wakeups_coalesced: int = 0
    owed: dict[str, int] = field(default_factory=dict)   # armed/fired/refired/cancelled/late
    posts: int = 0
    delivered: int = 0
    loop_restarts: int = 0
    violation_counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)  # the first few, with details

    @property
    def ok(self) -> bool:
        return not self.violation_counts

    @property
    def violation_total(self) -> int:
        return sum(self.violation_counts.values())

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.elapsed if self.elapsed > 0 else 0.0

    def format(self) -> str:
        """The final report, several lines, no trailing newline."""
        ops = " ".join(f"{k}={v}" for k, v in sorted(self.op_counts.items()))
        owed = " ".join(f"{k}={self.owed.get(k, 0)}"
                        for k in ("armed", "readded", "fired", "refired", "cancelled", "late"))
        lines = [
            (f"stress: backend={self.backend} threads={self.threads} bases={self.bases} "
             f"seconds={self.seconds:g} seed={self.seed}"),
            f"operations: {self.operations} in {self.elapsed:.2f}s ({self.ops_per_second:.0f}/s): {ops}",
            f"callbacks: {self.callbacks} in {self.iterations} loop iterations",
            (f"wake-ups sent: {self.wakeups_sent}, coalesced: {self.wakeups_coalesced}, "
             f"drained: {self.wakeups}"),
            f"runs owed: {owed}",
            f"posts: {self.posts} sent, {self.delivered} delivered; loop restarts: {self.loop_restarts}",
            f"violations: {self.violation_total}",
        ]
        lines += [f"  {kind}: {n}" for kind, n in sorted(self.violation_counts.items())]
        lines += [f"  - {detail}" for detail in self.violations]
        return "\n".join(lines)
