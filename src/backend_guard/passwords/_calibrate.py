"""Calibration: argon2id parameters whose hashing takes about a target time on this host, never below OWASP.

What lives here: :func:`calibrate`, which measures hashing at OWASP's floor for a memory size and scales the
iteration count to the target (the cost is close to linear in the iterations). Run it once at deployment time
(``backend-guard calibrate``), not per request.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from ..exceptions import ConfigurationError
from ._hasher import PasswordHasher
from ._parameters import DEFAULT_PARAMETERS, OWASP_TABLE, Argon2Parameters, owasp_min_time_cost

__all__ = ["calibrate"]


def _median_seconds(hasher: PasswordHasher, samples: int, timer: Callable[[], float]) -> float:
    """The median time of ``samples`` hashes, after one warm-up hash (page faults, lazy imports)."""
    hasher.hash("calibration warm-up")  # first-run effects stay out of the median
    durations = []
    for _ in range(samples):
        start = timer()
        hasher.hash("calibration probe")
        durations.append(timer() - start)
    return statistics.median(durations)


def calibrate(
    target_ms: float = 100.0,
    *,
    memory_cost: int = DEFAULT_PARAMETERS.memory_cost,
    parallelism: int = 1,
    max_time_cost: int = 64,
    samples: int = 3,
    timer: Callable[[], float] = time.perf_counter,
) -> Argon2Parameters:
    """Pick argon2id parameters whose hashing takes about ``target_ms`` on this host, never below OWASP.

    Memory and parallelism are fixed; the iteration count grows until a hash costs about ``target_ms``
    (measured median of ``samples`` runs at OWASP's floor for that memory, then scaled, since the cost is
    close to linear in the iterations).

    Example::

        params = bg.calibrate(target_ms=250)
        hasher = bg.PasswordHasher(params)
    """
    floor = owasp_min_time_cost(memory_cost)
    if floor is None:
        raise ConfigurationError(f"memory_cost must be at least {OWASP_TABLE[-1][0]} KiB to meet OWASP.")
    if not 0 < target_ms < float("inf") or samples < 1:
        raise ConfigurationError("target_ms and samples must be positive (and target_ms finite).")
    probe = Argon2Parameters(time_cost=floor, memory_cost=memory_cost, parallelism=parallelism)
    per_pass_ms = _median_seconds(PasswordHasher(probe), samples, timer) * 1000.0 / floor
    time_cost = int(target_ms // per_pass_ms) if per_pass_ms > 0 else max_time_cost
    time_cost = max(floor, min(max_time_cost, time_cost))
    return Argon2Parameters(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
