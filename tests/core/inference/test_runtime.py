"""Runtime backends: each matches eager, border reuse is exact, fallbacks say why."""

from __future__ import annotations

import builtins
import logging
import shutil
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from core.checkpoints.checkpoint import ModelInfo
from core.errors import FCNStudioError
from core.inference import Segmenter
from core.inference.memory import is_oom
from core.inference.runtime import (
    CostGate,
    EagerBackend,
    GuardedBackend,
    LRUCache,
    TorchBackend,
    TorchOptions,
    agreement,
    bucket_shape,
    parse_backend,
    reached_macs,
    select_backend,
)
from core.inference.runtime.backend import WeightsWatch, same_device
from core.inference.runtime.border import BorderReuse, NotApplicable, plan_axis, proxy_size
from core.inference.runtime.options import ENV_VAR, parse_bool
from core.models import VARIANTS, fcn_vgg16
from core.models.fcn import FCN
from core.models.preprocess import IMAGENET
from tests.core.inference.test_inference import scene, trained_like

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def make_model(width: float = 0.0625, classes: int = 5, seed: int = 0) -> FCN:
    torch.manual_seed(seed)
    model = fcn_vgg16(num_classes=classes, width=width).eval()
    trained_like(model, scene(128, 160, seed=seed + 1))
    return model


def copy_of(model: FCN) -> FCN:
    other = fcn_vgg16(num_classes=model.config.num_classes, width=model.config.width).eval()
    other.load_state_dict(model.state_dict())
    return other


def batch(h: int, w: int, n: int = 1, seed: int = 3) -> torch.Tensor:
    x = IMAGENET(torch.from_numpy(scene(h, w, seed=seed)).permute(2, 0, 1)[None])
    return x.expand(n, -1, -1, -1).contiguous()


@pytest.fixture(scope="module")
def model() -> FCN:
    return make_model()


def rel_err(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[v].float() - b[v].float()).abs().max() / b[v].abs().max()) for v in b)


# --------------------------------------------------------------------------- options


def test_parse_backend_names_aliases_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_backend(None).name == "auto" and parse_backend(None).source == "default"
    assert parse_backend("EAGER").name == "eager"
    assert parse_backend("ort").name == "onnxruntime"
    spec = parse_backend("torch: compile=1, Bucket=64")
    assert spec.name == "torch" and spec.options == {"compile": "1", "bucket": "64"}
    assert str(spec) == "torch:compile=1,bucket=64"
    monkeypatch.setenv(ENV_VAR, "eager")
    assert parse_backend(None).name == "eager" and parse_backend(None).source == ENV_VAR
    with pytest.raises(ValueError, match="Unknown backend 'tensorrt'"):
        parse_backend("tensorrt")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_backend("torch:compile")
    assert parse_bool("On") is True and parse_bool("0") is False
    with pytest.raises(ValueError, match="boolean"):
        parse_bool("maybe")


def test_torch_options_defaults_and_overrides() -> None:
    cuda = TorchOptions.for_device("cuda")
    assert cuda.channels_last and cuda.dtype == "float16" and cuda.cuda_graphs
    assert cuda.bucket == 0 and cuda.cudnn_benchmark and cuda.border_reuse
    cpu = TorchOptions.for_device("cpu")
    assert not cpu.cuda_graphs and cpu.dtype == "float32" and cpu.border_reuse
    opts = cpu.with_options({"cl": "1", "graphs": "on", "bucket": "32", "dtype": "bf16"})
    assert opts.channels_last and opts.cuda_graphs and opts.bucket == 32
    with pytest.raises(ValueError, match="Unknown torch backend option"):
        cpu.with_options({"turbo": "1"})
    with pytest.raises(ValueError, match="integer"):
        cpu.with_options({"bucket": "big"})
    with pytest.raises(ValueError, match="dtype"):
        cpu.with_options({"dtype": "int4"})


@pytest.mark.parametrize(("size", "multiple", "bucket"), [
    ((500, 375), 64, (512, 384)), ((512, 384), 64, (512, 384)), ((1, 1), 32, (32, 32)),
    ((500, 375), 0, (500, 375)), ((500, 375), 1, (500, 375)),
])
def test_bucket_shape(size: tuple[int, int], multiple: int, bucket: tuple[int, int]) -> None:
    assert bucket_shape(*size, multiple) == bucket


