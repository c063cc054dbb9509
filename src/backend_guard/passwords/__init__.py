"""Password hashing: argon2id with upgrade-only rehashing, legacy migration, peppers and an async API.

What lives here: the policy (:class:`Argon2Parameters`, the named profiles, :func:`calibrate`) and
:class:`PasswordHasher`, which applies the input policy, verifies stored hashes of every supported scheme,
decides when a stored hash is *weaker* than the policy (and only then offers a new one), and runs the costly
work in a bounded thread pool for async callers. Stored-hash formats live in ``_password_schemes.py``.

Timing: a wrong password, an unknown user (:meth:`PasswordHasher.dummy_verify`) and a garbage or unusable
stored hash all run the same *plan*: one argon2 verification per form of the password (the normalised form,
then the form as typed when normalisation changed it), against the stored hash where it can be checked and
against a dummy hash at the policy's parameters where it cannot (or there is none). Only a match ends the plan
early: see ``PasswordHasher._run_plan``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import os
import statistics
import threading
import time
import unicodedata
import weakref
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

from argon2.exceptions import VerificationError, VerifyMismatchError
from argon2.low_level import Type, hash_secret, verify_secret

from backend_guard._check import check_bool, check_int, check_mapping, check_str, optional
from backend_guard.exceptions import ConfigurationError, InvalidHash, InvalidPassword
from backend_guard.passwords._schemes import (
    ARGON2_ID,
    ParsedArgon2,
    ParsedLegacy,
    add_keyid,
    apply_pepper,
    check_peppers,
    parse_hash,
    verify_legacy,
)

__all__ = [
    "DEFAULT_PARAMETERS",
    "OWASP_MIN",
    "RECOMMENDED",
    "RFC_9106_LOW_MEMORY",
    "TEST",
    "Argon2Parameters",
    "PasswordHasher",
    "calibrate",
]

T = TypeVar("T")
NormalForm = Literal["NFC", "NFD", "NFKC", "NFKD"]

_ARGON2_VERSION = 0x13
_TYPES = {"argon2id": Type.ID, "argon2i": Type.I, "argon2d": Type.D}
# OWASP Password Storage Cheat Sheet, argon2id: equivalent (memory KiB, iterations) pairs, parallelism 1.
_OWASP_TABLE = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
# The most lanes (threads, in libargon2) a stored hash may ask for: the policy's own upper bound.
_MAX_VERIFY_LANES = 255
# What libargon2 itself refuses when it decodes a stored hash (argon2.h): checked before any work, so a hash it
# would refuse half-way through a plan is refused up front instead (same work: the plan runs on the dummy).
_ARGON2_VERSIONS = (0x10, 0x13)
_ARGON2_MIN_SALT = 8
_ARGON2_MIN_OUTPUT = 4


def _owasp_min_time_cost(memory_cost: int) -> int | None:
    """The fewest iterations OWASP accepts at ``memory_cost`` KiB; ``None`` below its smallest memory."""
    for memory, iterations in _OWASP_TABLE:
        if memory_cost >= memory:
            return iterations
    return None


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Argon2Parameters:
    """Argon2id cost parameters of a hashing policy (memory in KiB); validated when built.

    Example::

        params = bg.Argon2Parameters(time_cost=3, memory_cost=65536, parallelism=1)
        hasher = bg.PasswordHasher(params)
    """

    time_cost: int
    memory_cost: int
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16

    def __post_init__(self) -> None:
        for name in ("time_cost", "memory_cost", "parallelism", "hash_len", "salt_len"):
            value = getattr(self, name)
            if type(value) is not int:
                raise ConfigurationError(f"Argon2Parameters.{name} must be an int.")
        if not 1 <= self.parallelism <= 255:
            raise ConfigurationError("parallelism must be between 1 and 255.")
        if not 1 <= self.time_cost <= 1000:
            raise ConfigurationError("time_cost must be between 1 and 1000.")
        if not 8 * self.parallelism <= self.memory_cost <= 4 * 1024 * 1024:
            raise ConfigurationError("memory_cost must be between 8 * parallelism KiB and 4 GiB.")
        if not 16 <= self.hash_len <= 64 or not 16 <= self.salt_len <= 64:
            raise ConfigurationError("hash_len and salt_len must be between 16 and 64 bytes.")

    def meets_owasp(self) -> bool:
        """Whether these parameters are at or above one of OWASP's argon2id configurations.

        Example::

            assert bg.passwords.OWASP_MIN.meets_owasp() and not bg.passwords.TEST.meets_owasp()
        """
        floor = _owasp_min_time_cost(self.memory_cost)
        return floor is not None and self.time_cost >= floor

    @classmethod
    def from_hash(cls, stored_hash: str) -> Argon2Parameters:
        """The parameters a stored argon2 hash was made with; raises InvalidHash for anything else.

        Example::

            bg.Argon2Parameters.from_hash(hasher.hash("s3cret")) == hasher.parameters
        """
        parsed = parse_hash(stored_hash)
        if not isinstance(parsed, ParsedArgon2):
            raise InvalidHash("The stored hash is not an argon2 hash.")
        try:
            return cls(parsed.time_cost, parsed.memory_cost, parsed.parallelism, parsed.hash_len, parsed.salt_len)
        except ConfigurationError:
            raise InvalidHash("The stored hash has out-of-range parameters.") from None


#: OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane); the default policy.
OWASP_MIN = Argon2Parameters(time_cost=2, memory_cost=19456, parallelism=1)
#: The default policy of :class:`PasswordHasher` (see docs/passwords.md for why).
DEFAULT_PARAMETERS = OWASP_MIN
#: Alias of :data:`DEFAULT_PARAMETERS`.
RECOMMENDED = DEFAULT_PARAMETERS
#: RFC 9106's second recommendation (argon2-cffi's default): 64 MiB, 3 iterations, 4 lanes.
RFC_9106_LOW_MEMORY = Argon2Parameters(time_cost=3, memory_cost=65536, parallelism=4)
#: Cheapest parameters, for test suites only (needs ``allow_weak=True``).
TEST = Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1)


class _Unusable(Exception):
    """A recognised stored hash that cannot be checked here (unknown pepper, missing bcrypt, out of range)."""


@dataclass(frozen=True)
class _Secret:
    raw: bytes  # UTF-8 of the password as given (legacy schemes saw this)
    normalized: bytes  # UTF-8 of the normalised password (what this library hashes)

    @property
    def forms(self) -> tuple[bytes, ...]:
        """The forms an argon2 check tries, in order: the normalised one, then the raw one when it differs.

        Their number depends on the password alone, never on the stored hash: it is the length of the plan
        every path (match, mismatch, unknown user, unusable hash) runs.
        """
        return (self.normalized,) if self.raw == self.normalized else (self.normalized, self.raw)


class PasswordHasher:
    """Hash and verify passwords with argon2id, upgrading weaker and legacy hashes on the next login.

    ``parameters`` is the policy (default :data:`DEFAULT_PARAMETERS`; weaker than OWASP only with
    ``allow_weak=True``). ``peppers`` maps pepper ids to secret keys (bytes, >= 16 bytes) and
    ``current_pepper`` names the one new hashes use; hashes under the other ids still verify and are upgraded.
    ``normalize`` is the Unicode form applied before hashing (``None`` disables it). ``max_password_bytes``
    bounds the UTF-8 length, checked before any hashing. The async methods run in a pool of at most
    ``max_concurrency`` threads, by default ``memory_budget_kib // memory_cost`` capped at the CPU count
    minus one (at least 1), so concurrent hashing stays within the memory budget and leaves a CPU free.
    ``max_verify_memory_kib`` bounds what a *stored* hash may ask for: more memory, more than four times that
    memory in memory x iterations, more than 255 lanes, a bcrypt cost above 16 or PBKDF2 above 10 million
    iterations make it :class:`~backend_guard.exceptions.InvalidHash` instead of tying a worker up.

    Example::

        hasher = bg.PasswordHasher()
        stored = hasher.hash("correct horse")
        ok, new_hash = hasher.verify_and_update(stored, "correct horse")   # (True, None)
    """

    def __init__(
        self,
        parameters: Argon2Parameters = DEFAULT_PARAMETERS,
        *,
        peppers: Mapping[str, bytes] | None = None,
        current_pepper: str | None = None,
        normalize: NormalForm | None = "NFKC",
        max_password_bytes: int = 1024,
        accept_legacy: bool = True,
        allow_weak: bool = False,
        memory_budget_kib: int = 256 * 1024,
        max_concurrency: int | None = None,
        max_verify_memory_kib: int = 1024 * 1024,
    ) -> None:
        check_bool("accept_legacy", accept_legacy)
        check_bool("allow_weak", allow_weak)
        optional(check_mapping, "peppers", peppers)
        optional(check_str, "current_pepper", current_pepper)
        check_int("max_verify_memory_kib", max_verify_memory_kib, min=1)
        if not isinstance(parameters, Argon2Parameters):
            raise ConfigurationError("parameters must be an Argon2Parameters.")
        if not allow_weak and not parameters.meets_owasp():
            raise ConfigurationError(
                "These argon2 parameters are below OWASP's minimum; pass allow_weak=True only in tests."
            )
        if normalize not in (None, "NFC", "NFD", "NFKC", "NFKD"):
            raise ConfigurationError("normalize must be one of NFC, NFD, NFKC, NFKD or None.")
        if type(max_password_bytes) is not int or not 8 <= max_password_bytes <= 1 << 20:
            raise ConfigurationError("max_password_bytes must be between 8 and 1 MiB.")
        if type(memory_budget_kib) is not int or memory_budget_kib < 1:
            raise ConfigurationError("memory_budget_kib must be a positive int.")
        if max_concurrency is not None and (type(max_concurrency) is not int or max_concurrency < 1):
            raise ConfigurationError("max_concurrency must be a positive int.")
        if max_verify_memory_kib < parameters.memory_cost:
            raise ConfigurationError("max_verify_memory_kib must be at least the policy's memory_cost.")
        self.parameters = parameters
        self._current_pepper = check_peppers(peppers, current_pepper)
        self._peppers: dict[str, bytes] = dict(peppers or {})
        self.normalize: NormalForm | None = normalize
        self.max_password_bytes = max_password_bytes
        self.accept_legacy = accept_legacy
        self.max_verify_memory_kib = max_verify_memory_kib
        # Memory (KiB) times iterations a stored hash may ask for: see _check_work.
        self._max_verify_work = max(4 * max_verify_memory_kib, parameters.memory_cost * parameters.time_cost)
        if max_concurrency is None:
            # One CPU stays free for the event loop and the rest of the server (see docs/passwords.md).
            by_memory = max(1, memory_budget_kib // parameters.memory_cost)
            max_concurrency = min(by_memory, max(1, _usable_cpus() - 1))
        self.max_concurrency: int = max_concurrency
        self._lock = threading.Lock()  # pool and semaphores: held for microseconds, also on the event loop
        self._dummy = self._make_dummy()
        self._pool: ThreadPoolExecutor | None = None
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        # Never the peppers: only their ids.
        return (
            f"PasswordHasher({self.parameters!r}, current_pepper={self._current_pepper!r}, "
            f"pepper_ids={sorted(self._peppers)!r}, normalize={self.normalize!r})"
        )

    # ---- input policy --------------------------------------------------------------------------------

    def _prepare(self, password: object) -> _Secret:
        limit = self.max_password_bytes
        if isinstance(password, bytes):
            if len(password) > limit:
                raise InvalidPassword(f"The password is longer than {limit} bytes.")
            try:
                password = password.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidPassword("The password is not valid UTF-8.") from None
        if not isinstance(password, str):
            raise InvalidPassword("The password must be text.")
        if len(password) > limit:  # each code point is at least one byte: cheap early refusal
            raise InvalidPassword(f"The password is longer than {limit} bytes.")
        if "\x00" in password:
            raise InvalidPassword("The password contains a NUL character.")
        try:
            raw = password.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPassword("The password is not valid Unicode text (lone surrogate).") from None
        normalized = raw
        if self.normalize is not None:
            normalized = unicodedata.normalize(self.normalize, password).encode("utf-8")
        if len(raw) > limit or len(normalized) > limit:
            raise InvalidPassword(f"The password is longer than {limit} bytes.")
        return _Secret(raw, normalized)

    # ---- the argon2 work -----------------------------------------------------------------------------

    def _make(self, password: bytes) -> str:
        p = self.parameters
        pepper_id = self._current_pepper
        secret = apply_pepper(self._peppers[pepper_id], password) if pepper_id is not None else password
        encoded = hash_secret(
            secret,
            os.urandom(p.salt_len),
            p.time_cost,
            p.memory_cost,
            p.parallelism,
            p.hash_len,
            Type.ID,
            _ARGON2_VERSION,
        ).decode("ascii")
        return add_keyid(encoded, pepper_id) if pepper_id is not None else encoded

    def _argon2_check(self, parsed: ParsedArgon2, password: bytes) -> bool:
        if parsed.pepper_id is not None:
            key = self._peppers.get(parsed.pepper_id)
            if key is None:
                raise _Unusable("The stored hash uses a pepper that is not configured.")
            password = apply_pepper(key, password)
        try:
            return verify_secret(parsed.encoded, password, _TYPES[parsed.type])
        except VerifyMismatchError:
            return False
        except VerificationError:
            raise _Unusable("The stored argon2 hash cannot be verified.") from None

    def _make_dummy(self) -> ParsedArgon2:
        """The hash checked where there is no usable stored one: the policy's parameters and current pepper.

        Random salt and random digest, so no password ever matches it, and libargon2 does exactly the work of
        a real hash of the policy to find that out. Built here, at construction, without hashing anything.
        """
        p = self.parameters

        def b64(size: int) -> str:
            return base64.b64encode(os.urandom(size)).decode("ascii").rstrip("=")

        encoded = (
            f"${ARGON2_ID}$v={_ARGON2_VERSION}$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
            f"${b64(p.salt_len)}${b64(p.hash_len)}"
        )
        if self._current_pepper is not None:
            encoded = add_keyid(encoded, self._current_pepper)
        parsed = parse_hash(encoded)
        assert isinstance(parsed, ParsedArgon2)  # built from validated parameters just above
        return parsed

    def _check_work(self, parsed: ParsedArgon2) -> None:
        """Refuse (as unusable), before any work, a stored argon2 hash that libargon2 would refuse or whose
        parameters would tie a worker up or exhaust memory.

        A stored hash is data: one row with ``t=4294967295`` or ``p=999`` must not cost hours or a thousand
        threads. Allowed: memory up to ``max_verify_memory_kib``, lanes up to 255 (as the policy), and memory
        times iterations up to four times ``max_verify_memory_kib`` (or the policy's own, if larger). Refused
        as libargon2 would: an unknown version, no iterations or lanes, memory below 8 KiB per lane, a salt
        under 8 bytes, a digest under 4 bytes. (A digest or salt in non-canonical base64 is refused by
        ``parse_hash``.)
        """
        if (
            parsed.version not in _ARGON2_VERSIONS
            or parsed.time_cost < 1
            or parsed.parallelism < 1
            or parsed.memory_cost < 8 * parsed.parallelism
            or parsed.salt_len < _ARGON2_MIN_SALT
            or parsed.hash_len < _ARGON2_MIN_OUTPUT
        ):
            raise _Unusable("The stored argon2 hash has parameters libargon2 refuses.")
        if parsed.memory_cost > self.max_verify_memory_kib:
            raise _Unusable("The stored argon2 hash asks for more memory than max_verify_memory_kib.")
        if parsed.parallelism > _MAX_VERIFY_LANES or parsed.time_cost * parsed.memory_cost > self._max_verify_work:
            raise _Unusable("The stored argon2 hash asks for more work than this hasher verifies.")

    def _check_legacy(self, parsed: ParsedLegacy, secret: _Secret) -> bool:
        """Whether the raw password matches a legacy hash. Raises _Unusable, before any costly work."""
        if not self.accept_legacy:
            raise _Unusable("Legacy hash schemes are disabled.")
        if parsed.scheme == "django_argon2":
            inner = parse_hash(parsed.body)
            if not isinstance(inner, ParsedArgon2):  # pragma: no cover - parse_hash checked the same body
                raise _Unusable("The stored legacy hash cannot be verified.")
            self._check_work(inner)
        try:
            return verify_legacy(parsed, secret.raw)
        except ImportError:
            raise _Unusable("A bcrypt hash needs the 'bcrypt' package (backend-guard[bcrypt]).") from None
        except ValueError:
            raise _Unusable("The stored legacy hash cannot be verified.") from None

    def _run_plan(self, stored: ParsedArgon2 | None, secret: _Secret) -> tuple[bool, bool, str | None]:
        """The argon2 plan: (matched, matched only un-normalised, why the stored hash is unusable or None).

        One verification per form of the password (:attr:`_Secret.forms`), in order, whatever the stored hash:
        against ``stored`` while it can be checked, against the dummy hash (policy parameters) when there is
        none (``None``: an unknown user or a garbage string), when it is refused before any work, or from the
        step where libargon2 refuses it. So a wrong password, an unknown user and an unusable hash cost the
        same number of verifications for the same password, by construction; only a match ends the plan early.
        The un-normalised form can only match an unpeppered hash (made elsewhere, where nobody normalised):
        against a peppered one it is still verified, and its answer ignored.
        """
        problem: str | None = None if stored is not None else "The stored hash is not in a recognised format."
        if stored is not None:
            try:
                self._check_work(stored)
                if stored.pepper_id is not None and stored.pepper_id not in self._peppers:
                    raise _Unusable("The stored hash uses a pepper that is not configured.")
            except _Unusable as exc:
                problem = str(exc)
        for index, form in enumerate(secret.forms):
            if stored is not None and problem is None:
                try:
                    if self._argon2_check(stored, form) and (index == 0 or stored.pepper_id is None):
                        return True, index > 0, None
                    continue
                except _Unusable as exc:  # pragma: no cover - libargon2 refusing what _check_work accepted
                    # It refused without doing the work: this step and the rest run on the dummy.
                    problem = str(exc)
            self._argon2_check(self._dummy, form)
        return False, False, problem

    def _due(self, parsed: ParsedArgon2 | ParsedLegacy) -> bool:
        if isinstance(parsed, ParsedLegacy):
            return True
        p = self.parameters
        return (
            parsed.type != ARGON2_ID
            or parsed.version != _ARGON2_VERSION
            or parsed.time_cost < p.time_cost
            or parsed.memory_cost < p.memory_cost
            or parsed.parallelism < p.parallelism
            or parsed.hash_len < p.hash_len
            or parsed.salt_len < p.salt_len
            or parsed.pepper_id != self._current_pepper
        )

    # ---- public API ----------------------------------------------------------------------------------

    def hash(self, password: str | bytes) -> str:
        """Hash a new password with the policy (and the current pepper); refuses empty or over-long input.

        Example::

            stored = hasher.hash("correct horse battery staple")   # "$argon2id$v=19$m=19456,t=2,p=1$..."
        """
        secret = self._prepare(password)
        if not secret.raw:
            raise InvalidPassword("The password is empty.")
        return self._make(secret.normalized)

    def verify_and_update(self, stored_hash: str, password: str | bytes) -> tuple[bool, str | None]:
        """Check a password and, when it matches a hash weaker than the policy, return its replacement.

        Returns ``(False, None)`` on a mismatch (a wrong password never yields a hash), ``(True, None)`` when
        the stored hash is fine, ``(True, new_hash)`` when it should be replaced. Raises InvalidPassword for
        input the policy refuses and InvalidHash (after the same work as a real check) for a stored hash that
        is garbage or unusable here.

        Example::

            ok, new_hash = hasher.verify_and_update(user.password_hash, password)
            if ok and new_hash:
                user.password_hash = new_hash
        """
        secret, parsed, ok, unnormalized = self._verified(stored_hash, password)
        if not ok:
            return False, None
        if unnormalized or self._due(parsed):
            return True, self._make(secret.normalized)
        return True, None

    def verify(self, stored_hash: str, password: str | bytes) -> bool:
        """Whether ``password`` matches ``stored_hash``; False on a mismatch, InvalidHash on garbage.

        Example::

            if not hasher.verify(user.password_hash, password):
                raise bg.AuthenticationError()
        """
        return self._verified(stored_hash, password)[2]

    def _verified(
        self, stored_hash: str, password: str | bytes
    ) -> tuple[_Secret, ParsedArgon2 | ParsedLegacy, bool, bool]:
        """The one verification path: (secret, parsed hash, matched, matched only un-normalised).

        Garbage and unusable hashes cost the same work as a real check before InvalidHash is raised; an empty
        password never matches.
        """
        secret = self._prepare(password)
        parsed = parse_hash(stored_hash)
        stored: ParsedArgon2 | None = parsed if isinstance(parsed, ParsedArgon2) else None
        problem: str | None = None
        if isinstance(parsed, ParsedLegacy):
            # A usable legacy hash costs its own scheme's work (see docs/passwords.md, Timing); an unusable
            # one is refused before any work and runs the argon2 plan on the dummy, as garbage does.
            try:
                return secret, parsed, self._check_legacy(parsed, secret) and bool(secret.raw), False
            except _Unusable as exc:
                problem = str(exc)
        ok, unnormalized, refused = self._run_plan(stored, secret)
        problem = problem or refused
        if parsed is None or problem is not None:
            raise InvalidHash(problem or "The stored hash is not in a recognised format.")
        return secret, parsed, ok and bool(secret.raw), unnormalized

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a stored hash is weaker than the policy (a stronger one is kept); InvalidHash on garbage.

        Weaker means: any argon2 parameter below the policy, argon2i/argon2d, an old argon2 version, a legacy
        scheme, or a pepper other than the current one.

        Example::

            hasher.needs_rehash(bg.PasswordHasher(bg.passwords.RFC_9106_LOW_MEMORY).hash("pw"))   # False: stronger
        """
        parsed = parse_hash(stored_hash)
        if parsed is None:
            raise InvalidHash("The stored hash is not in a recognised format.")
        return self._due(parsed)

    def dummy_verify(self, password: str | bytes) -> bool:
        """Do the work of a real :meth:`verify` for a user that does not exist; always returns False.

        Example::

            ok = hasher.verify(user.password_hash, pw) if user else hasher.dummy_verify(pw)
        """
        self._run_plan(None, self._prepare(password))
        return False

    def authenticate(
        self,
        stored_hash: str | None,
        password: str | bytes,
        *,
        on_rehash: Callable[[str], object] | None = None,
    ) -> bool:
        """Login-flow helper: verify (``None`` = unknown user, same cost) and hand any upgraded hash to a setter.

        Example::

            ok = hasher.authenticate(user and user.password_hash, password,
                                     on_rehash=lambda h: save_hash(user, h))
        """
        if stored_hash is None:
            return self.dummy_verify(password)
        ok, new_hash = self.verify_and_update(stored_hash, password)
        if ok and new_hash is not None and on_rehash is not None:
            on_rehash(new_hash)
        return ok

    # ---- async ---------------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="backend-guard-argon2")
            return self._pool

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
            return sem

    async def _offload(self, call: Callable[[], T]) -> T:
        # The semaphore keeps waiting calls in the event loop (cancellable, first come first served); the pool
        # bounds the threads, and so the memory, across every loop sharing this hasher.
        loop = asyncio.get_running_loop()
        async with self._semaphore(loop):
            return await loop.run_in_executor(self._executor(), call)

    async def ahash(self, password: str | bytes) -> str:
        """:meth:`hash` in the worker pool, off the event loop.

        Example::

            stored = await hasher.ahash(form.password)
        """
        return await self._offload(functools.partial(self.hash, password))

    async def averify(self, stored_hash: str, password: str | bytes) -> bool:
        """:meth:`verify` in the worker pool, off the event loop.

        Example::

            ok = await hasher.averify(user.password_hash, form.password)
        """
        return await self._offload(functools.partial(self.verify, stored_hash, password))

    async def averify_and_update(self, stored_hash: str, password: str | bytes) -> tuple[bool, str | None]:
        """:meth:`verify_and_update` in the worker pool, off the event loop.

        Example::

            ok, new_hash = await hasher.averify_and_update(user.password_hash, form.password)
        """
        return await self._offload(functools.partial(self.verify_and_update, stored_hash, password))

    async def adummy_verify(self, password: str | bytes) -> bool:
        """:meth:`dummy_verify` in the worker pool; always returns False.

        Example::

            ok = await hasher.averify(user.password_hash, pw) if user else await hasher.adummy_verify(pw)
        """
        return await self._offload(functools.partial(self.dummy_verify, password))

    async def aauthenticate(
        self,
        stored_hash: str | None,
        password: str | bytes,
        *,
        on_rehash: Callable[[str], object] | Callable[[str], Awaitable[object]] | None = None,
    ) -> bool:
        """:meth:`authenticate` off the event loop; ``on_rehash`` may be a plain or an async function.

        Example::

            ok = await hasher.aauthenticate(user and user.password_hash, pw, on_rehash=repo.save_hash)
        """
        if stored_hash is None:
            return await self.adummy_verify(password)
        ok, new_hash = await self.averify_and_update(stored_hash, password)
        if ok and new_hash is not None and on_rehash is not None:
            result = on_rehash(new_hash)
            if inspect.isawaitable(result):
                await result
        return ok

    def close(self) -> None:
        """Shut the worker pool down (it is created again on the next async call).

        Example::

            hasher.close()   # e.g. in an application's shutdown hook
        """
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def calibrate(
    target_ms: float = 100.0,
    *,
    memory_cost: int = DEFAULT_PARAMETERS.memory_cost,
    parallelism: int = 1,
    max_time_cost: int = 64,
    samples: int = 3,
    timer: Callable[[], float] = time.perf_counter,
) -> Argon2Parameters:
    """Pick argon2id parameters whose hashing takes about ``target_ms`` on this host, never below OWASP.

    Memory and parallelism are fixed; the iteration count grows until a hash costs about ``target_ms``
    (measured median of ``samples`` runs at OWASP's floor for that memory, then scaled, since the cost is
    close to linear in the iterations).

    Example::

        params = bg.calibrate(target_ms=250)
        hasher = bg.PasswordHasher(params)
    """
    floor = _owasp_min_time_cost(memory_cost)
    if floor is None:
        raise ConfigurationError(f"memory_cost must be at least {_OWASP_TABLE[-1][0]} KiB to meet OWASP.")
    if not 0 < target_ms < float("inf") or samples < 1:
        raise ConfigurationError("target_ms and samples must be positive (and target_ms finite).")
    probe = Argon2Parameters(time_cost=floor, memory_cost=memory_cost, parallelism=parallelism)
    hasher = PasswordHasher(probe)
    hasher.hash("calibration warm-up")  # first-run effects (page faults, lazy imports) stay out of the median
    durations = []
    for _ in range(samples):
        start = timer()
        hasher.hash("calibration probe")
        durations.append(timer() - start)
    per_pass_ms = statistics.median(durations) * 1000.0 / floor
    time_cost = int(target_ms // per_pass_ms) if per_pass_ms > 0 else max_time_cost
    time_cost = max(floor, min(max_time_cost, time_cost))
    return Argon2Parameters(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
