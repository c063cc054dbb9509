"""The lazy views (view_from_scope, view_from_environ) are the views the public constructor builds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_guard._view import _UNSET, RequestView, _EnvironSource, _ScopeSource, view_from_environ, view_from_scope

_TEXT = st.text(st.characters(codec="latin-1"), max_size=12)
_HEADERS = st.lists(st.tuples(st.sampled_from(["host", "x-forwarded-for", "content-type", "x-a"]), _TEXT), max_size=4)


def _slots(view: RequestView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in RequestView.__slots__}


def _uses(view: RequestView) -> tuple[Any, ...]:
    """Every public reading, lazy ones included, then the slots they filled."""
    readings = (view.method, view.path, view.query, view.headers, view.client, view.scheme, view.host, view.route)
    return (*readings, view.header_all("host"), view.secure, view.route_or_path)


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "put"]),
    path=_TEXT,
    query=_TEXT,
    headers=_HEADERS,
    client=st.one_of(st.none(), st.tuples(_TEXT, st.integers(0, 65535))),
    route=st.sampled_from([None, "/users/{id}"]),
)
def test_a_lazy_view_is_the_view_the_public_constructor_builds_field_by_field(
    method: str, path: str, query: str, headers: list[tuple[str, str]], client: Any, route: str | None
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode("latin-1"), "headers": raw}
    if client is not None:
        scope["client"] = client
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "wsgi.url_scheme": "http"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers})
    for new, old in (
        (
            view_from_scope(scope),
            RequestView(
                method, path, _UNSET, _UNSET, _UNSET, _UNSET, _UNSET, query, _source=_ScopeSource(scope, None, _UNSET)
            ),
        ),
        (
            view_from_environ(environ, route=route),
            RequestView(
                method,
                view_from_environ(environ).path,
                _UNSET,
                _UNSET,
                _UNSET,
                _UNSET,
                route,
                query,
                _source=_EnvironSource(environ, None),
            ),
        ),
    ):
        assert type(new) is RequestView
        assert {k: v for k, v in _slots(new).items() if k != "_source"} == {
            k: v for k, v in _slots(old).items() if k != "_source"
        }
        assert _uses(new) == _uses(old)
        assert new == old
        assert hash(new) == hash(old)
        for name in (*RequestView.__slots__, "client", "headers", "__class__"):  # frozen, every field
            with pytest.raises((AttributeError, TypeError)):
                setattr(new, name, "x")
        assert _uses(new) == _uses(old)
