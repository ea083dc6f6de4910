"""Runtime memory: caches bounded by bytes, byte counting, heap trimming, oneDNN's bound."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from core.inference.runtime import EagerBackend, LRUCache, TorchBackend, TorchOptions
from core.inference.runtime import heap as heap_module
from core.inference.runtime.border_rings import shared_caches
from core.inference.runtime.options import MiB, nbytes
from core.models import VARIANTS, fcn_vgg16
from core.models.fcn import FCN
from core.models.upsampling import CroppedUpsampling

SHAPES = [(40 + 7 * k, 36 + 11 * k % 53) for k in range(24)]  # 24 distinct sizes


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> FCN:
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.0625).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-zero biases: the rings are not all zero
            if p.requires_grad:  # the fixed bilinear upsamplers stay as they are
                p.add_(torch.randn_like(p) * 0.05)
    return model


def within_budget(cache: LRUCache) -> bool:
    """The cache's own count and an independent recount both keep its bounds."""
    recount = sum(nbytes(cache.get(k)) for k in cache.keys())
    return (cache.max_bytes is None or (cache.nbytes <= cache.max_bytes
                                        and recount <= cache.max_bytes)) and (
        cache.capacity is None or len(cache) <= cache.capacity)


# --------------------------------------------------------------------------- LRU by bytes


def test_lru_by_bytes_evicts_the_least_recently_used_first() -> None:
    evicted: list[tuple[str, int]] = []
    cache: LRUCache[str, np.ndarray] = LRUCache(
        None, on_evict=lambda k, v: evicted.append((k, v.nbytes)), max_bytes=1000)
    for key in "abc":
        cache.put(key, np.zeros(50))  # 400 bytes each: "a" goes when "c" comes
    assert cache.keys() == ["b", "c"] and cache.nbytes == 800 and evicted == [("a", 400)]
    assert cache.get("b") is not None  # now "c" is the least recent
    cache.put("d", np.zeros(25))  # 200 bytes: 1000 in all, nothing goes
    assert cache.keys() == ["c", "b", "d"] and cache.nbytes == 1000
    cache.put("e", np.zeros(75))  # 600 bytes: "c", then "b" go
    assert [k for k, _ in evicted] == ["a", "c", "b"]
    assert cache.keys() == ["d", "e"] and cache.nbytes == 800
    assert cache.stats() == {"entries": 2, "bytes": 800, "capacity": None, "max_bytes": 1000,
                             "hits": 1, "misses": 0, "evictions": 3}


def test_lru_by_bytes_with_a_count_a_replacement_and_clear() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, torch.Tensor] = LRUCache(
        2, on_evict=lambda k, v: evicted.append(k), max_bytes=4096)
    cache.put("a", torch.zeros(10))
    cache.put("b", torch.zeros(10))
    cache.put("c", torch.zeros(10))  # the count binds first
    assert evicted == ["a"] and cache.nbytes == 80
    cache.put("b", torch.zeros(1000))  # replaced under its own key: no callback
    assert evicted == ["a"] and cache.nbytes == 4040 and cache.keys() == ["c", "b"]
    cache.put("c", torch.zeros(20))  # 4080 bytes: still within
    assert cache.keys() == ["b", "c"] and cache.nbytes == 4080
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and evicted == ["a"]


def test_an_item_larger_than_the_budget_is_not_kept() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, torch.Tensor] = LRUCache(
        8, on_evict=lambda k, v: evicted.append(k), max_bytes=1000)
    cache.put("small", torch.zeros(10))
    big = torch.zeros(1000)
    cache.put("big", big)
    assert evicted == ["big"] and cache.keys() == ["small"] and cache.nbytes == 40
    assert cache.get_or_create("big", lambda: big) is big  # returned, still not kept
    assert "big" not in cache and evicted == ["big", "big"]
    cache.put("small", big)  # replacing a kept value by an oversized one drops both
    assert len(cache) == 0 and cache.nbytes == 0


def test_a_lower_byte_bound_evicts_at_once() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, torch.Tensor] = LRUCache(
        8, on_evict=lambda k, v: evicted.append(k), max_bytes=1000)
    for key in "abc":
        cache.put(key, torch.zeros(50))  # 200 bytes each
    cache.max_bytes = 450
    assert evicted == ["a"] and cache.keys() == ["b", "c"] and cache.nbytes == 400
    cache.max_bytes = None  # entries only
    cache.put("d", torch.zeros(1000))
    assert cache.keys() == ["b", "c", "d"] and cache.nbytes == 4400
    with pytest.raises(ValueError):
        cache.max_bytes = 0


