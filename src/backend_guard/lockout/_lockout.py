"""The :class:`Lockout` class: a lockout's settings, and its sync, async and route-hook API over one store.

Each call is: the plan of its (account, address) (``_keys.py``), one atomic script on the store
(``_scripts.py``), and one shared helper that turns the reply into a status or an attempt (``_decisions.py``,
audited by ``_audit.py``); the sync and async twins differ only in the store call. The policy itself (which
numbers are allowed, how they compile into the scripts) is ``_policy.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Container, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, TypeVar

from .._cache import BoundedCache
from .._check import check_instance, optional
from ..clientip import ClientIP
from ..errors import ErrorPolicy
from ..exceptions import ConfigurationError, InvalidCredentials, StorageError
from ..storage import MemoryStore, Store, StoreLike, open_store
from ..storage.base import is_cluster
from ._attempt import Attempt
from ._audit import emit, log
from ._decisions import Decisions, reserve_args
from ._keys import PLAN_BYTES, PLAN_CACHE, KeyPlanner, Plan, mac_key, records_of
from ._policy import NIST_CEILING, check_options, check_policy
from ._routes import lockout_dependency, protect_login
from ._scripts import PEEK, ReserveReply, SuccessReply, scripts_for
from ._status import LockoutEvent, LockoutStatus, LockRecord

__all__ = ["Lockout", "OnStorageError"]

F = TypeVar("F", bound=Callable[..., Any])

#: How many of an account's per-address counters one scan of an unlock returns, and how many scans it makes at
#: most (a spray from many addresses leaves more than one scan returns; a flood still spraying during the unlock
#: cannot keep it going for ever).
_UNLOCK_BATCH = 10_000
_UNLOCK_ROUNDS = 100

#: Lockout's settings compiled into its scripts and keys when it is made: read-only afterwards.
_COMPILED = frozenset(
    {
        "store",
        "max_failures",
        "window",
        "lockout_duration",
        "backoff_factor",
        "max_lockout_duration",
        "account_max_failures",
        "account_ceiling",
        "address_max_failures",
        "max_remembered_addresses",
        "ipv6_prefix",
        "extend_while_locked",
        "namespace",
    }
)

OnStorageError = Literal["allow", "deny"]


class Lockout:
    """Account lockout policy over a store: counters, thresholds, progressive locks, and the login helper.

    ``max_failures`` failures of one account from one address within ``window`` seconds lock that pair for
    ``lockout_duration`` seconds; each further lock within ``backoff_reset`` seconds lasts ``backoff_factor``
    times longer, up to ``max_lockout_duration``. After a lock ends, the next failure within ``window`` locks
    again (for longer); ``window`` seconds without a failure start the count over. The ``account``,
    ``ceiling`` and ``address`` scopes follow the same rules with their own thresholds (see the module doc).

    ``secret`` keys the MAC (keyed BLAKE2b) that hashes identifiers in storage keys (set one per deployment;
    without it a fixed key is used, which still hides the names in key listings but not from a dictionary
    attack).
    ``generic=True`` makes a locked account answer exactly as a wrong password (:class:`InvalidCredentials`).
    ``on_storage_error``: ``"deny"`` (fail closed: a :class:`~backend_guard.exceptions.StorageError`, a 503,
    never a 500) or ``"allow"`` (fail open: the attempt goes through unchecked and is logged).
    The policy is compiled into the lockout's scripts and keys when it is made: its thresholds, windows,
    durations, ``backoff_factor``, ``extend_while_locked``, ``max_remembered_addresses``, ``ipv6_prefix``,
    ``namespace`` and ``store`` are read-only afterwards (setting one raises ``AttributeError``; build a new
    ``Lockout`` to change them), while ``generic``, ``generic_detail``, ``on_storage_error``, ``on_event`` and
    ``log_identifiers`` are read on every call and may be changed. ``client_ip`` is the default trusted-proxy
    resolver of :meth:`protect` and :meth:`dependency` (behind a Guard with trusted proxies they use the
    address it resolved for the request, with or without one); ``errors`` the
    :class:`~backend_guard.errors.ErrorPolicy` its refusals there are rendered with (a lockout of a stack built
    from settings has the settings' ``errors``; default: problem documents). Every duration is a number of seconds from
    0.001 (shorter ones count as 1 ms) up to ``MAX_DURATION`` (10 years); counts are integers (an ``IntEnum``
    member counts as its value; ``bool`` is refused); ``address_max_failures`` is at most
    ``MAX_ADDRESS_FAILURES`` (1,000,000).
    Anything else raises :class:`~backend_guard.exceptions.ConfigurationError`.

    Example::

        lock = bg.Lockout(store="redis://127.0.0.1:6379/0", max_failures=5, secret=settings.LOCKOUT_KEY)
        with lock.attempt(form["username"], client_ip) as attempt:
            if hasher.verify(user.password_hash, form["password"]):
                attempt.succeeded()
            else:
                raise lock.invalid_credentials()
    """

    def __init__(
        self,
        store: StoreLike = "memory://",
        max_failures: int = 5,
        *,
        window: float = 900.0,
        lockout_duration: float = 300.0,
        backoff_factor: float = 2.0,
        max_lockout_duration: float = 3600.0,
        backoff_reset: float = 86_400.0,
        account_max_failures: int | None = 20,
        account_ceiling: int = NIST_CEILING,
        ceiling_window: float = 86_400.0,
        address_max_failures: int | None = None,
        remember_addresses_for: float = 30 * 86_400.0,
        max_remembered_addresses: int = 10,
        ipv6_prefix: int = 64,
        extend_while_locked: bool = False,
        generic: bool = False,
        generic_detail: str = "Invalid account name or password.",
        on_storage_error: OnStorageError = "deny",
        secret: str | bytes | None = None,
        on_event: Callable[[LockoutEvent], None] | None = None,
        log_identifiers: bool = False,
        namespace: str = "lockout",
        client_ip: ClientIP | None = None,
        errors: ErrorPolicy | None = None,
    ) -> None:
        check_options(
            {"extend_while_locked": extend_while_locked, "generic": generic, "log_identifiers": log_identifiers},
            {"generic_detail": generic_detail, "namespace": namespace},
            ipv6_prefix,
            on_event,
            secret,
        )
        checked = check_policy(
            max_failures=max_failures,
            window=window,
            lockout_duration=lockout_duration,
            backoff_factor=backoff_factor,
            max_lockout_duration=max_lockout_duration,
            backoff_reset=backoff_reset,
            account_max_failures=account_max_failures,
            account_ceiling=account_ceiling,
            ceiling_window=ceiling_window,
            address_max_failures=address_max_failures,
            remember_addresses_for=remember_addresses_for,
            max_remembered_addresses=max_remembered_addresses,
            ipv6_prefix=ipv6_prefix,
            extend_while_locked=extend_while_locked,
            on_storage_error=on_storage_error,
        )

        self.store: Store = open_store(store)
        if checked.address_max_failures is not None and is_cluster(self.store):
            # The address counter is shared by every account, so it cannot share a hash slot with each
            # account's keys, and the reservation must be one atomic script over all of them.
            raise ConfigurationError(
                "address_max_failures cannot be used on Redis Cluster: the address-wide counter would be in "
                "another hash slot than the account's counters. Limit addresses with a RateLimiter instead."
            )
        self.max_failures = checked.max_failures
        self.window = checked.window
        self.lockout_duration = checked.lockout_duration
        self.backoff_factor = checked.backoff_factor
        self.max_lockout_duration = checked.max_lockout_duration
        self.account_max_failures = checked.account_max_failures
        self.account_ceiling = checked.account_ceiling
        self.address_max_failures = checked.address_max_failures
        self.max_remembered_addresses = checked.max_remembered_addresses
        self.ipv6_prefix = ipv6_prefix
        self.extend_while_locked = extend_while_locked
        self.generic = generic
        self.generic_detail = generic_detail
        self.on_storage_error: OnStorageError = on_storage_error
        self.on_event = on_event
        self.log_identifiers = log_identifiers
        self.client_ip = client_ip
        #: The policy :meth:`protect`'s refusals are rendered with (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)
        self.namespace = namespace
        key = mac_key(secret, shared=not isinstance(self.store, MemoryStore))
        self._script_policy = checked.policy
        self._reserve_script, self._success_script = scripts_for(self._script_policy)
        self._plans: BoundedCache[tuple[str | bytes, str | None], Plan] = BoundedCache(
            "lockout.plans", max_entries=PLAN_CACHE, max_bytes=PLAN_BYTES
        )
        self._addr_ids: BoundedCache[str, str] = BoundedCache(
            "lockout.addresses", max_entries=PLAN_CACHE, max_bytes=PLAN_BYTES // 4
        )
        self._decide = Decisions()  # given this lockout on each call: no cycle
        keys = KeyPlanner(
            self.store,
            namespace,
            key,
            ipv6_prefix,
            checked.address_max_failures is not None,
            self._plans,
            self._addr_ids,
        )
        self._keys = keys
        # The planner's own methods, bound once: a decision calls ``_plan`` first, at no cost over a method here.
        self._plan = keys.plan
        self._digest = keys.digest

    def __setattr__(self, name: str, value: Any) -> None:
        # Only __init__ sets attributes; once the scripts exist, a compiled setting must not look changeable.
        if name in _COMPILED and "_reserve_script" in self.__dict__:
            raise AttributeError(
                f"Lockout.{name} is compiled into its scripts and keys when it is made: build a new Lockout "
                "to change it."
            )
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Lockout(store={self.store!r}, max_failures={self.max_failures})"

    # -- identifiers, errors -------------------------------------------------------------------------------

    def account_id(self, account: str | bytes) -> str:
        """The keyed hash that stands for ``account`` in storage keys, audit events and :class:`LockRecord`.

        Example::

            lock.account_id("Alice") == lock.account_id(" alice ")   # True
        """
        return self._keys.account_id(account)

    def address_id(self, ip: str) -> str:
        """The keyed hash that stands for the address bucket of ``ip`` in storage keys and :class:`LockRecord`.

        Example::

            [rec for rec in lock.locked_accounts() if rec.address_id == lock.address_id("203.0.113.7")]
        """
        return self._plan("", ip).keys[0].rpartition(":p:")[2]

    def invalid_credentials(self) -> InvalidCredentials:
        """The error to raise on a wrong password; in ``generic`` mode a locked account raises the same.

        Example::

            raise lock.invalid_credentials()
        """
        return InvalidCredentials(self.generic_detail)

    # -- sync API ------------------------------------------------------------------------------------------

    def check(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Whether ``account`` is locked for the address ``ip``, without counting anything.

        Example::

            if lock.check("alice", "203.0.113.7").locked: ...
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(self.store.run(self._reserve_script, plan.keys, reserve_args(plan, 0)))
        except StorageError as exc:
            return self._decide.degraded(self, exc, "check")
        return self._decide.status(reply)

    def record_failure(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Count one failed login (when you verify first and record after); returns the status after it.

        A failure while locked is not counted and does not extend the lock (unless ``extend_while_locked``).
        Prefer :meth:`attempt`, which reserves before the check and so stays exact under parallel guesses.

        Example::

            status = lock.record_failure("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(self.store.run(self._reserve_script, plan.keys, reserve_args(plan, 1)))
        except StorageError as exc:
            return self._decide.degraded(self, exc, "record_failure")
        return self._decide.after_failure(self, plan, reply)

    def record_success(self, account: str | bytes, ip: str | None = None) -> None:
        """Record a successful login: clears this (account, address) pair and remembers the address.

        Never clears an address-wide counter. A store failure here is logged and ignored (the login already
        succeeded).

        Example::

            lock.record_success("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = SuccessReply.from_reply(
                self.store.run(self._success_script, plan.keys, self._decide.success_args(self, plan, 0, 0))
            )
        except StorageError:
            log.warning("lockout record_success skipped: store unavailable")
            return
        self._decide.after_success(self, plan, reply)

    def unlock(self, account: str | bytes, ip: str | None = None) -> int:
        """Lift every lock and counter of ``account`` (or only its pair with ``ip``); raises StorageError.

        Returns how many stored counters (with their locks) it removed: 0 when the account had none.

        Example::

            lock.unlock("alice")
        """
        removed, pattern = 0, self._keys.pair_pattern(account)
        for _ in range(_UNLOCK_ROUNDS):  # a spray leaves more pairs than one scan returns: each round deletes some
            found = self.store.scan(pattern, count=_UNLOCK_BATCH) if ip is None else []
            keys, plan = self._keys.unlock_keys(account or "", ip, found)  # None: nobody's account, as check reads it
            removed += self.store.delete(*keys)
            if len(found) < _UNLOCK_BATCH:
                break
        emit(self, "unlock", plan)
        return removed

    def unlock_address(self, ip: str) -> int:
        """Lift the address-wide lock and counter of ``ip`` (``address_max_failures``); how many keys it removed.

        Example::

            lock.unlock_address("203.0.113.7")
        """
        keys, plan = self._keys.unlock_keys(None, ip, [])
        removed = self.store.delete(*keys)
        emit(self, "unlock", plan, scope="address")
        return removed

    @contextmanager
    def attempt(self, account: str | bytes, ip: str | None = None) -> Iterator[Attempt]:
        """Reserve one login attempt before the password check; raise AccountLocked when locked.

        The reservation counts as a failure unless the block calls ``attempt.succeeded()``. In ``generic``
        mode a locked account raises :class:`InvalidCredentials` instead, exactly as a wrong password.

        Example::

            with lock.attempt(username, client_ip) as attempt:
                if hasher.verify(stored_hash, password):
                    attempt.succeeded()
        """
        plan = self._plan(account, ip)
        try:
            first = ReserveReply.from_reply(self.store.run(self._reserve_script, plan.keys, reserve_args(plan, 1)))
        except StorageError as exc:
            yield Attempt(None, self._decide.degraded(self, exc, "attempt"), 0, 0)
            return
        att = self._decide.reserved(self, plan, first)
        try:
            yield att
        finally:
            args = self._decide.settle(self, att, plan, first)
            if args is not None:
                try:
                    reply = SuccessReply.from_reply(self.store.run(self._success_script, plan.keys, args))
                except StorageError:
                    log.warning("lockout success not recorded: store unavailable")
                else:
                    self._decide.after_success(self, plan, reply)

    def locked_accounts(
        self, limit: int = 1000, *, account: str | bytes | None = None, ip: str | None = None
    ) -> list[LockRecord]:
        """Live account-wide and ceiling locks (and pair locks), found with SCAN (never KEYS); only those of
        ``account`` and/or the pair locks at ``ip`` when given (their keys alone are scanned).

        Example::

            for rec in lock.locked_accounts():
                log.info("locked %s (%s) for %.0f s", rec.account_id, rec.scope, rec.retry_after)
        """
        return self.scan_locks(limit, account=account, ip=ip)[0]

    def scan_locks(
        self, limit: int = 1000, *, account: str | bytes | None = None, ip: str | None = None
    ) -> tuple[list[LockRecord], bool]:
        """:meth:`locked_accounts` and whether it is complete: False when there are more than ``limit`` live locks,
        or when the SCAN stopped at its cap of ``4 * limit`` keys (some locks may not have been read).

        Example::

            records, complete = lock.scan_locks(10_000)
        """
        out: list[LockRecord] = []
        keys = self.store.scan(self._keys.lock_pattern(account, ip), count=limit * 4)
        for key in keys:
            if self._collect(out, key, self.store.run(PEEK, [key], []), limit + 1):
                return out[:limit], False  # more live locks than limit
        return out, len(keys) < limit * 4

    # -- async API -----------------------------------------------------------------------------------------

    async def acheck(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Async twin of :meth:`check`.

        Example::

            status = await lock.acheck("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(
                await self.store.arun(self._reserve_script, plan.keys, reserve_args(plan, 0))
            )
        except StorageError as exc:
            return self._decide.degraded(self, exc, "check")
        return self._decide.status(reply)

    async def arecord_failure(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Async twin of :meth:`record_failure`.

        Example::

            status = await lock.arecord_failure("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(
                await self.store.arun(self._reserve_script, plan.keys, reserve_args(plan, 1))
            )
        except StorageError as exc:
            return self._decide.degraded(self, exc, "record_failure")
        return self._decide.after_failure(self, plan, reply)

    async def arecord_success(self, account: str | bytes, ip: str | None = None) -> None:
        """Async twin of :meth:`record_success`.

        Example::

            await lock.arecord_success("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = SuccessReply.from_reply(
                await self.store.arun(self._success_script, plan.keys, self._decide.success_args(self, plan, 0, 0))
            )
        except StorageError:
            log.warning("lockout record_success skipped: store unavailable")
            return
        self._decide.after_success(self, plan, reply)

    async def aunlock(self, account: str | bytes, ip: str | None = None) -> int:
        """Async twin of :meth:`unlock`.

        Example::

            await lock.aunlock("alice")
        """
        removed, pattern = 0, self._keys.pair_pattern(account)
        for _ in range(_UNLOCK_ROUNDS):
            found = await self.store.ascan(pattern, count=_UNLOCK_BATCH) if ip is None else []
            keys, plan = self._keys.unlock_keys(account or "", ip, found)  # None: nobody's account, as check reads it
            removed += await self.store.adelete(*keys)
            if len(found) < _UNLOCK_BATCH:
                break
        emit(self, "unlock", plan)
        return removed

    async def aunlock_address(self, ip: str) -> int:
        """Async twin of :meth:`unlock_address`.

        Example::

            await lock.aunlock_address("203.0.113.7")
        """
        keys, plan = self._keys.unlock_keys(None, ip, [])
        removed = await self.store.adelete(*keys)
        emit(self, "unlock", plan, scope="address")
        return removed

    @asynccontextmanager
    async def aattempt(self, account: str | bytes, ip: str | None = None) -> AsyncIterator[Attempt]:
        """Async twin of :meth:`attempt`.

        Example::

            async with lock.aattempt(username, client_ip) as attempt:
                if await hasher.averify(stored_hash, password):
                    attempt.succeeded()
        """
        plan = self._plan(account, ip)
        try:
            first = ReserveReply.from_reply(
                await self.store.arun(self._reserve_script, plan.keys, reserve_args(plan, 1))
            )
        except StorageError as exc:
            yield Attempt(None, self._decide.degraded(self, exc, "attempt"), 0, 0)
            return
        att = self._decide.reserved(self, plan, first)
        try:
            yield att
        finally:
            args = self._decide.settle(self, att, plan, first)
            if args is not None:
                try:
                    reply = SuccessReply.from_reply(await self.store.arun(self._success_script, plan.keys, args))
                except StorageError:
                    log.warning("lockout success not recorded: store unavailable")
                else:
                    self._decide.after_success(self, plan, reply)

    async def alocked_accounts(
        self, limit: int = 1000, *, account: str | bytes | None = None, ip: str | None = None
    ) -> list[LockRecord]:
        """Async twin of :meth:`locked_accounts`.

        Example::

            records = await lock.alocked_accounts()
        """
        return (await self.ascan_locks(limit, account=account, ip=ip))[0]

    async def ascan_locks(
        self, limit: int = 1000, *, account: str | bytes | None = None, ip: str | None = None
    ) -> tuple[list[LockRecord], bool]:
        """Async twin of :meth:`scan_locks`.

        Example::

            records, complete = await lock.ascan_locks(10_000)
        """
        out: list[LockRecord] = []
        keys = await self.store.ascan(self._keys.lock_pattern(account, ip), count=limit * 4)
        for key in keys:
            if self._collect(out, key, await self.store.arun(PEEK, [key], []), limit + 1):
                return out[:limit], False  # more live locks than limit
        return out, len(keys) < limit * 4

    def _collect(self, out: list[LockRecord], key: str, reply: Any, limit: int) -> bool:
        """Add the live locks of one key's PEEK reply to ``out``; True once ``limit`` records were found."""
        out += records_of(key, reply)
        return len(out) >= limit

    # -- framework integration -----------------------------------------------------------------------------

    def protect(
        self,
        *,
        field: str = "username",
        account: Callable[[Any], str | None] | None = None,
        success_statuses: Container[int] = (),
        client_ip: ClientIP | None = None,
    ) -> Callable[[F], F]:
        """Decorator for a login route in FastAPI, Starlette, Flask or Django (sync or async).

        Reads the account from the form field or JSON member ``field`` (or ``account(call)``), reserves an
        attempt before the route runs (a locked account gets the 429 ``account-locked`` problem document with
        ``Retry-After``, or in ``generic`` mode the :class:`InvalidCredentials` 401), and counts it as a
        failure unless the route reports a success: ``login_attempt.succeeded()`` (``request.state``,
        ``flask.g`` or Django's ``request``), Django's ``user_logged_in`` signal, or a status the application
        lists in ``success_statuses`` (none by default; Django's ``user_login_failed`` wins over a status).
        A body the lockout cannot read one account name from is refused before the route: 413 over 1 MiB,
        415 neither JSON nor a form, 400 no single non-empty string name (or the name in the query string);
        a GET, HEAD or OPTIONS without a body is not an attempt (one carrying a body is, declared or not: an
        HTTP/2 request need not send ``Content-Length``). A custom ``account`` getter that returns
        None or an empty name refuses the request with 400. The client address is the one the outermost
        layer with trusted proxies resolved for the request (a Guard built from
        ``GuardSettings(trusted_proxies=...)``); with no such layer, ``client_ip`` (default: the lockout's
        own) resolves it. Raise ``lock.invalid_credentials()`` on a wrong password so generic mode's answer is
        the same.

        Example::

            @app.post("/login")
            @lock.protect(field="username")
            async def login(form: LoginForm, request: Request):
                if not await hasher.averify(users[form.username].hash, form.password):
                    raise lock.invalid_credentials()
                request.state.login_attempt.succeeded()
                return {"ok": True}
        """
        return protect_login(
            self,
            field=field,
            account=account,
            success_statuses=success_statuses,
            client_ip=client_ip or self.client_ip,
        )

    def dependency(
        self, *, field: str = "username", client_ip: ClientIP | None = None
    ) -> Callable[..., AsyncIterator[Attempt]]:
        """A FastAPI dependency that reserves an attempt for the request's account and yields it.

        Mark ``attempt.succeeded()`` after a good password; an attempt not marked counts as a failure. A
        locked account is refused before the route runs.

        Example::

            @app.post("/login")
            async def login(form: LoginForm, attempt: bg.Attempt = Depends(lock.dependency())):
                if await hasher.averify(users[form.username].hash, form.password):
                    attempt.succeeded()
        """
        return lockout_dependency(self, field=field, client_ip=client_ip or self.client_ip)
