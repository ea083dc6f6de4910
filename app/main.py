"""Entry point of the ``fcn-studio`` GUI: parse arguments, show the window, then load the model.

Only PySide6 and light modules are imported before the window is painted; torch and the
model are loaded by the worker thread afterwards (the status bar says "Loading model…").

Set ``FCN_STUDIO_EXIT_AFTER_PAINT=1`` to print ``first-paint <unix time> torch=<0|1>`` at the
first paint and quit (used by ``benchmarks/app_startup.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from core.paths import resource_path

EXIT_AFTER_PAINT = "FCN_STUDIO_EXIT_AFTER_PAINT"
SAMPLES_ENV = "FCN_STUDIO_SAMPLES"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments: paths to open, ``--model``, ``--device``."""
    parser = argparse.ArgumentParser(
        prog="fcn-studio",
        description="See what FCN-32s, 16s and 8s see: open images, segment, compare.",
    )
    parser.add_argument("paths", nargs="*", help="image files or folders to open "
                        "(default: the bundled samples)")
    parser.add_argument("--model", metavar="CKPT", help="checkpoint to load "
                        "(default: the bundled model, or $FCN_STUDIO_MODEL)")
    parser.add_argument("--device", metavar="DEV", help="auto, cpu or cuda:N")
    return parser.parse_args(argv)


def default_samples() -> Path:
    """The bundled samples folder (``$FCN_STUDIO_SAMPLES`` overrides it)."""
    env = os.environ.get(SAMPLES_ENV)
    if env:
        return Path(env)
    return resource_path("samples")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns its exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.services.settings import APPLICATION, ORGANIZATION, Settings
    from app.shell.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(QIcon(str(resource_path("icons", "fcn-studio.png"))))
    settings = Settings()
    if args.device:
        settings.device = args.device
    window = MainWindow(settings)
    if os.environ.get(EXIT_AFTER_PAINT):

        def report() -> None:
            torch_loaded = int("torch" in sys.modules)
            print(f"first-paint {time.time():.6f} torch={torch_loaded}", flush=True)
            QTimer.singleShot(0, app.quit)  # not from inside the paint event

        window.firstPainted.connect(report)
        window.show()
        return app.exec()
    paths = args.paths
    if not paths and default_samples().is_dir():
        paths = [str(default_samples())]
    window.start(paths, args.model)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