def test_lru_cache_bounds_and_a_custom_size() -> None:
    with pytest.raises(ValueError):
        LRUCache(None)
    with pytest.raises(ValueError):
        LRUCache(4, max_bytes=0)
    cache: LRUCache[str, str] = LRUCache(None, max_bytes=10, size=len)
    cache.put("a", "12345")
    cache.put("b", "123456")
    assert cache.keys() == ["b"] and cache.nbytes == 6


def test_nbytes_counts_each_buffer_once() -> None:
    t = torch.zeros(10, 10)
    assert nbytes(t) == 400 and nbytes(t[2:]) == 400  # a view holds its whole storage
    assert nbytes([t, t[2:], t.t(), t.expand(3, 10, 10)]) == 400
    assert nbytes([t, t.numpy()]) == 400  # the array shares the tensor's memory
    a = np.zeros(25)
    assert nbytes({"x": a, "y": a[5:], "z": (a.reshape(5, 5),)}) == 200
    assert nbytes([torch.zeros(0), None, 3, "text", b"abcd"]) == 4

    @dataclasses.dataclass
    class Record:
        rings: list[torch.Tensor]
        other: object

    class Graph:
        nbytes = 1234

    assert nbytes(Record([t, torch.zeros(4)], Graph())) == 400 + 16 + 1234
    loop: list = [t]
    loop.append(loop)
    assert nbytes(loop) == 400


# --------------------------------------------------------------------------- the runtime's caches


def test_torch_backend_caches_stay_within_their_byte_budgets(tiny: FCN,
                                                             monkeypatch) -> None:
    """Many distinct shapes through a backend whose byte budgets bind before its counts:
    every cache stays within its bounds after each call, and the results equal eager's."""
    for cache in shared_caches().values():  # the shared index caches, tightened
        monkeypatch.setattr(cache, "max_bytes", 8192)
    backend = TorchBackend(tiny, "cpu", TorchOptions(channels_last=True, capacity=64,
                                                     cache_mb=1))
    caches = backend.caches()
    plans, blanks = caches["border.plans"], caches["border.blanks"]
    assert plans.max_bytes == MiB and blanks.max_bytes == MiB // 2
    assert caches["graphs"].max_bytes == TorchOptions().graph_mb * MiB
    eager = EagerBackend(tiny, "cpu")
    for h, w in SHAPES:
        x = torch.randn(1, 3, h, w)
        out, ref = backend(x), eager(x)
        for v in VARIANTS:
            torch.testing.assert_close(out[v], ref[v], rtol=1e-4, atol=1e-5)
        for name, cache in {**caches, **shared_caches()}.items():
            assert within_budget(cache), (name, cache.stats())
    assert plans.evictions > 0 and len(plans) < len(SHAPES)  # the bytes bound, not the count
    assert all(c.evictions > 0 for c in shared_caches().values())
    out = backend(torch.randn(1, 3, *SHAPES[-1]))  # the most recent shape is still kept
    assert plans.hits > 0


def test_onnxruntime_rings_stay_within_their_byte_budget(tiny: FCN) -> None:
    pytest.importorskip("onnxruntime")
    from core.inference.runtime.onnx import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(tiny, threads=1, cache_mb=1, capacity=64)
    eager = EagerBackend(tiny, "cpu")
    for h, w in SHAPES[:10]:
        x = torch.randn(1, 3, h, w)
        out, ref = backend(x), eager(x)
        torch.testing.assert_close(out["8s"], ref["8s"], rtol=1e-4, atol=1e-4)
    rings = backend.caches()["rings"]
    assert rings.max_bytes == MiB and within_budget(rings) and rings.evictions > 0
    assert all(within_budget(c) for c in backend.caches().values())


