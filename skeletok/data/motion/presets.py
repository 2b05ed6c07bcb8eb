"""The canonical landmarks of the body rig and the joint-name presets that map motion files onto them.

The canonical landmarks (:data:`CANONICAL_JOINTS`, tree :data:`CANONICAL_PARENTS`) are the bone HEADS of the
MakeHuman ``cmu_mb`` rig (31 bones, CMU MotionBuilder names) plus three bone TAILS that orient the leaf bones
(``Head_End``, ``LeftToeBase_End``, ``RightToeBase_End``). :data:`PRESETS` maps the joint names of common
conventions onto them (source name -> landmark(s)); :mod:`skeletok.data.motion.mapping` applies the tables, with
name rules for spellings the tables do not list, and checks :data:`REQUIRED_LANDMARKS` and
:data:`TORSO_LANDMARKS`.

Notes per preset:

- ``cmu_asf``: ASF points are bone END points, so ``lfemur`` (hip to knee) gives ``LeftLeg`` (knee).
- ``mixamo``/``holosoma``: Mixamo's ``Spine`` sits where ``LowerBack`` starts (8-10 cm above the
  hips), ``Spine1`` -> ``Spine``, ``Spine2`` -> ``Spine1``; holosoma has no ``Spine2`` and its
  ``Spine1`` (about 33 cm above the hips) is mapped to ``Spine1``.
- ``deepmimic``: the 15 DeepMimic humanoid joints and its 3 end sites (``head_end`` -> ``Head_End``,
  ``*_toe_end`` -> ``*ToeBase_End``, which orient the head and feet); no toe joints, no hand bones.
- ``mocapbank``: the Hips/Chest/Chest2/Collar naming of the bvhtoolbox mocap bank BVH.
- ``rigify``: Blender Rigify deform bones (``DEF-spine`` at the pelvis ... ``DEF-spine.006`` the head,
  ``DEF-thigh.L``, ``DEF-upper_arm.L``, ...); the metarig names without ``DEF-`` match too.
- ``biped``: 3ds Max Character Studio Biped (``Bip01 Pelvis``, ``Bip01 L Thigh``, ``Bip01 L Calf``, ...).
- ``smpl``: the 24 SMPL joints (``pelvis``, ``left_hip``, ``spine1``, ... ``right_hand``; SMPL-H/X names
  add ``left_index1``, ``left_thumb1``); ``L_Hip``-style spellings match too.
- ``daz``: DAZ Genesis 1/2 and 3/8 (``hip``, ``abdomenLower``, ``lThighBend``, ``lShin``, ``lShldrBend``, ...).
- ``generic``: name rules for other rigs (Unity/Unreal-like ``UpperArm_L``, ``Thigh_R``, ``Calf_L``,
  ``LowerArm_L``, ``Clavicle_L``, ``Pelvis``, ...), tried last.
"""

from __future__ import annotations

__all__ = ["CANONICAL_JOINTS", "CANONICAL_PARENTS", "PRESETS", "REQUIRED_LANDMARKS", "TORSO_LANDMARKS"]


def _side_tree(s: str, h: str) -> dict[str, str]:
    return {
        f"{h}HipJoint": "Hips", f"{s}UpLeg": f"{h}HipJoint", f"{s}Leg": f"{s}UpLeg", f"{s}Foot": f"{s}Leg",
        f"{s}ToeBase": f"{s}Foot", f"{s}ToeBase_End": f"{s}ToeBase",
    }


def _arm_tree(s: str, h: str) -> dict[str, str]:
    return {
        f"{s}Shoulder": "Spine1", f"{s}Arm": f"{s}Shoulder", f"{s}ForeArm": f"{s}Arm", f"{s}Hand": f"{s}ForeArm",
        f"{s}FingerBase": f"{s}Hand", f"{s}HandFinger1": f"{s}FingerBase", f"{h}Thumb": f"{s}Hand",
    }


