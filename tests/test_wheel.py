"""The built wheel carries the bundled resources and works installed outside the checkout.

Builds the wheel from a copy of the working tree (so that the checkout gets no ``build/``
folder, whose stale files setuptools would ship), with stray files planted in the copy,
installs it with ``pip --target`` into a temporary folder, and runs its ``fcn-studio-cli
predict`` from a folder outside the checkout on a sample bundled in the installed copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.checkpoints.checkpoint import read_info
from core.cli import main as cli_main
from core.paths import DEFAULT_MODEL, RESOURCES, SAMPLES

ROOT = Path(__file__).resolve().parents[1]

COPY_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".ci-venv", ".ci-refresh-venv", "build", "dist", "*.egg-info",
    "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis", "artifacts",
    "scratch", ".whl", ".gl",
)
"""What ``.gitignore`` ignores: not part of a clean checkout."""

STRAYS = (
    "core/notes.txt",  # not a module
    "core/scratch/helper.py",  # a folder without __init__.py (would be a namespace package)
    "tools/helper.py",  # a top-level folder that is no package of ours
    "resources/models/.tmp-1234.safetensors",  # a temporary file of an interrupted write
    "resources/samples/images/Thumbs.db",
    "resources/samples/images/scene_01.jpg.orig",
)
"""Files planted in the copy that must not reach the wheel."""

SAMPLE = "scene_01"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _expected_resources() -> set[str]:
    """The bundled files the wheel must hold, relative to the wheel's root."""
    expected = {"resources/__init__.py", "resources/models/default.safetensors",
                "resources/icons/fcn-studio.png", "resources/samples/class_names.txt"}
    for sub, pattern in (("images", "*.jpg"), ("masks", "*.png")):
        files = sorted((SAMPLES / sub).glob(pattern))
        assert files, f"no samples in {SAMPLES / sub}"
        expected |= {f"resources/samples/{sub}/{f.name}" for f in files}
    return expected


@pytest.mark.slow
def test_wheel_ships_resources_and_predicts_installed_outside_the_checkout(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORED)
    for stray in STRAYS:
        (src / stray).parent.mkdir(parents=True, exist_ok=True)
        (src / stray).write_text("stray\n")

    # Build: offline, with the setuptools of this environment.
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(dist), "."], cwd=src)
    (wheel,) = dist.glob("fcn_studio-*.whl")
    assert wheel.stat().st_size < 12 * 1024 * 1024  # the default model is most of it

    # Contents: core, app and the bundled data, nothing else.
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"core", "app", "resources", "fcn_studio-0.1.0.dist-info"}, tops
    resources = {n for n in names if n.startswith("resources/")}
    expected = _expected_resources()
    readmes = {"resources/models/README.md", "resources/samples/README.md"}
    assert expected <= resources <= expected | readmes, resources ^ expected
    code = {n for n in names if n.split("/")[0] in ("core", "app")}
    assert all(n.endswith(".py") for n in code), sorted(n for n in code if not n.endswith(".py"))
    assert not any("scratch" in n or "__pycache__" in n for n in names)
    tracked = {p.relative_to(ROOT).as_posix() for p in (ROOT / "core").rglob("*.py")}
    assert {n for n in code if n.startswith("core/")} >= {
        t for t in tracked if "__pycache__" not in t and "scratch" not in t}

    # Install outside the checkout; dependencies come from this environment.
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
          "--target", str(site), str(wheel)])
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FCN_STUDIO_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    probe = _run([sys.executable, "-c",
                  "import core, resources, core.paths as p; "
                  "print(core.__file__); print(resources.__file__); "
                  "print(p.default_model_path())"], cwd=cwd, env=env).stdout.split()
    for path in probe:
        assert Path(path).resolve().is_relative_to(site.resolve()), probe
    assert Path(probe[2]).is_file()

    # The installed entry point, on a sample bundled in the installed copy.
    cli = site / "bin" / "fcn-studio-cli"
    image = site / "resources" / "samples" / "images" / f"{SAMPLE}.jpg"
    out = tmp_path / "installed-out"
    _run([sys.executable, str(cli), "predict", str(image), "--out", str(out),
          "--device", "cpu", "--backend", "eager"], cwd=cwd, env=env)
    installed = np.asarray(Image.open(out / f"{SAMPLE}_8s.png"))

    # The same prediction from the checkout, in this process.
    assert RESOURCES.resolve().is_relative_to(ROOT)
    here = tmp_path / "checkout-out"
    assert cli_main(["predict", str(SAMPLES / "images" / f"{SAMPLE}.jpg"), "--out", str(here),
                     "--device", "cpu", "--backend", "eager"]) == 0
    in_tree = np.asarray(Image.open(here / f"{SAMPLE}_8s.png"))

    height, width = np.asarray(Image.open(image)).shape[:2]
    assert installed.shape == (height, width) and installed.dtype == np.uint8
    classes = len(read_info(DEFAULT_MODEL).class_names)
    assert installed.max() < classes and len(np.unique(installed)) >= 2
    assert np.mean(installed == in_tree) > 0.999
