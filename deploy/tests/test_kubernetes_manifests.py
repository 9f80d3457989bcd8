"""The Kubernetes manifests (deploy/k8s), checked without a cluster.

Every overlay renders with kustomize; every rendered core resource validates against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict); every custom resource validates against
its CRD: Strimzi's (io.strimzi:api tests jar, Maven Central), KEDA's and the Gateway API's (their
Go modules, the Go module proxy), all cached under ~/.cache/huddle/k8s-schemas. Then the rules of
deploy/k8s/README.md are checked on what was rendered: hardened pods, distinct probes, topics and
ACLs that match the contract registry (huddle_contracts.topics), one autoscaler per Deployment
bounded by partitions, a PodDisruptionBudget, ServiceAccount and NetworkPolicy per Deployment, and
images by digest in production.

kustomize comes from `make k8s-tools` (which `make test` runs first). Without it these tests skip,
except in CI (CI set) or under make (MAKELEVEL set), where they fail with the install hint.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from huddle_contracts.topics import (
    SERVICES,
    TOPICS,
    Topic,
    consumed_by,
    published_by,
    topic_configs,
)
from huddle_runtime import health
from huddle_runtime.service import ServiceDefinition

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
RENDERED = ("base", "overlays/local", "overlays/production")
# The oldest Kubernetes the manifests support, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
# Strimzi's generated v1 CRDs: the io.strimzi:api tests jar carries them up to 0.51.0 (1.x jars no
# longer do); kafka.strimzi.io/v1 is the API that Strimzi 1.x serves.
STRIMZI_ARTIFACT = "io.strimzi:api:0.51.0:jar:tests"
# Its SHA-256, taken once from the jar Maven Central served (whose .sha1 Maven checked).
STRIMZI_JAR_SHA256 = "b99f69303dc507ca505b74345d93f5260621bb084b8b79447f726e54b6e66a1d"
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.21.0"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api@v1.6.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

CLUSTER = "huddle"
CORE_API_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "autoscaling"}
PORTS = {"intake": 8001, "matching": 8002, "sessions": 8003, "training": 8004, "analytics": 8005}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Secrets the operators of a cluster create (deploy/k8s/README.md, "Secrets"); the others that pods
# reference are written by Strimzi (KafkaUser passwords, the cluster CA).
OPERATOR_SECRETS = {
    "huddle-pseudonym-key",
    "intake-keys",
    "huddle-tls",
    *(f"{service}-database" for service in SERVICES),
}

Resource = dict[str, Any]


# ----------------------------------------------------------------------------- tools and caches


def cache_dir() -> Path:
    env = os.environ.get("HUDDLE_CACHE_DIR")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "huddle"
    return root / "k8s-schemas"


def find_kustomize() -> str | None:
    """$KUSTOMIZE, the one `make k8s-tools` installs, or one on PATH, if it is v5."""
    candidates = [os.environ.get("KUSTOMIZE"), str(REPO / ".tools" / "bin" / "kustomize")]
    candidates.append(shutil.which("kustomize"))
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        out = subprocess.run(
            [candidate, "version"], capture_output=True, text=True, check=False, timeout=30
        )
        if out.returncode == 0 and out.stdout.strip().startswith("v5."):
            return candidate
    return None


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return proc.stdout


def _fill_once(dest: Path, fill: Any, stamp: str = "ok\n") -> Path:
    """Run ``fill(scratch_dir)`` once and move the result to ``dest`` (atomic for readers).
    ``stamp`` marks a complete fill; a cache with another stamp (an older pin) is filled again."""
    complete = dest / ".complete"
    if complete.is_file() and complete.read_text() == stamp:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        fill(scratch)
        (scratch / ".complete").write_text(stamp)
        shutil.rmtree(dest, ignore_errors=True)
        scratch.rename(dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


def strimzi_crds() -> Path:
    """Strimzi's v1 CRDs, from the io.strimzi:api tests jar on Maven Central (with Maven)."""

    def fill(scratch: Path) -> None:
        mvn = os.environ.get("MVN") or shutil.which("mvn")
        if not mvn:
            pytest.fail("Maven (mvn) is needed to fetch Strimzi's CRDs from Maven Central")
        jars = scratch / "jars"
        _run(
            [
                mvn,
                "-q",
                "-B",
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={STRIMZI_ARTIFACT}",
                f"-DoutputDirectory={jars}",
            ],
            cwd=scratch,
        )
        (jar,) = jars.glob("*.jar")
        digest = hashlib.sha256(jar.read_bytes()).hexdigest()
        assert digest == STRIMZI_JAR_SHA256, f"{STRIMZI_ARTIFACT}: unexpected jar ({digest})"
        with zipfile.ZipFile(jar) as archive:
            for name in archive.namelist():
                if name.startswith("crds/v1/") and name.endswith(".yaml"):
                    (scratch / Path(name).name).write_bytes(archive.read(name))
        shutil.rmtree(jars)

    version = STRIMZI_ARTIFACT.split(":")[2]
    return _fill_once(cache_dir() / f"strimzi-{version}", fill, f"sha256:{STRIMZI_JAR_SHA256}\n")


