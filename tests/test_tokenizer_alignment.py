"""Local and global alignment losses: closed-form values, finiteness, input checks."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skeletok.alignment import global_alignment_loss, local_alignment_loss

TAU = 0.07


def test_local_aligned_orthogonal_codes_give_the_closed_form_minimum():
    b, p, r, d = 2, 3, 4, 8
    z_s = torch.eye(d)[: b * p].view(b, p, d) * 3.0
    z_d = z_s.unsqueeze(2).repeat(1, 1, r, 1) * torch.rand(b, p, r, 1).add(0.5)  # same direction, any scale
    n = b * p
    expected = math.log(1 + (n - 1) * math.exp(-1 / TAU))
    loss = local_alignment_loss(z_s, z_d, tau=TAU)
    assert loss.item() == pytest.approx(expected, abs=2e-7)  # float32 log-sum-exp near 0
    assert loss.item() < 1e-4


def test_local_identical_codes_give_log_n_and_misalignment_costs():
    b, p, r, d = 2, 4, 3, 5
    same = torch.ones(b, p, d)
    assert local_alignment_loss(same, torch.ones(b, p, r, d)).item() == pytest.approx(math.log(b * p), rel=1e-5)
    z_s = torch.eye(8)[: b * p].view(b, p, 8)
    aligned = local_alignment_loss(z_s, z_s.unsqueeze(2).repeat(1, 1, r, 1))
    shuffled = local_alignment_loss(z_s, z_s.roll(1, dims=1).unsqueeze(2).repeat(1, 1, r, 1))
    assert shuffled.item() > 10.0 > aligned.item()  # the positive is another part: ~1/tau
    # the positive is the MEAN of the r dense codes: split a direction over two dense codes
    z_d = z_s.unsqueeze(2).repeat(1, 1, 2, 1)
    z_d[:, :, 0] += 1.0
    z_d[:, :, 1] -= 1.0
    assert local_alignment_loss(z_s, z_d).item() == pytest.approx(aligned.item(), rel=1e-4)


def test_local_is_symmetric_in_direction():
    torch.manual_seed(0)
    z_s = torch.randn(3, 4, 6)
    z_d = torch.randn(3, 4, 1, 6)
    a = local_alignment_loss(z_s, z_d)
    b = local_alignment_loss(z_d.squeeze(2), z_s.unsqueeze(2))
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_global_closed_form_and_gradient():
    a, d = 5, 8
    prototypes = torch.eye(d)[:a] * 2.0
    labels = torch.tensor([0, 3, 4, 1])
    features = prototypes[labels] * 7.0
    expected = math.log(1 + (a - 1) * math.exp(-1 / TAU))
    got = global_alignment_loss(features, labels, prototypes, tau=TAU).item()
    assert got == pytest.approx(expected, abs=2e-7)
    wrong = global_alignment_loss(features, (labels + 1) % a, prototypes, tau=TAU)
    assert wrong.item() == pytest.approx(1 / TAU + math.log(1 + (a - 1) * math.exp(-1 / TAU)), rel=1e-4)
    feats = torch.randn(4, d, requires_grad=True)
    protos = torch.randn(a, d, requires_grad=True)
    global_alignment_loss(feats, labels, protos).backward()
    assert feats.grad.abs().sum() > 0 and protos.grad.abs().sum() > 0


_finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    z_s=arrays("float32", (2, 3, 4), elements=_finite),
    z_d=arrays("float32", (2, 3, 2, 4), elements=_finite),
    tau=st.floats(1e-3, 10.0),
)
def test_local_is_finite_for_any_finite_input(z_s, z_d, tau):
    loss = local_alignment_loss(torch.from_numpy(z_s), torch.from_numpy(z_d), tau=tau)
    assert torch.isfinite(loss) and loss.item() >= -1e-6


_moderate = st.one_of(st.just(0.0), st.floats(1e-3, 1e6), st.floats(-1e6, -1e-3))


@settings(max_examples=25, deadline=None)
@given(z_s=arrays("float32", (2, 3, 4), elements=_moderate), z_d=arrays("float32", (2, 3, 2, 4), elements=_moderate))
def test_local_gradients_are_finite(z_s, z_d):
    z_s, z_d = torch.from_numpy(z_s).requires_grad_(), torch.from_numpy(z_d).requires_grad_()
    local_alignment_loss(z_s, z_d).backward()
    assert torch.isfinite(z_s.grad).all() and torch.isfinite(z_d.grad).all()


@settings(max_examples=40, deadline=None)
@given(
    features=arrays("float32", (3, 4), elements=_finite),
    prototypes=arrays("float32", (5, 4), elements=_finite),
    labels=arrays("int64", (3,), elements=st.integers(0, 4)),
)
def test_global_is_finite_for_any_finite_input(features, prototypes, labels):
    loss = global_alignment_loss(torch.from_numpy(features), torch.from_numpy(labels), torch.from_numpy(prototypes))
    assert torch.isfinite(loss) and loss.item() >= -1e-6


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: local_alignment_loss(torch.randn(2, 3, 4), torch.randn(2, 4, 2, 4)), "z_d"),
        (lambda: local_alignment_loss(torch.randn(2, 3, 4), torch.randn(3, 3, 2, 4)), "z_d"),
        (lambda: local_alignment_loss(torch.randn(2, 3), torch.randn(2, 3, 2, 4)), "z_s"),
        (lambda: local_alignment_loss(torch.full((2, 3, 4), float("nan")), torch.randn(2, 3, 2, 4)), "z_s"),
        (lambda: local_alignment_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 2, 4), tau=0.0), "tau"),
        (lambda: global_alignment_loss(torch.randn(2, 4), torch.tensor([0, 5]), torch.randn(5, 4)), "labels"),
        (lambda: global_alignment_loss(torch.randn(2, 4), torch.tensor([0.0, 1.0]), torch.randn(5, 4)), "labels"),
        (lambda: global_alignment_loss(torch.randn(2, 4), torch.tensor([0, 1]), torch.randn(5, 3)), "prototypes"),
        (lambda: global_alignment_loss(torch.randn(2, 4), torch.tensor([0, 1, 2]), torch.randn(5, 4)), "labels"),
    ],
)
def test_bad_input_raises_value_error(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_parts_only_negatives_ignore_other_samples():
    # two poses with identical codes: with "all" they are false negatives of each other, with "parts" not
    z_s = torch.eye(3).expand(2, 3, 3).clone()
    z_d = z_s.unsqueeze(2)
    n_all = 6
    assert local_alignment_loss(z_s, z_d, negatives="all").item() == pytest.approx(
        math.log(2 + (n_all - 2) * math.exp(-1 / TAU)), rel=1e-4)  # the twin is as close as the positive
    assert local_alignment_loss(z_s, z_d, negatives="parts").item() == pytest.approx(
        math.log(1 + 2 * math.exp(-1 / TAU)), abs=2e-7)
    with pytest.raises(ValueError, match="negatives"):
        local_alignment_loss(z_s, z_d, negatives="batch")
