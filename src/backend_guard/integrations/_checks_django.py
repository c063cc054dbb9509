"""Django system checks (``manage.py check --deploy``): weak settings of backend_guard, before they ship.

The decision is :func:`deploy_findings`, a pure function of plain values (the settings, the ``MIDDLEWARE``
list, the environment); :func:`check_deploy_settings` gathers those from Django and turns the findings into
Django's check messages. Registered when ``backend_guard.django`` is imported; add
``"backend_guard.django.BackendGuardConfig"`` to ``INSTALLED_APPS`` so that every ``manage.py check`` imports it.

On every check (``runserver`` and ``migrate`` too), :func:`startup_findings`: ``backend_guard.E001`` settings that
do not build, ``E003`` hashes too long for Django's password column; and ``E002`` a rate limit rule matching no URL
pattern (:func:`check_rule_urls`). With ``--deploy``, :func:`deploy_findings` (``W001``-``W004``,
``W006``-``W010``): a preferred password hasher under OWASP's minimum, a memory store shared by several worker processes
(each would count on its own), CORS credentials for broad origins, no HSTS from us nor Django, cross-origin
protection (or cookie tokens) on with no middleware that runs it, exception details shown with ``DEBUG`` off,
Django's own hashers kept for older hashes (``backend_guard.django.Legacy*`` refuse first what ours refuses),
Django's ``ModelBackend`` (``GuardModelBackend`` refuses it before the account is looked up), no middleware
of ours answering an ``InvalidPassword``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.apps import AppConfig

from ..config import CORSSettings, GuardSettings, SecureHeadersSettings
from ..exceptions import ConfigurationError
from ..passwords import Argon2Parameters
from ..ratelimit import check_rule_routes
from ._known_routes import django_routes
from ._passwords_django import (
    DJANGO_PASSWORD_COLUMN,
    GuardPasswordHasher,
    configured_hasher,
    encoded_length,
    pepper_settings,
)

__all__ = [
    "BackendGuardConfig",
    "Finding",
    "PreferredHasher",
    "check_deploy_settings",
    "check_rule_urls",
    "deploy_findings",
    "detected_workers",
]

#: OWASP Password Storage Cheat Sheet: PBKDF2 iterations (by digest) and the bcrypt work factor.
OWASP_PBKDF2_ITERATIONS = {"pbkdf2_sha256": 600_000, "pbkdf2_sha1": 1_300_000}
OWASP_BCRYPT_ROUNDS = 10
#: A year: the HSTS max-age below which browsers' preload lists and most guides call it short.
HSTS_MIN_SECONDS = 31_536_000
#: The middleware classes of ours that send the security headers (with HSTS).
HEADER_MIDDLEWARE = ("backend_guard.django.GuardMiddleware", "backend_guard.django.SecureHeadersMiddleware")
#: The middleware classes that refuse cross-site unsafe requests: ours (the one-part ones leave it out) and Django's.
CSRF_MIDDLEWARE = ("backend_guard.django.GuardMiddleware", "django.middleware.csrf.CsrfViewMiddleware")
#: The middleware classes that answer our errors (an InvalidPassword from a hasher: a 400) instead of Django's 500.
ERROR_MIDDLEWARE = ("backend_guard.django.GuardMiddleware", "backend_guard.django.ErrorEnvelopeMiddleware")
_WORKERS_FLAG = re.compile(r"^(?:-w|--workers)(?:=(\d+))?$")


@dataclass(frozen=True)
class Finding:
    """One weak setting: a check id (``"backend_guard.W003"``), its level, what is wrong and how to fix it."""

    id: str
    level: Literal["error", "warning"]
    msg: str
    hint: str


@dataclass(frozen=True)
class PreferredHasher:
    """What :func:`deploy_findings` needs to know of ``PASSWORD_HASHERS[0]``."""

    algorithm: str
    parameters: Argon2Parameters | None = None  # argon2 (ours or Django's)
    iterations: int | None = None  # PBKDF2
    rounds: int | None = None  # bcrypt
    encoded_length: int | None = None  # ours


def detected_workers(environ: Mapping[str, str]) -> int | None:
    """The worker processes the environment announces (``WEB_CONCURRENCY``, gunicorn's ``-w``, uvicorn's);
    None when it says nothing.

    Example::

        detected_workers({"GUNICORN_CMD_ARGS": "--bind :8000 --workers 4"})   # 4
    """
    for name in ("WEB_CONCURRENCY", "UVICORN_WORKERS"):
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    try:
        args = shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError:
        return None
    return _gunicorn_workers(args)


def _gunicorn_workers(args: list[str]) -> int | None:
    """The number of the first ``-w``/``--workers`` flag of gunicorn's arguments that gives one."""
    for index, arg in enumerate(args):
        value = _workers_value(args, index, _WORKERS_FLAG.match(arg))
        if value.isdigit():
            return int(value)
    return None


