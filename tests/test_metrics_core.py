import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skeletok.metrics import auc, mean_error_2d, mpjpe, n_mpjpe, p_mpjpe, pck3d, procrustes_align, scale_align


def random_rotation(gen: torch.Generator, n: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q[torch.linalg.det(q) < 0, :, 0] *= -1  # proper rotations only
    return q


def poses(seed: int, b: int = 4, j: int = 17) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 300.0 * torch.randn(b, j, 3, generator=gen, dtype=torch.float64)


def test_mpjpe_constant_offset():
    target = poses(0)
    offset = torch.tensor([30.0, -40.0, 120.0], dtype=torch.float64)
    assert mpjpe(target + offset, target).item() == pytest.approx(130.0)
    per = mpjpe(target + offset, target, reduction="none")
    assert per.shape == (4,) and torch.allclose(per, torch.full((4,), 130.0, dtype=torch.float64))


def test_mpjpe_per_sample_and_time_axis():
    target = torch.zeros(2, 3, 5, 3)
    pred = target.clone()
    pred[1, 2, :, 0] = 10.0  # one frame of one sample off by 10
    per = mpjpe(pred, target, reduction="none")
    assert per.shape == (2, 3)
    assert per[1, 2].item() == pytest.approx(10.0) and per.sum().item() == pytest.approx(10.0)
    assert mpjpe(pred, target).item() == pytest.approx(10.0 / 6)


def test_p_mpjpe_zero_for_similarity_copy():
    target = poses(1)
    gen = torch.Generator().manual_seed(1)
    rot = random_rotation(gen, 4)
    pred = 0.7 * target @ rot.transpose(1, 2) + torch.tensor([100.0, -50.0, 900.0], dtype=torch.float64)
    assert mpjpe(pred, target).item() > 50.0
    assert p_mpjpe(pred, target).item() == pytest.approx(0.0, abs=1e-8)
    assert torch.allclose(procrustes_align(pred, target), target, atol=1e-8)


def test_p_mpjpe_does_not_reflect():
    target = poses(2, b=1)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    aligned = procrustes_align(mirrored, target)
    assert p_mpjpe(mirrored, target).item() > 1.0  # a mirror image is not a rotation
    # the alignment applied is a proper similarity: distances scale uniformly, handedness is kept
    def signed_volume(x):
        a, b, c = x[0, 1] - x[0, 0], x[0, 2] - x[0, 0], x[0, 3] - x[0, 0]
        return torch.dot(torch.linalg.cross(a, b), c)

    assert torch.sign(signed_volume(aligned)) == torch.sign(signed_volume(mirrored))


def test_p_mpjpe_float32_and_time_axis():
    target = poses(3).float().reshape(2, 2, 17, 3)
    pred = target * 1.3 + 5.0
    out = p_mpjpe(pred, target, reduction="none")
    assert out.shape == (2, 2) and out.dtype == torch.float32
    assert out.abs().max().item() < 1e-3


def test_n_mpjpe_scale_only():
    target = poses(4)
    assert n_mpjpe(2.5 * target, target).item() == pytest.approx(0.0, abs=1e-9)
    # a pure rotation is not undone by a scale
    rot = random_rotation(torch.Generator().manual_seed(4), 4)
    assert n_mpjpe(target @ rot.transpose(1, 2), target).item() > 10.0
    assert torch.allclose(scale_align(2.5 * target, target), target)


def test_mean_error_2d():
    target = torch.zeros(3, 10, 2)
    pred = target + torch.tensor([3.0, 4.0])
    assert mean_error_2d(pred, target).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="pred"):
        mean_error_2d(torch.zeros(3, 10, 3), torch.zeros(3, 10, 3))


