"""Login bodies the lockout decorator must either read exactly as the route does or refuse before the route.

``SHAPES`` are ways to send one guess (``alice``, a wrong password) that a permissive route (one that parses the
raw body as JSON whatever its Content-Type says) would still check; ``flood`` sends them from many loopback
addresses (each request binds its own ``127.0.0.x`` source address, so the lockout sees distinct clients).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

PAD = 1 << 20  # the decorator's read limit: a padded body is just over it

GUESS = {"username": "alice", "password": "wrong"}
_JSON = json.dumps(GUESS).encode()


def _padded() -> bytes:
    return json.dumps({**GUESS, "pad": "x" * PAD}).encode()


_DECOYS = itertools.count()


def _json_and_django_multipart() -> bytes:
    """The guess as JSON that Django's multipart parser also reads as a form naming a fresh decoy (Django finds a
    boundary anywhere, even inside a JSON string; JSON whitespace ends the part's headers)."""
    return (
        b'{"username": "alice", "password": "wrong", "z": "--XYZcontent-disposition: form-data; name=username;"'
        b'\r\n\r\n, "q": "decoy%d--XYZ--"}' % next(_DECOYS)
    )


def _chunked(body: bytes) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    return gen


# (name, httpx request options); the options are built fresh per request (a generator body is single use).
SHAPES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("json", lambda: {"content": _JSON, "headers": {"content-type": "application/json"}}),
    ("padded json", lambda: {"content": _padded(), "headers": {"content-type": "application/json"}}),
    (
        "json as multipart without boundary",
        lambda: {"content": _JSON, "headers": {"content-type": "multipart/form-data"}},
    ),
    (
        "json as multipart with boundary",
        lambda: {"content": _JSON, "headers": {"content-type": "multipart/form-data; boundary=zzz"}},
    ),
    (
        "json as urlencoded",
        lambda: {"content": _JSON, "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
    (
        "json that Django also reads as a multipart form",
        lambda: {
            "content": _json_and_django_multipart(),
            "headers": {"content-type": "multipart/form-data; boundary=XYZ"},
        },
    ),
    ("json as text", lambda: {"content": _JSON, "headers": {"content-type": "text/plain"}}),
    ("json without content type", lambda: {"content": _JSON, "headers": {}}),
    (
        "padded json chunked",
        lambda: {"content": _chunked(_padded())(), "headers": {"content-type": "application/json"}},
    ),
    (
        "json with the name twice",
        lambda: {
            "content": b'{"username": "", "username": "alice", "password": "wrong"}',
            "headers": {"content-type": "application/json"},
        },
    ),
    (
        "json and a name in the query",
        lambda: {"content": _JSON, "headers": {"content-type": "application/json"}, "params": {"username": "bob"}},
    ),
]

REFUSALS = {400, 413, 415}


def _send(url: str, address: str, options: dict[str, Any]) -> int:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.post(url, headers={"connection": "close", **options.pop("headers")}, **options).status_code


def flood(url: str, addresses: int = 30, per_address: int = 6) -> Counter[int]:
    """``addresses * per_address`` guesses at alice, the shapes taken in turn; the statuses counted (bounded)."""
    jobs = []
    for i in range(addresses):
        address = f"127.0.0.{10 + i}"
        for j in range(per_address):
            jobs.append((address, SHAPES[(i * per_address + j) % len(SHAPES)][1]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return Counter(pool.map(lambda job: _send(url, job[0], job[1]()), jobs))