def _workers_value(args: list[str], index: int, flag: re.Match[str] | None) -> str:
    """What a workers flag at ``args[index]`` says: its ``=value``, else the next argument; "" for no flag."""
    if flag is None:
        return ""
    return flag[1] or (args[index + 1] if index + 1 < len(args) else "")


#: Hash algorithms of Django's that are below OWASP's minimum whatever their parameters.
_BROKEN_ALGORITHMS = ("md5", "unsalted_md5", "unsalted_sha1", "sha1", "crypt")


def _weak_argon2(preferred: PreferredHasher) -> bool:
    return preferred.parameters is not None and not preferred.parameters.meets_owasp()


def _weak_pbkdf2(preferred: PreferredHasher) -> bool:
    minimum = OWASP_PBKDF2_ITERATIONS.get(preferred.algorithm, 600_000)
    return preferred.iterations is not None and preferred.iterations < minimum


def _weak_bcrypt(preferred: PreferredHasher) -> bool:
    return preferred.rounds is not None and preferred.rounds < OWASP_BCRYPT_ROUNDS


def _broken_algorithm(preferred: PreferredHasher) -> bool:
    return preferred.algorithm in _BROKEN_ALGORITHMS


#: Each way the preferred hasher is below OWASP's minimum (W001), tried in this order.
_WEAK_HASHER = (_weak_argon2, _weak_pbkdf2, _weak_bcrypt, _broken_algorithm)


def _hasher_findings(preferred: PreferredHasher | None) -> list[Finding]:
    return [] if preferred is None else _weak_hasher_findings(preferred)


def _weak_hasher_findings(preferred: PreferredHasher) -> list[Finding]:
    if not any(weak(preferred) for weak in _WEAK_HASHER):
        return []
    return [
        Finding(
            "backend_guard.W001",
            "warning",
            f"PASSWORD_HASHERS[0] ({preferred.algorithm}) is below OWASP's minimum for password storage.",
            "Put backend_guard.django.GuardPasswordHasher first (argon2id at OWASP's parameters or above).",
        )
    ]


def _hash_length_findings(preferred: PreferredHasher | None) -> list[Finding]:
    if preferred is None or preferred.encoded_length is None or preferred.encoded_length <= DJANGO_PASSWORD_COLUMN:
        return []
    return [
        Finding(
            "backend_guard.E003",
            "error",
            f"GuardPasswordHasher's hashes are {preferred.encoded_length} characters, over Django's "
            f"{DJANGO_PASSWORD_COLUMN}-character password column: no password can be set, and a login that "
            "upgrades an older hash fails.",
            "Use a shorter pepper id in BACKEND_GUARD_PASSWORD_CURRENT_PEPPER and _PEPPERS (8 characters are plenty).",
        )
    ]


