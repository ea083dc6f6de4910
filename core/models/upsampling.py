"""How the FCN heads upsample: the bilinear kernel, and three strategies that give the same sums.

:meth:`core.models.fcn.FCN.heads` is written once; it asks an :class:`Upsampling` for each
deconvolution. The skip upsamplers (``upscore2``, ``upscore_pool4``) run through
:meth:`Upsampling.skip`; the final ones (``upscore``, ``upscore16``, ``upscore8``), which are
followed by the crop to the image, through :meth:`Upsampling.final`, so a strategy may compute
only the rows and columns that survive the crop.

* :class:`Upsampling` (the default): the model's ``ConvTranspose2d`` layers, then the crop.
* :class:`GroupedUpsampling`: a deconvolution whose weight is zero off the class diagonal (the
  bilinear ones, and the skip ones until training changes them) maps class c to class c only;
  a dense deconvolution still multiplies every class by every class (21 times the work for 21
  classes, and ONNX Runtime's ConvTranspose is slow besides). It runs such layers as grouped,
  per-class deconvolutions. The inference runtimes and the ONNX export use it.
* :class:`CroppedUpsampling`: a fixed bilinear upsampler is separable, so the final output is
  ``U_rows @ scores @ U_cols.T`` over only the rows and columns kept by the crop, or any subset
  of them (``pick``). On a CPU many times faster than the deconvolution over the padded map;
  fine-tuning on cached features uses it.
* :class:`DeferredUpsampling`: no final upsampling at all: the heads return the fused score
  maps at stride 32, 16 and 8. A prediction keeps those and a :class:`RegionUpsampler` per
  variant, which gives the full-resolution scores of any region (and any subsampling of it)
  exactly, from the same taps as the cropped matrices (:func:`upsampling_taps`).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from core.models.fcn import FCN

__all__ = [
    "FINAL_UPSAMPLERS",
    "MATRIX_BYTES",
    "SKIP_UPSAMPLERS",
    "CroppedUpsampling",
    "DeferredUpsampling",
    "GroupedUpsampling",
    "RegionUpsampler",
    "Upsampling",
    "bilinear_1d",
    "bilinear_kernel",
    "crop",
    "diagonal_weight",
    "upsampling_matrix",
    "upsampling_taps",
]

FINAL_UPSAMPLERS: dict[str, str] = {"32s": "upscore", "16s": "upscore16", "8s": "upscore8"}
"""Each variant's final upsampler (followed by the crop to the image)."""
SKIP_UPSAMPLERS: tuple[str, ...] = ("upscore2", "upscore_pool4")
"""The upsamplers inside the skip fusion (learned in the paper)."""

Pick = tuple[torch.Tensor, torch.Tensor]
ROW_CHUNK = 64
"""A region's rows are upsampled this many at a time (each a product over few map rows)."""


