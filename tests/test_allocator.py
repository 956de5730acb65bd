"""keep_freed_memory: the large blocks a training step frees are reused by the next, not faulted in again."""

import os
import platform
import subprocess
import sys

import pytest

# a 100 MB layer under bf16 autocast: its weight's bf16 copy and its gradient are large blocks every step
PAGE_FAULTS_OF_THE_LAST_STEPS = """
import resource, sys, torch
from fashionseg.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
layer = torch.nn.Linear(2048 * 7 * 7, 256)
x = torch.randn(8, 2048 * 7 * 7)
faults = []
for step in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x).float().sum().backward()
    layer.weight.grad = None
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[-4:]))
"""


def _faults(mode: str) -> int:
    command = [sys.executable, "-c", PAGE_FAULTS_OF_THE_LAST_STEPS, mode]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)
def test_the_blocks_a_step_frees_are_reused_by_the_next():
    default = _faults("default")
    assert default > 4 * 25_000  # glibc unmapped them: each step faults its ~100 MB in again
    assert _faults("keep") < default / 4
