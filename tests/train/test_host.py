"""keep_freed_memory: glibc takes the settings (a fresh process, so the test's own
process is not changed), and a freed large block is then reused instead of remapped."""

import subprocess
import sys
import textwrap

import pytest


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True, timeout=120)
    return done.stdout.strip()


PROBE = """
    import resource
    import torch
    from redrobe.train.host import keep_freed_memory
    kept = {keep}
    if kept:
        assert keep_freed_memory() and keep_freed_memory()  # once per process, then cached
    x = torch.ones(16 << 20)          # 64 MiB: above glibc's largest default mmap threshold
    del x
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        x = torch.ones(16 << 20)
        del x
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.slow
def test_freed_blocks_are_reused_instead_of_mapped_again():
    faults_default = int(run(PROBE.format(keep=False)))
    faults_kept = int(run(PROBE.format(keep=True)))
    # 5 x 64 MiB freshly mapped is ~80k 4 KiB page faults (16k each); kept, the heap
    # block is reused (at most one more allocation's worth while the heap settles)
    assert faults_default > 5 * 12_000
    assert faults_kept < 2 * 12_000
