"""core/ never imports Qt: importing every core module leaves PySide6 out of sys.modules."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_qt() -> None:
    code = (
        "import pkgutil, importlib, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    if m.name != 'core.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in "
        "('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6'))\n"
        "print(len([k for k in sys.modules if k.startswith('core.')]), bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) >= 15  # every core module was imported
    assert out[1:] == ["[]"]


def test_importing_core_does_not_import_torch() -> None:
    code = ("import sys, core, core.errors, core.paths, core.data.voc, core.data.scenes, "
            "core.checkpoints.convert, core.outputs.files, core.cli, core.variants, "
            "core.imagefiles; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
