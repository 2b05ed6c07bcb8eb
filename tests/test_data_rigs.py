"""Real-looking rigs (Biped, Rigify, Mixamo, DAZ, Unity-like, SMPL) read, mapped, or refused with the fix."""

import json
import warnings

import numpy as np
import pytest

from skeletok.cli import main
from skeletok.data.motion.arrays import SMPL_JOINTS, read_positions
from skeletok.data.motion.bvh import read_bvh
from skeletok.data.motion.mapping import best_mapping, detect_mapping, get_mapping, name_key
from skeletok.data.motion.presets import REQUIRED_LANDMARKS
from skeletok.data.motion import read_motion
from skeletok.errors import JointMappingError, MotionFileError, MotionWarning

# A body by role: (role, parent role, offset from the parent; Y-up centimetres, +X the body's left)
BODY = [
    ("root", None, (0, 95, 0)), ("hips", "root", (0, 0, 0)),
    ("spine", "hips", (0, 10, 0)), ("chest", "spine", (0, 25, 0)), ("neck", "chest", (0, 22, 0)),
    ("head", "neck", (0, 10, 0)),
    ("l_clav", "chest", (3, 18, 0)), ("l_arm", "l_clav", (14, 0, 0)), ("l_elbow", "l_arm", (28, 0, 0)),
    ("l_wrist", "l_elbow", (25, 0, 0)),
    ("r_clav", "chest", (-3, 18, 0)), ("r_arm", "r_clav", (-14, 0, 0)), ("r_elbow", "r_arm", (-28, 0, 0)),
    ("r_wrist", "r_elbow", (-25, 0, 0)),
    ("l_hip", "hips", (9, -3, 0)), ("l_knee", "l_hip", (0, -42, 0)), ("l_ankle", "l_knee", (0, -41, 0)),
    ("l_toe", "l_ankle", (0, -5, 12)),
    ("r_hip", "hips", (-9, -3, 0)), ("r_knee", "r_hip", (0, -42, 0)), ("r_ankle", "r_knee", (0, -41, 0)),
    ("r_toe", "r_ankle", (0, -5, 12)),
]
ENDS = {"head": (0, 16, 0), "l_toe": (0, 0, 5), "r_toe": (0, 0, 5), "l_wrist": (8, 0, 0), "r_wrist": (-8, 0, 0)}
ROLE_LANDMARK = {"hips": "Hips", "l_hip": "LeftUpLeg", "l_knee": "LeftLeg", "l_ankle": "LeftFoot", "l_arm": "LeftArm",
                 "l_elbow": "LeftForeArm", "l_wrist": "LeftHand", "r_knee": "RightLeg", "r_wrist": "RightHand"}


def sided(table):
    out = {}
    for role, name in table.items():
        if role.startswith("s_"):
            for side, words in (("l", ("L", "Left", "l", "left")), ("r", ("R", "Right", "r", "right"))):
                out[f"{side}_{role[2:]}"] = name.format(h=words[0], s=words[1], c=words[2], lo=words[3])
        else:
            out[role] = name
    return out


