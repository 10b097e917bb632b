"""Checks of the deployment files (Dockerfile, .dockerignore, deploy/compose.yaml, deploy/k8s).

No container engine or cluster runs in the tests, so these check what can be checked
without one: the files parse; the Kubernetes objects validate against the official
schemas (kubernetes-validate, offline); every reference resolves (COPY sources,
depends_on, volumes, Services → Deployment labels and container ports, PVCs, Secrets,
ConfigMaps and their keys); every PREFECT_* / MLFLOW_* variable is a setting the
installed Prefect / MLflow know; the URLs the worker is given point at a service, port
and database that exist, and the MLflow server accepts their Host header. And the
services are safe by default: nothing is published beyond loopback unless asked for,
there is no default password (every credential comes from what deploy/init-env writes,
which these tests run), both servers start with authentication on (`redrobe serve` is
asked what it would run), and the worker holds the credentials they check.

    pytest tests/test_deploy_manifests.py -q
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
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
INIT_ENV = DEPLOY / "init-env"
CREDENTIALS = {"POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
               "PREFECT_API_AUTH_STRING"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|AUTH_STRING|TOKEN")
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


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose (.env) and kustomize (secretGenerator envs) read them."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def run_init_env(path: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INIT_ENV), str(path)], capture_output=True,
                          text=True, timeout=60, **kwargs)


@functools.cache
def generated_credentials() -> dict[str, str]:
    """What deploy/init-env writes: the values deploy/.env and deploy/k8s/secrets.env hold."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env"
        assert run_init_env(path).returncode == 0
        return read_env_file(path)


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` against ``env`` (the
    generated credentials by default): a required variable left unset raises LookupError
    with compose's message, as ``docker compose`` stops with it."""
    values = generated_credentials() if env is None else env

    def value(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        if values.get(name):
            return values[name]
        if operator.endswith("?"):
            raise LookupError(f"{name}: {argument}")
        return argument

    return re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", value, text)


def published(port: object, env: Mapping[str, str] | None = None) -> tuple[str, int, int]:
    """(host address, host port, container port) of a compose ``ports`` entry."""
    parts = interpolate(str(port), env).rsplit(":", 2)
    assert len(parts) == 3, f"{port}: without an address docker publishes it on every interface"
    return parts[0].strip("[]"), int(parts[1]), int(parts[2])


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


def raw_env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def env_of(service: dict, credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    return {k: interpolate(v, credentials) for k, v in raw_env_of(service).items()}


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
    ports = {name: {published(p)[2] for p in s.get("ports", [])} for name, s in services.items()}
    assert ports["mlflow"] == {int(env_of(services["mlflow"])["MLFLOW_PORT"])}
    assert ports["prefect-server"] == {int(env_of(services["prefect-server"])["PREFECT_SERVER_API_PORT"])}


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


def test_compose_publishes_on_loopback_unless_told_otherwise(compose):
    from redrobe.serve import is_loopback

    ports = [p for service in compose["services"].values() for p in service.get("ports", [])]
    assert len(ports) == 2
    for port in ports:
        assert isinstance(port, str), f"{port}: use the short syntax, with its address"
        assert is_loopback(published(port)[0]), port
        # exposing them is a choice: one variable, set on purpose
        assert published(port, {"REDROBE_BIND_ADDRESS": "0.0.0.0"})[0] == "0.0.0.0"


def test_compose_has_no_default_credentials(compose):
    text = (DEPLOY / "compose.yaml").read_text()
    references = re.findall(r"\$\{(\w+)([^}]*)\}", text)
    assert {name for name, _ in references} >= CREDENTIALS
    for name, rest in references:
        if name in CREDENTIALS or SECRET_NAME.search(name):
            assert rest.startswith(":?"), f"${{{name}{rest}}}: a default, or empty allowed"
    for name, service in compose["services"].items():
        for key, raw in raw_env_of(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", raw), f"{name}: {key} is not from deploy/.env"
    # without deploy/.env compose stops, and says how to make it
    with pytest.raises(LookupError, match="deploy/init-env"):
        env_of(compose["services"]["postgres"], credentials={})


def set_env(monkeypatch, env: Mapping[str, str]) -> None:
    """The process environment of a container: its MLflow / Prefect settings only."""
    for key in list(os.environ):
        if key.startswith(("MLFLOW_", "PREFECT_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def check_servers_require_credentials(servers: Mapping[str, Mapping[str, str]], ini: str,
                                      auth_volumes: set[str], monkeypatch, tmp_path: Path) -> None:
    """What `redrobe serve` makes of each server's environment: both listen beyond loopback
    with authentication on, and the worker sends the credentials they check."""
    from mlflow.server.auth.config import read_auth_config
    from prefect.settings import Settings
    from sqlalchemy.engine import make_url

    from redrobe.serve import is_loopback, mlflow_command, prefect_command

    mlflow, prefect, worker = servers["mlflow"], servers["prefect-server"], servers["prefect-worker"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "basic_auth.ini").write_text(ini)
    set_env(monkeypatch, {**mlflow, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini")})
    assert not is_loopback(mlflow["MLFLOW_HOST"])
    command = mlflow_command([])
    assert command[command.index("--app-name") + 1] == "basic-auth"
    auth = read_auth_config()
    assert mlflow["MLFLOW_FLASK_SERVER_SECRET_KEY"] and auth.admin_password
    assert (worker["MLFLOW_TRACKING_USERNAME"], worker["MLFLOW_TRACKING_PASSWORD"]) == \
        (auth.admin_username, auth.admin_password)
    # the users' password hashes live on their own volume, not among the served artifacts
    store = Path(make_url(auth.database_uri).database or "")
    assert any(store.parent == Path(volume) for volume in auth_volumes), store
    assert not store.is_relative_to(mlflow["MLFLOW_ARTIFACTS_DESTINATION"])

    set_env(monkeypatch, {**prefect, "PREFECT_HOME": str(tmp_path / "prefect")})
    assert not is_loopback(prefect["PREFECT_SERVER_API_HOST"])
    assert prefect_command([])[-2:] == ["server", "start"]     # not refused: the auth string is set
    server_auth = Settings().server.api.auth_string
    assert server_auth and server_auth.get_secret_value() == worker["PREFECT_API_AUTH_STRING"]


def test_compose_servers_require_credentials_the_worker_has(compose, monkeypatch, tmp_path):
    services = compose["services"]
    assert services["mlflow"]["entrypoint"] == ["redrobe", "serve", "mlflow"]
    assert services["prefect-server"]["entrypoint"] == ["redrobe", "serve", "prefect"]
    volumes = [interpolate(str(v)).split(":") for v in services["mlflow"]["volumes"]]
    mounts = {target: source for source, target, *_ in volumes}
    config = mounts[env_of(services["mlflow"])["MLFLOW_AUTH_CONFIG_PATH"]]
    named = {target for target, source in mounts.items() if source in (compose.get("volumes") or {})}
    check_servers_require_credentials({name: env_of(services[name]) for name in SERVICES},
                                      (DEPLOY / config).read_text(), named, monkeypatch, tmp_path)


# ------------------------------------------------------------------ credentials

def test_init_env_writes_fresh_private_credentials(tmp_path):
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    assert run_init_env(first).returncode == 0
    assert run_init_env(second, umask=0).returncode == 0      # 0600 whatever the umask
    for path in (first, second):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    values = [*read_env_file(first).values(), *read_env_file(second).values()]
    assert set(read_env_file(first)) == set(read_env_file(second)) == CREDENTIALS
    assert len(set(values)) == len(values) == 2 * len(CREDENTIALS)   # fresh, none shared
    for value in values:   # 256 bits, URL-safe: they go into database URLs unescaped
        assert re.fullmatch(r"(redrobe:)?[A-Za-z0-9_-]{43}", value), value
    assert read_env_file(first)["PREFECT_API_AUTH_STRING"].startswith("redrobe:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.env", "b.env"]   # no temp file left


def test_init_env_never_overwrites(tmp_path):
    path = tmp_path / ".env"
    run_init_env(path)
    before = path.read_bytes()
    again = run_init_env(path)
    assert again.returncode == 0 and "left as it is" in again.stdout and path.read_bytes() == before
    path.write_text("POSTGRES_PASSWORD=mine\n")
    partial = run_init_env(path)
    assert partial.returncode == 1 and "MLFLOW_AUTH_ADMIN_PASSWORD" in partial.stderr
    assert path.read_text() == "POSTGRES_PASSWORD=mine\n"
    link = tmp_path / "link.env"
    link.symlink_to(tmp_path / "elsewhere.env")    # a dangling link is not followed
    assert run_init_env(link).returncode == 1 and not (tmp_path / "elsewhere.env").exists()


def test_credential_files_stay_out_of_git_and_the_image():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = ["deploy/.env", *(f"deploy/k8s/{env}" for g in kustomization["secretGenerator"]
                              for env in g.get("envs", []))]
    assert files == ["deploy/.env", "deploy/k8s/secrets.env"]
    ignored = subprocess.run(["git", "check-ignore", *files], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == files
    for path in files:
        assert dockerignored(path), path


# -------------------------------------------------------------------- Kubernetes

def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def generated_secrets() -> list[dict]:
    """The Secrets kustomize makes from secretGenerator: its env files are what
    deploy/init-env writes (git-ignored, so generated here), plus the literals."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    secrets = []
    for generator in kustomization.get("secretGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        for _ in generator.get("envs", []):
            data |= generated_credentials()
        secrets.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": generator["name"]}, "stringData": data})
    return secrets


def k8s_objects_by_kind() -> dict[str, dict[str, dict]]:
    objects: dict[str, dict[str, dict]] = {}
    for doc in [d for _, d in k8s_documents()] + generated_secrets():
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


def test_k8s_has_no_password_in_its_manifests():
    assert not [name for name, doc in k8s_documents() if doc["kind"] == "Secret"], \
        "Secrets come from deploy/init-env's file (secretGenerator), never from a manifest"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for generator in kustomization["secretGenerator"]:
        literal_keys = {literal.split("=", 1)[0] for literal in generator.get("literals", [])}
        assert not literal_keys & CREDENTIALS and not any(SECRET_NAME.search(k) for k in literal_keys)
    referenced = set()
    for name, deployment in k8s_objects_by_kind()["Deployment"].items():
        for container in containers(deployment):
            for var in container.get("env", []):
                key_ref = var.get("valueFrom", {}).get("secretKeyRef")
                referenced |= {key_ref["key"]} if key_ref else set()
                if SECRET_NAME.search(var["name"]):
                    assert key_ref, f"{name}: {var['name']} is not from the generated Secret"
    assert referenced >= CREDENTIALS


def test_k8s_exposes_nothing_beyond_the_cluster():
    objects = k8s_objects_by_kind()
    for name, service in objects["Service"].items():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
    for name, deployment in objects["Deployment"].items():
        pod = deployment["spec"]["template"]["spec"]
        assert not pod.get("hostNetwork"), name
        for container in containers(deployment):
            assert not any("hostPort" in port for port in container.get("ports", [])), name


def test_k8s_servers_require_credentials_the_worker_has(monkeypatch, tmp_path):
    objects = k8s_objects_by_kind()
    deployments = objects["Deployment"]
    envs = {name: resolved_env(deployments[name], name) for name in SERVICES}
    mlflow = next(c for c in containers(deployments["mlflow"]) if c["name"] == "mlflow")
    assert mlflow["command"] == ["redrobe", "serve", "mlflow"]
    assert next(c for c in containers(deployments["prefect-server"]))["command"] == \
        ["redrobe", "serve", "prefect"]
    # the auth config is the mounted ConfigMap's file, the users on a PersistentVolumeClaim
    volumes = {v["name"]: v for v in deployments["mlflow"]["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in mlflow["volumeMounts"]}
    config_dir, config_file = envs["mlflow"]["MLFLOW_AUTH_CONFIG_PATH"].rsplit("/", 1)
    ini = objects["ConfigMap"][mounts[config_dir]["configMap"]["name"]]["data"][config_file]
    assert ini == (DEPLOY / "mlflow" / "basic_auth.ini").read_text()
    claims = {path for path, volume in mounts.items() if "persistentVolumeClaim" in volume}
    check_servers_require_credentials(envs, ini, claims, monkeypatch, tmp_path)


def test_k8s_worker_runs_in_the_checkout_its_init_container_clones():
    worker = k8s_objects_by_kind()["Deployment"]["prefect-worker"]
    init, main = containers(worker)
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == main["workingDir"])
    assert mount in init["volumeMounts"]          # same volume, same subPath
    assert main["workingDir"] in init["command"][-1] and "git clone" in init["command"][-1]
    assert resolved_env(worker, main["name"])["PYTHONPATH"].split(":")[0] == f"{main['workingDir']}/src"
