"""Entry point: arguments, and a window painted before torch is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import default_samples, parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_parse_args() -> None:
    args = parse_args(["a.png", "folder", "--model", "m.safetensors", "--device", "cpu"])
    assert args.paths == ["a.png", "folder"] and args.model == "m.safetensors"
    assert args.device == "cpu"
    assert parse_args([]).paths == []


def test_samples_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FCN_STUDIO_SAMPLES", str(tmp_path))
    assert default_samples() == tmp_path


def test_light_imports() -> None:
    code = ("import sys, app.main, app.shell.main_window; "
            "print(sorted(m for m in ('torch', 'cv2', 'core.inference') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_main_paints_before_torch_is_imported(tmp_path: Path) -> None:
    env = dict(os.environ, FCN_STUDIO_EXIT_AFTER_PAINT="1", QT_QPA_PLATFORM="offscreen",
               FCN_STUDIO_SETTINGS=str(tmp_path / "s.ini"))
    proc = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("first-paint"))
    assert line.endswith("torch=0")