#: Django's hashers a project keeps for its older hashes, and ours that take their place (they refuse first what
#: GuardPasswordHasher refuses, so an over-long password answers alike for every account).
LEGACY_HASHERS = {
    f"django.contrib.auth.hashers.{name}PasswordHasher": f"backend_guard.django.Legacy{name}PasswordHasher"
    for name in ("PBKDF2", "PBKDF2SHA1", "Argon2", "BCryptSHA256", "Scrypt")
}
OURS_HASHER = "backend_guard.django.GuardPasswordHasher"
DJANGO_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
GUARD_MODEL_BACKEND = "backend_guard.django.GuardModelBackend"


def _legacy_findings(hashers: list[str], backends: list[str], middleware: list[str]) -> list[Finding]:
    """Where a password GuardPasswordHasher refuses answers otherwise for some accounts than for the rest, or as a
    500 (ours listed first)."""
    if not hashers or hashers[0] != OURS_HASHER:
        return []
    return [*_older_hasher_findings(hashers[1:]), *_backend_findings(backends), *_envelope_findings(middleware)]


def _older_hasher_findings(after_ours: list[str]) -> list[Finding]:
    django_own = [name for name in after_ours if name.startswith("django.contrib.auth.hashers.")]
    if not django_own:
        return []
    ours = [LEGACY_HASHERS[n] for n in django_own if n in LEGACY_HASHERS]
    others = [n.rsplit(".", 1)[1] for n in django_own if n not in LEGACY_HASHERS]
    hint = f"Use {', '.join(ours)} in their place." if ours else ""
    if others:
        hint += f" No backend_guard class stands for {', '.join(others)}: migrate or reset those accounts."
    return [
        Finding(
            "backend_guard.W008",
            "warning",
            f"PASSWORD_HASHERS lists Django's {', '.join(n.rsplit('.', 1)[1] for n in django_own)} after "
            "GuardPasswordHasher: an over-long password is a wrong password for an account still on such a hash "
            "and an InvalidPassword for every other one, which tells those accounts apart.",
            hint.strip(),
        )
    ]


def _backend_findings(backends: list[str]) -> list[Finding]:
    ours_at = backends.index(GUARD_MODEL_BACKEND) if GUARD_MODEL_BACKEND in backends else len(backends)
    if DJANGO_MODEL_BACKEND not in backends[:ours_at]:
        return []
    return [
        Finding(
            "backend_guard.W009",
            "warning",
            "AUTHENTICATION_BACKENDS has Django's ModelBackend (before backend_guard.django.GuardModelBackend, or "
            "without it): an account with an unusable password answers an over-long password as a wrong one, "
            "every other account (unknown ones too) with an InvalidPassword.",
            "Put backend_guard.django.GuardModelBackend first (keep ModelBackend after it until the sessions "
            "logged in under it expire: Django keeps each session's backend).",
        )
    ]


def _envelope_findings(middleware: list[str]) -> list[Finding]:
    if any(name in ERROR_MIDDLEWARE for name in middleware):
        return []
    return [
        Finding(
            "backend_guard.W010",
            "warning",
            "GuardPasswordHasher raises InvalidPassword for a password it refuses (over max_password_bytes, a "
            "NUL), and no middleware of ours answers it: every view that checks such a password answers 500.",
            "Add backend_guard.django.GuardMiddleware (or ErrorEnvelopeMiddleware) to MIDDLEWARE.",
        )
    ]


def _debug_findings(guard: GuardSettings, debug: bool) -> list[Finding]:
    if debug or not guard.errors.expose_exception_details:
        return []
    return [
        Finding(
            "backend_guard.W007",
            "warning",
            "BACKEND_GUARD['errors'] sets expose_exception_details with DEBUG off: every 500 shows its exception's "
            "message and traceback to the client.",
            "Leave expose_exception_details off outside development (it may come from "
            "BACKEND_GUARD_ERRORS__EXPOSE_EXCEPTION_DETAILS in the environment).",
        )
    ]


