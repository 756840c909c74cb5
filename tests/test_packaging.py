"""Packaging promises: the client stands alone; the server installs no generic top-level names;
``service`` never imports worker code."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_client_depends_only_on_httpx_and_pydantic() -> None:
    """Its one optional extra, ``speedups``, adds sniffio alone."""
    reqs = requires("rljudge") or []

    def names(wanted: list[str]) -> list[str]:
        return sorted(req.split(">")[0].split("=")[0].split(";")[0].strip() for req in wanted)

    assert names([req for req in reqs if "extra ==" not in req]) == ["httpx", "pydantic"]
    assert names([req for req in reqs if "extra ==" in req]) == ["sniffio"]
    assert all("speedups" in req for req in reqs if "extra ==" in req)


def test_importing_the_client_loads_no_server_or_ml_packages() -> None:
    code = (
        "import sys, rljudge; heavy = {'fastapi', 'rq', 'redis', 'sympy', 'torch', 'math_verify', 'pebble'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_server_packages_are_prefixed() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    assert all(name.startswith("rljudge_") for name in packages), packages


@pytest.mark.parametrize("path", sorted((ROOT / "service").rglob("*.py")), ids=lambda p: p.name)
def test_service_never_imports_workers(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(name.startswith(("rljudge_workers", "rljudge_sandbox")) for name in names), (path, names)
