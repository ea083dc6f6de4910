"""ONNX Runtime backends (CPU): fp32, and int8 gated by measured agreement.

The model is exported once (the TorchScript exporter, dynamic batch, height and width; the
three heads in one graph, bilinear upsamplers per class: the same export as
:mod:`core.checkpoints.onnx`) and run by an ONNX Runtime session with every graph
optimization on and as many intra-op threads as torch uses. The export happens on the first
call and again whenever the model's weights change.

int8: static quantization (QDQ, per-channel int8 weights, uint8 activations, min/max
calibration) of the trunk's convolutions; the score layers and deconvolutions stay fp32.
The quantized model is used only if, on validation images, at least ``min_agreement`` of
the pixels of every variant get the fp32 model's class; otherwise the fp32 session is used
and the reason is recorded in :attr:`~core.inference.runtime.backend.Backend.notes`.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.checkpoints.onnx import INPUT, OnnxFCN, output_name, trace_onnx
from core.inference.runtime.backend import Backend, Scores, WeightsWatch, agreement
from core.inference.runtime.border import BorderReuse, NotApplicable
from core.inference.runtime.options import LRUCache, MiB
from core.variants import VARIANTS

__all__ = [
    "OnnxRuntimeBackend",
    "export_onnx_bytes",
    "export_sparse_onnx_bytes",
    "ort_available",
    "session_options",
]

log = logging.getLogger(__name__)

def ort_available() -> str | None:
    """None when onnxruntime can be imported, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"onnxruntime not installed ({type(exc).__name__}: {exc})"
    return None


def export_onnx_bytes(model: nn.Module, opset: int = 17, example_size: int = 64) -> bytes:
    """The FCN (eval mode, float32, on the CPU) as an ONNX model with dynamic N, H, W
    (:func:`core.checkpoints.onnx.trace_onnx`: input ``input``, outputs ``score_<variant>``)."""
    buf = io.BytesIO()
    trace_onnx(OnnxFCN(model), (torch.zeros(1, 3, example_size, example_size),), buf,
               opset=opset)
    return buf.getvalue()


def export_sparse_onnx_bytes(model: nn.Module, border: BorderReuse, opset: int = 17,
                             example_size: int = 64) -> tuple[bytes, tuple]:
    """The FCN with border reuse as ONNX: inputs ``input`` and ``ring0 ...`` (each plan's
    :meth:`~core.inference.runtime.border.Plan.ring_tensors`), all sizes dynamic.

    Returns:
        The model and the plan structure it was traced with (every uniform plan has it).
    """
    example = torch.zeros(2, 3, example_size, example_size)  # batch 2: rings broadcast
    plan = border.plan(example, uniform=True)
    rings = plan.ring_tensors()
    names = [f"ring{k}" for k in range(len(rings))]

    def features(x: torch.Tensor, *rings: torch.Tensor) -> dict[str, torch.Tensor]:
        return border.sparse(x, plan, rings=list(rings))

    buf = io.BytesIO()
    trace_onnx(OnnxFCN(model, features=features), (example, *rings), buf,
               input_names=[INPUT, *names], opset=opset,
               dynamic_axes={n: {2: f"{n}_h", 3: f"{n}_w"} for n in names})
    return buf.getvalue(), plan.structure()


def session_options(threads: int | None = None, spin: bool = False) -> object:
    """ONNX Runtime session options: all graph optimizations, ``threads`` intra-op threads;
    ``spin``: let idle pool threads busy-wait for the next run (faster back-to-back runs, but
    they take CPU from everything else, torch included, for a while after each run).

    No memory patterns: ONNX Runtime would keep one per input shape for the session's life
    (about 15 KB each with the bundled model: 4 MiB more after 280 sizes), and here they
    sped nothing up (paired runs without/with them: 0.92-1.02 of the time at 224 and 500 px).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_mem_pattern = False
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a list of input feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._feeds = list(feeds)
        self._it = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


HEAD_LAYERS: tuple[str, ...] = ("score_fr", "score_pool4", "score_pool3")
"""Layers int8 quantization always leaves in fp32 (they make the logits; tiny cost)."""


def _conv_nodes_of(onnx_bytes: bytes, layers: Sequence[str]) -> list[str]:
    """Names of the Conv nodes whose weight belongs to one of ``layers`` (module names)."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    wanted = {f"{layer}.weight" for layer in layers}
    return [n.name for n in graph.node if n.op_type == "Conv" and len(n.input) > 1
            and any(n.input[1].endswith(w) for w in wanted)]