def test_lru_cache_evicts_the_least_recently_used() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, int] = LRUCache(2, on_evict=lambda k, v: evicted.append(k))
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert evicted == ["b"] and cache.keys() == ["a", "c"] and "b" not in cache
    assert cache.get_or_create("d", lambda: 4) == 4 and evicted == ["b", "a"]
    assert cache.get("zzz") is None and cache.hits == 1 and cache.misses >= 2
    with pytest.raises(ValueError):
        LRUCache(0)


# --------------------------------------------------------------------------- border reuse


@pytest.mark.parametrize(("h", "w", "n"), [
    (1, 1, 1), (5, 7, 2), (31, 33, 1), (64, 80, 2), (97, 51, 1), (100, 100, 1), (129, 200, 1),
])
def test_border_reuse_is_exact(h: int, w: int, n: int) -> None:
    torch.manual_seed(h * 1000 + w)
    model = fcn_vgg16(num_classes=3, width=0.03125).eval().double()
    with torch.no_grad():
        for p in model.parameters():  # non-zero biases everywhere
            p.add_(torch.randn_like(p) * 0.05)
    border = BorderReuse(model)
    x = torch.randn(n, 3, h, w, dtype=torch.float64)
    with torch.no_grad():
        ref = model.features(x)
        got = border.features(x)
        plan = border.plan(x, uniform=True)
        uniform = border.sparse(x, plan)
        traced_like = border.sparse(x, plan, rings=plan.ring_tensors())
    for k in ref:
        assert got[k].shape == ref[k].shape
        torch.testing.assert_close(got[k], ref[k], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(uniform[k], ref[k], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(traced_like[k], uniform[k], rtol=0, atol=0)


def test_uniform_plans_share_one_structure_and_proxies_are_small() -> None:
    model = fcn_vgg16(num_classes=3, width=0.03125).eval()
    border = BorderReuse(model)
    structures = {border.plan(torch.zeros(1, 3, h, w), uniform=True).structure()
                  for h, w in ((1, 1), (64, 64), (97, 51), (300, 200))}
    assert len(structures) == 1
    layers = [getattr(model, n) for n in model._trunk]
    assert proxy_size(layers, 500, 28) == 20 and proxy_size(layers, 20, 28) == 20
    assert len(border) == 4


def test_reached_macs_of_the_reference_net() -> None:
    with torch.device("meta"):
        model = fcn_vgg16()
    full, reached = reached_macs(model, 500, 500)
    assert full == pytest.approx(180.88e9, rel=1e-3) and reached == pytest.approx(124.61e9,
                                                                                rel=1e-3)
    steps = plan_axis([getattr(model, n) for n in model._trunk], 500)
    assert steps[0].size_out == 698 and steps[0].dirty_out == (98, 600)


def test_border_reuse_refuses_unknown_layers_and_runs_plain_in_training() -> None:
    model = fcn_vgg16(num_classes=3, width=0.03125)
    model.conv2_1 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
    with pytest.raises(NotApplicable, match="stride"):
        BorderReuse(model)
    model = fcn_vgg16(num_classes=3, width=0.03125).train()
    border = BorderReuse(model)
    torch.manual_seed(0)
    out = border.features(torch.randn(1, 3, 40, 40))
    assert len(border) == 0 and out["fc7"].shape[-2:] == (2, 2)


# --------------------------------------------------------------------------- backends


@pytest.mark.parametrize("preference", [
    "torch", "torch:reuse=0", "torch:cl=1", "torch:compile=1,compile_backend=eager",
    "onnxruntime", "onnxruntime:reuse=0", "auto:min_gmac=0",
    "auto:min_gmac=0,ort_from_channels=1",
])
def test_every_backend_matches_eager(model: FCN, preference: str) -> None:
    backend = select_backend(copy_of(model), "cpu", preference)
    assert isinstance(backend, GuardedBackend)
    for h, w, n in ((96, 128, 1), (70, 50, 2), (96, 128, 1)):  # the last: cached paths
        x = batch(h, w, n, seed=h + w)
        ref = EagerBackend(model, "cpu")(x)
        out = backend(x, VARIANTS)
        assert list(out) == list(VARIANTS)
        assert all(out[v].shape == ref[v].shape for v in VARIANTS)
        assert rel_err(out, ref) < 1e-4, preference
        assert min(agreement(out, ref).values()) >= 0.999
    assert backend.primary is not None, backend.notes  # no fallback to eager happened
    if hasattr(backend.inner, "wait"):  # a background ONNX export must not overlap the next
        backend.inner.wait(120)  # test's (torch.onnx allows one export at a time)


def test_reduced_precision_and_buckets_agree(model: FCN) -> None:
    x = batch(96, 128, seed=7)
    ref = EagerBackend(model, "cpu")(x)
    bf16 = select_backend(copy_of(model), "cpu", "torch:dtype=bf16,cl=1")
    out = bf16(x)
    assert all(o.dtype == torch.float32 for o in out.values())  # heads run in fp32
    assert min(agreement(out, ref).values()) > 0.95 and rel_err(out, ref) < 0.2
    bucketed = select_backend(copy_of(model), "cpu", "torch:bucket=64")
    out = bucketed(x)
    assert out["8s"].shape[-2:] == (96, 128)
    assert min(agreement(out, ref).values()) > 0.98


def test_cudnn_tunes_a_shape_on_its_second_call(model: FCN) -> None:
    """cudnn.benchmark is asked for on a shape's second call only (one-off image sizes cost
    no autotuning); TF32 is turned off when the trunk runs in reduced precision."""
    import dataclasses

    backend = TorchBackend(copy_of(model), "cpu", TorchOptions(dtype="float16"))
    backend.options = dataclasses.replace(backend.options, cudnn_benchmark=True)
    seen = [backend.sighted(k) for k in ((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 48, 64),
                                         (2, 3, 64, 64), (1, 3, 64, 64))]
    assert seen == [False, True, False, False, True]
    assert backend.flag_values(False) == (False, False)
    assert backend.flag_values(True) == (True, False)
    fp32 = TorchBackend(copy_of(model), "cpu", TorchOptions())
    assert fp32.flag_values(True) == (False, None)  # no cudnn.benchmark asked, TF32 as is


def test_fp16_overflow_switches_to_bf16(model: FCN) -> None:
    mine = copy_of(model)
    with torch.no_grad():
        mine.fc7.weight.mul_(1e8)  # fp16 overflows (max 65504), bf16 does not
    backend = select_backend(mine, "cpu", "torch:dtype=fp16")
    out = backend(batch(64, 64))
    assert all(torch.isfinite(s).all() for s in out.values())
    assert backend.active.options.dtype == "bfloat16"
    assert "fp16 overflowed" in backend.notes[-1]


def test_variant_subsets(model: FCN) -> None:
    backend = select_backend(copy_of(model), "cpu", "onnxruntime")
    out = backend(batch(64, 64), ("8s", "32s"))
    assert list(out) == ["32s", "8s"]


def test_int8_is_used_only_with_enough_agreement(model: FCN) -> None:
    from core.inference.runtime.onnx import OnnxRuntimeBackend

    calib = [batch(64, 80, seed=s) for s in range(3)]
    strict = OnnxRuntimeBackend(copy_of(model), int8=True, calibration=calib,
                                min_agreement=1.01)
    strict.prepare()
    assert not strict.int8 and "int8 agreement" in strict.notes[0]
    assert strict.int8_agreement is not None and set(strict.int8_agreement) == set(VARIANTS)
    lax = OnnxRuntimeBackend(copy_of(model), int8=True, calibration=calib, min_agreement=0.0)
    out = lax(calib[0])
    assert lax.int8 and lax.name == "onnxruntime-int8" and out["8s"].shape == (1, 5, 64, 80)


@pytest.mark.parametrize(("preference", "tolerance"), [
    ("torch:dtype=bf16", 0.2), ("onnxruntime", 1e-4), ("torch", 1e-4),
])
def test_weight_changes_are_noticed(model: FCN, preference: str, tolerance: float) -> None:
    mine = copy_of(model)
    backend = select_backend(mine, "cpu", preference)
    x = batch(64, 64)
    before = backend(x)
    with torch.no_grad():
        mine.score_fr.weight.mul_(-1.0)
        mine.conv5_1.bias.add_(0.5)
    after = backend(x)
    ref = EagerBackend(mine, "cpu")(x)
    assert rel_err(after, ref) < tolerance
    assert rel_err(before, ref) > 0.5


def test_weights_watch() -> None:
    layer = nn.Conv2d(1, 1, 1)
    watch = WeightsWatch(layer)
    assert not watch.changed()
    with torch.no_grad():
        layer.weight.mul_(2)
    assert watch.changed() and not watch.changed()


def test_cost_gate_keeps_small_calls_eager(model: FCN) -> None:
    mine = copy_of(model)
    gate = select_backend(mine, "cpu", "auto").primary
    assert isinstance(gate, CostGate) and "eager below 0.25 GMAC" in gate.description
    assert "channels_last, border reuse" in gate.description
    small = batch(96, 128)
    assert not gate.uses_fast(small)
    torch.testing.assert_close(gate(small)["8s"], EagerBackend(mine, "cpu")(small)["8s"],
                               rtol=0, atol=0)
    low = CostGate(gate.fast, gate.macs, 1.0)
    assert low.uses_fast(small)


# --------------------------------------------------------------------------- fallbacks


def test_missing_onnxruntime_falls_back_with_a_reason(model: FCN, monkeypatch, caplog) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with caplog.at_level(logging.INFO, logger="core.inference.runtime"):
        auto = select_backend(copy_of(model), "cpu", "auto:ort_from_channels=1")
        forced = select_backend(copy_of(model), "cpu", "onnxruntime")
    assert any("onnxruntime not installed" in n for n in auto.notes)
    assert "torch (fp32" in auto.description and "then" not in auto.description
    assert isinstance(forced, EagerBackend)
    assert "onnxruntime unavailable (onnxruntime not installed" in forced.notes[0]
    assert "onnxruntime not installed" in caplog.text


def test_auto_upgrades_to_onnxruntime_in_the_background(model: FCN) -> None:
    from core.inference.runtime import Upgrade

    mine = copy_of(model)
    backend = select_backend(mine, "cpu", "auto:min_gmac=0,ort_from_channels=1")
    upgrade = backend.primary
    assert isinstance(upgrade, Upgrade) and "then onnxruntime" in upgrade.description
    x = batch(64, 80)
    ref = EagerBackend(mine, "cpu")(x)
    first = backend(x)  # torch, and the session starts building
    assert upgrade.active is upgrade.first
    assert upgrade.wait(timeout=120) and upgrade.active is upgrade.better
    assert backend.description.startswith("onnxruntime fp32, border reuse")
    for out in (first, backend(x)):
        assert rel_err(out, ref) < 1e-4


def test_a_failed_background_build_stays_on_torch(model: FCN) -> None:
    from core.inference.runtime import Upgrade

    def broken() -> None:
        raise RuntimeError("exporter crashed")

    torch_backend = TorchBackend(copy_of(model), "cpu")
    upgrade = Upgrade(torch_backend, EagerBackend(model, "cpu"), broken)
    x = batch(48, 48)
    upgrade(x)
    assert not upgrade.wait(timeout=60) and upgrade.active is torch_backend
    assert upgrade.notes == ["eager not prepared (RuntimeError: exporter crashed): staying on "
                             "torch"]
    torch.testing.assert_close(upgrade(x)["8s"], EagerBackend(model, "cpu")(x)["8s"],
                               rtol=1e-4, atol=1e-4)


def test_onnxruntime_on_another_device_falls_back(model: FCN) -> None:
    backend = select_backend(copy_of(model), "meta", "onnxruntime")
    assert isinstance(backend, EagerBackend)
    assert "runs on the CPU only" in backend.notes[0]
    mps = select_backend(copy_of(model), "mps", "auto")
    assert isinstance(mps, EagerBackend) and "no optimized path for MPS" in mps.notes[0]


def test_cuda_only_features_are_dropped_on_the_cpu_with_notes(model: FCN) -> None:
    backend = TorchBackend(copy_of(model), "cpu",
                           TorchOptions(cuda_graphs=True, cudnn_benchmark=True))
    assert not backend.options.cuda_graphs and not backend.options.cudnn_benchmark
    assert backend.notes == ["CUDA graphs need a CUDA device: not used"]
    compiled = TorchBackend(copy_of(model), "cpu", TorchOptions(compile=True,
                                                                compile_backend="eager"))
    assert not compiled.options.border_reuse and "torch.compile" in compiled.notes[0]


def test_cuda_graph_control_flow_with_a_stand_in_capture(model: FCN, monkeypatch) -> None:
    """The graph cache, capture on a shape's second call, its LRU bound, the records it keeps
    alive, the per-backend capture stream, out-of-memory while capturing (the call's result
    kept, that shape not captured again) and the capture-failure fallback, run on the CPU
    with a stand-in for ``torch.cuda.graph`` capture."""
    import dataclasses

    import core.inference.runtime.torch_backend as torch_backend

    captured: list[tuple] = []

    class FakeGraphed:
        def __init__(self, fn, x, pool, keep, stream):
            if x.shape[-1] == 40:
                raise RuntimeError("operation not permitted when stream is capturing")
            if x.shape[-1] == 48:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory while capturing")
            captured.append((tuple(x.shape), keep, pool, stream))
            self.fn = fn
            self.replays = 0

        def __call__(self, x):
            self.replays += 1
            return self.fn(x)

    monkeypatch.setattr(torch_backend, "Graphed", FakeGraphed)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: "pool")
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: f"stream on {device}")
    backend = TorchBackend(copy_of(model), "cpu", TorchOptions(capacity=2))
    backend.options = dataclasses.replace(backend.options, cuda_graphs=True)
    backend._graphs = LRUCache(2)
    sizes = [(64, 64), (64, 64), (64, 64), (48, 64), (48, 64), (32, 64), (32, 64), (64, 64)]
    for h, w in sizes:
        x = batch(h, w, seed=h + len(captured))
        torch.testing.assert_close(backend(x)["8s"], EagerBackend(model, "cpu")(x)["8s"],
                                   rtol=1e-4, atol=1e-4)
    # captured on the second call of each shape; (64, 64) evicted by the LRU and captured anew
    assert [c[0][-2:] for c in captured] == [(64, 64), (48, 64), (32, 64), (64, 64)]
    assert all(c[1] is not None for c in captured)  # the border records stay referenced
    assert {c[2] for c in captured} == {"pool"} and {c[3] for c in captured} == {
        "stream on cpu"}  # one pool and one capture stream on the backend's device
    assert len(backend._graphs) == 2
    x = batch(40, 48)
    for _ in range(3):  # out of memory while capturing: eager results, no more attempts
        torch.testing.assert_close(backend(x)["8s"], EagerBackend(model, "cpu")(x)["8s"],
                                   rtol=1e-4, atol=1e-4)
    assert backend.options.cuda_graphs and "out of memory while capturing" in backend.notes[-1]
    assert sum("out of memory" in n for n in backend.notes) == 1
    backend(batch(64, 40))
    backend(batch(64, 40))
    assert not backend.options.cuda_graphs
    assert "CUDA graph capture failed: RuntimeError" in backend.notes[-1]


