"""The pure pattern rules of :class:`~backend_guard.passwords.PasswordPolicy`: repetition, sequences, context words.

Each function takes text that is already normalised and case-folded, does work linear in its length, and says
only yes or no (or which kind of context word matched): no message, no password ever leaves here. NIST SP
800-63B rev. 4 (3.1.1.2) asks verifiers to refuse "repetitive or sequential characters" and "context-specific
words, such as the name of the service, the username, and derivatives thereof"; how much of a password has to be
such a pattern before it is refused is this module's choice, written down in docs/passwords.md.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping

__all__ = [
    "CONTEXT_MIN_LENGTH",
    "context_tokens",
    "fold",
    "fold_context",
    "is_periodic",
    "matching_context",
    "trivial_cover",
]

#: Keyboard rows, for "qwerty"-like runs (both directions count): US, German and French layouts.
KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "yxcvbnm", "azertyuiop")
#: Shortest run of repeated or sequential characters that counts as one ("aaa", "abc", "qwe").
RUN_MIN = 3
#: Shortest part of a context value that is refused inside a password ("anna" in "anna1987..."); a whole value
#: of any length is refused when the password *is* it.
CONTEXT_MIN_LENGTH = 4

_NEXT_ON_KEYBOARD: dict[str, set[str]] = {}
for _row in KEYBOARD_ROWS:
    for _a, _b in itertools.pairwise(_row):
        _NEXT_ON_KEYBOARD.setdefault(_a, set()).add(_b)
del _row, _a, _b
_WORD_SPLIT = re.compile(r"[\W_]+")


def _step(a: str, b: str) -> int:
    """How ``b`` follows ``a``: 2 the same character, 1 the next (code point or key), -1 the previous, 0 none."""
    if a == b:
        return 2
    gap = ord(b) - ord(a)
    if gap in (1, -1):
        return gap
    if b in _NEXT_ON_KEYBOARD.get(a, ()):
        return 1
    if a in _NEXT_ON_KEYBOARD.get(b, ()):
        return -1
    return 0


def trivial_cover(text: str) -> tuple[int, int]:
    """Characters of ``text`` inside runs of at least :data:`RUN_MIN`: (in repeated runs, in sequential runs).

    A run is a stretch where each character follows the one before the same way: the same character
    (``"aaaa"``), the next or previous code point (``"abcd"``, ``"4321"``), or the next key of a keyboard row
    (``"qwerty"``). A character ending one run and starting the next counts once.

    Example::

        trivial_cover("aaaa1234")   # (4, 4)
    """
    repeated = sequential = 0
    counted_to = 0  # characters before this index are counted already
    i, last = 0, len(text) - 1
    while i < last:
        step = _step(text[i], text[i + 1])
        if step == 0:
            i += 1
            continue
        j = i + 1
        while j < last and _step(text[j], text[j + 1]) == step:
            j += 1
        if j - i + 1 >= RUN_MIN:  # the run is text[i:j + 1]
            fresh = j + 1 - max(i, counted_to)
            if step == 2:
                repeated += fresh
            else:
                sequential += fresh
            counted_to = j + 1
        i = j  # the next run may start on this one's last character ("abcba": "abc", then "cba")
    return repeated, sequential


def is_periodic(text: str) -> bool:
    """Whether ``text`` is a shorter unit said at least twice, the last time perhaps cut short (``"abab"``,
    ``"passwordpassword"``, ``"acme acme acme acme"``): its smallest period is at most half its length.

    Example::

        is_periodic("abcabcab")   # True
    """
    size = len(text)
    if size < 2:
        return False
    # Knuth-Morris-Pratt's failure function: border[i] is the longest proper prefix of text[:i + 1] that is also
    # its suffix; the smallest period of the whole text is its length minus the longest such border.
    border = [0] * size
    for i in range(1, size):
        k = border[i - 1]
        while k and text[i] != text[k]:
            k = border[k - 1]
        border[i] = k + 1 if text[i] == text[k] else 0
    return (size - border[-1]) * 2 <= size


def context_tokens(values: Iterable[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """(kind, token, whole) for each context value and its word-like parts, already case-folded by the caller.

    An e-mail address gives its local part and the labels of its domain but the last (``"example"`` from
    ``"a@mail.example.com"``); every value gives itself (``whole=True``: refused when the password equals it)
    and its parts of at least :data:`CONTEXT_MIN_LENGTH` characters (refused inside the password).

    Example::

        context_tokens([("email", "ann.lee@example.com")])
    """
    found: list[tuple[str, str, bool]] = []
    for kind, value in values:
        parts: list[str] = []
        if kind == "email" and "@" in value:
            local, _, domain = value.rpartition("@")
            labels = [label for label in domain.split(".")[:-1] if label != "www"]
            parts = [local, *labels]
            found.append((kind, local, True))
        found.append((kind, value, True))
        for part in [*parts, value]:
            for word in (part, *_WORD_SPLIT.split(part)):
                if len(word) >= CONTEXT_MIN_LENGTH:
                    found.append((kind, word, False))
    return list(dict.fromkeys(found))


def matching_context(folded: str, tokens: Iterable[tuple[str, str, bool]]) -> str | None:
    """The kind of the first context token ``folded`` is (a whole value) or contains (a part); None for none.

    Example::

        matching_context("alice-in-chains-1999", [("username", "alice", False)])   # "username"
    """
    for kind, token, whole in tokens:
        if token and (folded == token if whole else token in folded):
            return kind
    return None


def fold(text: str, *, strip: bool = True) -> str:
    """The form every comparison here uses: NFKC, case-folded, without surrounding white space (kept with
    ``strip=False``: the pattern rules, for which a password of spaces is one long run).

    Example::

        fold(" Alice\u2003")   # "alice"
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.strip() if strip else folded


def fold_context(
    context: Mapping[str, object] | None, defaults: Iterable[tuple[str, str]], limit: int
) -> list[tuple[str, str]]:
    """Context values as (kind, folded text): the policy's own (site name, words) then the call's strings, each
    read up to ``limit`` characters (the password's cap: a sign-up form's username is the caller's input, and a
    megabyte of it would cost seconds of NFKC and matching; no password holds more of it anyway)."""
    pairs = list(defaults)
    for kind, value in (context or {}).items():
        if isinstance(value, str) and value.strip():
            pairs.append((kind, fold(value[:limit])))
    return pairs
