"""The Stack's refinements that let a driver skip a layer's call: ``request_context``, ``context_appended`` and
``reads_content_type``."""

from __future__ import annotations

from typing import Any

from backend_guard._layer import BOTH, INNER, OUTER, Answer, LayerDefaults, Stack


class Given(LayerDefaults):
    """Its request step only returns the request: the Stack keeps the request as its context without the call."""

    request_context = True
    touches = frozenset({b"x-given"})

    def __init__(self) -> None:
        self.calls = 0

    def on_request(self, request: Any) -> Any:
        self.calls += 1
        return request

    def appended(self, context: Any, status: int, headers: Any) -> Any:
        return ((b"x-given", context["path"]),)


class Fields(LayerDefaults):
    """Its context is what it appends: the Stack appends it without calling ``appended``."""

    context_appended = True
    touches = frozenset({b"x-fields"})

    def on_request(self, request: Any) -> Any:
        return [(b"x-fields", b"1")]

    def appended(self, context: Any, status: int, headers: Any) -> Any:
        raise AssertionError("a context_appended layer's appended is never called")


class Refuse(LayerDefaults):
    """Answers instead of the layers after it."""

    touches = frozenset({b"x-refuse"})

    def on_request(self, request: Any) -> Any:
        return Answer("refused")


def test_a_request_context_layer_gets_the_request_without_its_request_step() -> None:
    given = Given()
    stack = Stack([given, Fields()], outside=1)
    contexts = stack.contexts()
    request = {"path": b"/a"}
    assert stack.enter(request, contexts, OUTER) is None
    assert stack.enter(request, contexts, INNER) is None
    assert given.calls == 0
    headers = stack.finish(contexts, 200, [(b"content-type", b"text/plain")], BOTH)
    assert headers == [(b"content-type", b"text/plain"), (b"x-fields", b"1"), (b"x-given", b"/a")]


def test_a_request_context_layer_after_an_answer_adds_nothing() -> None:
    """As nested: a layer the request never reached (an outer one answered) has no response step."""
    stack = Stack([Refuse(), Given()], outside=2)
    contexts = stack.contexts()
    assert stack.enter({"path": b"/a"}, contexts, OUTER) == "refused"
    assert stack.finish(contexts, 400, [], BOTH) == []


def test_a_stack_says_which_stages_have_request_steps_and_whether_it_has_end_steps() -> None:
    stack = Stack([Given(), Fields()], outside=2)
    assert stack.has_requests[OUTER]
    assert not stack.has_requests[INNER]
    assert not stack.has_ends


class Typed(LayerDefaults):
    """Reads only the response's Content-Type: the Stack hands over the first one it found checking the names."""

    reads_content_type = True
    touches = frozenset({b"x-type"})

    def on_request(self, request: Any) -> Any:
        return request

    def appended(self, context: Any, status: int, headers: Any) -> Any:
        raise AssertionError("the Stack calls appended_by_type instead")

    def appended_by_type(self, context: Any, status: int, content_type: Any) -> Any:
        return ((b"x-type", content_type or b"none"),)


def test_a_content_type_reading_layer_gets_the_first_content_type_whatever_its_case() -> None:
    stack = Stack([Typed()], outside=1)
    for headers, expected in [
        ([(b"content-length", b"2"), (b"Content-Type", b"text/html"), (b"content-type", b"x/y")], b"text/html"),
        ([(b"content-length", b"2")], b"none"),
        ([(b"content-type", b"application/json")], b"application/json"),
    ]:
        contexts = stack.contexts()
        stack.enter({}, contexts, OUTER)
        assert stack.finish(contexts, 200, headers, BOTH) == [*headers, (b"x-type", expected)]