def test_compile_failure_runs_uncompiled(model: FCN, monkeypatch, caplog) -> None:
    def broken_compile(fn, **kwargs):
        def run(x):
            raise RuntimeError("inductor exploded")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    backend = select_backend(copy_of(model), "cpu", "torch:compile=1")
    x = batch(64, 64)
    with caplog.at_level(logging.INFO, logger="core.inference.runtime"):
        out = backend(x)
    torch.testing.assert_close(out["8s"], EagerBackend(model, "cpu")(x)["8s"])
    assert any("torch.compile failed: RuntimeError: inductor exploded" in n
               for n in backend.notes)
    assert backend.primary is not None and "torch.compile failed" in caplog.text


def test_a_failing_backend_falls_back_to_eager_but_oom_propagates(model: FCN, caplog) -> None:
    class Broken(EagerBackend):
        kind = "broken"
        error: Exception = RuntimeError("kernel not found")

        def __call__(self, x, variants=VARIANTS):
            raise self.error

        def accepts(self, x):
            return True

    oom = GuardedBackend(Broken(model, "cpu"))
    oom.primary.error = torch.cuda.OutOfMemoryError("CUDA out of memory")  # type: ignore[union-attr]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        oom(batch(32, 32))
    assert oom.primary is not None
    guarded = GuardedBackend(Broken(model, "cpu"), notes=["chosen for a test"])
    x = batch(48, 48)
    with caplog.at_level(logging.WARNING, logger="core.inference.runtime"):
        out = guarded(x)
    torch.testing.assert_close(out["8s"], EagerBackend(model, "cpu")(x)["8s"])
    assert guarded.primary is None and guarded.name == "eager"
    assert guarded.notes == ["chosen for a test",
                             "broken failed (RuntimeError: kernel not found); using eager"]
    assert "using eager" in caplog.text


