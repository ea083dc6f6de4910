"""PyTorch backends: eager (the reference), the fast torch path, and the eager-fallback guard.

Every backend maps a normalized float ``(N, 3, H, W)`` batch on its device to
``{variant: (N, C, H, W) scores}`` (any float dtype; the caller upcasts).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from core.models.fcn import VARIANTS
from core.runtime.border import BorderReuse, NotApplicable
from core.runtime.heads import FastHeads
from core.runtime.options import LRUCache, bucket_shape, parse_bool

__all__ = [
    "Backend",
    "CostGate",
    "EagerBackend",
    "GuardedBackend",
    "TorchBackend",
    "TorchOptions",
    "Upgrade",
    "WeightsWatch",
    "agreement",
    "bf16_supported",
    "cuda_flags",
    "error_line",
    "is_oom",
    "same_device",
]

log = logging.getLogger(__name__)

Scores = dict[str, torch.Tensor]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error (CUDA, MPS or the CPU allocator)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same ("cuda" and "cuda:0" are, when 0 is current)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (
        b.index if b.index is not None else current)


class WeightsWatch:
    """Notices when a model's weights change (replaced, moved, or modified in place)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.signature = self._now()

    def _now(self) -> tuple:
        return tuple(
            (id(t), t.data_ptr(), t._version, t.dtype, t.device)
            for t in [*self.model.parameters(), *self.model.buffers()]
        )

    def changed(self) -> bool:
        """True (once) when the weights changed since the last call or construction."""
        now = self._now()
        if now != self.signature:
            self.signature = now
            return True
        return False


class Backend:
    """Runs an FCN: ``backend(x, variants)`` returns ``{variant: scores}``.

    Attributes:
        name: The backend's name ("eager", "torch", "onnxruntime"...).
        device: Where its inputs must be.
        notes: Why requested features were left out (fallback reasons), for logs and UIs.
    """

    name = "backend"

    def __init__(self, model: nn.Module, device: torch.device | str) -> None:
        self.model = model
        self.device = torch.device(device)
        self.notes: list[str] = []

    @property
    def description(self) -> str:
        """A one-line summary, e.g. "torch (channels_last, bfloat16, CUDA graphs)"."""
        return self.name

    def accepts(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can run here (right device, model in eval mode)."""
        return same_device(x.device, self.device) and not self.model.training

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        raise NotImplementedError

    def release(self) -> None:
        """Drop caches (compiled graphs, sessions, records); they are rebuilt on demand."""

    def note(self, message: str) -> None:
        """Record and log why a feature was left out."""
        self.notes.append(message)
        log.info("%s backend: %s", self.name, message)


class EagerBackend(Backend):
    """The model as it is: the reference every other backend is measured against."""

    name = "eager"

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        with torch.inference_mode():
            return self.model(x, variants=tuple(variants))

    def accepts(self, x: torch.Tensor) -> bool:
        return True


# --------------------------------------------------------------------------- torch


@dataclass(frozen=True)
class TorchOptions:
    """What the torch backend does.

    Attributes:
        channels_last: NHWC activations and weights (the fast layout of oneDNN and cuDNN).
        dtype: "float32", "bfloat16" or "float16": the trunk's weights and activations (a
            copy of its weights is kept in that dtype); the heads always run in float32.
        border_reuse: Skip the padded border's image-independent work
            (:mod:`core.runtime.border`); exact.
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
        if out.bucket < 0 or out.capacity < 1:
            raise ValueError("bucket must be >= 0 and capacity >= 1")
        return out


_CAPTURE_LOCK = threading.Lock()
"""One CUDA graph capture at a time in the process (inference and fine-tuning threads)."""


