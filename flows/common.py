"""What every flow shares: the run lock, one MLflow parent run, the summary artifacts.

    from flows.common import run_stages
    summary_or_state = run_stages("redrobe-refresh", ["ingest", "clean"], repo=".")

:func:`run_stages` takes the checkout's run lock (``.redrobe/run.lock``), opens one
MLflow parent run, runs the given dvc.yaml stages in order (each a Prefect task:
``dvc repro --single-item <stage>``, or the stage's own command with some options
replaced), records dvc.lock on the parent run and publishes the summary artifacts.

One run at a time per checkout. When another run holds the lock, or DVC's own repo
lock is held by another ``dvc`` process, the flow run does no work and ends in a
state named **Skipped** (of type COMPLETED, as Prefect's own "Cached" is) whose
message starts with ``skipped:`` and names the lock and its holder (pid, flow run).
It is not Failed or Crashed (nothing is broken), and not Cancelled: a returned
Cancelled state makes Prefect's engine log a CancelledRun traceback, and the UI
would suggest someone cancelled it. Run from a shell (``python -m flows.<name>``),
a skipped run prints the message and exits with code 75 (EX_TEMPFAIL: try again later).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from prefect import get_run_logger
from prefect.states import Completed, State

from redrobe import tracking
from redrobe.config import as_dict, load_params
from tasks.dvc import DVC_LOCK_FILE, metrics_path, run_stage, run_stage_cli
from tasks.lineage import record_lineage
from tasks.summary import publish_summary

LOCK_FILE = Path(".redrobe/run.lock")
SKIPPED = "skipped"  # how every skip message starts
SKIPPED_STATE = "Skipped"  # the name of a skipped run's final (COMPLETED-type) state
EXIT_SKIPPED = 75  # EX_TEMPFAIL (sysexits.h): another run is busy, try again later


class LockHeld(RuntimeError):
    """Another process holds the run lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path, self.holder = path, holder
        who = ", ".join(f"{k} {holder[k]}" for k in ("pid", "host", "flow", "flow_run_name",
                                                      "flow_run_id", "since") if holder.get(k))
        super().__init__(f"{SKIPPED}: another run holds the lock {path} ({who or 'holder unknown'})")


class RunLock:
    """An exclusive, non-blocking ``flock`` on a file, released on exit (or process death).

    The holder writes a JSON description of itself into the file, so a second
    acquirer can say who holds it. The file is never deleted: deleting a flock'ed file
    would let a third process lock a fresh inode while the first still runs.
    """

    def __init__(self, path: Path, owner: Mapping[str, Any]) -> None:
        self.path, self.owner = Path(path), dict(owner)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeld(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(self.owner, sort_keys=True).encode("utf-8"))
        os.fsync(fd)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an unlocked file describes no holder
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 65536, 0).decode("utf-8") or "{}")
    except ValueError:  # the holder is between truncate and write
        return {}


def run_owner() -> dict[str, Any]:
    """Who this process is: pid, host and, inside a Prefect flow run, the run's identity."""
    from prefect.runtime import flow_run

    owner: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if flow_run.id:
        owner.update(flow=flow_run.flow_name, flow_run_name=flow_run.name,
                     flow_run_id=str(flow_run.id))
    return owner


def dvc_locked_message(stage: str, repo: Path, holder: str) -> str:
    return (f"{SKIPPED}: DVC's repository lock {repo / DVC_LOCK_FILE} is held by another DVC "
            f"process (pid {holder}); stage {stage!r} and the ones after it were not run. "
            "Run again when that dvc command has finished.")


def skipped(message: str) -> State:
    """The final state of a run that did nothing because a lock was held."""
    get_run_logger().warning(message)
    return Completed(name=SKIPPED_STATE, message=message)