RIGS = {
    "biped": ("biped", sided({
        "root": "Bip01", "hips": "Bip01 Pelvis", "spine": "Bip01 Spine", "chest": "Bip01 Spine1", "neck": "Bip01 Neck",
        "head": "Bip01 Head", "s_clav": "Bip01 {h} Clavicle", "s_arm": "Bip01 {h} UpperArm",
        "s_elbow": "Bip01 {h} Forearm", "s_wrist": "Bip01 {h} Hand", "s_hip": "Bip01 {h} Thigh",
        "s_knee": "Bip01 {h} Calf", "s_ankle": "Bip01 {h} Foot", "s_toe": "Bip01 {h} Toe0"})),
    "rigify": ("rigify", sided({
        "root": "root", "hips": "DEF-spine", "spine": "DEF-spine.001", "chest": "DEF-spine.003",
        "neck": "DEF-spine.004", "head": "DEF-spine.006", "s_clav": "DEF-shoulder.{h}", "s_arm": "DEF-upper_arm.{h}",
        "s_elbow": "DEF-forearm.{h}", "s_wrist": "DEF-hand.{h}", "s_hip": "DEF-thigh.{h}", "s_knee": "DEF-shin.{h}",
        "s_ankle": "DEF-foot.{h}", "s_toe": "DEF-toe.{h}"})),
    "mixamorig_": ("mixamo", sided({
        "root": "mixamorig_Root", "hips": "mixamorig_Hips", "spine": "mixamorig_Spine", "chest": "mixamorig_Spine1",
        "neck": "mixamorig_Neck", "head": "mixamorig_Head", "s_clav": "mixamorig_{s}Shoulder",
        "s_arm": "mixamorig_{s}Arm", "s_elbow": "mixamorig_{s}ForeArm", "s_wrist": "mixamorig_{s}Hand",
        "s_hip": "mixamorig_{s}UpLeg", "s_knee": "mixamorig_{s}Leg", "s_ankle": "mixamorig_{s}Foot",
        "s_toe": "mixamorig_{s}ToeBase"})),
    "daz": ("daz", sided({
        "root": "Genesis8Male", "hips": "hip", "spine": "abdomenLower", "chest": "chestUpper", "neck": "neckLower",
        "head": "head", "s_clav": "{c}Collar", "s_arm": "{c}ShldrBend", "s_elbow": "{c}ForearmBend",
        "s_wrist": "{c}Hand", "s_hip": "{c}ThighBend", "s_knee": "{c}Shin", "s_ankle": "{c}Foot", "s_toe": "{c}Toe"})),
    "unity": ("generic", sided({
        "root": "Armature", "hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head",
        "s_clav": "Shoulder_{h}", "s_arm": "UpperArm_{h}", "s_elbow": "LowerArm_{h}", "s_wrist": "Hand_{h}",
        "s_hip": "Thigh_{h}", "s_knee": "Calf_{h}", "s_ankle": "Foot_{h}", "s_toe": "Toes_{h}"})),
    "smpl": ("smpl", sided({
        "root": "root", "hips": "pelvis", "spine": "spine1", "chest": "spine3", "neck": "neck", "head": "head",
        "s_clav": "{lo}_collar", "s_arm": "{lo}_shoulder", "s_elbow": "{lo}_elbow", "s_wrist": "{lo}_wrist",
        "s_hip": "{lo}_hip", "s_knee": "{lo}_knee", "s_ankle": "{lo}_ankle", "s_toe": "{lo}_foot"})),
}


