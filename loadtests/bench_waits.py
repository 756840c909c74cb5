"""Where the cores go while two stacks judge the same batches, from the kernel's own scheduler events
(``perf record`` of ``sched:sched_switch`` and ``sched:sched_waking``, every CPU):

    python -m loadtests.bench_waits [--workload scaling|grpo] [--size 8192] [--rounds 3] [--report NAME]

``scaling`` (the default): the bench's scaling pair, 2 workers and 1 (verdict cache and
de-duplication off), on uncached math batches of ``--size`` items. ``grpo``: the bench's GRPO pair,
2 workers each, with the verdict cache on and with neither cache nor de-duplication, on GRPO steps
(64 prompts x 16 rollouts, new prompts each, the verdict cache emptied before each). The two take
turns batch by batch. Over each batch's window it attributes every core's time, per item:

- **busy**, by the part that ran: judge processes, RQ workers, gateway, Redis, the client (this
  process), perf itself, the other stack, anything else on the machine;
- **idle**, by what the other cores ran meanwhile (nothing: the whole machine waited);
- **idle, by who ended it**: the task that next ran on the idle core and the part that woke it
  ("rq worker woken by redis": a reply from Redis was what that core waited for);
- each part's **waits**: asleep, by the part that woke it; woken but waiting for a core; preempted.

It needs ``perf`` (Debian's linux-perf) and the right to trace the scheduler (root, or
``kernel.perf_event_paranoid`` <= -1). Writes loadtests/results/bench_waits.{json,md} (``--report``:
another name).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from rljudge_cli.stack import Stack

from .bench import flush_cache, math_items, turns
from .bench_settings import batch
from .common import running_stack, stack_client, write_report

_NEITHER = {"RLJUDGE_CACHE_ENABLED": "false", "RLJUDGE_DEDUP_ENABLED": "false"}
#: Each workload's two stacks: (name, workers, environment).
COMPARISONS: dict[str, tuple[tuple[str, int, dict[str, str]], ...]] = {
    "scaling": (("2 workers", 2, _NEITHER), ("1 worker", 1, _NEITHER)),
    "grpo": (("cache on", 2, {}), ("neither cache nor dedup", 2, _NEITHER)),
}
#: What a core can be doing, as reported: the parts of the stack whose batch is running, then the rest.
PARTS = ("judge processes", "rq workers", "gateway", "redis", "client", "perf", "other stack", "other")
IDLE = "idle"
IRQ = "interrupt (idle core)"  # a wake-up from an interrupt that arrived while its core was idle

_HEADER = re.compile(r"^\s*(\d+)/(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+sched:(\w+):\s(.*)$")
_SWITCH = re.compile(r"prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) ==> next_comm=.* next_pid=(\d+) next_prio")
_WAKING = re.compile(r"comm=.* pid=(\d+) prio=-?\d+ target_cpu=(\d+)")


def stack_parts(stack: Stack) -> dict[int, str]:
    """Every process of ``stack`` (by pid) and its part, as ``bench.cpu_by_part`` classes them: Redis,
    the gateway, the RQ workers with the pool parent that forked them, the judge processes below a
    worker (Pebble math processes, code pools, jails)."""
    out: dict[int, str] = {}
    for name, part in (("redis", "redis"), ("gateway", "gateway"), ("workers", "rq workers")):
        top = psutil.Process(stack.children[name].pid)
        out[top.pid] = part
        for proc in top.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                depth = 0
                parent = proc
                while parent.pid != top.pid and depth < 16:
                    parent = psutil.Process(parent.ppid())
                    depth += 1
                out[proc.pid] = "judge processes" if name == "workers" and depth >= 2 else part
    return out


def stack_workers(stack: Stack) -> dict[int, int]:
    """Each RQ worker process of ``stack`` and each process below one (its judge processes), mapped
    to the worker's pid: what one worker is made of."""
    out: dict[int, int] = {}
    pool = psutil.Process(stack.children["workers"].pid)
    for worker in pool.children():
        out[worker.pid] = worker.pid
        with contextlib.suppress(psutil.Error):
            out.update({proc.pid: worker.pid for proc in worker.children(recursive=True)})
    return out