def test_oom_detection_and_devices() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("x")) and is_oom(MemoryError())
    assert is_oom(RuntimeError("MPS backend out of memory")) and not is_oom(ValueError("x"))
    assert same_device(torch.device("cpu"), torch.device("cpu"))
    assert not same_device(torch.device("cpu"), torch.device("meta"))


def _check_cuda_defaults(model: FCN, device: str) -> None:  # pragma: no cover - GPU only
    import warnings

    mine = copy_of(model).to(device)
    backend = select_backend(mine, device, "auto")
    primary = backend.primary
    assert isinstance(primary, TorchBackend) and primary.options.cuda_graphs, backend.notes
    from core.inference.runtime.cuda import cuda_flags

    def eager(t: torch.Tensor) -> dict[str, torch.Tensor]:  # the true-fp32 reference
        with cuda_flags(None, False):
            return EagerBackend(mine, device)(t)

    x = batch(100, 150).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "The CUDA Graph is empty" (wrong device/stream)
        for _ in range(3):  # eager + border record, capture, replay
            out = backend(x)
    assert len(primary._graphs) == 1, primary.notes
    assert not any("capture failed" in n for n in primary.notes), primary.notes
    assert min(agreement(out, eager(x)).values()) > 0.995
    x2 = batch(100, 150, seed=1).to(device)  # same shape, another image: a replay
    assert min(agreement(backend(x2), eager(x2)).values()) > 0.995
    xb = torch.cat([x, x2])  # a batch of two (its own graph after two calls)
    for _ in range(2):
        out = backend(xb)
    assert min(agreement(out, eager(xb)).values()) > 0.995
    assert backend.primary is primary and torch.backends.cudnn.benchmark is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_defaults_agree_with_eager(model: FCN) -> None:  # pragma: no cover - GPU only
    _check_cuda_defaults(model, "cuda")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_cuda_graphs_on_a_gpu_that_is_not_current(model: FCN) -> None:  # pragma: no cover
    torch.cuda.set_device(0)
    _check_cuda_defaults(model, "cuda:1")