def bvh_text(names, frames=12, up="y", scale=1.0, drop=(), frame_count=None):
    """A BVH of BODY with the rig's joint names, walking: hips/knees/shoulders swing, the root moves forward."""
    roles = [r for r, _, _ in BODY if r not in drop]
    parent = {r: p for r, p, _ in BODY}
    offset = {r: np.array(o, dtype=np.float64) for r, _, o in BODY}
    conv = (lambda v: v * scale) if up == "y" else (lambda v: np.array([v[0], -v[2], v[1]]) * scale)
    kids = {}
    for r in roles:
        p = parent[r]
        while p is not None and p in drop:
            p = parent[p]
        kids.setdefault(p, []).append(r)
    order, lines = [], ["HIERARCHY"]

    def block(r, depth):
        pad = "\t" * depth
        order.append(r)
        off = offset[r]
        p = parent[r]
        while p is not None and p in drop:  # a dropped joint's offset goes to its children
            off = off + offset[p]
            p = parent[p]
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {names[r]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET " + " ".join(f"{v:.4f}" for v in conv(off)))
        rot = "Zrotation Xrotation Yrotation"
        lines.append(f"{pad}\tCHANNELS " + ("6 Xposition Yposition Zposition " if depth == 0 else "3 ") + rot)
        for k in kids.get(r, []):
            block(k, depth + 1)
        if r in ENDS:
            lines.extend([f"{pad}\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET " + " ".join(f"{v:.4f}" for v in conv(
                np.array(ENDS[r], dtype=np.float64))), pad + "\t}"])
        lines.append(pad + "}")

    block(roles[0], 0)
    lines += ["MOTION", f"Frames: {frames if frame_count is None else frame_count}", "Frame Time: 0.033333"]
    swing = {"l_hip": 25, "r_hip": -25, "l_knee": 30, "r_knee": 30, "l_arm": 30, "r_arm": -30, "l_elbow": 20}
    for t in range(frames):
        phase = np.sin(2 * np.pi * t / frames)
        vals = list(conv(np.array([0.0, 95.0, 3.0 * t]) if order[0] == "root" else offset[order[0]]))
        for r in order:
            ang = swing.get(r, 0) * phase
            vals += [0.0, ang, 0.0] if up == "y" else [0.0, ang, 0.0]
        lines.append(" ".join(f"{v:.4f}" for v in vals))
    return "\n".join(lines) + "\n"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("rig", sorted(RIGS))
def test_rig_is_read_upright_and_mapped(tmp_path, rig):
    preset, names = RIGS[rig]
    up, scale = ("z", 0.01) if rig == "rigify" else ("y", 1.0)  # Rigify straight from Blender: Z-up metres
    path = write(tmp_path / f"{rig}.bvh", bvh_text(names, up=up, scale=scale))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionWarning)  # a clean file reads without a doubt
        m = read_bvh(path)
    assert m.joint_names[0] == names["root"] and m.num_frames == 12
    # Z-up metres: head above the ankles by the body's height, whatever the file's axes and unit
    head, ankle = m.positions[0, m.index(names["head"])], m.positions[0, m.index(names["l_ankle"])]
    assert head[2] - ankle[2] == pytest.approx(0.10 + 0.25 + 0.22 + 0.10 + 0.03 + 0.83, abs=0.01)
    assert detect_mapping(m.joint_names) == preset
    mapped = get_mapping(preset).apply(m)
    assert set(REQUIRED_LANDMARKS) <= set(mapped.joint_names)
    for role, landmark in ROLE_LANDMARK.items():
        np.testing.assert_array_equal(mapped.positions[:, mapped.index(landmark)], m.positions[:, m.index(names[role])])
    knee = mapped.positions[:, mapped.index("LeftLeg")]
    assert np.ptp(knee[:, 1]) > 0.05  # the legs swing: not frozen


def test_name_keys():
    same = [["UpperArm_L", "upperarm_l", "Upper_Arm.L", "DEF-upper_arm.L", "mixamorig_LeftUpperArm", "Left Upper Arm",
             "rig:LeftUpperArm"], ["Bip01 L Thigh", "Bip01_L_Thigh", "thigh.L", "Thigh_L", "left_thigh", "lThigh"]]
    for group in same:
        assert len({name_key(n) for n in group}) == 1, group
    assert name_key("Bip01") is None and name_key("LowerBack") == name_key("lowerback") == ":lowerback"
    assert name_key("LHipJoint") == "L:hipjoint" and name_key("DEF-spine.006_End") == ":spine006end"


