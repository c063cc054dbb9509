"""The input policy of :class:`~backend_guard.passwords.PasswordHasher`: what a password may be, and its forms.

What lives here: :func:`prepare` turns what a caller passed (``str`` or UTF-8 ``bytes``) into a :class:`Secret`
(the bytes as typed and the Unicode-normalised bytes), or refuses it with
:class:`~backend_guard.exceptions.InvalidPassword` before any hashing: not text, not valid UTF-8, a NUL, a lone
surrogate, longer than the byte limit (checked on both forms). Nothing here hashes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from ..exceptions import InvalidPassword

__all__ = ["NORMAL_FORMS", "NormalForm", "Secret", "prepare"]

NormalForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
#: The Unicode normal forms a hasher may apply (or ``None``: no normalisation).
NORMAL_FORMS: tuple[NormalForm | None, ...] = (None, "NFC", "NFD", "NFKC", "NFKD")


@dataclass(frozen=True)
class Secret:
    """A password accepted by the input policy, in the two byte forms the hasher works with.

    Example::

        prepare("ﬁx", limit=1024, normalize="NFKC").forms   # (b"fix", b"\\xef\\xac\\x81x")
    """

    raw: bytes  # UTF-8 of the password as given (legacy schemes saw this)
    normalized: bytes  # UTF-8 of the normalised password (what this library hashes)

    @property
    def forms(self) -> tuple[bytes, ...]:
        """The forms an argon2 check tries, in order: the normalised one, then the raw one when it differs.

        Their number depends on the password alone, never on the stored hash: it is the length of the plan
        every path (match, mismatch, unknown user, unusable hash) runs.
        """
        return (self.normalized,) if self.raw == self.normalized else (self.normalized, self.raw)


def _too_long(limit: int) -> InvalidPassword:
    return InvalidPassword(f"The password is longer than {limit} bytes.")


def _as_text(password: object, limit: int) -> str:
    """``password`` as ``str``: bytes are decoded as UTF-8 (after the length check); anything else is refused."""
    if isinstance(password, bytes):
        if len(password) > limit:
            raise _too_long(limit)
        try:
            password = password.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPassword("The password is not valid UTF-8.") from None
    if not isinstance(password, str):
        raise InvalidPassword("The password must be text.")
    return password


def _encoded(password: str, limit: int) -> bytes:
    """The UTF-8 of ``password``, after the checks that need no encoding (length in code points, NUL)."""
    if len(password) > limit:  # each code point is at least one byte: cheap early refusal
        raise _too_long(limit)
    if "\x00" in password:
        raise InvalidPassword("The password contains a NUL character.")
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPassword("The password is not valid Unicode text (lone surrogate).") from None


def prepare(password: object, *, limit: int, normalize: NormalForm | None) -> Secret:
    """Apply the input policy: the :class:`Secret` of ``password``, or InvalidPassword before any hashing.

    Example::

        secret = prepare("correct horse", limit=1024, normalize="NFKC")
    """
    text = _as_text(password, limit)
    raw = _encoded(text, limit)
    if len(raw) > limit:  # before NFKC, which may make the text 18 times longer (U+FDFA)
        raise _too_long(limit)
    normalized = raw if normalize is None else unicodedata.normalize(normalize, text).encode("utf-8")
    if len(normalized) > limit:
        raise _too_long(limit)
    return Secret(raw, normalized)
