import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skeletok.data.views.occlusion import H36M_DETECTOR_SCALE, Occlusion, add_detector_noise, crop_box, mask_joints


@settings(max_examples=30, deadline=None)
@given(ratio=st.sampled_from([0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]), seed=st.integers(0, 2**16))
def test_mask_hides_exact_count(ratio, seed):
    visible = np.ones((6, 17), dtype=bool)
    out = mask_joints(visible, ratio, np.random.default_rng(seed))
    assert out.dtype == bool
    assert ((~out).sum(-1) == round(ratio * 17)).all()


def test_mask_is_uniform_and_keeps_hidden():
    out = mask_joints(np.ones((4000, 17), dtype=bool), 0.2, np.random.default_rng(0))
    freq = (~out).mean(0)
    np.testing.assert_allclose(freq, 3 / 17, atol=0.03)
    already = np.ones(17, dtype=bool)
    already[[0, 5]] = False
    out = mask_joints(already, 0.4, np.random.default_rng(1))
    assert not out[0] and not out[5]
    assert (~out).sum() >= 7


@settings(max_examples=30, deadline=None)
@given(ratio=st.sampled_from([0.1, 0.2, 0.3, 0.4]), side=st.sampled_from(["left", "right", "top", "bottom"]),
       seed=st.integers(0, 2**16))
def test_crop_hides_exactly_outside_box(ratio, side, seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1000, size=(17, 2))
    before = pts.copy()
    out, box = crop_box(pts, np.ones(17, dtype=bool), ratio, rng, side=side, return_box=True)
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    w, h = x1 - x0, y1 - y0
    expected_box = {
        "left": (x0 + ratio * w, y0, x1, y1), "right": (x0, y0, x1 - ratio * w, y1),
        "top": (x0, y0 + ratio * h, x1, y1), "bottom": (x0, y0, x1, y1 - ratio * h),
    }[side]
    np.testing.assert_allclose(box, expected_box)
    inside = (pts[:, 0] >= box[0]) & (pts[:, 0] <= box[2]) & (pts[:, 1] >= box[1]) & (pts[:, 1] <= box[3])
    np.testing.assert_array_equal(out, inside)
    np.testing.assert_array_equal(pts, before)  # coordinates untouched


def test_crop_known_case_and_random_side():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [2.0, 5.0], [8.0, 10.0]])
    vis = np.ones(4, dtype=bool)
    out = crop_box(pts, vis, 0.3, np.random.default_rng(0), side="left")
    np.testing.assert_array_equal(out, [False, True, False, True])
    out = crop_box(pts, vis, 0.3, np.random.default_rng(0), side="top")
    np.testing.assert_array_equal(out, [False, False, True, True])
    # only visible joints define the box; hidden ones stay hidden
    vis2 = np.array([True, True, True, False])
    out = crop_box(pts, vis2, 0.5, np.random.default_rng(0), side="bottom")
    np.testing.assert_array_equal(out, [True, True, False, False])
    sides = set()
    batch = np.broadcast_to(pts, (200, 4, 2))
    res = crop_box(batch, np.ones((200, 4), dtype=bool), 0.3, np.random.default_rng(0))
    for row in res:
        sides.add(tuple(row))
    assert len(sides) == 4  # the four sides give four distinct patterns


def test_noise_statistics_and_scale():
    rng = np.random.default_rng(0)
    pts = np.zeros((20000, 17, 2))
    noisy = add_detector_noise(pts, 5.0, rng)
    std = noisy.std(0).mean(-1)
    np.testing.assert_allclose(std, 5.0 * H36M_DETECTOR_SCALE, rtol=0.05)
    assert H36M_DETECTOR_SCALE.mean() == pytest.approx(1.0)
    assert H36M_DETECTOR_SCALE[9] < H36M_DETECTOR_SCALE[1]  # nose steadier than hips
    uniform = add_detector_noise(pts[:, :5], 2.0, rng)
    np.testing.assert_allclose(uniform.std(0), 2.0, rtol=0.05)
    np.testing.assert_array_equal(add_detector_noise(pts[:3], 0.0, rng), pts[:3])


def test_occlusion_config_apply():
    pts = np.random.default_rng(0).uniform(0, 1000, size=(17, 2))
    occ = Occlusion(mask_ratio=0.4)
    p, v = occ.apply(pts, np.ones(17, dtype=bool), np.random.default_rng(1))
    np.testing.assert_array_equal(p, pts)
    assert (~v).sum() == 7
    p2, v2 = occ.apply(pts, np.ones(17, dtype=bool), np.random.default_rng(1))
    np.testing.assert_array_equal(v, v2)
    never = Occlusion(mask_ratio=0.8, probability=0.0)
    assert never.apply(pts, np.ones(17, dtype=bool), np.random.default_rng(0))[1].all()
    noisy = Occlusion(noise_px=3.0).apply(pts, np.ones(17, dtype=bool), np.random.default_rng(0))[0]
    assert 0.5 < np.abs(noisy - pts).mean() < 5
    ranged = Occlusion(mask_ratio=(0.0, 0.5))
    counts = {(~ranged.apply(pts, np.ones(17, dtype=bool), np.random.default_rng(s))[1]).sum() for s in range(40)}
    assert min(counts) <= 2 and max(counts) >= 6 and max(counts) <= 9


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mask_joints(np.ones(17), 0.2, np.random.default_rng(0)), "visible must be a bool"),
        (lambda: mask_joints(np.ones(17, bool), 1.5, np.random.default_rng(0)), "ratio must lie"),
        (lambda: mask_joints(np.ones(17, bool), 0.2, 0), "rng must be"),
        (lambda: crop_box(np.zeros((17, 3)), np.ones(17, bool), 0.2, np.random.default_rng(0)), "points2d"),
        (lambda: crop_box(np.zeros((17, 2)), np.ones(17, bool), 0.2, np.random.default_rng(0), side="up"), "side"),
        (lambda: add_detector_noise(np.zeros((17, 2)), -1.0, np.random.default_rng(0)), "sigma_px"),
        (lambda: add_detector_noise(np.zeros((5, 2)), 1.0, np.random.default_rng(0), scale=np.ones(3)), "scale"),
        (lambda: Occlusion(mask_ratio=2.0), "mask_ratio"),
        (lambda: Occlusion(probability=1.5), "probability"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
