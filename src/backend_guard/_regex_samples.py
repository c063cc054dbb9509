"""Example strings a regular expression matches: what a configured origin regex is checked with.

What lives here: a walk over the parsed form of a Python regular expression that writes out a few strings it
can match, choosing host-like characters (lower-case letters first) for classes and ``.``, each alternative of
a branch, and the fewest and one more repetitions of a repeat. The CORS policy (``cors.py``) parses these
samples as origins and then asks the regex about hosts derived from them (another registrable domain, an
attacker's suffix), so a regex admitting other people's sites is refused when the policy is built.

Only construction-time work: nothing here runs per request. Samples are candidates (lookarounds and back
references are not followed): the caller keeps only those the regex really matches.
"""

from __future__ import annotations

import importlib
import itertools
import re
import sys
from typing import Any

__all__ = ["regex_samples"]

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
_LIMIT = 48  # samples kept at each step: enough for every branch of an origin regex, bounded for any other


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


def _join(left: list[str], right: list[str]) -> list[str]:
    return [a + b for a, b in itertools.islice(itertools.product(left, right), _LIMIT)]


def _sequence(items: Any) -> list[str]:
    out = [""]
    for op, av in items:
        out = _join(out, _node(op.name, av))
        if not out:
            return []
    return out


def _node(name: str, av: Any) -> list[str]:
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
        return list(itertools.islice(itertools.chain.from_iterable(_sequence(b) for b in av[1]), _LIMIT))
    if name == "SUBPATTERN":
        return _sequence(av[-1])
    if name == "ATOMIC_GROUP":
        return _sequence(av)
    if name == "GROUPREF_EXISTS":
        yes = _sequence(av[1])
        return yes + (_sequence(av[2]) if av[2] is not None else [""])
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = av
        once = _sequence(body)
        out: list[str] = []
        for count in dict.fromkeys((low, min(low + 1, high))):
            if count > 64:
                continue
            reps = [""]
            for _ in range(count):
                reps = _join(reps, once)
            out.extend(reps)
        return out[:_LIMIT]
    return []  # back references and anything unknown: no sample through this part


def regex_samples(pattern: str) -> list[str]:
    """A few strings ``pattern`` may match (candidates: check each with the compiled regex).

    Example::

        >>> regex_samples(r"https://(www\\.)?example\\.(com|net)")
        ['https://example.com', 'https://example.net', 'https://www.example.com', 'https://www.example.net']
    """
    return _sequence(_parser.parse(pattern))
