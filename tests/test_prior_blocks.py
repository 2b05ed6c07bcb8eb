"""LSAB and GCSAB: incremental (cached) decoding equals the full pass; LSAB pooling and slot order; `attend`."""

import pytest
import torch
import torch.nn.functional as F

from skeletok.cached_block import CachedBlock, attend
from skeletok.gcsab import GCSAB
from skeletok.lsab import LSAB





@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gcsab_step_by_step_equals_full_pass(seed):
    torch.manual_seed(seed)
    net = GCSAB(dim=32, depth=3, heads=4, max_seq_len=12).eval()
    x = torch.randn(3, 12, 32)
    full, full_cache = net(x)
    h, cache = net(x[:, :5])  # a prefix first, then one token at a time
    outs = [h]
    for i in range(5, 12):
        h, cache = net(x[:, i : i + 1], cache=cache)
        outs.append(h)
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=1e-5)
    for (k, v), (fk, fv) in zip(cache.kv, full_cache.kv):
        torch.testing.assert_close(k, fk, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v, fv, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 4])
def test_gcsab_static_cache_equals_concatenating_cache(batch):
    """forward_static with a preallocated cache gives the outputs and keys/values of forward with a growing cache."""
    torch.manual_seed(batch)
    net = GCSAB(dim=32, depth=3, heads=4, max_seq_len=12).eval()
    x = torch.randn(batch, 12, 32)
    static = net.new_cache(batch)
    assert static.keys.shape == (3, batch, 4, 12, 8)
    h, cache = net(x[:, :5])
    torch.testing.assert_close(net.forward_static(x[:, :5], static, 0), h, atol=0, rtol=0)
    for i in range(5, 12):
        h, cache = net(x[:, i : i + 1], cache=cache)
        torch.testing.assert_close(net.forward_static(x[:, i : i + 1], static, i), h, atol=0, rtol=0)
    for layer, (k, v) in enumerate(cache.kv):
        torch.testing.assert_close(static.keys[layer], k, atol=0, rtol=0)
        torch.testing.assert_close(static.values[layer], v, atol=0, rtol=0)
    # several new tokens after cached ones: the offset causal mask
    h, _ = net(x[:, 7:10], cache=net(x[:, :7])[1])
    torch.testing.assert_close(net.forward_static(x[:, 7:10], static, 7), h, atol=1e-6, rtol=1e-6)


def test_gcsab_multi_token_append_with_cache_is_causal():
    net = GCSAB(dim=16, depth=2, heads=2, max_seq_len=10).eval()
    x = torch.randn(2, 10, 16)
    full, _ = net(x)
    _, cache = net(x[:, :4])
    h, _ = net(x[:, 4:10], cache=cache)  # six new tokens at once: needs an offset causal mask
    torch.testing.assert_close(h, full[:, 4:], atol=1e-5, rtol=1e-5)


def test_gcsab_is_causal():
    net = GCSAB(dim=16, depth=2, heads=2, max_seq_len=8).eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] += 10.0 * torch.randn(1, 3, 16)
    hx, _ = net(x)
    hy, _ = net(y)
    torch.testing.assert_close(hx[:, :5], hy[:, :5])
    assert not torch.allclose(hx[:, 5:], hy[:, 5:])


def test_gcsab_rejects_bad_input():
    net = GCSAB(dim=16, depth=1, heads=2, max_seq_len=4)
    with pytest.raises(ValueError, match="x"):
        net(torch.randn(1, 3, 8))
    _, cache = net(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="batch"):
        net(torch.randn(1, 1, 16), cache=cache)
    with pytest.raises(ValueError, match="max_seq_len"):
        net(torch.randn(2, 2, 16), cache=cache)


