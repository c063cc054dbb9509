"""The Origin-only path of CrossOriginProtection (browsers without Fetch Metadata) remembers each value's verdict
per (value, scheme, host) in a bounded cache: the remembered verdict must be exactly the full parse's, whatever
the header values (malformed, ``null``, duplicates, huge, str or bytes), and a flood of distinct values must
stay within the cache's bounds without changing any answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard._cache import bounded_caches
from backend_guard.cors._origin import parse_origin
from backend_guard.csrf._trusted import TrustedOrigins

TRUSTED = ["https://admin.example.com", "https://*.partner.example"]
#: One policy for every example: verdicts remembered across examples must still be the full parse's.
WARM = bg.CrossOriginProtection(trusted_origins=TRUSTED)
WARM_NULL = bg.CrossOriginProtection(trusted_origins=TRUSTED, allow_null_origin=True)

_NEAR = [
    "https://app.example.com", "https://app.example.com:443", "https://APP.example.com", "http://app.example.com",
    "https://app.example.com:8443", "https://admin.example.com", "https://x.partner.example", "null", "NULL",
    "https://app.example.com/", "https://app.example.com.", " https://app.example.com", "https://evil.example",
    "https://user@app.example.com", "https://xn--bcher-kva.example", "https://bücher.example", "", "https://",
    "wss://app.example.com", "https://app.example.com:0", "https://app.example.com:65536", "https://[::1]:8000",
    "https://a" * 200, "https://" + "a" * 600 + ".example",
]  # fmt: skip
_TEXT = st.one_of(st.sampled_from(_NEAR), st.text(max_size=40), st.text(alphabet="htps:/.ap1[]", max_size=30))
VALUE = st.one_of(_TEXT, _TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=30))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def oracle(scheme: str, host: str, origins: Sequence[str | bytes], allow_null: bool) -> tuple[bool, str]:
    """The Origin-only rules written out from the full parse (the documented decision table, no cache)."""
    if not origins:
        return True, "no-browser-headers"
    if len(origins) > 1:
        return False, "origin-duplicate"
    text = _text(origins[0])
    if text == "null":
        return (True, "origin-null-allowed") if allow_null else (False, "origin-null")
    origin = parse_origin(text)
    if origin is None:
        return False, "origin-malformed"
    if WARM.trusted_origins.matches(origin):
        return True, "trusted-origin"
    own = parse_origin(f"{scheme}://{host}")
    if own is None:
        return False, "host-malformed"
    return (True, "origin-same") if origin == own else (False, "origin-mismatch")


SCHEMES = ["https", "http", "wss", "ws", "", "HTTPS", "ftp"]
HOSTS = ["app.example.com", "app.example.com:443", "app.example.com:8443", "[::1]:8000", "", "a b"]


@settings(max_examples=300, deadline=None)
@given(origins=st.lists(VALUE, max_size=2), allow_null=st.booleans())
def test_the_remembered_verdict_is_the_full_parse(origins: list[str | bytes], allow_null: bool) -> None:
    """Each value against every scheme and host, on a fresh policy (a full parse) and twice on the shared one
    (the second a hit for sure): the verdicts of the decision table, whatever was remembered before."""
    warm = WARM_NULL if allow_null else WARM
    cold = bg.CrossOriginProtection(trusted_origins=TRUSTED, allow_null_origin=allow_null)
    for scheme in SCHEMES:
        page = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        for host in HOSTS:
            expected = oracle(scheme, host, origins, allow_null)
            expected_ws = oracle(page, host, origins, allow_null)
            for policy in (cold, warm, warm):
                decision = policy.check("POST", scheme=scheme, host=host, origin=origins)
                assert (decision.allowed, decision.rule) == expected
                handshake = policy.check_websocket(scheme=scheme, host=host, origin=origins)
                assert (handshake.allowed, handshake.rule) == expected_ws


def test_a_flood_of_distinct_origins_stays_bounded_and_changes_no_answer() -> None:
    before = {id(c) for c in bounded_caches()}
    policy = bg.CrossOriginProtection()
    (cache,) = [c for c in bounded_caches() if id(c) not in before and c.name == "csrf.origins"]
    own = dict(scheme="https", host="app.example.com")
    assert policy.check("POST", **own, origin=[b"https://app.example.com"]).allowed
    for i in range(5000):
        value = f"https://{i:0>300}.evil.example".encode() if i % 2 else b"https://" + b"x" * 20_000 + b"%d" % i
        assert policy.check("POST", **own, origin=[value]).rule in ("origin-mismatch", "origin-malformed")
    assert len(cache) <= cache.max_entries
    assert cache.nbytes <= cache.max_bytes
    assert policy.check("POST", **own, origin=[b"https://app.example.com"]).allowed
    assert policy.check("POST", **own, origin=[b"https://evil.example"]).rule == "origin-mismatch"


def test_a_policy_is_frozen_so_no_remembered_verdict_outlives_its_settings() -> None:
    """The verdicts are remembered per policy, so its settings cannot change under them: revoking a trusted
    origin by assignment once kept the remembered ``trusted-origin`` verdict (a cross-site request passed);
    now any assignment is refused, as CORSPolicy's, and the remembered verdict stays the settings' own."""
    policy = bg.CrossOriginProtection(trusted_origins=["https://partner.example"], allow_null_origin=True)
    partner = dict(scheme="https", host="app.example.com", origin=["https://partner.example"])
    assert policy.check("POST", **partner).rule == "trusted-origin"  # remembered
    for name, value in [
        ("trusted_origins", TrustedOrigins([])),
        ("allow_null_origin", False),
        ("allow_same_site", True),
        ("_verdicts", None),
    ]:
        with pytest.raises(AttributeError, match="frozen"):
            setattr(policy, name, value)
        with pytest.raises(AttributeError, match="frozen"):
            delattr(policy, name)
    assert policy.check("POST", **partner).rule == "trusted-origin"
    assert policy.check("POST", scheme="https", host="app.example.com", origin=["null"]).allowed
