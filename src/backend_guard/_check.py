"""Type and range checks for constructor arguments: one wrong type is one ConfigurationError naming the setting.

What must live here: the checks every public constructor runs on its arguments before it compiles anything, so
that a setting of the wrong type fails at start-up with a message that names it and says what to write, and
never as an AttributeError from deep inside, or worse as a silently malformed policy (``hsts_max_age=True``
sent as ``max-age=True``, ``preload="no"`` read as true, one string iterated character by character).

Messages never repeat a string the user gave unless it is a word chosen from a fixed list: a misplaced
argument may hold a secret.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from .exceptions import ConfigurationError

T = TypeVar("T")


def _shown(value: object) -> str:
    """The value for a message: numbers, flags and None as written; anything else by its type only."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def optional(check: Callable[..., T], name: str, value: object, *args: Any, **options: Any) -> T | None:
    """``None`` when ``value`` is None, else ``check(name, value, *args, **options)``.

    Example::

        optional(check_int, "max_concurrency", None, min=1)  # None
    """
    if value is None:
        return None
    return check(name, value, *args, **options)


def check_bool(name: str, value: object) -> bool:
    """``value`` when it is True or False; any other value (1, "yes", None) is a ConfigurationError.

    Example::

        check_bool("hsts_preload", True)  # True
    """
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {_shown(value)}.")
    return value


def check_int(name: str, value: object, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` when it is a whole number (never a bool, a float or a string) within ``[min, max]``.

    Example::

        check_int("hsts_max_age", 63_072_000, min=0)  # 63072000
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a whole number, not {_shown(value)}.")
    _check_range(name, value, min, max)
    return value


def check_float(
    name: str, value: object, *, min: float | None = None, max: float | None = None, positive: bool = False
) -> float:
    """``value`` as a float when it is a finite number (an int or a float, never a bool) within the bounds.

    ``positive=True`` also refuses zero.

    Example::

        check_float("window", 900, positive=True)  # 900.0
    """
    number = _finite_number(name, value)
    if positive and number <= 0:
        raise ConfigurationError(f"{name} must be greater than 0, not {number!r}.")
    _check_range(name, number, min, max)
    return float(number)


def _finite_number(name: str, value: object) -> float:
    """``value`` when it is a finite int or float (never a bool); a float subclass as a plain float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number, not {_shown(value)}.")
    if isinstance(value, float):
        return _finite_float(name, float(value))
    return value


def _finite_float(name: str, number: float) -> float:
    if not math.isfinite(number):
        raise ConfigurationError(f"{name} must be a finite number, not {number!r}.")
    return number


def _check_range(name: str, value: float, low: float | None, high: float | None) -> None:
    _check_low(name, value, low)
    _check_high(name, value, high)


def _check_low(name: str, value: float, low: float | None) -> None:
    if low is not None and value < low:
        raise ConfigurationError(f"{name} must be at least {low}, not {value!r}.")


def _check_high(name: str, value: float, high: float | None) -> None:
    if high is not None and value > high:
        raise ConfigurationError(f"{name} must be at most {high}, not {value!r}.")


def check_str(name: str, value: object, *, empty: bool = False) -> str:
    """``value`` when it is a string (not bytes); an empty one only with ``empty=True``.

    Example::

        check_str("namespace", "lockout")  # "lockout"
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, not {_shown(value)}.")
    if not value and not empty:
        raise ConfigurationError(f"{name} must not be empty.")
    return value


def check_strs(name: str, value: object) -> tuple[str, ...]:
    """``value`` as a tuple when it is a list (or another iterable) of strings, never one bare string.

    One string where a list belongs would otherwise be read character by character; a mapping would be read
    as its keys.

    Example::

        check_strs("trusted_proxies", ["10.0.0.0/8"])  # ("10.0.0.0/8",)
    """
    items = tuple(_check_list(name, value))
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{name} must hold only strings, not {_shown(item)}.")
    return items


def _check_list(name: str, value: object) -> Iterable[Any]:
    """Refuse a bare string (it would be read character by character), a mapping (read as its keys) and
    anything that is not iterable."""
    if isinstance(value, (str, bytes, bytearray)):
        raise ConfigurationError(f"{name} must be a list of strings, not one string: write {name}=[...].")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{name} must be a list of strings, not {_shown(value)}.")
    return value


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """``value`` when it is one of ``choices`` (exactly: no other type, no other spelling).

    Example::

        check_choice("on_storage_error", "deny", ("allow", "deny"))  # "deny"
    """
    if not isinstance(value, str) or value not in choices:
        raise ConfigurationError(f"{name} must be one of {sorted(choices)}, not {_shown_choice(value)}.")
    return value


def _shown_choice(value: object) -> str:
    """A wrong choice for a message: a string cut to 40 characters (a misspelt word, not a secret's length)."""
    return repr(value[:40]) if isinstance(value, str) else _shown(value)


def check_callable(name: str, value: T) -> T:
    """``value`` when it can be called.

    Example::

        check_callable("clock", time.time)
    """
    if not callable(value):
        raise ConfigurationError(f"{name} must be a function (callable), not {_shown(value)}.")
    return value


def check_mapping(name: str, value: object) -> Mapping[Any, Any]:
    """``value`` when it is a mapping (a dict).

    Example::

        check_mapping("reporting_endpoints", {"csp": "https://r.example/csp"})
    """
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a mapping (a dict), not {_shown(value)}.")
    return value


def check_instance(name: str, value: object, cls: type[T] | tuple[type[T], ...]) -> T:
    """``value`` when it is an instance of ``cls``.

    Example::

        check_instance("client_ip", bg.ClientIP(), bg.ClientIP)
    """
    if not isinstance(value, cls):
        raise ConfigurationError(f"{name} must be a {_class_names(cls)}, not {_shown(value)}.")
    return value


def _class_names(cls: type | tuple[type, ...]) -> str:
    return " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