#: Parent of each canonical landmark (``None`` for ``Hips``), the ``cmu_mb`` rig's bone tree.
CANONICAL_PARENTS: dict[str, str | None] = (
    {"Hips": None}
    | _side_tree("Left", "L") | _side_tree("Right", "R")
    | {"LowerBack": "Hips", "Spine": "LowerBack", "Spine1": "Spine", "Neck": "Spine1", "Neck1": "Neck", "Head": "Neck1",
       "Head_End": "Head"}
    | _arm_tree("Left", "L") | _arm_tree("Right", "R")
)

#: The 34 canonical landmarks, parents first.
CANONICAL_JOINTS: list[str] = list(CANONICAL_PARENTS)

_PELVIS = ["Hips", "LHipJoint", "RHipJoint"]


def _sided(table: dict[str, str | list[str]]) -> dict[str, list[str]]:
    """Expand ``{s}``/``{h}``/``{c}``/``{lo}`` templates for both sides (Left/L/l/left, Right/R/r/right)."""
    out: dict[str, list[str]] = {}
    for src, dst in table.items():
        dsts = [dst] if isinstance(dst, str) else dst
        sides = ((("Left", "L", "l", "left"), ("Right", "R", "r", "right")) if "{" in src + "".join(dsts)
                 else (("", "", "", ""),))
        for s, h, c, lo in sides:
            out[src.format(s=s, h=h, c=c, lo=lo)] = [d.format(s=s, h=h, c=c, lo=lo) for d in dsts]
    return out


_LIMBS = {"{s}UpLeg": "{s}UpLeg", "{s}Leg": "{s}Leg", "{s}Foot": "{s}Foot", "{s}ToeBase": "{s}ToeBase",
          "{s}Shoulder": "{s}Shoulder", "{s}Arm": "{s}Arm", "{s}ForeArm": "{s}ForeArm", "{s}Hand": "{s}Hand"}

