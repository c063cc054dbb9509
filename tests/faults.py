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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
        for _ in range(5):
            self.proc = subprocess.Popen(  # noqa: S603 - a fixed local binary, loopback only
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    # The answer must come from our own server: another process may have taken the free port
                    # between free_port() and the bind (then ours exits, and a stranger answers the PING).
                    if s.recv(16).startswith(b"+PONG") and self.proc.poll() is None:
                        return
                time.sleep(0.02)
            if self.proc.poll() is None:
                break
            self.port = free_port()  # ours could not bind: try another port
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
        except (OSError, ValueError):  # cut() closed the sockets under us (select then sees fd -1)
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


# -- topologies: a sentinel-watched master, a small cluster ------------------------------------------------------


def _redis_exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed")
    return exe


def _wait_ping(port: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until a Redis-protocol server on 127.0.0.1:``port`` answers PING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.settimeout(0.5)
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.02)
    raise RuntimeError(f"no server answered PING on 127.0.0.1:{port} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it when it does not exit within a bounded wait."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def redis_cli(port: int, *args: str, timeout: float = 10.0) -> str:
    """Run ``redis-cli -p port args...`` against 127.0.0.1 (bounded); its stdout."""
    exe = _redis_exe("redis-cli")
    done = subprocess.run(  # noqa: S603 - a fixed local binary, loopback only
        [exe, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout.decode()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true, at most ``timeout`` seconds; raise naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


class ServerGroup:
    """Several private Redis processes (masters, replicas, sentinels, cluster nodes) stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, *args: str, port: int | None = None, sentinel: bool = False) -> int:
        """Start ``redis-server [config] args...`` on a free loopback port (or ``port``); the port."""
        exe = _redis_exe("redis-server")
        port = port or free_port()
        cmd = [exe]
        if sentinel:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text("", encoding="utf-8")  # sentinel rewrites its config file: it must be writable
            cmd += [str(conf), "--sentinel"]
        cmd += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        if not sentinel:
            cmd += ["--save", "", "--appendonly", "no"]
        cmd += list(args)
        log = (self.workdir / f"redis-{port}.log").open("wb")
        try:
            self.procs[port] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        finally:
            log.close()
        _wait_ping(port)
        return port

    def stop(self, port: int) -> None:
        """Stop the server on ``port`` (bounded wait)."""
        proc = self.procs.pop(port, None)
        if proc is not None:
            _stop(proc)

    def stop_all(self) -> None:
        """Stop every server of the group (bounded waits)."""
        for port in list(self.procs):
            self.stop(port)


@dataclass
class SentinelSetup:
    """A private master (and replica) watched by one sentinel; ``url`` is the store URL for it."""

    group: ServerGroup
    master: int
    replica: int | None
    sentinel: int
    service: str = "mymaster"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{self.service}/0"

    def master_port(self) -> int:
        """The port the sentinel currently names as the master."""
        out = redis_cli(self.sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service).split()
        return int(out[1])

    def failover(self, timeout: float = 20.0) -> int:
        """Ask the sentinel to fail over (retrying while it has no replica it trusts yet) and wait, bounded,
        until it names another master; the new master's port."""
        old = self.master_port()
        wait_until(
            lambda: redis_cli(self.sentinel, "SENTINEL", "FAILOVER", self.service).startswith("OK"),
            timeout,
            "the sentinel to accept SENTINEL FAILOVER",
            interval=0.2,
        )
        wait_until(lambda: self.master_port() != old, timeout, "the sentinel to promote the replica")
        return self.master_port()


@contextlib.contextmanager
def private_sentinel(workdir: Path, *, replica: bool = False) -> Iterator[SentinelSetup]:
    """A private master (plus a replica when asked) and one sentinel monitoring it with quorum 1.

    Failure detection is fast (``down-after-milliseconds`` 1000, ``failover-timeout`` 5000) so a test can
    fail over within a few seconds. Everything is stopped afterwards.
    """
    group = ServerGroup(workdir)
    try:
        master = group.start("--repl-diskless-sync-delay", "0")
        replica_port = None
        if replica:
            replica_port = group.start("--replicaof", "127.0.0.1", str(master))
            wait_until(
                lambda: "master_link_status:up" in redis_cli(replica_port, "INFO", "replication"),
                10,
                "the replica to sync",
            )
        sentinel = group.start(sentinel=True)
        name = "mymaster"
        redis_cli(sentinel, "SENTINEL", "MONITOR", name, "127.0.0.1", str(master), "1")
        for option, value in (("down-after-milliseconds", "1000"), ("failover-timeout", "5000")):
            redis_cli(sentinel, "SENTINEL", "SET", name, option, value)
        setup = SentinelSetup(group, master, replica_port, sentinel, name)
        if replica:
            wait_until(
                lambda: int(dict(_pairs(redis_cli(sentinel, "SENTINEL", "MASTER", name)))["num-slaves"]) >= 1,
                15,
                "the sentinel to discover the replica",
            )
        yield setup
    finally:
        group.stop_all()


def _pairs(reply: str) -> list[tuple[str, str]]:
    lines = reply.split("\n")
    return list(zip(lines[0::2], lines[1::2], strict=False))


@dataclass
class ClusterSetup:
    """A private Redis Cluster of masters only; ``url`` is the store URL for it (one seed node)."""

    group: ServerGroup
    ports: list[int]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"


@contextlib.contextmanager
def private_cluster(workdir: Path, masters: int = 3) -> Iterator[ClusterSetup]:
    """``masters`` cluster nodes on free loopback ports (bus ports free too), joined with
    ``redis-cli --cluster create`` and waited for (bounded) until every node reports ``cluster_state:ok``."""
    group = ServerGroup(workdir)
    try:
        ports: list[int] = []
        for _ in range(masters):
            port, bus = free_port(), free_port()
            ports.append(
                group.start(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / f"nodes-{port}.conf"),
                    "--cluster-port",
                    str(bus),
                    "--cluster-node-timeout",
                    "2000",
                    port=port,
                )
            )
        redis_cli(
            ports[0],
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in ports),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            timeout=30,
        )
        for port in ports:
            wait_until(
                lambda port=port: "cluster_state:ok" in redis_cli(port, "CLUSTER", "INFO"),  # type: ignore[misc]
                20,
                f"cluster_state:ok on node {port}",
            )
        yield ClusterSetup(group, ports)
    finally:
        group.stop_all()
