"""Shared helpers of the runtime benchmarks: machine facts, timing, statistics, JSON output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def cpu_name() -> str:
    """The CPU's model name as lscpu reports it (platform's guess without lscpu)."""
    name = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return name


def machine() -> dict:
    """CPU model, cores, GPU, library versions and the date (UTC)."""
    import torch

    cpu = cpu_name()
    info = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def stats(seconds: list[float]) -> dict:
    """Median, spread (min, max, p10, p90, IQR) and count of timings, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    q10, q25, q50, q75, q90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {"median_ms": float(q50), "min_ms": float(ms.min()), "max_ms": float(ms.max()),
            "p10_ms": float(q10), "p90_ms": float(q90), "iqr_ms": float(q75 - q25),
            "n": int(ms.size)}


def load() -> dict:
    """Load averages and the busiest other processes (a shared machine skews timings)."""
    out: dict = {}
    try:
        out["loadavg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        ps = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True,
                            text=True, check=True).stdout.splitlines()[1:6]
        me = os.getpid()
        out["top_processes"] = [line.strip()[:120] for line in ps
                                if line.split()[0] != str(me) and float(line.split()[1]) > 5]
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        pass
    return out


class CpuShare:
    """Process CPU seconds per wall second over the timed calls (about the thread count
    when the machine is otherwise idle; less when other processes compete)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def add(self, cpu: float, wall: float) -> None:
        self.cpu += cpu
        self.wall += wall

    @property
    def value(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0


def timer(device: str) -> Callable[[Callable[[], object]], float]:
    """``measure(fn)``: seconds one call of ``fn`` takes (CUDA events on a GPU)."""
    import torch

    if device.startswith("cuda"):
        def measure(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        return measure

    def measure_cpu(fn: Callable[[], object]) -> float:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        measure_cpu.share.add(time.process_time() - c0, wall)  # type: ignore[attr-defined]
        return wall
    measure_cpu.share = CpuShare()  # type: ignore[attr-defined]
    return measure_cpu


def write_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json``; return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def command_line() -> str:
    """The command that ran this benchmark, as typed from the repository root."""
    args = [Path(sys.argv[0]).resolve().relative_to(ROOT).as_posix(), *sys.argv[1:]]
    return "python " + " ".join(args)
