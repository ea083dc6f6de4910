"""benchmarks/report.py: the performance targets checked on result files (no timing here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks/report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _inference(device: str, rows: list[tuple[str, float, float]]) -> dict:
    """A results payload: ``(backend, ms per image, worst 32s agreement)`` rows, eager first."""
    eager_ms = rows[0][1]
    return {"benchmark": "inference", "device": device, "repeats": 50, "results": [
        {"backend": backend, "per_image_ms": ms, "speedup_vs_eager": eager_ms / ms,
         "paired_speedup_median": eager_ms / ms,
         "agreement_min": {"32s": agree, "16s": 1.0, "8s": 1.0}}
        for backend, ms, agree in rows]}


@pytest.mark.parametrize(("rows", "met", "why"), [
    ([("eager", 8.0, 1.0), ("auto", 1.2, 0.998)], True, ""),
    ([("eager", 8.0, 1.0), ("auto", 1.9, 0.998)], False, "1.90 ms > 1.5 ms"),
    ([("eager", 4.0, 1.0), ("auto", 1.2, 0.998)], False, "3.33x < 4x"),
    ([("eager", 8.0, 1.0), ("auto", 1.0, 0.990), ("torch:reuse=0", 1.4, 0.997)],
     True, ""),  # auto fails the agreement bar: the fastest row that keeps it counts
    ([("eager", 8.0, 1.0), ("auto", 1.0, 0.990)], False, "no optimized row"),
    ([("eager", 8.0, 1.0), ("auto", 1.0, 0.990), ("emulate:fp16", 1.0, 0.999)], False,
     "no optimized row"),  # an emulation is not a runtime
])
def test_gpu_inference_targets(report, rows, met, why) -> None:
    v = report.inference_verdict("x.json", _inference("cuda", rows))
    assert v.met is met and why in v.why and v.device == "CUDA"


def test_cpu_target_and_the_committed_results(report) -> None:
    v = report.inference_verdict("x.json", _inference("cpu", [("eager", 2500.0, 1.0),
                                                             ("auto", 1400.0, 1.0)]))
    assert v.met and "1.79x" in v.figures
    committed = report.verdict(ROOT / "benchmarks/results/inference-cpu-fcn8s-500.json")
    assert committed.met and committed.row == "`auto`" and "1.88x" in committed.figures


def test_training_step_target(report, tmp_path: Path) -> None:
    def payload(speedup: float, device: str = "cuda") -> dict:
        return {"benchmark": "train_step", "device": device, "results": [
            {"variant": "eager fp32", "median_ms": 300.0, "speedup_vs_eager": 1.0,
             "paired_speedup_median": 1.0, "first_loss_rel_diff": 0.0},
            {"variant": "bf16 + channels_last", "median_ms": 300.0 / speedup,
             "speedup_vs_eager": speedup, "paired_speedup_median": speedup,
             "first_loss_rel_diff": 0.01}]}

    assert report.train_verdict("t.json", payload(3.4)).met is True
    assert report.train_verdict("t.json", payload(2.5)).met is False
    assert report.train_verdict("t.json", payload(2.5, "cpu")).met is None
    path = tmp_path / "t.json"
    path.write_text(json.dumps(payload(3.4)))
    assert report.main([str(path)]) == 0
