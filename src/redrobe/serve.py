"""`redrobe serve mlflow|prefect [server options]`: start the MLflow or Prefect server,
never open to the network without credentials.

Both servers listen on 127.0.0.1 unless told otherwise. Told to listen anywhere else
(0.0.0.0, a LAN address, any host name), they start only with credentials set:

- MLflow runs its basic-auth app (``mlflow server --app-name basic-auth``); the admin
  password comes from MLFLOW_AUTH_ADMIN_PASSWORD or from the file MLFLOW_AUTH_CONFIG_PATH
  names, and clients send MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD;
- Prefect checks PREFECT_SERVER_API_AUTH_STRING ("user:password"), which clients and
  workers send as PREFECT_API_AUTH_STRING.

With credentials set, authentication is on whatever the address. Without them, a
loopback address starts the server as before and any other address is refused (exit
code 2, with what to set). The server then replaces this process, so signals reach it
directly (as a container's first process, for example).

    redrobe serve mlflow --host 0.0.0.0 --port 5000 --backend-store-uri ...
    redrobe serve prefect --host 0.0.0.0 --port 4200
"""

from __future__ import annotations

import argparse
import configparser
import ipaddress
import os
import sys
from collections.abc import Callable

USAGE = "usage: redrobe serve {mlflow,prefect} [options of `mlflow server` / `prefect server start`]"


class Refused(Exception):
    """The server would listen beyond loopback without credentials, or they are unreadable."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only: ``localhost`` or a loopback
    address. Any other name counts as exposed: it may resolve to any interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def option(options: list[str], *names: str) -> str | None:
    """The value the server will take for an option (``--host X`` or ``--host=X``; the last wins)."""
    parser = argparse.ArgumentParser(prog="redrobe serve", add_help=False, allow_abbrev=False)
    parser.add_argument(*names, dest="value")
    return parser.parse_known_args(options)[0].value


def refuse_if_exposed(server: str, host: str, how: str) -> None:
    if not is_loopback(host):
        raise Refused(f"redrobe serve {server}: refusing to listen on {host or 'every interface'!r} "
                      f"without credentials: anyone who reaches the port could use the server. "
                      f"{how} Or listen on 127.0.0.1.")


def mlflow_admin_password() -> str | None:
    """The admin password MLflow's auth app would bootstrap with (its own reading of the env and file)."""
    from mlflow.server.auth.config import read_auth_config

    try:
        return read_auth_config().admin_password
    except (KeyError, configparser.Error) as err:  # a missing file reads as empty: no [mlflow]
        path = os.environ.get("MLFLOW_AUTH_CONFIG_PATH")
        raise Refused(f"redrobe serve mlflow: MLFLOW_AUTH_CONFIG_PATH={path} is not a readable auth "
                      f"config with an [mlflow] section ({type(err).__name__}: {err})") from err


def mlflow_command(options: list[str]) -> list[str]:
    server = [sys.executable, "-m", "mlflow", "server"]
    if mlflow_admin_password():
        return [*server, "--app-name", "basic-auth", *options]
    host = option(options, "--host", "-h") or os.environ.get("MLFLOW_HOST") or "127.0.0.1"
    refuse_if_exposed("mlflow", host, "Set MLFLOW_AUTH_ADMIN_PASSWORD (12 characters or more) and "
                      "MLFLOW_FLASK_SERVER_SECRET_KEY (deploy/init-env writes both into deploy/.env; see "
                      "docs/deployment.md); clients then send "
                      "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.")
    return [*server, *options]


def prefect_command(options: list[str]) -> list[str]:
    from prefect.settings import Settings

    api = Settings().server.api  # read now, as the server will: env, .env, prefect.toml, profile
    if not (api.auth_string and api.auth_string.get_secret_value()):
        host = option(options, "--host") or api.host
        refuse_if_exposed("prefect", host, "Set PREFECT_SERVER_API_AUTH_STRING to 'user:password' "
                          "(deploy/init-env writes one into deploy/.env as PREFECT_API_AUTH_STRING; see "
                          "docs/deployment.md); clients and workers send "
                          "the same string as PREFECT_API_AUTH_STRING.")
    return [sys.executable, "-m", "prefect", "server", "start", *options]


SERVERS: dict[str, Callable[[list[str]], list[str]]] = {"mlflow": mlflow_command,
                                                         "prefect": prefect_command}


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if not argv or argv[0] not in SERVERS:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        command = SERVERS[argv[0]](argv[1:])
    except Refused as refused:
        print(refused, file=sys.stderr)
        return 2
    os.execv(command[0], command)
