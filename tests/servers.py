"""Real HTTP servers on loopback for tests: uvicorn for ASGI apps (hypercorn where HTTP/2 is needed), waitress (or
wsgiref) for WSGI apps.

Each context manager binds port 0 (the OS picks a free port, no race), waits a bounded time for the server to
answer, yields the base URL (``http://127.0.0.1:PORT``) and shuts the server down cleanly afterwards::

    with run_asgi(app) as url:
        assert httpx.get(url + "/").status_code == 200
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STARTUP_TIMEOUT = 10.0


def _wait_listening(port: int, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start within {timeout} s")


@contextmanager
def run_asgi(app: Any, **config: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread; yields the base URL. ``config``: uvicorn.Config options."""
    # log_config=None: uvicorn leaves the logging configuration alone, its records reach pytest's caplog.
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_config": None, "lifespan": "off"}
    options.update(config)
    with _uvicorn(app, options) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


@contextmanager
def run_asgi_unix(app: Any, path: str, **config: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on the Unix socket ``path``; yields the path (for ``uds=``)."""
    options: dict[str, Any] = {"uds": path, "log_config": None, "lifespan": "off"}
    options.update(config)
    with _uvicorn(app, options):
        yield path


@contextmanager
def _uvicorn(app: Any, options: dict[str, Any]) -> Iterator[Any]:
    import uvicorn

    # The asyncio loop and h11 whatever extras are installed (uvicorn[standard] brings uvloop and httptools for the
    # benchmarks): the same server in every environment, and uvloop's teardown warnings stay out of the tests.
    options = {"loop": "asyncio", "http": "h11", **options}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)


@contextmanager
def run_asgi_h2(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with hypercorn, which speaks HTTP/2 to a client that starts with it (prior knowledge,
    no TLS: ``httpx.Client(http1=False, http2=True)``) and HTTP/1.1 otherwise; yields the base URL."""
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listener = socket.create_server(("127.0.0.1", 0))  # port 0 bound here: no race for a free port
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn's socket from now on (it closes it)
    config.accesslog = config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(app, config, shutdown_trigger=stop.wait),), daemon=True
    )
    thread.start()
    try:
        _wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(STARTUP_TIMEOUT)
        loop.close()


@contextmanager
def run_wsgi(app: Any, *, server: str = "waitress", threads: int = 4) -> Iterator[str]:
    """Serve a WSGI ``app`` with waitress (default) or wsgiref in a thread; yields the base URL."""
    if server == "wsgiref":
        yield from _run_wsgiref(app)
        return
    from waitress import wasyncore
    from waitress.server import create_server

    srv: Any = create_server(app, host="127.0.0.1", port=0, threads=threads, clear_untrusted_proxy_headers=True)
    port = srv.effective_port
    thread = threading.Thread(target=srv.run, name="test-waitress", daemon=True)
    thread.start()
    try:
        _wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        # First let the worker threads finish what they are doing (a worker that finishes a request pulls the
        # loop's trigger, which must still be open), then close every channel from inside the loop's own
        # thread; the loop ends when its map is empty.
        srv.task_dispatcher.shutdown(timeout=STARTUP_TIMEOUT)
        with contextlib.suppress(OSError):  # the loop already closed its trigger: it is ending by itself
            srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))
        thread.join(STARTUP_TIMEOUT)


def _run_wsgiref(app: Any) -> Iterator[str]:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            logging.getLogger("tests.wsgiref").debug(format, *args)

    httpd = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(STARTUP_TIMEOUT)
