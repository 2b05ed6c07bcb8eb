"""Motion container, joint-position arrays and DeepMimic clips."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skeletok.data.motion.arrays import HOLOSOMA_JOINTS, read_positions, write_positions
from skeletok.data.motion.deepmimic import DEEPMIMIC_JOINTS, END_SITES, URDF_ORIGINS, read_deepmimic
from skeletok.data.motion import Motion, read_motion
from skeletok.errors import MotionFileError, MotionWarning

CHAIN = ["root", "a", "b", "c"]


def chain(frames=5, fps=30.0):
    pos = np.zeros((frames, 4, 3), dtype=np.float32)
    pos[:, :, 2] = np.arange(4)
    pos[:, :, 0] = np.arange(frames)[:, None] * 0.1
    return Motion("m", CHAIN, np.array([-1, 0, 1, 2]), pos, fps, "walk")


def test_validation():
    m = chain()
    assert m.num_frames == 5 and m.num_joints == 4 and m.duration == pytest.approx(4 / 30)
    bad = m.positions.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        Motion("m", CHAIN, m.parents, bad, 30.0)
    with pytest.raises(ValueError, match=r"positions must have shape \(t>=1, 4, 3\)"):
        Motion("m", CHAIN, m.parents, m.positions[:, :3], 30.0)
    with pytest.raises(ValueError, match="exactly one root"):
        Motion("m", CHAIN, np.array([-1, 0, -1, 2]), m.positions, 30.0)
    with pytest.raises(ValueError, match="cycle"):
        Motion("m", CHAIN, np.array([-1, 2, 1, 2]), m.positions, 30.0)
    with pytest.raises(ValueError, match="unique"):
        Motion("m", ["a", "a", "b", "c"], m.parents, m.positions, 30.0)
    with pytest.raises(ValueError, match="fps"):
        Motion("m", CHAIN, m.parents, m.positions, 0.0)


def test_resample_and_select():
    m = chain(frames=5, fps=30.0)
    up = m.resample(60.0)
    assert up.num_frames == 9 and up.fps == 60.0 and up.action == "walk"
    np.testing.assert_allclose(up.positions[1], (m.positions[0] + m.positions[1]) / 2, atol=1e-7)
    np.testing.assert_allclose(up.positions[::2], m.positions, atol=1e-7)
    down = chain(frames=9, fps=120.0).resample(30.0)
    assert down.num_frames == 3
    np.testing.assert_allclose(down.positions[:, 0, 0], [0.0, 0.4, 0.8], atol=1e-6)
    sel = m.select(["c", "root"])
    assert sel.joint_names == ["c", "root"] and sel.parents.tolist() == [1, -1]
    np.testing.assert_allclose(sel.positions[:, 0], m.positions[:, 3])
    np.testing.assert_allclose(m.bone_lengths()[:, 1:], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="no joint 'zz'"):
        m.select(["zz"])
    fork = Motion("f", ["r", "x", "y"], np.array([-1, 0, 0]), m.positions[:, :3], 30.0)
    with pytest.raises(ValueError, match="exactly one root"):
        fork.select(["x", "y"])


def test_npz_with_names_round_trip_and_npy(tmp_path):
    m = chain()
    write_positions(tmp_path / "m.npz", m)
    back = read_motion(tmp_path / "m.npz")
    assert back.joint_names == CHAIN and back.parents.tolist() == [-1, 0, 1, 2] and back.fps == 30 and back.action == "walk"
    np.testing.assert_array_equal(back.positions, m.positions)
    # a bare .npy with the holosoma joint names: parents come from the holosoma table; Y-up cm input
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(4, len(HOLOSOMA_JOINTS), 3)) * 100
    np.save(tmp_path / "h.npy", arr)
    h = read_positions(tmp_path / "h.npy", HOLOSOMA_JOINTS, fps=120, up="y", unit="cm")
    assert h.parents[HOLOSOMA_JOINTS.index("LeftLeg")] == HOLOSOMA_JOINTS.index("LeftUpLeg")
    assert h.parents[HOLOSOMA_JOINTS.index("LeftShoulder")] == HOLOSOMA_JOINTS.index("Spine1")
    np.testing.assert_allclose(h.positions[..., 2], arr[..., 1] / 100, atol=1e-6)
    np.testing.assert_allclose(h.positions[..., 1], -arr[..., 2] / 100, atol=1e-6)
    with pytest.raises(ValueError, match=r"h\.npy: no joint names stored"):
        read_positions(tmp_path / "h.npy", fps=30)
    with pytest.raises(ValueError, match=r"h\.npy: no frame rate stored"):
        read_positions(tmp_path / "h.npy", HOLOSOMA_JOINTS)
    with pytest.raises(ValueError, match=r"h\.npy: field 'joint_names' has 3 names"):
        read_positions(tmp_path / "h.npy", ["a", "b", "c"], fps=30)
    with pytest.raises(ValueError, match="match no known table"):
        read_positions(tmp_path / "h.npy", [f"j{i}" for i in range(53)], fps=30)
    np.save(tmp_path / "flat.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"flat\.npy: field 'positions' must be a numeric \(t, j, 3\)"):
        read_positions(tmp_path / "flat.npy", ["a"], fps=30)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz: cannot read"):
        read_motion(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="unknown motion file extension"):
        read_motion(tmp_path / "m.fbx")


def rest_frame(root=(0.0, 0.9, 0.0), duration=1 / 30):
    f = [duration, *root, 1, 0, 0, 0] + [1, 0, 0, 0] * 3 + [0.0] + [1, 0, 0, 0] * 2 + [0.0]
    return f + [1, 0, 0, 0, 0.0] + [1, 0, 0, 0] * 2 + [0.0]


def write_clip(path, frames):
    path.write_text(json.dumps({"Loop": "wrap", "Frames": frames}))
    return path


def test_deepmimic_rest_frame_gives_urdf_rest_positions(tmp_path):
    assert len(rest_frame()) == 44
    m = read_deepmimic(write_clip(tmp_path / "humanoid3d_walk.txt", [rest_frame()] * 3))
    assert m.joint_names == DEEPMIMIC_JOINTS + ["head_end", "right_toe_end", "left_toe_end"]
    assert m.fps == 30 and m.num_frames == 3 and m.action == "walk"
    assert m.parents[15:].tolist() == [2, 5, 11]  # the crown on the neck, the toe tips on the ankles
    # cumulative URDF origins (then end-site offsets) at scale 0.25 (Y-up), then (x, y, z) -> (x, -z, y)
    offsets = np.concatenate([URDF_ORIGINS, [offset for _, offset in END_SITES.values()]])
    y_up = np.zeros((18, 3))
    for j, p in enumerate(m.parents):
        y_up[j] = (y_up[p] if p >= 0 else np.array([0.0, 0.9, 0.0])) + offsets[j] * 0.25
    expected = np.stack([y_up[:, 0], -y_up[:, 2], y_up[:, 1]], axis=-1)
    np.testing.assert_allclose(m.positions[0], expected, atol=1e-6)
    neck, crown = m.positions[0, 2], m.positions[0, 15]
    np.testing.assert_allclose(crown - neck, [0.0, 0.0, 1.11 * 0.25], atol=1e-6)  # top of the head sphere
    toe = m.positions[0, 17] - m.positions[0, DEEPMIMIC_JOINTS.index("left_ankle")]
    np.testing.assert_allclose(toe, [0.534 * 0.25, 0.0, -0.2 * 0.25], atol=1e-6)  # forward (+x) and down to the sole
    ankle = m.positions[0, DEEPMIMIC_JOINTS.index("left_ankle")]
    np.testing.assert_allclose(ankle, [0.0, 0.339548 * 0.25, 0.9 - (1.686184 + 1.639480) * 0.25], atol=1e-6)
    assert m.bone_lengths()[0, DEEPMIMIC_JOINTS.index("left_knee")] == pytest.approx(1.686184 * 0.25, abs=1e-6)


def test_deepmimic_hinge_root_rotation_and_resampling(tmp_path):
    f0 = rest_frame(duration=0.1)
    f1 = rest_frame(root=(0.3, 0.9, 0.0), duration=0.2)
    f1[34] = np.pi / 2  # left knee hinge +90 degrees about its local z
    f2 = rest_frame(root=(0.9, 0.9, 0.0), duration=0.0)
    s = np.sqrt(0.5)
    f2[4:8] = [s, 0, s, 0]  # root turned 90 degrees about Y (up)
    m = read_deepmimic(write_clip(tmp_path / "c.txt", [f0, f1, f2]), fps=10)
    assert m.num_frames == 4 and m.fps == 10 and m.action == "c"
    np.testing.assert_allclose(m.positions[:, 0, 0], [0.0, 0.3, 0.6, 0.9], atol=1e-6)
    knee, ankle = DEEPMIMIC_JOINTS.index("left_knee"), DEEPMIMIC_JOINTS.index("left_ankle")
    np.testing.assert_allclose(m.positions[1, ankle] - m.positions[1, knee], [1.639480 * 0.25, 0, 0], atol=1e-6)
    hip = DEEPMIMIC_JOINTS.index("left_hip")  # Y-up (0, 0, -0.0849) turned about Y -> (-0.0849, 0, 0)
    np.testing.assert_allclose(m.positions[3, hip] - m.positions[3, 0], [-0.339548 * 0.25, 0, 0], atol=1e-6)
    lengths = m.bone_lengths()
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-6)


def test_deepmimic_end_sites_turn_with_their_links(tmp_path):
    """The crown turns with the neck quaternion and a toe tip with its ankle quaternion (not with the parents)."""
    f0, f1 = rest_frame(), rest_frame()
    s = np.sqrt(0.5)
    f1[12:16] = [s, 0, 0, s]  # neck turned 90 degrees about its local Z (the right side axis): the head pitches
    f1[35:39] = [s, 0, 0, -s]  # left ankle turned -90 degrees about Z: the toes point down
    m = read_deepmimic(write_clip(tmp_path / "c.txt", [f0, f1]))
    head = m.positions[:, 15] - m.positions[:, 2]
    np.testing.assert_allclose(head[0], [0.0, 0.0, 0.2775], atol=1e-6)
    np.testing.assert_allclose(head[1], [-0.2775, 0.0, 0.0], atol=1e-6)  # Y-up (0, 1, 0) about +Z -> (-1, 0, 0)
    toe = m.positions[:, 17] - m.positions[:, 11]
    np.testing.assert_allclose(toe[1], [-0.05, 0.0, -0.1335], atol=1e-6)
    chest = m.positions[:, 2] - m.positions[:, 1]
    np.testing.assert_allclose(chest[0], chest[1], atol=1e-6)  # the chest did not move


def test_deepmimic_malformed(tmp_path):
    bad = write_clip(tmp_path / "bad.txt", [rest_frame(), rest_frame()[:43]])
    with pytest.raises(ValueError, match=r"bad\.txt: Frames\[1\] must hold 44 numbers"):
        read_motion(bad)
    (tmp_path / "junk.txt").write_text("{nope")
    with pytest.raises(ValueError, match=r"junk\.txt: cannot read DeepMimic clip JSON"):
        read_deepmimic(tmp_path / "junk.txt")
    with pytest.raises(ValueError, match=r"e\.txt: field 'Frames'"):
        read_deepmimic(write_clip(tmp_path / "e.txt", []))


NPZ_FIELDS = {
    "positions": st.sampled_from([
        np.zeros((2, 3, 3)), np.ones((1, 1, 3)), np.zeros((0, 3, 3)), np.zeros((2, 3)), np.full((2, 2, 3), np.nan),
        np.arange(18, dtype=np.int16).reshape(1, 6, 3), np.array([["a", "b", "c"]]), np.full((2, 3, 3), 1e308),
        np.array([[[1 + 1j, 0, 0]]]), np.zeros((2, 3, 3), dtype=bool), np.array([None, 1], dtype=object),
        np.random.default_rng(0).normal(size=(3, 4, 3)) * 100,
    ]),
    "joint_names": st.sampled_from([np.array(["Hips", "LeftUpLeg", "Head"]), np.array(["a", "a", "b"]), np.array(3),
                                    np.arange(4), np.array([b"x", b"y", b"z"]), np.array([["Hips"], ["Spine"]])]),
    "parents": st.sampled_from([np.array([-1, 0, 1]), np.array([0, 0, 0]), np.array([-1, 5, 0]), np.array([1.5, 0, 0]),
                                np.array([-1, 0]), np.array("x"), np.array([-1, 2, 1]), np.array([-1, 0, 1, 2])]),
    "fps": st.sampled_from([np.array(30.0), np.array(0.0), np.array(-1), np.array("fast"), np.array([30, 60]),
                            np.array(np.inf)]),
    "up": st.sampled_from([np.array("y"), np.array("x"), np.array(3)]),
    "unit": st.sampled_from([np.array("cm"), np.array("furlong"), np.array(0.0), np.array(0.001), np.array("0.5")]),
    "name": st.sampled_from([np.array("walk"), np.array(7)]),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.fixed_dictionaries({}, optional=NPZ_FIELDS), cut=st.sampled_from([None, 0, 30, 200]),
       up=st.sampled_from(["auto", "z"]))
def test_npz_fuzz_only_raises_motion_file_errors(tmp_path, fields, cut, up):
    """Any mix of fields, dtypes and shapes, or a cut archive: a valid Motion, or a MotionFileError naming the file."""
    path = tmp_path / "f.npz"
    np.savez(path, **fields)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MotionWarning)
            m = read_motion(path, up=up)
    except MotionFileError as e:
        assert str(e).startswith(f"{path}: ") and e.path == path
    else:
        assert np.isfinite(m.positions).all() and m.fps > 0


def test_npz_unit_and_up_fields(tmp_path):
    m = chain()
    pos = m.positions * 100.0
    np.savez(tmp_path / "cm.npz", positions=pos[..., [0, 2, 1]] * [1, 1, -1], joint_names=np.array(CHAIN),
             parents=m.parents, fps=30, up="y", unit="cm")
    back = read_positions(tmp_path / "cm.npz")
    np.testing.assert_allclose(back.positions, m.positions, atol=1e-5)
    np.savez(tmp_path / "bad.npz", positions=pos, joint_names=np.array(CHAIN), parents=m.parents, fps=30, up="x")
    with pytest.raises(MotionFileError, match=r"bad\.npz: field 'up' must be 'y' or 'z'"):
        read_positions(tmp_path / "bad.npz")
