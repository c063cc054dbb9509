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
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeGuard

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


#: How a context token is compared with the folded password: a whole value by equality, a part by containment.
_MATCH = {True: str.__eq__, False: str.__contains__}
#: Which tally of :func:`trivial_cover` a run of each step counts in: 0 repeated, 1 sequential.
_TALLY = {2: 0, 1: 1, -1: 1}


def _step(a: str, b: str) -> int:
    """How ``b`` follows ``a``: 2 the same character, 1 the next (code point or key), -1 the previous, 0 none."""
    if a == b:
        return 2
    gap = ord(b) - ord(a)
    if gap in (1, -1):
        return gap
    return _keyboard_step(a, b)


def _keyboard_step(a: str, b: str) -> int:
    """1 when ``b`` is the next key after ``a`` on a keyboard row, -1 the previous one, 0 neither."""
    if b in _NEXT_ON_KEYBOARD.get(a, ()):
        return 1
    if a in _NEXT_ON_KEYBOARD.get(b, ()):
        return -1
    return 0


def _run_end(text: str, i: int, step: int) -> int:
    """The index of the last character of the run that starts at ``text[i]`` and goes on by ``step``."""
    j, last = i + 1, len(text) - 1
    while j < last and _step(text[j], text[j + 1]) == step:
        j += 1
    return j


def trivial_cover(text: str) -> tuple[int, int]:
    """Characters of ``text`` inside runs of at least :data:`RUN_MIN`: (in repeated runs, in sequential runs).

    A run is a stretch where each character follows the one before the same way: the same character
    (``"aaaa"``), the next or previous code point (``"abcd"``, ``"4321"``), or the next key of a keyboard row
    (``"qwerty"``). A character ending one run and starting the next counts once.

    Example::

        trivial_cover("aaaa1234")   # (4, 4)
    """
    tally = [0, 0]  # repeated, sequential
    counted_to = 0  # characters before this index are counted already
    for i, j, step in _runs(text):
        tally[_TALLY[step]] += j + 1 - max(i, counted_to)
        counted_to = j + 1
    return tally[0], tally[1]


def _runs(text: str) -> Iterator[tuple[int, int, int]]:
    """(first index, last index, step) of each run of at least :data:`RUN_MIN` characters, left to right."""
    i, last = 0, len(text) - 1
    while i < last:
        step = _step(text[i], text[i + 1])
        if step == 0:
            i += 1
            continue
        j = _run_end(text, i, step)
        if j - i + 1 >= RUN_MIN:  # the run is text[i:j + 1]
            yield i, j, step
        i = j  # the next run may start on this one's last character ("abcba": "abc", then "cba")


def is_periodic(text: str) -> bool:
    """Whether ``text`` is a shorter unit said at least twice, the last time perhaps cut short (``"abab"``,
    ``"passwordpassword"``, ``"acme acme acme acme"``): its smallest period is at most half its length.

    Example::

        is_periodic("abcabcab")   # True
    """
    size = len(text)
    if size < 2:
        return False
    return (size - _longest_border(text)) * 2 <= size


def _longest_border(text: str) -> int:
    """The length of the longest proper prefix of ``text`` (at least 2 characters) that is also its suffix.

    Knuth-Morris-Pratt's failure function: border[i] is the longest proper prefix of text[:i + 1] that is also
    its suffix; the smallest period of the whole text is its length minus the longest such border.
    """
    border = [0] * len(text)
    for i in range(1, len(text)):
        border[i] = _next_border(text, border, i)
    return border[-1]


def _next_border(text: str, border: list[int], i: int) -> int:
    """border[i] of :func:`_longest_border`, from the borders before it (linear in total over all ``i``)."""
    k = border[i - 1]
    while k and text[i] != text[k]:
        k = border[k - 1]
    return k + 1 if text[i] == text[k] else 0


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
        parts = _email_parts(value) if kind == "email" else []
        found += _tagged(kind, [*parts[:1], value], whole=True)  # the local part, then the value
        found += _tagged(kind, _words([*parts, value]), whole=False)
    return list(dict.fromkeys(found))


def _tagged(kind: str, tokens: Iterable[str], *, whole: bool) -> list[tuple[str, str, bool]]:
    """(kind, token, whole) for each token."""
    return [(kind, token, whole) for token in tokens]


def _email_parts(value: str) -> list[str]:
    """An e-mail address's local part then its domain's labels but the last and "www"; [] for no address."""
    if "@" not in value:
        return []
    local, _, domain = value.rpartition("@")
    return [local, *_domain_labels(domain)]


def _domain_labels(domain: str) -> list[str]:
    """A domain's labels but the last (the top-level domain) and "www": ["mail", "example"] for mail.example.com."""
    return [label for label in domain.split(".")[:-1] if label != "www"]


def _words(parts: Iterable[str]) -> Iterable[str]:
    """Each part then its word-like pieces, those of at least :data:`CONTEXT_MIN_LENGTH` characters."""
    for part in parts:
        yield from (word for word in (part, *_WORD_SPLIT.split(part)) if len(word) >= CONTEXT_MIN_LENGTH)


def matching_context(folded: str, tokens: Iterable[tuple[str, str, bool]]) -> str | None:
    """The kind of the first context token ``folded`` is (a whole value) or contains (a part); None for none.

    Example::

        matching_context("alice-in-chains-1999", [("username", "alice", False)])   # "username"
    """
    for kind, token, whole in tokens:
        if _matches(folded, token, whole):
            return kind
    return None


def _matches(folded: str, token: str, whole: bool) -> bool:
    """Whether ``folded`` is ``token`` (a whole value) or contains it (a part); an empty token never matches."""
    return bool(token) and _MATCH[whole](folded, token)


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
        if _is_text(value):
            pairs.append((kind, fold(value[:limit])))
    return pairs


def _is_text(value: object) -> TypeGuard[str]:
    """Whether a context value is a string with something besides white space (others are not compared)."""
    return isinstance(value, str) and bool(value.strip())