#: Preset tables, source name -> canonical landmark(s).
PRESETS: dict[str, dict[str, list[str]]] = {
    "cmu_bvh": _sided({n: n for n in CANONICAL_JOINTS} | {"{s}HandIndex1": "{s}HandFinger1"}),
    "cmu_asf": _sided({
        "root": _PELVIS + ["LowerBack"], "lowerback": "Spine", "upperback": "Spine1",
        "thorax": ["Neck", "LeftShoulder", "RightShoulder"], "lowerneck": "Neck1", "upperneck": "Head", "head": "Head_End",
        "{c}hipjoint": "{s}UpLeg", "{c}femur": "{s}Leg", "{c}tibia": "{s}Foot", "{c}foot": "{s}ToeBase",
        "{c}toes": "{s}ToeBase_End",
        "{c}clavicle": "{s}Arm", "{c}humerus": "{s}ForeArm", "{c}radius": "{s}Hand", "{c}wrist": "{s}FingerBase",
        "{c}hand": "{s}HandFinger1",
    }),
    "mixamo": _sided(_LIMBS | {
        "Hips": _PELVIS, "Spine": "LowerBack", "Spine1": "Spine", "Spine2": "Spine1", "Neck": "Neck", "Head": "Head",
        "HeadTop_End": "Head_End", "{s}HandIndex1": "{s}HandFinger1", "{s}HandThumb1": "{h}Thumb",
        "{s}Toe_End": "{s}ToeBase_End", "{s}ToeBase_End": "{s}ToeBase_End",
    }),
    "holosoma": _sided(_LIMBS | {
        "Hips": _PELVIS, "Spine": "LowerBack", "Spine1": "Spine1", "Neck": "Neck", "Head": "Head",
        "{s}HandIndex1": "{s}HandFinger1", "{s}HandThumb1": "{h}Thumb",
    }),
    "mocapbank": _sided({
        "Hips": _PELVIS, "Chest": "LowerBack", "Chest2": "Spine", "Neck": "Neck", "Head": "Head", "Head_End": "Head_End",
        "{s}Collar": "{s}Shoulder", "{s}Shoulder": "{s}Arm", "{s}Elbow": "{s}ForeArm", "{s}Wrist": "{s}Hand",
        "{s}Hip": "{s}UpLeg", "{s}Knee": "{s}Leg", "{s}Ankle": "{s}Foot", "{s}Ankle_End": "{s}ToeBase_End",
    }),
}
PRESETS["deepmimic"] = {"root": _PELVIS + ["LowerBack"], "chest": ["Spine"], "neck": ["Neck"],
                        "head_end": ["Head_End"], "left_toe_end": ["LeftToeBase_End"],
                        "right_toe_end": ["RightToeBase_End"]} | {
    f"{lo}_{a}": [f"{s}{b}"] for lo, s in (("left", "Left"), ("right", "Right"))
    for a, b in [("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("shoulder", "Arm"), ("elbow", "ForeArm"),
                 ("wrist", "Hand")]
}
PRESETS["rigify"] = _sided({
    "DEF-spine": _PELVIS, "DEF-spine.001": "LowerBack", "DEF-spine.002": "Spine", "DEF-spine.003": "Spine1",
    "DEF-spine.004": "Neck", "DEF-spine.005": "Neck1", "DEF-spine.006": "Head", "DEF-spine.006_End": "Head_End",
    "DEF-shoulder.{h}": "{s}Shoulder", "DEF-upper_arm.{h}": "{s}Arm", "DEF-forearm.{h}": "{s}ForeArm",
    "DEF-hand.{h}": "{s}Hand", "DEF-f_index.01.{h}": "{s}HandFinger1", "DEF-thumb.01.{h}": "{h}Thumb",
    "DEF-thigh.{h}": "{s}UpLeg", "DEF-shin.{h}": "{s}Leg", "DEF-foot.{h}": "{s}Foot", "DEF-toe.{h}": "{s}ToeBase",
    "DEF-toe.{h}_End": "{s}ToeBase_End",
})
PRESETS["biped"] = _sided({
    "Bip01 Pelvis": _PELVIS, "Bip01 Spine": "LowerBack", "Bip01 Spine1": "Spine", "Bip01 Spine2": "Spine1",
    "Bip01 Neck": "Neck", "Bip01 Head": "Head", "Bip01 HeadNub": "Head_End", "Bip01 Head_End": "Head_End",
    "Bip01 {h} Clavicle": "{s}Shoulder", "Bip01 {h} UpperArm": "{s}Arm", "Bip01 {h} Forearm": "{s}ForeArm",
    "Bip01 {h} Hand": "{s}Hand", "Bip01 {h} Finger1": "{s}HandFinger1", "Bip01 {h} Finger0": "{h}Thumb",
    "Bip01 {h} Thigh": "{s}UpLeg", "Bip01 {h} Calf": "{s}Leg", "Bip01 {h} Foot": "{s}Foot",
    "Bip01 {h} Toe0": "{s}ToeBase", "Bip01 {h} Toe0Nub": "{s}ToeBase_End", "Bip01 {h} Toe0_End": "{s}ToeBase_End",
})
PRESETS["smpl"] = _sided({
    "pelvis": _PELVIS, "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1", "neck": "Neck", "head": "Head",
    "{lo}_collar": "{s}Shoulder", "{lo}_shoulder": "{s}Arm", "{lo}_elbow": "{s}ForeArm", "{lo}_wrist": "{s}Hand",
    "{lo}_index1": "{s}HandFinger1", "{lo}_hand": "{s}HandFinger1", "{lo}_thumb1": "{h}Thumb",
    "{lo}_hip": "{s}UpLeg", "{lo}_knee": "{s}Leg", "{lo}_ankle": "{s}Foot", "{lo}_foot": "{s}ToeBase",
})
PRESETS["daz"] = _sided({
    "hip": _PELVIS, "abdomenLower": "LowerBack", "abdomen": "LowerBack", "abdomenUpper": "Spine", "abdomen2": "Spine",
    "chestLower": "Spine1", "chest": "Spine1", "neckLower": "Neck", "neck": "Neck", "neckUpper": "Neck1",
    "head": "Head", "head_End": "Head_End",
    "{c}Collar": "{s}Shoulder", "{c}ShldrBend": "{s}Arm", "{c}Shldr": "{s}Arm", "{c}ForearmBend": "{s}ForeArm",
    "{c}ForeArm": "{s}ForeArm", "{c}Hand": "{s}Hand", "{c}Index1": "{s}HandFinger1", "{c}Thumb1": "{h}Thumb",
    "{c}ThighBend": "{s}UpLeg", "{c}Thigh": "{s}UpLeg", "{c}Shin": "{s}Leg", "{c}Foot": "{s}Foot",
    "{c}Toe": "{s}ToeBase", "{c}Toe_End": "{s}ToeBase_End",
})
# Name rules for everything else, most specific spelling first (when several are present the first wins).
PRESETS["generic"] = _sided({
    "Hips": _PELVIS, "Pelvis": _PELVIS, "Hip": _PELVIS,
    "Spine": "LowerBack", "Spine_01": "LowerBack", "Abdomen": "LowerBack",
    "Spine_02": "Spine", "Spine1": "Spine", "Chest": "Spine1", "Spine_03": "Spine1", "Spine2": "Spine1",
    "UpperChest": "Spine1", "Neck": "Neck", "Neck_01": "Neck", "Head": "Head",
    "HeadTop_End": "Head_End", "Head_End": "Head_End", "HeadNub": "Head_End",
    "Clavicle_{h}": "{s}Shoulder", "Collar_{h}": "{s}Shoulder",
    "UpperArm_{h}": "{s}Arm", "Arm_{h}": "{s}Arm", "Humerus_{h}": "{s}Arm", "Shoulder_{h}": "{s}Arm",
    "ForeArm_{h}": "{s}ForeArm", "LowerArm_{h}": "{s}ForeArm", "Elbow_{h}": "{s}ForeArm",
    "Wrist_{h}": "{s}Hand", "Hand_{h}": "{s}Hand",
    "Index1_{h}": "{s}HandFinger1", "Index_01_{h}": "{s}HandFinger1", "Thumb1_{h}": "{h}Thumb",
    "Thumb_01_{h}": "{h}Thumb",
    "UpLeg_{h}": "{s}UpLeg", "Thigh_{h}": "{s}UpLeg", "UpperLeg_{h}": "{s}UpLeg", "Hip_{h}": "{s}UpLeg",
    "Calf_{h}": "{s}Leg", "Shin_{h}": "{s}Leg", "LowerLeg_{h}": "{s}Leg", "Knee_{h}": "{s}Leg", "Leg_{h}": "{s}Leg",
    "Ankle_{h}": "{s}Foot", "Foot_{h}": "{s}Foot",
    "ToeBase_{h}": "{s}ToeBase", "Toes_{h}": "{s}ToeBase", "Toe_{h}": "{s}ToeBase", "Ball_{h}": "{s}ToeBase",
    "Toe0_{h}": "{s}ToeBase",
    "ToeBase_End_{h}": "{s}ToeBase_End", "Toes_End_{h}": "{s}ToeBase_End", "Toe_End_{h}": "{s}ToeBase_End",
    "Ball_End_{h}": "{s}ToeBase_End", "Toe0Nub_{h}": "{s}ToeBase_End",
})

#: Landmarks every mapping must give: the root and the hip, knee, ankle, shoulder, elbow and wrist of both
#: sides (the limb bones that the 17 sparse joints hang on).
REQUIRED_LANDMARKS: list[str] = ["Hips"] + [f"{s}{b}" for s in ("Left", "Right")
                                            for b in ("UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand")]
#: At least one of these must be mapped too (it orients the pelvis and the spine).
TORSO_LANDMARKS: list[str] = ["Spine", "Spine1", "Neck", "Neck1", "Head"]
