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
    return _in_two_units(_rounded_up(max(1, math.ceil(seconds - 1e-9)) if math.isfinite(seconds) else 1))


def _in_two_units(total: int) -> str:
    """Whole seconds (at least one) in the largest unit they reach and, when something is left, the next."""
    i = next(i for i, (size, _) in enumerate(_UNITS) if total >= size)
    size, unit = _UNITS[i]
    major, rest = divmod(total, size)
    if rest == 0:  # always so in seconds, the smallest unit
        return _count(major, unit)
    minor_size, minor_unit = _UNITS[i + 1]
    return f"{_count(major, unit)} {_count(rest // minor_size, minor_unit)}"


def _rounded_up(total: int) -> int:
    """``total`` seconds rounded up to the smaller of the two units said (hours from a day on, minutes from an
    hour on); that can carry into a larger unit (23 h 59 min 30 s)."""
    step = 3600 if total >= 86400 else 60 if total >= 3600 else 1
    return -(-total // step) * step


def window_text(seconds: float) -> str:
    """A rate limit's window after "per": "minute", "10 seconds", "2 hours", "90 seconds", "0.5 seconds".

    Example::

        >>> window_text(60), window_text(10), window_text(7200), window_text(90)
        ('minute', '10 seconds', '2 hours', '90 seconds')
    """
    if seconds == int(seconds) and seconds >= 1:
        return _whole_window(int(seconds))
    return f"{seconds:g} seconds"


def _whole_window(whole: int) -> str:
    """A window of whole seconds in the largest unit that divides it ("minute", "2 hours", "90 seconds")."""
    size, unit = _largest_divisor(whole)
    n = whole // size
    return unit if n == 1 else _count(n, unit)


def _largest_divisor(whole: int) -> tuple[int, str]:
    return next((size, unit) for size, unit in _UNITS if whole % size == 0)  # a second always divides
