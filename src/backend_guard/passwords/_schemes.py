"""Stored-hash formats for :mod:`backend_guard.passwords`: parsing, peppers and the legacy verifiers.

What lives here: turning a stored string into a plain description (:class:`ParsedArgon2` or
:class:`ParsedLegacy`), the HMAC pepper step, and the verification of legacy schemes (bcrypt and Django's
``pbkdf2_sha256`` / ``bcrypt_sha256`` / ``argon2`` formats). No policy: whether a hash is weak, and what to do
about it, is decided in ``_hasher.py``. Nothing here ever puts a password, a pepper or a hash in a message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from backend_guard.exceptions import ConfigurationError

__all__ = [
    "ARGON2_ID",
    "PEPPER_ID_RE",
    "ParsedArgon2",
    "ParsedLegacy",
    "add_keyid",
    "apply_pepper",
    "check_peppers",
    "parse_hash",
    "verify_legacy",
]

ARGON2_ID = "argon2id"
BCRYPT_MAX_BYTES = 72
#: Upper bound on a stored PBKDF2 iteration count (Django 5.2 uses 1,000,000): beyond it the hash is unusable.
PBKDF2_MAX_ITERATIONS = 10_000_000
#: Upper bound on a stored bcrypt cost (2**16 rounds, seconds of work): ``$2b$31$`` would take a day or more.
BCRYPT_MAX_COST = 16
#: A pepper id goes into the PHC ``keyid`` parameter, so it keeps to a plain, PHC-safe alphabet.
PEPPER_ID_RE = re.compile(r"[A-Za-z0-9]{1,16}")
MIN_PEPPER_BYTES = 16

_B64 = r"[A-Za-z0-9+/]+"
# PHC string as written by libargon2, plus the optional ``keyid`` parameter this library adds for peppers.
# Decimals without leading zeros: libargon2 refuses "v=019" or "m=064" when it decodes the string.
_ARGON2_RE = re.compile(
    r"\$(?P<type>argon2id|argon2i|argon2d)"
    r"(?:\$v=(?P<version>0|[1-9]\d{0,2}))?"
    r"\$m=(?P<m>0|[1-9]\d{0,9}),t=(?P<t>0|[1-9]\d{0,9}),p=(?P<p>0|[1-9]\d{0,2})"
    r"(?:,keyid=(?P<keyid>[A-Za-z0-9]{1,16}))?"
    rf"\$(?P<salt>{_B64})\$(?P<hash>{_B64})"
)
_BCRYPT_RE = re.compile(r"\$2[aby]\$(?:0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
_PBKDF2_RE = re.compile(
    r"pbkdf2_sha256\$(?P<iterations>[1-9]\d{0,8})\$(?P<salt>[^$]{1,256})\$(?P<hash>[A-Za-z0-9+/=]{44})"
)

LegacyScheme = Literal["bcrypt", "bcrypt_sha256", "pbkdf2_sha256", "django_argon2"]


@dataclass(frozen=True)
class ParsedArgon2:
    """A stored argon2 hash in plain values; ``encoded`` is the PHC string libargon2 accepts (no keyid)."""

    type: str
    version: int
    time_cost: int
    memory_cost: int
    parallelism: int
    salt_len: int
    hash_len: int
    pepper_id: str | None
    encoded: bytes


@dataclass(frozen=True)
class ParsedLegacy:
    """A stored hash in a legacy scheme; ``body`` is what that scheme's verifier takes."""

    scheme: LegacyScheme
    body: str