def run_stages(flow: str, stages: Sequence[str], repo: str = ".", *, force: Sequence[str] = (),
               replace: Mapping[str, Mapping[str, str]] | None = None,
               eval_file: str | None = None, tags: Mapping[str, str] | None = None
               ) -> dict[str, Any] | State:
    """Run dvc.yaml ``stages`` in order under the run lock and one MLflow parent run.

    ``force``: stages run with ``dvc repro --force``. ``replace``: run every stage
    outside DVC, as its dvc.yaml command with ``replace[stage]``'s options replaced.
    ``eval_file`` (relative to the repo): the evaluation metrics for the summary
    (default: the evaluate stage's in dvc.yaml, when present). Returns the summary dict,
    or the Skipped state when the run did nothing because a lock was held.
    """
    root = Path(repo).resolve()
    if eval_file is None:
        default = metrics_path(root, "evaluate")
        eval_file = str(default.relative_to(root)) if default else None
    try:
        with RunLock(root / LOCK_FILE, run_owner()):
            return _run_locked(flow, list(stages), root, force, replace, eval_file, tags or {})
    except LockHeld as held:
        publish_summary(flow, str(root), "", [], outcome=SKIPPED, notes=[str(held)])
        return skipped(str(held))


def _run_locked(flow: str, stages: list[str], root: Path, force: Sequence[str],
                replace: Mapping[str, Mapping[str, str]] | None, eval_file: str | None,
                tags: Mapping[str, str]) -> dict[str, Any] | State:
    def run(stage: str, parent: str) -> dict[str, Any]:
        if replace is not None:
            return run_stage_cli(stage, str(root), parent, dict(replace[stage]))
        return run_stage(stage, str(root), parent, force=stage in force)

    params = load_params(root / "params.yaml")
    # The stages run with cwd=repo: pin the store so the flow and they share one database.
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    results: list[dict[str, Any]] = []
    message, lineage = "", {}
    with tracking.pipeline_run(params.tracking.experiment, tags={"redrobe.flow": flow, **tags},
                               params=as_dict(params), launcher="prefect", repo=root) as parent:
        for stage in stages:
            result = run(stage, parent)
            if "locked" in result:  # DVC's repo lock stayed held through the task's retries
                message = dvc_locked_message(stage, root, result["locked"])
                break
            results.append(result)
        else:
            lineage = record_lineage(str(root), parent)
    if message:
        _mark_skipped(parent, message)
        publish_summary(flow, str(root), parent, results, outcome=SKIPPED, notes=[message])
        return skipped(message)
    artifacts = publish_summary(flow, str(root), parent, results, eval_file=eval_file)
    get_run_logger().info("%s finished: %s", flow, [(r["stage"], r["ran"]) for r in results])
    return {"flow": flow, "parent_run_id": parent, "stages": results, "dvc_outs": lineage,
            "artifacts": artifacts, "tracking_uri": tracking.tracking_uri()}


def _mark_skipped(parent_run_id: str, message: str) -> None:
    """Tag the parent run with the reason and end it as KILLED (it did not finish its work)."""
    if parent_run_id:
        from mlflow import MlflowClient

        client = MlflowClient()
        client.set_tag(parent_run_id, "redrobe.skipped", message)
        client.set_terminated(parent_run_id, "KILLED")


def cli(call: Callable[..., Any], printer: Callable[[dict[str, Any]], None], **kwargs: Any) -> int:
    """Run a flow from the shell: print its summary, or the skip message with exit code 75."""
    state = call(**kwargs, return_state=True)
    if state.name == SKIPPED_STATE:
        print(state.message, file=sys.stderr)
        return EXIT_SKIPPED
    printer(state.result())  # raises the flow's error if it failed
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\n{summary['flow']} finished.")
    for r in summary["stages"]:
        print(f"  {r['stage']:<9} {'ran' if r['ran'] else 'up to date'}")
    print(f"\nMLflow run:      {summary['parent_run_id']}")
    print(f"Open the UI:     mlflow ui --backend-store-uri {summary['tracking_uri']} "
          "--host 127.0.0.1 --port 5000")
