"""The compact form of this library's JWTs and their header: one spelling per token, and the key it names.

What lives here: the shape checks a token passes before any decoding (ASCII, length, three canonical unpadded
base64url segments: one signed token has exactly one spelling, and so one store digest), and the reading of
its header: only ``alg``/``typ``/``kid``, a known kind, a ``kid`` naming a key of the ring, and that key's own
algorithm (never the one the header claims: RFC 8725 section 2.1). No network I/O: an unknown ``kid`` is an
unknown key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .._keys import KeyRing, SigningKey
from ..exceptions import InvalidToken
from ._claims import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE

__all__ = ["Head", "b64url", "b64url_decode", "compact_text", "digest", "parse_head"]

_HEADER_KEYS = frozenset({"alg", "typ", "kid"})
_KINDS = (ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# A compact JWS exactly as this manager writes it: three unpadded base64url segments, nothing else.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The last character of a canonical unpadded base64url segment, by ``len % 4``: its unused low bits are zero.
_LAST_CHAR = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


@dataclass(frozen=True)
class Head:
    """A verified-shape header: its kind and the key (and allow list) it names.

    Example::

        head = parse_head(token.partition(".")[0], ring)
        head.typ, head.key.kid
    """

    typ: str
    key: SigningKey
    algorithms: tuple[str, ...]


def b64url(data: bytes) -> str:
    """Unpadded base64url text of ``data``.

    Example::

        b64url(b"\\xff")   # "_w"
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``; ValueError for anything else.

    Example::

        b64url_decode("_w")   # b"\\xff"
    """
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(token: bytes) -> str:
    """The SHA-256 hex digest of a refresh token: all the store ever keeps of one.

    Example::

        digest(pair.refresh_token.encode("ascii"))
    """
    return hashlib.sha256(token).hexdigest()


def _canonical(token: str) -> bool:
    """True when ``token`` is three canonical unpadded base64url segments (one spelling per token)."""
    if not _COMPACT.fullmatch(token):
        return False
    for segment in token.split("."):
        rest = len(segment) % 4
        if rest == 1 or (rest and segment[-1] not in _LAST_CHAR[rest]):
            return False
    return True


def compact_text(token: Any, max_length: int) -> str:
    """``token`` (str or ASCII bytes) as text once its shape is checked: InvalidToken otherwise, before decoding.

    Example::

        compact_text(b"eyJ...", 8192)   # "eyJ..."
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("The token is malformed.") from None
    if not isinstance(token, str) or not token:
        raise InvalidToken("The token is malformed.")
    if len(token) > max_length:
        raise InvalidToken("The token is too long.")
    if not _canonical(token):
        # One spelling per token: padding, junk or non-canonical trailing bits that a lenient base64
        # decoder ignores would give one signed token many digests (and non-ASCII ones a crash).
        raise InvalidToken("The token is malformed.")
    return token


def _header(head: str) -> dict[str, Any]:
    try:
        header = json.loads(b64url_decode(head))
    except (ValueError, RecursionError, binascii.Error) as exc:
        raise InvalidToken("The token is malformed.") from exc
    if not isinstance(header, dict) or not _HEADER_KEYS.issuperset(header):
        # Refuses crit, jku, jwk, x5u, x5c, b64...: this manager issues none of them and fetches nothing.
        raise InvalidToken("The token header is not accepted.")
    return header


def parse_head(head: str, ring: KeyRing) -> Head:
    """Read the first segment of a token: its kind and the key of ``ring`` it names; InvalidToken otherwise.

    Example::

        parse_head(token.partition(".")[0], tm.keys).typ   # "at+jwt"
    """
    header = _header(head)
    typ, kid, alg = header.get("typ"), header.get("kid"), header.get("alg")
    if not isinstance(typ, str) or typ.lower() not in _KINDS:
        raise InvalidToken("The token type is not accepted.")
    if not isinstance(kid, str) or not isinstance(alg, str):
        raise InvalidToken("The token header is not accepted.")
    key = ring.get(kid)
    if key is None:
        raise InvalidToken("The token was signed by an unknown key.")
    if alg != key.algorithm:
        raise InvalidToken("The token algorithm is not allowed.")
    return Head(typ.lower(), key, (key.algorithm,))
