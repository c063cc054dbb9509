"""Account lockout: failed-login counters that are exact under parallel attacks and no weapon against users.

What must live here: the policy (thresholds, windows, backoff), the identifiers and keys, and turning script
replies into decisions and audit events. The read-modify-write logic itself is two atomic scripts
(``_lockout_scripts.py``), so a decision is one round trip on Redis, timed by the Redis clock.

Four counters ("scopes"), each with a threshold, an observation window and a lock with progressive backoff:

``pair``      failures of one account from one client address (``max_failures``, default 5).
``account``   failures of one account from every address (``account_max_failures``, default 20). Its lock does
              not apply to addresses the account recently logged in from, so strangers cannot lock a user out
              of the places they log in from.
``ceiling``   consecutive failures of one account from every address (``account_ceiling``, at most 100, as
              NIST SP 800-63B asks). Its lock applies to everyone; only a successful login resets it.
``address``   failures from one address over every account (``address_max_failures``, off by default).

An attempt is *reserved* (counted as a failure) before the password is checked, in the same atomic step that
checks the locks; a success then takes its reservation back. So 100 parallel guesses against a threshold of 5
let exactly 5 reach the password verifier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Container, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._cache import BoundedCache, approx_size
from .._check import check_bool, check_callable, check_int, check_str, optional
from ..clientip import ClientIP, address_bucket
from ..exceptions import AccountLocked, ConfigurationError, InvalidCredentials, StorageError
from ..storage import Store, StoreLike, open_store
from ..storage.base import glob_escape, is_cluster
from ._attempt import Attempt, normalize_identifier
from ._routes import lockout_dependency, protect_login
from ._scripts import (
    MAX_MS,
    MAX_THRESHOLD,
    PEEK,
    LockoutPolicy,
    ReserveReply,
    ScopeRule,
    SuccessReply,
    plain_int,
    scripts_for,
)

__all__ = [
    "Attempt",
    "InvalidCredentials",
    "LockRecord",
    "Lockout",
    "LockoutEvent",
    "LockoutStatus",
    "normalize_identifier",
]

log = logging.getLogger("backend_guard.lockout")
F = TypeVar("F", bound=Callable[..., Any])

#: NIST SP 800-63B: no more than 100 consecutive failed attempts on one account.
NIST_CEILING = 100
#: The longest duration a Lockout accepts, in seconds (10 years): windows, locks, resets, remembered addresses.
MAX_DURATION = MAX_MS / 1000
#: The largest ``address_max_failures`` a Lockout accepts.
MAX_ADDRESS_FAILURES = MAX_THRESHOLD
_SCOPES = ("pair", "account", "ceiling", "address")
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
_PLAN_CACHE = 2048  # (account, address) plans and address digests kept per Lockout
_CACHED_LEN = 256  # identifiers and addresses longer than this are never cached: entries are bounded in size too
_PLAN_BYTES = 4 << 20  # a plan of two 256-character names and its keys is about 1.5 KB
_DEFAULT_KEY = b"backend_guard.lockout.v1"


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    """A lockout decision: whether the account is locked for this address, and for how long.

    ``retry_after`` is in seconds (0 when not locked); ``remaining`` is how many more failures this account
    may have from this address before a lock; ``scope`` names the lock that refuses (``"pair"``,
    ``"account"``, ``"ceiling"`` or ``"address"``); ``degraded`` is True when the store failed and
    ``on_storage_error="allow"`` let the attempt through unchecked.

    Example::

        status = lock.check("alice", "203.0.113.7")
        if status.locked:
            raise bg.AccountLocked(retry_after=status.retry_after)
    """

    locked: bool
    retry_after: float = 0.0
    remaining: int | None = None
    scope: str | None = None
    known_address: bool = False
    degraded: bool = False

    def error(self) -> AccountLocked:
        """The :class:`~backend_guard.exceptions.AccountLocked` error for this status.

        Example::

            raise status.error()
        """
        return AccountLocked(retry_after=self.retry_after)


@dataclass(frozen=True, slots=True)
class LockoutEvent:
    """An audit event: ``kind`` is ``"failure"``, ``"lockout"``, ``"unlock"`` or ``"success_after_failures"``.

    ``account_id`` is the keyed hash of the account (never the name unless ``log_identifiers=True`` puts it in
    ``account``), ``address`` the client address bucket, ``scope`` the lock's scope for lockouts.

    Example::

        def audit(event: bg.LockoutEvent) -> None:
            siem.send(event.kind, event.account_id, event.address)

        lock = bg.Lockout(on_event=audit)
    """

    kind: str
    account_id: str
    address: str | None = None
    scope: str | None = None
    retry_after: float = 0.0
    failures: int = 0
    account: str | None = None


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One live lock found by :meth:`Lockout.locked_accounts`: the account's hash, the scope, the time left.

    Compare ``account_id`` with ``lock.account_id(name)`` to find a given account.

    Example::

        for rec in lock.locked_accounts():
            log.info("locked %s (%s) for %.0f s", rec.account_id, rec.scope, rec.retry_after)
    """

    account_id: str
    scope: str
    retry_after: float