def constructed(distances: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.zeros(1, len(distances), 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, :, 1] = torch.tensor(distances, dtype=torch.float64)
    return pred, target


def test_pck3d_on_constructed_distances():
    pred, target = constructed([0.0, 50.0, 149.0, 150.0, 151.0, 400.0, 10.0, 149.9])
    assert pck3d(pred, target).item() == pytest.approx(100.0 * 5 / 8)  # 150 itself is not below 150
    assert pck3d(pred, target, threshold=50.0).item() == pytest.approx(100.0 * 2 / 8)
    assert pck3d(pred, target, threshold=1000.0).item() == pytest.approx(100.0)
    assert pck3d(pred, target, reduction="none").shape == (1,)


def test_auc_on_constructed_distances():
    # a joint at distance d is counted at every threshold > d: among 0, 5, ..., 150 that is
    # 31 - (floor(d / 5) + 1) thresholds for d < 150
    dist = [0.0, 12.0, 77.0, 200.0]
    pred, target = constructed(dist)
    counts = [sum(1 for k in range(31) if 5.0 * k > d) for d in dist]
    assert counts == [30, 28, 15, 0]
    assert auc(pred, target).item() == pytest.approx(100.0 * sum(counts) / (31 * 4))
    assert auc(pred, target, thresholds=[100.0]).item() == pytest.approx(75.0)


def test_bad_inputs():
    x = torch.zeros(2, 17, 3)
    with pytest.raises(ValueError, match="target"):
        mpjpe(x, torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="pred"):
        p_mpjpe(torch.zeros(17, 3), torch.zeros(17, 3))
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="pred must be finite"):
        n_mpjpe(bad, x)
    with pytest.raises(ValueError, match="target must be finite"):
        p_mpjpe(x, bad)
    with pytest.raises(ValueError, match="reduction"):
        mpjpe(x, x, reduction="sum")
    with pytest.raises(ValueError, match="threshold"):
        pck3d(x, x, threshold=-1.0)
    with pytest.raises(ValueError, match="thresholds"):
        auc(x, x, thresholds=[])
    with pytest.raises(ValueError, match="pred"):
        mpjpe([[0.0]], x)


def test_p_mpjpe_can_exceed_mpjpe_with_one_outlier():
    # documented: the least-squares alignment can raise the mean distance
    target = poses(5, b=1)
    pred = target.clone()
    pred[0, 0] += torch.tensor([500.0, 0.0, 0.0], dtype=torch.float64)
    assert p_mpjpe(pred, target).item() > mpjpe(pred, target).item()


def sq_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum(dim=(-2, -1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(0.0, 200.0))
def test_alignment_error_ordering(seed, noise):
    target = poses(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    pred = target + noise * torch.randn(target.shape, generator=gen, dtype=torch.float64) + 20.0
    full = sq_error(pred, target)
    scaled = sq_error(scale_align(pred, target), target)
    aligned = sq_error(procrustes_align(pred, target), target)
    # least-squares optimality: a richer alignment never increases the squared error
    assert torch.all(aligned <= scaled * (1 + 1e-9) + 1e-6)
    assert torch.all(scaled <= full * (1 + 1e-9) + 1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(1.0, 100.0), offset=st.floats(20.0, 500.0))
def test_metric_ordering_on_transformed_noisy_predictions(seed, noise, offset):
    # predictions as a lifter makes them: the target, a global similarity error, joint noise.
    # Not a theorem per pose (the alignments minimise squared error, see the test above), so it
    # is checked on the mean over a batch, as the metrics are reported.
    target = poses(seed, b=16)
    gen = torch.Generator().manual_seed(seed + 2)
    rot = random_rotation(gen, 16)
    scale = 0.8 + 0.4 * torch.rand(16, 1, 1, generator=gen, dtype=torch.float64)
    jitter = noise * torch.randn(target.shape, generator=gen, dtype=torch.float64)
    pred = scale * target @ rot.transpose(1, 2) + offset + jitter
    p, n, m = p_mpjpe(pred, target).item(), n_mpjpe(pred, target).item(), mpjpe(pred, target).item()
    assert p <= n <= m


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.1, 10.0),
    shift=st.tuples(*[st.floats(-1e3, 1e3)] * 3),
)
def test_p_mpjpe_invariant_to_similarity_of_prediction(seed, scale, shift):
    target = poses(seed)
    gen = torch.Generator().manual_seed(seed + 3)
    pred = target + 80.0 * torch.randn(target.shape, generator=gen, dtype=torch.float64)
    rot = random_rotation(gen, 4)
    moved = scale * pred @ rot.transpose(1, 2) + torch.tensor(shift, dtype=torch.float64)
    before = p_mpjpe(pred, target, reduction="none")
    after = p_mpjpe(moved, target, reduction="none")
    assert torch.allclose(before, after, rtol=1e-7, atol=1e-6)
