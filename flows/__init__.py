"""Prefect flows (run from the repository root, e.g. `python -m flows.pipeline`)."""

import os

# Without PREFECT_API_URL a flow starts Prefect's ephemeral server. Its first start in a
# fresh PREFECT_HOME migrates a new database, which took 25-30 s on a 2-core machine:
# past Prefect's 20 s default, so a first `make run` failed with "Timed out while
# attempting to connect to ephemeral Prefect API server". Set before prefect is imported.
EPHEMERAL_STARTUP_TIMEOUT_S = "180"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                      EPHEMERAL_STARTUP_TIMEOUT_S)