def _cors_findings(guard: GuardSettings) -> list[Finding]:
    cors = guard.cors
    if not (cors.active and cors.allow_credentials and _broad_origins(cors)):
        return []
    return [
        Finding(
            "backend_guard.W003",
            "warning",
            "BACKEND_GUARD['cors'] sends credentials to origins matched by a pattern, a regex or over plain HTTP: "
            "any page on one of them (a forgotten subdomain, a network attacker) reads your users' responses.",
            "List the exact https:// origins that need credentials in allow_origins.",
        )
    ]


def _broad_origins(cors: CORSSettings) -> bool:
    """Whether CORS allows origins by a regex or a pattern, or any origin over plain HTTP (or ``null``)."""
    plain = [origin for origin in cors.allow_origins if origin.startswith(("http://", "null"))]
    return bool(cors.allow_origin_regex or cors.allow_origin_patterns or plain)


def _hsts_findings(guard: GuardSettings, middleware: Iterable[str], django_hsts_seconds: int) -> list[Finding]:
    headers = guard.secure_headers
    ours_hsts = _sends_hsts(headers, middleware)
    if ours_hsts and headers.hsts_max_age < HSTS_MIN_SECONDS:
        return [
            Finding(
                "backend_guard.W004",
                "warning",
                f"BACKEND_GUARD['secure_headers'] sends HSTS for only {headers.hsts_max_age} seconds.",
                f"Set hsts_max_age to at least {HSTS_MIN_SECONDS} (a year) once HTTPS works everywhere.",
            )
        ]
    if ours_hsts or django_hsts_seconds > 0:
        return []
    return [
        Finding(
            "backend_guard.W004",
            "warning",
            "No Strict-Transport-Security header: neither backend_guard's secure headers (GuardMiddleware or "
            "SecureHeadersMiddleware with hsts on) nor Django's SECURE_HSTS_SECONDS send one.",
            "Add backend_guard.django.GuardMiddleware to MIDDLEWARE (HSTS is on by default) behind TLS.",
        )
    ]


def _sends_hsts(headers: SecureHeadersSettings, middleware: Iterable[str]) -> bool:
    """Whether our secure headers send HSTS: one of our header middlewares is installed and HSTS is on."""
    ours = any(name in HEADER_MIDDLEWARE for name in middleware)
    return ours and headers.enabled and headers.hsts and headers.hsts_max_age > 0


def _csrf_findings(guard: GuardSettings, middleware: Iterable[str]) -> list[Finding]:
    """Cross-origin protection on (``csrf``, or cookie tokens, which switch it on) and no middleware running it."""
    if not guard.csrf_active or any(name in CSRF_MIDDLEWARE for name in middleware):
        return []
    return [
        Finding(
            "backend_guard.W006",
            "warning",
            "BACKEND_GUARD switches cross-origin protection on (csrf, or token_cookies), but no middleware in "
            "MIDDLEWARE runs it: neither backend_guard.django.GuardMiddleware (the one-part middlewares leave it "
            "out) nor Django's CsrfViewMiddleware. Only TokenCookies' own routes check it; a login form or any "
            "other view accepts cross-site posts.",
            "Add backend_guard.django.GuardMiddleware to MIDDLEWARE.",
        )
    ]


def _store_findings(guard: GuardSettings, workers: int | None) -> list[Finding]:
    if not (guard.store.startswith("memory://") and workers is not None and workers > 1):
        return []
    return [
        Finding(
            "backend_guard.W002",
            "warning",
            f"BACKEND_GUARD['store'] is memory:// with {workers} worker processes: each counts rate limits, "
            "lockouts and token rotation on its own, so an attacker gets that many times the limits.",
            "Use a shared store: redis://... (see docs/storage.md).",
        )
    ]


def startup_findings(
    guard: GuardSettings | ConfigurationError, *, preferred: PreferredHasher | None = None
) -> list[Finding]:
    """What stops the app from working, for every ``manage.py check`` (``runserver`` too): settings that do not
    build (E001), hashes longer than Django's password column (E003). Pure: no Django, no environment.

    Example::

        startup_findings(ConfigurationError("passwords: below OWASP"))   # [Finding("backend_guard.E001", ...)]
    """
    if isinstance(guard, ConfigurationError):
        return [
            Finding(
                "backend_guard.E001",
                "error",
                f"backend_guard's settings do not build (settings.BACKEND_GUARD, the BACKEND_GUARD_PASSWORD_* "
                f"settings or the BACKEND_GUARD_* environment variables): {guard.detail}",
                "Fix the setting named above.",
            )
        ]
    return _hash_length_findings(preferred)