class _Plan:
    """The keys and identifiers of one (account, address): made once, cached, never changed.

    A plain slotted class rather than a frozen dataclass: one is made for every new (account, address), and a
    frozen dataclass's ``__init__`` costs about twice as much (it sets each field through ``object.__setattr__``).
    """

    __slots__ = ("account", "account_id", "address", "keys", "member", "named")

    def __init__(self, keys: list[str], named: str, member: str, account_id: str, address: str, account: str) -> None:
        self.keys = keys
        self.named = named  # "1", or "0" for an empty identifier (counted per pair and address only)
        self.member = member
        self.account_id = account_id
        self.address = address
        self.account = account

    def __sizeof__(self) -> int:
        # Everything a plan holds is its own: the store keys, the digests, the address and the identifier.
        own = (self.keys, self.named, self.member, self.account_id, self.address, self.account)
        return object.__sizeof__(self) + approx_size(own)


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
    address it resolved for the request, with or without one). Every duration is a number of seconds from
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
    ) -> None:
        for flag_name, flag in (
            ("extend_while_locked", extend_while_locked),
            ("generic", generic),
            ("log_identifiers", log_identifiers),
        ):
            check_bool(flag_name, flag)
        check_str("generic_detail", generic_detail)
        check_str("namespace", namespace)
        check_int("ipv6_prefix", ipv6_prefix, min=1, max=128)
        optional(check_callable, "on_event", on_event)
        if secret is not None and not isinstance(secret, (str, bytes, bytearray)):
            raise ConfigurationError(
                f"secret must be a string or bytes (at least 16 bytes), not a {type(secret).__name__}."
            )

        max_failures = _count("max_failures", max_failures, 1, NIST_CEILING)
        account_ceiling = _count("account_ceiling", account_ceiling, 1, NIST_CEILING)
        if account_max_failures is not None:
            account_max_failures = _count("account_max_failures", account_max_failures, 1, NIST_CEILING)
        if address_max_failures is not None:
            address_max_failures = _count("address_max_failures", address_max_failures, 1, MAX_ADDRESS_FAILURES)
        if max_failures > account_ceiling:
            raise ConfigurationError("max_failures cannot exceed account_ceiling.")
        factor = _real(backoff_factor)
        if factor is None or not 1.0 <= factor <= 100.0:
            raise ConfigurationError("backoff_factor must be between 1 and 100.")
        backoff_factor = factor
        if on_storage_error not in ("allow", "deny"):
            raise ConfigurationError('on_storage_error must be "allow" or "deny".')
        max_remembered_addresses = _count("max_remembered_addresses", max_remembered_addresses, 0, 1000)
        if not (isinstance(ipv6_prefix, int) and 0 < ipv6_prefix <= 128):
            raise ConfigurationError("ipv6_prefix must be between 1 and 128.")
        window = _seconds("window", window)
        lockout_duration = _seconds("lockout_duration", lockout_duration)
        max_lockout_duration = _seconds("max_lockout_duration", max_lockout_duration)
        window_ms, base_ms, max_ms = _ms(window), _ms(lockout_duration), _ms(max_lockout_duration)
        if max_ms < base_ms:
            raise ConfigurationError("max_lockout_duration cannot be shorter than lockout_duration.")
        reset_ms = _ms(_seconds("backoff_reset", backoff_reset))
        ceiling_ms = _ms(_seconds("ceiling_window", ceiling_window))
        self._remember_ms = _ms(_seconds("remember_addresses_for", remember_addresses_for))

        self.store: Store = open_store(store)
        if address_max_failures is not None and is_cluster(self.store):
            # The address counter is shared by every account, so it cannot share a hash slot with each
            # account's keys, and the reservation must be one atomic script over all of them.
            raise ConfigurationError(
                "address_max_failures cannot be used on Redis Cluster: the address-wide counter would be in "
                "another hash slot than the account's counters. Limit addresses with a RateLimiter instead."
            )
        self.max_failures = max_failures
        self.window = window
        self.lockout_duration = lockout_duration
        self.backoff_factor = backoff_factor
        self.max_lockout_duration = max_lockout_duration
        self.account_max_failures = account_max_failures
        self.account_ceiling = account_ceiling
        self.address_max_failures = address_max_failures
        self.max_remembered_addresses = max_remembered_addresses
        self.ipv6_prefix = ipv6_prefix
        self.extend_while_locked = extend_while_locked
        self.generic = generic
        self.generic_detail = generic_detail
        self.on_storage_error: OnStorageError = on_storage_error
        self.on_event = on_event
        self.log_identifiers = log_identifiers
        self.client_ip = client_ip
        self.namespace = namespace
        self._key = _mac_key(secret)
        self._macs = {d: hashlib.blake2b(digest_size=16, key=self._key, person=d) for d in (b"account", b"address")}
        factor_milli = round(factor * 1000)

        def rule(limit: int | None, win: int) -> ScopeRule:
            if limit is None:
                return ScopeRule()
            return ScopeRule(True, limit, win, base_ms, factor_milli, max_ms, reset_ms)

        self._script_policy = LockoutPolicy(
            (
                rule(max_failures, window_ms),
                rule(account_max_failures, window_ms),
                rule(account_ceiling, ceiling_ms),
                rule(address_max_failures, window_ms),
            ),
            self._remember_ms,
            bool(extend_while_locked),
            max_remembered_addresses,
        )
        self._reserve_script, self._success_script = scripts_for(self._script_policy)
        self._plans: BoundedCache[tuple[str | bytes, str | None], _Plan] = BoundedCache(
            "lockout.plans", max_entries=_PLAN_CACHE, max_bytes=_PLAN_BYTES
        )
        self._addr_ids: BoundedCache[str, str] = BoundedCache(
            "lockout.addresses", max_entries=_PLAN_CACHE, max_bytes=_PLAN_BYTES // 4
        )
        self._open: dict[tuple[int, bool], LockoutStatus] = {}
        self._key_base = self.store.key(namespace)

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

    # -- identifiers and keys ------------------------------------------------------------------------------

    def _digest(self, domain: bytes, text: str) -> str:
        # Keyed BLAKE2b (RFC 7693's MAC mode, a PRF like HMAC) with a 128-bit tag; the domain ("account",
        # "address") is its personalisation, so an account and an address with the same text never share a digest.
        # Each domain's keyed state is made once and copied (the key fills a whole block: half the cost of a digest).
        mac = self._macs[domain].copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()

    def account_id(self, account: str | bytes) -> str:
        """The keyed hash that stands for ``account`` in storage keys, audit events and :class:`LockRecord`.

        Example::

            lock.account_id("Alice") == lock.account_id(" alice ")   # True
        """
        return self._digest(b"account", normalize_identifier(account))

    def _plan(self, account: str | bytes, ip: str | None) -> _Plan:
        """Keys and identifiers of ``(account, ip)``; cached (bounded), as a client usually retries as itself."""
        kind = type(account)
        if (kind is not str and kind is not bytes) or len(account) > _CACHED_LEN or (ip and len(ip) > _CACHED_LEN):
            # Not cached: a long identifier (2048 entries of a 1 MB name would hold gigabytes), and anything but a
            # plain str or bytes (a bytearray is unhashable; equal keys such as 1 and True normalise differently).
            return self._new_plan(account, ip)
        cache_key = (account, ip)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._new_plan(account, ip)
            self._plans.put(cache_key, plan)  # bounded: identifiers come from clients
        return plan

    def _new_plan(self, account: str | bytes, ip: str | None) -> _Plan:
        name = normalize_identifier(account)
        address = _bucket(ip.strip(), self.ipv6_prefix) if ip else ""
        aid = self._digest(b"account", name)
        addr_id = self._addr_ids.get(address)
        if addr_id is None:
            addr_id = self._digest(b"address", address)
            if len(address) <= _CACHED_LEN:
                self._addr_ids.put(address, addr_id)
        # Hex digests are key-safe as they are, so the keys are formatted directly: the same strings as
        # store.key(ns, "p", addr_id, tag=aid) and so on, without escaping work on every decision.
        base = f"{self._key_base}:{{{aid}}}:"
        # Pair, account (its account-wide scope and its ceiling in one value: named "ac", not the "a" and "c" of
        # the layout before, so that during a rolling upgrade old and new workers never overwrite each other's
        # values), good addresses.
        keys = [base + "p:" + addr_id, base + "ac", base + "g"]
        if self.address_max_failures is not None:
            keys.append(f"{self._key_base}:ip:{addr_id}")
        # An empty identifier is nobody's account: it is counted per address only, so it can never become a
        # lock shared by every client that sends an empty name.
        return _Plan(keys, "1" if name else "0", addr_id if name and address else "", aid, address, name)

    def _reserve_args(self, plan: _Plan, mode: int) -> list[Any]:
        return [plan.member, mode, plan.named]

    def _success_args(self, plan: _Plan, counted: int, newly: int) -> list[Any]:
        return [plan.member if self.max_remembered_addresses else "", counted, newly, plan.named]

    # -- replies to decisions, audit -----------------------------------------------------------------------

    def _status(self, reply: ReserveReply) -> LockoutStatus:
        known = reply.known
        if not reply.allowed:
            return LockoutStatus(True, reply.retry_ms / 1000.0, 0, _SCOPES[reply.scope - 1], known)
        # An open status is one of few values (remaining 0..max threshold, known or not) and immutable: each is
        # made once and shared.
        remaining = max(0, reply.remaining)
        status = self._open.get((remaining, known))
        if status is None:
            status = LockoutStatus(False, 0.0, remaining, None, known)
            if len(self._open) < _PLAN_CACHE:
                self._open[remaining, known] = status
        return status

    def _emit(self, kind: str, plan: _Plan, **extra: Any) -> None:
        level = logging.WARNING if kind == "lockout" else logging.INFO
        if self.on_event is None and not log.isEnabledFor(level):
            return  # nobody listens: no event to build
        event = LockoutEvent(
            kind,
            plan.account_id,
            plan.address or None,
            account=plan.account if self.log_identifiers else None,
            **extra,
        )
        log.log(
            level,
            "lockout %s account_id=%s address=%s scope=%s",
            kind,
            event.account_id,
            event.address,
            event.scope,
            extra={"lockout_event": kind, "account_id": event.account_id, "client_address": event.address},
        )
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # an audit sink must not break a login
                log.exception("lockout on_event callback failed")

    def _failed(self, plan: _Plan, reply: ReserveReply) -> None:
        """Audit a failure that counted, and the locks it set (after the attempt settled as a failure)."""
        self._emit("failure", plan)
        newly = reply.newly
        if newly:
            scopes = ",".join(scope for i, scope in enumerate(_SCOPES) if newly & (1 << i))
            self._emit("lockout", plan, scope=scopes, retry_after=reply.longest_ms / 1000.0)

    # -- finish: a store reply to a decision, shared by the sync and async twins ---------------------------
    # Each twin is only plan (``_plan`` and the ``_*_args``), the store call, and one of these.

    def _finish_failure(self, plan: _Plan, reply: ReserveReply) -> LockoutStatus:
        """The status after a counted failure, audited unless the account was locked (so nothing was counted)."""
        status = self._status(reply)
        if not status.locked:
            self._failed(plan, reply)
        return status

    def _finish_success(self, plan: _Plan, reply: SuccessReply) -> None:
        had_n, had_lock = reply.had_failures, reply.had_lock
        if had_n or had_lock:
            self._emit("success_after_failures", plan, failures=had_n)

    def _reserved(self, plan: _Plan, first: ReserveReply) -> Attempt:
        """The attempt a reservation made; raises the refusal when the account is locked."""
        status = self._status(first)
        if status.locked:
            raise self._refusal(status)
        return Attempt(plan, status, first.counted, first.newly)

    def _settle(self, att: Attempt, plan: _Plan, first: ReserveReply) -> list[Any] | None:
        """The success script's arguments for an attempt that succeeded, or None: a failure, audited here."""
        if att.ok:
            return self._success_args(plan, first.counted, first.newly)
        self._failed(plan, first)
        return None

    def _collect(self, out: list[LockRecord], key: str, reply: Any, limit: int) -> bool:
        """Add the live locks of one key's PEEK reply to ``out``; True once ``limit`` records were found."""
        out += self._records(key, reply)
        return len(out) >= limit

    def _degraded(self, exc: StorageError, what: str) -> LockoutStatus:
        if self.on_storage_error == "deny":
            raise exc
        log.warning("lockout %s skipped: store unavailable (on_storage_error=allow)", what)
        return LockoutStatus(False, 0.0, None, None, False, True)

    def _refusal(self, status: LockoutStatus) -> Exception:
        if self.generic:
            return self.invalid_credentials()
        return status.error()

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
            reply = ReserveReply.from_reply(
                self.store.run(self._reserve_script, plan.keys, self._reserve_args(plan, 0))
            )
        except StorageError as exc:
            return self._degraded(exc, "check")
        return self._status(reply)

    def record_failure(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Count one failed login (when you verify first and record after); returns the status after it.

        A failure while locked is not counted and does not extend the lock (unless ``extend_while_locked``).
        Prefer :meth:`attempt`, which reserves before the check and so stays exact under parallel guesses.

        Example::

            status = lock.record_failure("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(
                self.store.run(self._reserve_script, plan.keys, self._reserve_args(plan, 1))
            )
        except StorageError as exc:
            return self._degraded(exc, "record_failure")
        return self._finish_failure(plan, reply)

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
                self.store.run(self._success_script, plan.keys, self._success_args(plan, 0, 0))
            )
        except StorageError:
            log.warning("lockout record_success skipped: store unavailable")
            return
        self._finish_success(plan, reply)

    def _unlock_keys(self, account: str | bytes | None, ip: str | None, found: list[str]) -> tuple[list[str], _Plan]:
        plan = self._plan(account or "", ip)
        if account is None:
            return ([plan.keys[3]] if len(plan.keys) > 3 else []), plan
        if ip is not None:
            return [plan.keys[0]], plan
        return [plan.keys[1], *found], plan

    def _pair_pattern(self, account: str | bytes) -> str:
        aid = self.account_id(account)
        return glob_escape(self.store.key(self.namespace, "p", "x", tag=aid)[:-1]) + "*"

    def unlock(self, account: str | bytes, ip: str | None = None) -> None:
        """Lift every lock and counter of ``account`` (or only its pair with ``ip``); raises StorageError.

        Example::

            lock.unlock("alice")
        """
        found = self.store.scan(self._pair_pattern(account), count=10_000) if ip is None else []
        keys, plan = self._unlock_keys(account, ip, found)
        self.store.delete(*keys)
        self._emit("unlock", plan)

    def unlock_address(self, ip: str) -> None:
        """Lift the address-wide lock and counter of ``ip`` (``address_max_failures``).

        Example::

            lock.unlock_address("203.0.113.7")
        """
        keys, plan = self._unlock_keys(None, ip, [])
        self.store.delete(*keys)
        self._emit("unlock", plan, scope="address")

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
            first = ReserveReply.from_reply(
                self.store.run(self._reserve_script, plan.keys, self._reserve_args(plan, 1))
            )
        except StorageError as exc:
            yield Attempt(None, self._degraded(exc, "attempt"), 0, 0)
            return
        att = self._reserved(plan, first)
        try:
            yield att
        finally:
            args = self._settle(att, plan, first)
            if args is not None:
                try:
                    reply = SuccessReply.from_reply(self.store.run(self._success_script, plan.keys, args))
                except StorageError:
                    log.warning("lockout success not recorded: store unavailable")
                else:
                    self._finish_success(plan, reply)

    def locked_accounts(self, limit: int = 1000) -> list[LockRecord]:
        """Live account-wide and ceiling locks (and pair locks), found with SCAN (never KEYS).

        Example::

            for rec in lock.locked_accounts():
                log.info("locked %s (%s) for %.0f s", rec.account_id, rec.scope, rec.retry_after)
        """
        out: list[LockRecord] = []
        for key in self.store.scan(self._lock_pattern(), count=limit * 4):
            if self._collect(out, key, self.store.run(PEEK, [key], []), limit):
                break
        return out[:limit]

    # -- async API -----------------------------------------------------------------------------------------

    async def acheck(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Async twin of :meth:`check`.

        Example::

            status = await lock.acheck("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(
                await self.store.arun(self._reserve_script, plan.keys, self._reserve_args(plan, 0))
            )
        except StorageError as exc:
            return self._degraded(exc, "check")
        return self._status(reply)

    async def arecord_failure(self, account: str | bytes, ip: str | None = None) -> LockoutStatus:
        """Async twin of :meth:`record_failure`.

        Example::

            status = await lock.arecord_failure("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = ReserveReply.from_reply(
                await self.store.arun(self._reserve_script, plan.keys, self._reserve_args(plan, 1))
            )
        except StorageError as exc:
            return self._degraded(exc, "record_failure")
        return self._finish_failure(plan, reply)

    async def arecord_success(self, account: str | bytes, ip: str | None = None) -> None:
        """Async twin of :meth:`record_success`.

        Example::

            await lock.arecord_success("alice", "203.0.113.7")
        """
        plan = self._plan(account, ip)
        try:
            reply = SuccessReply.from_reply(
                await self.store.arun(self._success_script, plan.keys, self._success_args(plan, 0, 0))
            )
        except StorageError:
            log.warning("lockout record_success skipped: store unavailable")
            return
        self._finish_success(plan, reply)

    async def aunlock(self, account: str | bytes, ip: str | None = None) -> None:
        """Async twin of :meth:`unlock`.

        Example::

            await lock.aunlock("alice")
        """
        found = await self.store.ascan(self._pair_pattern(account), count=10_000) if ip is None else []
        keys, plan = self._unlock_keys(account, ip, found)
        await self.store.adelete(*keys)
        self._emit("unlock", plan)

    async def aunlock_address(self, ip: str) -> None:
        """Async twin of :meth:`unlock_address`.

        Example::

            await lock.aunlock_address("203.0.113.7")
        """
        keys, plan = self._unlock_keys(None, ip, [])
        await self.store.adelete(*keys)
        self._emit("unlock", plan, scope="address")

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
                await self.store.arun(self._reserve_script, plan.keys, self._reserve_args(plan, 1))
            )
        except StorageError as exc:
            yield Attempt(None, self._degraded(exc, "attempt"), 0, 0)
            return
        att = self._reserved(plan, first)
        try:
            yield att
        finally:
            args = self._settle(att, plan, first)
            if args is not None:
                try:
                    reply = SuccessReply.from_reply(await self.store.arun(self._success_script, plan.keys, args))
                except StorageError:
                    log.warning("lockout success not recorded: store unavailable")
                else:
                    self._finish_success(plan, reply)

    async def alocked_accounts(self, limit: int = 1000) -> list[LockRecord]:
        """Async twin of :meth:`locked_accounts`.

        Example::

            records = await lock.alocked_accounts()
        """
        out: list[LockRecord] = []
        for key in await self.store.ascan(self._lock_pattern(), count=limit * 4):
            if self._collect(out, key, await self.store.arun(PEEK, [key], []), limit):
                break
        return out[:limit]

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
        a GET, HEAD or OPTIONS without a body is not an attempt. A custom ``account`` getter that returns
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

    # -- listing -------------------------------------------------------------------------------------------

    def _lock_pattern(self) -> str:
        return glob_escape(f"{self.store.prefix}:{self.namespace}:") + "{*}:[ap]*"

    def _records(self, key: str, reply: Any) -> list[LockRecord]:
        """The live locks in one key's PEEK reply: the pair's, or the account's account-wide and ceiling ones."""
        head, _, rest = key.rpartition("}:")
        aid = head.rsplit("{", 1)[-1]
        scopes = ("account", "ceiling") if rest == "ac" else ("pair",) if rest.startswith("p:") else ()
        if not isinstance(reply, list) or len(reply) != len(scopes):
            return []
        return [
            LockRecord(aid, scope, int(left) / 1000.0)
            for scope, left in zip(scopes, reply, strict=True)
            if int(left) > 0
        ]


# Every number is taken as a plain int or float before it is checked: these values are written into the
# scripts' Lua text, so an int subclass (an IntEnum member, one with its own __format__) must never get the
# chance to print itself there.


def _seconds(name: str, value: float) -> float:
    """``value`` as a plain number of seconds from 0 (excluded) to ``MAX_DURATION``, or ConfigurationError."""
    number = _real(value)
    if number is None or not 0 < number <= MAX_DURATION:  # NaN and infinities fail the comparison
        raise ConfigurationError(f"{name} must be a positive number of seconds, at most {MAX_DURATION:.0f} (10 years).")
    return number


def _ms(value: float) -> int:
    """Seconds as whole milliseconds, at least 1."""
    return max(1, round(value * 1000))


def _count(name: str, value: int, low: int, high: int) -> int:
    """``value`` as a plain int from ``low`` to ``high``, or ConfigurationError."""
    number = plain_int(value)
    if number is None or not low <= number <= high:
        raise ConfigurationError(f"{name} must be an integer from {low} to {high}.")
    return number


def _mac_key(secret: str | bytes | None) -> bytes:
    """The BLAKE2b key of ``secret`` (already checked to be a string or bytes): at least 16 bytes, at most 64."""
    if secret is None:
        return _DEFAULT_KEY
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ConfigurationError("secret must be at least 16 bytes.")
    if len(key) > 64:  # BLAKE2b takes keys of at most 64 bytes: a longer secret is hashed to 64
        key = hashlib.blake2b(key, digest_size=64, person=b"lockout.key").digest()
    return key


def _real(value: Any) -> float | None:
    """``value`` as a plain int or float (subclasses lose their class), or None: not a number, or a bool."""
    if isinstance(value, float):
        return float.__float__(value)  # exact float, whatever a subclass's own __float__ does
    return plain_int(value)


_BUCKETS: BoundedCache[tuple[str, int], str] = BoundedCache("lockout.buckets", max_entries=4096, max_bytes=1 << 20)


def _bucket(ip: str, ipv6_prefix: int) -> str:
    found = _BUCKETS.get((ip, ipv6_prefix))
    if found is None:
        found = address_bucket(ip, ipv6_prefix)
        _BUCKETS.put((ip, ipv6_prefix), found)  # bounded: addresses come from clients
    return found
