"""The ``rljudge`` command: ``up`` starts and stops the whole stack cleanly; ``score`` scores a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from rljudge_cli.stack import free_port


def test_up_serves_and_stops_leaving_no_process(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rljudge_cli.main", "up", "--port", str(port), "--workers", "2", "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith("rljudge demo"):
            break
    table = [process.stdout.readline() for _ in range(10)]
    descendants = psutil.Process(process.pid).children(recursive=True)
    names = " ".join(" ".join(p.cmdline()) for p in descendants)
    assert f"http://127.0.0.1:{port}" in "".join(lines)
    assert "redis-server" in names and "gateway" in names and "worker" in names
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    assert any("correct" in row and row.split()[-2] == "1" for row in table)
    assert any("no_answer" in row for row in table)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "rljudge: stopped" in process.stdout.read()
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]


def test_score_writes_one_result_per_line(judge_url: str, tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    items = [{"kind": "math", "response": f"\\boxed{{{i}}}", "gold": str(i if i % 2 else i + 1)} for i in range(25)]
    items.append({"kind": "math", "response": "missing gold"})
    source.write_text("".join(json.dumps(item) + "\n" for item in items))
    output = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rljudge_cli.main",
            "score",
            str(source),
            "-o",
            str(output),
            "--url",
            judge_url,
            "--batch-size",
            "10",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in results] == [str(i) for i in range(26)]
    assert [r.get("reward") for r in results[:25]] == [float(i % 2) for i in range(25)]
    assert results[25]["status"] == "rejected" and "gold" in results[25]["detail"]
    assert "scored=25" in done.stderr and "rejected=1" in done.stderr
