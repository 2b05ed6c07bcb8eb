"""Joint mappings onto the canonical CMU MotionBuilder landmarks."""

import json

import numpy as np
import pytest

from skeletok.data.motion.arrays import HOLOSOMA_JOINTS, HOLOSOMA_PARENTS, parents_from_table
from skeletok.data.motion.deepmimic import DEEPMIMIC_JOINTS, DEEPMIMIC_PARENTS
from skeletok.data.motion.mapping import JointMapping, detect_mapping, get_mapping
from skeletok.data.motion.presets import CANONICAL_JOINTS, CANONICAL_PARENTS, PRESETS
from skeletok.data.motion import Motion

MIXAMO = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "LeftShoulder", "LeftArm", "LeftForeArm",
          "LeftHand", "LeftHandIndex1", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "LeftUpLeg", "LeftLeg",
          "LeftFoot", "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase"]
MIXAMO_PARENTS = [-1, 0, 1, 2, 3, 4, 5, 3, 7, 8, 9, 10, 3, 12, 13, 14, 0, 16, 17, 18, 0, 20, 21, 22]


def motion(names, parents, seed=0):
    pos = np.random.default_rng(seed).normal(size=(3, len(names), 3)).astype(np.float32)
    return Motion("src", names, np.array(parents), pos, 30.0, "dance")


def test_canonical_tree():
    assert len(CANONICAL_JOINTS) == 34 and CANONICAL_JOINTS[0] == "Hips"
    assert all(CANONICAL_JOINTS.index(p) < i for i, p in enumerate(CANONICAL_PARENTS.values()) if p is not None)
    assert CANONICAL_PARENTS["LeftUpLeg"] == "LHipJoint" and CANONICAL_PARENTS["LeftShoulder"] == "Spine1"


@pytest.mark.parametrize("prefix", ["", "mixamorig:", "rig:"])
def test_mixamo_with_and_without_prefix(prefix):
    src = motion([prefix + n for n in MIXAMO], MIXAMO_PARENTS)
    out = get_mapping("mixamo").apply(src)
    ref = get_mapping("mixamo").apply(motion(MIXAMO, MIXAMO_PARENTS))
    assert out.joint_names == ref.joint_names and out.parents.tolist() == ref.parents.tolist()
    np.testing.assert_array_equal(out.positions, ref.positions)
    i = out.joint_names.index
    np.testing.assert_array_equal(out.positions[:, i("Spine")], src.positions[:, MIXAMO.index("Spine1")])
    np.testing.assert_array_equal(out.positions[:, i("LHipJoint")], src.positions[:, 0])
    assert "Neck1" not in out.joint_names and out.parents[i("Head")] == i("Neck")  # missing Neck1 is skipped
    assert out.action == "dance" and out.fps == 30.0
    assert detect_mapping(src.joint_names) == "mixamo"


def test_cmu_asf_uses_bone_end_points():
    names = ["root", "lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes", "lowerback", "upperback", "thorax", "lclavicle"]
    src = motion(names, [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8])
    out = get_mapping("cmu_asf").apply(src, require=False)  # a partial skeleton, not retargeted
    i = out.joint_names.index
    np.testing.assert_array_equal(out.positions[:, i("LeftLeg")], src.positions[:, 2])  # knee = end of femur
    np.testing.assert_array_equal(out.positions[:, i("LeftToeBase_End")], src.positions[:, 5])
    np.testing.assert_array_equal(out.positions[:, i("LeftShoulder")], out.positions[:, i("Neck")])
    assert out.parents[i("LeftArm")] == i("LeftShoulder") and out.parents[i("LeftShoulder")] == i("Spine1")
    assert set(get_mapping("cmu_asf").missing(names)) >= {"RightLeg", "Head", "LeftHand"}


def test_holosoma_and_deepmimic_presets():
    holo = motion(HOLOSOMA_JOINTS, parents_from_table(HOLOSOMA_JOINTS, HOLOSOMA_PARENTS)).select(HOLOSOMA_JOINTS)
    out = get_mapping("holosoma").apply(holo)
    assert {"Hips", "LeftToeBase", "RightHandFinger1", "LThumb", "Spine1", "Head"} <= set(out.joint_names)
    assert "LeftFootMod" not in out.joint_names and "Spine" not in out.joint_names
    assert out.parents[out.joint_names.index("Spine1")] == out.joint_names.index("LowerBack")
    dm = get_mapping("deepmimic").apply(motion(DEEPMIMIC_JOINTS, DEEPMIMIC_PARENTS))
    assert len(dm.joint_names) == 18 and "Head" not in dm.joint_names and "LeftToeBase" not in dm.joint_names
    i = dm.joint_names.index
    assert dm.parents[i("Neck")] == i("Spine") and dm.parents[i("LeftArm")] == i("Spine")
    tree = [-1] + [CANONICAL_JOINTS.index(p) for p in list(CANONICAL_PARENTS.values())[1:]]
    ident = get_mapping("cmu_bvh").apply(motion(CANONICAL_JOINTS, tree))
    assert ident.joint_names == CANONICAL_JOINTS


def test_user_mapping_from_dict_and_file(tmp_path):
    table = {"pelvis": ["Hips", "LowerBack"], "chest": "Spine1", "l_knee": "LeftLeg"}
    (tmp_path / "m.json").write_text(json.dumps({"name": "mine", "joints": table}))
    m = get_mapping(tmp_path / "m.json")
    assert m.name == "mine" and m.table["chest"] == ["Spine1"]
    assert JointMapping.from_dict(m.to_dict()) == m
    out = m.apply(motion(["pelvis", "chest", "l_knee"], [-1, 0, 0]), require=False)
    assert out.joint_names == ["Hips", "LeftLeg", "LowerBack", "Spine1"] and out.parents.tolist() == [-1, 0, 0, 2]
    with pytest.raises(ValueError, match="unknown landmark"):
        JointMapping.from_dict({"pelvis": "Pelvis"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json: cannot read JSON"):
        get_mapping(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="must be one of"):
        get_mapping("smpl_x")
    with pytest.raises(ValueError, match=r"unmapped: Hips \(pelvis"):
        m.apply(motion(["chest", "x"], [-1, 0]), require=False)
    with pytest.raises(ValueError, match=r"motion 'src': joint mapping 'mine' leaves .* LeftUpLeg \(left hip"):
        m.apply(motion(["pelvis", "chest", "l_knee"], [-1, 0, 0]))
    assert set(PRESETS) >= {"cmu_asf", "cmu_bvh", "mixamo", "holosoma", "deepmimic"}
