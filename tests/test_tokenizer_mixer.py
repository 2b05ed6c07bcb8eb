"""PoseMixerEncoder / PoseMixerDecoder: missing points, part-structured projection, input checks."""

import pytest
import torch

from skeletok.mixer import PointAxisProjection, PoseMixerDecoder, PoseMixerEncoder



POINT_PARTS = [0, 0, 1, 1, 1, 2, 2, 0]  # 8 points, 3 parts
TOKEN_PARTS = [0, 1, 1, 2]  # 4 tokens


def _encoder(**kw):
    args = dict(num_points=8, num_tokens=4, dim=16, depth=2, token_mlp_dim=8, point_parts=POINT_PARTS,
                token_parts=TOKEN_PARTS)
    args.update(kw)
    return PoseMixerEncoder(**args).eval()


@pytest.mark.parametrize("structured", [True, False])
def test_moving_an_invisible_point_does_not_change_the_output(structured):
    enc = _encoder() if structured else _encoder(point_parts=None, token_parts=None)
    x = torch.randn(3, 8, 2)
    vis = torch.ones(3, 8, dtype=torch.bool)
    vis[:, 4] = False
    moved = x.clone()
    moved[:, 4] = torch.tensor([100.0, -50.0])
    out = enc(x, vis)
    assert torch.equal(out, enc(moved, vis))
    moved[:, 4] = float("nan")  # invisible points may even be NaN
    assert torch.equal(out, enc(moved, vis))
    # ... while moving a visible point does change it
    moved = x.clone()
    moved[:, 3] += 1.0
    assert not torch.allclose(out, enc(moved, vis))
    # all-visible mask is the same as no mask
    assert torch.allclose(enc(x), enc(x, torch.ones(3, 8, dtype=torch.bool)))


def test_part_structured_projection_reads_only_its_part():
    enc = _encoder(depth=0)  # no mixing: token m sees exactly the points of its part
    x = torch.randn(2, 8, 2)
    moved = x.clone()
    moved[:, 5] += 1.0  # point 5 is part 2 -> only token 3 may change
    diff = (enc(x) - enc(moved)).abs().amax(dim=(0, 2))
    assert diff[:3].max() == 0 and diff[3] > 0
    proj = PointAxisProjection(num_in=8, num_out=4, in_parts=POINT_PARTS, out_parts=TOKEN_PARTS)
    # initialised near the mean over the part's points (1/3 +- 50%); two tokens of one part differ
    w = proj.weight * proj.mask
    assert torch.equal(w[1] != 0, torch.tensor([0, 0, 1, 1, 1, 0, 0, 0]).bool())
    assert ((w[1][2:5] - 1 / 3).abs() <= 1 / 6 + 1e-6).all()
    assert not torch.equal(w[1], w[2])


def test_part_without_points_falls_back_to_all_points():
    proj = PointAxisProjection(num_in=4, num_out=2, in_parts=[0, 0, 1, 1], out_parts=[1, 5])
    assert proj.mask[0].tolist() == [0, 0, 1, 1]
    assert proj.mask[1].tolist() == [1, 1, 1, 1]
    with torch.no_grad():
        proj.weight.copy_(proj.mask / proj.mask.sum(-1, keepdim=True))  # exact means
    x = torch.arange(4.0).view(1, 4, 1)
    assert torch.allclose(proj(x).flatten(), torch.tensor([2.5, 1.5]))


def test_decoder_part_structure_and_gradients():
    dec = PoseMixerDecoder(num_tokens=4, num_points=8, in_dim=6, out_dim=3, dim=16, depth=0,
                           token_parts=TOKEN_PARTS, point_parts=POINT_PARTS)
    tokens = torch.randn(2, 4, 6, requires_grad=True)
    out = dec(tokens)
    assert out.shape == (2, 8, 3)
    out[:, 0].sum().backward()  # point 0 is part 0: only token 0 feeds it
    grad = tokens.grad.abs().sum(dim=(0, 2))
    assert grad[0] > 0 and grad[1:].sum() == 0


def test_encoder_decoder_can_fit_a_mapping():
    torch.manual_seed(0)
    enc = _encoder(depth=1).train()
    dec = PoseMixerDecoder(num_tokens=4, num_points=8, in_dim=16, dim=16, depth=1, token_mlp_dim=8,
                           token_parts=TOKEN_PARTS, point_parts=POINT_PARTS)
    x = torch.randn(16, 8, 2)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-2)
    first = None
    for _ in range(150):
        loss = (dec(enc(x)) - x).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda e: e(torch.randn(2, 7, 2)), "x"),
        (lambda e: e(torch.full((2, 8, 2), float("nan"))), "x"),
        (lambda e: e(torch.randn(2, 8, 2), torch.ones(3, 8, dtype=torch.bool)), "visibility"),
        (lambda e: e(torch.randn(2, 8, 2), torch.full((2, 8), 0.5)), "visibility"),
    ],
)
def test_encoder_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call(_encoder())


def test_nan_at_visible_point_and_bad_parts_raise():
    x = torch.randn(1, 8, 2)
    x[0, 1] = float("nan")
    vis = torch.ones(1, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="x must be finite at visible points"):
        _encoder()(x, vis)
    with pytest.raises(ValueError, match="point_parts"):
        _encoder(point_parts=[0, 1])
    with pytest.raises(ValueError, match="token_parts"):
        _encoder(token_parts=[0, 1, 2, -1])
    with pytest.raises(ValueError, match="together"):
        _encoder(token_parts=None)
    with pytest.raises(ValueError, match="tokens"):
        PoseMixerDecoder(num_tokens=4, num_points=8, in_dim=6, dim=8, depth=0)(torch.randn(2, 5, 6))
