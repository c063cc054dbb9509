"""The settings models and the parts they build agree: the same defaults, and the same bounds.

Each settings section passes on only the fields a user set, so a part's constructor is where a default lives;
the settings model repeats it so that ``GuardSettings()`` shows it (in ``repr``, JSON schema, docs). These
tests hold the two together: every settings field either maps to one constructor argument (``MAPPED``: the
defaults must be equal, or the settings' None must mean "the part's own default") or is named in
``SETTINGS_ONLY`` with the reason it has no counterpart. A new settings field in neither fails the first test.

Bounds: where a settings field has a ``ge``/``gt``/``le`` bound, a value just outside it is refused both by
the settings and by the part itself (ConfigurationError), so a part built directly is no weaker than one built
from settings.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from backend_guard import ConfigurationError
from backend_guard._logging import RequestIdPolicy
from backend_guard.asgi import CrossOriginProtectionMiddleware
from backend_guard.clientip import ClientIP
from backend_guard.config import (
    CORSSettings,
    CSRFSettings,
    ErrorSettings,
    GuardSettings,
    HTTPSRedirectSettings,
    LockoutSettings,
    PasswordSettings,
    RateLimitRuleSettings,
    RateLimitSettings,
    RequestIdSettings,
    SecureHeadersSettings,
    TokenSettings,
)
from backend_guard.cors import CORSPolicy
from backend_guard.csrf import CrossOriginProtection
from backend_guard.errors import ErrorPolicy
from backend_guard.headers import SecureHeaders
from backend_guard.hosts import HTTPSRedirect
from backend_guard.lockout import Lockout
from backend_guard.passwords import DEFAULT_PARAMETERS, Argon2Parameters, PasswordHasher
from backend_guard.ratelimit import RateLimiter, RateLimitRule, RateLimitShell
from backend_guard.tokens import TokenManager

_SECRET = "s" * 64  # an HS256 secret long enough for TokenManager


def _tokens(**kwargs: Any) -> TokenManager:
    return TokenManager(_SECRET, "HS256", issuer="i", audience="a", **kwargs)


def _argon2(**kwargs: Any) -> Argon2Parameters:
    return dataclasses.replace(DEFAULT_PARAMETERS, **kwargs)


# Settings section -> (the callable whose signature holds the defaults, how to build the part with keywords).
PARTS: dict[type[BaseModel], list[tuple[Callable[..., Any], Callable[..., Any]]]] = {
    RequestIdSettings: [(RequestIdPolicy, RequestIdPolicy)],
    SecureHeadersSettings: [(SecureHeaders, SecureHeaders)],
    CORSSettings: [(CORSPolicy, CORSPolicy)],
    ErrorSettings: [(ErrorPolicy, ErrorPolicy)],
    RateLimitRuleSettings: [(RateLimitRule, lambda **kw: RateLimitRule(**{"path": "/x", **kw}))],
    RateLimitSettings: [(RateLimiter, RateLimiter), (RateLimitShell, None)],
    LockoutSettings: [(Lockout, Lockout)],
    TokenSettings: [(TokenManager, _tokens)],
    PasswordSettings: [(PasswordHasher, PasswordHasher), (Argon2Parameters, _argon2)],
    GuardSettings: [(ClientIP, ClientIP)],
    CSRFSettings: [(CrossOriginProtection, CrossOriginProtection), (CrossOriginProtectionMiddleware, None)],
    HTTPSRedirectSettings: [(HTTPSRedirect, HTTPSRedirect)],
}

# (section, settings field) -> (part, its constructor argument). The settings default must equal the argument's
# default; a settings default of None means "not set: the part's own default" (only set fields are passed on)
# and is checked by building the part from default settings (see PART_DEFAULT_WHEN_NONE).
MAPPED: dict[tuple[type[BaseModel], str], tuple[Callable[..., Any], str]] = {
    (RequestIdSettings, "header"): (RequestIdPolicy, "header"),
    (RequestIdSettings, "trust_incoming"): (RequestIdPolicy, "trust_incoming"),
    **{
        (SecureHeadersSettings, name): (SecureHeaders, name)
        for name in (
            "preset",
            "csp",
            "document_csp",
            "csp_report_only",
            "hsts",
            "hsts_max_age",
            "hsts_include_subdomains",
            "hsts_preload",
            "force_hsts",
            "x_frame_options",
            "referrer_policy",
            "permissions_policy",
            "cross_origin_opener_policy",
            "cross_origin_embedder_policy",
            "cross_origin_resource_policy",
            "no_store_paths",
            "reporting_endpoints",
        )
    },
    **{
        (CORSSettings, name): (CORSPolicy, name)
        for name in (
            "allow_origins",
            "allow_origin_patterns",
            "allow_origin_regex",
            "allow_methods",
            "allow_headers",
            "expose_headers",
            "allow_credentials",
            "max_age",
            "allow_private_network",
            "paths",
        )
    },
    **{
        (ErrorSettings, name): (ErrorPolicy, name)
        for name in ("format", "expose_exception_details", "rewrite_plain_errors", "include_instance")
    },
    **{
        (RateLimitRuleSettings, name): (RateLimitRule, name)
        for name in ("path", "methods", "key", "scope", "cost", "exempt", "name", "custom_methods")
    },
    # RateLimitRule takes limits as a sequence (default ()); the settings take one string, "" for none.
    (RateLimitRuleSettings, "limits"): (RateLimitRule, "limits"),
    (RateLimitSettings, "strategy"): (RateLimiter, "strategy"),
    (RateLimitSettings, "on_storage_error"): (RateLimiter, "on_storage_error"),
    (RateLimitSettings, "headers"): (RateLimiter, "headers"),
    (RateLimitSettings, "legacy_headers"): (RateLimiter, "legacy_headers"),
    (RateLimitSettings, "default_limits"): (RateLimitShell, "limits"),
    (RateLimitSettings, "key"): (RateLimitShell, "key"),
    (RateLimitSettings, "rules"): (RateLimitShell, "rules"),
    (RateLimitSettings, "ipv6_prefix"): (RateLimitShell, "ipv6_prefix"),
    (RateLimitSettings, "check_routes"): (RateLimitShell, "check_routes"),
    **{
        (LockoutSettings, name): (Lockout, name)
        for name in (
            "max_failures",
            "window",
            "lockout_duration",
            "backoff_factor",
            "max_lockout_duration",
            "account_max_failures",
            "account_ceiling",
            "address_max_failures",
            "extend_while_locked",
            "generic",
            "on_storage_error",
            "secret",
        )
    },
    **{
        (TokenSettings, name): (TokenManager, name)
        for name in (
            "algorithm",
            "access_ttl",
            "refresh_ttl",
            "leeway",
            "grace_window",
            "refresh_idle",
            "check_revocation",
            "revocation_on_storage_error",
        )
    },
    (PasswordSettings, "memory_cost"): (Argon2Parameters, "memory_cost"),
    (PasswordSettings, "time_cost"): (Argon2Parameters, "time_cost"),
    (PasswordSettings, "parallelism"): (Argon2Parameters, "parallelism"),
    (PasswordSettings, "normalize"): (PasswordHasher, "normalize"),
    (PasswordSettings, "max_password_bytes"): (PasswordHasher, "max_password_bytes"),
    (PasswordSettings, "accept_legacy"): (PasswordHasher, "accept_legacy"),
    (GuardSettings, "trusted_proxies"): (ClientIP, "trusted_proxies"),
    (GuardSettings, "forwarded_header"): (ClientIP, "forwarded_header"),
    (GuardSettings, "forwarded_fields"): (ClientIP, "forwarded_fields"),
    **{
        (CSRFSettings, name): (CrossOriginProtection, name)
        for name in ("trusted_origins", "allow_same_site", "allow_null_origin")
    },
    (CSRFSettings, "exempt_paths"): (CrossOriginProtectionMiddleware, "exempt_paths"),
    **{(HTTPSRedirectSettings, name): (HTTPSRedirect, name) for name in ("exempt_paths", "safe_status", "https_port")},
}

# Settings fields with no constructor argument of their own.
SETTINGS_ONLY: set[tuple[type[BaseModel], str]] = {
    # enabled flags: whether the stack builds the part at all
    (RequestIdSettings, "enabled"),
    (SecureHeadersSettings, "enabled"),
    (CORSSettings, "enabled"),
    (ErrorSettings, "enabled"),
    (RateLimitSettings, "enabled"),
    (LockoutSettings, "enabled"),
    (CSRFSettings, "enabled"),
    (HTTPSRedirectSettings, "enabled"),
    # TrustedHosts takes the hosts (no default: at least one); the settings' empty list switches the check off
    (GuardSettings, "trusted_hosts"),
    # store URLs: a part's own store instead of the stack's shared one (GuardSettings.store)
    (RateLimitSettings, "store"),
    (LockoutSettings, "store"),
    (TokenSettings, "store"),
    (GuardSettings, "store"),
    # required by TokenManager (no default there): the settings switch tokens on only when a key is set, and
    # give issuer and audience a name of their own
    (TokenSettings, "key"),
    (TokenSettings, "issuer"),
    (TokenSettings, "audience"),
    # the sections themselves
    *((GuardSettings, name) for name, f in GuardSettings.model_fields.items() if isinstance(f.default, BaseModel)),
}

# Settings fields whose None default means "the part's own default", with how to see that default on a built part.
PART_DEFAULT_WHEN_NONE: dict[tuple[type[BaseModel], str], Callable[[Any], Any]] = {
    (SecureHeadersSettings, "csp"): lambda part: part.headers_for(secure=True),
    (SecureHeadersSettings, "document_csp"): lambda part: part.headers_for(secure=True, content_type="text/html"),
    (SecureHeadersSettings, "referrer_policy"): lambda part: part.headers_for(secure=True),
    (SecureHeadersSettings, "permissions_policy"): lambda part: part.headers_for(secure=True),
    (RateLimitSettings, "strategy"): lambda limiter: limiter.strategy,
    (PasswordSettings, "memory_cost"): lambda hasher: hasher.parameters,
    (PasswordSettings, "time_cost"): lambda hasher: hasher.parameters,
    (PasswordSettings, "parallelism"): lambda hasher: hasher.parameters,
}


def _build_default(section: type[BaseModel]) -> Any:
    """The part that default settings of ``section`` build, and the part built with no argument."""
    if section is SecureHeadersSettings:
        return SecureHeadersSettings().build(), SecureHeaders()
    if section is RateLimitSettings:
        return RateLimitSettings().build_limiter("memory://", ClientIP()), RateLimiter()
    if section is PasswordSettings:
        return PasswordSettings().build(), PasswordHasher()
    raise AssertionError(section)


def _all_fields() -> list[tuple[type[BaseModel], str]]:
    return [(section, name) for section in PARTS for name in section.model_fields]


def _id(item: tuple[type[BaseModel], str]) -> str:
    return f"{item[0].__name__}.{item[1]}"


def _plain(value: Any) -> Any:
    """Lists and tuples alike, an empty mapping as None (the constructors' ``None``: no mapping)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and not value:
        return None
    return value


def test_every_settings_field_maps_to_a_part_argument_or_is_listed_as_settings_only() -> None:
    unaccounted = [_id(item) for item in _all_fields() if item not in MAPPED and item not in SETTINGS_ONLY]
    both = [_id(item) for item in MAPPED if item in SETTINGS_ONLY]
    stale = [_id(item) for item in [*MAPPED, *SETTINGS_ONLY] if item[1] not in item[0].model_fields]
    assert (unaccounted, both, stale) == ([], [], [])


@pytest.mark.parametrize("item", list(MAPPED), ids=_id)
def test_a_settings_default_is_the_default_of_the_part_argument_it_sets(item: tuple[type[BaseModel], str]) -> None:
    section, name = item
    part, argument = MAPPED[item]
    params = inspect.signature(part).parameters
    assert argument in params, f"{part.__name__} has no argument {argument!r}"
    ours: FieldInfo = section.model_fields[name]
    theirs = params[argument].default
    if ours.is_required():
        assert theirs is inspect.Parameter.empty
        return
    if ours.default is None and item in PART_DEFAULT_WHEN_NONE:
        assert name not in section().model_fields_set  # never passed on: the part decides
        built, bare = _build_default(section)
        look = PART_DEFAULT_WHEN_NONE[item]
        assert look(built) == look(bare)
        return
    if (section, name) == (RateLimitRuleSettings, "limits"):
        assert (ours.default, theirs) == ("", ())  # both: no limits of its own
        return
    assert _plain(ours.default) == _plain(theirs)


def _bounds(info: FieldInfo) -> list[tuple[str, Any]]:
    out = []
    for meta in info.metadata:
        for kind in ("ge", "gt", "le", "lt"):
            bound = getattr(meta, kind, None)
            if bound is not None:
                out.append((kind, bound))
    return out


def _outside(kind: str, bound: Any, annotation: Any) -> Any:
    """The value just outside ``bound``: the next integer, or the next float."""
    is_int = "int" in str(annotation) and "float" not in str(annotation)
    if kind in ("ge", "gt"):
        below = bound - 1 if is_int else math.nextafter(float(bound), -math.inf)
        return bound if kind == "gt" else below
    above = bound + 1 if is_int else math.nextafter(float(bound), math.inf)
    return bound if kind == "lt" else above


BOUNDED = [
    (section, name, kind, bound)
    for section, name in _all_fields()
    if (section, name) in MAPPED
    for kind, bound in _bounds(section.model_fields[name])
]


@pytest.mark.parametrize(
    ("section", "name", "kind", "bound"), BOUNDED, ids=[f"{s.__name__}.{n}-{k}" for s, n, k, _ in BOUNDED]
)
def test_a_value_just_outside_a_settings_bound_is_refused_by_the_settings_and_by_the_part(
    section: type[BaseModel], name: str, kind: str, bound: Any
) -> None:
    value = _outside(kind, bound, section.model_fields[name].annotation)
    base = {"path": "/x"} if section is RateLimitRuleSettings else {}
    with pytest.raises(ConfigurationError, match=name):
        section(**base, **{name: value})
    part, argument = MAPPED[section, name]
    build = dict(PARTS[section])[part]
    if build is None:  # the middleware shell: built around an app
        build = lambda **kw: RateLimitShell(object(), limits="1/second", **kw)  # noqa: E731
    with pytest.raises(ConfigurationError, match=argument):
        build(**{argument: value})


# Other arguments a boundary value needs so that only its own bound is tested (the parts also check fields
# against each other: a lock no longer than its maximum, an access token no longer-lived than its refresh token).
COMPANIONS: dict[tuple[type[BaseModel], str], Callable[[Any], dict[str, Any]]] = {
    (RateLimitRuleSettings, "cost"): lambda v: {"limits": ["1/second"]},
    (LockoutSettings, "lockout_duration"): lambda v: {"max_lockout_duration": v},
    (LockoutSettings, "max_lockout_duration"): lambda v: {"lockout_duration": v},
    (LockoutSettings, "account_ceiling"): lambda v: {"max_failures": v, "account_max_failures": v},
    (TokenSettings, "refresh_ttl"): lambda v: {"access_ttl": v},
    (TokenSettings, "refresh_idle"): lambda v: {"access_ttl": v},
}


def _inside(kind: str, bound: Any, annotation: Any) -> Any:
    """The value at ``bound`` when it is allowed (``ge``, ``le``), else just inside it."""
    if kind in ("ge", "le"):
        return bound
    return _outside("le" if kind == "gt" else "ge", bound, annotation)


@pytest.mark.parametrize(
    ("section", "name", "kind", "bound"), BOUNDED, ids=[f"{s.__name__}.{n}-{k}" for s, n, k, _ in BOUNDED]
)
def test_a_value_at_a_settings_bound_is_accepted_by_the_part_so_the_settings_are_not_looser_than_it(
    section: type[BaseModel], name: str, kind: str, bound: Any
) -> None:
    value = _inside(kind, bound, section.model_fields[name].annotation)
    part, argument = MAPPED[section, name]
    build = dict(PARTS[section])[part]
    if build is None:
        build = lambda **kw: RateLimitShell(object(), limits="1/second", **kw)  # noqa: E731
    companions = COMPANIONS.get((section, name), lambda v: {})(value)
    build(**companions, **{argument: value})
