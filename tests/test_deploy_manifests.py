"""Checks of the deployment files (Dockerfile, .dockerignore, deploy/compose.yaml, deploy/k8s).

No container engine or cluster runs in the tests, so these check what can be checked
without one: the files parse; the Kubernetes objects validate against the official
schemas (kubernetes-validate, offline); every reference resolves (COPY sources,
depends_on, volumes, Services → Deployment labels and container ports, PVCs, Secrets,
ConfigMaps and their keys); every PREFECT_* / MLFLOW_* variable is a setting the
installed Prefect / MLflow know; the URLs the worker is given point at a service, port
and database that exist, and the MLflow server accepts their Host header.

    pytest tests/test_deploy_manifests.py -q
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
SERVICES = {"postgres", "mlflow", "prefect-server", "prefect-worker"}
K8S_VERSION = "1.29"   # the oldest Kubernetes the manifests are meant for


# ------------------------------------------------------------------------ helpers

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue  # Docker drops comment lines, also inside a continued instruction
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def dockerignored(path: str) -> bool:
    """Whether .dockerignore excludes ``path`` (or a folder above it) from the context."""
    patterns = [p.strip().rstrip("/") for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    for pattern in patterns:
        bare = pattern[3:] if pattern.startswith("**/") else None
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern) or (
                    bare and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], bare)):
                return True
    return False


def interpolate(text: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR-default}`` with the defaults (no env)."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


def known_env(name: str) -> bool:
    """Whether the installed Prefect / MLflow read this variable (other names pass)."""
    if name.startswith("PREFECT_"):
        from prefect.settings import Settings
        from prefect.settings.legacy import _get_valid_setting_names

        return name in _get_valid_setting_names(Settings)
    if name.startswith("MLFLOW_"):
        import mlflow.cli
        import mlflow.environment_variables as mlflow_env

        server_env = {p.envvar for p in mlflow.cli.server.params if p.envvar}
        return name in server_env or isinstance(getattr(mlflow_env, name, None),
                                                mlflow_env._EnvironmentVariable)
    return True


def mlflow_accepts_host(allowed: str, host: str) -> bool:
    from mlflow.server.security_utils import is_allowed_host_header

    return is_allowed_host_header([h.strip() for h in allowed.split(",")], host)


# SQLAlchemy driver of each server's database URL: explicit, because SQLAlchemy 2.1
# made psycopg (3) the default for postgresql://, and the image ships psycopg2 for MLflow;
# the Prefect server uses asyncpg (a Prefect dependency)
DB_URLS = {"mlflow": ("MLFLOW_BACKEND_STORE_URI", "postgresql+psycopg2"),
           "prefect-server": ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg")}


def check_database_url(service: str, env: dict[str, str], postgres: dict[str, str],
                       host: tuple[str, int]) -> None:
    """The server's database URL names the postgres service, its user, password and a database it has."""
    from sqlalchemy.engine import make_url

    key, driver = DB_URLS[service]
    url = make_url(env[key])
    assert url.drivername == driver, key
    assert (url.host, url.port) == host, key
    assert (url.username, url.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"]), key
    assert url.database in {postgres["POSTGRES_DB"]} | created_databases(), key


def created_databases() -> set[str]:
    sql = (DEPLOY / "postgres" / "init.sql").read_text()
    return set(re.findall(r"CREATE DATABASE (\w+)", sql, flags=re.IGNORECASE))


def prefect_yaml_pools() -> set[str]:
    path = REPO / "prefect.yaml"
    if not path.exists():
        return set()
    deployments = yaml.safe_load(path.read_text()).get("deployments") or []
    return {d["work_pool"]["name"] for d in deployments if d.get("work_pool", {}).get("name")}


# --------------------------------------------------------------------- Dockerfile

def test_dockerfile_base_user_entrypoint():
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    entrypoint = [yaml.safe_load(args) for op, args in steps if op == "ENTRYPOINT"]
    assert entrypoint[-1] == ["redrobe"]
    assert "redrobe" in PYPROJECT["project"]["scripts"]


def test_dockerfile_copies_existing_files_the_context_keeps():
    copies = [shlex.split(args) for op, args in dockerfile_instructions() if op in ("COPY", "ADD")]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for source in sources:
            assert source == "." or list(REPO.glob(source)), f"COPY source {source} does not exist"
            if source != ".":
                assert not dockerignored(source), f"COPY source {source} is in .dockerignore"
    # what `COPY . .` must carry, and what it must not
    for needed in ("pyproject.toml", "requirements.lock", "dvc.yaml", "params.yaml",
                   "src/redrobe/cli.py", "flows/pipeline.py", "tasks/dvc.py", "profiles/tiny.yaml"):
        assert (REPO / needed).exists() and not dockerignored(needed), needed
    for excluded in (".git", ".venv", "data/raw", "data/interim/clean", "mlflow.db",
                     "mlartifacts", "src/redrobe/__pycache__/cli.cpython-311.pyc"):
        assert dockerignored(excluded), excluded


def test_dockerfile_installs_cpu_torch_first_then_the_locked_project():
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for op, a in dockerfile_instructions()
            if op == "ARG" and "=" in a}
    makefile_torch = re.search(r"^TORCH_CPU := torch==(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert makefile_torch and args["TORCH_VERSION"] == makefile_torch.group(1)
    runs = " ".join(a for op, a in dockerfile_instructions() if op == "RUN")
    torch_at = runs.index('"torch==$TORCH_VERSION"')
    locked_at = runs.index("-c requirements.lock")
    assert torch_at < locked_at and "--no-build-isolation" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs
    assert '"psycopg2-binary==$PSYCOPG2_VERSION"' in runs   # MLflow's driver (DB_URLS)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the image's python reads pyproject with tomllib")
def test_dockerfile_dependency_list_is_the_projects(tmp_path):
    run = next(a for op, a in dockerfile_instructions() if op == "RUN" and "tomllib" in a)
    code = shlex.split(run[run.index("python -c"):].split(">", 1)[0])[2]
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert [line for line in out if line] == PYPROJECT["project"]["dependencies"]


# ---------------------------------------------------------------- docker compose

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def test_compose_services_images_ports_and_health(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
            assert service["image"] == f"redrobe:{VERSION}", name
        for port in service.get("ports", []):
            host, container = str(port).split(":")
            assert host.isdigit() and container.isdigit(), (name, port)
    published = {name: {int(str(p).split(":")[1]) for p in s.get("ports", [])}
                 for name, s in services.items()}
    assert published["mlflow"] == {int(env_of(services["mlflow"])["MLFLOW_PORT"])}
    assert published["prefect-server"] == {int(env_of(services["prefect-server"])["PREFECT_SERVER_API_PORT"])}


def test_compose_depends_on_and_volumes_resolve(compose):
    services, declared = compose["services"], set(compose.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for other, condition in (depends.items() if isinstance(depends, dict) else
                                 ((d, {}) for d in depends)):
            assert other in services and other != name, (name, other)
            if condition.get("condition") == "service_healthy":
                assert services[other].get("healthcheck"), (name, other)
        for volume in service.get("volumes", []):
            source = interpolate(str(volume)).split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: bind source {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_compose_env_names_are_real_settings(compose):
    for name, service in compose["services"].items():
        for key in env_of(service):
            assert known_env(key), f"{name}: {key} is not a Prefect/MLflow setting"


def test_compose_urls_reach_the_services_and_databases(compose):
    services = compose["services"]
    for name in DB_URLS:
        check_database_url(name, env_of(services[name]), env_of(services["postgres"]), ("postgres", 5432))
    worker = env_of(services["prefect-worker"])
    tracking = urlsplit(worker["MLFLOW_TRACKING_URI"])
    assert tracking.hostname == "mlflow" and tracking.port == int(env_of(services["mlflow"])["MLFLOW_PORT"])
    assert mlflow_accepts_host(env_of(services["mlflow"])["MLFLOW_SERVER_ALLOWED_HOSTS"], tracking.netloc)
    api = urlsplit(worker["PREFECT_API_URL"])
    assert api.hostname == "prefect-server" and api.path == "/api"
    assert api.port == int(env_of(services["prefect-server"])["PREFECT_SERVER_API_PORT"])


def test_compose_worker_runs_the_checkout_on_the_deployments_pool(compose):
    worker = compose["services"]["prefect-worker"]
    mounts = dict(interpolate(str(v)).split(":")[1::-1] for v in worker["volumes"])
    assert (DEPLOY / mounts[worker["working_dir"]]).resolve() == REPO   # the checkout itself
    assert env_of(worker)["PYTHONPATH"].split(":")[0] == f"{worker['working_dir']}/src"
    command = [interpolate(str(a)) for a in worker["command"]]
    pool = command[command.index("--pool") + 1]
    assert command[command.index("--type") + 1] == "process"
    assert pool == k8s_objects_by_kind()["ConfigMap"]["redrobe-config"]["data"]["REDROBE_WORK_POOL"]
    assert prefect_yaml_pools() <= {pool}, "prefect.yaml deploys to another work pool"


# -------------------------------------------------------------------- Kubernetes

def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s_objects_by_kind() -> dict[str, dict[str, dict]]:
    objects: dict[str, dict[str, dict]] = {}
    for _, doc in k8s_documents():
        objects.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return objects


def containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_k8s_documents_validate_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for name, doc in k8s_documents():
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), name
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_deployments_and_services_match():
    objects = k8s_objects_by_kind()
    deployments = objects["Deployment"]
    assert set(deployments) == SERVICES
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        for container in containers(deployment):
            if container["image"].split(":")[0] == "redrobe":
                assert container["image"] == f"redrobe:{VERSION}", name
    for name, service in objects["Service"].items():
        selector = service["spec"]["selector"]
        targets = [d for d in deployments.values()
                   if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, f"Service {name} selects {len(targets)} Deployments"
        ports = [p for c in targets[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in (p["containerPort"], p.get("name")) for p in ports), (name, target)


def test_k8s_references_resolve():
    objects = k8s_objects_by_kind()
    data = {kind: {n: {**o.get("data", {}), **o.get("stringData", {})}
                   for n, o in objects.get(kind, {}).items()} for kind in ("ConfigMap", "Secret")}
    for name, deployment in objects["Deployment"].items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in objects["PersistentVolumeClaim"]
            if "configMap" in volume:
                assert volume["configMap"]["name"] in data["ConfigMap"]
            if "secret" in volume:
                assert volume["secret"]["secretName"] in data["Secret"]
        for container in containers(deployment):
            ports = {p.get("name") for p in container.get("ports", [])} | \
                    {p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert http["port"] in ports, (name, probe)
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (name, mount["name"])
            for source in container.get("envFrom", []):
                for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if ref in source:
                        assert source[ref]["name"] in data[kind], (name, source)
            defined = set(data["ConfigMap"].get("redrobe-config", {})) if container.get("envFrom") else set()
            for var in container.get("env", []):
                for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    key_ref = var.get("valueFrom", {}).get(ref)
                    if key_ref:
                        assert key_ref["key"] in data[kind].get(key_ref["name"], {}), (name, var)
                # $(VAR) expands only variables defined earlier in the same container
                for used in re.findall(r"\$\((\w+)\)", var.get("value", "")):
                    assert used in defined, f"{name}: {var['name']} uses $({used}) before it is set"
                defined.add(var["name"])


def resolved_env(deployment: dict, container_name: str) -> dict[str, str]:
    """A container's environment as the kubelet sets it (ConfigMaps, Secrets, $(VAR))."""
    objects = k8s_objects_by_kind()
    store = {kind: {n: {**o.get("data", {}), **o.get("stringData", {})}
                    for n, o in objects.get(kind, {}).items()} for kind in ("ConfigMap", "Secret")}
    container = next(c for c in containers(deployment) if c["name"] == container_name)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(store["ConfigMap"][source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], var["value"])
        else:
            ref = next(iter(var["valueFrom"].values()))
            kind = "Secret" if "secretKeyRef" in var["valueFrom"] else "ConfigMap"
            env[var["name"]] = store[kind][ref["name"]][ref["key"]]
    return env


def test_k8s_env_names_are_real_settings():
    for name, deployment in k8s_objects_by_kind()["Deployment"].items():
        for container in containers(deployment):
            for key in resolved_env(deployment, container["name"]):
                assert known_env(key), f"{name}: {key} is not a Prefect/MLflow setting"


def test_k8s_urls_reach_the_services_and_databases():
    objects = k8s_objects_by_kind()
    deployments, services = objects["Deployment"], objects["Service"]
    postgres = resolved_env(deployments["postgres"], "postgres")
    for name in DB_URLS:
        check_database_url(name, resolved_env(deployments[name], name), postgres,
                           ("postgres", services["postgres"]["spec"]["ports"][0]["port"]))
    worker = resolved_env(deployments["prefect-worker"], "prefect-worker")
    allowed = resolved_env(deployments["mlflow"], "mlflow")["MLFLOW_SERVER_ALLOWED_HOSTS"]
    for key, service in (("MLFLOW_TRACKING_URI", "mlflow"), ("PREFECT_API_URL", "prefect-server")):
        url = urlsplit(worker[key])
        assert url.hostname == service and url.port in {p["port"] for p in services[service]["spec"]["ports"]}
    tracking = urlsplit(worker["MLFLOW_TRACKING_URI"])
    for host in (tracking.netloc, f"mlflow.redrobe.svc.cluster.local:{tracking.port}"):
        assert mlflow_accepts_host(allowed, host), host
    assert not mlflow_accepts_host(allowed, "attacker.example:5000")


def test_postgres_init_script_is_the_same_in_compose_and_k8s():
    init = k8s_objects_by_kind()["ConfigMap"]["postgres-init"]["data"]
    assert list(init.values()) == [(DEPLOY / "postgres" / "init.sql").read_text()]
    assert created_databases() == {"prefect"}


def test_k8s_worker_runs_in_the_checkout_its_init_container_clones():
    worker = k8s_objects_by_kind()["Deployment"]["prefect-worker"]
    init, main = containers(worker)
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == main["workingDir"])
    assert mount in init["volumeMounts"]          # same volume, same subPath
    assert main["workingDir"] in init["command"][-1] and "git clone" in init["command"][-1]
    assert resolved_env(worker, main["name"])["PYTHONPATH"].split(":")[0] == f"{main['workingDir']}/src"