class _Graphed:
    """One CUDA graph of ``fn`` at one input shape; replays copy the outputs out.

    Captured on the input's device with the backend's own capture stream (torch's default
    capture stream belongs to whichever GPU was current at the first capture), in
    ``thread_local`` error mode so that CUDA work in other threads (a fine-tune job) is not
    disturbed, and one capture at a time.
    """

    def __init__(self, fn: Callable[[torch.Tensor], Scores], x: torch.Tensor,
                 pool: object, keep: object, stream: torch.cuda.Stream) -> None:
        self.keep = keep  # tensors the graph reads (border records) must outlive it
        self.device = x.device
        with torch.cuda.device(x.device), _CAPTURE_LOCK:
            self.inp = x.clone()
            current = torch.cuda.current_stream(x.device)
            stream.wait_stream(current)
            with torch.cuda.stream(stream):
                for _ in range(2):
                    fn(self.inp)
            current.wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool, stream=stream,
                                  capture_error_mode="thread_local"):
                self.out = fn(self.inp)

    def __call__(self, x: torch.Tensor) -> Scores:
        with torch.cuda.device(self.device):
            self.inp.copy_(x, non_blocking=True)
            self.graph.replay()
            return {k: v.clone() for k, v in self.out.items()}


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA: compute capability 8.0 or later;
    ``torch.cuda.is_bf16_supported`` also says yes where bf16 is only emulated)."""
    if device.type != "cuda":
        return True
    return torch.cuda.get_device_capability(device) >= (8, 0)


_FLAGS_LOCK = threading.Lock()
_flags_users = 0
_flags_saved: tuple[bool, bool] = (False, True)


@contextlib.contextmanager
def cuda_flags(benchmark: bool | None, tf32: bool | None) -> Iterator[None]:
    """Set ``cudnn.benchmark`` / cuDNN TF32 for a block (None: leave as is).

    The flags are process-wide and several threads run models (inference, a batch, a
    fine-tune), so the settings in force before the first of overlapping blocks are restored
    when the last one ends; meanwhile the latest block's values hold.
    """
    global _flags_users, _flags_saved
    cudnn = torch.backends.cudnn
    with _FLAGS_LOCK:
        if _flags_users == 0:
            _flags_saved = (cudnn.benchmark, cudnn.allow_tf32)
        _flags_users += 1
        if benchmark is not None:
            cudnn.benchmark = benchmark
        if tf32 is not None:
            cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        with _FLAGS_LOCK:
            _flags_users -= 1
            if _flags_users == 0:
                cudnn.benchmark, cudnn.allow_tf32 = _flags_saved


class TorchBackend(Backend):
    """The fast PyTorch path (see :class:`TorchOptions`).

    With ``dtype`` float32 the model's own weights are used (converted to channels_last in
    place when asked: harmless for other users of the model); other dtypes keep a converted
    copy. Weight changes (training, loading, moving) are noticed and the copy, records and
    graphs rebuilt.
    """

    name = "torch"

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
        self._fast_heads: FastHeads | None = None
        self._border: BorderReuse | None = None
        self._compiled: Callable[[torch.Tensor], Scores] | None = None
        self._graphs: LRUCache[tuple, _Graphed] = LRUCache(opts.capacity)
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
        self._fast_heads = FastHeads(net)
        self._graphs.clear()
        self._seen.clear()
        self._no_graph.clear()
        self._border = None
        if opts.border_reuse:
            try:
                self._border = BorderReuse(net, capacity=opts.capacity)
            except NotApplicable as exc:
                self.options = replace(self.options, border_reuse=False)
                self.note(f"border reuse not applicable: {exc}")
        self._compiled = None
        if opts.compile:
            self._compiled = torch.compile(
                self._dense, mode=None if opts.compile_mode == "default" else opts.compile_mode,
                backend=opts.compile_backend, dynamic=False,
            )

    def release(self) -> None:
        self._graphs.clear()
        self._no_graph.clear()
        if self._border is not None:
            self._border.clear()

    def _heads(self, feats: dict[str, torch.Tensor], size: torch.Size) -> Scores:
        """The score layers and deconvolutions, in fp32 (they cost under 0.5% of the work,
        and reduced-precision logits would flip the argmax of near ties); diagonal
        upsamplers per class (:mod:`core.runtime.heads`)."""
        assert self._fast_heads is not None
        out = self._fast_heads({k: v.float() for k, v in feats.items()}, size[0], size[1])
        return dict(zip(VARIANTS, out, strict=True))

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
                self._graphs.put(key, _Graphed(fn, x, self._pool, keep, self._stream))
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


# --------------------------------------------------------------------------- gates


class CostGate(Backend):
    """Runs calls that cost less than ``min_macs`` eagerly, the others on ``fast``.

    For small calls an optimized path saves little in absolute terms and costs a one-time
    setup (an ONNX export, a proxy pass) that would dominate; the model as it is also gives
    bit-identical results there.

    Args:
        fast: The optimized backend.
        macs: ``macs(height, width)``: multiply-accumulates of one image of that size.
        min_macs: The threshold, per call (batch included).
    """

    def __init__(self, fast: Backend, macs: Callable[[int, int], float], min_macs: float) -> None:
        super().__init__(fast.model, fast.device)
        self.fast = fast
        self.eager = EagerBackend(fast.model, fast.device)
        self.macs = macs
        self.min_macs = float(min_macs)
        self._sizes: LRUCache[tuple[int, int], float] = LRUCache(64)

    @property
    def notes(self) -> list[str]:  # type: ignore[override]
        return self.fast.notes

    @notes.setter
    def notes(self, value: list[str]) -> None:
        pass  # the fast backend's notes are the gate's

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.fast.name

    @property
    def description(self) -> str:
        return f"{self.fast.description}; eager below {self.min_macs / 1e9:g} GMAC per call"

    def accepts(self, x: torch.Tensor) -> bool:
        return self.fast.accepts(x)

    def release(self) -> None:
        self.fast.release()

    def uses_fast(self, x: torch.Tensor) -> bool:
        """Whether ``x`` goes to the fast backend."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        cost = self._sizes.get((h, w))
        if cost is None:
            cost = float(self.macs(h, w))
            self._sizes.put((h, w), cost)
        return cost * x.shape[0] >= self.min_macs

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        if self.uses_fast(x):
            return self.fast(x, variants)
        return self.eager(x, variants)


