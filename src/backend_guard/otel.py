"""OpenTelemetry metrics for backend_guard's events (``pip install "backend-guard[otel]"``).

:func:`instrument` counts every :class:`~backend_guard.events.Event` on one counter, ``backend_guard.events``,
with three low-cardinality attributes: ``backend_guard.event`` (the event's name), ``backend_guard.part`` and
``backend_guard.outcome``. Never an account, an address, a subject or a key: those stay in the events. Your
meter provider (the SDK, its readers and exporters) is yours to set up; OpenTelemetry is imported only here.

Example::

    from opentelemetry.sdk.metrics import MeterProvider
    from backend_guard import otel

    otel.instrument(MeterProvider(metric_readers=[reader]))   # or no argument: the global provider
"""

from __future__ import annotations

from typing import Any

from . import events
from .exceptions import ConfigurationError

__all__ = ["METRIC", "instrument", "uninstrument"]

#: The counter's name.
METRIC = "backend_guard.events"

_current: list[events.Subscription] = []


def instrument(meter_provider: Any = None) -> events.Subscription:
    """Count every event on the ``backend_guard.events`` counter of ``meter_provider`` (default: the global
    one); replaces an earlier :func:`instrument`. Returns the subscription (``close()`` stops counting).

    Example::

        otel.instrument()
    """
    try:
        from opentelemetry import metrics
    except ImportError as exc:  # the optional extra is not installed
        raise ConfigurationError('backend_guard.otel needs OpenTelemetry: pip install "backend-guard[otel]".') from exc
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    meter = provider.get_meter("backend_guard")
    counter = meter.create_counter(
        METRIC, unit="{event}", description="backend_guard decisions that refused or changed state"
    )
    # One attribute dict per (name, part, outcome): a handful, made once each.
    attributes: dict[tuple[str, str, str], dict[str, str]] = {}

    def count(event: events.Event) -> None:
        key = (event.name, event.part, event.outcome)
        found = attributes.get(key)
        if found is None:
            found = attributes.setdefault(
                key,
                {"backend_guard.event": key[0], "backend_guard.part": key[1], "backend_guard.outcome": key[2]},
            )
        counter.add(1, found)

    uninstrument()
    sub = events.subscribe(count)
    _current.append(sub)
    return sub


def uninstrument() -> None:
    """Stop counting (what :func:`instrument` started; nothing when it was not).

    Example::

        otel.uninstrument()
    """
    while _current:
        _current.pop().close()
