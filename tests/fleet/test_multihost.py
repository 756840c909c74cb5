"""The fleet on several hosts: Redis, a gateway and worker hosts, each in its own network namespace.

Hosts (subnet 10.231.0.0/24 on a bridge in a namespace of its own; nothing in the machine's own
network namespace): redis .2, gateway .3, workers w1 .11, w2 .12, w3 .13 and, added mid-load,
w4 .14; the test drives the load from client .100. Each worker host runs ``rljudge worker
--workers 1`` against ``redis://10.231.0.2:6379``: nothing but the network joins the hosts.

Mid-load, w1 is stopped as Kubernetes stops a pod (SIGTERM: RQ's warm shutdown finishes the chunk
in hand), w2 loses power (SIGKILL to every process of the host, frozen first so that the chunk it
held is known), and w4 joins (once it has registered, one more batch is sent: the first ones may
be judged by then, and the new host must take its share). Then every item must have exactly one
result: none lost, none duplicated, each verdict right. Items of the chunk w2 held are re-queued by the lease reaper
when the workers have one (they are then scored), or else finalised ``unscored`` at the batch
deadline: both are one result; the test reports which happened.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from rljudge_service import keys
from rljudge_workers.jobs import load_chunk

from .netns import SUBNET, Host, Network, namespaces_supported, wait_for

PYTHON = sys.executable
REDIS_URL = f"redis://{SUBNET}.2:6379/0"
GATEWAY_URL = f"http://{SUBNET}.3:8000"
BATCHES = 8
MATH_PER_BATCH = 120
CODE_PER_BATCH = 6
# The load takes ~8 s here; the deadline only bounds the wait for a chunk lost with its host.
DEADLINE_S = 25.0
# A program that sleeps a little per test, so that code chunks keep workers busy while hosts change.
ADDER = "import time\ntime.sleep(0.05)\na, b = map(int, input().split())\nprint(a + b)\n"
SUITE = {"type": "stdio", "cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6\n"}]}


def items_for(batch: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A mixed batch and the verdict each item must get."""
    items: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    for i in range(MATH_PER_BATCH):
        value = batch * 1000 + i
        right = i % 3 != 0
        item_id = f"b{batch}-m{i}"
        items.append(
            {
                "kind": "math",
                "id": item_id,
                "response": f"<think>adding</think> The answer is $\\boxed{{{value}}}$",
                "gold": str(value if right else value + 1),
            }
        )
        expected[item_id] = "correct" if right else "wrong_answer"
    for i in range(CODE_PER_BATCH):
        right = i % 2 == 0
        program = ADDER if right else ADDER.replace("a + b", "a - b")
        item_id = f"b{batch}-c{i}"
        # A distinct comment per item: the chunk-level dedup must not merge them.
        items.append({"kind": "code", "id": item_id, "code": f"# {item_id}\n{program}", "tests": SUITE})
        expected[item_id] = "correct" if right else "wrong_answer"
    return items, expected


@pytest.fixture()
def network(tmp_path: Path) -> Iterator[Network]:
    refused = namespaces_supported()
    if refused is not None:
        pytest.skip(f"the kernel refuses network namespaces here (ip netns add: {refused})")
    assert shutil.which("redis-server"), "redis-server is required (make install installs it)"
    with Network() as net:
        yield net
        for log in sorted(tmp_path.glob("*.log")):  # shown by pytest only when the test fails
            print(f"---- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLJUDGE_")}
    env.update(
        RLJUDGE_REDIS_URL=REDIS_URL,
        RLJUDGE_LOG_LEVEL="warning",
        # Every item is judged (no verdict cache), so the load really runs on the workers.
        RLJUDGE_CACHE_ENABLED="false",
        # A chunk whose worker vanished is re-queued after this long (where workers hold leases).
        RLJUDGE_LEASE_TTL_S="3",
    )
    return env


def start_worker(host: Host, tmp_path: Path) -> None:
    host.spawn(
        [PYTHON, "-m", "rljudge_cli.main", "worker", "--workers", "1"], base_env(), tmp_path / f"{host.name}.log"
    )


def registered_workers(redis: Redis) -> list[Worker]:
    return Worker.all(connection=redis, serializer=JSONSerializer)


