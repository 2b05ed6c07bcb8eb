"""Retargeting joint-position motion onto the body rig."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from skeletok.data.body.model import BodyModel
from skeletok.data.motion import Motion
from skeletok.data.motion.retarget import kabsch_rotation, retarget, swing_rotation

# joints with a sparse (Human3.6M-like) marker set, in rig names
SPARSE = ["Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot", "Spine1", "Neck1",
          "Head", "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand"]


@pytest.fixture(scope="module")
def body():
    return BodyModel.load()


def rig_motion(body, shape, frames=12, spread=0.4, seed=0, move=True):
    """A motion made by the rig itself: random local rotations (rigid pelvis, as in real mocap) of body ``shape``."""
    rng = np.random.default_rng(seed)
    local = Rotation.from_rotvec(rng.normal(size=(frames * 31, 3)) * spread).as_matrix().reshape(frames, 31, 3, 3)
    for name in ("LHipJoint", "RHipJoint"):
        local[:, body.joint_index(name)] = np.eye(3)
    rot = body.local_to_global(local)
    trans = np.cumsum(rng.normal(size=(frames, 3)) * 0.05, axis=0) if move else np.zeros((frames, 3))
    joints = body.joints(rot, trans, shape=shape)
    return Motion("rig", list(body.joint_names), body.parents, joints, 30.0), rot


def bone_angles(body, source, result, names):
    """Angle (degrees, per frame) between each rig bone parent->child among ``names`` in motion and result."""
    out = {}
    for j, p in enumerate(body.parents):
        a, b = body.joint_names[p] if p >= 0 else None, body.joint_names[j]
        if a not in names or b not in names or np.linalg.norm(body.rest_joints[0, j] - body.rest_joints[0, p]) < 0.01:
            continue
        s = source.positions[:, source.index(b)] - source.positions[:, source.index(a)]
        d = result.joints[:, j] - result.joints[:, p]
        cos = np.sum(s * d, -1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(d, axis=-1)
        out[(a, b)] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def test_same_shape_reproduces_the_motion(body):
    motion, _ = rig_motion(body, shape=2)
    result = retarget(motion, body, shape=2)
    assert result.vertices.shape == (12, 6591, 3) and result.joints.shape == (12, 31, 3)
    assert result.scale == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(result.joints, motion.positions, atol=2e-5)
    # the mesh is the body skinned with the solved rotations (twist about single-child bones is not observable)
    np.testing.assert_allclose(result.vertices, body.pose(result.global_rotations, result.root_translation, 2)[0],
                               atol=1e-5)
    assert not np.allclose(result.vertices[0], body.vertices[2], atol=0.05)


@pytest.mark.parametrize("source_shape, target_shape", [(3, 0), (1, 2), (6, 5)])
def test_bone_directions_match_across_body_shapes(body, source_shape, target_shape):
    motion, _ = rig_motion(body, shape=source_shape, seed=source_shape)
    result = retarget(motion, body, shape=target_shape)
    angles = bone_angles(body, motion, result, set(body.joint_names))
    assert len(angles) == 28
    assert np.mean([a.mean() for a in angles.values()]) < 2.0
    # single-child bones are matched exactly; the pelvis and chest compromise between their several children
    for (a, b), err in angles.items():
        limit = 0.1 if a not in ("Hips", "LHipJoint", "RHipJoint", "Spine1", "LeftHand", "RightHand") else 12.0
        assert err.max() < limit, (a, b, err.max())
    # the root follows the motion scaled by the leg length ratio
    legs = [("LeftUpLeg", "LeftLeg"), ("LeftLeg", "LeftFoot"), ("RightUpLeg", "RightLeg"), ("RightLeg", "RightFoot")]
    length = {s: sum(np.linalg.norm(body.rest_joints[s, body.joint_index(x)] - body.rest_joints[s, body.joint_index(y)])
                     for x, y in legs) for s in (source_shape, target_shape)}
    assert result.scale == pytest.approx(length[target_shape] / length[source_shape], rel=1e-4)
    np.testing.assert_allclose(result.joints[:, 0], result.scale * motion.positions[:, 0], atol=1e-5)


def test_rest_motion_gives_rest_pose(body):
    rest = np.repeat(body.rest_joints[4][None], 2, axis=0)
    motion = Motion("rest", list(body.joint_names), body.parents, rest, 30.0)
    result = retarget(motion, body, shape=4, scale=1.0)
    np.testing.assert_allclose(result.global_rotations, np.broadcast_to(np.eye(3), (2, 31, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(result.vertices[1], body.vertices[4], atol=1e-5)


def test_missing_joints_keep_rest_orientation_relative_to_parent(body):
    motion, _ = rig_motion(body, shape=1, seed=5)
    sparse = motion.select(SPARSE)
    result = retarget(sparse, body, shape=0)
    rot = result.global_rotations
    idx = body.joint_index
    for child, parent in [("LeftHand", "LeftForeArm"), ("LThumb", "LeftHand"), ("LeftHandFinger1", "LeftHand"),
                          ("Head", "Neck1"), ("LeftToeBase", "LeftFoot"), ("Spine", "LowerBack"),
                          ("LowerBack", "Hips"), ("LeftShoulder", "Spine1"), ("LHipJoint", "Hips")]:
        np.testing.assert_allclose(rot[:, idx(child)], rot[:, idx(parent)], atol=1e-6, err_msg=child)
    # the mapped bones still point where the motion's do, even through unmapped joints (Spine1 -> Neck1)
    angles = bone_angles(body, sparse, result, set(SPARSE))
    assert {("LeftUpLeg", "LeftLeg"), ("LeftArm", "LeftForeArm"), ("Neck1", "Head")} <= set(angles)
    for (a, b), err in angles.items():
        assert err.max() < 0.1, (a, b)
    for a, b in [("Hips", "Spine1"), ("Spine1", "Neck1")]:
        s = sparse.positions[:, sparse.index(b)] - sparse.positions[:, sparse.index(a)]
        d = result.joints[:, idx(b)] - result.joints[:, idx(a)]
        cos = np.sum(s * d, -1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(d, axis=-1)
        # the source bends randomly at the unmapped LowerBack, Spine, Neck and shoulders: a compromise, not exact
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 25.0


def test_upper_arm_and_thigh_twist_follow_the_hinge(body):
    """Elbows and knees bent as hinges: the upper arm and thigh rotations (twist included) are recovered."""
    rng = np.random.default_rng(7)
    frames, rest, idx = 10, body.rest_joints[0], body.joint_index
    local = np.broadcast_to(np.eye(3), (frames, 31, 3, 3)).copy()
    for ball, hinge, child in [("LeftArm", "LeftForeArm", "LeftHand"), ("RightArm", "RightForeArm", "RightHand"),
                               ("LeftUpLeg", "LeftLeg", "LeftFoot"), ("RightUpLeg", "RightLeg", "RightFoot")]:
        local[:, idx(ball)] = Rotation.from_rotvec(rng.normal(size=(frames, 3)) * 0.6).as_matrix()
        normal = np.cross(rest[idx(hinge)] - rest[idx(ball)], rest[idx(child)] - rest[idx(hinge)])
        flex = rng.uniform(0.6, 1.4, size=frames)[:, None] * normal / np.linalg.norm(normal)
        local[:, idx(hinge)] = Rotation.from_rotvec(flex).as_matrix()
    rot = body.local_to_global(local)
    joints = body.joints(rot, shape=0)
    result = retarget(Motion("hinge", list(body.joint_names), body.parents, joints, 30.0), body, shape=0)
    for name in ("LeftArm", "RightArm", "LeftUpLeg", "RightUpLeg", "LeftForeArm", "LeftLeg"):
        np.testing.assert_allclose(result.global_rotations[:, idx(name)], rot[:, idx(name)], atol=1e-4, err_msg=name)


def test_forearm_takes_half_the_hand_twist(body):
    rest, idx = body.rest_joints[0], body.joint_index
    axis = rest[idx("LeftHand")] - rest[idx("LeftForeArm")]
    axis = axis / np.linalg.norm(axis)
    local = np.broadcast_to(np.eye(3), (3, 31, 3, 3)).copy()
    local[:, idx("LeftHand")] = Rotation.from_rotvec(np.radians([20.0, 60.0, 100.0])[:, None] * axis).as_matrix()
    rot = body.local_to_global(local)
    motion = Motion("twist", list(body.joint_names), body.parents, body.joints(rot, shape=0), 30.0)
    result = retarget(motion, body, shape=0)
    np.testing.assert_allclose(result.global_rotations[:, idx("LeftHand")], rot[:, idx("LeftHand")], atol=1e-5)
    half = Rotation.from_rotvec(np.radians([10.0, 30.0, 50.0])[:, None] * axis).as_matrix()
    np.testing.assert_allclose(result.global_rotations[:, idx("LeftForeArm")], half, atol=1e-5)
    np.testing.assert_allclose(result.joints, motion.positions, atol=1e-5)
    right = [idx(n) for n in ("RightForeArm", "RightHand")]
    np.testing.assert_allclose(result.global_rotations[:, right], np.broadcast_to(np.eye(3), (3, 2, 3, 3)), atol=1e-5)


def test_tail_landmarks_orient_leaf_bones(body):
    """``Head_End`` and ``*ToeBase_End`` (bone tails) orient the head and toes, which have no child joints."""
    motion, rot = rig_motion(body, shape=1, seed=11)
    tails = motion.positions + np.einsum("tkab,kb->tka", rot, body.joint_tails[1] - body.rest_joints[1])
    leaves = ["Head", "LeftToeBase", "RightToeBase"]
    idx = [body.joint_index(n) for n in leaves]
    names = motion.joint_names + [f"{n}_End" for n in leaves]
    parents = np.concatenate([motion.parents, idx])
    with_tails = Motion("tails", names, parents, np.concatenate([motion.positions, tails[:, idx]], axis=1), 30.0)
    result = retarget(with_tails, body, shape=0)
    without = retarget(motion, body, shape=0)
    for n, j in zip(leaves, idx):
        s = tails[:, j] - motion.positions[:, j]
        d = result.joint_tails[:, j] - result.joints[:, j]
        cos = np.sum(s * d, -1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(d, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.1, n
        parent = body.parents[j]
        np.testing.assert_allclose(without.global_rotations[:, j], without.global_rotations[:, parent], atol=1e-6)


def test_with_a_mapping_preset(body):
    """A DeepMimic-named motion through the ``deepmimic`` preset: its limb bones are matched on the rig."""
    from skeletok.data.motion.mapping import get_mapping

    motion, _ = rig_motion(body, shape=5, seed=13)
    names = {"root": "Hips", "chest": "Spine", "neck": "Neck"}
    for side, rig_side in (("left", "Left"), ("right", "Right")):
        for src, dst in (("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("shoulder", "Arm"),
                         ("elbow", "ForeArm"), ("wrist", "Hand")):
            names[f"{side}_{src}"] = f"{rig_side}{dst}"
    parents = [-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13]
    order = ["root", "chest", "neck", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow",
             "left_wrist", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow", "right_wrist"]
    positions = motion.positions[:, [motion.index(names[n]) for n in order]]
    source = Motion("deepmimic-like", order, parents, positions, 30.0)
    result = retarget(source, body, mapping=get_mapping("deepmimic"), shape=0)
    renamed = Motion("renamed", [names[n] for n in order], parents, positions, 30.0)
    angles = bone_angles(body, renamed, result, set(names.values()))
    for bone in [("LeftUpLeg", "LeftLeg"), ("LeftLeg", "LeftFoot"), ("RightArm", "RightForeArm"),
                 ("RightForeArm", "RightHand")]:
        assert angles[bone].max() < 0.1, bone


def test_mapping_and_scale_arguments(body):
    motion, _ = rig_motion(body, shape=0, seed=3)
    renamed = Motion("src", [f"src_{n}" for n in motion.joint_names], motion.parents, motion.positions * 2.0, 30.0)

    class Prefix:
        def apply(self, m):
            return Motion(m.name, [n.removeprefix("src_") for n in m.joint_names], m.parents, m.positions, m.fps)

    result = retarget(renamed, body, mapping=Prefix(), shape=0)
    assert result.scale == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(result.joints, motion.positions, atol=5e-5)
    fixed = retarget(motion, body, shape=0, scale=1.5)
    np.testing.assert_allclose(fixed.root_translation, 1.5 * motion.positions[:, 0] - body.rest_joints[0, 0], atol=1e-5)
    np.testing.assert_allclose(fixed.global_rotations, result.global_rotations, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), opposite=st.booleans())
def test_swing_rotation_is_the_minimal_rotation(seed, opposite):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, 3))
    b = -a * 3.0 if opposite else rng.normal(size=(4, 3))
    rot = swing_rotation(a, b)
    np.testing.assert_allclose(np.einsum("tab,tb->ta", rot, a / np.linalg.norm(a, axis=-1, keepdims=True)),
                               b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-9)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)
    if not opposite:  # minimal: the axis is perpendicular to both directions
        axis = Rotation.from_matrix(rot).as_rotvec()
        assert np.abs(np.sum(axis * a, -1)).max() < 1e-6 and np.abs(np.sum(axis * b, -1)).max() < 1e-6


def test_kabsch_recovers_a_rotation():
    q = Rotation.random(3, random_state=1).as_matrix()
    rest = np.eye(3)[[0, 1, 2]] + 0.1
    rest = rest / np.linalg.norm(rest, axis=-1, keepdims=True)
    rot, conditioning = kabsch_rotation(rest, np.einsum("tab,nb->tna", q, rest))
    np.testing.assert_allclose(rot, q, atol=1e-9)
    assert np.all(conditioning > 0.1)


def test_bad_inputs_raise(body):
    motion, _ = rig_motion(body, shape=0, frames=2)
    with pytest.raises(ValueError, match="Hips"):
        retarget(motion.select(["LowerBack", "Spine"]), body)
    with pytest.raises(ValueError, match="scale"):
        retarget(motion, body, scale=-1.0)
    with pytest.raises(ValueError, match="scale"):
        retarget(motion, body, scale="legs")
    with pytest.raises(ValueError, match="shape"):
        retarget(motion, body, shape=99)

    class Loose:
        joint_names = ["Hips", "Hips"]
        positions = np.zeros((2, 2, 3))

    with pytest.raises(ValueError, match="unique"):
        retarget(Loose(), body)
    Loose.joint_names = ["Hips", "Spine"]
    Loose.positions = np.full((2, 2, 3), np.nan)
    with pytest.raises(ValueError, match="finite"):
        retarget(Loose(), body)
    Loose.positions = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="positions"):
        retarget(Loose(), body)


def _relative_angle(rot, a, b):
    rel = np.einsum("tba,tbc->tac", rot[:, a], rot[:, b]).astype(np.float64)
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))


@pytest.mark.parametrize("clip", ["deepmimic/kick", "deepmimic/getup_faceup"])
def test_deepmimic_head_and_feet_turn_on_their_own(body, clip):
    """The DeepMimic end sites (crown, toe tips) orient the head and the feet: their rotation relative to the chest
    and the shins changes over the clip; without the end sites (as before) both stay rigid with their parents."""
    from skeletok.data.motion.assets import load_motion_assets

    motion = next(m for m in load_motion_assets(sources=["deepmimic"]) if m.name == clip)
    assert {"Head_End", "LeftToeBase_End", "RightToeBase_End"} <= set(motion.joint_names)
    i = body.joint_index
    with_sites = retarget(motion, body).global_rotations
    without = retarget(motion.select([n for n in motion.joint_names if not n.endswith("_End")]), body).global_rotations
    for rot, moves in ((with_sites, True), (without, False)):
        head = _relative_angle(rot, i("Spine1"), i("Head"))
        feet = [_relative_angle(rot, i(f"{s}Leg"), i(f"{s}Foot")) for s in ("Left", "Right")]
        if moves:
            assert np.ptp(head) > 10.0 and min(np.ptp(f) for f in feet) > 10.0, (np.ptp(head), [np.ptp(f) for f in feet])
        else:
            assert head.max() < 0.1 and max(f.max() for f in feet) < 0.1
