"""deploy/grafana-dashboard.json uses exactly the metrics the README documents and the gateway serves."""

from __future__ import annotations

import json
import re

from rljudge_service import keys, metrics

from .test_manifests import ROOT

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"


def documented_metrics() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(rljudge_[a-z_]+)`", section, re.MULTILINE))


def served_metrics() -> set[str]:
    """Metric families in a real /metrics rendering with fleet numbers for every kind."""
    stats = {keys.stat_items("math", "scored", "correct").encode(): b"3", keys.stat_cache_hits("math").encode(): b"1"}
    for histogram in ("judge", "wait"):
        for field, amount in keys.stat_time(histogram, "code", 0.2):
            stats[field.encode()] = str(amount).encode()
    snapshot = metrics.FleetSnapshot({q: 0 for q in keys.QUEUES}, {"busy": 1, "idle": 0}, stats)
    text = metrics.render(snapshot).decode()
    return set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def base_name(series: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", series)


def test_dashboard_metrics_are_documented_and_served() -> None:
    used = {base_name(m) for expr in expressions() for m in re.findall(r"\brljudge_[a-z_]+", expr)}
    documented = documented_metrics()
    served = served_metrics()
    # prometheus-client's TYPE line names a counter without its _total suffix.
    served_names = {name if name in documented else f"{name}_total" for name in served}
    assert used <= documented, used - documented
    assert documented <= served_names, documented - served_names
    assert used == documented, f"documented but not on the dashboard: {documented - used}"


def test_fleet_series_are_not_summed_over_gateway_replicas() -> None:
    """Every gateway renders the same fleet numbers: summing over pods would multiply them."""
    fleet = ("rljudge_queue_depth", "rljudge_workers", "rljudge_judged_items_total", "rljudge_cache_hits_total")
    fleet += ("rljudge_judge_seconds", "rljudge_queue_wait_seconds")
    for expr in expressions():
        for name in fleet:
            for match in re.finditer(rf"\b{name}\w*", expr):
                before = expr[: match.start()]
                innermost = re.findall(r"\b(sum|max|min|avg)\s+by\s*\([^)]*\)\s*\((?:rate\()?$", before)
                assert innermost == ["max"] or before.rstrip().endswith("max by (le, kind) (rate("), expr


def test_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
