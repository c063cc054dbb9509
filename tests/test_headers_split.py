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
