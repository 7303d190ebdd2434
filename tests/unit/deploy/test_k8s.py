"""deploy/k8s/: validated against Kubernetes' own schemas, and the properties we rely on checked.

Built-in kinds go through kubernetes-validate (the API's OpenAPI schemas, strict: an unknown or
misspelt field fails). Custom resources (ServiceMonitor, KServe) have no bundled schema: they are
parsed and the fields tabserve depends on are checked, and the Pod parts they embed are
validated as a core Pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import tabserve
from tabserve.serving.server import GRACEFUL_SHUTDOWN_S

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
K8S_VERSION = kubernetes_validate.latest_version()
CUSTOM = {"ServiceMonitor", "ServingRuntime", "InferenceService", "Kustomization"}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((str(path.relative_to(K8S)), doc))
    return docs


DOCS = _documents()


def _one(kind: str, file: str | None = None) -> dict[str, Any]:
    found = [d for f, d in DOCS if d["kind"] == kind and (file is None or f == file)]
    assert len(found) == 1, f"{kind} in {file or 'deploy/k8s'}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize(
    "file,doc", [(f, d) for f, d in DOCS if d["kind"] not in CUSTOM],
    ids=lambda v: v if isinstance(v, str) else v["kind"],
)  # fmt: skip
def test_builtin_kinds_pass_strict_schema_validation(file: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelt_field_fails_validation() -> None:
    """The validator is strict for real: the test above would catch a typo."""
    deployment = _one("Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = _one("Kustomization")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def test_every_container_is_hardened() -> None:
    pod = _pod(_one("Deployment"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the images' user
    assert pod["automountServiceAccountToken"] is False
    for container in pod["initContainers"] + pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]


def test_writable_paths_are_volumes_and_the_spool_outlives_the_container() -> None:
    pod = _pod(_one("Deployment"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    server = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    # TABSERVE_HOME (the image's /home/tabserve) holds the prediction-log spool: an emptyDir,
    # which survives container restarts within the pod (docs/adr/0005, 0014).
    home = mounts["/home/tabserve"]
    assert "emptyDir" in volumes[home["name"]] and not home.get("readOnly")
    assert "/tmp" in mounts
    model = mounts["/mnt/models"]
    assert model.get("readOnly") is True
    assert server["args"][:2] == ["serve", "/mnt/models/model"]
    init = pod["initContainers"][0]
    assert init["args"][0] == "fetch" and init["args"][-1] == "/mnt/models/model"
    assert {m["name"] for m in init["volumeMounts"]} >= {model["name"]}


def test_grace_period_outlasts_prestop_and_the_drain() -> None:
    pod = _pod(_one("Deployment"))
    server = pod["containers"][0]
    command = server["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + GRACEFUL_SHUTDOWN_S


def test_probes_use_the_servers_endpoints_on_its_port() -> None:
    server = _pod(_one("Deployment"))["containers"][0]
    env = {e["name"]: e for e in server["env"]}
    port = {p["name"]: p["containerPort"] for p in server["ports"]}["http"]
    assert env["TABSERVE_PORT"]["value"] == str(port)
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"


def test_the_secret_the_deployment_references_is_defined() -> None:
    secret = _one("Secret")
    keys = set(secret["stringData"])
    pod = _pod(_one("Deployment"))
    for container in pod["initContainers"] + pod["containers"]:
        for source in container.get("envFrom", []):
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys
    # The server gets the log's URL only; the registry's credentials stay in the init step.
    assert "envFrom" not in pod["containers"][0]


def test_selectors_agree() -> None:
    deployment = _one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one("Service")["spec"]["selector"].items() <= labels.items()
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for hpa in (d for _, d in DOCS if d["kind"] == "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] >= 2  # with the PDB, a drain never takes the last one


def test_hpa_on_cpu_and_the_in_flight_variant() -> None:
    cpu = _one("HorizontalPodAutoscaler", "hpa.yaml")["spec"]["metrics"][0]
    assert cpu["resource"]["name"] == "cpu"
    in_flight = _one("HorizontalPodAutoscaler", "variants/hpa-in-flight.yaml")["spec"]["metrics"]
    assert in_flight[0]["type"] == "Pods"
    assert in_flight[0]["pods"]["metric"]["name"] == "tabserve_in_flight_requests"


def test_images_are_pinned_to_the_package_version() -> None:
    pod = _pod(_one("Deployment"))
    runtime = _one("ServingRuntime")["spec"]
    images = [c["image"] for c in pod["initContainers"] + pod["containers"] + runtime["containers"]]
    for image in images:
        _, tag = image.rsplit(":", 1)
        assert tag == tabserve.__version__, image
    assert {i.rsplit(":", 1)[0] for i in images} == {"tabserve", "tabserve-train"}


def test_service_monitor_scrapes_the_service() -> None:
    monitor = _one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = _one("Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"


def test_kserve_runtime_and_inference_service() -> None:
    runtime = _one("ServingRuntime")
    isvc = _one("InferenceService")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    spec = runtime["spec"]
    assert "v2" in spec["protocolVersions"]
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] in {f["name"] for f in spec["supportedModelFormats"]}
    assert model["storageUri"].startswith(("s3://", "pvc://", "gs://"))
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # the name KServe expects
    # The storage initializer writes /mnt/models: the runtime serves exactly that directory.
    assert container["args"] == ["serve", "/mnt/models"]
    env = {e["name"]: e["value"] for e in container["env"]}
    (port,) = container["ports"]
    assert env["TABSERVE_PORT"] == str(port["containerPort"]) == "8080"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert spec["annotations"]["prometheus.kserve.io/port"] == str(port["containerPort"])
    # The Pod parts KServe copies into its pods, validated as a core Pod.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kserve-runtime-check"},
           "spec": {"containers": spec["containers"], "volumes": spec["volumes"]}}  # fmt: skip
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