def test_cuda_graphs_are_evicted_by_bytes(tiny: FCN, monkeypatch) -> None:
    """The graph cache counts a graph's buffers (a stand-in capture, on the CPU)."""
    import core.inference.runtime.torch_backend as torch_backend

    class FakeGraphed:
        def __init__(self, fn, x, pool, keep, stream):
            self.fn, self.nbytes = fn, 400 * 1024  # three fit in 1 MiB, not four

        def __call__(self, x):
            return self.fn(x)

    monkeypatch.setattr(torch_backend, "Graphed", FakeGraphed)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: "pool")
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: "stream")
    backend = TorchBackend(tiny, "cpu", TorchOptions(capacity=8, graph_mb=1))
    backend.options = dataclasses.replace(backend.options, cuda_graphs=True)
    for h, w in SHAPES[:5]:
        for _ in range(2):  # captured on a shape's second call
            backend(torch.randn(1, 3, h, w))
    graphs = backend.caches()["graphs"]
    assert len(graphs) == 2 and graphs.nbytes == 800 * 1024 and graphs.evictions == 3


def test_cropped_upsampling_matrices_are_bounded(tiny: FCN, monkeypatch) -> None:
    import core.models.upsampling as upsampling

    monkeypatch.setattr(upsampling, "MATRIX_BYTES", 64 * 1024)
    cropped = CroppedUpsampling(tiny)
    view = cropped.picking(None)
    with torch.no_grad():
        for h, w in SHAPES:
            x = torch.randn(1, 3, h, w)
            out = tiny.heads(tiny.features(x), (h, w), VARIANTS, view)
            torch.testing.assert_close(out["8s"], tiny(x)["8s"], rtol=1e-4, atol=1e-5)
            held = sum(t.nbytes for t in cropped.matrices.values())
            assert held <= 64 * 1024
    assert view.matrices is cropped.matrices and len(cropped.matrices) < 6 * len(SHAPES)


# --------------------------------------------------------------------------- the process heap


def test_heap_trimmer_trims_after_growth_at_most_once_per_interval(monkeypatch) -> None:
    anon = [100 * MiB]
    trims: list[int] = []

    def trim() -> bool:
        trims.append(anon[0])
        anon[0] = 110 * MiB  # what a trim leaves
        return True

    monkeypatch.setattr(heap_module, "anon_bytes", lambda: anon[0])
    monkeypatch.setattr(heap_module, "malloc_trim", trim)
    monkeypatch.setattr(heap_module, "_LIBC", object())
    monkeypatch.delenv(heap_module.ENV_VAR, raising=False)
    clock = [1000.0]
    monkeypatch.setattr(heap_module.time, "monotonic", lambda: clock[0])
    trimmer = heap_module.HeapTrimmer(slack=64 * MiB, interval=1.0)
    assert not trimmer.after_call()  # the first call sets the baseline
    anon[0] = 150 * MiB
    assert not trimmer.after_call()  # within the slack
    anon[0] = 200 * MiB
    assert trimmer.after_call() and trims == [200 * MiB] and trimmer.trims == 1
    anon[0] = 300 * MiB
    clock[0] += 0.5
    assert not trimmer.after_call()  # too soon after the last trim
    clock[0] += 0.6
    assert trimmer.after_call() and trims == [200 * MiB, 300 * MiB]
    anon[0] = 90 * MiB
    clock[0] += 2
    assert not trimmer.after_call()  # memory went down: a new, lower baseline
    anon[0] = 160 * MiB
    clock[0] += 2
    assert trimmer.after_call()
    monkeypatch.setenv(heap_module.ENV_VAR, "off")
    anon[0] = 900 * MiB
    clock[0] += 2
    assert not trimmer.after_call() and trimmer.trims == 3


def test_heap_configure_bounds_onednn_unless_told(monkeypatch) -> None:
    var = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
    for env, before, after in ((None, None, str(heap_module.PRIMITIVE_CACHE)),
                               ("off", None, None), (None, "64", "64")):
        monkeypatch.setattr(heap_module, "_configured", False)
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv("DNNL_PRIMITIVE_CACHE_CAPACITY", raising=False)
        if env is None:
            monkeypatch.delenv(heap_module.ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(heap_module.ENV_VAR, env)
        if before is not None:
            monkeypatch.setenv(var, before)
        heap_module.configure()
        import os

        assert os.environ.get(var) == after
        heap_module.configure()  # once per process


def test_heap_helpers_on_this_machine() -> None:
    anon = heap_module.anon_bytes()
    assert anon is None or anon > 0
    assert heap_module.malloc_trim() in (True, False)
