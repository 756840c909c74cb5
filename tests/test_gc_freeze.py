"""Startup objects kept out of the garbage collector's full passes (``rljudge_service.gc_freeze``):
in the gateway when it starts, and in a worker before it forks its judges."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rljudge_service.app import create_app
from rljudge_service.gc_freeze import freeze_startup_objects
from rljudge_service.settings import Settings


@pytest.fixture()
def unfrozen() -> Iterator[None]:
    """Give the test process's frozen objects back to the collector afterwards."""
    yield
    gc.unfreeze()


def tracked(obj: object) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_frozen_objects_are_skipped_by_collections_and_new_ones_are_not(unfrozen: None) -> None:
    startup = [[i] for i in range(10_000)]  # long-lived containers, as imported modules hold
    assert tracked(startup)
    assert freeze_startup_objects() >= 10_000
    assert not tracked(startup) and not tracked(startup[-1])
    later = [[0]]
    assert tracked(later)  # allocated after the freeze: collected as before


async def test_the_gateway_freezes_its_startup_objects(redis_url: str, unfrozen: None) -> None:
    app = create_app(Settings(redis_url=redis_url))
    assert tracked(app)
    async with app.router.lifespan_context(app):
        assert not tracked(app) and gc.get_freeze_count() > 10_000


def test_a_worker_freezes_its_warmed_up_judge_before_forking() -> None:
    code = (
        "import gc; from rljudge_workers.main import preload; preload(); "
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    frozen, left = map(int, out.stdout.split())
    assert frozen > 100_000  # sympy and math-verify, warmed up
    assert left < frozen // 20  # what a full collection still walks