@dataclass
class Window:
    """One batch on one stack: when it ran (CLOCK_MONOTONIC seconds) and what it judged."""

    stack: str
    start: float
    end: float
    items: int
    phase: str = "batch"  # "head" (until a judge process first runs), "judging", "tail" (after the last)


@dataclass
class Tally:
    """Seconds of core time and waits, summed over every window of one stack."""

    wall_s: float = 0.0
    items: int = 0
    phases: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # wall seconds of each
    busy: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    idle_beside: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    idle_ended_by: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    waits: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    stalls: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # a worker with nothing runnable
    switches: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # times a part got a core
    migrations: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # ... another one than before


class Recorder:
    """``perf record`` of the scheduler's switch and wake-up events on every CPU, stamped with
    CLOCK_MONOTONIC (``time.monotonic()`` here), into ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recorder:
        perf = shutil.which("perf")
        if perf is None:
            raise SystemExit("bench_waits needs perf: apt-get install linux-perf")
        args = [perf, "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "8M", "-o", str(self.path)]
        args += ["-e", "sched:sched_switch", "-e", "sched:sched_waking"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # perf writes the file's header once its buffers are mapped and the events enabled
        deadline = time.monotonic() + 30
        while not (self.path.exists() and self.path.stat().st_size > 0):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SystemExit(f"perf record failed (root, or kernel.perf_event_paranoid <= -1, is needed): {err}")
            if time.monotonic() > deadline:
                raise SystemExit("perf record did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def batches(workload: str, size: int, rounds: int) -> list[list[dict[str, Any]]]:
    """The batches each stack judges in turn: uncached math batches, or GRPO steps of new prompts
    (``bench_settings``' steps)."""
    return [batch("grpo" if workload == "grpo" else f"math{size}", r) for r in range(rounds)]


async def take_turns(
    stacks: list[Stack], names: list[str], work: list[list[dict[str, Any]]]
) -> tuple[list[Window], dict[str, float]]:
    """Each batch of ``work`` on each stack, taking turns as the bench does (each with an empty
    verdict cache); the windows and each stack's items/s (by wall time, as the bench measures it)."""
    clients = [stack_client(stack, batch_size=10_000, max_concurrency=1) for stack in stacks]
    windows: list[Window] = []
    try:
        for client in clients:
            await client.judge(math_items(64, offset=400), deadline_s=3600)
        for r, batch in enumerate(work):
            for i in turns(r, len(clients)):
                flush_cache(stacks[i].redis_url or "")
                started = time.monotonic()
                out = await clients[i].judge(batch, deadline_s=3600)
                windows.append(Window(names[i], started, time.monotonic(), len(batch)))
                assert all(x.status == "scored" for x in out), {x.status for x in out}
    finally:
        for client in clients:
            await client.aclose()
    rates = {}
    for name in names:
        mine = [w for w in windows if w.stack == name]
        rates[name] = sum(w.items for w in mine) / sum(w.end - w.start for w in mine)
    return windows, rates


#: One recorded event: time, cpu, tid, pid, its name, its fields.
Event = tuple[float, int, int, int, str, str]


def events(path: Path) -> Iterator[Event]:
    """(time, cpu, tid, pid, event, fields) of each recorded event, in time order."""
    perf = shutil.which("perf") or "perf"
    args = [perf, "script", "-i", str(path), "-F", "tid,pid,cpu,time,event,trace"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = _HEADER.match(line)
            if m:
                pid, tid, cpu, t, name, rest = m.groups()  # perf prints "pid/tid"
                yield float(t), int(cpu), int(tid), int(pid), name, rest


class Attribution:
    """The sweep over the events: the state of every core and every task, summed into each
    window's stack's ``Tally`` (intervals clipped to the windows)."""

    def __init__(
        self,
        windows: list[Window],
        names: list[str],
        parts: dict[str, dict[int, str]],
        workers: dict[int, int],
        tgid: dict[int, int],
        client: int,
        perf: int,
    ) -> None:
        self.windows = sorted(windows, key=lambda w: w.start)
        self.starts = [w.start for w in self.windows]
        self.parts, self.client, self.perf = parts, client, perf
        self.tgid = tgid  # thread -> process, for every task the events name
        self.tally = {name: Tally() for name in names}
        for w in self.windows:
            self.tally[w.stack].wall_s += w.end - w.start
            self.tally[w.stack].phases[w.phase] += w.end - w.start
            if w.phase in ("batch", "judging"):
                self.tally[w.stack].items += w.items
        self.running: dict[int, int] = {}  # cpu -> tid on it (0: idle)
        self.last: float | None = None  # time of the last switch on any core
        self.asleep: dict[int, float] = {}  # tid -> since when (switched out not runnable)
        self.woken: dict[int, tuple[float, str]] = {}  # tid -> when, by which part
        self.preempted: dict[int, float] = {}  # tid -> since when (switched out runnable)
        self.idle_since: dict[int, float] = {}  # cpu -> since when
        self.cpu_of: dict[int, int] = {}  # tid -> the core it last ran on
        self.workers = workers  # pid -> the RQ worker (pid) it belongs to
        self.active: dict[int, set[int]] = defaultdict(set)  # worker -> its tasks running or runnable
        self.stalled: dict[int, float] = {}  # worker -> since when none of its tasks could run

    def part(self, tid: int, stack: str) -> str:
        """What ``tid`` is, seen from the stack ``stack`` whose batch is running."""
        if tid == 0:
            return IDLE
        pid = self.tgid.get(tid, tid)
        if pid == self.client:
            return "client"
        if pid == self.perf:
            return "perf"
        for name, pids in self.parts.items():
            if pid in pids:
                return pids[pid] if name == stack else "other stack"
        return "other"

    def clip(self, a: float, b: float) -> Iterable[tuple[Window, float]]:
        """The windows that [a, b] overlaps and by how many seconds."""
        i = max(0, bisect.bisect_right(self.starts, a) - 1)
        while i < len(self.windows) and self.windows[i].start < b:
            w = self.windows[i]
            overlap = min(b, w.end) - max(a, w.start)
            if overlap > 0:
                yield w, overlap
            i += 1

    def add(self, a: float, b: float, kind: str, key: Callable[[str], str | None], by_phase: bool = False) -> None:
        for w, seconds in self.clip(a, b):
            name = key(w.stack)
            if name is None:
                continue
            getattr(self.tally[w.stack], kind)[f"{w.phase}: {name}" if by_phase else name] += seconds

    def count(self, t: float, kind: str, key: Callable[[str], str]) -> None:
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.windows[i].end:
            getattr(self.tally[self.windows[i].stack], kind)[key(self.windows[i].stack)] += 1

    def thread(self, tid: int, stack: str) -> str | None:
        """``part`` of ``tid``, and whether it is its process's main thread; None for a task that is
        not the stack's or the client's (its waits are not reported)."""
        part = self.part(tid, stack)
        if part in ("other", "perf", "other stack"):
            return None
        return f"{part} {'main thread' if self.tgid.get(tid, tid) == tid else 'other threads'}"

    def waited(self, tid: int, stack: str, how: str) -> str | None:
        thread = self.thread(tid, stack)
        return None if thread is None else f"{thread}: {how}"

    def feed(self, t: float, cpu: int, tid: int, pid: int, name: str, rest: str) -> None:
        if name == "sched_waking":
            m = _WAKING.match(rest)
            if m:
                self._account_until(t)  # what the cores did until now, before a task is woken
                # the waker is the task the event was recorded in (tid 0: an interrupt on an idle core)
                target = int(m.group(1))
                self.woken.setdefault(target, (t, "" if tid == 0 else str(tid)))
                self._worker_runnable(target, t, tid)
            return
        if name != "sched_switch":
            return
        m = _SWITCH.search(rest)
        if not m:
            return
        prev, state, nxt = int(m.group(1)), m.group(2), int(m.group(3))
        self._account_until(t)
        self.running[cpu] = nxt
        if prev == 0:
            since = self.idle_since.pop(cpu, None)
            if since is not None:
                self._idle_ended(since, t, nxt)
        elif state.startswith("R"):
            self.preempted[prev] = t
        else:
            self.asleep[prev] = t
            self.woken.pop(prev, None)
            self._worker_blocked(prev, t)
        if nxt == 0:
            self.idle_since[cpu] = t
        else:
            self.count(t, "switches", lambda stack: self.part(nxt, stack))
            if self.cpu_of.get(nxt, cpu) != cpu:
                self.count(t, "migrations", lambda stack: self.part(nxt, stack))
            self.cpu_of[nxt] = cpu
            self._worker_runnable(nxt, t, None)
            self._switched_in(nxt, t)

    def _account_until(self, t: float) -> None:
        """Each core's time since the last event that changed what the cores or tasks were doing."""
        if self.last is not None and self.running:
            self._cores(self.last, t)
        self.last = t

    def _worker_blocked(self, tid: int, t: float) -> None:
        worker = self.workers.get(self.tgid.get(tid, tid))
        if worker is None:
            return
        self.active[worker].discard(tid)
        if not self.active[worker]:
            self.stalled[worker] = t

    def _worker_runnable(self, tid: int, t: float, waker: int | None) -> None:
        """``tid`` was woken (by ``waker``; None: seen running without a wake-up) or got a core."""
        worker = self.workers.get(self.tgid.get(tid, tid))
        if worker is None:
            return
        self.active[worker].add(tid)
        since = self.stalled.pop(worker, None)
        if since is None:
            return

        def key(stack: str) -> str | None:
            if self.part(tid, stack) in ("other stack", "other"):
                return None
            me = "judge process" if self.tgid.get(tid, tid) != worker else "rq main thread"
            if me == "rq main thread" and self.tgid.get(tid, tid) != tid:
                me = "rq other thread"
            if waker is None:
                who = "(not seen)"
            elif waker == 0:
                who = IRQ
            elif self.workers.get(self.tgid.get(waker, waker)) == worker:
                who = "its own worker"
            else:
                who = self.part(waker, stack)
            return f"{me} woken by {who}"

        self.add(since, t, "stalls", key, by_phase=True)

    def _cores(self, a: float, b: float) -> None:
        """[a, b]: no core switched. Busy core time by part; idle core time by what the rest ran."""
        tids = list(self.running.values())

        woken = [x for x in self.woken if x not in tids and x not in self.preempted]  # not on a core yet
        preempted = list(self.preempted)

        def beside(stack: str, me: int) -> str:
            others = " + ".join(sorted({self.part(x, stack) for j, x in enumerate(tids) if j != me}))
            if any(self.part(x, stack) in PARTS[:5] for x in preempted):
                return f"{others}, a preempted task of the stack waiting"
            if any(self.part(x, stack) in PARTS[:5] for x in woken):
                return f"{others}, a woken task of the stack waiting"
            return others

        for j, tid in enumerate(tids):
            if tid == 0:
                self.add(a, b, "idle_beside", lambda stack, j=j: beside(stack, j), by_phase=True)
            else:
                self.add(a, b, "busy", lambda stack, tid=tid: self.part(tid, stack))

    def _idle_ended(self, since: float, t: float, nxt: int) -> None:
        woken = self.woken.get(nxt)
        waker = int(woken[1]) if woken and woken[1] else 0

        def key(stack: str) -> str:
            who = IRQ if waker == 0 else self.part(waker, stack)
            return f"{self.part(nxt, stack)} woken by {who}" if woken else f"{self.part(nxt, stack)} (runnable)"

        self.add(since, t, "idle_ended_by", key)

    def _switched_in(self, tid: int, t: float) -> None:
        if tid in self.preempted:
            since = self.preempted.pop(tid)
            self.add(since, t, "waits", lambda stack: self.waited(tid, stack, "preempted, waiting for a core"))
            return
        since = self.asleep.pop(tid, None)
        woken = self.woken.pop(tid, None)
        if since is None or woken is None:
            return
        when, waker = woken
        waker_tid = int(waker) if waker else 0

        def asleep(stack: str) -> str | None:
            who = IRQ if waker_tid == 0 else self.part(waker_tid, stack)
            if who == self.part(tid, stack) and self.tgid.get(waker_tid) == self.tgid.get(tid):
                who = "its own process"
            return self.waited(tid, stack, f"asleep, woken by {who}")

        self.add(since, when, "waits", asleep)
        self.add(when, t, "waits", lambda stack: self.waited(tid, stack, "woken, waiting for a core"))


def phases(
    windows: list[Window], recorded: list[Event], parts: dict[str, dict[int, str]], tgid: dict[int, int]
) -> list[Window]:
    """Each window cut in three: until one of its stack's judge processes first runs (the client
    preparing and sending the batch, the gateway queueing it, a worker taking the first chunk), while
    they run, and after the last one stops (results gathered, answered, read by the client)."""
    judges = {name: {pid for pid, part in pids.items() if part == "judge processes"} for name, pids in parts.items()}
    ran: dict[str, list[float]] = {name: [] for name in parts}
    for t, _cpu, _tid, _pid, name, rest in recorded:
        m = _SWITCH.search(rest) if name == "sched_switch" else None
        if m:
            for stack, pids in judges.items():
                if tgid.get(int(m.group(1))) in pids or tgid.get(int(m.group(3))) in pids:
                    ran[stack].append(t)
    out = []
    for w in windows:
        times = ran[w.stack]
        inside = times[bisect.bisect_left(times, w.start) : bisect.bisect_right(times, w.end)]
        if not inside:
            out.append(w)
            continue
        first, last = inside[0], inside[-1]
        out.append(Window(w.stack, w.start, first, w.items, "head"))
        out.append(Window(w.stack, first, last, w.items, "judging"))
        out.append(Window(w.stack, last, w.end, w.items, "tail"))
    return out


def per_item_us(tally: Tally, seconds: dict[str, float]) -> dict[str, float]:
    return {key: s / tally.items * 1e6 for key, s in sorted(seconds.items(), key=lambda kv: -kv[1])}


def report(tallies: dict[str, Tally], rates: dict[str, float], workload: str, size: int, rounds: int) -> dict[str, Any]:
    first, second = tallies
    out: dict[str, Any] = {"workload": workload, "size": size, "rounds": rounds, "items_per_s": rates}
    out["stacks"] = [first, second]
    out["ratio"] = rates[first] / rates[second]
    for name, tally in tallies.items():
        cores = psutil.cpu_count() or 1
        out[name] = {
            "wall_us_per_item": tally.wall_s / tally.items * 1e6,
            "wall_us_per_item_by_phase": per_item_us(tally, tally.phases),
            "core_us_per_item": tally.wall_s * cores / tally.items * 1e6,
            "cores_busy": {k: s / tally.wall_s for k, s in tally.busy.items()},
            "busy_us_per_item": per_item_us(tally, tally.busy),
            "idle_us_per_item_beside": per_item_us(tally, tally.idle_beside),
            "idle_us_per_item_ended_by": per_item_us(tally, tally.idle_ended_by),
            "waits_us_per_item": per_item_us(tally, tally.waits),
            "worker_stalls_us_per_item": per_item_us(tally, tally.stalls),
            "switches_in_per_item": {k: n / tally.items for k, n in tally.switches.items()},
            "migrations_per_item": {k: n / tally.items for k, n in tally.migrations.items()},
        }
    return out


def table(payload: dict[str, Any], top: int = 8) -> list[list[str]]:
    two, one = (payload[name] for name in payload["stacks"])
    rows = [["items/s", *(f"{payload['items_per_s'][n]:,.0f}" for n in payload["stacks"])]]
    rows.append(
        ["core time an item (cores x wall)", f"{two['core_us_per_item']:.0f}", f"{one['core_us_per_item']:.0f}"]
    )

    def section(title: str, key: str, limit: int) -> None:
        names = sorted(set(two[key]) | set(one[key]), key=lambda k: -(two[key].get(k, 0) + one[key].get(k, 0)))
        shown = names[:limit]
        for k in shown:
            rows.append([f"{title}: {k}", f"{two[key].get(k, 0):.1f}", f"{one[key].get(k, 0):.1f}"])
        rest = names[limit:]
        if rest:
            rows.append(
                [
                    f"{title}: the other {len(rest)}",
                    f"{sum(two[key].get(k, 0) for k in rest):.1f}",
                    f"{sum(one[key].get(k, 0) for k in rest):.1f}",
                ]
            )

    section("wall time", "wall_us_per_item_by_phase", 3)
    section("busy", "busy_us_per_item", len(PARTS))
    rows.append(
        [
            "idle, all",
            f"{sum(two['idle_us_per_item_beside'].values()):.1f}",
            f"{sum(one['idle_us_per_item_beside'].values()):.1f}",
        ]
    )
    section("idle while the other cores ran", "idle_us_per_item_beside", top)
    section("idle until", "idle_us_per_item_ended_by", top)
    section("a worker stalled (summed over workers), until", "worker_stalls_us_per_item", top)
    section("wait", "waits_us_per_item", top)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="scaling", choices=sorted(COMPARISONS), help="default: scaling")
    parser.add_argument("--size", type=int, default=8192, help="items a math batch (scaling; default 8,192)")
    parser.add_argument("--rounds", type=int, default=3, help="batches on each stack (default 3)")
    parser.add_argument("--report", default="bench_waits", help="report name in loadtests/results/")
    args = parser.parse_args()
    compared = COMPARISONS[args.workload]
    names = [name for name, _n, _env in compared]
    with contextlib.ExitStack() as running, tempfile.TemporaryDirectory(prefix="rljudge-waits-") as tmp:
        stacks = [running.enter_context(running_stack(workers=n, **env)) for _name, n, env in compared]
        # the Pebble math processes start with a stack's first chunk: warm up before taking part lists
        asyncio.run(take_turns(stacks, names, [math_items(64, offset=400)]))
        parts = {name: stack_parts(stack) for name, stack in zip(names, stacks, strict=True)}
        data = Path(tmp) / "perf.data"
        work = batches(args.workload, args.size, args.rounds)
        with Recorder(data) as recorder:
            windows, rates = asyncio.run(take_turns(stacks, names, work))
            # after the batches, so that processes started during them (a worker's first pool) count
            parts = {name: {**parts[name], **stack_parts(stack)} for name, stack in zip(names, stacks, strict=True)}
            workers = {pid: worker for stack in stacks for pid, worker in stack_workers(stack).items()}
        recorded = list(events(data))
        tgid = {tid: pid for _t, _cpu, tid, pid, _name, _rest in recorded}
        sweep = Attribution(
            phases(windows, recorded, parts, tgid),
            names,
            parts,
            workers,
            tgid,
            client=psutil.Process().pid,
            perf=recorder.pid,
        )
        for event in recorded:
            sweep.feed(*event)
    payload = report(sweep.tally, rates, args.workload, args.size, args.rounds)
    write_report(args.report, payload, table(payload), ["µs an item (core time)", *names])


if __name__ == "__main__":
    main()