# --------------------------------------------------------------------------- segmenter


def test_segmenter_uses_the_backend_and_the_env_var_forces_eager(model: FCN, monkeypatch
                                                                 ) -> None:
    info = ModelInfo([f"c{i}" for i in range(5)], model.config)
    image = scene(120, 150, seed=9)
    eager = Segmenter(copy_of(model), info, device="cpu", backend="eager")
    assert isinstance(eager.backend, EagerBackend)
    fast = Segmenter(copy_of(model), info, device="cpu", backend="onnxruntime")
    assert "onnxruntime" in fast.backend.description and fast.backend_notes == []
    a, b = eager.scores(image), fast.scores(image)  # predictions stream; scores() runs these
    for v in VARIANTS:
        assert (a[v].argmax(0) == b[v].argmax(0)).float().mean() > 0.999
        np.testing.assert_allclose(torch.softmax(a[v], 0), torch.softmax(b[v], 0), atol=2e-3)
    np.testing.assert_allclose(eager.predict(image)["8s"].scores(), a["8s"], atol=1e-4)
    monkeypatch.setenv(ENV_VAR, "eager")
    forced = Segmenter(copy_of(model), info, device="cpu")
    assert isinstance(forced.backend, EagerBackend)
    assert forced.backend_notes == [f"eager forced by {ENV_VAR}"]
    monkeypatch.setenv(ENV_VAR, "warp-drive")
    bad_env = Segmenter(copy_of(model), info, device="cpu")
    assert "Unknown backend 'warp-drive'" in bad_env.backend_notes[0]
    with pytest.raises(FCNStudioError, match="Unknown backend"):
        Segmenter(copy_of(model), info, device="cpu", backend="warp-drive")


