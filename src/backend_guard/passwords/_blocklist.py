"""The blocklist of :class:`~backend_guard.passwords.PasswordPolicy`: common passwords, shipped and your own.

The shipped list (``common-passwords.txt`` beside this module: 19,640 entries from Django's list, BSD-3-Clause,
see the file's header) is read once per process, on the first check that needs it, into a frozenset of
case-folded entries shared by every policy: a membership test is one hash lookup, whatever the list's size.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from backend_guard.exceptions import ConfigurationError
from backend_guard.passwords._rules import fold, is_periodic, trivial_cover

__all__ = ["SHIPPED_LIST", "Blocklist", "read_list", "split_affixes"]

#: The list shipped with the package (its header names the source and licence).
SHIPPED_LIST = Path(__file__).resolve().parent / "common-passwords.txt"
#: The longest affix ("2024!", "123") a common word may carry and still count as that word, not counting the
#: affix's runs of repeated or sequential characters ("password" + "1234567", "password" + "2024!!!!!!!").
_SHORT_AFFIX = 5
# What people add around a word to pass a rule: symbols ("acme2025!!" is "acme2025" + "!!"), or any characters
# that are not letters ("password1234567" is "password" + "1234567"). Each pattern matches one run at the start
# of a string; the trailing run is the leading run of the reversed string. (One pattern with a lazy stem before
# an anchored trailing run, ``^(run)(.*?)(run)$``, backtracks over every run inside the text at every step of its
# stem: quadratic, 34 ms for a 1,000-character password.)
_SYMBOLS = re.compile(r"[\W_]*")
_NOT_LETTERS = re.compile(r"[\W\d_]*")


def read_list(path: str | Path) -> frozenset[str]:
    """The entries of a list file, case-folded: one per line, ``.gz`` read compressed, ``#`` lines skipped.

    The shipped file differs in one way: its header ends at the first empty line and every line after it is an
    entry (some common passwords begin with ``#``).

    Example::

        words = read_list("banned-passwords.txt")
    """
    path = Path(path)
    lines = _read_lines(path)
    if path == SHIPPED_LIST:
        return _shipped_entries(lines)
    return frozenset(fold(line.strip()) for line in lines if _is_entry(line))


def _read_lines(path: Path) -> list[str]:
    """The lines of a list file (``.gz`` read compressed); ConfigurationError naming the file when unreadable."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"The password list {path.name!r} cannot be read: {type(exc).__name__}.") from None


def _shipped_entries(lines: list[str]) -> frozenset[str]:
    """The entries of the shipped file: every non-empty line after its header (which ends at the first empty line)."""
    return frozenset(fold(line) for line in lines[lines.index("") + 1 :] if line)


def _is_entry(line: str) -> bool:
    """Whether a line of one's own list file is an entry: not blank, not a ``#`` comment."""
    return bool(line.strip()) and not line.startswith("#")


class _Shipped:
    """The shipped list, read on first use (once per process, whichever thread gets there first)."""

    lock = threading.Lock()
    words: frozenset[str] | None = None

    @classmethod
    def get(cls) -> frozenset[str]:
        words = cls.words
        return words if words is not None else cls._load()

    @classmethod
    def _load(cls) -> frozenset[str]:
        """Read the list unless another thread did while this one waited for the lock."""
        with cls.lock:
            if cls.words is None:
                cls.words = read_list(SHIPPED_LIST)
            return cls.words


def split_affixes(text: str, *, letters_only: bool) -> tuple[str, str, str]:
    """``text`` as (prefix, stem, suffix): the affixes are its longest leading and trailing runs of symbols
    (``letters_only=False``) or of anything but letters (``letters_only=True``); the stem is what is left.

    Example::

        split_affixes("!!acme2025!!", letters_only=True)   # ("!!", "acme", "2025!!")
    """
    return _split(_NOT_LETTERS if letters_only else _SYMBOLS, text)


def _split(run: re.Pattern[str], text: str) -> tuple[str, str, str]:
    """:func:`split_affixes` with the affixes' pattern given."""
    head = _run_length(run, text)
    tail = max(head, len(text) - _run_length(run, text[::-1]))
    return text[:head], text[head:tail], text[tail:]


def _run_length(run: re.Pattern[str], text: str) -> int:
    """How many characters at the start of ``text`` ``run`` matches (linear: one class, no backtracking)."""
    match = run.match(text)
    return match.end() if match else 0


def _trivial_affix(affix: str) -> bool:
    """Whether ``affix`` adds little: at most 5 characters once its repeated or sequential runs are set aside
    (``"2024!!!!!!!"`` leaves ``"2024"``), or one unit repeated (``"1a1a1a"``)."""
    if len(affix) <= _SHORT_AFFIX:
        return True
    repeated, sequential = trivial_cover(affix)
    return len(affix) - repeated - sequential <= _SHORT_AFFIX or is_periodic(affix)


class Blocklist:
    """Common passwords to refuse: the shipped list (``shipped=True``) plus ``words`` and the lines of ``files``.

    ``folded in blocklist`` is the exact test (``folded`` already NFKC-normalised and case-folded);
    :meth:`matches` also refuses a listed word wrapped in a short or trivial affix (``"Password2024!"``,
    ``"dragon1234567"``), the usual way a common password is stretched to pass a length rule.

    Example::

        blocklist = Blocklist(words=["acme2025"], files=["banned.txt"])
        blocklist.matches("password123")   # True
    """

    def __init__(self, *, shipped: bool = True, words: Iterable[str] = (), files: Iterable[str | Path] = ()) -> None:
        if isinstance(words, str):
            raise ConfigurationError("words must be a list of passwords, not one string.")
        own = _folded_words(words)
        for path in files:
            own |= read_list(path)
        self.shipped = shipped
        self.own: frozenset[str] = frozenset(own)

    def __repr__(self) -> str:
        return f"Blocklist(shipped={self.shipped!r}, own_entries={len(self.own)})"

    def __contains__(self, folded: object) -> bool:
        return folded in self.own or (self.shipped and folded in _Shipped.get())

    def matches(self, folded: str) -> bool:
        """Whether ``folded`` is a listed password, or one wrapped in a short or trivial affix.

        Example::

            Blocklist().matches("qwerty")   # True
        """
        if folded in self:
            return True
        return self._wrapped(folded, _SYMBOLS) or self._wrapped(folded, _NOT_LETTERS)

    def _wrapped(self, folded: str, run: re.Pattern[str]) -> bool:
        """Whether ``folded`` is a listed word between trivial affixes, the affixes being runs of ``run``."""
        prefix, stem, suffix = _split(run, folded)
        if stem in (folded, "") or stem not in self:  # nothing taken off, or nothing left
            return False
        return _trivial_affix(prefix) and _trivial_affix(suffix)


def _folded_words(words: Iterable[str]) -> set[str]:
    """The words, folded; those that fold to nothing are left out."""
    return {folded for folded in map(fold, words) if folded}
