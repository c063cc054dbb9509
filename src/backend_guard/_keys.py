"""Signing keys and key rings for JWTs: loading, strength checks, ``kid``, rotation windows and JWKS export.

What lives here: turning key material (a secret, a PEM string, a ``cryptography`` key object) into a
:class:`SigningKey` bound to exactly one algorithm, and a :class:`KeyRing` that signs with its newest key and
verifies with every key still in its verification window. Binding each key to one algorithm is what defeats
algorithm confusion: a token is verified with the algorithm of the key its ``kid`` names, never with the
algorithm its header claims (RFC 8725 section 2.1 and 3.1).

Nothing here does network I/O: an unknown ``kid`` is an unknown key, never a reason to fetch one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ._check import check_str
from .exceptions import ConfigurationError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "KeyRing",
    "SigningKey",
    "generate_key",
]

#: HMAC algorithms and their minimum secret length in bytes (the hash output size, RFC 7518 section 3.2).
HMAC_ALGORITHMS: dict[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}
#: Asymmetric algorithms this library signs and verifies with.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "ES256", "RS256"})
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(HMAC_ALGORITHMS) | ASYMMETRIC_ALGORITHMS

MIN_RSA_BITS = 2048

_PRIVATE_TYPES = (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
_PUBLIC_TYPES = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)
_PEM_MARKERS = (b"-----BEGIN", b"ssh-", b"ecdsa-sha2-")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def family_of(algorithm: str) -> str:
    """``"hmac"`` or ``"asymmetric"`` for a supported algorithm; ConfigurationError otherwise.

    Example::

        >>> family_of("HS256")
        'hmac'
    """
    if algorithm in HMAC_ALGORITHMS:
        return "hmac"
    if algorithm in ASYMMETRIC_ALGORITHMS:
        return "asymmetric"
    raise ConfigurationError(
        f"Unsupported JWT algorithm {algorithm!r}: use one of {', '.join(sorted(SUPPORTED_ALGORITHMS))}."
    )


def _as_bytes(material: str | bytes | bytearray) -> bytes:
    return material.encode("utf-8") if isinstance(material, str) else bytes(material)


def _pem_text(raw: bytes) -> bytes:
    """PEM text whose line breaks were written as the two characters ``\\n``, with real newlines.

    One-line environment variables, ``.env`` files and JSON hold PEM keys that way. Only text that starts as a
    PEM does (``-----BEGIN``); anything else is returned as it is.
    """
    if raw.lstrip().startswith(b"-----BEGIN") and b"\\n" in raw:
        return raw.replace(b"\\r\\n", b"\n").replace(b"\\n", b"\n")
    return raw


def _load_pem(raw: bytes) -> Any:
    """A private key, else a public key, from PEM (or OpenSSH public) bytes."""
    try:
        return serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        pass
    try:
        return serialization.load_pem_public_key(raw)
    except (ValueError, TypeError):
        pass
    try:
        return serialization.load_ssh_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError("The key is not a readable unencrypted PEM private or public key.") from exc


def _is_eddsa(public: Any) -> bool:
    return isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))


def _is_p256(public: Any) -> bool:
    return isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)


def _is_rsa(public: Any) -> bool:
    """An RSA public key; one under ``MIN_RSA_BITS`` is refused here with its own message."""
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise ConfigurationError(f"RSA keys must have at least {MIN_RSA_BITS} bits (got {public.key_size}).")
    return isinstance(public, rsa.RSAPublicKey)


# What each asymmetric algorithm accepts (a check of the public key) and how a refusal names it.
_KEY_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "EdDSA": (_is_eddsa, "an Ed25519 or Ed448 key"),
    "ES256": (_is_p256, "an EC key on the P-256 curve"),
    "RS256": (_is_rsa, "an RSA key"),
}


def _check_asymmetric(algorithm: str, key: Any) -> None:
    public = key.public_key() if isinstance(key, _PRIVATE_TYPES) else key
    accepts, need = _KEY_KINDS[algorithm]
    if not accepts(public):
        raise ConfigurationError(f"{algorithm} needs {need}, not a {type(public).__name__}.")


def _thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public JWK."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    members = {name: public_jwk[name] for name in required[str(public_jwk["kty"])]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def _to_timestamp(value: float | datetime | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError("verify_until must be timezone-aware (or epoch seconds).")
        return value.timestamp()
    return float(value)


def _hmac_secret(material: Any, algorithm: str) -> bytes:
    """The bytes of an HMAC secret for ``algorithm``, refused when it is not text or bytes, a PEM, or too short."""
    if not isinstance(material, (str, bytes, bytearray)):
        raise ConfigurationError(f"{algorithm} needs a secret (str or bytes), not {type(material).__name__}.")
    secret = _as_bytes(material)
    if secret.lstrip().startswith(_PEM_MARKERS):
        raise ConfigurationError(f"{algorithm} needs a random secret; a PEM or SSH key was given.")
    minimum = HMAC_ALGORITHMS[algorithm]
    if len(secret) < minimum:
        raise ConfigurationError(f"{algorithm} secrets must be at least {minimum} bytes (got {len(secret)}).")
    return secret


def _key_object(material: Any, algorithm: str) -> Any:
    """The ``cryptography`` key of asymmetric key material: a PEM (text or bytes) or a key object itself."""
    if isinstance(material, (str, bytes, bytearray)):
        raw = _pem_text(_as_bytes(material))
        if not raw.lstrip().startswith(_PEM_MARKERS):
            raise ConfigurationError(f"{algorithm} needs a PEM private or public key, not a plain secret.")
        return _load_pem(raw.strip())
    if isinstance(material, _PRIVATE_TYPES + _PUBLIC_TYPES):
        return material
    raise ConfigurationError(f"Unsupported key type {type(material).__name__} for {algorithm}.")


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One JWT key bound to one algorithm, with its ``kid`` and an optional end of verification.

    Build it with :meth:`load`. ``signing`` is the private key (or HMAC secret) and is None for a
    verification-only public key; ``verifying`` is what checks signatures. A key with ``verify_until``
    (epoch seconds) is *retired*: it never signs, and verifies tokens until that instant.

    Example::

        key = SigningKey.load(private_pem, "EdDSA")
        old = SigningKey.load(old_pem, "EdDSA", verify_until=time.time() + 3600)
        ring = KeyRing([old, key])
    """

    algorithm: str
    kid: str
    signing: Any
    verifying: Any
    verify_until: float | None = None

    def __repr__(self) -> str:
        kind = "private" if self.signing is not None else "public"
        return f"SigningKey(algorithm={self.algorithm!r}, kid={self.kid!r}, {kind}, verify_until={self.verify_until})"

    @property
    def family(self) -> str:
        """``"hmac"`` or ``"asymmetric"``."""
        return family_of(self.algorithm)

    @classmethod
    def load(
        cls,
        material: Any,
        algorithm: str = "EdDSA",
        *,
        kid: str | None = None,
        verify_until: float | datetime | None = None,
    ) -> SigningKey:
        """Load a secret (HS*), a PEM string/bytes or a ``cryptography`` key object; check its strength.

        A PEM whose line breaks are the two characters ``\\n`` (as a one-line environment variable or a
        ``.env`` file holds it) is read as if they were newlines.

        Raises ConfigurationError for an unsupported algorithm, a key of the wrong type for it (an RSA PEM
        given as an HMAC secret is refused: that is the algorithm-confusion mistake), an HMAC secret shorter
        than the hash output, or an RSA key under 2048 bits.

        Example::

            key = SigningKey.load(os.environ["JWT_SECRET"], "HS256", kid="2025-01")
        """
        if isinstance(material, SigningKey):
            if material.algorithm != algorithm:
                raise ConfigurationError(f"Key {material.kid!r} is bound to {material.algorithm}, not {algorithm}.")
            return material
        until = _to_timestamp(verify_until)
        if family_of(algorithm) == "hmac":
            secret = _hmac_secret(material, algorithm)
            derived = hmac.new(secret, b"backend_guard kid", hashlib.sha256).digest()
            return cls(algorithm, kid or _b64url(derived[:12]), secret, secret, until)
        key_obj = _key_object(material, algorithm)
        _check_asymmetric(algorithm, key_obj)
        private = key_obj if isinstance(key_obj, _PRIVATE_TYPES) else None
        public = key_obj.public_key() if private is not None else key_obj
        jwk = _public_jwk(algorithm, public)
        return cls(algorithm, kid or _thumbprint(jwk), private, public, until)

    def usable_at(self, now: float) -> bool:
        """True while this key may verify tokens (always, unless retired and past ``verify_until``)."""
        return self.verify_until is None or now < self.verify_until

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (``kid``, ``alg``, ``use``); ConfigurationError for an HMAC secret.

        Example::

            key.public_jwk()["kty"]   # "OKP"
        """
        if self.family == "hmac":
            raise ConfigurationError("HMAC secrets have no public part and are never exported.")
        jwk = _public_jwk(self.algorithm, self.verifying)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk


# PyJWT's algorithm class that writes the public JWK of each asymmetric algorithm's keys.
_JWK_WRITERS = {"EdDSA": "OKPAlgorithm", "ES256": "ECAlgorithm", "RS256": "RSAAlgorithm"}


def _public_jwk(algorithm: str, public: Any) -> dict[str, Any]:
    import jwt.algorithms

    impl: Any = getattr(jwt.algorithms, _JWK_WRITERS[algorithm])
    return dict(impl.to_jwk(public, as_dict=True))


def _load_all(keys: Iterable[Any], algorithm: str) -> list[SigningKey]:
    """Every key of ``keys`` as a SigningKey (material is loaded for ``algorithm``); at least one."""
    if isinstance(keys, (str, bytes, bytearray, Mapping)) or not isinstance(keys, Iterable):
        raise ConfigurationError(f"keys must be a list of keys (or SigningKeys), not a {type(keys).__name__}.")
    loaded: list[SigningKey] = []
    for item in keys:
        try:
            loaded.append(item if isinstance(item, SigningKey) else SigningKey.load(item, algorithm))
        except ConfigurationError as exc:
            raise ConfigurationError(f"keys: {exc.detail}") from None
    if not loaded:
        raise ConfigurationError("keys: a key ring needs at least one key.")
    return loaded


def _by_kid(keys: list[SigningKey]) -> dict[str, SigningKey]:
    """The keys by ``kid``; a ``kid`` named twice is refused."""
    by_kid: dict[str, SigningKey] = {}
    for key in keys:
        if key.kid in by_kid:
            raise ConfigurationError(f"Duplicate kid {key.kid!r} in the key ring.")
        by_kid[key.kid] = key
    return by_kid


class KeyRing:
    """Keys for one algorithm family, oldest to newest: sign with the newest active key, verify with all.

    Retired keys (``verify_until`` set) never sign and verify until their end date, so tokens already issued
    keep working through a rotation. Mixing HMAC secrets and asymmetric keys in one ring is refused: a
    verifier that accepts both is the algorithm-confusion bug class (CVE-2022-29217).

    Example::

        ring = KeyRing([
            SigningKey.load(old_pem, "EdDSA", verify_until=time.time() + 86400),
            SigningKey.load(new_pem, "EdDSA"),
        ])
        tm = TokenManager(ring, issuer="https://auth.example", audience="api")
        jwks = ring.jwks()
    """

    def __init__(self, keys: Iterable[Any], algorithm: str = "EdDSA") -> None:
        check_str("algorithm", algorithm)
        loaded = _load_all(keys, algorithm)
        families = {k.family for k in loaded}
        if len(families) > 1:
            raise ConfigurationError("A key ring cannot mix HMAC secrets and asymmetric keys.")
        self.keys: tuple[SigningKey, ...] = tuple(loaded)
        self.family: str = families.pop()
        self._by_kid = _by_kid(loaded)
        signers = [k for k in loaded if k.signing is not None and k.verify_until is None]
        self.signing_key: SigningKey | None = signers[-1] if signers else None

    def __repr__(self) -> str:
        return f"KeyRing({[k.kid for k in self.keys]!r})"

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms of the keys in this ring (the verification allow list)."""
        return frozenset(k.algorithm for k in self.keys)

    def get(self, kid: str) -> SigningKey | None:
        """The key named ``kid``, whatever its verification window, or None (never a network fetch).

        Example::

            key = ring.get(header["kid"])   # then check key.usable_at(now) before verifying with it
        """
        return self._by_kid.get(kid)

    def find(self, kid: str, now: float) -> SigningKey | None:
        """The key named ``kid`` if it may verify at ``now``, else None (never a network fetch).

        Example::

            ring.find(header["kid"], time.time())
        """
        key = self.get(kid)
        if key is None or not key.usable_at(now):
            return None
        return key

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWK Set of the public keys that still verify (at ``now`` when given), for ``/.well-known/jwks.json``.

        Example::

            return JSONResponse(tm.keys.jwks())
        """
        if self.family == "hmac":
            raise ConfigurationError("An HMAC key ring has no public keys to publish.")
        keys = [k for k in self.keys if now is None or k.usable_at(now)]
        return {"keys": [k.public_jwk() for k in keys]}


# A new private key for each asymmetric algorithm.
_GENERATORS: dict[str, Callable[[], Any]] = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
}


def generate_key(algorithm: str = "EdDSA") -> tuple[str, dict[str, Any]]:
    """A new key for ``algorithm``: ``(private PEM or secret, JWK)``; the JWK never holds secret material.

    Asymmetric algorithms give a PKCS#8 PEM private key and its public JWK (with ``kid``); HMAC algorithms
    give a random URL-safe secret and a JWK holding only ``kty``, ``alg`` and ``kid``.

    Example::

        pem, jwk = generate_key("EdDSA")
        tm = TokenManager(pem, "EdDSA", issuer="https://auth.example", audience="api")
    """
    if family_of(algorithm) == "hmac":
        secret = secrets.token_urlsafe(HMAC_ALGORITHMS[algorithm])
        key = SigningKey.load(secret, algorithm)
        return secret, {"kty": "oct", "alg": algorithm, "kid": key.kid}
    private: Any = _GENERATORS[algorithm]()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return pem, SigningKey.load(private, algorithm).public_jwk()
