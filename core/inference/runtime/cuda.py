"""CUDA specifics of the torch backend: captured graphs, bf16 support, the cuDNN flags.

Only the torch backend uses them; every function is safe to import without a GPU.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch

from core.inference.runtime.backend import Scores
from core.inference.runtime.options import nbytes

__all__ = ["Graphed", "bf16_supported", "cuda_flags"]


_CAPTURE_LOCK = threading.Lock()
"""One CUDA graph capture at a time in the process (inference and fine-tuning threads)."""


class Graphed:
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

    @property
    def nbytes(self) -> int:
        """Bytes of its static input and outputs and the records it keeps alive."""
        return nbytes([self.inp, self.out, self.keep])

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
