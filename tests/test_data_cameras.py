import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skeletok.data.views.cameras import (
    Camera,
    cameras_from_arrays,
    cameras_to_arrays,
    h36m_like_rig,
    look_at,
    normalize_screen,
    random_cameras,
    unnormalize_screen,
)


def _camera(**kw):
    args = dict(R=np.eye(3), t=np.array([0.0, 0.0, 0.0]), focal=(1000.0, 1100.0), centre=(500.0, 400.0),
                size=(1000, 800))
    args.update(kw)
    return Camera(**args)


def test_point_on_optical_axis_lands_on_principal_point():
    cam = _camera(t=np.array([0.1, -0.2, 3.0]))
    # world point whose camera coordinates are (0, 0, z): X = R^T ((0, 0, 2) - t)
    world = cam.R.T @ (np.array([0.0, 0.0, 2.0]) - cam.t)
    np.testing.assert_allclose(cam.project(world[None])[0], [500.0, 400.0], atol=1e-9)


def test_known_point_by_hand():
    cam = _camera()
    # camera frame (0.5, -0.25, 2): u = 1000 * 0.25 + 500 = 750, v = 1100 * -0.125 + 400 = 262.5
    np.testing.assert_allclose(cam.project(np.array([[0.5, -0.25, 2.0]]))[0], [750.0, 262.5])


def test_rotated_camera_known_point():
    # a camera at (0, -5, 1) looking along +y (world): right = +x, down = -z
    cam = look_at((0.0, -5.0, 1.0), (0.0, 0.0, 1.0), focal=1000.0, size=(1000, 1000))
    np.testing.assert_allclose(cam.R, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(cam.position, [0.0, -5.0, 1.0], atol=1e-12)
    # a point 1 m right of and 0.5 m above the target, 5 m ahead: (1000 * 1/5 + 500, 1000 * -0.5/5 + 500)
    np.testing.assert_allclose(cam.project(np.array([[1.0, 0.0, 1.5]]))[0], [700.0, 400.0], atol=1e-9)
    np.testing.assert_allclose(cam.to_camera(np.array([[1.0, 0.0, 1.5]]))[0], [1.0, -0.5, 5.0], atol=1e-12)


def test_projection_batches_over_leading_axes():
    cam = _camera(t=np.array([0.0, 0.0, 4.0]))
    pts = np.random.default_rng(0).normal(size=(3, 5, 7, 3))
    out = cam.project(pts)
    assert out.shape == (3, 5, 7, 2)
    np.testing.assert_allclose(out[1, 2], cam.project(pts[1, 2]))


def test_distortion_zero_equals_pinhole_and_matches_formula():
    cam = _camera(t=np.array([0.0, 0.0, 4.0]))
    pts = np.array([[0.3, -0.2, 0.0]])
    flat = _camera(t=np.array([0.0, 0.0, 4.0]), radial=np.zeros(3), tangential=np.zeros(2))
    np.testing.assert_allclose(flat.project(pts), cam.project(pts))
    k, p = np.array([-0.2, 0.25, -0.003]), np.array([-0.001, -0.0014])
    dist = _camera(t=np.array([0.0, 0.0, 4.0]), radial=k, tangential=p)
    a = np.array([0.3, -0.2]) / 4.0
    r2 = (a**2).sum()
    expected = a * (1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3 + (p * a).sum()) + p * r2
    np.testing.assert_allclose(dist.project(pts)[0], expected * [1000.0, 1100.0] + [500.0, 400.0])


@settings(max_examples=40, deadline=None)
@given(x=st.floats(-500, 2000), y=st.floats(-500, 2000), w=st.integers(100, 2000), h=st.integers(100, 2000))
def test_normalize_round_trip(x, y, w, h):
    pix = np.array([[x, y]])
    uv = normalize_screen(pix, w, h)
    np.testing.assert_allclose(unnormalize_screen(uv, w, h), pix, atol=1e-6)


def test_normalize_convention():
    uv = normalize_screen(np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]]), 1000, 1002)
    np.testing.assert_allclose(uv, [[-1.0, -1.002], [1.0, 1.002], [0.0, 0.0]])


