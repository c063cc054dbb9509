"""The grace seal of refresh rotation: the successor pair, encrypted so only the previous token's holder reads it.

When a refresh token rotates, the new pair is kept in the store for ``grace_window`` seconds, sealed with
AES-GCM under a key derived from the *presented* token (HKDF, the token as input keying material) and bound
to the login id. A client that lost the rotation's response presents the old token again and gets the same
successor back, once; the store alone (which keeps only SHA-256 digests) cannot open it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..exceptions import InvalidToken
from ._claims import TokenPair
from ._header import b64url, b64url_decode
from ._scripts import text

__all__ = ["seal", "unseal"]

_SEAL_SALT = b"backend_guard refresh grace seal"
_SEAL_INFO = b"backend_guard refresh grace seal v2"
_NONCE_BYTES = 12


def _seal_key(old_token: bytes, sid: str) -> bytes:
    # Derived from the presented token itself, with the token as HKDF *input* keying material under a fixed
    # salt: only a holder of the old token can open the successor kept for the grace window. (Never the token
    # as an HMAC *key*: HMAC first hashes keys longer than a block, so HMAC(token, info) equals
    # HMAC(SHA-256(token), info), and SHA-256(token) is exactly the digest the store keeps.)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SEAL_SALT, info=_SEAL_INFO + b":" + sid.encode("ascii"))
    return hkdf.derive(old_token)


def seal(pair: TokenPair, access_exp: int, old_token: bytes, sid: str) -> str:
    """``pair`` (and its access token's expiry) sealed under ``old_token`` for the login ``sid``.

    Example::

        sealed = seal(pair, access_exp, presented_token, sid)
    """
    nonce = os.urandom(_NONCE_BYTES)
    body = json.dumps({"a": pair.access_token, "r": pair.refresh_token, "e": access_exp}).encode("utf-8")
    return b64url(nonce + AESGCM(_seal_key(old_token, sid)).encrypt(nonce, body, sid.encode("ascii")))


def unseal(sealed: Any, old_token: bytes, sid: str, clock: Callable[[], float]) -> TokenPair:
    """The pair :func:`seal` kept (as the store replied it), ``expires_in`` counted on ``clock``; InvalidToken
    when it does not open.

    Example::

        pair = unseal(reply.sealed, presented_token, sid, time.time)
    """
    try:
        blob = b64url_decode(text(sealed))
        body = AESGCM(_seal_key(old_token, sid)).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], sid.encode("ascii"))
        data = json.loads(body)
        return TokenPair(
            access_token=data["a"], refresh_token=data["r"], expires_in=max(0, int(data["e"]) - int(clock()))
        )
    except (ValueError, KeyError, TypeError, InvalidTag) as exc:
        raise InvalidToken("The refresh token could not be rotated.") from exc