# The last character of a canonical unpadded base64 field, by ``len % 4``: its unused low bits are zero.
# libargon2 refuses any other (as it refuses ``len % 4 == 1``), so such a hash is no argon2 hash here either.
_B64_LAST_CHAR = {0: None, 2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _b64_len(text: str) -> int:
    """Bytes held by unpadded standard base64 ``text``."""
    return len(text) * 3 // 4


def _canonical_b64(text: str) -> bool:
    """Whether ``text`` is unpadded standard base64 that libargon2 decodes (one spelling per value)."""
    rest = len(text) % 4
    if rest == 1:
        return False
    last = _B64_LAST_CHAR[rest]
    return last is None or text[-1] in last


def _parse_argon2(stored: str) -> ParsedArgon2 | None:
    match = _ARGON2_RE.fullmatch(stored)
    if match is None or not _canonical_b64(match["salt"]) or not _canonical_b64(match["hash"]):
        return None
    version = int(match["version"]) if match["version"] is not None else 0x10
    encoded = stored
    if match["keyid"] is not None:
        encoded = stored.replace(f",keyid={match['keyid']}", "", 1)
    return ParsedArgon2(
        type=match["type"],
        version=version,
        time_cost=int(match["t"]),
        memory_cost=int(match["m"]),
        parallelism=int(match["p"]),
        salt_len=_b64_len(match["salt"]),
        hash_len=_b64_len(match["hash"]),
        pepper_id=match["keyid"],
        encoded=encoded.encode("ascii"),
    )


def _ascii_text(stored: object) -> str | None:
    """A stored hash as ASCII text of at most 1024 characters; ``None`` for anything else."""
    if isinstance(stored, bytes):
        try:
            stored = stored.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(stored, str) or len(stored) > 1024 or not stored.isascii():
        return None
    return stored


def _bcrypt(scheme: LegacyScheme, body: str) -> ParsedLegacy | None:
    return ParsedLegacy(scheme, body) if _BCRYPT_RE.fullmatch(body) else None


def _pbkdf2(body: str) -> ParsedLegacy | None:
    return ParsedLegacy("pbkdf2_sha256", body) if _PBKDF2_RE.fullmatch(body) else None


def _django_argon2(body: str) -> ParsedLegacy | None:
    # Django's Argon2PasswordHasher: "argon2" + the PHC string without its leading "$".
    inner = _parse_argon2(body)
    if inner is None or inner.pepper_id is not None:
        return None
    return ParsedLegacy("django_argon2", body)


# Each format by the prefix that announces it (no prefix is a prefix of another) and the parser of what
# follows the part of the prefix that is not the format's own text.
_FORMATS: tuple[tuple[str, int, Callable[[str], ParsedArgon2 | ParsedLegacy | None]], ...] = (
    ("$argon2", 0, _parse_argon2),
    ("$2", 0, functools.partial(_bcrypt, "bcrypt")),
    ("pbkdf2_sha256$", 0, _pbkdf2),
    ("bcrypt_sha256$$2", len("bcrypt_sha256$"), functools.partial(_bcrypt, "bcrypt_sha256")),
    ("bcrypt$$2", len("bcrypt$"), functools.partial(_bcrypt, "bcrypt")),
    ("argon2$argon2", len("argon2"), _django_argon2),
)


def parse_hash(stored: object) -> ParsedArgon2 | ParsedLegacy | None:
    """Recognise a stored hash; ``None`` when it is in no known format (the caller decides what that means)."""
    text = _ascii_text(stored)
    if text is None:
        return None
    for prefix, skip, parse in _FORMATS:
        if text.startswith(prefix):
            return parse(text[skip:])
    return None


def _check_pepper_table(peppers: Mapping[str, bytes]) -> None:
    for pepper_id, key in peppers.items():
        if not isinstance(pepper_id, str) or not PEPPER_ID_RE.fullmatch(pepper_id):
            raise ConfigurationError("A pepper id must be 1 to 16 ASCII letters or digits.")
        if not isinstance(key, bytes) or len(key) < MIN_PEPPER_BYTES:
            raise ConfigurationError(f"Pepper {pepper_id!r} must be bytes of at least {MIN_PEPPER_BYTES} random bytes.")


def _current_pepper(peppers: Mapping[str, bytes], current: str | None) -> str:
    if current is None:
        if len(peppers) > 1:
            raise ConfigurationError("Several peppers are configured: name the one for new hashes in current_pepper.")
        return next(iter(peppers))
    if current not in peppers:
        raise ConfigurationError(f"current_pepper {current!r} is not one of the configured peppers.")
    return current


def check_peppers(peppers: Mapping[str, bytes] | None, current: str | None) -> str | None:
    """Validate the pepper table and return the id new hashes are made with (``None``: no pepper).

    Raises ConfigurationError for an unsafe or ambiguous table; the messages name ids, never keys.
    """
    if not peppers:
        if current is not None:
            raise ConfigurationError("current_pepper is set but no peppers are configured.")
        return None
    _check_pepper_table(peppers)
    return _current_pepper(peppers, current)


def apply_pepper(key: bytes, password: bytes) -> bytes:
    """The secret handed to argon2 under a pepper: HMAC-SHA256 keyed by the pepper (fixed 32 bytes)."""
    return hmac.new(key, password, hashlib.sha256).digest()


def add_keyid(encoded: str, pepper_id: str) -> str:
    """Insert ``,keyid=<id>`` after the ``m=,t=,p=`` parameters of a PHC string made by libargon2."""
    head, sep, rest = encoded.partition(",p=")
    digits, dollar, tail = rest.partition("$")
    return f"{head}{sep}{digits},keyid={pepper_id}{dollar}{tail}"


def _bcrypt_check(password: bytes, body: str) -> bool:
    if int(body[4:6]) > BCRYPT_MAX_COST:  # "$2b$NN$...": parse_hash matched exactly this shape
        raise ValueError("cost out of range")
    import bcrypt  # optional dependency, imported on first use

    too_long = len(password) > BCRYPT_MAX_BYTES
    # Do the same work for an over-long password (bcrypt >= 5 raises; older versions silently truncated, which
    # would accept any password sharing the first 72 bytes), then refuse it.
    ok = bcrypt.checkpw(password[:BCRYPT_MAX_BYTES], body.encode("ascii"))
    return ok and not too_long


def _pbkdf2_check(password: bytes, body: str) -> bool:
    match = _PBKDF2_RE.fullmatch(body)
    assert match is not None  # parse_hash only hands over matching bodies
    iterations = int(match["iterations"])
    if iterations > PBKDF2_MAX_ITERATIONS:
        raise ValueError("iteration count out of range")
    try:
        expected = base64.b64decode(match["hash"], validate=True)
    except binascii.Error:
        raise ValueError("malformed digest") from None
    actual = hashlib.pbkdf2_hmac("sha256", password, match["salt"].encode("utf-8"), iterations)
    return hmac.compare_digest(actual, expected)


def _bcrypt_sha256_check(password: bytes, body: str) -> bool:
    # Django prehashes with SHA-256 (hex) so long passwords are not truncated.
    return _bcrypt_check(hashlib.sha256(password).hexdigest().encode("ascii"), body)


def _django_argon2_check(password: bytes, body: str) -> bool:
    from argon2.exceptions import VerificationError, VerifyMismatchError
    from argon2.low_level import Type, verify_secret

    kinds = {"argon2id": Type.ID, "argon2i": Type.I, "argon2d": Type.D}
    kind = kinds[body.split("$", 2)[1]]
    try:
        return verify_secret(body.encode("ascii"), password, kind)
    except VerifyMismatchError:
        return False
    except VerificationError:
        raise ValueError("unusable argon2 hash") from None


_VERIFIERS: dict[LegacyScheme, Callable[[bytes, str], bool]] = {
    "bcrypt": _bcrypt_check,
    "bcrypt_sha256": _bcrypt_sha256_check,
    "pbkdf2_sha256": _pbkdf2_check,
    "django_argon2": _django_argon2_check,
}


def verify_legacy(parsed: ParsedLegacy, password: bytes) -> bool:
    """Check ``password`` (the raw UTF-8 bytes, as the legacy system saw them) against a legacy hash.

    Returns True or False; raises ImportError when bcrypt is needed but missing, ValueError when the stored
    hash turns out unusable.
    """
    return _VERIFIERS[parsed.scheme](password, parsed.body)
