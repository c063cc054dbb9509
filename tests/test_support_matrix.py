"""The Pythons and dependency releases the package claims are the ones the test command runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; the 3.10 run reads the same files through 3.11's run


def _project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return data


def _matrix() -> dict[str, str]:
    """Python version -> which dependencies (oldest/newest) scripts/dev.sh runs the suite with."""
    text = (ROOT / "scripts" / "dev.sh").read_text()
    entries = re.search(r"for entry in ((?:\d+\.\d+:\w+ ?)+); do", text)
    assert entries, "scripts/dev.sh has no Python matrix"
    return dict(entry.split(":") for entry in entries.group(1).split())


def test_every_python_the_classifiers_claim_is_tested_and_the_oldest_with_the_oldest_dependencies() -> None:
    claimed = {
        c.rsplit(" :: ", 1)[1]
        for c in _project()["classifiers"]  # type: ignore[attr-defined]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    tested = {"3.11", *_matrix()}  # 3.11 runs everything (the main run)
    assert claimed == tested
    oldest = min(tested, key=Version)
    assert _matrix()[oldest] == "oldest"
    assert _project()["requires-python"] == f">={oldest}"


def test_the_oldest_constraints_pin_exactly_the_lower_bound_of_every_user_dependency() -> None:
    pins = {}
    for line in (ROOT / "scripts" / "oldest-constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = Version(version)
    project = _project()
    user_extras = {
        k: v for k, v in project["optional-dependencies"].items() if k not in ("dev", "test", "docs", "bench")
    }  # type: ignore[attr-defined]
    requirements = [Requirement(r) for r in project["dependencies"]]  # type: ignore[attr-defined]
    requirements += [
        Requirement(r) for extra in user_extras.values() for r in extra if not r.startswith("backend-guard")
    ]
    for req in requirements:
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert floors, f"{req.name} has no lower bound"
        assert pins.get(req.name.lower()) == floors[0], (
            f"{req.name}: pin its lower bound {floors[0]} in oldest-constraints"
        )