def deploy_findings(
    guard: GuardSettings,
    *,
    middleware: Iterable[str] = (),
    django_hsts_seconds: int = 0,
    workers: int | None = None,
    preferred: PreferredHasher | None = None,
    debug: bool = False,
    hashers: Iterable[str] = (),
    backends: Iterable[str] = (),
) -> list[Finding]:
    """The weak settings among these values, in check-id order (pure: no Django, no environment).

    Example::

        deploy_findings(bg.GuardSettings(), workers=4)   # W002 (memory store, 4 workers) and W004 (no HSTS)
    """
    found = _hasher_findings(preferred)
    found += _store_findings(guard, workers)
    found += _cors_findings(guard)
    found += _hsts_findings(guard, middleware, django_hsts_seconds)
    found += _csrf_findings(guard, middleware)
    found += _debug_findings(guard, debug)
    found += _legacy_findings(list(hashers), list(backends), list(middleware))
    return sorted(found, key=_finding_id)


def _finding_id(finding: Finding) -> str:
    return finding.id


def _preferred_hasher(hasher: Any) -> PreferredHasher:
    """What the findings need from a Django hasher instance, read from its public attributes."""
    algorithm = str(getattr(hasher, "algorithm", ""))
    if isinstance(hasher, GuardPasswordHasher):
        parameters, current = configured_hasher().parameters, pepper_settings()[1]
        return PreferredHasher(algorithm, parameters, encoded_length=encoded_length(parameters, current))
    if algorithm == "argon2":
        return PreferredHasher(algorithm, _argon2_parameters(hasher))
    return _other_hasher(hasher, algorithm)


