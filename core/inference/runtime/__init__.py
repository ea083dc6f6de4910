"""Inference runtimes: the eager reference and faster paths that compute the same outputs.

:func:`select_backend` picks a :class:`Backend` for a model and device; calling it on a
normalized float ``(N, 3, H, W)`` batch returns ``{variant: (N, C, H, W) scores}``.

* ``eager``: the model as it is (the reference).
* ``torch``: channels_last, bf16/fp16, skipping the padded border's image-independent work
  (exact), size buckets with cuDNN autotuning, ``torch.compile``, CUDA graphs
  (:class:`~core.inference.runtime.backends.TorchOptions`; defaults per device).
* ``onnxruntime`` / ``onnxruntime-int8``: the exported model in ONNX Runtime (CPU); int8
  only where it agrees with fp32 on validation images.
* ``auto`` (default): CUDA: ``torch`` with its CUDA defaults (fp16, channels_last, border
  reuse; cudnn.benchmark and a CUDA graph for each shape that comes back).
  CPU: ``torch`` fp32 with channels_last and border reuse, and for full-width models
  (4096-channel fc6/fc7) ``onnxruntime`` with border reuse once its session has been built
  in the background after the first call (the fastest correct paths measured here, see
  docs/benchmarks.md); calls under ``min_gmac`` (0.25) GMAC run eagerly. MPS: eager.

``FCN_STUDIO_BACKEND`` (e.g. ``eager``, ``torch:compile=1``) overrides ``auto``. Whatever
cannot be used falls back, and the reason is logged and kept in ``Backend.notes``.
"""

from core.inference.memory import is_oom
from core.inference.runtime import heap
from core.inference.runtime.backend import Backend, EagerBackend, agreement
from core.inference.runtime.border import BorderReuse, NotApplicable, reached_macs
from core.inference.runtime.options import (
    BACKENDS,
    ENV_VAR,
    BackendSpec,
    LRUCache,
    bucket_shape,
    parse_backend,
)
from core.inference.runtime.select import (
    AUTO_MIN_GMAC,
    AUTO_ORT_FROM_CHANNELS,
    model_macs,
    select_backend,
)
from core.inference.runtime.torch_backend import TorchBackend, TorchOptions
from core.inference.runtime.wrappers import CostGate, GuardedBackend, Upgrade

heap.configure()  # before the first convolution: oneDNN reads its cache bound only once

__all__ = [
    "AUTO_MIN_GMAC",
    "AUTO_ORT_FROM_CHANNELS",
    "BACKENDS",
    "ENV_VAR",
    "Backend",
    "BackendSpec",
    "BorderReuse",
    "CostGate",
    "EagerBackend",
    "GuardedBackend",
    "LRUCache",
    "NotApplicable",
    "TorchBackend",
    "TorchOptions",
    "Upgrade",
    "agreement",
    "bucket_shape",
    "is_oom",
    "model_macs",
    "parse_backend",
    "reached_macs",
    "select_backend",
]