def test_partial_rig_is_refused_with_the_json_to_write(tmp_path, capsys):
    """The issue's rig (UpperArm_L/Thigh_R names), elbows named Bone.007/Bone.012: refused, listing them, fix shown."""
    names = RIGS["unity"][1] | {"l_elbow": "Bone.007", "r_elbow": "Bone.012"}
    path = write(tmp_path / "partial.bvh", bvh_text(names))
    m = read_bvh(path)
    assert best_mapping(m.joint_names) == ("generic", ["LeftForeArm", "RightForeArm"])
    with pytest.raises(JointMappingError, match=r"partial\.bvh: joint mapping 'generic' leaves .* LeftForeArm "
                                                r"\(left elbow\), RightForeArm \(right elbow\)") as err:
        detect_mapping(m.joint_names, where=str(path))
    assert err.value.missing == ["LeftForeArm", "RightForeArm"]
    shown = str(err.value).split("key:\n")[1].split("\nJoints found")[0]
    assert json.loads(shown) == err.value.template
    assert err.value.template["joints"]["UpperArm_L"] == "LeftArm"
    assert err.value.template["joints"]["<your left elbow joint>"] == "LeftForeArm"
    # the CLI says the same (no traceback) ...
    assert main(["data", "from-mocap", str(path), "--out", str(tmp_path / "d.npz")]) == 2
    msg = capsys.readouterr().err
    assert msg.startswith(f"skeletok: error: {path}: joint mapping") and "Traceback" not in msg
    # ... and the completed JSON is the fix
    fix = dict(err.value.template["joints"])
    fix.pop("<your left elbow joint>"), fix.pop("<your right elbow joint>")
    fix |= {"Bone.007": "LeftForeArm", "Bone.012": "RightForeArm"}
    (tmp_path / "mine.json").write_text(json.dumps({"name": "mine", "joints": fix}))
    mine = get_mapping(tmp_path / "mine.json")
    mine.check(m.joint_names)
    mapped = mine.apply(m)
    np.testing.assert_array_equal(mapped.positions[:, mapped.index("LeftForeArm")], m.positions[:, m.index("Bone.007")])


def test_biped_names_with_spaces_through_the_cli(tmp_path, capsys):
    path = write(tmp_path / "Bip walk.bvh", bvh_text(RIGS["biped"][1], frames=10))
    out = tmp_path / "biped.npz"
    assert main(["data", "from-mocap", str(path), "--out", str(out), "--max-frames", "4", "--cameras", "random:1"]) == 0
    printed = capsys.readouterr()
    assert f"wrote {out}" in printed.out and "warning" not in printed.err
    from skeletok.data.sets.fileformat import load_dataset

    d = load_dataset(out)
    assert list(d["sequence_mapping"]) == ["biped"]
    knee = d["world_sparse"][:, 2]  # H36M-17 joint 2: right knee, retargeted: it moves
    assert np.ptp(knee, axis=0).max() > 0.02


def test_smpl_joint_positions_npz(tmp_path):
    """SMPL joints as a numpy array (Y-up metres, no parents stored): up, unit, parents and mapping found."""
    names = RIGS["smpl"][1]
    rest = {"root": np.zeros(3)}
    for role, parent, off in BODY[1:]:
        rest[role] = rest[parent] + np.array(off, dtype=np.float64) / 100
    smpl_roles = {v: k for k, v in names.items()}
    pos = np.stack([rest[smpl_roles[n]] if n in smpl_roles else rest["chest"] for n in SMPL_JOINTS])
    frames = pos[None] + np.linspace(0, 1, 5)[:, None, None] * np.array([0.0, 0.0, 1.0])  # walking along +Z
    np.savez(tmp_path / "smpl.npz", positions=frames * 1000, joint_names=np.array(SMPL_JOINTS), fps=30)  # mm
    m = read_positions(tmp_path / "smpl.npz")
    assert m.parents[SMPL_JOINTS.index("left_knee")] == SMPL_JOINTS.index("left_hip")
    head, ankle = m.positions[0, SMPL_JOINTS.index("head")], m.positions[0, SMPL_JOINTS.index("left_ankle")]
    assert head[2] - ankle[2] == pytest.approx(1.53, abs=0.01)  # Y-up mm -> Z-up m
    assert detect_mapping(m.joint_names) == "smpl"
    with pytest.warns(MotionWarning, match=r"smpl\.npz: with up='z' the body is not upright"):
        read_positions(tmp_path / "smpl.npz", up="z")
    with pytest.warns(MotionWarning, match="not a person's size"):
        read_positions(tmp_path / "smpl.npz", unit="m")


