"""Body levels: parts of the dense/fine points, the 17-joint regressor, save/load, bad inputs."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skeletok.data.body.levels import RIG_TO_PART, BodyLevels, _rig_parts, build_levels
from skeletok.skeleton import H36M_17

J = {name: i for i, name in enumerate(H36M_17.joint_names)}
SMALL_PARTS = {"pelvis-right_hip", "pelvis-left_hip", "thorax-neck_nose", "thorax-left_shoulder",
               "thorax-right_shoulder"}  # fmt: skip


@pytest.fixture(scope="module")
def body():
    path = resources.files("skeletok.data") / "assets" / "body.npz"
    if not path.is_file():
        pytest.skip("body asset skeletok/data/assets/body.npz not built")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def rig_args(body, shape=0):
    return (body["vertices"][shape], body["faces"], body["skin_index"], body["skin_weight"], body["joint_names"],
            body["parents"], body["rest_joints"][shape])  # fmt: skip


@pytest.fixture(scope="module")
def levels(body):
    return build_levels(*rig_args(body))


def test_hierarchy_and_parts(levels):
    h = levels.hierarchy
    assert h.sizes == (96, 48) and np.array_equal(levels.fine_to_dense, np.arange(96) // 2)
    assert (h.assignments[0] >= 0).all()
    for parts, n in ((levels.parts_fine, 96), (levels.parts_dense, 48)):
        assert parts.shape == (n,) and parts.dtype == np.int64
        assert np.bincount(parts, minlength=16).min() >= 1 and parts.max() < 16  # every part has a point
    assert np.array_equal(levels.part_bones, np.array(H36M_17.parts))


def test_fine_points_take_their_dense_parents_part(body, levels):
    # every fine point belongs to the part of the dense cluster that contains it (22 of 96 differed before)
    for lv in (levels, build_levels(*rig_args(body), min_points_per_part=0), build_levels(*rig_args(body, 3))):
        assert np.array_equal(lv.parts_fine, lv.parts_dense[lv.fine_to_dense])
        assert int((lv.parts_fine != lv.parts_dense[lv.fine_to_dense]).sum()) == 0


def test_pure_dominant_parts(body, levels):
    pure = build_levels(*rig_args(body), min_points_per_part=0)
    assert np.array_equal(pure.hierarchy.assignments[0], levels.hierarchy.assignments[0])
    for dominant, filled, per in ((pure.parts_fine, levels.parts_fine, 2), (pure.parts_dense, levels.parts_dense, 1)):
        used = {H36M_17.part_names[i] for i in np.unique(dominant)}
        # the rig's small bones (hip joints, clavicles, neck) dominate no cluster; every other part is used
        assert set(H36M_17.part_names) - used <= SMALL_PARTS
        changed = dominant != filled
        # one dense point taken over per empty part (and its two fine points)
        assert changed.sum() == per * len(set(H36M_17.part_names) - used)
        assert {H36M_17.part_names[i] for i in filled[changed]} == set(H36M_17.part_names) - used
    with pytest.raises(ValueError, match="min_points_per_part"):
        build_levels(*rig_args(body), min_points_per_part=4)


def test_parts_follow_geometry(body, levels):
    fine = levels.hierarchy.points(body["vertices"][0])[0]
    name = [H36M_17.part_names[i] for i in levels.parts_fine]
    for i, part in enumerate(name):
        if part.startswith("left_"):
            assert fine[i, 0] > 0.0, (part, fine[i])  # left side of the body is +x
        if part.startswith("right_"):
            assert fine[i, 0] < 0.0, (part, fine[i])
        if part == "neck_nose-head":
            assert fine[i, 2] > 1.45
        if part.endswith("knee-right_ankle") or part.endswith("knee-left_ankle"):
            assert fine[i, 2] < 0.6


def test_rig_bone_map(body):
    names = tuple(str(n) for n in body["joint_names"])
    parts = _rig_parts(names, body["parents"], H36M_17)
    part = {n: H36M_17.part_names[p] for n, p in zip(names, parts)}
    assert part["LeftToeBase"] == part["LeftFoot"] == part["LeftLeg"] == "left_knee-left_ankle"
    assert part["RThumb"] == part["RightHandFinger1"] == "right_elbow-right_wrist"
    assert part["Hips"] == "pelvis-spine" and part["Head"] == "neck_nose-head"
    assert set(RIG_TO_PART) <= set(names)


@pytest.mark.parametrize("shape", range(8))
def test_rest_pose_joints_anatomical(body, levels, shape):
    joints, verts = body["rest_joints"][shape], body["vertices"][shape]
    s = levels.regress_sparse(joints[None], verts[None])[0]
    z = s[:, 2]
    assert z[J["head"]] > z[J["neck_nose"]] > z[J["thorax"]] > z[J["spine"]] > z[J["pelvis"]]
    assert z[J["head"]] > verts[:, 2].max() - 0.06  # near the top of the head
    for side, sign in (("left", 1), ("right", -1)):
        for joint in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            assert sign * s[J[f"{side}_{joint}"], 0] > 0.05
        assert z[J[f"{side}_hip"]] > z[J[f"{side}_knee"]] > z[J[f"{side}_ankle"]] > 0
        assert z[J[f"{side}_shoulder"]] > z[J[f"{side}_elbow"]] > z[J[f"{side}_wrist"]]
        assert z[J["thorax"]] > z[J[f"{side}_shoulder"]]
    np.testing.assert_allclose(s[J["pelvis"]], 0.5 * (s[J["left_hip"]] + s[J["right_hip"]]), atol=1e-6)
    assert abs(s[J["spine"], 0]) < 0.01 and abs(s[J["head"], 0]) < 0.01


def test_levels_rigid_equivariance_and_means(body, levels):
    joints, verts = body["rest_joints"][:3], body["vertices"][:3]
    sparse, dense, fine = levels.levels(joints, verts)
    assert sparse.shape == (3, 17, 3) and dense.shape == (3, 48, 3) and fine.shape == (3, 96, 3)
    assert sparse.dtype == np.float32
    np.testing.assert_array_equal(sparse, levels.regress_sparse(joints, verts))
    rot = Rotation.from_euler("zyx", [30, 10, -20], degrees=True).as_matrix().astype(np.float32)
    shift = np.array([0.5, -1.0, 0.2], np.float32)
    moved = levels.levels(joints @ rot.T + shift, verts @ rot.T + shift)
    for a, b in zip((sparse, dense, fine), moved):
        np.testing.assert_allclose(a @ rot.T + shift, b, atol=1e-5)
    ids = levels.hierarchy.vertex_to_level(1)
    for c in (0, 17, 47):
        np.testing.assert_allclose(dense[:, c], verts[:, ids == c].mean(1), atol=1e-5)
    # a dense point is the vertex-count weighted mean of its two fine points
    counts = np.bincount(levels.hierarchy.assignments[0], minlength=96).astype(np.float32)
    pair = fine[:, 0:2] * counts[None, 0:2, None]
    np.testing.assert_allclose(dense[:, 0], pair.sum(1) / counts[0:2].sum(), atol=1e-5)


def test_leading_dims(body, levels):
    joints = np.broadcast_to(body["rest_joints"][0], (2, 3) + body["rest_joints"][0].shape)
    verts = np.broadcast_to(body["vertices"][0], (2, 3) + body["vertices"][0].shape)
    sparse, dense, fine = levels.levels(joints, verts)
    assert sparse.shape == (2, 3, 17, 3) and fine.shape == (2, 3, 96, 3)
    np.testing.assert_allclose(sparse[1, 2], levels.regress_sparse(joints[0, :1], verts[0, :1])[0])


def test_save_load_roundtrip(body, levels, tmp_path):
    path = tmp_path / "levels.npz"
    levels.save(path)
    again = BodyLevels.load(path)
    joints, verts = body["rest_joints"][:2], body["vertices"][:2]
    for a, b in zip(levels.levels(joints, verts), again.levels(joints, verts)):
        np.testing.assert_array_equal(a, b)
    assert np.array_equal(again.parts_dense, levels.parts_dense) and again.rig_names == levels.rig_names
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="missing field"):
        BodyLevels.load(tmp_path / "other.npz")


def test_deterministic(body, levels):
    again = build_levels(*rig_args(body))
    assert np.array_equal(again.hierarchy.assignments[0], levels.hierarchy.assignments[0])
    assert np.array_equal(again.parts_fine, levels.parts_fine)
    paper = build_levels(*rig_args(body), balance="vertices")
    assert paper.hierarchy.hem_sizes[-1] == 149
    head = H36M_17.part_names.index("neck_nose-head")
    assert (paper.parts_fine == head).sum() > 2 * (levels.parts_fine == head).sum()


def test_bad_inputs(body, levels):
    args = list(rig_args(body))
    bad = {
        2: (args[2] + 100, "skin_index"),
        3: (-args[3], "skin_weight"),
        4: (np.array([n.replace("LeftUpLeg", "LThigh") for n in args[4]]), "joint_names"),
        5: (args[5][:-1], "parents"),
        6: (args[6][:-1], "rest_joints"),
        0: (args[0][:, :2], "vertices"),
    }
    for index, (value, match) in bad.items():
        broken = list(args)
        broken[index] = value
        with pytest.raises(ValueError, match=match):
            build_levels(*broken)
    with pytest.raises(ValueError, match="sizes"):
        build_levels(*args, sizes=(96,))
    joints, verts = body["rest_joints"][:2], body["vertices"][:2]
    with pytest.raises(ValueError, match="joints"):
        levels.levels(joints[:, :5], verts)
    with pytest.raises(ValueError, match="vertices"):
        levels.levels(joints, verts[:1])
    with pytest.raises(ValueError, match="joints"):
        levels.levels(joints.astype(np.int64), verts)
