"""kill -9 at random moments of a real training process: ``--resume`` always continues."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.checkpoints.checkpoint import read_info
from core.data.scenes import write_scene_dataset
from core.training.trainer import MODEL_FILE, STATE_FILE

ROOT = Path(__file__).resolve().parents[3]
ITERATIONS = 40


def _train(data: Path, out: Path, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core", "train", "--data", str(data), "--out", str(out),
           "--width", "0.0625", "--iterations", str(ITERATIONS), "--batch-size", "1",
           "--crop", "32", "--checkpoint-every", "1", "--val-split", "", "--device", "cpu",
           "--threads", "1", "--dropout", "0"]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def test_sigkill_at_random_moments_then_resume_finishes(tmp_path: Path) -> None:
    data = write_scene_dataset(tmp_path / "data", 4, seed=1, size=(32, 32), val_fraction=0.0)
    out = tmp_path / "run"
    rng = random.Random(11)
    resumed = 0
    deadline = time.monotonic() + 60
    for _ in range(4):
        proc = _train(data, out, resume=(out / STATE_FILE).exists())
        before = _mtime(out / STATE_FILE)
        while proc.poll() is None and _mtime(out / STATE_FILE) == before \
                and time.monotonic() < deadline:
            time.sleep(0.02)  # until this process has saved once (start-up takes seconds)
        time.sleep(rng.uniform(0.0, 1.0))  # then a random moment: mid-step or mid-save
        if proc.poll() is not None:  # finished already
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if time.monotonic() > deadline:
            break
    # every state left by a kill resumes, and the run completes
    for _ in range(3):
        had_state = (out / STATE_FILE).exists()
        proc = _train(data, out, resume=had_state)
        _stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        resumed += had_state
        if read_info(out / MODEL_FILE).training["iteration"] == ITERATIONS:
            break
    assert read_info(out / MODEL_FILE).training["iteration"] == ITERATIONS
    assert resumed >= 1
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]  # temps of kills cleaned