def quantize_int8(onnx_bytes: bytes, feeds: Sequence[dict[str, np.ndarray]],
                  keep_fp32: Sequence[str] = (), method: str = "minmax") -> bytes:
    """Static int8 quantization of the trunk: QDQ, per-channel int8 weights, uint8
    activations calibrated on ``feeds`` by ``method`` ("minmax", "entropy", "percentile");
    the score layers and the layers named in ``keep_fp32`` stay fp32."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"calibration method {method!r}; use {', '.join(methods)}")
    with tempfile.TemporaryDirectory(prefix="fcn-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx_bytes)
        quantize_static(
            str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "MaxPool"],
            nodes_to_exclude=_conv_nodes_of(onnx_bytes, (*HEAD_LAYERS, *keep_fp32)),
            calibrate_method=methods[method],
        )
        return dst.read_bytes()


class OnnxRuntimeBackend(Backend):
    """Runs the exported FCN in ONNX Runtime on the CPU (see the module docstring).

    With ``reuse`` (the default), the exported graph is the border-reuse pass
    (:mod:`core.inference.runtime.border`), its rings computed by torch from small proxies
    and fed as inputs, so one graph serves every input size.

    Args:
        model: The FCN (on the CPU).
        threads: Intra-op threads (None: ``torch.get_num_threads()``).
        reuse: Skip the padded border's image-independent work.
        int8: Quantize (gated by agreement, see the module docstring).
        calibration: Normalized float ``(N, 3, H, W)`` batches for int8 calibration (None:
            the bundled sample images).
        validation: Batches on which int8 must agree with fp32 (None: the calibration ones).
        min_agreement: The least per-variant pixel agreement int8 must reach.
        preprocessing: Maps uint8 images to the network's input, for the default
            calibration images (None: ImageNet's).
        capacity: Input sizes whose rings are kept.
        cache_mb: MiB of rings kept, besides ``capacity`` (the arrays share their memory
            with the border records' plans, bounded the same way; see
            :data:`~core.inference.runtime.border.PLAN_BYTES`).
        keep_fp32: Trunk layers int8 leaves in fp32 besides the score layers ("conv1_1"...).
        calibrate: int8 activation calibration: "minmax", "entropy" or "percentile".
        spin: Let ORT's idle threads busy-wait between runs (see :func:`session_options`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        threads: int | None = None,
        reuse: bool = True,
        int8: bool = False,
        calibration: Sequence[torch.Tensor] | Callable[[], Sequence[torch.Tensor]] | None = None,
        validation: Sequence[torch.Tensor] | None = None,
        min_agreement: float = 0.995,
        preprocessing: Callable[[torch.Tensor], torch.Tensor] | None = None,
        capacity: int = 8,
        cache_mb: int = 64,
        keep_fp32: Sequence[str] = (),
        calibrate: str = "minmax",
        spin: bool = False,
    ) -> None:
        super().__init__(model, "cpu")
        self.threads = threads
        self.reuse = reuse
        self.int8 = int8
        self.calibration = calibration
        self.validation = validation
        self.min_agreement = float(min_agreement)
        self.preprocessing = preprocessing
        self.keep_fp32 = tuple(keep_fp32)
        self.calibrate = calibrate
        self.spin = spin
        self.int8_agreement: dict[str, float] | None = None
        self._session: object | None = None
        self._border: BorderReuse | None = None
        self._structure: tuple | None = None
        self.cache_mb = int(cache_mb)
        self._rings: LRUCache[tuple, list[np.ndarray]] = LRUCache(
            capacity, max_bytes=self.cache_mb * MiB)
        self._watch = WeightsWatch(model)

    kind = "onnxruntime"

    @property
    def name(self) -> str:
        return "onnxruntime-int8" if self.int8 else "onnxruntime"

    @property
    def description(self) -> str:
        threads = self.threads or torch.get_num_threads()
        kind = "int8 (QDQ, per-channel)" if self.int8 else "fp32"
        reuse = ", border reuse" if self.reuse else ""
        return f"onnxruntime {kind}{reuse}, ORT_ENABLE_ALL, {threads} threads"

    def caches(self) -> dict[str, LRUCache]:
        out: dict[str, LRUCache] = {"rings": self._rings}
        if self._border is not None:
            out.update({f"border.{k}": v for k, v in self._border.caches().items()})
        return out

    def release(self) -> None:
        self._rings.clear()
        if self._border is not None:
            self._border.clear()

    def prepare(self) -> None:
        """Export and build the session now (otherwise done by the first call)."""
        if self._watch.changed():
            self._session = None
        if self._session is None:
            self._rings.clear()
            self._session = self._build()

    def _export(self) -> bytes:
        if self.reuse:
            try:
                self._border = BorderReuse(self.model, max_bytes=self.cache_mb * MiB)
            except NotApplicable as exc:
                self.reuse = False
                self.note(f"border reuse not applicable: {exc}")
        if self.reuse and self._border is not None:
            data, self._structure = export_sparse_onnx_bytes(self.model, self._border)
            return data
        return export_onnx_bytes(self.model)

    def _feeds(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """The session's inputs for a normalized CPU batch."""
        feeds = {INPUT: x.detach().float().contiguous().numpy()}
        if self._border is None:
            return feeds
        key = tuple(x.shape[-2:])
        rings = self._rings.get(key)
        if rings is None:
            with torch.inference_mode():
                plan = self._border.plan(x[:1].float().contiguous(), uniform=True)
            if plan.structure() != self._structure:  # pragma: no cover - a bug if it happens
                raise RuntimeError("border plan structure differs from the exported graph's")
            rings = [t.contiguous().numpy() for t in plan.ring_tensors()]
            self._rings.put(key, rings)
        feeds.update({f"ring{k}": r for k, r in enumerate(rings)})
        return feeds

    def _build(self) -> object:
        import onnxruntime as ort

        onnx_bytes = self._export()
        opts = session_options(self.threads, self.spin)
        fp32 = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        if not self.int8:
            return fp32
        calib = self.calibration() if callable(self.calibration) else self.calibration
        if not calib:
            calib = default_calibration(self.preprocessing)
        feeds = [self._feeds(c.cpu()) for c in calib]
        int8 = ort.InferenceSession(
            quantize_int8(onnx_bytes, feeds, self.keep_fp32, self.calibrate), opts,
            providers=["CPUExecutionProvider"])
        checks = [self._feeds(c.cpu()) for c in self.validation] if self.validation else feeds
        worst: dict[str, float] = {}
        for feed in checks:
            for v, a in agreement(_run(int8, feed), _run(fp32, feed)).items():
                worst[v] = min(worst.get(v, 1.0), a)
        self.int8_agreement = worst
        low = min(worst.values())
        if low < self.min_agreement:
            self.int8 = False
            self.note(f"int8 agreement {low:.2%} < {self.min_agreement:.1%} on {len(checks)} "
                      "validation images: using fp32")
            return fp32
        log.info("onnxruntime int8: agreement with fp32 %s", worst)
        return int8

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        self.prepare()
        out = _run(self._session, self._feeds(x.cpu()))
        wanted = set(variants)
        return {v: s for v, s in out.items() if v in wanted}


def _run(session: object, feeds: dict[str, np.ndarray]) -> Scores:
    outs = session.run([output_name(v) for v in VARIANTS], feeds)  # type: ignore[attr-defined]
    return {v: torch.from_numpy(o) for v, o in zip(VARIANTS, outs, strict=True)}


def default_calibration(
    preprocessing: Callable[[torch.Tensor], torch.Tensor] | None = None, limit: int = 6
) -> list[torch.Tensor]:
    """The bundled sample images (at most ``limit``), normalized, for int8 calibration.

    Raises:
        FileNotFoundError: No sample images are bundled.
    """
    from core.data.imageio import read_image
    from core.models.preprocess import IMAGENET
    from core.paths import SAMPLES

    paths = sorted((SAMPLES / "images").glob("*.*"))[:limit]
    if not paths:
        raise FileNotFoundError(f"no calibration images in {SAMPLES / 'images'}")
    pre = preprocessing or IMAGENET
    return [pre(torch.from_numpy(read_image(p)).permute(2, 0, 1)[None]) for p in paths]
