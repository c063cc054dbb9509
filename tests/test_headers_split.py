"""Edge cases of the secure-headers package split (1dc8aee -> modules) that the compiled-table comparison missed.

Each test pins what the single-module package answered before the split.
"""

from __future__ import annotations

from typing import Any

import pytest

from backend_guard.exceptions import ConfigurationError
from backend_guard.headers import SecureHeaders

N = "abcdefghijklmnopqrstuvwx"  # a well-formed 24-character nonce


@pytest.mark.parametrize(
    ("secure", "https"), [(None, False), ("", False), (0, False), (1, True), (2, True), ("on", True)]
)
def test_secure_is_read_by_its_truth_not_as_a_number(secure: Any, https: bool) -> None:
    # A standalone caller may pass what it has, e.g. ``secure=environ.get("HTTPS")`` ("on" or None): before the
    # split it was read as true or false; as a number, None and "on" raised TypeError and 2 picked the variants of
    # another kind of response (no HSTS on an HTTPS response).
    policy = SecureHeaders()
    expected = SecureHeaders().headers_for(secure=https, path="/", nonce=N)
    assert policy.headers_for(secure=secure, path="/", nonce=N) == expected
    assert policy.merge_str([], secure=secure, path="/", nonce=N) == expected
    raw = [(k.lower().encode(), v.encode()) for k, v in expected]
    assert sorted(policy.merge_raw([], secure=secure, path="/", nonce=N)) == sorted(raw)
    assert sorted(policy.added_raw(secure=secure, path="/", nonce=N)) == sorted(raw)


def test_headers_for_refuses_a_malformed_nonce_before_reading_its_other_arguments() -> None:
    # Before the split the nonce was checked first: with a malformed nonce and another wrong argument, the error
    # is the nonce's ConfigurationError, not an AttributeError from the other argument.
    policy = SecureHeaders(no_store_paths=["/account"])
    for wrong in ({"existing": [5]}, {"content_type": 5}, {"path": 5}):
        with pytest.raises(ConfigurationError, match="CSP nonce must be 16-128"):
            policy.headers_for(secure=True, nonce="short", **wrong)


def test_headers_for_reads_the_path_before_the_existing_names() -> None:
    policy = SecureHeaders(no_store_paths=["/account"])
    with pytest.raises(AttributeError, match="'int' object has no attribute 'startswith'"):
        policy.headers_for(secure=True, path=5, existing=[5])  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", ["api", "web"])
def test_one_policy_cannot_change_what_the_shared_presets_give_another(preset: str) -> None:
    # The presets are built once, at import, and shared by every SecureHeaders: nothing a caller does with one
    # policy (its keywords, what it hands out) may reach the next one's headers.
    def everything(policy: SecureHeaders) -> list[object]:
        kinds = [(s, c, n) for s in (False, True) for c in (None, "text/html") for n in (None, N)]
        return [policy.headers_for(secure=s, path="/", nonce=n, content_type=c) for s, c, n in kinds]

    before = everything(SecureHeaders(preset))
    tweaked = SecureHeaders(
        preset,
        csp="default-src *",
        document_csp=None,
        referrer_policy="unsafe-url",
        permissions_policy="camera=*",
        origin_agent_cluster=False,
        x_permitted_cross_domain_policies="all",
        x_dns_prefetch_control="on",
        x_xss_protection="1",
    )
    shared = SecureHeaders(preset)
    for policy in (tweaked, shared):
        for csp in (policy.csp, policy.document_csp):
            if csp is not None:
                csp.directives["default-src"] = ("*",)  # a copy
                with pytest.raises(AttributeError):
                    csp.extra = 1  # type: ignore[attr-defined]
        policy.headers_for(secure=True, path="/", nonce=N).clear()
        policy.added_raw(secure=True, path="/", nonce=N).clear()
    shared.csp = None  # an instance's attribute, not the preset
    assert everything(SecureHeaders(preset)) == before
    assert everything(shared) == before
