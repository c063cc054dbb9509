"""Redis's ``SCAN MATCH`` glob read as Redis reads it, for the memory store (so a pattern finds the same keys on
both stores).

The rules of Redis's ``stringmatchlen``, over a key's UTF-8 bytes: ``*`` any bytes, ``?`` one byte, ``[...]`` a
class (``^`` first negates, ``a-z`` a range either way round, ``\\`` escapes; an unclosed class runs to the end of
the pattern), and outside a class a backslash makes the next character literal.
"""

from __future__ import annotations

import functools
import re

__all__ = ["glob_regex"]

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _DASH, _BACKSLASH = b"*?[]^-\\"
#: The wildcards that stand alone: ``*`` any bytes, ``?`` one byte.
_WILDCARDS = {_STAR: b".*", _QUESTION: b"."}


def _byte(value: int) -> bytes:
    return b"\\x%02x" % value


def _escaped(p: bytes, i: int) -> bool:
    """True when the byte at ``i`` is a backslash with a byte after it to make literal."""
    return p[i] == _BACKSLASH and i + 1 < len(p)


def _literal(p: bytes, i: int) -> tuple[bytes, int]:
    """The byte at ``i`` (or, after a backslash, the next one) as a regex; the index after it."""
    if _escaped(p, i):
        i += 1
    return _byte(p[i]), i + 1


def _class_item(p: bytes, i: int) -> tuple[bytes, int]:
    """One member of a ``[...]`` class at ``i`` (an escaped byte, a range or a byte); the index after it."""
    if _escaped(p, i):
        return _byte(p[i + 1]), i + 2
    if i + 2 < len(p) and p[i + 1] == _DASH:
        low, high = sorted((p[i], p[i + 2]))
        return _byte(low) + b"-" + _byte(high), i + 3
    return _byte(p[i]), i + 1


def _class_items(p: bytes, i: int) -> tuple[list[bytes], int]:
    """The members of a class from ``i`` up to its ``]`` (or the pattern's end: an unclosed class runs there)."""
    items: list[bytes] = []
    while i < len(p) and p[i] != _CLOSE:
        item, i = _class_item(p, i)
        items.append(item)
    return items, i


def _class_regex(items: list[bytes], negate: bool) -> bytes:
    if not items:  # "[]" matches nothing, "[^]" any one byte
        return b"." if negate else b"(?!)"
    return b"[" + (b"^" if negate else b"") + b"".join(items) + b"]"


def _class(p: bytes, i: int) -> tuple[bytes, int]:
    """The class whose members start at ``i`` (just past its ``[``) as a regex; the index of its ``]`` (or the
    pattern's end, for an unclosed class)."""
    negate = i < len(p) and p[i] == _CARET
    items, end = _class_items(p, i + 1 if negate else i)
    return _class_regex(items, negate), end


def _piece(p: bytes, i: int) -> tuple[bytes, int]:
    """The pattern's element at ``i`` (a wildcard, a class or a literal byte) as a regex; the index after it."""
    c = p[i]
    if c in _WILDCARDS:
        return _WILDCARDS[c], i + 1
    if c == _OPEN:
        piece, end = _class(p, i + 1)
        return piece, end + 1
    return _literal(p, i)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[bytes]:
    """Redis's ``SCAN MATCH`` glob (``stringmatchlen``) as a regex over a key's UTF-8 bytes.

    Example::

        >>> bool(glob_regex("bg:rl:[a-c]*").fullmatch(b"bg:rl:alice"))
        True
    """
    p = pattern.encode("utf-8", "surrogatepass")
    out: list[bytes] = []
    i = 0
    while i < len(p):
        piece, i = _piece(p, i)
        out.append(piece)
    return re.compile(b"".join(out), re.DOTALL)