# --------------------------------------------------------------------------- training


def test_fast_train_options_and_env() -> None:
    from core.training.fast import ENV_VAR as TRAIN_ENV
    from core.training.fast import FastOptions

    cuda = FastOptions.for_device("cuda", env={})
    assert cuda.channels_last and cuda.pin_memory and not cuda.compile
    assert not cuda.border_reuse
    cpu = FastOptions.for_device("cpu", env={})
    assert cpu.channels_last and cpu.border_reuse and not cpu.pin_memory
    cpu = FastOptions.for_device("cpu", env={TRAIN_ENV: "reuse=0,cl=0,compile=1"})
    assert not cpu.border_reuse and not cpu.channels_last and cpu.compile
    bad = FastOptions.for_device("cpu", env={TRAIN_ENV: "warp=9"})
    assert bad == FastOptions.for_device("cpu", env={})
    with pytest.raises(ValueError, match="unknown option"):
        FastOptions().with_options({"warp": "9"})


def test_reuse_training_gives_the_same_losses_and_gradients() -> None:
    from core.training.fast import FastOptions, ReuseFCN, prepare
    from core.training.losses import multi_output_loss

    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=4, width=0.03125).double().train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    module = prepare(model, FastOptions(border_reuse=True))
    assert isinstance(module, ReuseFCN) and module.model is model
    assert prepare(model, FastOptions(border_reuse=True, compile=True)) is model
    x = torch.randn(2, 3, 72, 88, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 72, 88))
    with torch.inference_mode():  # records made for inference must not leak into autograd
        module.border.features(x)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for net in (model, module):
        torch.manual_seed(1)  # the same dropout masks
        loss, _ = multi_output_loss(net(x), y, {"32s": 1.0, "16s": 1.0, "8s": 1.0})
        grads.append((loss.detach(), torch.autograd.grad(loss, params)))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-12, atol=0)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def _train_twice(opts, wrap=None, classes: int = 5):
    """Two training steps of a fresh seeded model with ``opts``; ``wrap(model)`` makes the
    module stepped (default: ``prepare``). Returns (losses, score_fr weight, module)."""
    from core.training.config import TrainConfig
    from core.training.fast import prepare, train_step
    from core.training.trainer import make_optimizer

    images, masks = _train_inputs(classes)
    config = TrainConfig()
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=classes, width=0.03125, dropout=0.0).train()
    net = wrap(model) if wrap is not None else prepare(model, opts)
    optimizer = make_optimizer(model, config)
    losses = [float(train_step(net, optimizer, images, masks, config.loss_weights, IMAGENET,
                               device=torch.device("cpu"), amp="off", options=opts)[0].detach())
              for _ in range(2)]
    return losses, model.score_fr.weight.detach().clone(), net


