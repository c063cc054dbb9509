"""Fault tools for tests: a private redis-server on a free port, and a TCP proxy that can stall or cut.

Only loopback addresses are used. The shared Redis on 6379 is never stopped: tests that stop, slow or restart
Redis use a server of their own from here.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from .conftest import free_port


class PrivateRedis:
    """A redis-server of this test's own on 127.0.0.1:<free port>, which the test may stop and restart."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed local binary, loopback only
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """Start a private redis-server; always stopped afterwards."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port``: ``stall()`` stops forwarding (the client times
    out), ``cut()`` closes every connection, ``heal()`` forwards again. Stops by itself when closed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.stalled = threading.Event()
        self.closed = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.closed.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.05)
                if self.stalled.is_set():
                    continue  # hold the bytes: the client sees a server that does not answer
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def stall(self) -> None:
        self.stalled.set()

    def heal(self) -> None:
        self.stalled.clear()

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()

    def close(self) -> None:
        self.closed.set()
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.close()
        self._thread.join(2)


@contextlib.contextmanager
def fault_proxy(target_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
