"""Example strings a regular expression matches: what a configured origin regex is checked with.

What lives here: a walk over the parsed form of a Python regular expression that writes out a few strings it
can match, choosing host-like characters (lower-case letters first) for classes and ``.``, each alternative of
a branch (every alternative appears in some sample, however many combinations there are), and the fewest and
one more repetitions of a repeat. The CORS policy (``_regex``) parses these
samples as origins and then asks the regex about hosts derived from them (another registrable domain, an
attacker's suffix), so a regex admitting other people's sites is refused when the policy is built.

Only construction-time work: nothing here runs per request. Samples are candidates (lookarounds and back
references are not followed): the caller keeps only those the regex really matches. Samples longer than the
caller's ``max_length`` are never built (nested repeats would otherwise write out gigabytes), and a regex needing
more than ``MAX_SAMPLES`` samples to show each of its alternatives raises ``ValueError``.
"""

from __future__ import annotations

import importlib
import itertools
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MAX_SAMPLES", "regex_samples"]

# The stdlib's own regex parser (the module ``re.compile`` uses); its name changed in 3.11.
_parser: Any = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")

_PREFERRED = "abcdefghijklmnopqrstuvwxyz1234567890-.:/_"  # "1" first: ":1" is a valid port, ":0" is not
_CATEGORIES = {
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
}
_LIMIT = 16  # all combinations of two parts up to this many; beyond, each sample of either part once
MAX_SAMPLES = 512  # samples one regex may need to show every alternative; a regex needing more is not checked


def _is_literal(av: Any, code: int, ch: str) -> bool:
    return bool(av == code)


def _in_range(av: Any, code: int, ch: str) -> bool:
    return bool(av[0] <= code <= av[1])


def _in_category(av: Any, code: int, ch: str) -> bool:
    pattern = _CATEGORIES.get(av.name)
    return pattern is not None and pattern.fullmatch(ch) is not None


# How each item of a character class tests a character (NEGATE is read apart; unknown items match nothing).
_CLASS_ITEMS: dict[str, Callable[[Any, int, str], bool]] = {
    "LITERAL": _is_literal,
    "RANGE": _in_range,
    "CATEGORY": _in_category,
}


def _in_class(items: list[tuple[Any, Any]], ch: str) -> bool:
    code = ord(ch)
    negate = any(op.name == "NEGATE" for op, _ in items)
    return any(_item_matches(op.name, av, code, ch) for op, av in items) != negate


def _item_matches(name: str, av: Any, code: int, ch: str) -> bool:
    test = _CLASS_ITEMS.get(name)
    return test is not None and test(av, code, ch)


def _pick(items: list[tuple[Any, Any]]) -> list[str]:
    for ch in _PREFERRED:
        if _in_class(items, ch):
            return [ch]
    return _first_member(items)


def _first_member(items: list[tuple[Any, Any]]) -> list[str]:
    """A class of none of the usual characters: its first literal or range start (none: no sample)."""
    for op, av in items:
        if op.name == "LITERAL":
            return [chr(av)]
        if op.name == "RANGE":
            return [chr(av[0])]
    return []


def _pairs(left: list[str], right: list[str]) -> Iterable[tuple[str, str]]:
    if len(left) * len(right) <= _LIMIT:
        return itertools.product(left, right)
    # Too many combinations: every sample of each part still appears once (no alternative is left out).
    return ((left[i % len(left)], right[i % len(right)]) for i in range(max(len(left), len(right))))


def _join(left: list[str], right: list[str], max_length: int) -> list[str]:
    if not left or not right:
        return []
    return [a + b for a, b in _pairs(left, right) if len(a) + len(b) <= max_length]


def _capped(samples: list[str]) -> list[str]:
    out = list(dict.fromkeys(samples))
    if len(out) > MAX_SAMPLES:
        raise ValueError(f"more than {MAX_SAMPLES} samples would be needed to show every alternative")
    return out


def _sequence(items: Any, max_length: int) -> list[str]:
    out = [""]
    for op, av in items:
        out = _join(out, _node(op.name, av, max_length), max_length)
        if not out:
            return []
    return out


def _literal(av: Any, max_length: int) -> list[str]:
    return [chr(av)]


def _not_literal(av: Any, max_length: int) -> list[str]:
    return [next(ch for ch in _PREFERRED if ord(ch) != av)]


def _any(av: Any, max_length: int) -> list[str]:
    return ["a"]


def _in(av: Any, max_length: int) -> list[str]:
    return _pick(av)


def _nothing_written(av: Any, max_length: int) -> list[str]:
    # Anchors and lookarounds write nothing; the caller checks each sample with the regex.
    return [""]


def _branch(av: Any, max_length: int) -> list[str]:
    return _capped([sample for b in av[1] for sample in _sequence(b, max_length)])


def _subpattern(av: Any, max_length: int) -> list[str]:
    return _sequence(av[-1], max_length)


def _atomic_group(av: Any, max_length: int) -> list[str]:
    return _sequence(av, max_length)


def _group_exists(av: Any, max_length: int) -> list[str]:
    yes = _sequence(av[1], max_length)
    return _capped(yes + (_sequence(av[2], max_length) if av[2] is not None else [""]))


def _repeat(av: Any, max_length: int) -> list[str]:
    """The fewest repetitions and one more (counts over 64 are not written out)."""
    low, high, body = av
    once = _sequence(body, max_length)
    out: list[str] = []
    for count in dict.fromkeys((low, min(low + 1, high))):
        if count <= 64:
            out.extend(_repeated(once, count, max_length))
    return _capped(out)


def _repeated(once: list[str], count: int, max_length: int) -> list[str]:
    reps = [""]
    for _ in range(count):
        reps = _join(reps, once, max_length)
    return reps


# How each node of the parsed regex is written out; back references and anything unknown: no sample.
_NODES: dict[str, Callable[[Any, int], list[str]]] = {
    "LITERAL": _literal,
    "NOT_LITERAL": _not_literal,
    "ANY": _any,
    "IN": _in,
    "AT": _nothing_written,
    "ASSERT": _nothing_written,
    "ASSERT_NOT": _nothing_written,
    "BRANCH": _branch,
    "SUBPATTERN": _subpattern,
    "ATOMIC_GROUP": _atomic_group,
    "GROUPREF_EXISTS": _group_exists,
    "MAX_REPEAT": _repeat,
    "MIN_REPEAT": _repeat,
    "POSSESSIVE_REPEAT": _repeat,
}


def _node(name: str, av: Any, max_length: int) -> list[str]:
    write = _NODES.get(name)
    return write(av, max_length) if write is not None else []


def regex_samples(pattern: str, max_length: int = 512) -> list[str]:
    """A few strings ``pattern`` may match (candidates: check each with the compiled regex), none longer than
    ``max_length``. ``ValueError`` when showing every alternative would take more than ``MAX_SAMPLES`` samples.

    Example::

        >>> regex_samples(r"https://(www\\.)?example\\.(com|net)")
        ['https://example.com', 'https://example.net', 'https://www.example.com', 'https://www.example.net']
    """
    return _sequence(_parser.parse(pattern), max_length)