def test_cached_block_matches_manual_attention():
    torch.manual_seed(0)
    block = CachedBlock(dim=8, heads=2, causal=True).eval()
    x = torch.randn(1, 3, 8)
    y, (k, v) = block(x)
    # reference: plain softmax attention, written out
    q, k2, v2 = block.to_qkv(block.attn_norm(x)).view(1, 3, 3, 2, 4).permute(2, 0, 3, 1, 4)
    scores = q @ k2.transpose(-1, -2) / 2.0
    scores = scores.masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
    att = (scores.softmax(-1) @ v2).permute(0, 2, 1, 3).reshape(1, 3, 8)
    ref = x + block.to_out(att)
    ref = ref + block.ff_out(torch.nn.functional.silu(block.ff_in(block.ff_norm(ref))))
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(k, k2)


def test_lsab_is_mean_over_slots_and_parts_are_independent():
    torch.manual_seed(0)
    lsab = LSAB(dim=16, depth=2, heads=4, num_slots=4).eval()
    codes = torch.randn(2, 5, 4, 16)
    g = lsab(codes)
    # each part alone gives the same summary as in the batch of parts
    for i in range(5):
        torch.testing.assert_close(lsab(codes[:, i : i + 1])[:, 0], g[:, i], atol=1e-6, rtol=1e-5)
    # changing part 2's codes changes only g^2
    other = codes.clone()
    other[:, 2] = torch.randn(2, 4, 16)
    g2 = lsab(other)
    torch.testing.assert_close(g2[:, [0, 1, 3, 4]], g[:, [0, 1, 3, 4]])
    assert not torch.allclose(g2[:, 2], g[:, 2])
    # slots are told apart: swapping two dense codes changes g
    swapped = codes[:, :, [0, 2, 1, 3]]
    assert not torch.allclose(lsab(swapped), g, atol=1e-4)
    # the output is the mean of the normed block outputs
    x = codes.reshape(10, 4, 16) + lsab.slot_emb
    for block in lsab.blocks:
        x, _ = block(x)
    torch.testing.assert_close(lsab.norm(x).mean(1).reshape(2, 5, 16), g)


def test_lsab_summarise_is_forward_over_a_flat_batch_of_parts():
    lsab = LSAB(dim=16, heads=2, num_slots=4, depth=2).eval()
    codes = torch.randn(3, 5, 4, 16)
    torch.testing.assert_close(lsab.summarise(codes.flatten(0, 1)).unflatten(0, (3, 5)), lsab(codes), atol=0, rtol=0)


def test_lsab_rejects_wrong_slot_count():
    with pytest.raises(ValueError, match="codes"):
        LSAB(dim=16, heads=2, num_slots=4)(torch.randn(1, 2, 3, 16))


@pytest.mark.parametrize("keys", [1, 5, 33])
def test_attend_single_query_matches_the_fused_kernel_and_passes_the_rest_through(keys):
    g = torch.Generator().manual_seed(keys)
    q, k, v = (torch.randn(3, 2, n, 8, generator=g) for n in (1, keys, keys))
    fused = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(attend(q, k, v), fused, atol=1e-6, rtol=1e-5)
    # by hand: softmax over the keys of the scaled dot products
    w = torch.einsum("bhqe,bhke->bhqk", q.double(), k.double()) / 8 ** 0.5
    torch.testing.assert_close(attend(q, k, v).double(), w.softmax(-1) @ v.double(), atol=1e-6, rtol=1e-5)
    # several queries, a mask or causality: exactly torch's kernel
    q4 = torch.randn(3, 2, 4, 8, generator=g)
    k4, v4 = torch.randn(3, 2, 4, 8, generator=g), torch.randn(3, 2, 4, 8, generator=g)
    assert torch.equal(attend(q4, k4, v4, is_causal=True), F.scaled_dot_product_attention(q4, k4, v4, is_causal=True))
    mask = torch.ones(1, 4, dtype=torch.bool).tril(2)
    assert torch.equal(attend(q4[:, :, :1], k4, v4, mask=mask[:1]),
                       F.scaled_dot_product_attention(q4[:, :, :1], k4, v4, attn_mask=mask[:1]))
