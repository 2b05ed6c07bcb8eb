import pytest
import torch

from skeletok.lifter import HierarchicalLifter

SMALL = dict(dim=32, depth=2, heads=4, ff_mult=2)


def make_levels(b=4, points=(17, 48, 96), frames=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lead = (b,) if frames is None else (b, frames)
    return [torch.randn(*lead, n, 2, generator=gen) for n in points]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_default_size_matches_paper_lifter():
    assert 2.3e6 < n_params(HierarchicalLifter()) < 2.5e6
    assert 2.3e6 < n_params(HierarchicalLifter(level_points=(17,))) < 2.5e6


def test_overfits_small_batch():
    points = (17, 8, 16)  # small levels keep the test fast; the mechanism is the same
    model = HierarchicalLifter(level_points=points, **SMALL)
    levels = make_levels(b=8, points=points)
    target = torch.randn(8, 17, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention
    try:
        losses = []
        for _ in range(250):
            loss = (model(levels) - target).norm(dim=-1).mean()
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.15 * losses[0]


def test_invisible_points_are_ignored():
    model = HierarchicalLifter(**SMALL).eval()
    levels = make_levels()
    vis = [torch.rand(4, n, generator=torch.Generator().manual_seed(n)) > 0.3 for n in (17, 48, 96)]
    out = model(levels, vis)
    changed = [torch.where(v[..., None], x, torch.randn_like(x) * 100) for x, v in zip(levels, vis)]
    assert torch.allclose(model(changed, vis), out, atol=1e-6)
    with_nan = [torch.where(v[..., None], x, torch.full_like(x, float("nan"))) for x, v in zip(levels, vis)]
    assert torch.allclose(model(with_nan, vis), out, atol=1e-6)
    # the same change at visible points does change the prediction
    assert not torch.allclose(model(changed), model(levels), atol=1e-3)
    # hidden points are not zero-filled: hiding a point differs from placing it at the origin
    zeroed = [torch.where(v[..., None], x, torch.zeros_like(x)) for x, v in zip(levels, vis)]
    assert not torch.allclose(model(zeroed), out, atol=1e-4)


def test_gradients_finite_with_nan_at_hidden_points():
    model = HierarchicalLifter(**SMALL)
    levels = make_levels()
    vis = [torch.ones(4, n, dtype=torch.bool) for n in (17, 48, 96)]
    vis[1][:, :10] = False
    levels[1][:, :10] = float("nan")
    model(levels, vis).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_sparse_only_and_partial_masks():
    model = HierarchicalLifter(level_points=(17,), **SMALL).eval()
    (x,) = make_levels(points=(17,))
    out = model([x])
    assert out.shape == (4, 17, 3) and torch.isfinite(out).all()
    assert torch.allclose(model([x], [None]), out) and torch.allclose(model([x], None), out)
    # the first sparse joint drives the first output most directly but every joint sees every point
    moved = x.clone()
    moved[:, 5] += 1.0
    assert not torch.allclose(model([moved])[:, 0], out[:, 0], atol=1e-4)


def test_query_head_without_sparse_level():
    model = HierarchicalLifter(level_points=(48, 96), head="query", **SMALL)
    out = model(make_levels(points=(48, 96)))
    assert out.shape == (4, 17, 3) and torch.isfinite(out).all()


def test_temporal_mode_predicts_centre_frame_with_context():
    model = HierarchicalLifter(num_frames=5, temporal_depth=1, **SMALL).eval()
    levels = make_levels(b=2, frames=5)
    out = model(levels)
    assert out.shape == (2, 17, 3)
    moved = [x.clone() for x in levels]
    moved[0][:, 0] += 1.0  # a non-centre frame
    assert not torch.allclose(model(moved), out, atol=1e-4)
    vis = [torch.ones(2, 5, n, dtype=torch.bool) for n in (17, 48, 96)]
    vis[2][:, 1, :] = False
    hidden = [x.clone() for x in levels]
    hidden[2][:, 1] = 50.0
    assert torch.allclose(model(hidden, vis), model(levels, vis), atol=1e-6)


def test_float_visibility_accepted():
    model = HierarchicalLifter(level_points=(17,), **SMALL).eval()
    (x,) = make_levels(points=(17,))
    v = torch.ones(4, 17)
    v[:, 3] = 0
    assert torch.allclose(model([x], [v]), model([x], [v.bool()]))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda lv, vis: (lv[:2], vis), "levels must be a list of 3"),
        (lambda lv, vis: (lv[0], vis), "levels must be a list of 3"),
        (lambda lv, vis: ([lv[0], lv[1][:, :40], lv[2]], vis), r"levels\[1\]"),
        (lambda lv, vis: ([lv[0], lv[1], lv[2][:3]], vis), r"levels\[2\]"),
        (lambda lv, vis: ([lv[0][..., :1], lv[1], lv[2]], vis), r"levels\[0\]"),
        (lambda lv, vis: ([lv[0].clone().fill_(float("nan")), lv[1], lv[2]], vis), r"levels\[0\] must be finite"),
        (lambda lv, vis: (lv, vis[:2]), "visibility must be None or a list of 3"),
        (lambda lv, vis: (lv, [vis[0][:, :16], vis[1], vis[2]]), r"visibility\[0\]"),
        (lambda lv, vis: (lv, [vis[0], vis[1].float() * 2, vis[2]]), r"visibility\[1\]"),
    ],
)
def test_bad_inputs(mutate, match):
    model = HierarchicalLifter(**SMALL)
    levels = make_levels()
    vis = [torch.ones(4, n, dtype=torch.bool) for n in (17, 48, 96)]
    lv, v = mutate(levels, vis)
    with pytest.raises(ValueError, match=match):
        model(lv, v)


