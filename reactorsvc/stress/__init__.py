"""The stress harness (`reactorsvc stress`): many threads hammer looping EventBases while
the reactor's thread contract is checked (see runner.py for the phases, model.py for the
bookkeeping of what each event is owed).

    run_stress(threads, bases, seconds, seed, backend, out=None) -> StressReport  # out None: stdout
    main(argv) -> int                  # the command line; 0 ok, 1 violations, 2 bad arguments
"""

from .command import main
from .report import StressReport
from .runner import run_stress

__all__ = ["StressReport", "main", "run_stress"]
