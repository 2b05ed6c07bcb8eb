"""HierarchicalPoseTokenizer: overfitting, re-encoding stability, missing points, loss terms, input checks."""

import math

import pytest
import torch

from skeletok.tokenizer import HierarchicalPoseTokenizer

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