def test_train_step_paths_agree() -> None:
    from core.training.fast import FastOptions

    plain = _train_twice(FastOptions())
    fast = _train_twice(FastOptions(channels_last=True, border_reuse=True))
    assert fast[0] == pytest.approx(plain[0], rel=1e-4)
    torch.testing.assert_close(fast[1], plain[1], rtol=1e-3, atol=1e-5)


def _train_inputs(classes: int = 5, n: int = 2, size: int = 64):
    images = torch.from_numpy(np.stack([scene(size, size, seed=s) for s in range(n)])).permute(
        0, 3, 1, 2).contiguous()
    return images, torch.randint(0, classes, (n, size, size), generator=torch.Generator()
                                 .manual_seed(3))


def test_a_compile_failure_in_training_redoes_the_step_uncompiled(caplog) -> None:
    from torch._dynamo import register_backend

    from core.training.fast import Compiled, FastOptions, compile_model

    @register_backend(name="fcn_studio_test_broken")
    def broken(gm, example_inputs):  # a toolchain that is not there
        raise RuntimeError("no C++ compiler found")

    broken_opts = FastOptions(compile=True, compile_backend="fcn_studio_test_broken")
    plain = _train_twice(FastOptions())
    with caplog.at_level(logging.WARNING, logger="core.training.fast"):
        losses, _, net = _train_twice(broken_opts, lambda m: compile_model(m, broken_opts))
    assert isinstance(net, Compiled) and net.compiled is None
    assert "no C++ compiler found" in net.reason
    assert "training uncompiled" in caplog.text
    assert losses == pytest.approx(plain[0], rel=1e-5)  # the failed step was redone

    from core.training.fast import ReuseFCN, prepare

    reuse_opts = FastOptions(compile=True, compile_backend="fcn_studio_test_broken",
                             border_reuse=True)
    losses, _, net = _train_twice(reuse_opts, lambda m: compile_model(
        m, reuse_opts, prepare(m, FastOptions(border_reuse=True))))
    assert isinstance(net.plain, ReuseFCN) and net.compiled is None  # border reuse kept
    assert losses == pytest.approx(plain[0], rel=1e-4)


