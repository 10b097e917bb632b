"""benchmarks/gpu_check.sh and the checks in benchmarks/gpu/, on a CPU at tiny sizes.

No GPU here: the shell script must stop with exit code 2 and say why, and each check's
logic (the figures it computes, the criteria it applies, the record it writes) runs with
``--device cpu``: the MFU run of the training loop, the LoRA path with quantization
none (trainable count vs formula, merged export vs peft), the report that gathers the
checks and marks a crashed, timed-out or silent one as failed.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
GPU_DIR = REPO / "benchmarks" / "gpu"
RECORD_KEYS = {"check", "ran", "figures", "criteria", "passed"}


@pytest.fixture(scope="module")
def gpu() -> SimpleNamespace:
    """The check scripts as modules (they import each other by their bare names)."""
    sys.path.insert(0, str(GPU_DIR))
    try:
        names = ("report", "encode", "pretrain_mfu", "zero2", "qlora_library", "qlora_stage")
        return SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(GPU_DIR))


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GPU_CHECK_OUT": str(tmp_path / "gpu_check.json"), **env})


def test_without_a_gpu_the_script_exits_2_and_says_why(tmp_path):
    done = run_script(tmp_path, CUDA_VISIBLE_DEVICES="")   # no GPU even on a GPU machine
    assert done.returncode == 2, done.stderr
    assert "gpu_check: error: no CUDA GPU visible to torch" in done.stderr
    assert "run this on a machine with an NVIDIA GPU" in done.stderr
    assert not (tmp_path / "gpu_check.json").exists()      # stopped before any check


def test_without_the_venv_the_script_exits_2(tmp_path):
    done = run_script(tmp_path, PYTHON=str(tmp_path / "missing" / "python"))
    assert done.returncode == 2
    assert "no Python at" in done.stderr and "create the project's venv" in done.stderr


def test_pretrain_mfu_on_cpu_writes_the_stage_figures(gpu, tmp_path):
    out = tmp_path / "mfu.json"
    assert gpu.pretrain_mfu.main([
        "--device", "cpu", "--out", str(out), "--steps", "6", "--warmup", "2", "--hidden", "32",
        "--layers", "2", "--heads", "2", "--kv-heads", "2", "--ffn", "64", "--seq", "32",
        "--batch", "4", "--vocab", "64", "--precision", "fp32", "--peak-flops", "1e10"]) == 0
    record = json.loads(out.read_text())
    assert set(record) == RECORD_KEYS and record["check"] == "pretrain_mfu"
    f = record["figures"]
    # N = 2 layers x (4 * 32*32 attention + 3 * 32*64 MLP + 2 * 32 norms) + 32 final norm
    #     + 64*32 untied lm_head; flops/token = 6 N + 12 L H T (PaLM App. B)
    n = 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32 + 64 * 32
    assert f["matmul_parameters"] == n
    assert f["flops_per_token"] == 6 * n + 12 * 2 * 32 * 32
    assert f["tokens"] == 6 * 4 * 32 and f["precision"] == "fp32" and not f["compiled"]
    assert f["mfu_run"] == pytest.approx(f["tokens"] / f["train_seconds"] * f["flops_per_token"] / 1e10)
    assert len(f["losses"]) == 6
    assert "precision_bf16" not in record["criteria"]      # required on CUDA only
    assert record["passed"] == all(record["criteria"].values())


def test_pretrain_mfu_criteria_fail_on_bad_figures(gpu):
    good = {"losses": [5.0, 4.0], "mfu_run": 0.4, "mfu_median_step": 0.45, "precision": "bf16"}
    assert all(gpu.pretrain_mfu.criteria_for(good, "cuda").values())
    bad = {**good, "losses": [5.0, float("nan")], "mfu_run": 1.3, "precision": "fp32"}
    failed = {k for k, ok in gpu.pretrain_mfu.criteria_for(bad, "cuda").items() if not ok}
    assert failed == {"losses_finite", "loss_fell", "run_mfu_in_(0,1]", "precision_bf16"}


def test_lora_path_on_cpu_counts_and_exports_agree(gpu, tmp_path):
    out = tmp_path / "qlora.json"
    assert gpu.qlora_library.main(["--device", "cpu", "--quantization", "none", "--steps", "8",
                                   "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record) == RECORD_KEYS and record["check"] == "qlora_library"
    f = record["figures"]
    # r = 8 on q/k/v/o of 2 layers, hidden 64, kv width 2 heads x 16 = 32:
    # 8 * ((64+64) + (64+32) + (64+32) + (64+64)) per layer
    assert f["trainable_parameters"] == f["trainable_parameters_formula"] == 2 * 8 * (128 + 96 + 96 + 128)
    assert f["merged_vs_peft_max_abs"] <= 1e-5
    assert f["merged_vs_in_memory_max_abs"] <= 1e-5     # no quantization: the same model
    assert f["argmax_agreement"] == 1.0
    assert f["linear4bit"] == 0 and f["targets"] == 8   # nothing quantized without bitsandbytes
    assert record["passed"], record["criteria"]


def test_lora_stage_on_cpu_records_the_formula_and_agreement(gpu, tmp_path):
    out = tmp_path / "stage.json"
    assert gpu.qlora_stage.main(["--device", "cpu", "--quantization", "none", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record) == RECORD_KEYS and record["check"] == "qlora_stage"
    f = record["figures"]
    assert f["pretrain_exit_code"] == f["lora_exit_code"] == 0
    # the fixture's model: hidden 32, 2 layers, 2 heads / 1 kv head (kv width 16), r = 4 on q and v
    assert f["trainable_parameters"] == f["trainable_parameters_formula"] == 2 * 4 * ((32 + 32) + (32 + 16))
    assert f["quantization"] == "none" and f["device"] == "cpu"
    assert f["merged_vs_peft_max_abs"] <= 1e-5
    assert record["passed"], record["criteria"]


def test_lora_stage_criteria_stop_at_a_failed_stage(gpu):
    criteria = gpu.qlora_stage.criteria_for({"pretrain_exit_code": 0, "lora_exit_code": 2}, "cuda", "4bit")
    assert criteria == {"pretrain_exit_0": True, "lora_exit_0": False}


def test_qlora_criteria_need_the_nf4_evidence(gpu):
    f = {"trainable_parameters": 7168, "trainable_parameters_formula": 7168, "losses": [5.6, 5.2],
         "initial_val_loss": 5.6, "final_val_loss": 5.2, "merged_vs_peft_max_abs": 2e-7,
         "argmax_agreement": 1.0, "linear4bit": 8, "targets": 8, "footprint_bytes": 171_328,
         "fp32_footprint_bytes": 429_376, "merged_vs_in_memory_max_abs": 8e-3}
    assert all(gpu.qlora_library.criteria_for(f, "4bit").values())
    # merged == in-memory under "4bit" means nothing was quantized; a miscount fails too
    bad = {**f, "merged_vs_in_memory_max_abs": 0.0, "linear4bit": 0, "trainable_parameters": 7169}
    failed = {k for k, ok in gpu.qlora_library.criteria_for(bad, "4bit").items() if not ok}
    assert failed == {"nf4_error_in_(0,0.1)", "targets_linear4bit", "trainable_equals_formula"}


def test_zero2_criteria(gpu):
    f = {"backend": "nccl", "all_reduce": 1.0, "all_reduce_expected": 1.0, "zero_stage": 2,
         "losses": [10.4, 7.9]}
    assert all(gpu.zero2.criteria_for(f, "cuda:0").values())
    failed = {k for k, ok in gpu.zero2.criteria_for(f, "cpu").items() if not ok}
    assert failed == {"backend_gloo"}     # a CPU run must not claim NCCL


def test_row_cosines(gpu):
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[1.0, 1.0], [0.0, 5.0], [-3.0, -4.0]], dtype=np.float32)
    np.testing.assert_allclose(gpu.encode.row_cosines(a, b), [2 ** -0.5, 1.0, -1.0], rtol=1e-7)


def write_part(parts: Path, name: str, status: str | None, passed: bool | None, log: str = "") -> None:
    if status is not None:
        (parts / f"{name}.status").write_text(status)
    if passed is not None:
        record = {"check": name, "ran": "x", "figures": {"v": 1}, "criteria": {"ok": passed},
                  "passed": passed}
        (parts / f"{name}.json").write_text(json.dumps(record))
    (parts / f"{name}.log").write_text(log)


def test_report_marks_crashed_timed_out_and_silent_checks_failed(gpu, tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    write_part(parts, "encode", "0 12 90", True)
    write_part(parts, "pretrain_mfu", "124 150 150", None, log="step 3 ...")
    write_part(parts, "zero2", "1 40 120", True, log="NCCL error: unhandled system error")
    write_part(parts, "qlora_library", "0 30 75", False)
    write_part(parts, "qlora_stage", "0 9 75", None)
    out = tmp_path / "gpu_check.json"
    assert gpu.report.main(["--parts", str(parts), "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert {"command", "device", "versions", "checks", "passed"} <= set(report)
    assert report["versions"]["torch"] and "name" in report["device"]
    checks = {c["check"]: c for c in report["checks"]}
    assert list(checks) == list(gpu.report.CHECKS) and report["passed"] is False
    assert checks["encode"]["passed"] and "error" not in checks["encode"]
    assert checks["encode"]["seconds"] == 12 and checks["encode"]["time_limit_s"] == 90
    assert checks["pretrain_mfu"]["error"] == "timed out after 150 s (exit code 124)"
    assert checks["pretrain_mfu"]["log_tail"] == "step 3 ..."
    assert checks["zero2"]["error"] == "exit code 1" and not checks["zero2"]["passed"]
    assert "NCCL error" in checks["zero2"]["log_tail"]
    assert not checks["qlora_library"]["passed"] and "error" not in checks["qlora_library"]
    assert checks["qlora_stage"]["error"] == "exited 0 without writing its record"
    unrun = gpu.report.gather(parts, "no_such_check")      # gpu_check.sh never got to it
    assert unrun["error"] == "not run" and unrun["passed"] is False


def test_report_passes_when_every_check_passes(gpu, tmp_path):
    for name in gpu.report.CHECKS:
        write_part(tmp_path, name, "0 1 60", True)
    out = tmp_path / "gpu_check.json"
    assert gpu.report.main(["--parts", str(tmp_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["passed"] is True


def test_performance_page_renders_the_report(gpu, tmp_path):
    parts, results = tmp_path / "parts", tmp_path / "results"
    parts.mkdir()
    for name in gpu.report.CHECKS:
        write_part(parts, name, "0 1 60", True)
    write_part(parts, "zero2", "124 120 120", None)
    assert gpu.report.main(["--parts", str(parts), "--out", str(results / "gpu_check.json")]) == 1
    render_docs = gpu.report.load_module(REPO / "benchmarks" / "render_docs.py")
    page = render_docs.render_text(results, REPO / "benchmarks")
    assert "## gpu_check: GPU checks" in page and "results without a renderer" not in page
    assert "| `benchmarks/gpu_check.sh` |" in page                # the script column
    assert "\nbenchmarks/gpu_check.sh" in page                    # the rerun command, from its header
    assert "FAILED (timed out after 120 s (exit code 124))" in page
    assert page.count("| passed |") == len(gpu.report.CHECKS) - 1