def bilinear_1d(kernel_size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 1-D bilinear interpolation filter of a deconvolution of ``kernel_size``."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    return (1 - (og - center).abs() / factor).to(dtype)


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Deconvolution weight that upsamples each channel bilinearly (class c -> class c)."""
    f = bilinear_1d(kernel_size, torch.float64)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = (f[:, None] * f[None, :]).float()
    return weight


def crop(t: torch.Tensor, offset: int, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """``t[..., offset : offset + H, offset : offset + W]`` for ``size = (H, W)``.

    Sizes are not converted to int, so a traced export (ONNX) keeps height and width dynamic.

    Raises:
        RuntimeError: ``t`` is too small (not checked while tracing).
    """
    h, w = size[0], size[1]
    if not torch.jit.is_tracing() and (t.shape[-2] < offset + h or t.shape[-1] < offset + w):
        raise RuntimeError(
            f"score map {tuple(t.shape[-2:])} too small to crop {h}x{w} at offset {offset}"
        )
    return t[..., offset : offset + h, offset : offset + w]


def upsampling_taps(f1d: torch.Tensor, stride: int, n_in: int,
                    positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs and weights of a 1-D deconvolution (filter ``f1d``, ``stride``) at outputs.

    Output ``o`` of the deconvolution of an ``n_in``-long input is
    ``sum_t weight[o, t] * input[index[o, t]]``: the inputs ``i`` with
    ``0 <= o - stride * i < len(f1d)``, at most ``ceil(len(f1d) / stride)`` of them. Inputs
    outside ``0..n_in-1`` get weight 0 (their index is clamped).

    Returns:
        ``(index, weight)``, each ``(len(positions), taps)``; ``weight`` in ``f1d``'s dtype.
    """
    k = f1d.numel()
    taps = -(-k // stride)
    o = positions.to(f1d.device, torch.long)[:, None]
    first = torch.div(o - k + stride, stride, rounding_mode="floor")  # ceil((o - k + 1) / s)
    index = first + torch.arange(taps, device=f1d.device)[None, :]
    d = o - stride * index
    inside = (d >= 0) & (d < k) & (index >= 0) & (index < n_in)
    weight = torch.where(inside, f1d[d.clamp(0, k - 1)], torch.zeros((), dtype=f1d.dtype,
                                                                      device=f1d.device))
    return index.clamp(0, max(0, n_in - 1)), weight


def upsampling_matrix(f1d: torch.Tensor, stride: int, n_in: int,
                      positions: torch.Tensor) -> torch.Tensor:
    """``(len(positions), n_in)``: the rows of a 1-D deconvolution's matrix at ``positions``
    (the dense form of :func:`upsampling_taps`)."""
    index, weight = upsampling_taps(f1d, stride, n_in, positions)
    m = torch.zeros(index.shape[0], max(1, n_in), dtype=f1d.dtype, device=f1d.device)
    return m.scatter_add_(1, index, weight)[:, :n_in]


def diagonal_weight(layer: nn.ConvTranspose2d) -> torch.Tensor | None:
    """``(C, 1, k, k)``: the per-channel kernels of a deconvolution whose weight is zero
    off the class diagonal, or None when it mixes channels (or has a bias or groups)."""
    w = layer.weight
    if layer.groups != 1 or layer.bias is not None or w.shape[0] != w.shape[1]:
        return None
    c = w.shape[0]
    eye = torch.eye(c, dtype=torch.bool, device=w.device)
    with torch.no_grad():
        if bool(w[~eye].any()):
            return None
        return w[torch.arange(c), torch.arange(c)].unsqueeze(1).detach().clone()


class Upsampling(nn.Module):
    """The model's own deconvolutions, then the crop (the reference strategy)."""

    def skip(self, model: FCN, name: str, x: torch.Tensor) -> torch.Tensor:
        """Skip upsampler ``name`` applied to ``x``."""
        return getattr(model, name)(x)

    def final(self, model: FCN, variant: str, x: torch.Tensor,
              size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """``variant``'s final upsampler applied to ``x``, cropped to ``size``."""
        return crop(getattr(model, FINAL_UPSAMPLERS[variant])(x), model.offsets[variant], size)


class GroupedUpsampling(Upsampling):
    """Diagonal deconvolutions as grouped, per-class ones (the same sums; see the module doc).

    The per-class kernels are taken when the object is made: make a new one after the
    upsamplers' weights change. A module, so ``.to()`` moves the kernels and a traced export
    keeps them as constants.
    """

    def __init__(self, model: FCN) -> None:
        super().__init__()
        self.grouped: list[str] = []
        for name in (*FINAL_UPSAMPLERS.values(), *SKIP_UPSAMPLERS):
            w = diagonal_weight(getattr(model, name))
            if w is not None:
                self.register_buffer(f"{name}_diag", w, persistent=False)
                self.grouped.append(name)

    def _up(self, model: FCN, name: str, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(model, name)
        if name not in self.grouped:
            return layer(x)
        w = getattr(self, f"{name}_diag")
        return F.conv_transpose2d(x, w.to(x.dtype), stride=layer.stride, groups=w.shape[0])

    def skip(self, model: FCN, name: str, x: torch.Tensor) -> torch.Tensor:
        return self._up(model, name, x)

    def final(self, model: FCN, variant: str, x: torch.Tensor,
              size: tuple[int, int] | torch.Size) -> torch.Tensor:
        return crop(self._up(model, FINAL_UPSAMPLERS[variant], x), model.offsets[variant], size)


MATRIX_BYTES = 16 << 20
"""Bytes of upsampling matrices a :class:`CroppedUpsampling` keeps, least recently used
dropped first. One is ``size x n_in`` floats per axis length and variant: a square image
needs three (57 KB at 224 px, 240 KB at 500 px), so 16 MiB hold those of about 70 sizes of
500 px or 290 of 224 px."""


class CroppedUpsampling(Upsampling):
    """Fixed bilinear final upsamplers as cropped matrix products (see the module doc).

    Mathematically identical to the deconvolution and crop (to float rounding).
    :meth:`picking` gives a view that computes only some output rows and columns. The
    matrices are cached per size, within :data:`MATRIX_BYTES`.

    Raises:
        ValueError: (construction) a final upsampler is trainable or not bilinear.
    """

    def __init__(self, model: FCN) -> None:
        super().__init__()
        self.kernels: dict[str, tuple[torch.Tensor, int]] = {}
        for name in FINAL_UPSAMPLERS.values():
            layer = getattr(model, name)
            k = layer.kernel_size[0]
            w = layer.weight.detach()
            if layer.weight.requires_grad or not torch.equal(
                w.cpu(), bilinear_kernel(layer.in_channels, k)
            ):
                raise ValueError(f"{name} is not a fixed bilinear upsampler")
            self.kernels[name] = (bilinear_1d(k).to(w.device), layer.stride[0])
        self.matrices: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.pick: Pick | None = None

    @classmethod
    def try_make(cls, model: FCN) -> CroppedUpsampling | None:
        """The cropped strategy, or None when the final upsamplers are not fixed bilinear."""
        try:
            return cls(model)
        except ValueError:
            return None

    def picking(self, pick: Pick | None) -> CroppedUpsampling:
        """A view (sharing the cached matrices) computing only rows ``pick[0]`` and columns
        ``pick[1]`` of each final output (None: all of them)."""
        view = copy.copy(self)
        view.pick = pick
        return view

    def _matrix(self, name: str, n_in: int, offset: int, size: int) -> torch.Tensor:
        key = (name, n_in, offset, size)
        m = self.matrices.get(key)
        if m is not None:
            self.matrices.move_to_end(key)
        else:
            f1d, stride = self.kernels[name]
            if size and offset + size - 1 - (n_in - 1) * stride >= f1d.numel():
                raise RuntimeError(f"score map too small to crop {size} at offset {offset}")
            o = torch.arange(offset, offset + size, device=f1d.device)
            m = upsampling_matrix(f1d, stride, n_in, o)
            self.matrices[key] = m
            while len(self.matrices) > 1 and sum(
                    t.nbytes for t in self.matrices.values()) > MATRIX_BYTES:
                self.matrices.popitem(last=False)  # the least recently used
        return m

    def final(self, model: FCN, variant: str, x: torch.Tensor,
              size: tuple[int, int] | torch.Size) -> torch.Tensor:
        name, off = FINAL_UPSAMPLERS[variant], model.offsets[variant]
        rows = self._matrix(name, x.shape[-2], off, int(size[0]))
        cols = self._matrix(name, x.shape[-1], off, int(size[1]))
        if self.pick is not None:
            rows, cols = rows[self.pick[0]], cols[self.pick[1]]
        return rows @ x @ cols.T


class DeferredUpsampling(GroupedUpsampling):
    """No final upsampling: ``final`` returns the fused score map itself (stride 32, 16, 8).

    The skip upsamplers run as in :class:`GroupedUpsampling`. A prediction keeps these maps
    and reconstructs any region's full-resolution scores with a :class:`RegionUpsampler`.
    """

    def final(self, model: FCN, variant: str, x: torch.Tensor,
              size: tuple[int, int] | torch.Size) -> torch.Tensor:
        return x


class RegionUpsampler:
    """One variant's final upsampling and crop, for any region of the image, exactly.

    Image pixel ``u`` (row or column) is output ``u + offset`` of the final deconvolution
    (``stride``, kernel size ``2 * stride`` in the reference nets) of the fused score map.

    Attributes:
        stride: The deconvolution's stride (32, 16 or 8).
        offset: The crop offset (19, 27 or 31 in the reference nets).
        kernel: The 1-D bilinear filter ``(k,)`` (separable, per class) or, for an upsampler
            that was learned (not bilinear), its full weight ``(C, C, k, k)``.
    """

    def __init__(self, stride: int, offset: int, kernel: torch.Tensor) -> None:
        self.stride = int(stride)
        self.offset = int(offset)
        self.kernel = kernel.detach().float().cpu()

    @property
    def learned(self) -> bool:
        """Whether the kernel is a learned (full) weight rather than the bilinear filter."""
        return self.kernel.dim() == 4

    @classmethod
    def from_model(cls, model: FCN, variant: str) -> RegionUpsampler:
        """``variant``'s final upsampler of ``model`` (bilinear filter when it is one)."""
        layer = getattr(model, FINAL_UPSAMPLERS[variant])
        k, w = layer.kernel_size[0], layer.weight.detach().cpu()
        if torch.equal(w, bilinear_kernel(layer.in_channels, k)):
            return cls(layer.stride[0], model.offsets[variant], bilinear_1d(k))
        return cls(layer.stride[0], model.offsets[variant], w)

    @staticmethod
    def identity() -> RegionUpsampler:
        """Stride 1, no offset: the stored map is already at full resolution."""
        return RegionUpsampler(1, 0, torch.ones(1))

    def coarse_extent(self, start: int, stop: int) -> tuple[int, int]:
        """The fused-map positions ``[lo, hi)`` that image pixels ``start..stop-1`` read."""
        k = self.kernel.shape[-1]
        lo = -(-(start + self.offset - k + 1) // self.stride)
        return lo, (stop - 1 + self.offset) // self.stride + 1

    def __call__(self, coarse: torch.Tensor, rows: range, cols: range) -> torch.Tensor:
        """Full-resolution scores ``(C, len(rows), len(cols))`` at image ``rows`` x ``cols``.

        Args:
            coarse: The fused score map ``(C, h, w)`` (float32, CPU).
            rows, cols: Image coordinates (any step).
        """
        if not rows or not cols:
            return coarse.new_zeros(coarse.shape[0], len(rows), len(cols))
        if self.learned:
            return self._learned(coarse, rows, cols)
        # the columns first, on the map rows the region reads, then the rows: in chunks, each
        # a small dense matrix product over the few map rows it reads
        lo, hi = self.coarse_extent(rows.start, rows.start + (len(rows) - 1) * rows.step + 1)
        lo, hi = max(0, lo), min(coarse.shape[1], hi)
        x = self._columns(coarse[:, lo:hi], cols)
        o = torch.arange(rows.start, rows.stop, rows.step) + self.offset
        f1d = self.kernel.to(x.dtype)
        if len(o) <= ROW_CHUNK:
            return torch.matmul(upsampling_matrix(f1d, self.stride, hi, o)[:, lo:], x)
        out = x.new_empty(x.shape[0], len(o), x.shape[2])
        for i in range(0, len(o), ROW_CHUNK):
            part = o[i:i + ROW_CHUNK]
            a = max(lo, -(-(int(part[0]) - f1d.numel() + 1) // self.stride))
            b = min(hi, int(part[-1]) // self.stride + 1)
            m = upsampling_matrix(f1d, self.stride, b, part)[:, a:]
            torch.matmul(m, x[:, a - lo:b - lo], out=out[:, i:i + len(part)])
        return out

    def _columns(self, x: torch.Tensor, positions: range) -> torch.Tensor:
        """``x`` ``(C, h, w)`` upsampled along its columns at image ``positions``."""
        f1d, s = self.kernel.to(x.dtype), self.stride
        o = torch.arange(positions.start, positions.stop, positions.step) + self.offset
        if positions.step == 1 and len(o) >= 2 * s and s > 1:
            # one period of outputs: when every phase reads the same relative inputs, the
            # outputs are sums of shifted copies of the map times per-phase weights
            ref = f1d.numel() + s  # a block far from the map's edges
            index, weight = upsampling_taps(f1d, s, 2 * ref + 2, torch.arange(s) + s * ref)
            rel = index - ref
            if bool((rel == rel[:1]).all()):
                return self._periodic(x, int(o[0]), int(o[-1]) + 1, rel[0], weight)
        index, weight = upsampling_taps(f1d, s, x.shape[2], o)
        acc = x.index_select(2, index[:, 0]) * weight[:, 0]
        for t in range(1, index.shape[1]):
            acc.addcmul_(x.index_select(2, index[:, t]), weight[:, t])
        return acc

    def _periodic(self, x: torch.Tensor, o0: int, o1: int, rel: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
        """Output columns ``o0..o1-1``: block ``i`` (columns ``s*i .. s*i+s-1``) is
        ``sum_t x[..., i + rel[t]] * weight[:, t]``, columns outside the map being zero."""
        s, n_in = self.stride, x.shape[2]
        b0, b1 = o0 // s, -(-o1 // s)
        before = max(0, -(b0 + int(rel.min())))
        after = max(0, b1 - 1 + int(rel.max()) - (n_in - 1))
        if before or after:
            x = torch.nn.functional.pad(x, (before, after))
        acc: torch.Tensor | None = None
        for t in range(rel.numel()):
            src = x.narrow(2, b0 + int(rel[t]) + before, b1 - b0).unsqueeze(3)
            acc = src * weight[:, t] if acc is None else acc.addcmul_(src, weight[:, t])
        assert acc is not None
        out = acc.reshape(x.shape[0], x.shape[1], (b1 - b0) * s)
        return out.narrow(2, o0 - s * b0, o1 - o0)

    def _learned(self, coarse: torch.Tensor, rows: range, cols: range) -> torch.Tensor:
        """The learned deconvolution over the window of the map the region reads."""
        windows = []
        for axis, r in ((1, rows), (2, cols)):
            lo, hi = self.coarse_extent(r.start, r.start + (len(r) - 1) * r.step + 1)
            lo, hi = max(0, lo), min(coarse.shape[axis], hi)
            windows.append((lo, hi))
        (y0, y1), (x0, x1) = windows
        window = coarse[None, :, y0:y1, x0:x1]
        up = F.conv_transpose2d(window, self.kernel.to(coarse.dtype), stride=self.stride)[0]
        ys = torch.arange(rows.start, rows.stop, rows.step) + self.offset - self.stride * y0
        xs = torch.arange(cols.start, cols.stop, cols.step) + self.offset - self.stride * x0
        return up.index_select(1, ys).index_select(2, xs)
