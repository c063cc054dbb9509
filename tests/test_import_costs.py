"""What importing each public module loads: a heavy dependency only when the part it serves needs it.

Each case runs in a fresh interpreter (``sys.modules`` of this test process already holds everything), imports
one module and reports which heavy dependencies ended up in ``sys.modules``. The settings need pydantic (and so
does the FastAPI integration: FastAPI imports it itself); nothing needs argon2-cffi until a password is hashed,
PyJWT until a TokenManager is built, cryptography until the token part's keys or managers are read, limits or
redis until a rate limit string or a Redis store is used. The second half checks the other side: using a part
does load what it needs, so a renamed dependency cannot make the first half pass by accident.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Import names watched: the settings' (pydantic), the parts' (PyJWT, cryptography, argon2-cffi, limits,
#: redis-py) and the web frameworks'.
HEAVY = ("pydantic", "jwt", "cryptography", "argon2", "limits", "redis", "starlette", "fastapi", "flask", "django")

#: Each public module and what it may load among HEAVY when imported; every other heavy module must stay out.
MAY_LOAD: dict[str, frozenset[str]] = {
    "backend_guard": frozenset(),
    "backend_guard.asgi": frozenset(),
    "backend_guard.wsgi": frozenset(),
    "backend_guard.fastapi": frozenset({"pydantic"}),  # FastAPI, which every user of this module runs, loads it
    "backend_guard.flask": frozenset(),
    "backend_guard.django": frozenset({"django"}),  # the signals are django.dispatch Signals
    "backend_guard.passwords": frozenset(),
    "backend_guard.tokens": frozenset(),
    "backend_guard.tokens.onetime": frozenset(),
    "backend_guard.lockout": frozenset(),
    "backend_guard.ratelimit": frozenset(),
    "backend_guard.headers": frozenset(),
    "backend_guard.cors": frozenset(),
    "backend_guard.csrf": frozenset(),
    "backend_guard.hosts": frozenset(),
    "backend_guard.errors": frozenset(),
    "backend_guard.clientip": frozenset(),
    "backend_guard.config": frozenset({"pydantic"}),
    "backend_guard.storage": frozenset(),
    "backend_guard.events": frozenset(),
    "backend_guard.exceptions": frozenset(),
    "backend_guard.request": frozenset(),
    "backend_guard.operate": frozenset({"pydantic"}),  # Operator.from_settings reads GuardSettings
}

#: Using a part (the statements, after ``import backend_guard as bg``) loads what it needs, and only that.
ON_USE: dict[str, tuple[str, frozenset[str]]] = {
    "hash a password": (
        'bg.PasswordHasher(bg.passwords.TEST, allow_weak=True).hash("correct horse")',
        frozenset({"argon2"}),
    ),
    "build a token manager": (
        'bg.TokenManager("k" * 64, "HS256", issuer="i", audience="a")',
        frozenset({"jwt", "cryptography"}),
    ),
    "build the settings": ("bg.GuardSettings()", frozenset({"pydantic"})),
    "parse a rate limit": ('bg.parse_limits(["5/minute"])', frozenset({"limits"})),
    "read the flask Guard": ("import backend_guard.flask; backend_guard.flask.Guard", frozenset({"pydantic"})),
    "read the django middleware": (
        "import backend_guard.django; backend_guard.django.GuardMiddleware",
        frozenset({"django", "pydantic"}),
    ),
}

_CHILD = """
import importlib, json, sys
{setup}
print(json.dumps([name for name in {heavy!r} if name in sys.modules]))
"""


def _loaded(setup: str) -> set[str]:
    code = _CHILD.format(setup=setup, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", sorted(MAY_LOAD))
def test_importing_a_public_module_loads_no_heavy_dependency_its_part_does_not_need(module: str) -> None:
    extra = _loaded(f"importlib.import_module({module!r})") - MAY_LOAD[module]
    assert not extra, f"import {module} loads {sorted(extra)}"


@pytest.mark.parametrize("use", sorted(ON_USE))
def test_using_a_part_loads_what_it_needs_and_nothing_else(use: str) -> None:
    statements, needs = ON_USE[use]
    assert _loaded(f"import backend_guard as bg\n{statements}") == needs
