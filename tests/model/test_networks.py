"""The networks take the published weights unchanged, and compute what method §2–4 says."""

import math

import pytest
import torch
import torch.nn.functional as F
from layouts import dinov2_vitl14_layout, random_state, read_layout

from loc2.core.errors import CheckpointError
from loc2.core.model.backbone import MLP_CHUNK_TOKENS, Attention, DinoV2, Mlp
from loc2.core.model.checkpoints import load_into
from loc2.core.model.matcher import CrossViewMatcher, linear_attention, sinusoidal_encoding_2d


@pytest.fixture(scope="module")
def matcher_state():
    return random_state(read_layout("loc2_matcher_state_dict.tsv"), seed=1)


def test_published_matcher_layout_loads_strictly(matcher_state):
    m = CrossViewMatcher()
    load_into(m, matcher_state, "published.pth", "the VIGOR preset's matcher")
    assert torch.equal(m.dustbin_score, matcher_state["dustbin_score"])
    assert sum(v.numel() for v in m.state_dict().values()) == 21_548_049


def test_published_vitl14_layout_loads_strictly():
    layout = dinov2_vitl14_layout()
    assert len(layout) == 343
    state = random_state(layout, fill_random=False)
    vit = DinoV2("vitl14")
    load_into(vit, state, "dinov2_vitl14_pretrain.pth", "the VIGOR preset's backbone")
    assert sum(p.numel() for p in vit.state_dict().values()) == 304_368_640


def test_renamed_or_reshaped_entry_is_named(matcher_state):
    renamed = dict(matcher_state)
    renamed["grd_projector.final_block.conv9.weight"] = renamed.pop("grd_projector.final_block.conv1.weight")
    with pytest.raises(CheckpointError) as err:
        load_into(CrossViewMatcher(), renamed, "ckpt.pth", "the KITTI preset's matcher")
    msg = str(err.value)
    assert "ckpt.pth" in msg and "KITTI" in msg
    assert "missing: grd_projector.final_block.conv1.weight" in msg and "conv9" in msg

    reshaped = dict(matcher_state)
    reshaped["sat_projector.resblocks.1.bn1.weight"] = torch.zeros(255)
    with pytest.raises(
        CheckpointError, match=r"sat_projector\.resblocks\.1\.bn1\.weight \(255,\) \(expected \(256,\)\)"
    ):
        load_into(CrossViewMatcher(), reshaped, "ckpt.pth", "the VIGOR preset's matcher")