def host_worker_pids(host: Host) -> set[int]:
    pids: set[int] = set()
    for process in host.processes:
        try:
            pids |= {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
            pids.add(process.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def held_chunk_items(redis: Redis, pids: set[int]) -> set[tuple[str, int]]:
    """(batch_id, index) of every item in the chunks that the workers ``pids`` are judging now.

    Read from both ends: the worker's current execution and the started registries' jobs that name
    the worker (job ids are ``<batch_id>-<n>``; a job's argument refers to its chunk's items).
    """
    names = {w.name for w in registered_workers(redis) if w.pid in pids}
    job_ids = {w.get_current_job_id() for w in registered_workers(redis) if w.name in names} - {None}
    for queue in keys.QUEUES:
        registry = StartedJobRegistry(queue=Queue(queue, connection=redis, serializer=JSONSerializer))
        job_ids |= {job_id for job_id, _ in registry.get_job_and_execution_ids(cleanup=False)}
    held: set[tuple[str, int]] = set()
    for job_id in job_ids:
        try:
            job = Job.fetch(str(job_id), connection=redis, serializer=JSONSerializer)
        except NoSuchJobError:  # finished between the reads
            continue
        if job.worker_name not in names:
            continue
        chunk = load_chunk(redis, job.args[0])
        if chunk is not None:
            held |= {(chunk["batch_id"], int(entry["index"])) for entry in chunk["items"]}
    return held


def test_fleet_on_separate_hosts_gives_every_item_exactly_one_result(network: Network, tmp_path: Path) -> None:
    redis_host = network.add_host("redis", 2)
    gateway = network.add_host("gw", 3)
    workers = {name: network.add_host(name, octet) for name, octet in (("w1", 11), ("w2", 12), ("w3", 13), ("w4", 14))}
    client = network.add_host("client", 100)

    redis_host.spawn(
        [
            "redis-server", "--bind", redis_host.address, "--port", "6379", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--dir", str(tmp_path),
        ],
        base_env(),
        tmp_path / "redis.log",
    )  # fmt: skip
    for name in ("w1", "w2", "w3"):
        start_worker(workers[name], tmp_path)
    gateway.spawn(
        [PYTHON, "-m", "rljudge_cli.main", "gateway", "--host", gateway.address, "--port", "8000"],
        base_env(),
        tmp_path / "gateway.log",
    )

    with network.in_namespace(client, threads=BATCHES + 2) as run:
        redis = run(lambda: Redis.from_url(REDIS_URL, socket_timeout=10))
        http = httpx.Client(base_url=GATEWAY_URL, timeout=30)

        def ready() -> bool:
            try:
                return run(lambda: http.get("/readyz").status_code == 200 and len(registered_workers(redis)) >= 3)
            except (httpx.TransportError, OSError):
                return False

        wait_for(ready, 60, "Redis, the gateway and 3 worker hosts")
        started = time.monotonic()

        # ------------------------------------------------------------------ load
        sent: dict[str, list[str]] = {}
        expected: dict[str, str] = {}

        def submit(b: int) -> None:
            items, want = items_for(b)
            expected.update(want)
            response = run(lambda: http.post("/v1/batches", json={"items": items, "deadline_s": DEADLINE_S}))
            response.raise_for_status()
            sent[response.json()["batch_id"]] = [item["id"] for item in items]

        for b in range(BATCHES):
            submit(b)
        total = sum(len(ids) for ids in sent.values())

        def results_written() -> int:
            return run(lambda: sum(redis.hlen(keys.batch_results(b)) for b in sent))

        wait_for(lambda: results_written() >= total // 5, 60, "a fifth of the items judged")

        # ------------------------------------------------------------------ w1: graceful stop (SIGTERM)
        w1 = workers["w1"]
        w1.signal_all(signal.SIGSTOP)  # freeze, so the chunk it holds is known before it stops
        w1_chunk = run(lambda: held_chunk_items(redis, host_worker_pids(w1)))
        os.kill(w1.processes[0].pid, signal.SIGTERM)  # what tini passes on when Kubernetes stops the pod
        w1.signal_all(signal.SIGCONT)
        w1.processes[0].wait(timeout=60)

        # ------------------------------------------------------------------ w2: power loss (SIGKILL)
        w2 = workers["w2"]
        w2.signal_all(signal.SIGSTOP)  # freeze, so the chunk it holds cannot change under us
        orphaned = run(lambda: held_chunk_items(redis, host_worker_pids(w2)))
        w2.kill()

        # ------------------------------------------------------------------ w4 joins, and takes its share
        start_worker(workers["w4"], tmp_path)
        w4_pid = workers["w4"].processes[0].pid

        def w4_registered() -> bool:
            pids = host_worker_pids(workers["w4"])
            return run(lambda: any(w.pid in pids for w in registered_workers(redis)))

        wait_for(w4_registered, 60, "the added worker host to register")
        # the first batches may be judged by now: one more, sent to the fleet as it now is
        submit(BATCHES)
        total = sum(len(ids) for ids in sent.values())
        wait_for(lambda: results_written() >= total - len(orphaned), DEADLINE_S, "every item outside the lost chunk")
        judged_s = time.monotonic() - started

        # ------------------------------------------------------------------ collect every batch
        give_up = time.monotonic() + DEADLINE_S + 30

        def collect(batch_id: str) -> dict[str, Any]:
            while time.monotonic() < give_up:
                body = http.get(f"/v1/batches/{batch_id}", params={"wait_s": 10}).json()
                if body["done"]:
                    return body
            raise TimeoutError(f"batch {batch_id} not done {DEADLINE_S + 30:.0f} s after its submission")

        collected = {}
        for batch_id in sent:
            collected[batch_id] = run(lambda b=batch_id: collect(b))

        load_s = time.monotonic() - started
        stats = run(lambda: {k.decode(): float(v) for k, v in redis.hgetall(keys.STATS).items()})
        w4_pids = host_worker_pids(workers["w4"])
        w4_jobs = run(lambda: sum(w.successful_job_count for w in registered_workers(redis) if w.pid in w4_pids))
        http.close()
        run(redis.close)

    # ---------------------------------------------------------------------- the accounting
    received = 0
    duplicates = 0
    lost = 0
    wrong = []
    statuses: collections.Counter[str] = collections.Counter()
    not_scored: set[tuple[str, int]] = set()
    for batch_id, ids in sent.items():
        body = collected[batch_id]
        results = body["results"]
        received += len(results)
        indexes = [r["index"] for r in results]
        duplicates += len(indexes) - len(set(indexes))
        lost += len(set(range(len(ids))) - set(indexes))
        for result in results:
            assert result["id"] == ids[result["index"]], result
            statuses[result["status"]] += 1
            if result["status"] == "scored":
                if result["verdict"] != expected[result["id"]]:
                    wrong.append(result)
            else:
                not_scored.add((batch_id, result["index"]))
    worker_written = sum(v for k, v in stats.items() if k.startswith("items|"))
    gateway_unscored = statuses["unscored"] - sum(
        v for k, v in stats.items() if k.startswith("items|") and "|unscored|" in k
    )
    orphans_scored = len(orphaned - not_scored)

    survivors = {name: workers[name].processes[0].poll() for name in ("w3", "w4")}
    crashed = [log.name for log in sorted(tmp_path.glob("*.log")) if "Traceback" in log.read_text(errors="replace")]
    print(
        f"\nmulti-host (all but the lost chunk judged in {judged_s:.1f} s, all in {load_s:.1f} s): "
        f"sent {total} items in {len(sent)} batches "
        f"({len(sent) * MATH_PER_BATCH} math, {len(sent) * CODE_PER_BATCH} code); "
        f"received {received}, duplicates {duplicates}, lost {lost}; statuses {dict(statuses)}; "
        f"results written by workers {worker_written:.0f}, "
        f"unscored by the gateway at the deadline {gateway_unscored:.0f}; "
        f"w1 (SIGTERM) finished its chunk of {len(w1_chunk)} items; "
        f"w2 (SIGKILL) held a chunk of {len(orphaned)} items: "
        f"{orphans_scored} scored (before the kill or after a re-queue), "
        f"{len(orphaned) - orphans_scored} unscored at the deadline; w4 (added, pid {w4_pid}) judged {w4_jobs} chunks"
    )
    assert received == total and duplicates == 0 and lost == 0
    assert not wrong, f"wrong verdicts: {wrong[:3]}"
    # Exactly once: each result was written once, by a worker or by the gateway at the deadline. The
    # workers' counters may miss a result the killed host wrote just before it died (the result and
    # its counter are two round trips), never count one twice.
    assert total - len(orphaned) <= worker_written + gateway_unscored <= total
    # Only the chunk the powered-off host held may miss its judgement; the gracefully stopped host
    # finished its own.
    assert not_scored <= orphaned, (
        f"items not scored outside the killed host's chunk: {sorted(not_scored - orphaned)[:5]}"
    )
    assert not (w1_chunk & not_scored)
    assert w4_jobs > 0, "the worker host added mid-load judged nothing"
    # The hosts nobody stopped are still serving (a crash there would have gone unnoticed above).
    dead = {name: code for name, code in survivors.items() if code is not None}
    assert not dead, f"worker hosts exited on their own (status): {dead}; see their logs below"
    assert not crashed, f"tracebacks in the logs of {crashed}; see the logs below"
