"""Check benchmark results against the performance targets; print the rows for docs/benchmarks.md.

Reads result files written by ``inference.py`` and ``train_step.py`` (default: every file in
``benchmarks/results/``) and prints, per file, the best row that keeps the agreement bar and
whether it meets the target for its device:

- inference, CUDA: <= 1.5 ms per image, >= 4x eager fp32 in the same run, >= 99.5% agreement
  on every variant; CPU: >= 1.5x eager fp32, >= 99.5% agreement;
- training step, CUDA: >= 3x the eager fp32 step (CPU: no target; reported).

Examples::

    python benchmarks/report.py                                   # every result file
    python benchmarks/report.py benchmarks/results/*cuda*.json    # after a GPU session

Exit status 0; the verdicts are in the output ("met" / "NOT met").
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MIN_AGREEMENT = 0.995


@dataclass(frozen=True)
class Verdict:
    """The best qualifying row of one result file and how it compares with the targets."""

    file: str
    kind: str
    device: str
    row: str
    figures: str
    met: bool | None
    why: str

    def markdown(self) -> str:
        """One table row: file, device, best row, figures, verdict."""
        status = {True: "met", False: "NOT met", None: "no target"}[self.met]
        return (f"| `{self.file}` | {self.device} | {self.row} | {self.figures} | {status}"
                f"{': ' + self.why if self.why else ''} |")


def _cuda(payload: dict) -> bool:
    return str(payload.get("device", "")).startswith("cuda")


def inference_verdict(name: str, payload: dict) -> Verdict:
    """The ``auto`` row (what the app and the CLI use) if it keeps >= 99.5% agreement on
    every variant, else the fastest optimized row that does."""
    cuda = _cuda(payload)
    device = "CUDA" if cuda else "CPU"
    if payload.get("repeats", 0) < 3:
        return Verdict(name, "inference", device, "-", "agreement-only run (repeats < 3)",
                       None, "")
    rows = [r for r in payload["results"]  # emulations estimate agreement, do not run
            if r["backend"] != "eager" and not r["backend"].startswith("emulate")
            and min(r["agreement_min"].values()) >= MIN_AGREEMENT]
    if not rows:
        return Verdict(name, "inference", device, "-", "-", False,
                       f"no optimized row keeps {MIN_AGREEMENT:.1%} agreement")
    auto = [r for r in rows if r["backend"] == "auto"]
    best = auto[0] if auto else min(rows, key=lambda r: r["per_image_ms"])
    agree = min(best["agreement_min"].values())
    speedup = best["speedup_vs_eager"]
    figures = (f"{best['per_image_ms']:.2f} ms per image, {speedup:.2f}x eager (paired "
               f"{best['paired_speedup_median']:.2f}x), agreement >= {agree:.2%}")
    misses = []
    if cuda:
        if best["per_image_ms"] > 1.5:
            misses.append(f"{best['per_image_ms']:.2f} ms > 1.5 ms")
        if speedup < 4.0:
            misses.append(f"{speedup:.2f}x < 4x")
    elif speedup < 1.5:
        misses.append(f"{speedup:.2f}x < 1.5x")
    return Verdict(name, "inference", device, f"`{best['backend']}`", figures, not misses,
                   "; ".join(misses))


def train_verdict(name: str, payload: dict) -> Verdict:
    """The fastest variant whose first loss matches eager's within 5%."""
    cuda = _cuda(payload)
    rows = [r for r in payload["results"][1:] if r["first_loss_rel_diff"] <= 0.05]
    device = "CUDA" if cuda else "CPU"
    if not rows:
        return Verdict(name, "train step", device, "-", "-", False if cuda else None,
                       "no variant matches eager's first loss")
    best = max(rows, key=lambda r: r["speedup_vs_eager"])
    figures = (f"{best['median_ms']:.1f} ms per step, {best['speedup_vs_eager']:.2f}x eager "
               f"fp32 (paired {best['paired_speedup_median']:.2f}x)")
    if not cuda:
        return Verdict(name, "train step", device, best["variant"], figures, None, "")
    ok = best["speedup_vs_eager"] >= 3.0
    return Verdict(name, "train step", device, best["variant"], figures, ok,
                   "" if ok else f"{best['speedup_vs_eager']:.2f}x < 3x")


def verdict(path: Path) -> Verdict | None:
    """The verdict for one result file (None: not a runtime benchmark result)."""
    payload = json.loads(path.read_text())
    kind = payload.get("benchmark")
    if kind == "inference" and payload.get("results"):
        return inference_verdict(path.name, payload)
    if kind == "train_step" and payload.get("results"):
        return train_verdict(path.name, payload)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", type=Path, help="result files (default: all)")
    args = p.parse_args(argv)
    files = args.files or sorted(RESULTS.glob("*.json"))
    print("| results | device | best qualifying row | figures | target |")
    print("|---|---|---|---|---|")
    for path in files:
        v = verdict(path)
        if v is not None:
            print(v.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
