"""CI smoke run of the benchmarks: they must keep running and write their figures. No timing is asserted.

One ``python benchmarks/run.py --quick --out <tmp>`` (every script with ``--quick``, in a scratch copy, so the
committed full-run figures are never touched), then checks on what it wrote. The Redis-backed scripts follow
the Redis convention of tests/conftest.py (skipped when no Redis answers, failed under
BACKEND_GUARD_REQUIRE_REDIS=1); the real-server benchmark needs ``wrk`` (skipped without it, failed under
BACKEND_GUARD_REQUIRE_WRK=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
REQUIRE_WRK = os.environ.get("BACKEND_GUARD_REQUIRE_WRK") == "1"
REQUIRE_REDIS = os.environ.get("BACKEND_GUARD_REQUIRE_REDIS") == "1"
SCRIPTS = sorted(p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py"))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the whole quick suite once for this module; its exit status, output and summary."""
    out = tmp_path_factory.mktemp("bench")
    before = _mtimes()
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--out", str(out), "--timeout", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=160,
    )
    summary_path = out / "results" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return {"proc": proc, "out": out, "summary": summary, "before": before, "after": _mtimes()}


# files only run.py / bench_stack / bench_server write (other scripts may be run by hand while the tests run)
OWN_RESULTS = ["summary.json", "summary.md", "stack-quick.json", "server-quick.json"]


def _mtimes() -> dict[str, float | None]:
    paths = {name: BENCHMARKS / "results" / name for name in OWN_RESULTS}
    paths["benchmarks.png"] = ROOT / "docs" / "img" / "benchmarks.png"
    return {name: p.stat().st_mtime if p.exists() else None for name, p in paths.items()}


def _entry(quick_run: dict[str, Any], name: str) -> dict[str, Any]:
    summary = quick_run["summary"]
    assert summary is not None, quick_run["proc"].stdout[-3000:] + quick_run["proc"].stderr[-3000:]
    entry: dict[str, Any] = summary["benchmarks"][name]
    return entry


def test_run_quick_exits_zero_and_writes_the_summary(quick_run: dict[str, Any]) -> None:
    proc = quick_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = quick_run["out"] / "results"
    summary = quick_run["summary"]
    assert set(summary) >= {"environment", "quick", "benchmarks", "headline", "data"}
    assert summary["quick"] is True
    assert set(summary["benchmarks"]) == set(SCRIPTS)
    markdown = (results / "summary.md").read_text()
    assert markdown.startswith("# Benchmark summary")
    assert "## Headline figures" in markdown
    for row in summary["headline"]:
        assert set(row) == {"figure", "measured", "unit", "target", "met"}
    figures = {row["figure"] for row in summary["headline"]}
    # every target the issues name has its row, read from the scripts' own JSON (a renamed case must not
    # silently drop a figure from the summary)
    assert "rate limit, memory: a decision through RateLimitMiddleware (headers on)" in figures
    assert "PasswordPolicy: blocklist check per password" in figures
    csrf = "CSRF protection on the ASGI stack (passing requests, Origin-only included; layer step and middleware)"
    assert csrf in figures
    # issue #24's import targets, each with its met / not met
    imports = [row for row in summary["headline"] if row["figure"].startswith("import ")]
    assert "import backend_guard / import starlette.applications (best of N fresh interpreters)" in figures
    assert any(figure.startswith("import of each public module") for figure in figures)
    assert all(isinstance(row["met"], bool) for row in imports)
    ratelimit = summary["data"].get("ratelimit", {}).get("ratelimit-quick.json", {})
    if isinstance(ratelimit.get("redis"), dict):
        assert "rate limit, Redis: sliding-window-counter hit (1 limit) / redis-py PING" in figures
    if summary["benchmarks"]["lockout"]["status"] == "ok":
        assert "lockout, Redis: check-and-reserve / redis-py PING" in figures