def test_up_axis_refusals(tmp_path):
    names = RIGS["mixamorig_"][1]
    upside = bvh_text(names, scale=-1.0)  # every offset negated: head below the feet along Y
    with pytest.raises(MotionFileError, match=r"down\.bvh: cannot detect the up axis: .* upside down along Y"):
        read_bvh(write(tmp_path / "down.bvh", upside))
    # unknown joint names in an array: no guess, the fix instead
    np.savez(tmp_path / "odd.npz", positions=np.random.default_rng(0).normal(size=(3, 4, 3)),
             joint_names=np.array(["a", "b", "c", "d"]), parents=np.array([-1, 0, 1, 2]), fps=30)
    with pytest.raises(MotionFileError, match=r"odd\.npz: cannot detect the up axis: .* pass up='y' or 'z'"):
        read_positions(tmp_path / "odd.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionWarning)
        assert read_positions(tmp_path / "odd.npz", up="z").num_joints == 4
    # an explicit wrong up axis reads, with a warning naming the file and the fix
    with pytest.warns(MotionWarning, match=r"walk\.bvh: with up='z' the body is not upright .* try --up y"):
        read_bvh(write(tmp_path / "walk.bvh", bvh_text(names)), up="z")


def test_cli_up_and_unit_options(tmp_path, capsys):
    path = write(tmp_path / "walk.bvh", bvh_text(RIGS["unity"][1]))
    with pytest.raises(SystemExit):
        main(["data", "from-mocap", str(path), "--out", str(tmp_path / "x.npz"), "--unit", "furlong"])
    assert "--unit: expected auto" in capsys.readouterr().err
    # --unit m on a centimetre file: a 150 m body reads, with a warning that says so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionWarning)
        m = read_motion(path, unit="m", up="y")
    assert m.positions[..., 2].max() > 100
    with pytest.warns(MotionWarning, match="not a person's size"):
        read_motion(path, unit="m")


def test_the_documented_mapping_file_is_valid_and_complete():
    from pathlib import Path

    from skeletok.data.motion.mapping import JointMapping

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    mapping = JointMapping.from_dict(json.loads(block))
    assert mapping.name == "my_rig"
    mapping.check(list(mapping.table))  # its own source names cover every required landmark


def test_cli_prints_file_errors_and_warnings_without_traceback(tmp_path, capsys):
    names = RIGS["mixamorig_"][1]
    text = bvh_text(names, frames=8)
    # a frame count that disagrees with the data: converted, the warning printed once, naming the file
    short = write(tmp_path / "short.bvh", text.replace("Frames: 8", "Frames: 20"))
    assert main(["data", "from-mocap", str(short), "--out", str(tmp_path / "a.npz"), "--max-frames", "2",
                 "--cameras", "random:1"]) == 0
    err = capsys.readouterr().err
    assert f"skeletok: warning: {short}: line" in err and "'Frames: 20' declared but 8 frame lines found" in err
    # two characters, an unreadable array, a cut archive: one line each, the file named, exit status 2
    hierarchy, motion = text.split("MOTION")
    two = write(tmp_path / "two.bvh", hierarchy + hierarchy.replace("HIERARCHY\n", "").replace("mixamorig_", "b_")
                + "MOTION" + motion)
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 not really a zip")
    for path, says in ((two, "a second ROOT hierarchy"), (tmp_path / "cut.npz", "cannot read array file")):
        assert main(["data", "from-mocap", str(path), "--out", str(tmp_path / "b.npz")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"skeletok: error: {path}: ") and says in err and "Traceback" not in err


def test_required_landmarks_need_joints_of_their_own():
    names = list(RIGS["unity"][1].values())
    table = {n: landmark for n, landmark in get_mapping("generic").to_dict()["joints"].items() if n != "Hand_L"}
    lazy = get_mapping({"joints": {"Hand_L": ["LeftForeArm", "LeftHand"]} | table})  # first one present wins
    with pytest.raises(JointMappingError, match=r"\(LeftForeArm and LeftHand all from 'Hand_L'\): the bones between"):
        lazy.check(names)
