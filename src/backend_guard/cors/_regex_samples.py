"""Example strings a regular expression matches: what a configured origin regex is checked with.

What lives here: a walk over the parsed form of a Python regular expression that writes out a few strings it
can match, choosing host-like characters (lower-case letters first) for classes and ``.``, each alternative of
a branch (every alternative appears in some sample, however many combinations there are), and the fewest and
one more repetitions of a repeat. The CORS policy (``cors.py``) parses these
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
from collections.abc import Iterable
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


def _in_class(items: list[tuple[Any, Any]], ch: str) -> bool:
    code = ord(ch)
    negate = False
    found = False
    for op, av in items:
        name = op.name
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            found = found or av == code
        elif name == "RANGE":
            found = found or av[0] <= code <= av[1]
        elif name == "CATEGORY":
            pattern = _CATEGORIES.get(av.name)
            found = found or (pattern is not None and pattern.fullmatch(ch) is not None)
    return found != negate


def _pick(items: list[tuple[Any, Any]]) -> list[str]:
    for ch in _PREFERRED:
        if _in_class(items, ch):
            return [ch]
    for op, av in items:  # a class of none of the usual characters: its first literal or range start
        if op.name in ("LITERAL", "RANGE"):
            return [chr(av if op.name == "LITERAL" else av[0])]
    return []


def _join(left: list[str], right: list[str], max_length: int) -> list[str]:
    if not left or not right:
        return []
    if len(left) * len(right) <= _LIMIT:
        pairs: Iterable[tuple[str, str]] = itertools.product(left, right)
    else:  # too many combinations: every sample of each part still appears once (no alternative is left out)
        pairs = ((left[i % len(left)], right[i % len(right)]) for i in range(max(len(left), len(right))))
    return [a + b for a, b in pairs if len(a) + len(b) <= max_length]


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


def _node(name: str, av: Any, max_length: int) -> list[str]:
    if name == "LITERAL":
        return [chr(av)]
    if name == "NOT_LITERAL":
        return [next(ch for ch in _PREFERRED if ord(ch) != av)]
    if name == "ANY":
        return ["a"]
    if name == "IN":
        return _pick(av)
    if name in ("AT", "ASSERT", "ASSERT_NOT"):
        return [""]  # anchors and lookarounds write nothing; the caller checks each sample with the regex
    if name == "BRANCH":
        return _capped([sample for b in av[1] for sample in _sequence(b, max_length)])
    if name == "SUBPATTERN":
        return _sequence(av[-1], max_length)
    if name == "ATOMIC_GROUP":
        return _sequence(av, max_length)
    if name == "GROUPREF_EXISTS":
        yes = _sequence(av[1], max_length)
        return _capped(yes + (_sequence(av[2], max_length) if av[2] is not None else [""]))
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = av
        once = _sequence(body, max_length)
        out = []
        for count in dict.fromkeys((low, min(low + 1, high))):
            if count > 64:
                continue
            reps = [""]
            for _ in range(count):
                reps = _join(reps, once, max_length)
            out.extend(reps)
        return _capped(out)
    return []  # back references and anything unknown: no sample through this part


def regex_samples(pattern: str, max_length: int = 512) -> list[str]:
    """A few strings ``pattern`` may match (candidates: check each with the compiled regex), none longer than
    ``max_length``. ``ValueError`` when showing every alternative would take more than ``MAX_SAMPLES`` samples.

    Example::

        >>> regex_samples(r"https://(www\\.)?example\\.(com|net)")
        ['https://example.com', 'https://example.net', 'https://www.example.com', 'https://www.example.net']
    """
    return _sequence(_parser.parse(pattern), max_length)
