"""Camera placement: cameras that follow the subject, frames out of view dropped, the fixed rig for `build`."""

import warnings

import numpy as np
import pytest

from skeletok.cli import main
from skeletok.data.body.levels import build_levels
from skeletok.data.body.model import BodyModel
from skeletok.data.motion.arrays import write_positions
from skeletok.data.motion.core import Motion
from skeletok.data.sets.build import RIG_TARGET, build_dataset
from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.show import show_frame
from skeletok.data.views.cameras import cameras_from_arrays, frame_camera, h36m_like_rig
from skeletok.data.views.placement import choose_placement, follow_shift, in_view, view_report
from skeletok.errors import MotionWarning

FPS = 10.0


@pytest.fixture(scope="module")
def body():
    return BodyModel.load()


@pytest.fixture(scope="module")
def levels(body):
    return build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                        body.parents, body.rest_joints[0])


def walk(body, metres=30.0, direction=(1.0, 0.0), speed=1.2, name="walk_long", lift=0.0):
    """The rest body walking ``metres`` in a straight line (legs swinging), on rig joint names."""
    rest = body.rest_joints[0].astype(np.float64)
    names = list(body.joint_names)
    frames = int(round(metres / speed * FPS)) + 1
    d = np.append(np.asarray(direction, float) / np.linalg.norm(direction), 0.0)
    legs = {side: [i for i, n in enumerate(names) if n.startswith(side) and ("Leg" in n or "Foot" in n or "Toe" in n)]
            for side in ("Left", "Right")}
    pos = []
    for t in range(frames):
        p = rest.copy()
        swing = 0.25 * np.sin(2 * np.pi * t / FPS)
        for sign, side in ((1, "Left"), (-1, "Right")):
            knee = legs[side]
            hip = rest[names.index(f"{side}UpLeg")]
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # about x: legs swing forward/back
            p[knee] = (p[knee] - hip) @ rot.T + hip
        yaw = np.arctan2(d[1], d[0]) + np.pi / 2  # the rest body faces -y; turn it to the walking direction
        cy, sy = np.cos(yaw), np.sin(yaw)
        p = p @ np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]).T
        pos.append(p + d * speed * t / FPS + np.array([0.0, 0.0, lift]))
    return Motion(name, names, body.parents, np.array(pos), FPS)


def _inside(d):
    """Whether every 2D point of every level lies inside its camera's image."""
    size = d["cam_size"][None, :, None]
    return all(((d[f"pix_{k}"] >= 0) & (d[f"pix_{k}"] <= size)).all() for k in ("sparse", "dense", "fine"))


def test_follow_shift_keeps_a_straight_walk_exact_and_smooths_turns():
    t = np.arange(50) / FPS
    line = np.stack([1.5 * t - 3.0, 0.5 * t], 1)
    shift = follow_shift(line, (0.0, 0.0), FPS, window_s=1.0)
    np.testing.assert_allclose(shift[:, :2], line, atol=1e-12)  # odd reflection: linear paths stay exact
    assert (shift[:, 2] == 0).all()
    zigzag = line + np.stack([np.zeros(50), 0.3 * (-1.0) ** np.arange(50)], 1)
    smooth = follow_shift(zigzag, (0.0, 0.0), FPS, window_s=1.0)[:, :2]
    # the sway stays in the images: averaged out half a window from the ends; the ends are pinned to the root
    assert np.abs(smooth - line)[5:-5].max() < 0.05
    assert np.abs(smooth - line).max() <= 0.3 + 1e-9
    np.testing.assert_allclose(follow_shift(zigzag, (1.0, 2.0), FPS, window_s=0)[:, :2], zigzag - [1.0, 2.0])
    assert follow_shift(line[:1], (0.0, 0.0), FPS).shape == (1, 3)


def test_in_view_flags_points_behind_and_far_outside():
    cams = h36m_like_rig(RIG_TARGET)
    pelvis = np.array([[[0.0, 0.0, 0.9], [0.0, 0.0, 1.7]]])
    behind = pelvis + [[[0.0, 0.0, 0.0], [cams[0].position[0] * 1.3, cams[0].position[1] * 1.3, 0.0]]]
    far_up = pelvis + [[[0.0, 0.0, 0.0], [0.0, 0.0, 6.0]]]
    points = np.concatenate([pelvis, behind, far_up])
    np.testing.assert_array_equal(in_view(cams, points), [True, False, False])
    assert view_report(cams, points) == {"frames": 3, "kept": 1, "behind": 1, "outside": 1}
    # a point behind a camera projects to mirrored pixels that can fall inside the image: depth is checked first
    xc = cams[0].to_camera(behind[0, 1])
    assert xc[2] < 0
    assert choose_placement("auto", cams, pelvis, pelvis[:, 0, :2], RIG_TARGET[:2], FPS)[0] == "fixed"
    with pytest.raises(ValueError, match="placement must be one of"):
        choose_placement("moving", cams, pelvis, pelvis[:, 0, :2], RIG_TARGET[:2], FPS)


