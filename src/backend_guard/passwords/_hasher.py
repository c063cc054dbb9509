"""Password hashing: :class:`PasswordHasher`, argon2id with upgrade-only rehashing, legacy migration, peppers.

What lives here: the hasher's options and its decisions: which stored hashes it verifies and how (the *plan*),
when a stored hash is *weaker* than the policy (and only then a new one is offered), and the sync and async
public API. The input policy is ``_input.py``, the libargon2 calls ``_argon2.py``, stored formats and legacy
verifiers ``_schemes.py``, the async worker pool ``_pool.py``.

Timing: a wrong password, an unknown user (:meth:`PasswordHasher.dummy_verify`) and a garbage or unusable
stored hash all run the same *plan*: one argon2 verification per form of the password (the normalised form,
then the form as typed when normalisation changed it), against the stored hash where it can be checked and
against a dummy hash at the policy's parameters where it cannot (or there is none). Only a match ends the plan
early: see ``PasswordHasher._run_plan``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn

from .._check import check_bool, check_int, check_mapping, check_str, optional
from ..exceptions import ConfigurationError, InvalidHash, InvalidPassword
from ._argon2 import ARGON2_VERSION, Unusable, WorkLimits, check, dummy_hash, new_hash
from ._input import NORMAL_FORMS, NormalForm, Secret, prepare
from ._parameters import DEFAULT_PARAMETERS, Argon2Parameters
from ._pool import WorkerPool, default_concurrency
from ._schemes import ARGON2_ID, ParsedArgon2, ParsedLegacy, check_peppers, parse_hash, verify_legacy

__all__ = ["PasswordHasher"]

_UNRECOGNISED = "The stored hash is not in a recognised format."
RehashSetter = Callable[[str], object] | Callable[[str], Awaitable[object]]


def _first_problem(rules: tuple[tuple[bool, str], ...]) -> str | None:
    """The message of the first rule that does not hold, or None."""
    return next((message for holds, message in rules if not holds), None)


def _check_policy(parameters: object, allow_weak: bool) -> None:
    if not isinstance(parameters, Argon2Parameters):
        raise ConfigurationError("parameters must be an Argon2Parameters.")
    if not allow_weak and not parameters.meets_owasp():
        raise ConfigurationError(
            "These argon2 parameters are below OWASP's minimum; pass allow_weak=True only in tests."
        )


def _check_limits(
    parameters: Argon2Parameters,
    normalize: object,
    max_password_bytes: object,
    memory_budget_kib: object,
    max_concurrency: object,
    max_verify_memory_kib: int,
) -> None:
    problem = _first_problem(
        (
            (normalize in NORMAL_FORMS, "normalize must be one of NFC, NFD, NFKC, NFKD or None."),
            (
                type(max_password_bytes) is int and 8 <= max_password_bytes <= 1 << 20,
                "max_password_bytes must be between 8 and 1 MiB.",
            ),
            (type(memory_budget_kib) is int and memory_budget_kib >= 1, "memory_budget_kib must be a positive int."),
            (
                max_concurrency is None or (type(max_concurrency) is int and max_concurrency >= 1),
                "max_concurrency must be a positive int.",
            ),
            (
                max_verify_memory_kib >= parameters.memory_cost,
                "max_verify_memory_kib must be at least the policy's memory_cost.",
            ),
        )
    )
    if problem is not None:
        raise ConfigurationError(problem)


async def _hand_over(on_rehash: RehashSetter, new_hash: str) -> None:
    """Give ``new_hash`` to a plain or an async setter."""
    result = on_rehash(new_hash)
    if inspect.isawaitable(result):
        await result


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
        _check_policy(parameters, allow_weak)
        _check_limits(
            parameters, normalize, max_password_bytes, memory_budget_kib, max_concurrency, max_verify_memory_kib
        )
        self.parameters = parameters
        self._current_pepper = check_peppers(peppers, current_pepper)
        self._peppers: dict[str, bytes] = dict(peppers or {})
        self.normalize: NormalForm | None = normalize
        self.max_password_bytes = max_password_bytes
        self.accept_legacy = accept_legacy
        self._limits = WorkLimits.for_policy(parameters, max_verify_memory_kib)
        if max_concurrency is None:
            max_concurrency = default_concurrency(memory_budget_kib, parameters.memory_cost)
        self._dummy = dummy_hash(parameters, self._current_pepper)
        self._workers = WorkerPool(max_concurrency)

    # Both stay plain settable attributes, as they were: each is read where it bounds the work.

    @property
    def max_verify_memory_kib(self) -> int:
        """The most memory (KiB) a stored argon2 hash may ask for; a new value bounds the next verifications.

        Example::

            hasher.max_verify_memory_kib = 256 * 1024   # refuse stored hashes asking for more than 256 MiB
        """
        return self._limits.max_memory_kib

    @max_verify_memory_kib.setter
    def max_verify_memory_kib(self, value: int) -> None:
        # The memory x iterations bound keeps the value it was built with (as before the package split).
        self._limits = dataclasses.replace(self._limits, max_memory_kib=value)

    @property
    def max_concurrency(self) -> int:
        """The most hashes the async methods run at once; a new value sizes the pool when it is next created.

        Example::

            hasher.max_concurrency   # e.g. 3
        """
        return self._workers.size

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:
        self._workers.size = value

    def __repr__(self) -> str:
        # Never the peppers: only their ids.
        return (
            f"PasswordHasher({self.parameters!r}, current_pepper={self._current_pepper!r}, "
            f"pepper_ids={sorted(self._peppers)!r}, normalize={self.normalize!r})"
        )

    # ---- the plan ------------------------------------------------------------------------------------

    def _prepare(self, password: object) -> Secret:
        return prepare(password, limit=self.max_password_bytes, normalize=self.normalize)

    def _refusal(self, stored: ParsedArgon2 | None) -> str | None:
        """Why ``stored`` cannot be checked at all (no hash, out of bounds, unknown pepper), before any work."""
        if stored is None:
            return _UNRECOGNISED
        try:
            self._limits.check(stored)
            if stored.pepper_id is not None and stored.pepper_id not in self._peppers:
                raise Unusable("The stored hash uses a pepper that is not configured.")
        except Unusable as exc:
            return str(exc)
        return None

    def _matches(self, stored: ParsedArgon2, form: bytes, index: int) -> bool:
        """One step of the plan against the stored hash. The un-normalised form (``index`` > 0) can only match
        an unpeppered hash (made elsewhere, where nobody normalised): against a peppered one it is still
        verified, and its answer ignored."""
        return check(stored, form, self._peppers) and (index == 0 or stored.pepper_id is None)

    def _run_plan(self, stored: ParsedArgon2 | None, secret: Secret) -> tuple[bool, bool, str | None]:
        """The argon2 plan: (matched, matched only un-normalised, why the stored hash is unusable or None).

        One verification per form of the password (:attr:`Secret.forms`), in order, whatever the stored hash:
        against ``stored`` while it can be checked, against the dummy hash (policy parameters) when there is
        none (``None``: an unknown user or a garbage string), when it is refused before any work, or from the
        step where libargon2 refuses it. So a wrong password, an unknown user and an unusable hash cost the
        same number of verifications for the same password, by construction; only a match ends the plan early.
        """
        problem = self._refusal(stored)
        for index, form in enumerate(secret.forms):
            if stored is not None and problem is None:
                try:
                    if self._matches(stored, form, index):
                        return True, index > 0, None
                    continue
                except Unusable as exc:  # pragma: no cover - libargon2 refusing what WorkLimits accepted
                    # It refused without doing the work: this step and the rest run on the dummy.
                    problem = str(exc)
            check(self._dummy, form, self._peppers)
        return False, False, problem

    def _check_legacy(self, parsed: ParsedLegacy, secret: Secret) -> bool:
        """Whether the raw password matches a legacy hash. Raises Unusable, before any costly work."""
        if not self.accept_legacy:
            raise Unusable("Legacy hash schemes are disabled.")
        if parsed.scheme == "django_argon2":
            inner = parse_hash(parsed.body)
            if not isinstance(inner, ParsedArgon2):  # pragma: no cover - parse_hash checked the same body
                raise Unusable("The stored legacy hash cannot be verified.")
            self._limits.check(inner)
        try:
            return verify_legacy(parsed, secret.raw)
        except ImportError:
            raise Unusable("A bcrypt hash needs the 'bcrypt' package (backend-guard[bcrypt]).") from None
        except ValueError:
            raise Unusable("The stored legacy hash cannot be verified.") from None

    def _refused(self, secret: Secret, problem: str) -> NoReturn:
        """An unusable stored hash: the plan's work on the dummy, then InvalidHash (same cost as garbage)."""
        self._run_plan(None, secret)
        raise InvalidHash(problem)

    def _verified(
        self, stored_hash: str, password: str | bytes
    ) -> tuple[Secret, ParsedArgon2 | ParsedLegacy, bool, bool]:
        """The one verification path: (secret, parsed hash, matched, matched only un-normalised).

        Garbage and unusable hashes cost the same work as a real check before InvalidHash is raised; an empty
        password never matches.
        """
        secret = self._prepare(password)
        parsed = parse_hash(stored_hash)
        if isinstance(parsed, ParsedLegacy):
            # A usable legacy hash costs its own scheme's work (see docs/passwords.md, Timing); an unusable
            # one is refused before any work and runs the argon2 plan on the dummy, as garbage does.
            try:
                return secret, parsed, self._check_legacy(parsed, secret) and bool(secret.raw), False
            except Unusable as exc:
                refusal = str(exc)
            # Outside the handler: InvalidHash alone, never chained to the internal refusal.
            self._refused(secret, refusal)
        ok, unnormalized, problem = self._run_plan(parsed, secret)
        if parsed is None or problem is not None:
            raise InvalidHash(problem or _UNRECOGNISED)
        return secret, parsed, ok and bool(secret.raw), unnormalized

    def _due(self, parsed: ParsedArgon2 | ParsedLegacy) -> bool:
        """Whether a (matched) stored hash is weaker than the policy: a legacy scheme, or any weaker part."""
        if isinstance(parsed, ParsedLegacy):
            return True
        p = self.parameters
        weaker = (
            parsed.type != ARGON2_ID,
            parsed.version != ARGON2_VERSION,
            parsed.time_cost < p.time_cost,
            parsed.memory_cost < p.memory_cost,
            parsed.parallelism < p.parallelism,
            parsed.hash_len < p.hash_len,
            parsed.salt_len < p.salt_len,
            parsed.pepper_id != self._current_pepper,
        )
        return any(weaker)

    # ---- public API ----------------------------------------------------------------------------------

    def hash(self, password: str | bytes) -> str:
        """Hash a new password with the policy (and the current pepper); refuses empty or over-long input.

        Example::

            stored = hasher.hash("correct horse battery staple")   # "$argon2id$v=19$m=19456,t=2,p=1$..."
        """
        secret = self._prepare(password)
        if not secret.raw:
            raise InvalidPassword("The password is empty.")
        return new_hash(self.parameters, secret.normalized, self._current_pepper, self._peppers)

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
            return True, new_hash(self.parameters, secret.normalized, self._current_pepper, self._peppers)
        return True, None

    def verify(self, stored_hash: str, password: str | bytes) -> bool:
        """Whether ``password`` matches ``stored_hash``; False on a mismatch, InvalidHash on garbage.

        Example::

            if not hasher.verify(user.password_hash, password):
                raise bg.AuthenticationError()
        """
        return self._verified(stored_hash, password)[2]

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a stored hash is weaker than the policy (a stronger one is kept); InvalidHash on garbage.

        Weaker means: any argon2 parameter below the policy, argon2i/argon2d, an old argon2 version, a legacy
        scheme, or a pepper other than the current one.

        Example::

            hasher.needs_rehash(bg.PasswordHasher(bg.passwords.RFC_9106_LOW_MEMORY).hash("pw"))   # False: stronger
        """
        parsed = parse_hash(stored_hash)
        if parsed is None:
            raise InvalidHash(_UNRECOGNISED)
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

    async def ahash(self, password: str | bytes) -> str:
        """:meth:`hash` in the worker pool, off the event loop.

        Example::

            stored = await hasher.ahash(form.password)
        """
        return await self._workers.run(functools.partial(self.hash, password))

    async def averify(self, stored_hash: str, password: str | bytes) -> bool:
        """:meth:`verify` in the worker pool, off the event loop.

        Example::

            ok = await hasher.averify(user.password_hash, form.password)
        """
        return await self._workers.run(functools.partial(self.verify, stored_hash, password))

    async def averify_and_update(self, stored_hash: str, password: str | bytes) -> tuple[bool, str | None]:
        """:meth:`verify_and_update` in the worker pool, off the event loop.

        Example::

            ok, new_hash = await hasher.averify_and_update(user.password_hash, form.password)
        """
        return await self._workers.run(functools.partial(self.verify_and_update, stored_hash, password))

    async def adummy_verify(self, password: str | bytes) -> bool:
        """:meth:`dummy_verify` in the worker pool; always returns False.

        Example::

            ok = await hasher.averify(user.password_hash, pw) if user else await hasher.adummy_verify(pw)
        """
        return await self._workers.run(functools.partial(self.dummy_verify, password))

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
            await _hand_over(on_rehash, new_hash)
        return ok

    def close(self) -> None:
        """Shut the worker pool down (it is created again on the next async call).

        Example::

            hasher.close()   # e.g. in an application's shutdown hook
        """
        self._workers.close()
