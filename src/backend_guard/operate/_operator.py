"""The :class:`Operator`: the locks, limits and token families of one app, over the store that app uses.

Built from the app's own parts (:meth:`Operator.from_parts`: in-process, so a memory store is the app's very
store) or from its settings (:meth:`Operator.from_settings`: what a command line does, on the shared Redis).
"""

from __future__ import annotations

from .._stack import StackParts
from ..config import GuardSettings
from ..exceptions import ConfigurationError
from ..storage import Store, open_store
from ._limits import Limits
from ._locks import Locks
from ._tokens import Families

__all__ = ["Operator"]


class Operator:
    """The operator API of one app: ``locks`` (:class:`Locks`), ``limits`` (:class:`Limits`) and ``tokens``
    (:class:`Families`), each with sync and async calls.

    Example::

        op = Operator.from_settings(GuardSettings.from_env())
        locked = [(e.account_id, e.scope, e.retry_after) for e in op.locks.list(limit=20).items]
        op.locks.unlock(account="alice", by="jane")
    """

    def __init__(self, locks: Locks, limits: Limits, tokens: Families) -> None:
        self.locks = locks
        self.limits = limits
        self.tokens = tokens

    @classmethod
    def from_parts(cls, parts: StackParts) -> Operator:
        """The operator of an app's parts (Django's ``backend_guard.django.parts()``, Flask's ``parts(app)``).

        Example::

            op = Operator.from_parts(backend_guard.django.parts())
        """
        settings = parts.settings
        return cls(
            Locks(parts.lockout()),
            Limits(
                parts.limiter,
                parts.rules,
                default_limits=settings.rate_limit.default_limits if settings.rate_limit.enabled else None,
                ipv6_prefix=settings.rate_limit.ipv6_prefix,
            ),
            Families(_token_store(parts), refresh_ttl=settings.tokens.refresh_ttl),
        )

    @classmethod
    def from_settings(cls, settings: GuardSettings | None = None, *, store: Store | str | None = None) -> Operator:
        """The operator of the app configured by ``settings`` (default: ``GuardSettings.from_env()``), on
        ``store`` when given (a URL or a store object), else on the store the settings name.

        Example::

            op = Operator.from_settings(store="redis://127.0.0.1:6379/0")
        """
        chosen = settings if settings is not None else GuardSettings.from_env()
        shared = open_store(store) if store is not None else None
        return cls.from_parts(StackParts.build(chosen, store=shared))


def _token_store(parts: StackParts) -> Store:
    """The store of the app's refresh-token families: the shared one, or ``tokens.store``. When the app's token
    manager can be built it is asked for its store, so that in the app's process (``manage.py guard``,
    ``flask guard``) a ``memory://`` token store is the manager's very store, not a new empty one."""
    tokens = parts.settings.tokens
    if not tokens.store:
        return parts.store
    if tokens.active:
        try:
            return parts.tokens().store
        except ConfigurationError:  # a key the app cannot use either: its families are on the URL, if anywhere
            pass
    return open_store(tokens.store)
