"""PUT /v1/problems/{problem_id}: register a code test suite once, reference it from many items."""

from __future__ import annotations

import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Response

from rljudge import MAX_ID_CHARS, ProblemRegistered, ProblemSuite

from .. import keys
from ..errors import NotFound
from ..jsonbody import JSONRoute
from .deps import CallerDep, RedisDep

router = APIRouter(prefix="/v1", tags=["problems"], route_class=JSONRoute)

ProblemId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_.:/@+-]+$")]


def _count(suite: ProblemSuite) -> int:
    tests = suite.tests
    if tests.type in ("stdio", "call"):
        return len(tests.cases)
    if tests.type == "assert":
        return len(tests.asserts) if tests.asserts is not None else 1
    return 0  # pytest: counted when collected


@router.put("/problems/{problem_id}", response_model=ProblemRegistered)
async def put_problem(
    problem_id: ProblemId, body: ProblemSuite, redis: RedisDep, caller: CallerDep, response: Response
) -> ProblemRegistered:
    """Store (or replace) a suite. Idempotent: the same suite gives the same ``hash``."""
    suite = body.model_dump(mode="json", exclude_none=True)
    digest = hashlib.sha256(orjson.dumps(suite, option=orjson.OPT_SORT_KEYS)).hexdigest()
    stored = orjson.dumps({"hash": digest, "tests": suite["tests"], "limits": suite.get("limits")})
    previous = await redis.set(keys.problem(problem_id), stored, get=True)
    created = previous is None
    response.status_code = 201 if created else 200
    return ProblemRegistered(problem_id=problem_id, hash=digest, tests=_count(body), created=created)


@router.get("/problems/{problem_id}", response_model=ProblemRegistered)
async def get_problem(problem_id: ProblemId, redis: RedisDep, caller: CallerDep) -> ProblemRegistered:
    stored = await redis.get(keys.problem(problem_id))
    if stored is None:
        raise NotFound(f"problem {problem_id!r} is not registered")
    problem = orjson.loads(stored)
    suite = ProblemSuite.model_validate({"tests": problem["tests"], "limits": problem.get("limits")})
    return ProblemRegistered(problem_id=problem_id, hash=problem["hash"], tests=_count(suite), created=False)