def _argon2_parameters(hasher: Any) -> Argon2Parameters:
    """A Django argon2 hasher's parameters; out of our range they are below OWASP either way."""
    try:
        return Argon2Parameters(hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    except (ConfigurationError, AttributeError):
        return Argon2Parameters(1, 8)


def _other_hasher(hasher: Any, algorithm: str) -> PreferredHasher:
    """PBKDF2's iterations, bcrypt's rounds, nothing of the others."""
    if algorithm.startswith("pbkdf2"):
        return PreferredHasher(algorithm, iterations=getattr(hasher, "iterations", None))
    if algorithm.startswith("bcrypt"):
        return PreferredHasher(algorithm, rounds=getattr(hasher, "rounds", None))
    return PreferredHasher(algorithm)


def _default_hasher() -> Any:
    """``PASSWORD_HASHERS[0]``, or None when Django cannot load it (empty, a wrong path): Django says so at the
    first login; a check must not crash ``manage.py check`` and hide every other finding."""
    from django.contrib.auth.hashers import get_hasher
    from django.core.exceptions import ImproperlyConfigured

    try:
        return get_hasher("default")
    except (ImportError, IndexError, ImproperlyConfigured, TypeError, ValueError):
        return None


def _seconds(value: Any) -> int:
    """``SECURE_HSTS_SECONDS`` as Django's SecurityMiddleware would send it; 0 for a value that is no number."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The Django system check run by every ``manage.py check``: :func:`startup_findings`, as check messages.

    Example::

        from django.core import checks
        checks.run_checks()   # includes backend_guard.E001 and E003
    """
    from django.conf import settings

    guard, preferred = _guard_and_hasher(settings)
    return _messages(startup_findings(guard, preferred=preferred))


def check_deploy_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The Django system check of ``--deploy``: :func:`deploy_findings` of the project's settings, as check messages
    (nothing when the settings do not build: :func:`check_settings` says so).

    Example::

        from django.core import checks
        checks.run_checks(include_deployment_checks=True)   # includes backend_guard.W001-W004, W006-W010
    """
    from django.conf import settings

    guard, preferred = _guard_and_hasher(settings)
    if isinstance(guard, ConfigurationError):
        return []
    return _messages(
        deploy_findings(
            guard,
            middleware=list(getattr(settings, "MIDDLEWARE", None) or []),
            django_hsts_seconds=_seconds(getattr(settings, "SECURE_HSTS_SECONDS", 0)),
            workers=detected_workers(os.environ),
            preferred=preferred,
            debug=bool(getattr(settings, "DEBUG", False)),
            hashers=[str(name) for name in getattr(settings, "PASSWORD_HASHERS", None) or []],
            backends=[str(name) for name in getattr(settings, "AUTHENTICATION_BACKENDS", None) or []],
        )
    )


def _messages(findings: list[Finding]) -> list[Any]:
    """Django's check messages of ``findings``."""
    from django.core import checks

    kinds = {"error": checks.Error, "warning": checks.Warning}
    return [kinds[f.level](f.msg, hint=f.hint, id=f.id) for f in findings]


#: The middlewares that check rate limit rules against the URLconf (on the first request).
RULE_MIDDLEWARE = ("backend_guard.django.GuardMiddleware", "backend_guard.django.RateLimitMiddleware")


def check_rule_urls(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The Django system check of ``BACKEND_GUARD``'s rate limit rules against the URLconf (``backend_guard.E002``).

    A rule matching no URL pattern is refused by the middleware on the first request, and every request answers 500
    until it is fixed; ``manage.py check`` and ``runserver`` say so before that, with the near miss that does
    match. Nothing is checked when no middleware of ours runs the rules, or ``check_routes`` is off.

    Example::

        from django.core import checks
        checks.run_checks()   # includes backend_guard.E002 for BACKEND_GUARD = {"rate_limit": {"rules": [...]}}
    """
    from django.conf import settings
    from django.core import checks

    if not any(name in RULE_MIDDLEWARE for name in getattr(settings, "MIDDLEWARE", None) or []):
        return []
    guard, _ = _guard_and_hasher(settings)
    if isinstance(guard, ConfigurationError) or not guard.rate_limit.active or not guard.rate_limit.check_routes:
        return []  # a settings error is backend_guard.E001's (check_settings)
    try:
        check_rule_routes(guard.rate_limit.build_rules(), django_routes())
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="backend_guard.E002")]
    return []


def _guard_and_hasher(settings: Any) -> tuple[GuardSettings | ConfigurationError, PreferredHasher | None]:
    """``BACKEND_GUARD`` built (or why it does not build) and what the findings need of the preferred hasher."""
    try:
        guard = GuardSettings.coerce(getattr(settings, "BACKEND_GUARD", None), "settings.BACKEND_GUARD")
        hasher = _default_hasher()
        return guard, (_preferred_hasher(hasher) if hasher is not None else None)
    except ConfigurationError as exc:  # BACKEND_GUARD, or our hasher's passwords section or peppers
        return exc, None


class BackendGuardConfig(AppConfig):  # type: ignore[misc]
    """``INSTALLED_APPS`` entry that registers backend_guard's deploy checks at ``django.setup()``.

    No models, no migrations, no templates: only the checks of this module.

    Example (settings.py)::

        INSTALLED_APPS = [..., "backend_guard.django.BackendGuardConfig"]
    """

    name = "backend_guard"
    label = "backend_guard"
    verbose_name = "backend_guard"

    def ready(self) -> None:
        # django.core.checks costs ``import backend_guard.django`` 40 ms: loaded here, when Django is set up.
        from django.core import checks

        checks.register(check_deploy_settings, checks.Tags.security, deploy=True)
        checks.register(check_settings, checks.Tags.security)  # every check, runserver's too
        checks.register(check_rule_urls, checks.Tags.urls)  # every check, runserver's too
