"""Offline Pwned Passwords: how often a password appears in a downloaded, sorted SHA-1 hash file.

Have I Been Pwned publishes its breached-password corpus for download (the ``haveibeenpwned-downloader`` tool
writes one file of ``SHA1HEX:COUNT`` lines, upper-case, sorted by hash). :class:`PwnedPasswordsFile` maps that
file into memory and binary-searches it: about 30 probes of one line each for the full corpus, no network, no
copy in memory (the operating system pages in what the probes touch).
"""

from __future__ import annotations

import hashlib
import mmap
import re
from pathlib import Path

from backend_guard.exceptions import ConfigurationError

__all__ = ["PwnedPasswordsFile"]

_LINE = re.compile(rb"[0-9A-Fa-f]{40}(?::\d+)?\r?")


class PwnedPasswordsFile:
    """A downloaded Pwned Passwords SHA-1 file (``HASH:COUNT`` lines sorted by hash), searched offline.

    The file is opened and checked (its first line must look like ``HASH`` or ``HASH:COUNT``) when this is
    built; :meth:`count` then answers from the memory map. Lines may end in CRLF; a line without a count counts
    as 1. Close it with :meth:`close` or use it as a context manager.

    Example::

        pwned = bg.passwords.PwnedPasswordsFile("pwnedpasswords.txt")
        policy = bg.PasswordPolicy(pwned=pwned)
        pwned.count("password")   # 9,000,000 and more in the 2024 corpus
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            raise ConfigurationError(
                f"The Pwned Passwords file {self.path.name!r} cannot be read: {type(exc).__name__}."
            ) from None
        first = self._map[: self._map.find(b"\n")] if self._map.find(b"\n") >= 0 else self._map[:]
        if _LINE.fullmatch(first) is None:
            self._map.close()
            raise ConfigurationError(
                f"{self.path.name!r} is not a Pwned Passwords SHA-1 file (lines of 40 hex digits, ':' and a count)."
            )

    def __repr__(self) -> str:
        return f"PwnedPasswordsFile({str(self.path)!r})"

    def __enter__(self) -> PwnedPasswordsFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Unmap the file; :meth:`count` raises ValueError afterwards.

        Example::

            pwned.close()
        """
        self._map.close()

    def count(self, password: str | bytes) -> int:
        """How many times the corpus saw ``password`` (its UTF-8 SHA-1); 0 when it is not in the file.

        Example::

            if pwned.count(password):
                ...
        """
        secret = password.encode("utf-8") if isinstance(password, str) else password
        return self.count_digest(hashlib.sha1(secret, usedforsecurity=False).hexdigest())

    def count_digest(self, digest: str) -> int:
        """:meth:`count` for an SHA-1 digest in hex (either case).

        Example::

            pwned.count_digest("5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8")
        """
        target = digest.upper().encode("ascii")
        data = self._map
        lo, hi = 0, len(data)
        while lo < hi:  # lo and hi are line starts; the answer, if any, is a line in [lo, hi)
            mid = (lo + hi) // 2
            newline = data.rfind(b"\n", lo, mid)
            start = lo if newline < 0 else newline + 1
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            key = data[start : start + 40].upper()
            if key == target:
                return _count_of(data[start:end])
            if key < target:
                lo = end + 1
            else:
                hi = start
        return 0


def _count_of(line: bytes) -> int:
    _, _, count = line.rstrip(b"\r").partition(b":")
    # A count is a few digits; a longer run (a damaged file) still means "listed", never a ValueError.
    return int(count) if count.isdigit() and len(count) <= 18 else 1