def _naive_vit_forward(vit: DinoV2, x: torch.Tensor) -> torch.Tensor:
    """Straightforward DINOv2 forward written independently of the module's code paths."""
    b, _, h, w = x.shape
    h0, w0 = h // 14, w // 14
    x = x[:, :, : h0 * 14, : w0 * 14]
    tok = (
        F.conv2d(x, vit.patch_embed.proj.weight, vit.patch_embed.proj.bias, stride=14)
        .flatten(2)
        .transpose(1, 2)
    )
    tok = torch.cat([vit.cls_token.expand(b, -1, -1), tok], 1)
    pos = vit.pos_embed
    if (h0, w0) != (37, 37):
        grid = pos[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((h0 + 0.1) / 37, (w0 + 0.1) / 37), mode="bicubic")
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)], 1)
    tok = tok + pos
    heads = vit.blocks[0].attn.num_heads
    for blk in vit.blocks:
        y = F.layer_norm(tok, (tok.shape[-1],), blk.norm1.weight, blk.norm1.bias, 1e-6)
        q, k, v = (y @ blk.attn.qkv.weight.T + blk.attn.qkv.bias).chunk(3, -1)
        split = lambda t: t.reshape(b, -1, heads, t.shape[-1] // heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
        att = att.transpose(1, 2).reshape(b, -1, tok.shape[-1]) @ blk.attn.proj.weight.T + blk.attn.proj.bias
        tok = tok + att * blk.ls1.gamma
        y = F.layer_norm(tok, (tok.shape[-1],), blk.norm2.weight, blk.norm2.bias, 1e-6)
        y = F.gelu(y @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias) @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias
        tok = tok + y * blk.ls2.gamma
    tok = F.layer_norm(tok, (tok.shape[-1],), vit.norm.weight, vit.norm.bias, 1e-6)[:, 1:]
    return tok.transpose(1, 2).reshape(b, -1, h0, w0)


@pytest.fixture(scope="module")
def small_vit():
    torch.manual_seed(0)
    vit = DinoV2("vits14").eval()
    with torch.no_grad():
        for blk in vit.blocks:
            blk.ls1.gamma.uniform_(0.5, 1.0)
            blk.ls2.gamma.uniform_(0.5, 1.0)
    return vit


def test_vit_native_518_uses_stored_embeddings(small_vit):
    assert small_vit.position_embedding(37, 37) is small_vit.pos_embed
    x = torch.rand(1, 3, 518, 518)
    with torch.no_grad():
        out = small_vit(x)
        ref = _naive_vit_forward(small_vit, x)
    assert out.shape == (1, 384, 37, 37)
    assert torch.allclose(out, ref, atol=1e-4)


def test_vit_interpolates_and_crops_other_sizes(small_vit):
    x = torch.rand(2, 3, 100, 213)  # 7 × 15 patches, cropped top-left to 98 × 210
    with torch.no_grad():
        out = small_vit(x)
        ref = _naive_vit_forward(small_vit, x)
        same = small_vit(x[:, :, :98, :210].contiguous())
    assert out.shape == (2, 384, 7, 15)
    assert torch.allclose(out, ref, atol=1e-4)
    assert torch.equal(out, same)
    pos = small_vit.position_embedding(7, 15)
    assert pos.shape == (1, 1 + 7 * 15, 384)
    assert torch.equal(pos[:, 0], small_vit.pos_embed[:, 0])  # the class token's embedding is not resized


def test_sinusoidal_encoding_matches_formula():
    pe = sinusoidal_encoding_2d(128, 5, 7)
    k, row, col = 3, 2, 6  # 1-based y = 3, x = 7
    omega = math.exp(-2 * k * math.log(10000) / 64)
    assert pe[4 * k, row, col].item() == pytest.approx(math.sin(7 * omega), abs=1e-6)
    assert pe[4 * k + 1, row, col].item() == pytest.approx(math.cos(7 * omega), abs=1e-6)
    assert pe[4 * k + 2, row, col].item() == pytest.approx(math.sin(3 * omega), abs=1e-6)
    assert pe[4 * k + 3, row, col].item() == pytest.approx(math.cos(3 * omega), abs=1e-6)


def test_linear_attention_matches_explicit_sum():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 6, 2, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    out = linear_attention(q, k, v)
    phi = lambda t: F.elu(t) + 1  # noqa: E731
    for i in range(6):
        for h in range(2):
            num = sum(torch.dot(phi(q[0, i, h]), phi(k[0, j, h])) * v[0, j, h] for j in range(6))
            den = sum(torch.dot(phi(q[0, i, h]), phi(k[0, j, h])) for j in range(6)) + 1e-6
            assert torch.allclose(out[0, i, h], num / den, atol=1e-9)


def test_matching_probability_properties(matcher_state):
    m = CrossViewMatcher(embed_dim=1024).eval()
    load_into(m, matcher_state, "published.pth", "matcher")
    g = torch.randn(1, 1024, 4, 8)
    a = torch.randn(1, 1024, 6, 6)
    valid = torch.ones(1, 32, dtype=torch.bool)
    valid[0, :5] = False
    with torch.no_grad():
        P = m(g, a, valid)
        desc_a, desc_g = m.describe_aerial(a), m.describe_ground(g)
    assert P.shape == (1, 41 * 41, 32)
    assert torch.all(P[0, :, :5] == 0)
    assert torch.all(P >= 0) and torch.all(P.sum(1) <= 1 + 1e-5) and torch.all(P.sum(2) <= 1 + 1e-5)
    assert torch.allclose(desc_a.norm(dim=-1), torch.ones(1, 1681), atol=1e-5)
    # the dual softmax on the augmented matrix, computed by hand for one entry
    s = desc_a[0] @ desc_g[0].T / 0.1
    s[:, :5] = float("-inf")
    z = float(m.dustbin_score.detach())
    col = torch.cat([s[:, 10], torch.tensor([z])])
    row = torch.cat([s[100], torch.tensor([z])])
    expected = torch.softmax(col, 0)[100] * torch.softmax(row, 0)[10]
    assert P[0, 100, 10].item() == pytest.approx(expected.item(), rel=1e-4)


def test_efficientnet_lite0_loads_the_packaged_imagenet_weights():
    from loc2.core.model.backbone import EfficientNetLite0, build_backbone

    net = build_backbone("efficientnet_lite0").eval()
    state = EfficientNetLite0.pretrained_state()
    net.load_state_dict(state, strict=True)
    assert torch.equal(net._conv_stem.weight, state["_conv_stem.weight"])
    with torch.no_grad():
        out = net(torch.rand(1, 3, 100, 164))
    assert out.shape == (1, 152, 12, 20)  # cropped top-left to 96 × 160, stride 8
    assert torch.isfinite(out).all() and out.std() > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_mlp_in_token_chunks_gives_the_bits_of_the_whole(threads):
    """float32 on the CPU runs the MLP a chunk of tokens at a time (faster): the same bits as all at once."""
    torch.manual_seed(0)
    mlp = Mlp(384, 1536).eval()
    x = torch.randn(1, 2 * MLP_CHUNK_TOKENS + 117, 384)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            assert torch.equal(mlp(x), mlp._forward(x))
    finally:
        torch.set_num_threads(before)


def test_attention_on_contiguous_heads_gives_the_bits_of_the_strided_views():
    """The CPU copies q, k and v to contiguous heads (faster): the same bits as the projection's views."""
    torch.manual_seed(0)
    attn = Attention(384, 6).eval()
    x = torch.randn(1, 700, 384)
    with torch.inference_mode():
        qkv = attn.qkv(x).reshape(1, 700, 3, 6, 64).permute(2, 0, 3, 1, 4)
        strided = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        expected = attn.proj(strided.transpose(1, 2).reshape(1, 700, 384))
        assert torch.equal(attn(x), expected)
