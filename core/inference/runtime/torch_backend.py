"""The fast PyTorch path: channels_last, reduced precision, border reuse, compile, CUDA graphs.

It computes what the eager model computes (:class:`~core.inference.runtime.backend.EagerBackend`)
with the options of :class:`TorchOptions`, chosen per device.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from core.inference.memory import is_oom
from core.inference.runtime.backend import Backend, Scores, WeightsWatch, error_line
from core.inference.runtime.border import BorderReuse, NotApplicable
from core.inference.runtime.cuda import Graphed, bf16_supported, cuda_flags
from core.inference.runtime.options import LRUCache, MiB, bucket_shape, parse_bool
from core.models.upsampling import GroupedUpsampling
from core.variants import VARIANTS

__all__ = ["TorchBackend", "TorchOptions"]

log = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}


@dataclass(frozen=True)
class TorchOptions:
    """What the torch backend does.

    Attributes:
        channels_last: NHWC activations and weights (the fast layout of oneDNN and cuDNN).
        dtype: "float32", "bfloat16" or "float16": the trunk's weights and activations (a
            copy of its weights is kept in that dtype); the heads always run in float32.
        border_reuse: Skip the padded border's image-independent work
            (:mod:`core.inference.runtime.border`); exact.
        bucket: Pad H and W up to a multiple of this (0: exact sizes) so that cuDNN tuning
            and CUDA graphs are made once per bucket. The padding (the mean color, as the
            network's own padding) changes scores near the bottom and right edges slightly
            (500 to 512: 99.6-99.8% of the pixels keep their class).
        cudnn_benchmark: Let cuDNN time its algorithms for a shape, on the shape's second
            call (with the CUDA graph capture): one-off image sizes cost no autotuning, sizes
            that come back are tuned once. Set during this backend's calls only; the rest of
            the process keeps its own setting.
        compile: ``torch.compile`` the model (then without border reuse).
        compile_mode: Its mode ("default", "max-autotune-no-cudagraphs"...).
        compile_backend: Its backend ("inductor"; "eager"/"aot_eager" for tests).
        cuda_graphs: Capture one CUDA graph per input shape (on its second call) and
            replay it.
        capacity: Input shapes remembered (records, graphs), least recently used dropped.
        cache_mb: MiB of per-shape border records (rings) kept, besides ``capacity``
            (:data:`~core.inference.runtime.border.PLAN_BYTES`; blank bands get half).
        graph_mb: MiB of CUDA graphs kept, counted by their static input and output
            buffers, besides ``capacity``: a graph's outputs are fp32 scores of all three
            variants (at 500x500 and 21 classes 63 MB, at a 1024-px tile 264 MB), so 1024
            keep three graphs of tiles or fifteen of 500-px images. The activations of the
            captures live in one shared pool (as large as the largest capture) and are
            not counted.
    """

    channels_last: bool = False
    dtype: str = "float32"
    border_reuse: bool = True
    bucket: int = 0
    cudnn_benchmark: bool = False
    compile: bool = False
    compile_mode: str = "default"
    compile_backend: str = "inductor"
    cuda_graphs: bool = False
    capacity: int = 8
    cache_mb: int = 64
    graph_mb: int = 1024

    @classmethod
    def for_device(cls, device: torch.device | str) -> TorchOptions:
        """The defaults for a device type (CUDA: fp16, NHWC, cudnn.benchmark, CUDA graphs).

        fp16 rather than bf16 on CUDA: the same tensor-core rate on current GPUs and three
        more mantissa bits (FCN-8s at 500x500, emulated on the CPU: 99.81-99.88% argmax
        agreement with fp32, bf16 98.33-99.08%); scores that overflow switch to bf16.
        No buckets by default: padding 500 to 512 alone costs 0.2-0.4% agreement, and
        results would depend on the padding. Instead a shape is tuned by cuDNN, and its CUDA
        graph captured, on its second call: images of one-off sizes run untuned and
        uncaptured, repeated sizes (a folder of same-size photos, the tiles of large images,
        a benchmark) get both once (``bucket=64`` trades exactness for fewer shapes).
        """
        if torch.device(device).type == "cuda":
            return cls(channels_last=True, dtype="float16", cudnn_benchmark=True,
                       cuda_graphs=True)
        return cls()

    def with_options(self, options: dict[str, str]) -> TorchOptions:
        """A copy with ``KEY=VALUE`` strings applied (e.g. ``{"compile": "1"}``).

        Raises:
            ValueError: Unknown keys or bad values.
        """
        known = {f.name: f for f in fields(self)}
        aliases = {"cl": "channels_last", "graphs": "cuda_graphs", "reuse": "border_reuse",
                   "benchmark": "cudnn_benchmark", "mode": "compile_mode"}
        changes: dict[str, object] = {}
        for key, value in options.items():
            key = aliases.get(key, key)
            if key not in known:
                raise ValueError(f"Unknown torch backend option {key!r}; known: "
                                 f"{', '.join(sorted(known))}")
            default = getattr(self, key)
            if isinstance(default, bool):
                changes[key] = parse_bool(value, key)
            elif isinstance(default, int):
                try:
                    changes[key] = int(value)
                except ValueError:
                    raise ValueError(f"{key}={value!r} is not an integer") from None
            else:
                changes[key] = value
        out = replace(self, **changes)
        if out.dtype not in _DTYPES:
            raise ValueError(f"dtype={out.dtype!r}; use float32, bfloat16 or float16")
        if out.bucket < 0 or min(out.capacity, out.cache_mb, out.graph_mb) < 1:
            raise ValueError("bucket must be >= 0 and capacity, cache_mb, graph_mb >= 1")
        return out


class TorchBackend(Backend):
    """The fast PyTorch path (see :class:`TorchOptions`).

    With ``dtype`` float32 the model's own weights are used (converted to channels_last in
    place when asked: harmless for other users of the model); other dtypes keep a converted
    copy. Weight changes (training, loading, moving) are noticed and the copy, records and
    graphs rebuilt.
    """

    kind = "torch"

    def __init__(self, model: nn.Module, device: torch.device | str,
                 options: TorchOptions | None = None) -> None:
        super().__init__(model, device)
        opts = options or TorchOptions.for_device(self.device)
        cuda = self.device.type == "cuda"
        if opts.cuda_graphs and not cuda:
            opts = replace(opts, cuda_graphs=False)
            self.note("CUDA graphs need a CUDA device: not used")
        if opts.cudnn_benchmark and not cuda:
            opts = replace(opts, cudnn_benchmark=False)
        if cuda and opts.dtype in ("bfloat16", "bf16") and not bf16_supported(self.device):
            opts = replace(opts, dtype="float16")
            self.note("bf16 not supported on this GPU: float16 instead")
        if opts.compile and opts.border_reuse:
            opts = replace(opts, border_reuse=False)
            self.note("border reuse is not combined with torch.compile: compiled dense model")
        self.options = opts
        self.dtype = _DTYPES[opts.dtype]
        self.fmt = torch.channels_last if opts.channels_last else torch.contiguous_format
        self._net: nn.Module = model
        self._upsampling: GroupedUpsampling | None = None
        self._border: BorderReuse | None = None
        self._compiled: Callable[[torch.Tensor], Scores] | None = None
        self._graphs: LRUCache[tuple, Graphed] = LRUCache(opts.capacity,
                                                          max_bytes=opts.graph_mb * MiB)
        self._seen: LRUCache[tuple, bool] = LRUCache(4 * opts.capacity)
        self._no_graph: LRUCache[tuple, bool] = LRUCache(4 * opts.capacity)
        self._pool: object = None
        self._stream: torch.cuda.Stream | None = None
        self._build()
        self._watch = WeightsWatch(model)

    @property
    def description(self) -> str:
        o = self.options
        parts = [o.dtype if o.dtype != "float32" else "fp32",
                 "channels_last" if o.channels_last else "NCHW"]
        if o.border_reuse:
            parts.append("border reuse")
        if o.bucket:
            parts.append(f"buckets of {o.bucket}")
        if o.cudnn_benchmark:
            parts.append("cudnn.benchmark")
        if o.compile:
            parts.append(f"torch.compile({o.compile_backend}, {o.compile_mode})")
        if o.cuda_graphs:
            parts.append("CUDA graphs")
        return f"torch ({', '.join(parts)})"

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        """(Re)make the working model, the border records and the compiled function."""
        model, opts = self.model, self.options
        if self.dtype == torch.float32:
            if opts.channels_last:
                model.to(memory_format=torch.channels_last)
            net = model
        else:
            trunk = {id(p) for name in getattr(model, "_trunk", ())
                     for p in getattr(model, name).parameters()}
            memo: dict[int, object] = {}
            for p in model.parameters():  # the trunk in self.dtype; the heads stay fp32
                t = p.detach().to(self.device, self.dtype if id(p) in trunk else torch.float32)
                if t.dim() == 4:
                    t = t.contiguous(memory_format=self.fmt)
                memo[id(p)] = nn.Parameter(t, requires_grad=False)
            net = copy.deepcopy(model, memo).eval()
        self._net = net
        self._upsampling = GroupedUpsampling(net)
        self._graphs.clear()
        self._seen.clear()
        self._no_graph.clear()
        self._border = None
        if opts.border_reuse:
            try:
                self._border = BorderReuse(net, capacity=opts.capacity,
                                           max_bytes=opts.cache_mb * MiB)
            except NotApplicable as exc:
                self.options = replace(self.options, border_reuse=False)
                self.note(f"border reuse not applicable: {exc}")
        self._compiled = None
        if opts.compile:
            self._compiled = torch.compile(
                self._dense, mode=None if opts.compile_mode == "default" else opts.compile_mode,
                backend=opts.compile_backend, dynamic=False,
            )

    def caches(self) -> dict[str, LRUCache]:
        out: dict[str, LRUCache] = {"graphs": self._graphs, "seen": self._seen,
                                    "no_graph": self._no_graph}
        if self._border is not None:
            out.update({f"border.{k}": v for k, v in self._border.caches().items()})
        return out

    def release(self) -> None:
        self._graphs.clear()
        self._no_graph.clear()
        if self._border is not None:
            self._border.clear()

    def _heads(self, feats: dict[str, torch.Tensor], size: torch.Size) -> Scores:
        """The score layers and deconvolutions, in fp32 (they cost under 0.5% of the work,
        and reduced-precision logits would flip the argmax of near ties); diagonal
        upsamplers per class (:class:`~core.models.upsampling.GroupedUpsampling`)."""
        return self._net.heads({k: v.float() for k, v in feats.items()}, size, VARIANTS,
                               self._upsampling)

    def _dense(self, x: torch.Tensor) -> Scores:
        return self._heads(self._net.features(x), x.shape[-2:])

    def _reuse(self, x: torch.Tensor) -> Scores:
        assert self._border is not None
        return self._heads(self._border.features(x), x.shape[-2:])

    def _function(self) -> Callable[[torch.Tensor], Scores]:
        if self._compiled is not None:
            return self._compiled
        return self._reuse if self._border is not None else self._dense

    # ------------------------------------------------------------------ calling

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        wanted = tuple(variants)
        if self._watch.changed():
            log.debug("torch backend: weights changed, rebuilding")
            self._build()
            self._watch = WeightsWatch(self.model)
        h, w = x.shape[-2:]
        hb, wb = bucket_shape(h, w, self.options.bucket)
        repeat = self.sighted((x.shape[0], x.shape[1], hb, wb))
        with torch.inference_mode(), self._flags(repeat):
            if (hb, wb) != (h, w):
                x = F.pad(x, (0, wb - w, 0, hb - h))
            out = self._run(x.to(self.dtype).contiguous(memory_format=self.fmt), repeat)
            if self.dtype == torch.float16 and not _all_finite(out.values()):
                self.note("fp16 overflowed (non-finite scores): bf16 from now on")
                self.options = replace(self.options, dtype="bfloat16")
                self.dtype = torch.bfloat16
                self._build()
                out = self._run(x.to(self.dtype).contiguous(memory_format=self.fmt), repeat)
            return {v: out[v][..., :h, :w] for v in VARIANTS if v in wanted}

    def sighted(self, key: tuple) -> bool:
        """Whether a call of this shape came before (and record this one)."""
        if self._seen.get(key) is not None:
            return True
        self._seen.put(key, True)
        return False

    def flag_values(self, repeat: bool) -> tuple[bool | None, bool | None]:
        """``(cudnn.benchmark, cuDNN TF32)`` for a call (None: as the process has it).

        cuDNN autotunes a shape on its second call only (one-off image sizes cost no
        tuning). With a reduced-precision trunk the fp32 heads are true fp32: cuDNN would
        otherwise round fp32 convolutions to TF32 (a 10-bit mantissa). Both are read when
        kernels are chosen, so captured graphs keep them.
        """
        return (self.options.cudnn_benchmark and repeat,
                None if self.dtype == torch.float32 else False)

    def _flags(self, repeat: bool) -> contextlib.AbstractContextManager:
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return cuda_flags(*self.flag_values(repeat))

    def _run(self, x: torch.Tensor, repeat: bool) -> Scores:
        key = tuple(x.shape)
        if self.options.cuda_graphs:
            graphed = self._graphs.get(key)
            if graphed is not None:
                return graphed(x)
        fn = self._function()
        try:
            out = fn(x)  # the first pass at a size records the border, compiles
        except Exception as exc:
            if is_oom(exc) or self._compiled is None:
                raise
            self._compiled = None
            self.options = replace(self.options, compile=False)
            self.note(f"torch.compile failed: {error_line(exc)}; running uncompiled")
            fn = self._function()
            out = fn(x)
        if self.options.cuda_graphs and repeat and key not in self._no_graph:
            # captured on the shape's second call: most images in an app come at sizes of
            # their own, and a capture costs two extra passes and a device-wide flush
            try:
                if self._pool is None:
                    self._pool = torch.cuda.graph_pool_handle()
                    self._stream = torch.cuda.Stream(device=self.device)
                keep = self._border.plan(x) if self._border is not None else None
                self._graphs.put(key, Graphed(fn, x, self._pool, keep, self._stream))
            except Exception as exc:
                if not is_oom(exc):
                    self.options = replace(self.options, cuda_graphs=False)
                    self._graphs.clear()
                    self.note(f"CUDA graph capture failed: {error_line(exc)}; not using graphs")
                else:  # this size ran without a graph: keep its result, capture no more of it
                    self._no_graph.put(key, True)
                    self.note(f"no CUDA graph for {key}: out of memory while capturing")
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
        return out


def _all_finite(scores: Iterable[torch.Tensor]) -> bool:
    """Whether every score is finite (one device sync for all of them)."""
    return bool(torch.stack([torch.isfinite(s).all() for s in scores]).all())
