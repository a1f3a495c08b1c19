"""The backbone's precision: ``auto`` / ``float32`` / ``bfloat16`` (``model/runtime.resolve_precision``,
``Localizer.features``), chosen per job (``JobOptions.precision``, ``loc2 localize --precision``)."""

from __future__ import annotations

import copy

import pytest
import torch
from pipeline_scene import TINY

from loc2.core.errors import Loc2Error
from loc2.core.localizer import Localizer
from loc2.core.model import runtime
from loc2.core.pipeline.batch import load_localizer
from loc2.core.types import JobOptions, OptionsError

NATIVE_BF16 = runtime.cpu_has_native_bf16()
needs_bf16 = pytest.mark.skipif(
    not NATIVE_BF16, reason="this CPU has no bf16 instructions (AMX, AVX512-BF16)"
)
CPU = torch.device("cpu")


@pytest.fixture
def no_native_bf16(monkeypatch):
    """A CPU without AMX and AVX512-BF16, as torch would report it."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)


def test_auto_is_float32_on_the_cpu_and_float16_on_cuda():
    assert runtime.resolve_precision("auto", CPU) == "float32"
    assert runtime.resolve_precision("auto", torch.device("cuda")) == runtime.PRECISION_FLOAT16
    assert runtime.resolve_precision("float32", CPU) == "float32"


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(Loc2Error, match="unknown precision 'fp8'"):
        runtime.resolve_precision("fp8", CPU)
    with pytest.raises(OptionsError, match="unknown precision 'half'.*auto, float32, bfloat16"):
        JobOptions(precision="half")


def test_bfloat16_is_refused_where_it_would_be_slow(no_native_bf16):
    assert not runtime.cpu_has_native_bf16()
    with pytest.raises(Loc2Error, match="no bf16 instructions.*choose the precision auto or float32"):
        runtime.resolve_precision("bfloat16", CPU)
    with pytest.raises(Loc2Error, match="not on Apple MPS"):
        runtime.resolve_precision("bfloat16", torch.device("mps"))


def test_a_job_is_refused_before_its_weights_are_read(no_native_bf16, tmp_path):
    missing = tmp_path / "no-such-checkpoint.pt"
    with pytest.raises(Loc2Error, match="no bf16 instructions"):
        load_localizer(JobOptions(model=str(missing), device="cpu", precision="bfloat16"))


def test_onednn_is_restored_after_the_block_even_on_an_error():
    runtime.make_cpu_reproducible()
    assert not torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError), runtime.onednn_enabled():
        assert torch.backends.mkldnn.enabled
        raise RuntimeError("inside")
    assert not torch.backends.mkldnn.enabled


@needs_bf16
def test_bfloat16_features_are_close_to_float32_and_repeat_exactly():
    torch.manual_seed(0)
    fp32 = Localizer.from_preset(TINY, device="cpu", precision="float32")
    for block in fp32.backbone.blocks:  # trained-like residual branches (the init's 1e-5 hides the blocks)
        block.ls1.gamma.data.fill_(0.5)
        block.ls2.gamma.data.fill_(0.5)
    bf16 = Localizer(TINY, copy.deepcopy(fp32.backbone), fp32.matcher, device="cpu", precision="bfloat16")
    assert bf16.backbone.blocks[0].attn.qkv.weight.dtype == torch.bfloat16  # cast once, not at every call
    assert bf16.backbone.blocks[0].norm1.weight.dtype == torch.float32
    image = torch.rand(1, 3, 84, 168, generator=torch.Generator().manual_seed(1))
    reference = fp32.features(image)
    features = bf16.features(image)
    assert features.dtype == torch.float32 and features.shape == reference.shape
    assert not torch.equal(features, reference)  # bf16 really ran
    cosine = torch.nn.functional.cosine_similarity(features, reference, dim=1)
    assert cosine.min() > 0.98
    assert torch.equal(bf16.features(image), features)  # the same run again: the same bits
    assert not torch.backends.mkldnn.enabled  # float32 work after it keeps its reproducible kernels


@needs_bf16
def test_a_job_asks_for_its_precision():
    loc = load_localizer(JobOptions(device="cpu", precision="bfloat16"))
    assert loc.precision == "bfloat16" and not loc.fp16_backbone
    assert load_localizer(JobOptions(device="cpu")).precision == "float32"