def test_normalize_per_camera_sizes_broadcast():
    pix = np.ones((2, 3, 2)) * 100.0
    w, h = np.array([[1000.0], [500.0]]), np.array([[1000.0], [250.0]])
    uv = normalize_screen(pix, w, h)
    np.testing.assert_allclose(uv[0, 0], [-0.8, -0.8])
    np.testing.assert_allclose(uv[1, 0], [-0.6, -0.1])


def test_h36m_like_rig_frames_the_subject():
    target = np.array([2.0, -1.0, 1.4])
    cams = h36m_like_rig(target, root_height=0.9)
    assert len(cams) == 4
    for cam, size in zip(cams, [(1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)]):
        assert cam.size == size
        np.testing.assert_allclose(cam.project(target[None])[0], np.array(size) / 2, atol=1e-6)
        horiz = np.linalg.norm((cam.position - target)[:2])
        assert 4.5 <= horiz <= 5.5
        assert 1.4 <= cam.position[2] - (target[2] - 0.9) <= 1.7
        assert cam.focal[0] == pytest.approx(1145.0)
        # a 1.8 m tall person standing at the target fits in the image
        body = target + np.array([[0.0, 0.0, -0.9], [0.0, 0.0, 0.9], [0.3, 0.0, 0.0], [-0.3, 0.0, 0.0]])
        pix = cam.project(body)
        assert (pix >= 0).all() and (pix[:, 0] <= size[0]).all() and (pix[:, 1] <= size[1]).all()
        # head above feet in the image (y down)
        assert pix[1, 1] < pix[0, 1]


def test_random_cameras_are_seeded_and_look_at_center():
    a = random_cameras(np.random.default_rng(3), 5, (0.0, 0.0, 1.0))
    b = random_cameras(np.random.default_rng(3), 5, (0.0, 0.0, 1.0))
    assert len(a) == 5
    for ca, cb in zip(a, b):
        np.testing.assert_allclose(ca.R, cb.R)
        np.testing.assert_allclose(ca.project(np.array([[0.0, 0.0, 1.0]]))[0], [500.0, 500.0], atol=1e-6)
        assert 3.5 <= np.linalg.norm(ca.position - [0.0, 0.0, 1.0]) <= 6.5
        assert 1000 <= ca.focal[0] <= 1300
    assert not np.allclose(a[0].R, a[1].R)


def test_arrays_round_trip():
    cams = h36m_like_rig() + [_camera(t=np.array([0.0, 0.0, 4.0]), radial=[0.1, 0.0, 0.0])]
    arrays = cameras_to_arrays(cams)
    assert arrays["cam_R"].shape == (5, 3, 3) and arrays["cam_R"].dtype == np.float32
    back = cameras_from_arrays(arrays)
    pts = np.array([[0.1, 0.2, 1.0], [0.3, -0.2, 0.5]])
    for a, b in zip(cams, back):
        np.testing.assert_allclose(a.project(pts), b.project(pts), atol=1e-3)
    assert back[-1].radial is not None and back[0].radial is None


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(R=np.ones((3, 3))), "R must be a rotation"),
        (dict(R=np.eye(2)), "R must be a finite"),
        (dict(t=[0.0, 1.0]), "t must be 3"),
        (dict(focal=(-1.0, 1.0)), "focal must be positive"),
        (dict(size=(0, 10)), "size must be a positive"),
    ],
)
def test_bad_camera_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        _camera(**kw)


def test_bad_inputs_raise():
    cam = _camera()
    with pytest.raises(ValueError, match="points_world"):
        cam.project(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="w and h must be positive"):
        normalize_screen(np.zeros((1, 2)), 0, 10)
    with pytest.raises(ValueError, match="eye and target must differ"):
        look_at((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="must not be parallel"):
        look_at((0.0, 0.0, 5.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="one entry per camera"):
        h36m_like_rig(azimuths=(0.0,))
