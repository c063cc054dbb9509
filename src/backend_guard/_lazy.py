"""Names a package imports the first time they are read (PEP 562), so importing the package loads only what is
used: the one mechanism behind ``backend_guard``, ``.asgi``, ``.wsgi``, ``.tokens``, ``.flask`` and ``.django``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, namespace: dict[str, Any], table: Mapping[str, tuple[str, str]], *, submodules: bool = False
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` for the names of ``table`` (name -> (module relative to
    ``package``, attribute)); a name read once is kept in ``namespace``, so later reads skip the function.
    ``submodules``: any other name is tried as a submodule (``backend_guard.cors``).

    Example::

        __getattr__, __dir__ = lazy_names(__package__, globals(), {"Guard": ("._guard", "Guard")})
    """

    def __getattr__(name: str) -> Any:
        found = table.get(name)
        if found is None:
            return _submodule(package, name) if submodules else _missing(package, name)
        module, attribute = found
        value = getattr(importlib.import_module(module, package), attribute)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__


def _submodule(package: str, name: str) -> Any:
    """The submodule ``package.name``; AttributeError when there is none (an error inside it propagates)."""
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{name}":
            raise
        return _missing(package, name)


def _missing(package: str, name: str) -> Any:
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