class Upgrade(Backend):
    """Runs ``first`` until ``better`` is ready, then ``better``.

    After the first call, ``prepare()`` (an ONNX export and session build, seconds for a
    full-size model) runs in a background thread, so that no call waits for it. If it
    fails, or ``better`` fails later, the calls stay on ``first`` and :attr:`notes` says
    why.
    """

    def __init__(self, first: Backend, better: Backend, prepare: Callable[[], None]) -> None:
        super().__init__(first.model, first.device)
        self.first = first
        self.better = better
        self._prepare = prepare
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None
        self._own: list[str] = []

    @property
    def notes(self) -> list[str]:  # type: ignore[override]
        return [*self.first.notes, *self.better.notes, *self._own]

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self._own = list(value)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.active.name

    @property
    def active(self) -> Backend:
        """The backend calls go to now."""
        return self.better if self._ready.is_set() and not self._failed else self.first

    @property
    def description(self) -> str:
        if self._failed:
            return self.first.description
        if self._ready.is_set():
            return self.better.description
        return f"{self.first.description}, then {self.better.description} once built"

    def accepts(self, x: torch.Tensor) -> bool:
        return self.first.accepts(x)

    def release(self) -> None:
        self.first.release()
        if self._ready.is_set():
            self.better.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background preparation; True when ``better`` is in use."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._ready.is_set() and not self._failed

    def _build(self) -> None:
        try:
            self._prepare()
        except Exception as exc:  # an export or runtime problem: keep the first backend
            self._failed = f"{self.better.name} not prepared ({error_line(exc)})"
            self._own.append(f"{self._failed}: staying on {self.first.name}")
            log.warning("%s: staying on %s", self._failed, self.first.name)
        finally:
            self._ready.set()

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        if self._ready.is_set() and not self._failed:
            try:
                return self.better(x, variants)
            except Exception as exc:
                if is_oom(exc):
                    raise
                self._failed = f"{self.better.name} failed ({error_line(exc)})"
                self._own.append(f"{self._failed}: back to {self.first.name}")
                log.warning("%s: back to %s", self._failed, self.first.name)
        out = self.first(x, variants)
        if self._thread is None:
            self._thread = threading.Thread(target=self._build, name="fcn-backend-prepare",
                                            daemon=True)
            self._thread.start()
        return out


# --------------------------------------------------------------------------- guard


class GuardedBackend(Backend):
    """A backend that falls back to eager, with a logged reason, when it cannot run.

    Inputs it does not accept (another device after an out-of-memory move to the CPU, a
    model in training mode) run eagerly for that call. An error other than out-of-memory
    switches to eager for good and records why in :attr:`notes`; out-of-memory errors
    propagate (the caller retries smaller) after the primary's caches are released.
    """

    def __init__(self, primary: Backend, notes: Sequence[str] = ()) -> None:
        self.model = primary.model
        self.device = primary.device
        self.primary: Backend | None = primary
        self.eager = EagerBackend(primary.model, primary.device)
        self._first = primary
        self._before = list(notes)
        self._after: list[str] = []

    @property
    def notes(self) -> list[str]:  # type: ignore[override]
        """Why features were left out: at selection, by the backend, after failures."""
        return [*self._before, *self._first.notes, *self._after]

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.primary.name if self.primary is not None else "eager"

    @property
    def description(self) -> str:
        return self.primary.description if self.primary is not None else "eager"

    @property
    def active(self) -> Backend:
        """The backend now in use."""
        return self.primary if self.primary is not None else self.eager

    def accepts(self, x: torch.Tensor) -> bool:
        return True

    def release(self) -> None:
        if self.primary is not None:
            self.primary.release()

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        primary = self.primary
        if primary is None or not primary.accepts(x):
            return self.eager(x, variants)
        try:
            return primary(x, variants)
        except Exception as exc:
            if is_oom(exc):
                primary.release()
                raise
            self.primary = None
            primary.release()
            message = f"{primary.description} failed ({error_line(exc)}); using eager"
            self._after.append(message)
            log.warning("%s", message)
            return self.eager(x, variants)


def error_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line (two when the first ends with ":", as torch.compile's
    "backend='inductor' raised:" does), for notes and logs."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines and lines[0].endswith(":") else "".join(lines[:1])
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def agreement(a: Scores, b: Scores) -> dict[str, float]:
    """Per variant, the fraction of pixels whose argmax class is the same in ``a`` and ``b``."""
    return {
        v: float((a[v].float().argmax(1) == b[v].float().to(a[v].device).argmax(1))
                 .float().mean())
        for v in a if v in b
    }