def go_module_files(module: str, prefixes: tuple[str, ...]) -> Path:
    """Files under ``prefixes`` of a Go module's zip, fetched with `go mod download`."""

    def fill(scratch: Path) -> None:
        go = shutil.which("go")
        if not go:
            pytest.fail(f"Go is needed to fetch {module} from the Go module proxy")
        # A module cache of its own, writable so that it can be removed once the files are out.
        modcache = scratch / ".gomod"
        env = {**os.environ, "GOMODCACHE": str(modcache), "GOFLAGS": "-modcacherw"}
        info = json.loads(_run([go, "mod", "download", "-json", module], cwd=scratch, env=env))
        root = f"{info['Path']}@{info['Version']}/"
        with zipfile.ZipFile(info["Zip"]) as archive:
            for name in archive.namelist():
                inner = name.removeprefix(root)
                if inner.startswith(prefixes):
                    target = scratch / inner
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
        shutil.rmtree(modcache)

    return _fill_once(cache_dir() / module.replace("/", "_").replace("@", "-"), fill)


# ----------------------------------------------------------------------------- schemas


def structural_to_jsonschema(schema: Any) -> Any:
    """A CRD's structural OpenAPI v3 schema as JSON Schema, strict like the API server's field
    validation: unknown fields are errors unless the schema preserves them. CEL rules
    (x-kubernetes-validations) are not evaluated."""
    if isinstance(schema, list):
        return [structural_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: structural_to_jsonschema(value) for key, value in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_validators(*folders: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator, for every served version of the CRDs in ``folders``."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    if not version.get("served"):
                        continue
                    api_version = f"{spec['group']}/{version['name']}"
                    schema = structural_to_jsonschema(version["schema"]["openAPIV3Schema"])
                    validators[(api_version, spec["names"]["kind"])] = jsonschema.Draft7Validator(
                        schema
                    )
    return validators


def keda_kafka_parameters(source: str) -> dict[str, dict[str, Any]]:
    """The kafka scaler's parameters from its `keda:"..."` struct tags: name -> order, enum,
    required. Its trigger metadata is a free map in the CRD, so this is what checks it."""
    params: dict[str, dict[str, Any]] = {}
    for tag in re.findall(r'keda:"([^"]*)"', source):
        fields = dict(part.split("=", 1) if "=" in part else (part, "") for part in tag.split(","))
        for name in fields.get("name", "").split(";"):
            if name:
                params[name] = {
                    "order": set(fields.get("order", "").split(";")),
                    "enum": set(fields["enum"].split(";")) if "enum" in fields else None,
                    "required": "optional" not in fields and "default" not in fields,
                }
    return params


# ----------------------------------------------------------------------------- fixtures


KUSTOMIZE_HINT = (
    "kustomize v5 is not installed: run `make k8s-tools` (it builds kustomize from the Go "
    "module proxy into .tools/bin/kustomize); `make test` and `make lint` do it first"
)


def must_not_skip() -> bool:
    """In CI, or under make (which runs k8s-tools first), a missing kustomize is an error."""
    return bool(os.environ.get("CI")) or "MAKELEVEL" in os.environ


@pytest.fixture(scope="module")
def kustomize() -> str:
    found = find_kustomize()
    if found is None:
        if must_not_skip():
            pytest.fail(KUSTOMIZE_HINT)
        pytest.skip(KUSTOMIZE_HINT)
    return found


@pytest.fixture(scope="module")
def rendered(kustomize: str) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for target in RENDERED:
        text = _run([kustomize, "build", str(K8S / target)], cwd=REPO)
        out[target] = [doc for doc in yaml.safe_load_all(text) if doc]
    return out


@pytest.fixture(scope="module")
def production(rendered: dict[str, list[Resource]]) -> list[Resource]:
    return rendered["overlays/production"]


@pytest.fixture(scope="module")
def local(rendered: dict[str, list[Resource]]) -> list[Resource]:
    return rendered["overlays/local"]


@pytest.fixture(scope="module")
def keda_source() -> Path:
    return go_module_files(KEDA_MODULE, ("config/crd/bases/", "pkg/scalers/kafka_scaler.go"))


@pytest.fixture(scope="module")
def validators(keda_source: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    gateway = go_module_files(GATEWAY_API_MODULE, ("config/crd/standard/",))
    return crd_validators(strimzi_crds(), keda_source / "config", gateway)


# ----------------------------------------------------------------------------- helpers


def of_kind(docs: list[Resource], kind: str) -> list[Resource]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Resource], kind: str, name: str) -> Resource:
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def api_group(doc: Resource) -> str:
    api_version: str = doc["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def pod_templates(docs: list[Resource]) -> Iterator[tuple[Resource, Resource]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield doc, doc["spec"]["template"]


def configmap_value(docs: list[Resource], container: Resource, key: str) -> str | None:
    """A container's environment variable as the pod would see it (env over envFrom)."""
    for env in container.get("env", []):
        if env["name"] == key and "value" in env:
            return str(env["value"])
    value = None
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            data = named(docs, "ConfigMap", ref["name"]).get("data", {})
            value = data.get(key, value)
    return value


def secret_ref(container: Resource, key: str) -> dict[str, Any] | None:
    for env in container.get("env", []):
        if env["name"] == key:
            ref: dict[str, Any] | None = env.get("valueFrom", {}).get("secretKeyRef")
            return ref
    return None


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a set of labels."""
    if not selector:
        return True
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def acl_map(user: Resource) -> dict[tuple[str, str, str], set[str]]:
    """(resource type, name, pattern) -> operations allowed, over all of a user's rules."""
    rules: dict[tuple[str, str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow", acl
        assert acl.get("host", "*") == "*", acl
        res = acl["resource"]
        key = (res["type"], res.get("name", ""), res.get("patternType", "literal"))
        rules.setdefault(key, set()).update(acl["operations"])
    return rules


def expected_service_acls(service: str) -> dict[tuple[str, str, str], set[str]]:
    rules: dict[tuple[str, str, str], set[str]] = {}
    for topic in published_by(service):
        rules.setdefault(("topic", topic.name, "literal"), set()).update({"Write", "Describe"})
    for topic in consumed_by(service):
        rules.setdefault(("topic", topic.name, "literal"), set()).update({"Read", "Describe"})
        rules.setdefault(("topic", topic.dead_letter, "literal"), set()).update(
            {"Write", "Describe"}
        )
    rules[("group", f"huddle.{service}", "literal")] = {"Read", "Describe"}
    return rules


def autoscalers(docs: list[Resource]) -> dict[str, list[Resource]]:
    """Deployment name -> the HPAs and ScaledObjects that scale it."""
    targets: dict[str, list[Resource]] = {}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        targets.setdefault(ref["name"], []).append(hpa)
    for scaled in of_kind(docs, "ScaledObject"):
        ref = scaled["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment"
        targets.setdefault(ref["name"], []).append(scaled)
    return targets


def partitions(docs: list[Resource]) -> dict[str, int]:
    return {t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic")}


def service_definition(service: str) -> ServiceDefinition:
    found: ServiceDefinition = importlib.import_module(f"huddle_{service}.service").DEFINITION
    return found


def build(kustomize: str, kustomization: str, where: Path) -> list[Resource]:
    """Render an ad-hoc kustomization (written to ``where``) that points into deploy/k8s."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "kustomization.yaml").write_text(kustomization)
    text = _run([kustomize, "build", str(where)], cwd=REPO)
    return [doc for doc in yaml.safe_load_all(text) if doc]


# ----------------------------------------------------------------------------- rendering and schemas


@pytest.mark.parametrize("target", RENDERED)
def test_renders_without_duplicates_and_with_valid_names(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    assert docs, f"{target} rendered nothing"
    keys = Counter((d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs)
    assert not [k for k, n in keys.items() if n > 1], "duplicate resources"
    for doc in docs:
        name = doc["metadata"]["name"]
        assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), f"{doc['kind']} {name!r}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "huddle", f"{doc['kind']} {name}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", RENDERED)
def test_core_resources_validate_against_the_kubernetes_schemas(
    rendered: dict[str, list[Resource]], target: str, version: str
) -> None:
    errors = []
    for doc in rendered[target]:
        if api_group(doc) not in CORE_API_GROUPS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", RENDERED)
def test_custom_resources_validate_against_their_crds(
    rendered: dict[str, list[Resource]],
    target: str,
    validators: dict[tuple[str, str], jsonschema.protocols.Validator],
) -> None:
    errors = []
    for doc in rendered[target]:
        if api_group(doc) in CORE_API_GROUPS:
            continue
        validator = validators.get((doc["apiVersion"], doc["kind"]))
        if validator is None:
            errors.append(f"no CRD serves {doc['apiVersion']} {doc['kind']}")
            continue
        for error in validator.iter_errors(doc):
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {error.message}")
    assert not errors, "\n".join(errors)


def test_keda_kafka_triggers_use_parameters_the_scaler_knows(
    production: list[Resource], keda_source: Path
) -> None:
    params = keda_kafka_parameters((keda_source / "pkg/scalers/kafka_scaler.go").read_text())
    assert {"bootstrapServers", "consumerGroup", "lagThreshold", "sasl", "tls"} <= set(params)
    auths = {a["metadata"]["name"]: a for a in of_kind(production, "TriggerAuthentication")}
    for scaled in of_kind(production, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            auth = auths[trigger["authenticationRef"]["name"]]["spec"]
            auth_params = {
                ref["parameter"]
                for section in ("secretTargetRef", "configMapTargetRef")
                for ref in auth.get(section, [])
            }
            for key, value in trigger["metadata"].items():
                assert key in params and "triggerMetadata" in params[key]["order"], key
                enum = params[key]["enum"]
                assert enum is None or value in enum, f"{key}={value} not in {enum}"
            for key in auth_params:
                assert key in params and "authParams" in params[key]["order"], key
            missing = [
                name
                for name, p in params.items()
                if p["required"] and name not in trigger["metadata"] and name not in auth_params
            ]
            assert not missing, f"{scaled['metadata']['name']}: required {missing}"
            # SCRAM over TLS needs all of these from the TriggerAuthentication.
            assert {"username", "password", "ca"} <= auth_params


# ----------------------------------------------------------------------------- pods


@pytest.mark.parametrize("target", RENDERED)
def test_every_container_is_non_root_with_dropped_capabilities_and_resources(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    for workload, template in pod_templates(rendered[target]):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = template["spec"]
        pod_sc = pod.get("securityContext", {})
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        assert pod.get("automountServiceAccountToken") is False, where
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container.get("securityContext", {})
            merged = {**pod_sc, **sc}
            assert merged.get("runAsNonRoot") is True, where
            uid = merged.get("runAsUser")
            assert isinstance(uid, int) and uid > 0, f"{where}: numeric non-root runAsUser"
            seccomp = merged.get("seccompProfile", {}).get("type")
            assert seccomp == "RuntimeDefault", where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert not sc.get("privileged"), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("readOnlyRootFilesystem") is True, where
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{where} {section}"
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"
            volume = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
            assert "emptyDir" in volume, f"{where}: /tmp must be an emptyDir"


@pytest.mark.parametrize("target", RENDERED)
def test_services_have_distinct_liveness_and_readiness_probes(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    for deployment in of_kind(rendered[target], "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        live = container["livenessProbe"]["httpGet"]["path"]
        ready = container["readinessProbe"]["httpGet"]["path"]
        assert (live, ready) == ("/livez", "/readyz")
        assert container.get("startupProbe"), deployment["metadata"]["name"]


@pytest.mark.parametrize("target", RENDERED)
def test_readiness_probe_waits_for_the_slowest_readyz(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    # /readyz checks the database, then the producer's metadata, each up to health.check's limit.
    limit = inspect.signature(health.check).parameters["limit"].default
    for deployment in of_kind(rendered[target], "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        timeout = container["readinessProbe"].get("timeoutSeconds", 1)
        assert timeout >= 2 * limit + 1, f"{deployment['metadata']['name']}: {timeout}s"


@pytest.mark.parametrize("target", RENDERED)
def test_grace_period_outlasts_the_whole_shutdown_chain(
    rendered: dict[str, list[Resource]],
    target: str,
    shutdown_chain: Callable[[str, float | None], float],
) -> None:
    docs = rendered[target]
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        grace = configmap_value(docs, container, "HUDDLE_DELIVERY_SHUTDOWN_GRACE_SECONDS")
        needed = shutdown_chain(name, float(grace) if grace else None)
        # The preStop pause comes first, inside the same grace period.
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})
        needed += pre_stop.get("seconds", 0)
        period = spec["terminationGracePeriodSeconds"]
        assert period >= needed, f"{name}: {period}s for a shutdown of up to {needed}s"


@pytest.mark.parametrize("target", RENDERED)
def test_every_deployment_migrates_in_an_init_container_before_serving(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    """The schema is ready before a pod serves, whatever applies the manifests (kubectl apply
    creates the Jobs and the Deployments together)."""
    docs = rendered[target]
    for service in SERVICES:
        deployment = named(docs, "Deployment", service)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        inits = pod.get("initContainers", [])
        assert [c["name"] for c in inits] == ["migrate"], f"{service}: {inits}"
        (init,) = inits
        # A plain init container (not a sidecar): it exits before the server starts.
        assert "restartPolicy" not in init, f"{service}: a sidecar runs beside the server"
        assert init["image"] == container["image"]
        assert init["command"] == container["command"] == ["python", "-m", f"huddle_{service}"]
        assert init["args"] == ["migrate"]
        # The migration Job's login, environment and limits.
        job = named(docs, "Job", f"{service}-migrate")
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert secret_ref(init, "DATABASE_URL") == secret_ref(migrate, "DATABASE_URL")
        assert (secret_ref(init, "DATABASE_URL") or {}).get("key") == "migrate-url"
        assert init["envFrom"] == migrate["envFrom"]
        assert init["env"] == migrate["env"]
        assert init["resources"] == migrate["resources"]
        assert init["securityContext"] == migrate["securityContext"]
        assert secret_ref(init, "HUDDLE_KAFKA_SASL_PASSWORD") is None
        assert configmap_value(docs, init, "HUDDLE_KAFKA_SECURITY_PROTOCOL") == "PLAINTEXT"
        # Argo CD: the Job is a Sync hook in a wave before the Deployment's (a PreSync hook would
        # run before the ConfigMaps of the same sync exist).
        job_notes = job["metadata"]["annotations"]
        deployment_notes = deployment["metadata"]["annotations"]
        assert job_notes["argocd.argoproj.io/hook"] == "Sync"
        assert job_notes["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        job_wave = int(job_notes["argocd.argoproj.io/sync-wave"])
        assert 0 < job_wave < int(deployment_notes["argocd.argoproj.io/sync-wave"]), service


@pytest.mark.parametrize("target", RENDERED)
def test_each_service_has_its_deployment_migration_job_and_companions(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == set(SERVICES)
    for service in SERVICES:
        deployment = named(docs, "Deployment", service)
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        (container,) = template["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"huddle_{service}"]
        assert container["args"] == ["serve"]
        assert container["ports"][0]["containerPort"] == PORTS[service]
        assert configmap_value(docs, container, "HUDDLE_HTTP_PORT") == str(PORTS[service])
        assert configmap_value(docs, container, "HUDDLE_HTTP_HOST") == "0.0.0.0"
        # ServiceAccount, Service, PodDisruptionBudget.
        account = named(docs, "ServiceAccount", template["spec"]["serviceAccountName"])
        assert account.get("automountServiceAccountToken") is False
        svc = named(docs, "Service", service)
        assert selects({"matchLabels": svc["spec"]["selector"]}, labels)
        assert svc["spec"]["ports"][0]["port"] == PORTS[service]
        pdbs = [
            p
            for p in of_kind(docs, "PodDisruptionBudget")
            if selects(p["spec"]["selector"], labels)
        ]
        assert len(pdbs) == 1, f"{service}: {len(pdbs)} PodDisruptionBudgets"
        assert pdbs[0]["spec"].get("maxUnavailable", 0) >= 1 or "minAvailable" in pdbs[0]["spec"]
        # A NetworkPolicy of its own (besides the namespace-wide ones) selects its pods.
        own = [
            p
            for p in of_kind(docs, "NetworkPolicy")
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)
        ]
        assert own, f"{service}: no NetworkPolicy selects it"
        # The migration Job: same image, `migrate`, the schema owner's login, no Kafka secret.
        job = named(docs, "Job", f"{service}-migrate")
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert migrate["image"] == container["image"]
        assert migrate["command"] == container["command"] and migrate["args"] == ["migrate"]
        serve_db = secret_ref(container, "DATABASE_URL")
        migrate_db = secret_ref(migrate, "DATABASE_URL")
        assert serve_db and migrate_db and serve_db["name"] == migrate_db["name"]
        # The overlay's secretGenerator (local) appends a content hash to the name.
        assert re.fullmatch(rf"{service}-database(-[a-z0-9]{{10}})?", serve_db["name"])
        assert (serve_db["key"], migrate_db["key"]) == ("url", "migrate-url")
        assert secret_ref(migrate, "HUDDLE_KAFKA_SASL_PASSWORD") is None
        assert configmap_value(docs, migrate, "HUDDLE_KAFKA_SECURITY_PROTOCOL") == "PLAINTEXT"


# ----------------------------------------------------------------------------- network


@pytest.mark.parametrize("target", RENDERED)
def test_network_is_denied_by_default_then_opened_per_need(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    policies = of_kind(docs, "NetworkPolicy")
    deny = named(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    dns = named(docs, "NetworkPolicy", "allow-dns")["spec"]
    assert dns["podSelector"] == {}
    assert {(p["protocol"], p["port"]) for p in dns["egress"][0]["ports"]} == {
        ("UDP", 53),
        ("TCP", 53),
    }
    for service in SERVICES:
        labels = named(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        mine = [
            p["spec"]
            for p in policies
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)
        ]
        egress = [rule for spec in mine for rule in spec.get("egress", [])]
        ingress = [rule for spec in mine for rule in spec.get("ingress", [])]

        def ports(rules: list[Resource]) -> set[int]:
            return {p["port"] for r in rules for p in r.get("ports", [])}

        kafka = [r for r in egress if any("podSelector" in t for t in r.get("to", []))]
        broker = {
            "strimzi.io/cluster": CLUSTER,
            "strimzi.io/kind": "Kafka",
            "strimzi.io/broker-role": "true",
        }
        assert any(
            selects(t["podSelector"], broker) for r in kafka for t in r["to"]
        ) and 9093 in ports(kafka), f"{service}: Kafka"
        assert 5432 in ports(egress), f"{service}: PostgreSQL"
        assert {4317, 4318} <= ports(egress), f"{service}: OTLP"
        gateway = [
            r
            for r in ingress
            if any(
                t.get("namespaceSelector", {})
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                == "envoy-gateway-system"
                for t in r.get("from", [])
            )
        ]
        assert ports(gateway) == {PORTS[service]}, f"{service}: gateway ingress"
        for rule in ingress:
            assert rule.get("from"), f"{service}: ingress from anywhere"


def test_kafka_listener_admits_only_the_services_and_keda(production: list[Resource]) -> None:
    kafka = named(production, "Kafka", CLUSTER)["spec"]["kafka"]
    internal = next(lst for lst in kafka["listeners"] if lst["name"] == "tls")
    assert internal["tls"] is True and internal["authentication"]["type"] == "scram-sha-512"
    peers = internal["networkPolicyPeers"]
    # Pods of this namespace: the five services and nothing else.
    pods = [p["podSelector"] for p in peers if "podSelector" in p and "namespaceSelector" not in p]
    for service in SERVICES:
        assert any(selects(s, {"app.kubernetes.io/name": service}) for s in pods), service
    assert not any(selects(s, {"app.kubernetes.io/name": "other"}) for s in pods)
    # Other namespaces: KEDA's only.
    others = [p for p in peers if "namespaceSelector" in p]
    assert others == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    ]
    for listener in kafka["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
    assert kafka["authorization"]["type"] == "simple"


# ----------------------------------------------------------------------------- Kafka


@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_every_registry_topic_and_dead_letter_topic_is_replicated(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    configs = topic_configs()
    assert set(topics) == set(configs), "KafkaTopics and huddle_contracts.topics differ"
    registry: dict[str, Topic] = {t.name: t for t in TOPICS}
    registry |= {t.dead_letter: t for t in TOPICS}
    for name, topic in topics.items():
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
        assert spec["replicas"] == 3, name
        assert int(spec["config"]["min.insync.replicas"]) == 2, name
        for key, value in configs[name].items():
            assert str(spec["config"][key]) == value, f"{name} {key}"
        if not name.endswith(".dlt"):
            # Never fewer partitions than the registry's (local) count.
            assert spec["partitions"] >= registry[name].partitions, name
        if name.startswith("huddle.inbound."):
            # Raw reports: deleted within an hour of their day, not a week (default segments).
            assert int(spec["config"]["segment.ms"]) <= 3_600_000, name
    cluster = named(docs, "Kafka", CLUSTER)["spec"]["kafka"]["config"]
    assert int(cluster["default.replication.factor"]) == 3
    assert int(cluster["min.insync.replicas"]) == 2
    assert int(cluster["offsets.topic.replication.factor"]) == 3
    assert cluster["unclean.leader.election.enable"] is False
    assert cluster["auto.create.topics.enable"] is False
    pools = of_kind(docs, "KafkaNodePool")
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) >= 3


def test_local_topics_fit_one_broker(local: list[Resource]) -> None:
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(local, "KafkaTopic")}
    assert set(topics) == set(topic_configs())
    assert all(
        s["replicas"] == 1 and int(s["config"]["min.insync.replicas"]) == 1 for s in topics.values()
    )


@pytest.mark.parametrize("target", RENDERED)
def test_each_service_kafka_user_has_exactly_the_acls_of_the_registry(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    for service in SERVICES:
        user = named(docs, "KafkaUser", f"huddle-{service}")
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert user["spec"]["authorization"]["type"] == "simple"
        assert acl_map(user) == expected_service_acls(service), service


@pytest.mark.parametrize("target", RENDERED)
def test_every_handler_topic_is_readable_by_its_service(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    """The topics the code subscribes to (its handlers, known before it starts) are all readable:
    a handler never meets TopicAuthorizationFailed. Handlers bound at start-up (bind_handlers)
    are not known here; the registry comparison above covers them."""
    docs = rendered[target]
    for service in SERVICES:
        spec = service_definition(service)
        subscribed = set(spec.topics_for(spec.handlers))
        if not spec.bind_handlers:
            assert subscribed, f"{service} consumes nothing?"
        readable = {
            name
            for (kind, name, pattern), ops in acl_map(
                named(docs, "KafkaUser", f"huddle-{service}")
            ).items()
            if kind == "topic" and pattern == "literal" and "Read" in ops
        }
        assert subscribed <= readable, f"{service} may not read {sorted(subscribed - readable)}"


@pytest.mark.parametrize("target", RENDERED)
def test_the_other_kafka_users_are_least_privilege(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    users = {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")}
    others = {"huddle-incident-systems", "huddle-analysts", "huddle-lag-reader"}
    assert users == {f"huddle-{s}" for s in SERVICES} | others
    inbound = next(t for t in TOPICS if "incident-systems" in t.publishers)
    anonymised = next(t for t in TOPICS if "analysts" in t.consumers)
    assert acl_map(named(docs, "KafkaUser", "huddle-incident-systems")) == {
        ("topic", inbound.name, "literal"): {"Write", "Describe"}
    }
    assert acl_map(named(docs, "KafkaUser", "huddle-analysts")) == {
        ("topic", anonymised.name, "literal"): {"Read", "Describe"},
        ("group", "huddle.analysts.", "prefix"): {"Read", "Describe"},
    }
    lag = acl_map(named(docs, "KafkaUser", "huddle-lag-reader"))
    assert all(ops == {"Describe"} for ops in lag.values())


@pytest.mark.parametrize("target", RENDERED)
def test_services_reach_kafka_as_their_own_user_over_sasl_ssl(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    for service in SERVICES:
        template = named(docs, "Deployment", service)["spec"]["template"]
        (container,) = template["spec"]["containers"]

        def env(key: str, c: Resource = container) -> str | None:
            return configmap_value(docs, c, key)

        assert env("HUDDLE_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL"
        assert env("HUDDLE_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512"
        assert env("HUDDLE_KAFKA_SASL_USERNAME") == f"huddle-{service}"
        assert env("HUDDLE_KAFKA_SSL_CHECK_HOSTNAME") == "true"
        assert secret_ref(container, "HUDDLE_KAFKA_SASL_PASSWORD") == {
            "name": f"huddle-{service}",
            "key": "password",
        }
        cafile = env("HUDDLE_KAFKA_SSL_CAFILE")
        assert cafile is not None
        mount = next(
            m for m in container["volumeMounts"] if cafile.startswith(m["mountPath"] + "/")
        )
        volume = next(v for v in template["spec"]["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == f"{CLUSTER}-cluster-ca-cert"
        bootstrap = env("KAFKA_BOOTSTRAP_SERVERS")
        assert bootstrap == f"{CLUSTER}-kafka-bootstrap:9093"


# ----------------------------------------------------------------------------- autoscaling


def test_one_autoscaler_per_deployment_bounded_by_partitions(production: list[Resource]) -> None:
    targets = autoscalers(production)
    sizes = partitions(production)
    assert set(targets) == set(SERVICES), "every Deployment has an autoscaler"
    for service, scalers in targets.items():
        assert len(scalers) == 1, f"{service} is scaled by {len(scalers)} autoscalers"
        (scaler,) = scalers
        consumed = {t.name for t in consumed_by(service)}
        bound = min(sizes[name] for name in consumed)
        spec = scaler["spec"]
        if service == "intake":
            assert scaler["kind"] == "HorizontalPodAutoscaler"
            assert scaler["apiVersion"] == "autoscaling/v2"
            (metric,) = spec["metrics"]
            assert metric["resource"]["name"] == "cpu"
            low, high = spec["minReplicas"], spec["maxReplicas"]
        else:
            assert scaler["kind"] == "ScaledObject"
            triggers = spec["triggers"]
            assert {t["metadata"]["consumerGroup"] for t in triggers} == {f"huddle.{service}"}
            assert {t["metadata"]["topic"] for t in triggers} == consumed
            assert all(int(t["metadata"]["lagThreshold"]) > 0 for t in triggers)
            low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
            assert spec["fallback"]["replicas"] <= high
        assert high <= bound, f"{service}: {high} replicas for {bound} partitions"
        assert low == 3, f"{service}: production keeps three replicas (one per zone)"


def test_local_has_one_replica_and_no_autoscaler(local: list[Resource]) -> None:
    assert not autoscalers(local)
    for deployment in of_kind(local, "Deployment"):
        assert deployment["spec"]["replicas"] == 1


# ----------------------------------------------------------------------------- production


def test_production_pulls_images_by_digest(production: list[Resource]) -> None:
    for workload, template in pod_templates(production):
        for container in template["spec"]["containers"]:
            assert DIGEST.search(container["image"]), (
                f"{workload['metadata']['name']}: {container['image']}"
            )


def test_production_spreads_replicas_over_zones(production: list[Resource]) -> None:
    for deployment in of_kind(production, "Deployment"):
        # Replicas belong to the autoscaler: an apply must not reset them.
        assert "replicas" not in deployment["spec"]
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        zone = next(c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone")
        assert zone["whenUnsatisfiable"] == "DoNotSchedule" and zone["maxSkew"] == 1
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(zone["labelSelector"], labels)
        assert "app.kubernetes.io/name" in zone["matchLabelKeys"]


def test_production_takes_every_secret_by_reference(production: list[Resource]) -> None:
    assert not of_kind(production, "Secret"), "production renders no Secret"
    strimzi = {u["metadata"]["name"] for u in of_kind(production, "KafkaUser")}
    strimzi.add(f"{CLUSTER}-cluster-ca-cert")
    referenced = set()
    for _, template in pod_templates(production):
        spec = template["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
    for gateway in of_kind(production, "Gateway"):
        for listener in gateway["spec"]["listeners"]:
            referenced |= {
                ref["name"] for ref in listener.get("tls", {}).get("certificateRefs", [])
            }
    assert referenced <= OPERATOR_SECRETS | strimzi, referenced - OPERATOR_SECRETS - strimzi
    auth = named(production, "Deployment", "intake")["spec"]["template"]["spec"]["containers"][0]
    assert configmap_value(production, auth, "HUDDLE_ENVIRONMENT") == "production"
    assert (configmap_value(production, auth, "HUDDLE_AUTH_JWKS_URL") or "").startswith("https://")


@pytest.mark.parametrize("target", RENDERED)
def test_traces_are_exported_only_where_a_collector_is_named(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    """The collector is optional: the base and both overlays export nothing."""
    docs = rendered[target]
    for service in SERVICES:
        (container,) = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"]
        assert not configmap_value(docs, container, "OTEL_EXPORTER_OTLP_ENDPOINT"), service


def test_the_tracing_component_points_at_the_collector_the_policies_allow(
    kustomize: str, tmp_path: Path
) -> None:
    where = tmp_path / "with-tracing"
    # kustomize takes relative paths only.
    production = os.path.relpath(K8S / "overlays" / "production", where)
    tracing = os.path.relpath(K8S / "components" / "tracing", where)
    docs = build(
        kustomize,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {production}\ncomponents:\n  - {tracing}\n",
        where,
    )
    for service in SERVICES:
        (container,) = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"]
        endpoint = configmap_value(docs, container, "OTEL_EXPORTER_OTLP_ENDPOINT")
        assert endpoint == "http://otel-collector.observability.svc:4318", service
        egress = named(docs, "NetworkPolicy", service)["spec"]["egress"]
        assert any(
            {p["port"] for p in rule.get("ports", [])} >= {4318}
            and any(
                peer.get("namespaceSelector", {})
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                == "observability"
                for peer in rule.get("to", [])
            )
            for rule in egress
        ), service


def test_local_postgres_is_the_one_compose_runs(local: list[Resource]) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    (container,) = named(local, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == compose["services"]["postgres"]["image"]


@pytest.mark.parametrize("target", RENDERED)
def test_one_https_host_routes_to_every_api(
    rendered: dict[str, list[Resource]], target: str
) -> None:
    docs = rendered[target]
    (gateway,) = of_kind(docs, "Gateway")
    (listener,) = gateway["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS" and listener["tls"]["mode"] == "Terminate"
    (route,) = of_kind(docs, "HTTPRoute")
    assert route["spec"]["hostnames"] == [listener["hostname"]]
    routed = {}
    for rule in route["spec"]["rules"]:
        (backend,) = rule["backendRefs"]
        (match,) = rule["matches"]
        prefix = match["path"]["value"]
        assert prefix.startswith(f"/{backend['name']}/")
        (rewrite,) = rule["filters"]
        assert rewrite["urlRewrite"]["path"]["replacePrefixMatch"] == prefix.removeprefix(
            f"/{backend['name']}"
        )
        routed[backend["name"]] = backend["port"]
    assert routed == PORTS
