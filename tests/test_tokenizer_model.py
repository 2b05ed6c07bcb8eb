"""HierarchicalPoseTokenizer: overfitting, re-encoding stability, missing points, loss terms, input checks."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skeletok.tokenizer import HierarchicalPoseTokenizer, _masked_l1

P, R = 3, 2
FINE_PARTS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # 3 limbs of 4 fine points
DENSE_PARTS = [0, 0, 1, 1, 2, 2]  # dense point i = mean of fine points 2i, 2i+1




def _poses(b, generator=None):
    """Star-shaped skeletons: 3 limbs of 4 points, each limb at its own random angle, random offset."""
    ang = torch.rand(b, 3, 1, generator=generator) * 2 * math.pi
    rad = torch.arange(1, 5).float().view(1, 1, 4) * 0.15
    x_f = torch.stack([rad * ang.cos(), rad * ang.sin()], -1).reshape(b, 12, 2)
    x_f = x_f + 0.2 * torch.randn(b, 1, 2, generator=generator)
    return x_f, x_f.reshape(b, 6, 2, 2).mean(2)


def _tokenizer(**kw):
    args = dict(num_fine=12, num_dense=6, num_parts=P, dense_per_part=R, fine_parts=FINE_PARTS,
                dense_parts=DENSE_PARTS, dim=32, depth=1, token_mlp_dim=16, code_dim=16,
                codebook_size_sparse=24, codebook_size_dense=48, decay=0.8, threshold_ema_dead_code=1.0)
    args.update(kw)
    return HierarchicalPoseTokenizer(**args)


@pytest.fixture(scope="module")
def trained():
    """A tiny tokenizer overfitted on 8 fixed poses (500 AdamW steps, one-cycle LR)."""
    torch.manual_seed(0)
    x_f, x_d = _poses(8)
    tok = _tokenizer(mask_rate=0.0)
    opt = torch.optim.AdamW(tok.parameters(), lr=3e-3)
    steps = 500
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    tok.train()
    for _ in range(steps):
        loss = tok(x_f, x_d)[4]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return tok.eval(), x_f, x_d


def test_overfits_a_small_batch(trained):
    tok, x_f, x_d = trained
    q_s, q_d = tok.encode(x_f)
    x_d_hat, x_f_hat = tok.decode(q_s, q_d)
    # predicting the mean pose would cost ~0.29; the threshold is 0.01 (mean |error| per coordinate)
    assert (x_f - x_f.mean(0)).abs().mean() > 0.2
    assert (x_d_hat - x_d).abs().mean() < 0.01
    assert (x_f_hat - x_f).abs().mean() < 0.01
    # forward in eval mode gives the same tokens and reconstructions as encode + decode
    out = tok(x_f, x_d)
    assert torch.equal(out[2], q_s) and torch.equal(out[3], q_d)
    assert torch.allclose(out[1], x_f_hat, atol=1e-6)
    # tokens are informative: the 8 poses get 8 different sparse token sequences
    assert len({tuple(q) for q in q_s.tolist()}) == 8


def test_re_encoding_the_decoded_pose_gives_the_same_tokens(trained):
    tok, x_f, _ = trained
    q_s, q_d = tok.encode(x_f)
    _, x_f_hat = tok.decode(q_s, q_d)
    q_s2, q_d2 = tok.encode(x_f_hat)
    assert torch.equal(q_s2, q_s) and torch.equal(q_d2, q_d)


def test_token_layout_and_codebook_access(trained):
    tok, x_f, _ = trained
    q_s, q_d = tok.encode(x_f)
    assert q_s.dtype == torch.long and q_s.shape == (8, P) and q_d.shape == (8, P, R)
    assert q_s.max() < 24 and q_d.max() < 48
    assert tok.codebook.codes(0).shape == (24, 16) and tok.codebook.codes(1).shape == (48, 16)
    assert tok.codebook.usage(0, q_s) == pytest.approx(len(q_s.unique()) / 24)


def test_moving_an_invisible_point_does_not_change_the_tokens(trained):
    tok, x_f, _ = trained
    vis = torch.ones(8, 12, dtype=torch.bool)
    vis[:, 5] = False
    moved = x_f.clone()
    moved[:, 5] = torch.tensor([3.0, -2.0])
    q = tok.encode(x_f, vis)
    assert all(torch.equal(a, b) for a, b in zip(q, tok.encode(moved, vis)))
    moved[:, 5] = float("nan")
    assert all(torch.equal(a, b) for a, b in zip(q, tok.encode(moved, vis)))
    assert torch.equal(tok.encoder_fine(x_f, vis), tok.encoder_fine(moved, vis))


def test_loss_breakdown_sums_to_total_and_terms_switch_off():
    torch.manual_seed(0)
    x_f, x_d = _poses(4)
    tok = _tokenizer(num_actions=3).eval()
    action = torch.tensor([0, 1, 2, 1])
    *out, loss, terms = tok(x_f, x_d, action=action, return_loss_breakdown=True)
    assert set(terms) == {"rec_dense", "rec_fine", "commit_sparse", "commit_dense", "local", "global", "total"}
    parts = sum(v for k, v in terms.items() if k != "total")
    assert terms["total"].item() == pytest.approx(loss.item(), rel=1e-6)
    assert parts.item() == pytest.approx(loss.item(), rel=1e-5)
    assert terms["global"] > 0 and terms["local"] > 0 and terms["commit_dense"] > 0
    assert terms["rec_fine"].item() == pytest.approx((out[1] - x_f).abs().mean().item(), rel=1e-5)
    assert tok(x_f, x_d, return_loss_breakdown=True)[5]["global"] == 0  # no labels
    no_align = _tokenizer(lambda_local=0.0).eval()
    assert no_align(x_f, x_d, action=action, return_loss_breakdown=True)[5]["local"] == 0
    assert not hasattr(no_align, "prototypes")  # num_actions=0: no action head at all


def test_training_masks_points_at_the_given_rate_and_eval_does_not():
    tok = _tokenizer(mask_rate=0.3)
    seen = []
    tok.encoder_fine.register_forward_pre_hook(lambda mod, args: seen.append(args[1]))
    x_f, x_d = _poses(256)
    tok.train()
    tok(x_f, x_d)
    hidden = (~seen[-1]).float().mean().item()
    assert 0.25 < hidden < 0.35
    tok.eval()
    tok(x_f, x_d)
    assert seen[-1] is None
    tok.train()
    tok.codebook.eval()  # e.g. a frozen codebook inside a training model
    tok.encode(x_f)  # encode has eval semantics even on a module in training mode
    assert seen[-1] is None and tok.training and tok.encoder_fine.training and not tok.codebook.training


def test_invisible_fine_points_are_left_out_of_the_loss():
    x_f, x_d = _poses(2)
    vis = torch.ones(2, 12, dtype=torch.bool)
    vis[0, 3] = False
    tok = _tokenizer().eval()
    holed = x_f.clone()
    holed[0, 3] = float("nan")
    *out, loss, terms = tok(holed, x_d, visibility=vis, return_loss_breakdown=True)
    assert torch.isfinite(loss)
    err = (out[1] - x_f).abs()
    assert terms["rec_fine"].item() == pytest.approx(err[vis].mean().item(), rel=1e-5)


def _loss_and_grads(tok, x_f, x_d, **kw):
    tok.zero_grad()
    *_, loss, terms = tok(x_f, x_d, return_loss_breakdown=True, **kw)
    loss.backward()
    return loss.detach(), terms, {n: p.grad.clone() for n, p in tok.named_parameters() if p.grad is not None}


def _initialised_tokenizer():
    """An eval-mode tokenizer whose codebooks are already initialised (so later calls are deterministic)."""
    torch.manual_seed(0)
    tok = _tokenizer(num_actions=3).eval()
    tok(*_poses(8, torch.Generator().manual_seed(1)))
    return tok


def test_invisible_dense_points_change_neither_loss_nor_gradients():
    tok = _initialised_tokenizer()
    x_f, x_d = _poses(3, torch.Generator().manual_seed(2))
    vis = torch.ones(3, 6, dtype=torch.bool)
    vis[0, 1] = vis[2, 4] = vis[2, 5] = False
    nan_filled, far_off = x_d.clone(), x_d.clone()
    nan_filled[~vis] = float("nan")
    far_off[~vis] = 1e3
    loss_nan, terms_nan, grads_nan = _loss_and_grads(tok, x_f, nan_filled, dense_visibility=vis)
    loss_far, terms_far, grads_far = _loss_and_grads(tok, x_f, far_off, dense_visibility=vis)
    assert torch.isfinite(loss_nan) and loss_nan == loss_far
    assert grads_nan.keys() == grads_far.keys() and len(grads_nan) > 0
    for name, grad in grads_nan.items():
        assert torch.isfinite(grad).all(), name
        assert torch.equal(grad, grads_far[name]), name
    # rec_dense is the mean |error| over the visible points' coordinates only (13 points x 2 coordinates)
    x_d_hat = tok(x_f, x_d)[0]
    assert terms_nan["rec_dense"].item() == pytest.approx((x_d_hat - x_d).abs()[vis].mean().item(), rel=1e-5)
    # the fine term does not see the dense targets at all
    assert terms_nan["rec_fine"] == tok(x_f, x_d, return_loss_breakdown=True)[5]["rec_fine"]


def test_all_visible_dense_mask_keeps_todays_loss():
    tok = _initialised_tokenizer()
    x_f, x_d = _poses(4, torch.Generator().manual_seed(3))
    all_visible = torch.ones(4, 6, dtype=torch.bool)
    loss_old, terms_old, grads_old = _loss_and_grads(tok, x_f, x_d)
    loss_new, terms_new, grads_new = _loss_and_grads(tok, x_f, x_d, dense_visibility=all_visible)
    assert loss_new.item() == pytest.approx(loss_old.item(), rel=1e-6, abs=1e-7)
    assert terms_new["rec_dense"].item() == pytest.approx(terms_old["rec_dense"].item(), rel=1e-6)
    for name, grad in grads_old.items():
        torch.testing.assert_close(grads_new[name], grad, rtol=1e-5, atol=1e-7)
    # and as 0/1 floats, the way a collated batch may carry it
    assert tok(x_f, x_d, dense_visibility=all_visible.float())[4].item() == pytest.approx(loss_old.item(), rel=1e-6)


def test_no_visible_dense_point_gives_zero_dense_loss():
    tok = _initialised_tokenizer()
    x_f, _ = _poses(2)
    x_d = torch.full((2, 6, 2), float("nan"))
    terms = tok(x_f, x_d, dense_visibility=torch.zeros(2, 6, dtype=torch.bool), return_loss_breakdown=True)[5]
    assert terms["rec_dense"].item() == 0.0 and torch.isfinite(terms["total"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=12, max_size=12), st.floats(-1e6, 1e6, allow_nan=False))
def test_masked_l1_ignores_whatever_sits_at_invisible_points(mask, fill):
    pred = torch.linspace(-1, 1, 24).reshape(2, 6, 2).requires_grad_(True)
    target = torch.linspace(1, -0.5, 24).reshape(2, 6, 2)
    vis = torch.tensor(mask).reshape(2, 6)
    filled = torch.where(vis[..., None], target, torch.full_like(target, fill))
    nan = torch.where(vis[..., None], target, torch.full_like(target, float("nan")))
    a = _masked_l1(pred, filled, vis)
    (grad_a,) = torch.autograd.grad(a, pred)
    b = _masked_l1(pred, nan, vis)
    (grad_b,) = torch.autograd.grad(b, pred)
    expected = (pred - target).abs()[vis].mean().item() if vis.any() else 0.0
    assert a.item() == b.item() == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert torch.equal(grad_a, grad_b) and (grad_a[~vis] == 0).all()


def test_dense_visibility_reaches_the_recipes_step():
    from recipes.hipart.train_tokenizer import _step

    seen = {}

    def net(x_f, x_d, **kw):
        seen.update(kw)
        raise StopIteration

    batch = {"action": torch.zeros(2, dtype=torch.long), "sparse_2d_clean": torch.zeros(2, 17, 2),
             "fine_2d": torch.zeros(2, 12, 2), "dense_2d": torch.zeros(2, 6, 2),
             "fine_visible": torch.ones(2, 12, dtype=torch.bool), "dense_visible": torch.zeros(2, 6, dtype=torch.bool)}
    with pytest.raises(StopIteration):
        _step(False)(net, batch)
    assert seen["dense_visibility"] is batch["dense_visible"] and seen["visibility"] is batch["fine_visible"]


def test_dense_projection_and_gradients():
    tok = _tokenizer(projection="dense", fine_parts=None, dense_parts=None)
    x_f, x_d = _poses(4)
    tok.train()
    loss = tok(x_f, x_d)[4]
    loss.backward()
    assert tok.encoder_fine.embed.weight.grad.abs().sum() > 0
    assert tok.decoder_sparse.embed.weight.grad.abs().sum() > 0  # D_s learns through dense quantisation


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda t, f, d: t(f[:, :11], d), "x_f"),
        (lambda t, f, d: t(f, d[:, :5]), "x_d"),
        (lambda t, f, d: t(f.clone().index_fill_(1, torch.tensor([0]), float("nan")), d), "x_f"),
        (lambda t, f, d: t(f, d.clone().index_fill_(1, torch.tensor([0]), float("nan"))), "x_d"),
        (lambda t, f, d: t(f, d[:3]), "x_d"),
        (lambda t, f, d: t(f, d, visibility=torch.ones(4, 11, dtype=torch.bool)), "visibility"),
        (lambda t, f, d: t(f, d, dense_visibility=torch.ones(4, 5, dtype=torch.bool)), "dense_visibility"),
        (lambda t, f, d: t(f, d.clone().index_fill_(1, torch.tensor([0]), float("nan")),
                           dense_visibility=torch.ones(4, 6, dtype=torch.bool)), "x_d"),
        (lambda t, f, d: t(f, d, action=torch.tensor([0, 1, 2, 3])), "action"),
        (lambda t, f, d: t(f, d, action=torch.tensor([0, 1])), "action"),
        (lambda t, f, d: t.encode(f[..., :1]), "x_f"),
        (lambda t, f, d: t.decode(torch.zeros(4, P, dtype=torch.long), torch.zeros(4, P, R + 1, dtype=torch.long)),
         "q_d"),
        (lambda t, f, d: t.decode(torch.zeros(4, P, dtype=torch.long), torch.zeros(3, P, R, dtype=torch.long)),
         "q_d"),
        (lambda t, f, d: t.decode(torch.full((4, P), 24), torch.zeros(4, P, R, dtype=torch.long)), "q_s"),
        (lambda t, f, d: t.decode(torch.zeros(4, P, dtype=torch.long), torch.full((4, P, R), -1)), "q_d"),
        (lambda t, f, d: t.decode(torch.zeros(4, P), torch.zeros(4, P, R, dtype=torch.long)), "q_s"),
    ],
)
def test_bad_input_raises_value_error(call, name):
    x_f, x_d = _poses(4)
    with pytest.raises(ValueError, match=name):
        call(_tokenizer(num_actions=3).eval(), x_f, x_d)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(projection="conv"), "projection"),
        (dict(fine_parts=None), "fine_parts"),
        (dict(dense_parts=[0, 1, 2]), "dense_parts"),
        (dict(fine_parts=[0] * 11 + [3]), "fine_parts"),
        (dict(mask_rate=1.0), "mask_rate"),
        (dict(num_actions=-1), "num_actions"),
    ],
)
def test_bad_constructor_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        _tokenizer(**kw)
