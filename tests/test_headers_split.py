"""Edge cases of the secure-headers package split (1dc8aee -> modules) that the compiled-table comparison missed.

Each test pins what the single-module package answered before the split.
"""

from __future__ import annotations

from typing import Any

import pytest

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
