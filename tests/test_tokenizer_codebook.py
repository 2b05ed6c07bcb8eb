"""HierarchicalCodebook: usage/perplexity values, lookup consistency, EMA behaviour, input checks."""

import math

import pytest
import torch

from skeletok.codebook import HierarchicalCodebook


def _codebook(**kw):
    args = dict(codebook_sizes=(8, 16), dims=(4, 6), decay=0.8, threshold_ema_dead_code=0.0)
    args.update(kw)
    return HierarchicalCodebook(**args)


def test_usage_and_perplexity_on_constructed_indices():
    cb = _codebook()
    half = torch.arange(8).repeat(5).view(4, 10)  # codes 0..7 of 16, 5 times each
    assert cb.usage(1, half) == pytest.approx(0.5)
    assert cb.perplexity(1, half) == pytest.approx(8.0)
    one = torch.full((3, 4), 5)
    assert cb.usage(0, one) == pytest.approx(1 / 8)
    assert cb.perplexity(0, one) == pytest.approx(1.0)
    skewed = torch.tensor([[0, 0, 0, 1]])  # p = (3/4, 1/4)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert cb.perplexity(0, skewed) == pytest.approx(math.exp(entropy))
    assert cb.usage(0, torch.arange(8).view(2, 4)) == pytest.approx(1.0)
    assert cb.perplexity(0, torch.arange(8).view(2, 4)) == pytest.approx(8.0)


def test_lookup_returns_exactly_the_quantized_vectors_and_nearest_codes():
    cb = _codebook()
    cb.train()
    cb.quantize(0, torch.randn(4, 6, 4))  # k-means init
    cb.quantize(1, torch.randn(4, 6, 6))
    cb.eval()
    for level, d in ((0, 4), (1, 6)):
        z = torch.randn(5, 7, d)
        z_q, idx, commit = cb.quantize(level, z)
        assert idx.dtype == torch.long and idx.shape == (5, 7)
        assert torch.equal(cb.lookup(level, idx), z_q)
        assert torch.equal(cb.codes(level)[idx], z_q)
        # nearest code in Euclidean distance
        nearest = torch.cdist(z.reshape(-1, d), cb.codes(level)).argmin(-1).view(5, 7)
        assert torch.equal(idx, nearest)
        assert commit.item() == pytest.approx(0.25 * ((z - z_q) ** 2).mean().item(), rel=1e-5)
    assert cb.codes(0).shape == (8, 4) and cb.codes(1).shape == (16, 6)


def test_ema_moves_codes_in_training_only_and_gradients_reach_the_input():
    cb = _codebook()
    cb.train()
    cb.quantize(0, torch.randn(4, 6, 4))
    before = cb.codes(0).clone()
    z = (torch.randn(4, 6, 4) + 3.0).requires_grad_()
    z_q, _, commit = cb.quantize(0, z)
    assert not torch.equal(before, cb.codes(0))  # EMA update
    (z_q.sum() + commit).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    cb.eval()
    frozen = cb.codes(0).clone()
    cb.quantize(0, torch.randn(4, 6, 4) + 3.0)
    assert torch.equal(frozen, cb.codes(0))


def test_kmeans_init_places_codes_on_clusters():
    torch.manual_seed(0)
    cb = HierarchicalCodebook(codebook_sizes=(2,), dims=2, kmeans_init=True, kmeans_iters=10)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0]])
    z = (centres[torch.arange(64) % 2] + 0.01 * torch.randn(64, 2)).view(1, 64, 2)
    cb.train()
    _, idx, _ = cb.quantize(0, z)
    codes = cb.codes(0)
    # each code sits on one cluster (within noise), and the two clusters get different codes
    dist = torch.cdist(codes, centres)
    assert dist.min(dim=1).values.max() < 0.1
    assert idx[0, 0] != idx[0, 1]


def test_dead_codes_are_revived():
    torch.manual_seed(0)
    cb = HierarchicalCodebook(codebook_sizes=(16,), dims=2, kmeans_init=False, decay=0.5,
                              threshold_ema_dead_code=0.5)
    cb.train()
    z = torch.randn(1, 64, 2) * 0.01 + 10.0  # far from the random initial codes
    for _ in range(3):
        cb.quantize(0, z)
    _, idx, _ = cb.quantize(0, z)
    assert cb.usage(0, idx) > 1 / 16  # more than one code serves the batch after revival
    assert (cb.codes(0) - 10.0).abs().amax() < 0.1  # every code was moved onto the data


def test_sync_codebook_is_explicit_and_off_by_default():
    assert _codebook().sync_codebook is False
    for vq in _codebook().levels:
        assert vq._codebook.use_ddp is False
    assert HierarchicalCodebook(codebook_sizes=(4,), dims=2, sync_codebook=True).levels[0]._codebook.use_ddp


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda cb: cb.quantize(2, torch.randn(1, 2, 4)), "level"),
        (lambda cb: cb.quantize(0, torch.randn(1, 2, 5)), "z"),
        (lambda cb: cb.quantize(0, torch.full((1, 2, 4), float("nan"))), "z"),
        (lambda cb: cb.lookup(0, torch.tensor([[8]])), "indices"),
        (lambda cb: cb.lookup(0, torch.tensor([[-1]])), "indices"),
        (lambda cb: cb.lookup(0, torch.tensor([[0.0]])), "indices"),
        (lambda cb: cb.usage(1, torch.tensor([16])), "indices"),
        (lambda cb: cb.perplexity(0, torch.zeros(0, dtype=torch.long)), "indices"),
        (lambda cb: cb.codes(-1), "level"),
    ],
)
def test_bad_input_raises_value_error(call, name):
    with pytest.raises(ValueError, match=name):
        call(_codebook())


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="dims"):
        HierarchicalCodebook(codebook_sizes=(4, 8), dims=(2, 2, 2))
    with pytest.raises(ValueError, match="decay"):
        HierarchicalCodebook(codebook_sizes=(4,), dims=2, decay=1.0)
