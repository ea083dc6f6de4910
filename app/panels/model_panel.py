"""Model info panel: classes, architecture, preprocessing, training and metrics of a checkpoint."""

from __future__ import annotations

import html
from dataclasses import asdict, is_dataclass
from typing import Any

from PySide6.QtWidgets import QTextBrowser, QWidget

from app.state.display import ViewerState


def _rows(d: dict[str, Any]) -> str:
    return "".join(
        f"<tr><td><i>{html.escape(str(k))}</i></td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in d.items()
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def model_html(info: Any, path: str = "", device: str = "", runtime: str = "",
               runtime_notes: tuple[str, ...] = ()) -> str:
    """An HTML description of a ModelInfo (the checkpoint's metadata) and of the inference
    runtime it runs on (``runtime``, with the reasons speed-ups were left out)."""
    if info is None:
        return "<p>No model loaded.</p>"
    config = asdict(info.config) if is_dataclass(info.config) else dict(info.config)
    pre = asdict(info.preprocessing) if is_dataclass(info.preprocessing) else {}
    title = html.escape(info.name or "FCN-VGG16")
    parts = [f"<h3>{title}</h3>"]
    if info.description:
        parts.append(f"<p>{html.escape(info.description)}</p>")
    general = {"file": path, "device": device, "id": info.id, "parent": info.parent or "none",
               "created": info.created}
    parts.append(f"<table>{_rows({k: v for k, v in general.items() if v})}</table>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in runtime_notes)
    shown = html.escape(runtime) if runtime else "<i>known after the next segmentation</i>"
    parts.append(f"<h4>Runtime</h4><p>{shown}</p>" + (f"<ul>{notes}</ul>" if notes else ""))
    swatches = "".join(
        f"<tr><td style='background-color: rgb{tuple(rgb)}'>&nbsp;&nbsp;&nbsp;&nbsp;</td>"
        f"<td>{i}</td><td>{html.escape(name)}</td></tr>"
        for i, (name, rgb) in enumerate(zip(info.class_names, info.colors, strict=False))
    )
    parts.append(f"<h4>Classes ({len(info.class_names)})</h4><table>{swatches}</table>")
    parts.append(f"<h4>Architecture</h4><table>{_rows(config)}</table>")
    parts.append(f"<h4>Preprocessing</h4><table>{_rows(pre)}</table>")
    if info.training:
        parts.append(f"<h4>Training</h4><table>{_rows(info.training)}</table>")
    latest = info.latest_metrics() if hasattr(info, "latest_metrics") else None
    if latest:
        parts.append(
            f"<h4>Metrics (latest of {len(info.metrics)})</h4><table>{_rows(latest)}</table>"
        )
    return "".join(parts)


class ModelPanel(QTextBrowser):
    """Shows the current model's metadata."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``'s model state."""
        super().__init__(parent)
        self.state = state
        self.setOpenExternalLinks(False)
        state.models.changed.connect(self.refresh)
        state.models.runtimeChanged.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        """Redraw from the model state: metadata, checkpoint, device and runtime."""
        m = self.state.models
        path = str(m.loaded.path) if m.loaded is not None else ""
        self.setHtml(model_html(m.info, path, m.device, m.runtime, m.runtime_notes))