def test_a_bad_batch_is_not_blamed_on_compiling() -> None:
    from core.training.config import TrainConfig
    from core.training.fast import Compiled, FastOptions, compile_model, train_step
    from core.training.trainer import make_optimizer

    images, masks = _train_inputs()
    opts = FastOptions(compile=True, compile_backend="eager")
    model = fcn_vgg16(num_classes=5, width=0.03125).train()
    net = compile_model(model, opts)
    optimizer = make_optimizer(model, TrainConfig())
    with pytest.raises((IndexError, RuntimeError), match="out of bounds"):
        train_step(net, optimizer, images, masks + 7, {"8s": 1.0}, IMAGENET,
                   device=torch.device("cpu"), amp="off", options=opts)
    assert isinstance(net, Compiled) and net.compiled is not None and net.reason is None


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="TorchInductor needs a C++ compiler on the CPU")
def test_inductor_compiled_paths_match_eager(model: FCN) -> None:
    """The real torch.compile (TorchInductor, C++ on the CPU: the GPU uses Triton, but the
    graph capture, guards and fallbacks are the same) for inference and a training step."""
    from core.training.fast import Compiled, FastOptions, compile_model

    backend = select_backend(copy_of(model), "cpu", "torch:compile=1,cl=1")
    x = batch(64, 96, seed=11)
    out, ref = backend(x), EagerBackend(model, "cpu")(x)
    assert backend.primary is not None and backend.active.options.compile, backend.notes
    assert rel_err(out, ref) < 1e-4 and min(agreement(out, ref).values()) >= 0.999

    plain = _train_twice(FastOptions())
    opts = FastOptions(compile=True, channels_last=True)
    losses, weight, net = _train_twice(opts, lambda m: compile_model(
        m.to(memory_format=torch.channels_last), opts))
    assert isinstance(net, Compiled) and net.compiled is not None, net.reason
    assert losses == pytest.approx(plain[0], rel=1e-4)
    torch.testing.assert_close(weight, plain[1], rtol=1e-3, atol=1e-5)


def test_cuda_flags_overlapping_blocks_restore_the_settings() -> None:
    from core.inference.runtime.cuda import cuda_flags

    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.allow_tf32)
    a, b = cuda_flags(True, None), cuda_flags(None, False)
    a.__enter__()
    b.__enter__()  # another thread's block begins
    assert cudnn.benchmark and not cudnn.allow_tf32
    a.__exit__(None, None, None)  # the first ends before the second
    assert cudnn.benchmark and not cudnn.allow_tf32
    b.__exit__(None, None, None)
    assert (cudnn.benchmark, cudnn.allow_tf32) == before


def test_lru_cache_is_safe_across_threads() -> None:
    import threading

    cache: LRUCache[int, int] = LRUCache(8)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for k in rng.integers(0, 64, 20000):
                cache.get_or_create(int(k), lambda k=k: int(k) * 2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 8
    assert all(cache.get(k) == 2 * k for k in cache.keys())
