"""Django signals for the lockout's and the token manager's events: ``lockout_event`` and ``token_event``.

Each is sent with ``sender=Event`` and ``event=`` the :class:`~backend_guard.events.Event` (``lockout.locked``,
``lockout.unlocked``, ``tokens.reuse_detected``, ... and ``storage.*`` of those parts), in the thread that made
the decision. A signal subscribes to its part's events when its first receiver connects (and unsubscribes when
the last one disconnects): no event is built for a signal nobody listens to. Receivers run through
``send_robust``: one that raises is logged by Django and never breaks the login or the rotation.

Example (a Django app's ``signals.py``)::

    from django.dispatch import receiver
    from backend_guard.django import lockout_event

    @receiver(lockout_event)
    def on_lockout(sender, event, **kwargs):
        if event.name == "lockout.locked":
            notify_security(event.fields["account_id"])
"""

from __future__ import annotations

import threading
from typing import Any

from django.dispatch import Signal

from ..events import Event, Subscription, subscribe

__all__ = ["GuardSignal", "lockout_event", "token_event"]


class GuardSignal(Signal):  # type: ignore[misc]
    """A Django signal fed by one part's events (``part``): the first receiver connected subscribes it.

    Example::

        lockout_event.connect(on_lockout)   # sent with sender=Event, event=<Event>
    """

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part
        self.subscription: Subscription | None = None
        self._subscribing = threading.Lock()

    def connect(self, receiver: Any, *args: Any, **kwargs: Any) -> None:
        """Connect ``receiver`` as Django does, and subscribe this signal to its part's events on first use."""
        super().connect(receiver, *args, **kwargs)
        with self._subscribing:
            if self.subscription is None:
                self.subscription = subscribe(self.deliver, parts=[self.part])

    def disconnect(self, *args: Any, **kwargs: Any) -> bool:
        """Disconnect a receiver as Django does; with none left, stop building this part's events for it."""
        found: bool = super().disconnect(*args, **kwargs)
        self._release()
        return found

    def _release(self) -> None:
        """With no receiver left, close this signal's subscription (checked under the lock, as a connect may race)."""
        with self._subscribing:
            if self.subscription is not None and not self.receivers:
                self.subscription.close()
                self.subscription = None

    def deliver(self, event: Event) -> None:
        """Send ``event`` to the connected receivers (each failure logged by Django, none raised).

        Example::

            lockout_event.deliver(event)
        """
        if self.has_listeners(Event):
            self.send_robust(sender=Event, event=event)
        else:  # the last receiver was garbage-collected (Django holds them weakly): no disconnect() ran
            self._release()


#: Sent for each lockout event (failure, locked, refused, unlocked, success_after_failures, storage.*).
lockout_event = GuardSignal("lockout")
#: Sent for each token event (reuse_detected, family_revoked, storage.*).
token_event = GuardSignal("tokens")
