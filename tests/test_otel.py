"""backend_guard.otel: events counted as OpenTelemetry metrics, read back through the real SDK's in-memory reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import backend_guard as bg
from backend_guard import events, otel
from backend_guard.csrf._policy import publish_refusal

pytest.importorskip("opentelemetry.sdk.metrics")  # the dev extra installs the SDK

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    found = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[found])
    otel.instrument(provider)
    yield found
    otel.uninstrument()
    provider.shutdown()


def counts(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], int]:
    """The counter's value per (event, part, outcome) attribute set."""
    data = reader.get_metrics_data()
    out: dict[tuple[str, str, str], int] = {}
    if data is None:  # nothing recorded yet
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == otel.METRIC:
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        attrs: Any = point.attributes
                        assert set(attrs) == {"backend_guard.event", "backend_guard.part", "backend_guard.outcome"}
                        key = (
                            attrs["backend_guard.event"],
                            attrs["backend_guard.part"],
                            attrs["backend_guard.outcome"],
                        )
                        out[key] = point.value  # type: ignore[union-attr]
    return out


def test_refusals_and_state_changes_are_counted_with_low_cardinality_attributes(
    reader: InMemoryMetricReader,
) -> None:
    limiter = bg.RateLimiter()
    for ip in ("203.0.113.7", "203.0.113.8"):
        limiter.hit(f"ip:{ip}", "1/minute")
        limiter.hit(f"ip:{ip}", "1/minute")
        limiter.hit(f"ip:{ip}", "1/minute")
    lock = bg.Lockout(max_failures=1, secret="otel-test-secret-of-32-bytes!!!!")
    lock.record_failure("alice", "203.0.113.7")
    lock.unlock("alice")
    publish_refusal(bg.CrossOriginProtection().check("POST", scheme="https", host="a", sec_fetch_site=["cross-site"]))
    assert counts(reader) == {
        ("ratelimit.refused", "ratelimit", "refused"): 4,  # two clients, one data point
        ("lockout.failure", "lockout", "counted"): 1,
        ("lockout.locked", "lockout", "locked"): 1,
        ("lockout.unlocked", "lockout", "unlocked"): 1,
        ("csrf.refused", "csrf", "refused"): 1,
    }


def test_instrument_again_replaces_the_counter_and_uninstrument_stops_it(reader: InMemoryMetricReader) -> None:
    second = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[second])
    try:
        otel.instrument(provider)
        events.emit("csrf", "csrf.refused", rule="x")
        otel.uninstrument()
        events.emit("csrf", "csrf.refused", rule="x")
        assert counts(second) == {("csrf.refused", "csrf", "refused"): 1}
        assert counts(reader) == {}
        assert not events.listening("csrf")
    finally:
        provider.shutdown()


def test_the_global_provider_is_used_without_an_argument() -> None:
    sub = otel.instrument()  # the API's no-op provider until an SDK one is set: counting costs nothing
    try:
        events.emit("csrf", "csrf.refused", rule="x")
        assert sub.failures == 0
    finally:
        otel.uninstrument()


def test_importing_backend_guard_otel_imports_no_opentelemetry() -> None:
    code = "import sys, backend_guard.otel; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
