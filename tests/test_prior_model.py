"""HierarchicalARPrior: loss, overfitting, cached generation, invisible joints, sampling, input checks."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skeletok.prior import HierarchicalARPrior




P, R, KS, KD, J = 4, 3, 8, 10, 17


def tiny(**kw):
    args = dict(num_parts=P, dense_per_part=R, codebook_size_sparse=KS, codebook_size_dense=KD, num_joints=J,
                dim=32, depth=2, heads=4, cond_depth=1, dropout=0.0)
    args.update(kw)
    return HierarchicalARPrior(**args)


def batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, J, 2, generator=g) * 2 - 1
    vis = torch.rand(b, J, generator=g) > 0.3
    q_s = torch.randint(0, KS, (b, P), generator=g)
    q_d = torch.randint(0, KD, (b, P, R), generator=g)
    return x, vis, q_s, q_d


def test_loss_is_hand_computed_cross_entropy():
    model = tiny(lambda_d=1.5, dropout=0.25).eval()
    x, vis, q_s, q_d = batch()
    logits_s, logits_d, loss, parts = model(x, vis, q_s, q_d, return_loss_breakdown=True)
    ls, ld = logits_s.double(), logits_d.double()
    ce_s = -(ls.log_softmax(-1).gather(-1, q_s[..., None])).mean()
    ce_d = -(ld.log_softmax(-1).gather(-1, q_d[..., None])).mean()
    torch.testing.assert_close(loss.double(), ce_s + 1.5 * ce_d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["ce_sparse"].double(), ce_s, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["ce_dense"].double(), ce_d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["total"], loss.detach())
    assert parts["acc_sparse"] == (logits_s.argmax(-1) == q_s).float().mean()
    assert parts["acc_dense"] == (logits_d.argmax(-1) == q_d).float().mean()
    # three-tuple without the breakdown, same values
    out = model(x, vis, q_s, q_d)
    assert len(out) == 3
    torch.testing.assert_close(out[2], loss)


def test_predictions_are_causal_over_parts():
    model = tiny().eval()
    x, vis, q_s, q_d = batch()
    ls, ld, _ = model(x, vis, q_s, q_d)
    q_s2, q_d2 = q_s.clone(), q_d.clone()
    q_s2[:, 2] = (q_s2[:, 2] + 1) % KS
    q_d2[:, 2] = (q_d2[:, 2] + 1) % KD
    ls2, ld2, _ = model(x, vis, q_s2, q_d2)
    # parts 0..2's sparse logits and parts 0..1's dense logits do not see part 2's tokens ...
    torch.testing.assert_close(ls2[:, :3], ls[:, :3])
    torch.testing.assert_close(ld2[:, :2], ld[:, :2])
    # ... part 2's dense logits see its own (teacher-forced) sparse code, part 3 sees everything before it
    assert not torch.allclose(ld2[:, 2], ld[:, 2])
    assert not torch.allclose(ls2[:, 3], ls[:, 3])


def test_overfits_fixed_sequences_and_generates_them():
    torch.manual_seed(0)
    model = tiny()
    x, vis, q_s, q_d = batch(b=4, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        _, _, loss, parts = model(x, vis, q_s, q_d, return_loss_breakdown=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if parts["acc_sparse"] == 1 and parts["acc_dense"] == 1 and loss < 0.05:
            break
    model.eval()
    _, _, _, parts = model(x, vis, q_s, q_d, return_loss_breakdown=True)
    assert parts["acc_sparse"] == 1.0 and parts["acc_dense"] == 1.0
    gen_s, gen_d = model.generate(x, vis)
    assert torch.equal(gen_s, q_s) and torch.equal(gen_d, q_d)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("temperature", [0.0, 1.0, 2.5])
def test_cached_generation_equals_uncached(seed, temperature):
    torch.manual_seed(seed)
    model = tiny(depth=3)
    x, vis, _, _ = batch(b=5, seed=seed)
    a = model.generate(x, vis, temperature=temperature, use_cache=True,
                       generator=torch.Generator().manual_seed(seed))
    b = model.generate(x, vis, temperature=temperature, use_cache=False,
                       generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("b", [1, 2, 7, 64])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_fast_generation_tokens_identical_to_straightforward_recomputation(b, temperature):
    """The fast path (static KV cache filled in place, no per-step checks) picks exactly the tokens of recomputing the
    whole sequence at every step, at every batch size, with hidden joints (some poses fully hidden), all 16 parts."""
    torch.manual_seed(b)
    model = tiny(num_parts=16, depth=3, lsab_depth=2)
    g = torch.Generator().manual_seed(b)
    x = torch.rand(b, J, 2, generator=g) * 2 - 1
    vis = torch.rand(b, J, generator=g) > 0.4
    vis[0, :5] = False
    if b > 2:
        vis[1] = False
    x[~vis] = float("nan")  # hidden joints' values are never read
    fast = model.generate(x, vis, temperature=temperature, generator=torch.Generator().manual_seed(7))
    slow = model.generate(x, vis, temperature=temperature, use_cache=False, generator=torch.Generator().manual_seed(7))
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
    assert fast[0].shape == (b, 16) and fast[1].shape == (b, 16, R)


def test_generation_matches_teacher_forced_argmax():
    model = tiny()
    x, vis, _, _ = batch(b=3)
    q_s, q_d = model.generate(x, vis)
    ls, ld, _ = model.eval()(x, vis, q_s, q_d)
    # feeding the generated tokens back gives logits whose argmax is those tokens
    assert torch.equal(ls.argmax(-1), q_s) and torch.equal(ld.argmax(-1), q_d)


def test_generate_restores_training_mode_and_is_deterministic():
    model = tiny(dropout=0.5).train()
    x, vis, _, _ = batch()
    a = model.generate(x, vis)
    b = model.generate(x, vis)
    assert model.training
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_invisible_joints_do_not_matter():
    model = tiny().eval()
    x, vis, q_s, q_d = batch(b=4)
    moved = x.clone()
    moved[~vis] = torch.randn(int((~vis).sum()), 2) * 100.0
    nan = x.clone()
    nan[~vis] = float("nan")
    ls, ld, loss = model(x, vis, q_s, q_d)
    for other in (moved, nan):
        ls2, ld2, loss2 = model(other, vis, q_s, q_d)
        assert torch.equal(ls, ls2) and torch.equal(ld, ld2) and torch.equal(loss, loss2)
        for t in (0.0, 1.0):
            a = model.generate(x, vis, temperature=t, generator=torch.Generator().manual_seed(3))
            b = model.generate(other, vis, temperature=t, generator=torch.Generator().manual_seed(3))
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # a visible joint does matter
    shifted = x.clone()
    j = int(vis[0].nonzero()[0])
    shifted[0, j] += 0.5
    assert not torch.allclose(model(shifted, vis, q_s, q_d)[0][0], ls[0])


def test_visibility_none_means_all_visible():
    model = tiny().eval()
    x, _, q_s, q_d = batch()
    a = model(x, None, q_s, q_d)[0]
    b = model(x, torch.ones(3, J, dtype=torch.bool), q_s, q_d)[0]
    torch.testing.assert_close(a, b)


def test_sampling_gives_different_in_range_hypotheses():
    model = tiny()
    x, vis, _, _ = batch(b=2)
    hyps = [model.generate(x, vis, temperature=1.0, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    for q_s, q_d in hyps:
        assert q_s.dtype == torch.long and q_s.min() >= 0 and q_s.max() < KS
        assert q_d.dtype == torch.long and q_d.min() >= 0 and q_d.max() < KD
    distinct = {tuple(torch.cat((s.flatten(), d.flatten())).tolist()) for s, d in hyps}
    assert len(distinct) == 4
    # the same seed gives the same hypothesis
    again = model.generate(x, vis, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], hyps[0][0]) and torch.equal(again[1], hyps[0][1])


def test_load_codebooks_copies_and_freezes():
    model = tiny(code_dim=(6, 12))
    c_s, c_d = torch.randn(KS, 6), torch.randn(KD, 12)
    model.load_codebooks(c_s, c_d)
    assert torch.equal(model.codebook_sparse.weight, c_s) and torch.equal(model.codebook_dense.weight, c_d)
    x, vis, q_s, q_d = batch()
    model(x, vis, q_s, q_d)[2].backward()
    assert model.codebook_sparse.weight.grad is None and model.codebook_dense.weight.grad is None
    assert model.proj_sparse[1].weight.grad is not None
    # the embedding really is C_s(q_s) then the projection
    torch.testing.assert_close(model.embed_sparse(q_s), model.proj_sparse(c_s[q_s]))
    with pytest.raises(ValueError, match="dense"):
        model.load_codebooks(c_s, torch.randn(KD, 6))
    model.load_codebooks(c_s, c_d, freeze=False)
    assert model.codebook_dense.weight.requires_grad


@settings(deadline=None, max_examples=30)
@given(
    coords=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=2 * J, max_size=2 * J),
    vis_bits=st.integers(0, 2**J - 1),
    seed=st.integers(0, 2**16),
)
def test_loss_finite_for_any_finite_input(coords, vis_bits, seed):
    torch.manual_seed(0)
    model = tiny()
    x = torch.tensor(coords, dtype=torch.float32).reshape(1, J, 2)
    vis = torch.tensor([(vis_bits >> i) & 1 for i in range(J)], dtype=torch.bool)[None]
    g = torch.Generator().manual_seed(seed)
    q_s, q_d = torch.randint(0, KS, (1, P), generator=g), torch.randint(0, KD, (1, P, R), generator=g)
    ls, ld, loss = model(x, vis, q_s, q_d)
    assert torch.isfinite(loss) and torch.isfinite(ls).all() and torch.isfinite(ld).all()


def test_bad_inputs_raise_value_error_naming_the_argument():
    model = tiny()
    x, vis, q_s, q_d = batch(b=2)
    cases = [
        ("x_s", dict(x_s=torch.randn(2, 16, 2))),
        ("x_s", dict(x_s=torch.randn(2, J, 3))),
        ("x_s", dict(x_s=x.masked_fill(vis[..., None], float("nan")))),
        ("visibility", dict(visibility=torch.ones(2, 16, dtype=torch.bool))),
        ("visibility", dict(visibility=torch.full((2, J), 2))),
        ("visibility", dict(visibility=torch.ones(3, J, dtype=torch.bool))),
        ("q_s", dict(q_s=torch.full((2, P), KS))),
        ("q_s", dict(q_s=torch.full((2, P), -1))),
        ("q_s", dict(q_s=q_s.float())),
        ("q_s", dict(q_s=q_s[:1])),
        ("q_d", dict(q_d=torch.full((2, P, R), KD))),
        ("q_d", dict(q_d=q_d[:1])),
        ("q_d", dict(q_d=q_d[:, :, :2])),
    ]
    for name, change in cases:
        args = dict(x_s=x, visibility=vis, q_s=q_s, q_d=q_d) | change
        with pytest.raises(ValueError, match=name):
            model(args["x_s"], args["visibility"], args["q_s"], args["q_d"])
    with pytest.raises(ValueError, match="x_s"):
        model.generate(torch.randn(2, J), vis)
    with pytest.raises(ValueError, match="visibility"):
        model.generate(x, vis[:, :5])
    with pytest.raises(ValueError, match="temperature"):
        model.generate(x, vis, temperature=-1.0)
    with pytest.raises(ValueError, match="heads"):
        tiny(dim=30, heads=4)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_returned_probabilities_are_the_teacher_forced_softmax(temperature):
    model = tiny()
    x, vis, _, _ = batch(b=3, seed=5)
    q_s, q_d, p_s, p_d = model.generate(x, vis, temperature=temperature, return_probs=True,
                                        generator=torch.Generator().manual_seed(2))
    ls, ld, _ = model.eval()(x, vis, q_s, q_d)
    torch.testing.assert_close(p_s, ls.softmax(-1).gather(-1, q_s[..., None]).squeeze(-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(p_d, ld.softmax(-1).gather(-1, q_d[..., None]).squeeze(-1), atol=1e-5, rtol=1e-4)
    assert ((p_s > 0) & (p_s <= 1)).all() and ((p_d > 0) & (p_d <= 1)).all()
    if temperature == 0.0:  # argmax picks the most likely code: at least 1/k of the mass
        assert (p_s >= 1 / KS - 1e-6).all() and (p_d >= 1 / KD - 1e-6).all()
    # the tokens do not depend on asking for the probabilities
    again = model.generate(x, vis, temperature=temperature, generator=torch.Generator().manual_seed(2))
    assert torch.equal(again[0], q_s) and torch.equal(again[1], q_d)
