"""Configuration of the wrong type is a ConfigurationError naming the setting, for every public constructor.

Never an AttributeError or a TypeError from deep inside, and never a silently malformed header or policy: a
boolean where a number belongs, a number or a string where a flag belongs, one string where a list belongs
(which would be read character by character), NaN or infinity where a duration belongs.

The table below lists every public constructor (``backend_guard.__all__``, the ASGI and WSGI shells and the
settings models) with the kind of each argument; hypothesis draws values of the wrong kinds for each one.
``test_every_public_class_is_in_the_table`` fails when a public class is added without an entry, so a new
constructor cannot ship without its checks.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backend_guard as bg
import backend_guard.asgi
import backend_guard.wsgi
from backend_guard._stack import StackParts

# --------------------------------------------------------------------------------------------------------------
# Wrong values, by the kind of argument they are wrong for
# --------------------------------------------------------------------------------------------------------------

_OBJECT = st.builds(object)
_BYTES = st.binary(min_size=1, max_size=8)
_NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
_CONTAINERS = st.one_of(st.just({}), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _kind_strategies() -> dict[str, st.SearchStrategy[Any]]:
    text = st.text(max_size=6)
    return {
        # a flag: anything but True/False (1, "yes", None were read as True or False before)
        "bool": st.one_of(st.integers(), st.sampled_from(["yes", "no", "true", "", "0"]), st.none(), st.floats(),
                          _BYTES, _OBJECT, st.lists(st.booleans(), max_size=2)),
        # a whole number: never a bool (bool is an int subclass), a float, a string, None
        "int": st.one_of(st.booleans(), st.floats(), text, st.none(), _BYTES, _OBJECT, _CONTAINERS),
        "int?": st.one_of(st.booleans(), st.floats(), text, _BYTES, _OBJECT, _CONTAINERS),
        # a number of seconds (ints welcome): finite, never a bool or a string
        "float": st.one_of(st.booleans(), _NON_FINITE, text, st.none(), _BYTES, _OBJECT, _CONTAINERS),
        "float?": st.one_of(st.booleans(), _NON_FINITE, text, _BYTES, _OBJECT, _CONTAINERS),
        # a string
        "str": st.one_of(st.integers(), st.booleans(), st.none(), st.floats(), _BYTES, _OBJECT,
                         st.lists(text, max_size=2)),
        "str?": st.one_of(st.integers(), st.booleans(), st.floats(), _BYTES, _OBJECT, st.lists(text, max_size=2)),
        # a list of strings: one bare string (iterated char by char before), bytes, numbers, non-string items
        "strs": st.one_of(st.text(min_size=1, max_size=6), _BYTES, st.integers(), st.booleans(), st.none(),
                          _OBJECT, st.lists(st.one_of(st.integers(), st.none(), _BYTES), min_size=1, max_size=3)),
        "strs?": st.one_of(st.text(min_size=1, max_size=6), _BYTES, st.integers(), st.booleans(), _OBJECT,
                           st.lists(st.one_of(st.integers(), st.none(), _BYTES), min_size=1, max_size=3)),
        # one of a few words (or numbers: an integer that some choice accepts is no wrong value, e.g. a redirect's
        # safe_status 301 or 308, which Hypothesis drew on Python 3.12)
        "choice": st.one_of(st.integers().filter(lambda n: n not in (301, 308)), st.booleans(), st.none(), _BYTES,
                            _OBJECT,
                            st.sampled_from(["nonsense", "", "x-unknown"])),
        "bool?": st.one_of(st.integers(), st.sampled_from(["yes", "no", ""]), st.floats(), _BYTES, _OBJECT),
        # a key or secret (str, bytes, a key object): never a number, a bool or an empty container
        "key": st.one_of(st.integers(), st.booleans(), st.none(), st.floats(), _OBJECT, _CONTAINERS),
        "secret?": st.one_of(st.integers(), st.booleans(), st.floats(), _OBJECT, _CONTAINERS,
                             st.lists(st.integers(), min_size=1, max_size=2)),
        "keys": st.one_of(st.integers(), st.booleans(), st.none(), st.floats(), _OBJECT, _CONTAINERS,
                          st.just([]), st.lists(st.one_of(st.integers(), st.none()), min_size=1, max_size=2)),
        # one string or a list of them (a source list, a limit list)
        "str|strs": st.one_of(st.integers(), st.booleans(), st.none(), st.floats(), _BYTES, _OBJECT,
                              st.lists(st.one_of(st.integers(), st.none(), _BYTES), min_size=1, max_size=3)),
        # a policy object or its text: never a number, a flag, bytes or a dict
        "policy?": st.one_of(st.integers(), st.booleans(), _BYTES, _OBJECT, _CONTAINERS,
                             st.lists(st.integers(), max_size=2)),
        # a settings section: a dict or the section's model, nothing else
        "section": st.one_of(st.integers(), st.booleans(), st.text(max_size=6), st.none(), _BYTES, _OBJECT,
                             st.lists(st.integers(), max_size=2)),
        # a rate limit key: 'ip', 'header:<name>' or a function
        "keyspec?": st.one_of(st.integers(), st.booleans(), _BYTES, _OBJECT, _CONTAINERS,
                              st.sampled_from(["nonsense", "", "header:", "IP address"])),
        "choice?": st.one_of(st.integers(), st.booleans(), _BYTES, _OBJECT, st.sampled_from(["nonsense", ""])),
        # a function
        "callable?": st.one_of(st.integers(), st.booleans(), text, _BYTES, _CONTAINERS),
        "callable": st.one_of(st.integers(), st.booleans(), text, st.none(), _BYTES, _CONTAINERS),
        # a mapping
        "mapping?": st.one_of(st.integers(), st.booleans(), st.text(min_size=1, max_size=6), _BYTES, _OBJECT,
                              st.lists(st.integers(), min_size=1, max_size=2)),
        # a store: a Store, a URI string or None
        "store": st.one_of(st.integers(), st.booleans(), _BYTES, _OBJECT, _CONTAINERS, st.floats()),
        # an instance of a named policy class (or None)
        "instance?": st.one_of(st.integers(), st.booleans(), st.text(max_size=6), _BYTES, _OBJECT, _CONTAINERS),
        "instance": st.one_of(st.integers(), st.booleans(), st.text(max_size=6), st.none(), _BYTES, _OBJECT,
                              _CONTAINERS),
    }  # fmt: skip


KINDS = _kind_strategies()


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover - never called
    raise AssertionError


_HMAC = "k" * 32


@dataclasses.dataclass(frozen=True)
class Ctor:
    """One public constructor: how to call it with valid values, and the kind of each argument."""

    name: str
    make: Callable[..., Any]
    args: dict[str, str]
    base: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The name the error must carry for an argument, when the message uses a dotted or section name.
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Arguments tried without ``base`` (they replace it, as ``policy=`` replaces policy keyword arguments).
    alone: frozenset[str] = frozenset()


def _shell_ctors(module: Any, app: Any) -> list[Ctor]:
    prefix = module.__name__.rsplit(".", 1)[-1]
    return [
        Ctor(
            f"{prefix}.CORSMiddleware",
            lambda **kw: module.CORSMiddleware(app, **kw),
            {"policy": "instance?", "allow_origins": "strs", "allow_credentials": "bool", "max_age": "int"},
            base={"allow_origins": ["https://app.example.com"]},
            alone=frozenset({"policy"}),
        ),
        Ctor(
            f"{prefix}.CrossOriginProtectionMiddleware",
            lambda **kw: module.CrossOriginProtectionMiddleware(app, **kw),
            {"policy": "policy?", "exempt_paths": "strs", "client_ip": "instance?"},
        ),
        Ctor(
            f"{prefix}.HTTPSRedirectMiddleware",
            lambda **kw: module.HTTPSRedirectMiddleware(app, **kw),
            {
                "exempt_paths": "strs",
                "safe_status": "int",
                "trusted_hosts": "instance?",
                "https_port": "int?",
                "policy": "instance?",
                "client_ip": "instance?",
            },
            alone=frozenset({"policy"}),
        ),
        Ctor(
            f"{prefix}.TrustedHostMiddleware",
            lambda **kw: module.TrustedHostMiddleware(app, **kw),
            {"policy": "policy?", "client_ip": "instance?"},
            base={"policy": ["example.com"]},
            aliases={"policy": "TrustedHosts"},
        ),
        Ctor(
            f"{prefix}.ErrorEnvelopeMiddleware",
            lambda **kw: module.ErrorEnvelopeMiddleware(app, **kw),
            {"policy": "instance?", "include_instance": "bool", "expose_exception_details": "bool"},
        ),
        Ctor(
            f"{prefix}.Guard",
            lambda **kw: module.Guard(app, **kw),
            {"settings": "instance?", "store": "instance?", "parts": "instance?"},
        ),
        Ctor(
            f"{prefix}.ProxyHeadersMiddleware",
            lambda **kw: module.ProxyHeadersMiddleware(app, **kw),
            {"client_ip": "instance"},
            base={"client_ip": bg.ClientIP(["10.0.0.0/8"])},
        ),
        Ctor(
            f"{prefix}.RateLimitMiddleware",
            lambda **kw: module.RateLimitMiddleware(app, **kw),
            {
                "limiter": "instance?",
                "rules": "strs",
                "limits": "str?",
                "key": "keyspec?",
                "client_ip": "instance?",
                "ipv6_prefix": "int",
                "headers": "bool?",
                "legacy_headers": "bool?",
            },
            base={"limits": "10/minute"},
        ),
        Ctor(
            f"{prefix}.RequestIdMiddleware",
            lambda **kw: module.RequestIdMiddleware(app, **kw),
            {"policy": "instance?", "header": "str", "trust_incoming": "bool", "generator": "callable?"},
        ),
        Ctor(
            f"{prefix}.SecureHeadersMiddleware",
            lambda **kw: module.SecureHeadersMiddleware(app, **kw),
            {"policy": "instance?", "client_ip": "instance?"},
        ),
    ]


CTORS: list[Ctor] = [
    Ctor(
        "Argon2Parameters",
        bg.Argon2Parameters,
        {"time_cost": "int", "memory_cost": "int", "parallelism": "int", "hash_len": "int", "salt_len": "int"},
        base={"time_cost": 2, "memory_cost": 19456},
    ),
    Ctor(
        "CORSPolicy",
        bg.CORSPolicy,
        {
            "allow_origins": "strs",
            "allow_origin_patterns": "strs",
            "allow_methods": "strs",
            "allow_headers": "strs",
            "expose_headers": "strs",
            "allow_credentials": "bool",
            "max_age": "int",
            "allow_private_network": "bool",
            "allow_origin_regex": "str?",
            "paths": "strs?",
            "preflight_status": "int",
        },
    ),
    Ctor("ClientIP", bg.ClientIP, {"trusted_proxies": "strs", "forwarded_header": "choice"}),
    Ctor(
        "ContentSecurityPolicy",
        bg.ContentSecurityPolicy,
        {"allow_missing_default_src": "bool", "default_src": "str|strs", "script_src": "str|strs"},
        base={"default_src": ["'self'"]},
        aliases={"default_src": "default-src", "script_src": "script-src"},
    ),
    Ctor(
        "ErrorPolicy",
        bg.ErrorPolicy,
        {
            "format": "choice",
            "expose_exception_details": "bool",
            "rewrite_plain_errors": "choice",
            "include_instance": "bool",
            "logger": "str",
        },
    ),
    Ctor("KeyRing", bg.KeyRing, {"keys": "keys", "algorithm": "choice"}, base={"keys": [_HMAC], "algorithm": "HS256"}),
    Ctor(
        "Lockout",
        bg.Lockout,
        {
            "store": "store",
            "max_failures": "int",
            "window": "float",
            "lockout_duration": "float",
            "backoff_factor": "float",
            "max_lockout_duration": "float",
            "backoff_reset": "float",
            "account_max_failures": "int?",
            "account_ceiling": "int",
            "ceiling_window": "float",
            "address_max_failures": "int?",
            "remember_addresses_for": "float",
            "max_remembered_addresses": "int",
            "ipv6_prefix": "int",
            "extend_while_locked": "bool",
            "generic": "bool",
            "generic_detail": "str",
            "on_storage_error": "choice",
            "secret": "secret?",
            "on_event": "callable?",
            "log_identifiers": "bool",
            "namespace": "str",
        },
    ),
    Ctor("MemoryStore", bg.MemoryStore, {"prefix": "str", "max_keys": "int", "clock": "callable"}),
    Ctor(
        "OneTimeTokens",
        bg.OneTimeTokens,
        {
            "secret_keys": "keys",
            "purpose": "str",
            "max_age": "float",
            "store": "store",
            "fingerprint": "callable?",
            "max_token_length": "int",
            "clock": "callable",
        },
        base={"secret_keys": _HMAC, "purpose": "reset"},
    ),
    Ctor(
        "PasswordHasher",
        bg.PasswordHasher,
        {
            "parameters": "instance",
            "peppers": "mapping?",
            "current_pepper": "str?",
            "normalize": "choice?",
            "max_password_bytes": "int",
            "accept_legacy": "bool",
            "allow_weak": "bool",
            "memory_budget_kib": "int",
            "max_concurrency": "int?",
            "max_verify_memory_kib": "int",
        },
    ),
    Ctor(
        "CrossOriginProtection",
        bg.CrossOriginProtection,
        {"trusted_origins": "strs", "allow_same_site": "bool", "allow_null_origin": "bool"},
    ),
    Ctor(
        "HTTPSRedirect",
        bg.HTTPSRedirect,
        {"exempt_paths": "strs", "safe_status": "int", "trusted_hosts": "instance?", "https_port": "int?"},
    ),
    Ctor("TrustedHosts", bg.TrustedHosts, {"hosts": "strs", "allow_any": "bool"}, base={"hosts": ["example.com"]}),
    Ctor(
        "PasswordPolicy",
        bg.PasswordPolicy,
        {
            "min_length": "int?",
            "mfa": "bool",
            "max_length": "int",
            "max_bytes": "int",
            "normalize": "choice?",
            "common_passwords": "bool",
            "blocklist": "strs",
            "site_name": "str?",
            "context_words": "strs",
            "check_patterns": "bool",
            "min_score": "int?",
        },
    ),
    Ctor(
        "PermissionsPolicy",
        bg.PermissionsPolicy,
        {"features": "mapping?", "camera": "str|strs", "geolocation": "str|strs"},
        base={"camera": []},
    ),
    Ctor(
        "RateLimitRule",
        bg.RateLimitRule,
        {
            "path": "str",
            "limits": "str|strs",
            "methods": "strs?",
            "key": "keyspec?",
            "scope": "str?",
            "cost": "int",
            "exempt": "bool",
            "name": "str?",
        },
        base={"path": "/login", "limits": "5/minute"},
    ),
    Ctor(
        "RateLimiter",
        bg.RateLimiter,
        {
            "store": "store",
            "strategy": "choice",
            "key_prefix": "str",
            "on_storage_error": "choice",
            "headers": "bool",
            "legacy_headers": "bool",
            "client_ip": "instance?",
        },
    ),
    Ctor(
        "RedisStore",
        bg.RedisStore,
        {
            "url": "str",
            "prefix": "str",
            "socket_timeout": "float",
            "connect_timeout": "float",
            "breaker_cooldown": "float",
            "max_connections": "int",
        },
    ),
    Ctor("RequestIdFilter", bg.RequestIdFilter, {"name": "str", "default": "str"}),
    Ctor(
        "SecureHeaders",
        bg.SecureHeaders,
        {
            "preset": "choice",
            "csp": "policy?",
            "document_csp": "policy?",
            "csp_report_only": "policy?",
            "hsts": "bool",
            "hsts_max_age": "int",
            "hsts_include_subdomains": "bool",
            "hsts_preload": "bool",
            "force_hsts": "bool",
            "x_content_type_options": "bool",
            "x_frame_options": "choice?",
            "referrer_policy": "choice?",
            "permissions_policy": "policy?",
            "cross_origin_opener_policy": "choice?",
            "cross_origin_embedder_policy": "choice?",
            "cross_origin_resource_policy": "choice?",
            "origin_agent_cluster": "bool",
            "x_permitted_cross_domain_policies": "choice?",
            "x_dns_prefetch_control": "choice?",
            "x_xss_protection": "choice?",
            "no_store_paths": "strs",
            "reporting_endpoints": "mapping?",
            "remove_headers": "strs",
        },
    ),
    Ctor(
        "TokenManager",
        bg.TokenManager,
        {
            "key": "key",
            "algorithm": "choice",
            "issuer": "str",
            "audience": "str",
            "store": "store",
            "access_ttl": "float",
            "refresh_ttl": "float",
            "leeway": "float",
            "grace_window": "float",
            "refresh_idle": "float?",
            "check_revocation": "bool",
            "revocation_on_storage_error": "choice",
            "max_token_length": "int",
            "clock": "callable",
        },
        base={"key": _HMAC, "algorithm": "HS256", "issuer": "https://api", "audience": "app"},
    ),
    Ctor(
        "TokenCookies",
        bg.TokenCookies,
        {
            "tm": "instance",
            "refresh_path": "str",
            "accept": "choice",
            "csrf": "instance",
            "client_ip": "instance?",
            "access_cookie": "str",
            "refresh_cookie": "str",
        },
        base={
            "tm": bg.TokenManager(_HMAC, "HS256", issuer="https://api", audience="app"),
            "csrf": bg.CrossOriginProtection(),
        },
    ),
    Ctor("open_store", bg.open_store, {"store": "store", "prefix": "str"}),
    Ctor("StackParts.build", StackParts.build, {"settings": "instance?", "store": "instance?"}),
    # settings models: every field, by its own dotted name
    Ctor("RequestIdSettings", bg.RequestIdSettings, {"enabled": "bool", "header": "str", "trust_incoming": "bool"}),
    Ctor(
        "SecureHeadersSettings",
        bg.SecureHeadersSettings,
        {
            "enabled": "bool",
            "preset": "choice",
            "csp": "str?",
            "document_csp": "str?",
            "csp_report_only": "str?",
            "hsts": "bool",
            "hsts_max_age": "int",
            "hsts_include_subdomains": "bool",
            "hsts_preload": "bool",
            "force_hsts": "bool",
            "x_frame_options": "str?",
            "referrer_policy": "str?",
            "permissions_policy": "str?",
            "cross_origin_opener_policy": "str?",
            "cross_origin_embedder_policy": "str?",
            "cross_origin_resource_policy": "str?",
            "no_store_paths": "strs",
            "reporting_endpoints": "mapping?",
        },
    ),
    Ctor(
        "CORSSettings",
        bg.CORSSettings,
        {
            "enabled": "bool?",
            "allow_origins": "strs",
            "allow_origin_patterns": "strs",
            "allow_origin_regex": "str?",
            "allow_methods": "strs",
            "allow_headers": "strs",
            "expose_headers": "strs",
            "allow_credentials": "bool",
            "max_age": "int",
            "allow_private_network": "bool",
            "paths": "strs?",
        },
    ),
    Ctor(
        "ErrorSettings",
        bg.ErrorSettings,
        {
            "enabled": "bool",
            "format": "choice",
            "expose_exception_details": "bool",
            "rewrite_plain_errors": "choice",
            "include_instance": "bool",
        },
    ),
    Ctor(
        "RateLimitRuleSettings",
        bg.RateLimitRuleSettings,
        {
            "path": "str",
            "limits": "str",
            "methods": "strs?",
            "key": "str?",
            "scope": "str?",
            "cost": "int",
            "exempt": "bool",
            "name": "str?",
        },
        base={"path": "/login"},
    ),
    Ctor(
        "RateLimitSettings",
        bg.RateLimitSettings,
        {
            "enabled": "bool",
            "store": "str?",
            "strategy": "str?",
            "default_limits": "str?",
            "key": "str?",
            "on_storage_error": "choice",
            "headers": "bool",
            "legacy_headers": "bool",
            "ipv6_prefix": "int",
        },
    ),
    Ctor(
        "LockoutSettings",
        bg.LockoutSettings,
        {
            "enabled": "bool",
            "store": "str?",
            "max_failures": "int",
            "window": "float",
            "lockout_duration": "float",
            "backoff_factor": "float",
            "max_lockout_duration": "float",
            "account_max_failures": "int?",
            "account_ceiling": "int",
            "address_max_failures": "int?",
            "extend_while_locked": "bool",
            "generic": "bool",
            "on_storage_error": "choice",
            "secret": "str?",
        },
    ),
    Ctor(
        "TokenSettings",
        bg.TokenSettings,
        {
            "key": "str?",
            "algorithm": "str",
            "issuer": "str",
            "audience": "str",
            "store": "str?",
            "access_ttl": "float",
            "refresh_ttl": "float",
            "leeway": "float",
            "grace_window": "float",
            "refresh_idle": "float?",
            "check_revocation": "bool",
            "revocation_on_storage_error": "choice",
        },
    ),
    Ctor(
        "PasswordSettings",
        bg.PasswordSettings,
        {
            "memory_cost": "int?",
            "time_cost": "int?",
            "parallelism": "int?",
            "normalize": "choice?",
            "max_password_bytes": "int",
            "accept_legacy": "bool",
        },
    ),
    Ctor(
        "CSRFSettings",
        bg.CSRFSettings,
        {
            "enabled": "bool?",
            "trusted_origins": "strs",
            "allow_same_site": "bool",
            "allow_null_origin": "bool",
            "exempt_paths": "strs",
        },
    ),
    Ctor(
        "HTTPSRedirectSettings",
        bg.HTTPSRedirectSettings,
        {"enabled": "bool", "exempt_paths": "strs", "safe_status": "choice", "https_port": "int?"},
    ),
    Ctor(
        "TokenCookieSettings",
        bg.TokenCookieSettings,
        {
            "enabled": "bool?",
            "refresh_path": "str",
            "accept": "choice",
            "access_cookie": "str",
            "refresh_cookie": "str",
        },
    ),
    Ctor(
        "GuardSettings",
        bg.GuardSettings,
        {
            "store": "str",
            "trusted_proxies": "strs",
            "forwarded_header": "choice",
            "request_id": "section",
            "secure_headers": "section",
            "cors": "section",
            "errors": "section",
            "rate_limit": "section",
            "lockout": "section",
            "tokens": "section",
            "passwords": "section",
        },
    ),
    *_shell_ctors(backend_guard.asgi, _asgi_app),
    *_shell_ctors(backend_guard.wsgi, _wsgi_app),
]

BY_NAME = {ctor.name: ctor for ctor in CTORS}

#: Public classes that are not configuration: errors, and the values the library hands back (never built by a
#: user from settings). Listed so that a new public class has to be put in one table or the other.
NOT_CONFIGURATION = {
    "AccountLocked", "Attempt", "AuthenticationError", "CORSDecision", "ConfigurationError", "CrossOriginRequest",
    "Forbidden", "UnknownHost",
    "GuardError", "InvalidCredentials", "InvalidHash", "InvalidPassword", "InvalidToken", "LockRecord",
    "LockoutEvent", "LockoutStatus", "OneTimePayload", "RateLimitResult", "RateLimited", "RequestView",
    "ResolvedClient", "ResponseAborted", "SigningKey", "StorageError", "TokenExpired", "TokenPair", "TokenReused",
    "WeakPassword",
}  # fmt: skip

CASES = [pytest.param(ctor, arg, id=f"{ctor.name}-{arg}") for ctor in CTORS for arg in ctor.args]


def _call(ctor: Ctor, arg: str, value: Any) -> Any:
    base = {} if arg in ctor.alone else ctor.base
    return ctor.make(**{**base, arg: value})


def test_every_public_class_is_in_the_table() -> None:
    public = {name for name in bg.__all__ if inspect.isclass(getattr(bg, name))}
    missing = public - NOT_CONFIGURATION - set(BY_NAME)
    assert not missing, f"public classes without type checks in this table: {sorted(missing)}"
    for module in (backend_guard.asgi, backend_guard.wsgi):
        prefix = module.__name__.rsplit(".", 1)[-1]
        assert {f"{prefix}.{name}" for name in module.__all__} <= set(BY_NAME)


@pytest.mark.parametrize("ctor", [pytest.param(c, id=c.name) for c in CTORS])
def test_every_constructor_accepts_its_valid_base_arguments(ctor: Ctor) -> None:
    ctor.make(**ctor.base)


@pytest.mark.parametrize(("ctor", "arg"), CASES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_wrong_type_is_a_configuration_error_naming_the_argument(ctor: Ctor, arg: str, data: st.DataObject) -> None:
    value = data.draw(KINDS[ctor.args[arg]], label=arg)
    # Any other exception (TypeError, AttributeError) fails the test, and so does a value accepted.
    with pytest.raises(bg.ConfigurationError, match=re.escape(ctor.aliases.get(arg, arg))):
        _call(ctor, arg, value)


# --------------------------------------------------------------------------------------------------------------
# The cases that reached a response before
# --------------------------------------------------------------------------------------------------------------


def test_a_boolean_hsts_max_age_is_refused_instead_of_sent_as_max_age_true() -> None:
    for make in (lambda v: bg.SecureHeaders(hsts_max_age=v), lambda v: bg.SecureHeadersSettings(hsts_max_age=v)):
        with pytest.raises(bg.ConfigurationError, match="hsts_max_age"):
            make(True)


@pytest.mark.parametrize("flag", ["hsts_preload", "hsts_include_subdomains", "force_hsts", "hsts"])
@pytest.mark.parametrize("value", ["yes", "no", 1, 0, None])
def test_a_non_bool_hsts_flag_is_refused_instead_of_read_as_true_or_false(flag: str, value: Any) -> None:
    with pytest.raises(bg.ConfigurationError, match=flag):
        bg.SecureHeaders(**{flag: value})
    with pytest.raises(bg.ConfigurationError, match=flag):
        bg.GuardSettings(secure_headers={flag: value})


def _referrer(policy: bg.SecureHeaders) -> list[str]:
    return [v for k, v in policy.headers_for(secure=True, path="/") if k == "Referrer-Policy"]


def test_a_repeated_referrer_policy_token_is_sent_once() -> None:
    policy = bg.SecureHeaders(referrer_policy="no-referrer, no-referrer")
    assert _referrer(policy) == ["no-referrer"]


@given(st.lists(st.sampled_from(["no-referrer", "origin", "same-origin", "strict-origin"]), min_size=1, max_size=6))
def test_deduplicating_referrer_policy_keeps_the_token_a_browser_would_apply(tokens: list[str]) -> None:
    (value,) = _referrer(bg.SecureHeaders(referrer_policy=", ".join(tokens)))
    sent = value.split(", ")
    assert len(sent) == len(set(sent))
    assert sent[-1] == tokens[-1]  # a browser uses the last token it knows
    assert set(sent) == set(tokens)


def test_one_string_where_a_list_belongs_is_refused_not_read_character_by_character() -> None:
    with pytest.raises(bg.ConfigurationError, match="trusted_proxies"):
        bg.ClientIP("10.0.0.1")
    with pytest.raises(bg.ConfigurationError, match="remove_headers"):
        bg.SecureHeaders(remove_headers="Server")
    with pytest.raises(bg.ConfigurationError, match="methods"):
        bg.RateLimitRule("/login", "5/minute", methods="POST")
    with pytest.raises(bg.ConfigurationError, match="allow_methods"):
        bg.CORSPolicy(allow_origins=["https://app.example.com"], allow_methods="GET")


def test_settings_errors_name_the_dotted_setting_and_never_its_value() -> None:
    with pytest.raises(bg.ConfigurationError, match=r"tokens\.access_ttl") as caught:
        bg.GuardSettings(tokens={"key": "s3cr3t-" * 8, "access_ttl": math.inf})
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(bg.ConfigurationError, match=r"rate_limit\.rules\.0\.cost"):
        bg.GuardSettings(rate_limit={"rules": [{"path": "/x", "limits": "5/minute", "cost": "2"}]})
    with pytest.raises(bg.ConfigurationError, match=r"lockout\.secret") as caught:
        bg.GuardSettings(lockout={"secret": b"bytes-secret-value-123"})
    assert "bytes-secret" not in str(caught.value)


def test_settings_keep_taking_dicts_tuples_and_environment_values() -> None:
    settings = bg.GuardSettings(
        trusted_proxies=("10.0.0.0/8",),
        cors={"allow_origins": ("https://app.example.com",), "max_age": 60},
        lockout={"window": 60},
        rate_limit={"rules": [{"path": "/login", "limits": "5/minute"}]},
    )
    assert settings.cors.allow_origins == ["https://app.example.com"]
    assert settings.lockout.window == 60.0
    env = bg.GuardSettings.from_env(
        {
            "BACKEND_GUARD_SECURE_HEADERS__HSTS_PRELOAD": "false",
            "BACKEND_GUARD_SECURE_HEADERS__HSTS_MAX_AGE": "31536000",
            "BACKEND_GUARD_CORS__ALLOW_ORIGINS": "https://a.example.com,https://b.example.com",
        }
    )
    assert env.secure_headers.hsts_preload is False
    assert env.secure_headers.hsts_max_age == 31_536_000
    with pytest.raises(bg.ConfigurationError, match=r"secure_headers\.hsts_preload"):
        bg.GuardSettings.from_env({"BACKEND_GUARD_SECURE_HEADERS__HSTS_PRELOAD": "yes"})


@pytest.mark.parametrize("value", [5, "settings", ["cors"], True])
def test_a_framework_setting_of_the_wrong_type_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(bg.ConfigurationError, match="BACKEND_GUARD"):
        bg.GuardSettings.coerce(value, "settings.BACKEND_GUARD")
