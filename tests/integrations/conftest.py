"""Helpers for the framework-integration tests (all against the live stack of ``judge_url``)."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+-]+)$")


def metric_total(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` on the gateway's /metrics whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match["labels"]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total
