"""`redrobe serve`: a server starts beyond loopback only with credentials, and with
credentials set its authentication is always on.

The commands are built, not run (the real servers with auth are in
tests/flows/test_service_auth.py); one test runs the CLI to see the refusal's exit code
and message.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from redrobe.serve import Refused, is_loopback, mlflow_command, option, prefect_command

MLFLOW_HOW = ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "deploy/init-env")
PREFECT_HOW = ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", "deploy/init-env")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No server settings from the caller's environment or Prefect profile."""
    for key in list(os.environ):
        if key.startswith(("MLFLOW_", "PREFECT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.chdir(tmp_path)  # no .env / prefect.toml of the checkout


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LocalHost"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "10.0.0.1", "example.org",
                                  "mlflow", "localhost.example.org", "127.0.0.1.nip.io"])
def test_every_other_host_counts_as_exposed(host):
    assert not is_loopback(host)


def test_option_reads_the_value_the_server_takes():
    assert option(["--port", "5000", "--host", "0.0.0.0"], "--host") == "0.0.0.0"
    assert option(["--host=0.0.0.0"], "--host") == "0.0.0.0"
    assert option(["-h", "::", "--workers", "2"], "--host", "-h") == "::"
    assert option(["--host", "127.0.0.1", "--host", "0.0.0.0"], "--host") == "0.0.0.0"
    assert option(["--hostname", "x", "--port", "1"], "--host") is None


def refusal(call, options) -> str:
    with pytest.raises(Refused) as refused:
        call(options)
    return str(refused.value)


@pytest.mark.parametrize("options", [["--host", "0.0.0.0"], ["-h", "192.168.1.20"], ["--host=mlflow"]])
def test_mlflow_refuses_an_exposed_host_without_a_password(options):
    message = refusal(mlflow_command, options)
    assert all(part in message for part in MLFLOW_HOW), message


def test_mlflow_reads_the_host_from_its_env_too(monkeypatch):
    monkeypatch.setenv("MLFLOW_HOST", "0.0.0.0")
    assert "'0.0.0.0'" in refusal(mlflow_command, ["--port", "5000"])


def test_mlflow_on_loopback_without_a_password_starts_without_auth():
    command = mlflow_command(["--host", "127.0.0.1", "--port", "5000"])
    assert command[1:4] == ["-m", "mlflow", "server"] and "--app-name" not in command
    assert mlflow_command([])[-1] == "server"   # mlflow's own default host is 127.0.0.1


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_mlflow_with_a_password_always_runs_the_basic_auth_app(monkeypatch, host):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "x" * 20)
    command = mlflow_command(["--host", host])
    assert command[command.index("--app-name") + 1] == "basic-auth"
    assert command[-2:] == ["--host", host]


def test_mlflow_takes_the_password_from_the_auth_config_file(monkeypatch, tmp_path):
    config = tmp_path / "auth.ini"
    config.write_text("[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///auth.db\n"
                      "admin_username = admin\nadmin_password = from-the-file-1234\n")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    assert "basic-auth" in mlflow_command(["--host", "0.0.0.0"])


def test_mlflow_names_an_unreadable_auth_config(monkeypatch, tmp_path):
    missing = tmp_path / "no-such.ini"
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(missing))
    assert str(missing) in refusal(mlflow_command, ["--host", "127.0.0.1"])


@pytest.mark.parametrize("options, env", [(["--host", "0.0.0.0"], {}),
                                          (["--port", "4200"], {"PREFECT_SERVER_API_HOST": "0.0.0.0"}),
                                          (["--host", "10.1.2.3"], {"PREFECT_SERVER_API_AUTH_STRING": ""})])
def test_prefect_refuses_an_exposed_host_without_an_auth_string(monkeypatch, options, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    message = refusal(prefect_command, options)
    assert all(part in message for part in PREFECT_HOW), message


def test_prefect_reads_the_host_from_its_profile(monkeypatch, tmp_path):
    profiles = tmp_path / "prefect-home" / "profiles.toml"
    profiles.parent.mkdir()
    profiles.write_text('active = "lan"\n[profiles.lan]\nPREFECT_SERVER_API_HOST = "0.0.0.0"\n')
    assert "'0.0.0.0'" in refusal(prefect_command, [])


def test_prefect_with_an_auth_string_starts_on_any_host(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "redrobe:a-long-random-password")
    command = prefect_command(["--host", "0.0.0.0"])
    assert command[1:] == ["-m", "prefect", "server", "start", "--host", "0.0.0.0"]


def test_prefect_on_loopback_without_an_auth_string_starts():
    assert prefect_command([])[-2:] == ["server", "start"]


def test_the_cli_refuses_with_exit_code_2_and_says_what_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    done = subprocess.run([sys.executable, "-m", "redrobe", "serve", "mlflow", "--host", "0.0.0.0"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done
    assert done.stdout == "" and all(part in done.stderr for part in MLFLOW_HOW), done.stderr
    usage = subprocess.run([sys.executable, "-m", "redrobe", "serve", "nginx"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "redrobe serve {mlflow,prefect}" in usage.stderr
