"""Durations in words for error details: "37 seconds", "12 minutes", "1 hour 5 minutes", "per minute".

Pure functions of numbers, shared by :mod:`backend_guard.exceptions` (when to retry) and
:mod:`backend_guard.ratelimit` (which limit refused).
"""

from __future__ import annotations

import math

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def wait_text(seconds: float) -> str:
    """How long to wait, rounded up to whole seconds and said in at most two units, the smaller rounded up.

    Never shorter than ``seconds`` (a client waiting what it reads is not refused again), never below one
    second, and never longer than the ``Retry-After`` header's whole seconds by more than one smaller unit.

    Example::

        >>> wait_text(36.2), wait_text(720), wait_text(3601), wait_text(0)
        ('37 seconds', '12 minutes', '1 hour 1 minute', '1 second')
    """
    total = max(1, math.ceil(seconds - 1e-9)) if math.isfinite(seconds) else 1
    # Round up to the smaller of the two units said; that can carry into a larger unit (23 h 59 min 30 s).
    step = 3600 if total >= 86400 else 60 if total >= 3600 else 1
    total = -(-total // step) * step
    for i, (size, unit) in enumerate(_UNITS):
        if total >= size:
            major, rest = divmod(total, size)
            if rest == 0 or size == 1:
                return _count(major, unit)
            minor_size, minor_unit = _UNITS[i + 1]
            return f"{_count(major, unit)} {_count(rest // minor_size, minor_unit)}"
    raise AssertionError("unreachable: total >= 1")  # pragma: no cover


def window_text(seconds: float) -> str:
    """A rate limit's window after "per": "minute", "10 seconds", "2 hours", "90 seconds", "0.5 seconds".

    Example::

        >>> window_text(60), window_text(10), window_text(7200), window_text(90)
        ('minute', '10 seconds', '2 hours', '90 seconds')
    """
    if seconds == int(seconds) and seconds >= 1:
        whole = int(seconds)
        for size, unit in _UNITS:
            if whole % size == 0:
                n = whole // size
                return unit if n == 1 else _count(n, unit)
    return f"{seconds:g} seconds"
