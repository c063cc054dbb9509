"""PasswordPolicy under attack: inputs chosen to cost CPU (quadratic matching, NFKC expansion, huge context values)
or to slip through a rule (white space only), and input that must never make ``reasons()`` raise."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard.passwords._blocklist import Blocklist, split_affixes

GOOD = "correct horse battery staple"
POLICY = bg.PasswordPolicy()

# The affix patterns the blocklist used first: a lazy stem before a greedy class run anchored at the end, which
# backtracks quadratically. The linear split must give the same parts.
_OLD_SYMBOLS = re.compile(r"^([\W_]*)(.*?)([\W_]*)$", re.DOTALL)
_OLD_NOT_LETTERS = re.compile(r"^([\W\d_]*)(.*?)([\W\d_]*)$", re.DOTALL)


def codes(password: object, policy: bg.PasswordPolicy = POLICY, **context: object) -> list[str]:
    return [issue.code for issue in policy.reasons(password, context or None)]


def _elapsed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


# ---- CPU: every rule linear in what the caps allow ------------------------------------------------------------


@pytest.mark.parametrize("filler", ["!", "1", " ", "_"])
def test_the_blocklist_s_affix_split_is_linear_in_the_password(filler: str) -> None:
    blocklist = Blocklist()
    blocklist.matches("warm the shipped list up")
    # A word, a long run of the affix class, a word: the old pattern backtracked over the run at every step of
    # its lazy stem (34 ms at the default 1024 characters, minutes at 64 KiB).
    value = "a" + filler * 20_000 + "a"
    assert _elapsed(lambda: blocklist.matches(value)) < 0.5
    big = bg.PasswordPolicy(max_length=1 << 16, max_bytes=1 << 16)
    assert _elapsed(lambda: big.reasons(value)) < 0.5


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZ1_ !é9-\n\u3000", max_size=24))
def test_the_linear_affix_split_gives_the_old_pattern_s_parts(text: str) -> None:
    for old, letters_only in ((_OLD_SYMBOLS, False), (_OLD_NOT_LETTERS, True)):
        match = old.match(text)
        assert match is not None
        assert split_affixes(text, letters_only=letters_only) == match.groups()


def test_a_huge_context_value_costs_what_the_byte_cap_allows() -> None:
    # A sign-up form's username is the attacker's: U+FDFA expands 18 times under NFKC.
    for value in ("\ufdfa" * 300_000, "abcd " * 200_000):
        assert _elapsed(lambda v=value: POLICY.reasons(GOOD, {"username": v})) < 0.2  # type: ignore[misc]
    # A part within the first max_bytes characters still counts.
    assert codes(GOOD + " zanzibar", username="zanzibar " + "q" * 100_000) == ["context-word"]


def test_nfkc_runs_only_on_input_within_the_byte_cap() -> None:
    big = bg.PasswordPolicy(max_length=1 << 20, max_bytes=1 << 20)
    value = "\ufdfa" * 400_000  # 400,000 code points (under the cap), 1.2 MB of UTF-8 (over it)
    assert _elapsed(lambda: big.reasons(value)) < 0.3
    assert codes(value, big) == ["too-long"]


def test_the_hasher_runs_nfkc_only_on_input_within_the_byte_cap() -> None:
    hasher = bg.PasswordHasher(bg.passwords.TEST, allow_weak=True, max_password_bytes=1 << 20)
    value = "\ufdfa" * 400_000
    start = time.perf_counter()
    with pytest.raises(bg.InvalidPassword):
        hasher.hash(value)
    assert time.perf_counter() - start < 0.3


# ---- rules an attacker (or a lazy user) slips through ---------------------------------------------------------


@pytest.mark.parametrize("password", [" " * 15, "\t" * 20, "\u3000" * 16, " " * 14 + "a", "\n" * 30])
def test_a_password_of_white_space_is_repeated_characters(password: str) -> None:
    assert "repeated-characters" in codes(password)


def test_white_space_around_a_real_password_is_still_fine() -> None:
    assert codes("  " + GOOD + " ") == []


# ---- reasons() never raises for its input ---------------------------------------------------------------------


def test_an_empty_password_with_a_strength_estimate_is_too_short_not_an_error() -> None:
    pytest.importorskip("zxcvbn")
    policy = bg.PasswordPolicy(min_score=3)
    assert codes("", policy) == ["too-short"]
    assert codes(b"", policy) == ["too-short"]
