"""Precision choice: bf16 only where native (amx/avx512_bf16 CPUs, bf16 CUDA); overrides win."""

import torch

from redrobe.train import autocast, choose_precision, parse_cpu_flags

AVX2_ONLY = parse_cpu_flags("processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n\n"
                            "processor\t: 1\nflags\t\t: fpu sse sse2 avx avx2 fma\n")
SAPPHIRE = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})


def cpu(requested, flags):
    return choose_precision(requested, cuda=False, cuda_bf16=False, cpu_flags=flags)


def test_parse_cpu_flags():
    assert AVX2_ONLY == {"fpu", "sse", "sse2", "avx", "avx2", "fma"}
    assert parse_cpu_flags("no flags here") == frozenset()


def test_auto_is_fp32_on_avx2_only_cpu():
    assert cpu("auto", AVX2_ONLY) == "fp32"


def test_auto_is_bf16_with_amx_or_avx512_bf16():
    assert cpu("auto", {"avx2", "amx_bf16"}) == "bf16"
    assert cpu("auto", {"avx2", "avx512_bf16"}) == "bf16"
    assert cpu("auto", SAPPHIRE) == "bf16"


def test_explicit_precision_overrides_detection():
    assert cpu("fp32", SAPPHIRE) == "fp32"
    assert cpu("bf16", AVX2_ONLY) == "bf16"
    assert choose_precision("fp16", cuda=True, cuda_bf16=True, cpu_flags=()) == "fp16"


def test_auto_on_cuda_follows_device_bf16_support():
    assert choose_precision("auto", cuda=True, cuda_bf16=True, cpu_flags=AVX2_ONLY) == "bf16"
    assert choose_precision("auto", cuda=True, cuda_bf16=False, cpu_flags=SAPPHIRE) == "fp32"


def test_autocast_bf16_changes_matmul_dtype_fp32_does_not():
    a = torch.randn(4, 4)
    with autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32


def test_torch_setup_sets_threads_and_reads_the_cpu_flags(tmp_path, monkeypatch):
    from redrobe.train import torch_setup

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = torch.get_num_threads()
    try:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text("processor\t: 0\nflags\t\t: avx2 amx_bf16\n")
        assert torch_setup(1, "auto", cpuinfo) == ("cpu", "bf16")
        assert torch.get_num_threads() == 1
        assert torch_setup(1, "auto", tmp_path / "missing") == ("cpu", "fp32")
        assert torch_setup(1, None, cpuinfo) == ("cpu", "fp32")   # threads only
    finally:
        torch.set_num_threads(before)