def test_quick_run_never_touches_the_committed_results(quick_run: dict[str, Any]) -> None:
    # every result landed in the scratch copy, none next to the real scripts or in the docs
    for entry in quick_run["summary"]["benchmarks"].values():
        for name in entry["files"]:
            assert (quick_run["out"] / "results" / name).exists()
    assert quick_run["after"] == quick_run["before"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_benchmark_ran_and_wrote_json(quick_run: dict[str, Any], name: str) -> None:
    entry = _entry(quick_run, name)
    if entry["status"] == "skipped":
        reason = entry.get("reason", "")
        assert name == "server" or "Redis" in reason or "redis" in reason, entry
        assert not (REQUIRE_REDIS and name != "server"), entry
        pytest.skip(f"bench_{name}: {reason}")
    assert entry["status"] == "ok", entry.get("output_tail", entry)
    written = [f for f in entry["files"] if f.endswith(".json")]
    assert written, f"bench_{name} wrote no JSON"
    for f in written:
        data = json.loads((quick_run["out"] / "results" / f).read_text())
        assert isinstance(data, dict)
        assert data, f


def test_stack_results_have_every_case_and_target(quick_run: dict[str, Any]) -> None:
    entry = _entry(quick_run, "stack")
    assert entry["status"] == "ok", entry.get("output_tail", entry)
    data = json.loads((quick_run["out"] / "results" / "stack-quick.json").read_text())
    assert data["quick"] is True
    asgi = data["asgi"]["results"]
    assert set(asgi) == {
        "starlette_bare",
        "asgi_passthrough",
        "basehttp_empty",
        "ours_request_id",
        "ours_secure_headers",
        "ours_cors",
        "ours_errors",
        "ours_ratelimit",
        "ours_guard",
        "peer_stack",
        "peer_stack_basehttp",
    }
    assert set(data["wsgi"]["results"]) == {"flask_bare", "flask_ours", "flask_peer"}
    for case in [*asgi.values(), *data["wsgi"]["results"].values()]:
        assert set(case) >= {"median_us", "overhead_us", "ratio", "rounds", "samples_us"}
        assert len(case["samples_us"]) == case["rounds"]
    targets = data["targets"]
    assert set(targets) >= {"asgi_guard_overhead_us", "asgi_ours_over_peer", "wsgi_ours_over_peer", "met"}
    assert set(targets["met"]) == {"asgi_overhead", "asgi_ratio", "wsgi_ratio"}
    assert data["environment"]["cpus"] >= 1


def test_server_results_have_every_variant(quick_run: dict[str, Any]) -> None:
    entry = _entry(quick_run, "server")
    if shutil.which("wrk") is None and not os.environ.get("WRK"):
        if REQUIRE_WRK:
            pytest.fail("BACKEND_GUARD_REQUIRE_WRK=1 but wrk is not installed")
        assert entry["status"] == "skipped", entry
        pytest.skip("wrk is not installed (apt-get install wrk): the real-server benchmark cannot run")
    assert entry["status"] == "ok", entry.get("output_tail", entry)
    data = json.loads((quick_run["out"] / "results" / "server-quick.json").read_text())
    # run.py always runs the floor server too: the target is read against it
    assert set(data["results"]) == {"bare", "ours", "peer", "floor"}
    for variant in data["results"].values():
        assert set(variant) >= {"rps", "rps_ratio_to_bare", "latency_p50_ms", "latency_p99_ms", "rounds"}
        assert variant["rps"] > 0  # it served requests; how many is not asserted
        assert all(not any(r["errors"].values()) for r in variant["rounds"])
    assert set(data["targets"]) == {"ours_rps_ratio_to_bare", "target", "met"}
    figures = {row["figure"] for row in quick_run["summary"]["headline"]}
    assert "uvicorn + wrk: floor (bare + our headers as constants) / bare Starlette's" in figures


def test_plot_is_drawn_when_matplotlib_is_installed(quick_run: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    png = quick_run["out"] / "results" / "benchmarks.png"
    assert quick_run["summary"]["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_redis_figures_come_from_a_private_server(quick_run: dict[str, Any]) -> None:
    # A shared server that ran the test suite (or the benchmarks before) holds cached scripts, whose Lua garbage
    # collection slows every script call: run.py measures each benchmark on a fresh redis-server of its own
    # unless told otherwise.
    if "REDIS_URL" in os.environ or shutil.which("redis-server") is None:
        pytest.skip("REDIS_URL is set or redis-server is not installed: run.py uses the shared Redis")
    summary = quick_run["summary"]
    assert summary is not None, quick_run["proc"].stderr[-3000:]
    assert summary["redis"] == "a fresh private redis-server for each benchmark"
    assert (
        "Redis: a fresh private redis-server for each benchmark."
        in (quick_run["out"] / "results" / "summary.md").read_text()
    )
    assert _entry(quick_run, "lockout")["status"] == "ok"


@pytest.mark.parametrize("shell", ["guard", "wsgi", "decorator"])
def test_first_request_driver_runs_each_shell_on_the_memory_path(shell: str) -> None:
    # first_request_instructions.py counts instructions under valgrind (not in CI); its driver must keep running:
    # it raises when a shell awaits something (then it would not be the memory store's path it claims to count).
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(BENCHMARKS / "first_request_instructions.py"), "--drive", shell, "new", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
