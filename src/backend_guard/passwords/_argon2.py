"""The argon2 work of :class:`~backend_guard.passwords.PasswordHasher`: hashing, one verification, the dummy.

What lives here: the calls into libargon2 (``hash_secret``, ``verify_secret``), the pepper step around them,
the dummy hash that stands in where no usable stored hash exists, and :class:`WorkLimits`, which refuses a
stored hash before any work when libargon2 would refuse it or its parameters would tie a worker up. A stored
hash that cannot be checked here raises :class:`Unusable` (the hasher turns it into ``InvalidHash`` after the
same work as a real check). Which hash is checked, and how often, is the hasher's plan, not decided here.

argon2-cffi is imported by the calls that hash or verify, not when this module loads: importing
``backend_guard.passwords`` (or the settings, which name its defaults) costs no libargon2 until a password is
hashed or checked, and the import is nothing next to the argon2 work that follows it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ._parameters import Argon2Parameters
from ._schemes import ARGON2_ID, ParsedArgon2, add_keyid, apply_pepper, parse_hash

__all__ = ["ARGON2_VERSION", "Unusable", "WorkLimits", "check", "dummy_hash", "new_hash"]

ARGON2_VERSION = 0x13
# The argon2 variant of a stored hash's prefix, as the name of its ``argon2.low_level.Type`` member.
_TYPE_NAMES = {"argon2id": "ID", "argon2i": "I", "argon2d": "D"}
# The most lanes (threads, in libargon2) a stored hash may ask for: the policy's own upper bound.
_MAX_VERIFY_LANES = 255
# What libargon2 itself refuses when it decodes a stored hash (argon2.h): checked before any work, so a hash it
# would refuse half-way through a plan is refused up front instead (same work: the plan runs on the dummy).
_ARGON2_VERSIONS = (0x10, 0x13)
_ARGON2_MIN_SALT = 8
_ARGON2_MIN_OUTPUT = 4


class Unusable(Exception):
    """A recognised stored hash that cannot be checked here (unknown pepper, missing bcrypt, out of range)."""


def new_hash(parameters: Argon2Parameters, password: bytes, pepper_id: str | None, peppers: Mapping[str, bytes]) -> str:
    """A new PHC string of ``password`` under ``parameters`` (and the pepper ``pepper_id``, when not None).

    Example::

        new_hash(OWASP_MIN, b"correct horse", None, {})   # "$argon2id$v=19$m=19456,t=2,p=1$..."
    """
    from argon2.low_level import Type, hash_secret

    p = parameters
    secret = apply_pepper(peppers[pepper_id], password) if pepper_id is not None else password
    encoded = hash_secret(
        secret,
        os.urandom(p.salt_len),
        p.time_cost,
        p.memory_cost,
        p.parallelism,
        p.hash_len,
        Type.ID,
        ARGON2_VERSION,
    ).decode("ascii")
    return add_keyid(encoded, pepper_id) if pepper_id is not None else encoded


def check(parsed: ParsedArgon2, password: bytes, peppers: Mapping[str, bytes]) -> bool:
    """One libargon2 verification of ``password`` against ``parsed``: True on a match, False on a mismatch.

    Raises :class:`Unusable`, without the work, for a pepper that is not configured, and when libargon2
    refuses the hash.

    Example::

        check(parse_hash(stored), b"correct horse", {})
    """
    from argon2.exceptions import VerificationError, VerifyMismatchError
    from argon2.low_level import Type, verify_secret

    if parsed.pepper_id is not None:
        key = peppers.get(parsed.pepper_id)
        if key is None:
            raise Unusable("The stored hash uses a pepper that is not configured.")
        password = apply_pepper(key, password)
    try:
        return verify_secret(parsed.encoded, password, Type[_TYPE_NAMES[parsed.type]])
    except VerifyMismatchError:
        return False
    except VerificationError:
        raise Unusable("The stored argon2 hash cannot be verified.") from None


def _b64_random(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode("ascii").rstrip("=")


def dummy_hash(parameters: Argon2Parameters, pepper_id: str | None) -> ParsedArgon2:
    """The hash checked where there is no usable stored one: the policy's parameters and current pepper.

    Random salt and random digest, so no password ever matches it, and libargon2 does exactly the work of
    a real hash of the policy to find that out. Built without hashing anything.

    Example::

        dummy = dummy_hash(OWASP_MIN, None)
    """
    p = parameters
    encoded = (
        f"${ARGON2_ID}$v={ARGON2_VERSION}$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
        f"${_b64_random(p.salt_len)}${_b64_random(p.hash_len)}"
    )
    if pepper_id is not None:
        encoded = add_keyid(encoded, pepper_id)
    parsed = parse_hash(encoded)
    assert isinstance(parsed, ParsedArgon2)  # built from validated parameters just above
    return parsed


def _libargon2_refuses(parsed: ParsedArgon2) -> bool:
    """Whether libargon2 would refuse ``parsed`` when it decodes it (argon2.h's own bounds)."""
    refusals = (
        parsed.version not in _ARGON2_VERSIONS,
        parsed.time_cost < 1,
        parsed.parallelism < 1,
        parsed.memory_cost < 8 * parsed.parallelism,
        parsed.salt_len < _ARGON2_MIN_SALT,
        parsed.hash_len < _ARGON2_MIN_OUTPUT,
    )
    return any(refusals)


@dataclass(frozen=True)
class WorkLimits:
    """What a *stored* argon2 hash may ask for: memory (KiB), and memory times iterations.

    A stored hash is data: one row with ``t=4294967295`` or ``p=999`` must not cost hours or a thousand
    threads. Allowed: memory up to ``max_memory_kib``, lanes up to 255 (as the policy), and memory times
    iterations up to ``max_work``. (A digest or salt in non-canonical base64 is refused by ``parse_hash``.)

    Example::

        WorkLimits.for_policy(OWASP_MIN, 1024 * 1024).check(parse_hash(stored))
    """

    max_memory_kib: int
    max_work: int

    @classmethod
    def for_policy(cls, parameters: Argon2Parameters, max_memory_kib: int) -> WorkLimits:
        """Four times ``max_memory_kib`` in memory x iterations, or the policy's own work if that is larger.

        Example::

            limits = WorkLimits.for_policy(hasher.parameters, hasher.max_verify_memory_kib)
        """
        return cls(max_memory_kib, max(4 * max_memory_kib, parameters.memory_cost * parameters.time_cost))

    def check(self, parsed: ParsedArgon2) -> None:
        """Raise :class:`Unusable`, before any work, for a hash libargon2 refuses or one asking for too much.

        Refused as libargon2 would: an unknown version, no iterations or lanes, memory below 8 KiB per lane,
        a salt under 8 bytes, a digest under 4 bytes.

        Example::

            limits.check(parsed)   # None, or Unusable
        """
        if _libargon2_refuses(parsed):
            raise Unusable("The stored argon2 hash has parameters libargon2 refuses.")
        if parsed.memory_cost > self.max_memory_kib:
            raise Unusable("The stored argon2 hash asks for more memory than max_verify_memory_kib.")
        if parsed.parallelism > _MAX_VERIFY_LANES or parsed.time_cost * parsed.memory_cost > self.max_work:
            raise Unusable("The stored argon2 hash asks for more work than this hasher verifies.")
