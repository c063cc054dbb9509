"""A Stack's steps composed once (``entering``, ``ending``) do what the nested shells would, layer by layer."""

from __future__ import annotations

from typing import Any

import pytest

from backend_guard._layer import BOTH, INNER, OUTER, Answer, LayerDefaults, Stack


class Kept(LayerDefaults):
    """Keeps the request as its context (no request step) and appends its name with the request's path."""

    request_context = True

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.touches = frozenset({name})

    def appended(self, context: Any, status: int, headers: Any) -> Any:
        return ((self.name, context["path"]),)


class Step(LayerDefaults):
    """A request step: answers, raises or returns a context; its end step notes the order and the body."""

    def __init__(self, name: bytes, outcome: str = "context", log: list[Any] | None = None) -> None:
        self.name = name
        self.outcome = outcome
        self.touches = frozenset({name})
        self.ends = log is not None
        self.log = log if log is not None else []

    def on_request(self, request: Any) -> Any:
        if self.outcome == "answer":
            return Answer(b"answered by " + self.name)
        if self.outcome == "raise":
            raise LookupError(self.name)
        if self.outcome == "none":
            return None
        return b"ctx-" + self.name

    def appended(self, context: Any, status: int, headers: Any) -> Any:
        return ((self.name, context),)

    def on_end(self, context: Any, body: Any) -> Any:
        self.log.append((self.name, context, body))
        return [*body, self.name]


def _names(stack: Stack, contexts: list[Any]) -> list[bytes]:
    return [name for name, _ in stack.finish(contexts, 200, [], BOTH)]


def test_a_layer_answering_leaves_the_kept_layers_after_it_without_context() -> None:
    stack = Stack([Kept(b"x-a"), Step(b"x-b", "answer"), Kept(b"x-c")], outside=3)
    contexts = stack.contexts()
    assert stack.entering(OUTER)({"path": b"/p"}, contexts) == b"answered by x-b"
    assert contexts == [{"path": b"/p"}, None, None]
    assert _names(stack, contexts) == [b"x-a"]


def test_a_layer_raising_leaves_the_kept_layers_after_it_without_context_and_the_error_goes_up() -> None:
    stack = Stack([Kept(b"x-a"), Step(b"x-b", "raise"), Kept(b"x-c")], outside=0)
    contexts = stack.contexts()
    with pytest.raises(LookupError):
        stack.entering(INNER)({"path": b"/p"}, contexts)
    assert contexts == [{"path": b"/p"}, None, None]


def test_every_layer_of_a_stage_enters_in_order_and_a_step_returning_none_adds_nothing() -> None:
    request = {"path": b"/p"}
    stack = Stack([Step(b"x-a"), Kept(b"x-b"), Step(b"x-c", "none"), Kept(b"x-d"), Step(b"x-e")], outside=2)
    contexts = stack.contexts()
    assert stack.enter(request, contexts, OUTER) is None
    assert contexts == [b"ctx-x-a", request, None, None, None]
    assert stack.entering(INNER)(request, contexts) is None
    assert contexts == [b"ctx-x-a", request, None, request, b"ctx-x-e"]
    # innermost first, as the nested shells add their headers
    assert _names(stack, contexts) == [b"x-e", b"x-d", b"x-b", b"x-a"]


def test_a_stage_of_kept_layers_alone_has_request_steps() -> None:
    """The Guard skips a stage without request steps: a kept layer's context must still be set."""
    stack = Stack([Step(b"x-a"), Kept(b"x-b")], outside=1)
    assert stack.has_requests[INNER]
    contexts = stack.contexts()
    stack.entering(OUTER)({"path": b"/p"}, contexts)
    stack.entering(INNER)({"path": b"/p"}, contexts)
    assert contexts[1] == {"path": b"/p"}


@pytest.mark.parametrize("count", [1, 3])
def test_ending_runs_the_end_steps_innermost_first_of_the_layers_that_entered(count: int) -> None:
    log: list[Any] = []
    layers = [Step(b"x-%d" % i, log=log) for i in range(count)]
    stack = Stack([*layers, Step(b"x-quiet", "none", log=log)], outside=count + 1)
    contexts = stack.contexts()
    stack.entering(OUTER)({}, contexts)
    body = stack.ending(contexts, [])
    assert body == [b"x-%d" % i for i in reversed(range(count))]
    assert [name for name, _, _ in log] == body  # the layer that returned None has no end step to run
    assert stack.end(stack.contexts(), ["untouched"]) == ["untouched"]  # none entered: nothing ends