def test_long_walk_converts_with_every_point_inside_the_images(tmp_path, body, levels):
    motion = walk(body, metres=30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionWarning)  # nothing is dropped
        out = build_dataset([motion], body=body, levels=levels, out=tmp_path / "walk.npz", fps=FPS,
                            test_fraction=0.0, near_duplicate_m=None, progress=False)
    d = load_dataset(out)
    n = len(d["world_sparse"])
    assert n == motion.num_frames == 251
    root = d["world_sparse"][:, 0, :2]
    assert np.linalg.norm(root[-1] - root[0]) > 29.0  # the subject really walks 30 m
    assert _inside(d)
    assert d["pix_sparse"][..., 0].min() > 200 and d["pix_sparse"][..., 0].max() < 800  # well inside, not at edges
    # the rig followed: rig_shift tracks the root, and the stored pixels are what the moved cameras see
    assert "rig_shift" in d and np.abs(d["rig_shift"][:, :2] - (root - RIG_TARGET[:2])).max() < 0.05
    for i in (0, 125, 250):
        for k, cam in enumerate(cameras_from_arrays(d)):
            moved = frame_camera(d, i, k)
            np.testing.assert_allclose(moved.R, cam.R)
            np.testing.assert_allclose(moved.position, cam.position + d["rig_shift"][i], atol=1e-4)
            np.testing.assert_allclose(moved.project(d["world_fine"][i]), d["pix_fine"][i, k], atol=1e-2)
    picture = show_frame(d, 250, camera=1, out=tmp_path / "last.png", mesh=False)
    assert picture.stat().st_size > 10_000
    # the same walk on the fixed rig leaves the images: no frame would be inside every image
    assert not _inside_fixed(d)


def _inside_fixed(d):
    cams = cameras_from_arrays(d)
    world = np.concatenate([d["world_sparse"], d["world_dense"], d["world_fine"]], 1)
    return in_view(cams, world, None, margin=0.0).all()


def test_fixed_rig_drops_frames_behind_a_camera_with_a_warning(tmp_path, body, levels):
    motion = walk(body, metres=30.0, direction=(0.0, 1.0), name="walk_past")  # passes behind cameras 0 and 1
    with pytest.warns(MotionWarning, match=r"walk_past: dropped (\d+) of 251 frames .*placement 'fixed'.*behind a "
                                           r"camera") as record:
        out = build_dataset([motion], body=body, levels=levels, out=tmp_path / "fixed.npz", fps=FPS,
                            test_fraction=0.0, near_duplicate_m=None, placement="fixed", progress=False)
    message = str(record[0].message)
    dropped = int(message.split("dropped ")[1].split(" ")[0])
    behind = int(message.split("): ")[1].split(" ")[0])
    d = load_dataset(out)
    assert behind > 0 and 0 < dropped < 251 and len(d["world_sparse"]) == 251 - dropped
    assert "rig_shift" not in d  # fixed rig
    cams = cameras_from_arrays(d)
    world = np.concatenate([d["world_sparse"], d["world_dense"], d["world_fine"]], 1)
    assert in_view(cams, world).all()  # every frame written is in view
    assert min(cam.to_camera(world)[..., 2].min() for cam in cams) > 0.1
    # auto on the same walk follows and keeps every frame
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionWarning)
        auto = load_dataset(build_dataset([motion], body=body, levels=levels, out=tmp_path / "auto.npz", fps=FPS,
                                          test_fraction=0.0, near_duplicate_m=None, progress=False))
    assert len(auto["world_sparse"]) == 251 and _inside(auto)


def test_a_clip_with_no_frame_in_view_is_refused(tmp_path, body, levels):
    motion = walk(body, metres=2.0, name="floating", lift=40.0)  # e.g. a wrong unit: 40 m above the floor
    with pytest.raises(ValueError, match=r"/mocap/floating.bvh \(floating\): no frame of this motion is in view"):
        build_dataset([motion], body=body, levels=levels, out=tmp_path / "none.npz", fps=FPS, test_fraction=0.0,
                      near_duplicate_m=None, ground=False, placement="follow", sources=["/mocap/floating.bvh"],
                      progress=False)
    assert not (tmp_path / "none.npz").exists()


def test_from_mocap_follows_by_default_and_fixed_warns(tmp_path, body, capsys):
    path = tmp_path / "walk_long.npz"
    write_positions(path, walk(body, metres=30.0))
    out = tmp_path / "auto.npz"
    assert main(["data", "from-mocap", str(path), "--out", str(out), "--fps", "10"]) == 0
    captured = capsys.readouterr()
    assert "cameras follow the subject in 1 of 1 sequences" in captured.out and "warning" not in captured.err
    d = load_dataset(out)
    assert len(d["world_sparse"]) == 251 and _inside(d)
    assert main(["data", "from-mocap", str(path), "--out", str(tmp_path / "fixed.npz"), "--fps", "10",
                 "--placement", "fixed"]) == 0
    captured = capsys.readouterr()
    assert "skeletok: warning:" in captured.err and "out of view of the cameras (placement 'fixed')" in captured.err
    assert "cameras follow" not in captured.out
    assert len(load_dataset(tmp_path / "fixed.npz")["world_sparse"]) < 251