def test_temporal_input_needs_frames():
    model = HierarchicalLifter(num_frames=3, **SMALL)
    with pytest.raises(ValueError, match=r"levels\[0\]"):
        model(make_levels())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(level_points=()), "level_points"),
        (dict(level_points=(48, 96)), r"level_points\[0\]"),
        (dict(dim=30, heads=4), "divisible"),
        (dict(head="pooled"), "head"),
        (dict(num_frames=0), "num_frames"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HierarchicalLifter(**{**SMALL, **kwargs})


def _scored_pair():
    torch.manual_seed(0)
    plain = HierarchicalLifter(level_points=(17, 5, 7), dim=16, depth=1, heads=2)
    scored = HierarchicalLifter(level_points=(17, 5, 7), dim=16, depth=1, heads=2, confidence=True)
    scored.load_state_dict(plain.state_dict(), strict=False)
    return plain.eval(), scored.eval()


def test_confidence_starts_neutral_then_moves_visible_points_only():
    plain, scored = _scored_pair()
    g = torch.Generator().manual_seed(1)
    levels = [torch.randn(3, n, 2, generator=g) for n in (17, 5, 7)]
    vis = [None, torch.rand(3, 5, generator=g) > 0.4, None]
    conf = [None, -torch.rand(3, 5, generator=g) * 3, -torch.rand(3, 7, generator=g) * 3]
    assert scored.point_confidence and not plain.point_confidence
    # zero-initialised score embedding: exactly the lifter without scores (what a warm start needs)
    torch.testing.assert_close(scored(levels, vis, conf), plain(levels, vis))
    with torch.no_grad():  # (not a constant across features: the blocks' LayerNorm would remove it)
        scored.confidence_embed.weight.copy_(torch.randn(16, 1, generator=g))
    base = scored(levels, vis, conf)
    assert not torch.allclose(base, plain(levels, vis))
    # a score at a visible point matters, at a hidden point it is ignored
    hidden = torch.nonzero(~vis[1])[0].tolist()
    shown = torch.nonzero(vis[1])[0].tolist()
    moved_hidden = [c.clone() if c is not None else None for c in conf]
    moved_hidden[1][hidden[0], hidden[1]] -= 5.0
    torch.testing.assert_close(scored(levels, vis, moved_hidden), base)
    moved_shown = [c.clone() if c is not None else None for c in conf]
    moved_shown[1][shown[0], shown[1]] -= 5.0
    assert not torch.allclose(scored(levels, vis, moved_shown)[shown[0]], base[shown[0]])
    # None = every point certain = all-zero scores
    zeros = [torch.zeros(3, n) for n in (17, 5, 7)]
    torch.testing.assert_close(scored(levels, vis), scored(levels, vis, zeros))


def test_confidence_bad_inputs():
    plain, scored = _scored_pair()
    levels = [torch.randn(2, n, 2) for n in (17, 5, 7)]
    with pytest.raises(ValueError, match="without confidence=True"):
        plain(levels, None, [None, None, None])
    with pytest.raises(ValueError, match="one per level"):
        scored(levels, None, [None, None])
    with pytest.raises(ValueError, match=r"confidence\[1\] must have shape"):
        scored(levels, None, [None, torch.zeros(2, 4), None])
    with pytest.raises(ValueError, match="finite"):
        scored(levels, None, [None, torch.full((2, 5), float("-inf")), None])


def test_return_points_regresses_every_point_with_the_joints_head():
    torch.manual_seed(0)
    lifter = HierarchicalLifter(level_points=(17, 5, 7), dim=16, depth=1, heads=2).eval()
    levels = [torch.randn(2, n, 2) for n in (17, 5, 7)]
    joints, points = lifter(levels, return_points=True)
    assert points.shape == (2, 29, 3)
    torch.testing.assert_close(joints, lifter(levels))
    torch.testing.assert_close(points[:, :17], joints)
    with pytest.raises(ValueError, match="return_points"):
        HierarchicalLifter(level_points=(5,), head="query", dim=16, depth=1, heads=2)([levels[1]], return_points=True)
