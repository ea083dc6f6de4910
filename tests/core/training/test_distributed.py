"""Multi-process training through torchrun (DistributedDataParallel on gloo, two CPU ranks)."""

from __future__ import annotations

import os
import subprocess
import sys

from core.checkpoints.checkpoint import read_info
from core.training.trainer import MODEL_FILE


def test_torchrun_trains_on_two_cpu_processes(tiny_scenes, tmp_path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "core", "train", "--data", str(tiny_scenes), "--out", str(out),
        "--width", "0.0625", "--iterations", "3", "--batch-size", "1", "--crop", "48",
        "--device", "cpu", "--val-split", "", "--threads", "1",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = read_info(out / MODEL_FILE)
    assert info.training["world_size"] == 2
    assert info.training["iteration"] == 3
