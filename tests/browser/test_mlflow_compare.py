"""Browser test: MLflow's compare view answers "what changed between these two pipelines?".

Starts a real ``mlflow server`` (sqlite store in a temporary directory), reruns the clean
stage (``dvc repro --force --single-item clean``) twice in a copy of the session's tiny
pipeline, each under its own parent run opened by ``redrobe.tracking.pipeline_run``,
with one param changed (``clean.gopher_quality.min_words`` 50 → 60), then drives headless Chromium to the
compare-runs page of the two parent runs and checks that it shows both run names and,
with "Show diff only", exactly the changed param with both values. A screenshot is
saved under ``tests/browser/artifacts/`` (not versioned).

Needs Chromium and its driver (Debian: ``apt-get install -y chromium chromium-driver``)
and selenium (the dev extra). Run:

    .venv/bin/python -m pytest tests/browser -q -s
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from pipeline_repo import clone, git, repo_env, set_params
from ports import free_port

from redrobe.config import SECTIONS

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = HERE / "artifacts"
CHANGED = "clean.gopher_quality.min_words"
VARIANTS = (50, 60)
INSTALL = ("install them with `apt-get install -y chromium chromium-driver` (Debian/Ubuntu) "
           "and `pip install -e '.[dev]'` (selenium)")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--window-size=1600,2400")


def _browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail(f"Chromium ({chromium or 'missing'}) and chromedriver ({driver or 'missing'}) "
                    f"are needed for the browser test: {INSTALL}")
    return chromium, driver


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on a free port; stopped (its whole process group) afterwards."""
    root = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
           f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
           "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: uvicorn + job runner
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a throwaway store: no need for a graceful stop
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# Runs in the copy: one parent run per pipeline, its stages as child runs through DVC.
PIPELINE = """
import os, subprocess, sys
from redrobe import tracking
from redrobe.config import as_dict, load_params
params = load_params("params.yaml")
with tracking.pipeline_run(params.tracking.experiment, params=as_dict(params),
                           launcher="pytest", repo=".") as parent:
    env = dict(os.environ, **{tracking.PARENT_ENV: parent})
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "clean"],
                   env=env, check=True)
print("PARENT", parent)
"""


@pytest.fixture(scope="module")
def two_pipelines(mlflow_server, tiny_pipeline, tmp_path_factory):
    """Clean of the tiny profile run twice, min_words 50 then 60; the parent run ids."""
    root = clone(tiny_pipeline.root, tmp_path_factory.mktemp("browser") / "repo")
    parents = []
    for min_words in VARIANTS:
        set_params(root, {"clean": {"gopher_quality": {"min_words": min_words}}})
        git(root, "add", "-A")
        git(root, "commit", "-qm", f"min_words {min_words}")
        env = repo_env(root) | {"MLFLOW_TRACKING_URI": mlflow_server}
        proc = subprocess.run([sys.executable, "-c", PIPELINE], cwd=root, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        parents.append(proc.stdout.split("PARENT ", 1)[1].split()[0])
    return parents


def test_parent_runs_differ_in_the_changed_param_only(mlflow_server, two_pipelines):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    first, second = (client.get_run(r) for r in two_pipelines)
    diff = {k for k in first.data.params.keys() | second.data.params.keys()
            if first.data.params.get(k) != second.data.params.get(k)}
    assert diff == {CHANGED}
    assert [first.data.params[CHANGED], second.data.params[CHANGED]] == [str(v) for v in VARIANTS]
    assert first.info.run_name != second.info.run_name
    for run in (first, second):
        assert run.info.run_name.startswith("pipeline ") and run.info.status == "FINISHED"
        children = client.search_runs([run.info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        assert "clean" in {c.info.run_name for c in children}


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = _browser_binaries()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def _compare_url(server: str, run_ids: list[str], experiment_ids: list[str]) -> str:
    """The UI route (MLflow 3: Routes.getCompareRunPageRoute): JSON lists in the query."""
    query = (f"runs={urllib.parse.quote(json.dumps(run_ids))}"
             f"&experiments={urllib.parse.quote(json.dumps(experiment_ids))}")
    return f"{server}/#/compare-runs?{query}"


def test_compare_view_shows_run_names_and_the_param_diff(browser, mlflow_server, two_pipelines):
    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    client = MlflowClient(tracking_uri=mlflow_server)
    runs = [client.get_run(r) for r in two_pipelines]
    names = [r.info.run_name for r in runs]
    browser.get(_compare_url(mlflow_server, two_pipelines, [runs[0].info.experiment_id]))
    wait = WebDriverWait(browser, 60)

    def body() -> str:
        return browser.find_element(By.TAG_NAME, "body").text

    wait.until(lambda _: all(n in body() for n in names) and CHANGED in body())
    switch = browser.find_element(By.CSS_SELECTOR, "button[aria-label='Parameters - Show diff only']")
    switch.click()
    wait.until(lambda _: switch.get_attribute("aria-checked") == "true")

    def param_rows() -> dict[str, list[str]]:
        """Rows of the compare tables whose key is a params.yaml key: key -> values per run."""
        rows = {}
        for row in browser.find_elements(By.CSS_SELECTOR, "tr"):
            heads = row.find_elements(By.CSS_SELECTOR, "th")
            key = heads[0].get_attribute("textContent").strip() if heads else ""
            if key.split(".", 1)[0] in SECTIONS:
                rows[key] = [c.get_attribute("textContent").strip()
                             for c in row.find_elements(By.CSS_SELECTOR, "td")]
        return rows

    wait.until(lambda _: set(param_rows()) == {CHANGED})
    assert param_rows()[CHANGED] == [str(v) for v in VARIANTS]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "mlflow_compare_runs.png"
    assert browser.save_screenshot(str(shot))
    print(f"\nscreenshot of the MLflow compare view: {shot}")
    assert shot.stat().st_size > 10_000
