"""Joint-name mappings from mocap conventions onto the canonical CMU MotionBuilder landmarks.

Shapes: ``t`` frames, ``j`` joints.

The canonical landmarks are the bone HEADS of the MakeHuman ``cmu_mb`` rig (31 bones, CMU
MotionBuilder names) plus three bone TAILS that orient the leaf bones (``Head_End``,
``LeftToeBase_End``, ``RightToeBase_End``); see :data:`CANONICAL_JOINTS` and :data:`CANONICAL_PARENTS`.

A mapping sends each source joint to one or more landmarks: one source point may stand for several
landmarks that coincide in that source (the CMU ASF ``root`` is the head of ``Hips``, ``LHipJoint``,
``RHipJoint`` and ``LowerBack``). Landmarks no source joint covers are simply absent from the result
(the retargeter keeps the rest orientation of such bones). Source names are matched exactly, then
without any ``prefix:`` namespace (``mixamorig:Hips`` -> ``Hips``). Notes per preset:

- ``cmu_asf``: ASF points are bone END points, so ``lfemur`` (hip to knee) gives ``LeftLeg`` (knee).
- ``mixamo``/``holosoma``: Mixamo's ``Spine`` sits where ``LowerBack`` starts (8-10 cm above the
  hips), ``Spine1`` -> ``Spine``, ``Spine2`` -> ``Spine1``; holosoma has no ``Spine2`` and its
  ``Spine1`` (about 33 cm above the hips) is mapped to ``Spine1``.
- ``deepmimic``: the 15 DeepMimic humanoid joints; no toes, no head top, no hand bones.
- ``mocapbank``: the Hips/Chest/Chest2/Collar naming of the bvhtoolbox mocap bank BVH.
- ``rigify``: Blender Rigify deform bones (``DEF-spine`` at the pelvis ... ``DEF-spine.006`` the head,
  ``DEF-thigh.L``, ``DEF-upper_arm.L``, ...); the metarig names without ``DEF-`` match too.
- ``biped``: 3ds Max Character Studio Biped (``Bip01 Pelvis``, ``Bip01 L Thigh``, ``Bip01 L Calf``, ...).
- ``smpl``: the 24 SMPL joints (``pelvis``, ``left_hip``, ``spine1``, ... ``right_hand``; SMPL-H/X names
  add ``left_index1``, ``left_thumb1``); ``L_Hip``-style spellings match too.
- ``daz``: DAZ Genesis 1/2 and 3/8 (``hip``, ``abdomenLower``, ``lThighBend``, ``lShin``, ``lShldrBend``, ...).
- ``generic``: name rules for other rigs (Unity/Unreal-like ``UpperArm_L``, ``Thigh_R``, ``Calf_L``,
  ``LowerArm_L``, ``Clavicle_L``, ``Pelvis``, ...), tried last.

Name rules: besides exact names, a source name matches a joint whose *name key* (:func:`name_key`) is equal:
the ``namespace:`` part, ``mixamorig``/``mixamorig_`` prefixes, Rigify's ``DEF-`` and Biped's ``Bip01``
words are dropped, a side word (``Left``/``L``/``l``/``left`` ... as a prefix, a ``_L``/``.L``/`` L``
suffix or a word of its own) becomes the side, and the remaining words are compared without case or
separators. So ``mixamorig_LeftArm``, ``Left_Arm``, ``Arm.L`` and ``arm_l`` are all ``L:arm``, and
``Bip01 L Thigh`` and ``Bip01_L_Thigh`` are both ``L:thigh``.

Coverage: a mapping must give ``Hips``, the 12 limb landmarks (hips, knees, ankles, shoulders, elbows and
wrists of both sides: :data:`REQUIRED_LANDMARKS`) and at least one chest/neck/head landmark
(:data:`TORSO_LANDMARKS`); otherwise the limbs or the torso of the retargeted body would stay frozen in the
rest pose. :func:`detect_mapping` and :meth:`JointMapping.apply` refuse less with a
:class:`~skeletok.errors.JointMappingError` that lists what is missing and shows a JSON mapping to write
(the layout of :meth:`JointMapping.from_file`).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.motion.core import Motion
from skeletok.errors import JointMappingError, MotionFileError, MotionWarning

__all__ = ["CANONICAL_JOINTS", "CANONICAL_PARENTS", "REQUIRED_LANDMARKS", "TORSO_LANDMARKS", "JointMapping", "PRESETS",
           "get_mapping", "detect_mapping", "best_mapping", "name_key", "landmark_up", "choose_up"]


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
PRESETS["deepmimic"] = {"root": _PELVIS + ["LowerBack"], "chest": ["Spine"], "neck": ["Neck"]} | {
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

_WHERE = {
    "Hips": "pelvis (root)", "UpLeg": "hip (top of the thigh)", "Leg": "knee", "Foot": "ankle",
    "Arm": "shoulder (top of the upper arm)", "ForeArm": "elbow", "Hand": "wrist", "Spine1": "chest, neck or head",
}


def _describe(landmark: str) -> str:
    for side in ("Left", "Right"):
        if landmark.startswith(side) and landmark[len(side):] in _WHERE:
            return f"{side.lower()} {_WHERE[landmark[len(side):]]}"
    return _WHERE.get(landmark, landmark)


def _strip(name: str) -> str:
    return name.rsplit(":", 1)[-1]


_DROP = re.compile(r"(?i)^(?:def|bip\d+|mixamorig\d*)$")
_PREFIX = re.compile(r"(?i)^mixamorig\d*")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}


@functools.lru_cache(maxsize=65536)
def name_key(name: str) -> str | None:
    """The key a joint name is matched by (module docstring): ``"<side>:<words>"``, e.g. ``"L:upperarm"``.

    Returns:
        ``None`` when nothing is left of the name (e.g. Biped's bare ``Bip01``).
    """
    parts = [_PREFIX.sub("", p) for p in re.split(r"[^A-Za-z0-9]+", _strip(str(name))) if p]
    words = [w.lower() for p in parts if p and not _DROP.match(p) for w in _WORDS.findall(p)]
    sides = {_SIDES[w] for w in words if w in _SIDES}
    side = ""
    if len(sides) == 1:
        side = sides.pop()
        words.remove(next(w for w in words if w in _SIDES))
    return f"{side}:{''.join(words)}" if words else None


@dataclass(frozen=True)
class JointMapping:
    """Source joint names -> canonical landmarks (see the module docstring).

    Attributes:
        name: the preset or file name.
        table: source name -> canonical landmark names (each in :data:`CANONICAL_JOINTS`). When two
            sources give the same landmark, the first one present in a motion wins.
    """

    name: str
    table: dict[str, list[str]]

    def __post_init__(self) -> None:
        for src, dsts in self.table.items():
            bad = [d for d in dsts if d not in CANONICAL_PARENTS]
            if bad or not dsts:
                raise ValueError(f"mapping {self.name!r}: source {src!r} maps to unknown landmark(s) {bad or dsts}; "
                                 f"expected names from CANONICAL_JOINTS {CANONICAL_JOINTS}")

    @classmethod
    def from_dict(cls, table: dict, name: str = "custom") -> JointMapping:
        """Build from ``{source: landmark or [landmarks]}`` (or ``{"name": ..., "joints": {...}}``)."""
        if not isinstance(table, dict):
            raise ValueError(f"mapping {name!r} must be a dict of source -> landmark(s), got {type(table).__name__}")
        if "joints" in table and isinstance(table["joints"], dict):
            name, table = str(table.get("name", name)), table["joints"]
        out = {}
        for src, dst in table.items():
            dsts = [dst] if isinstance(dst, str) else dst
            if not isinstance(dsts, list) or not all(isinstance(d, str) for d in dsts):
                raise ValueError(f"mapping {name!r}: field {src!r} must be a landmark name or a list of them, got {dst!r}")
            out[str(src)] = list(dsts)
        return cls(name, out)

    @classmethod
    def from_file(cls, path: str | Path) -> JointMapping:
        """Read a JSON mapping file (the :meth:`from_dict` layout)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read JSON joint mapping ({e})") from None
        try:
            return cls.from_dict(data, name=path.stem)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        """``{"name": ..., "joints": {source: [landmarks]}}``, the JSON layout :meth:`from_file` reads."""
        return {"name": self.name, "joints": {k: list(v) for k, v in self.table.items()}}

    def resolve(self, joint_names: list[str]) -> dict[str, int]:
        """Landmark -> index into ``joint_names`` for every landmark this mapping covers there.

        A source name matches a joint of the same name, else of the same name without a ``namespace:``,
        else of the same :func:`name_key`.
        """
        exact = {n: i for i, n in enumerate(joint_names)}
        stripped: dict[str, int] = {}
        keyed: dict[str, int] = {}
        for i, n in enumerate(joint_names):
            stripped.setdefault(_strip(n), i)
            key = name_key(n)
            if key is not None:
                keyed.setdefault(key, i)
        out: dict[str, int] = {}
        for src, dsts in self.table.items():
            i = exact.get(src, stripped.get(_strip(src)))
            if i is None:
                key = name_key(src)
                i = keyed.get(key) if key is not None else None
            if i is None:
                continue
            for d in dsts:
                out.setdefault(d, i)
        return out

    def missing(self, joint_names: list[str]) -> list[str]:
        """Canonical landmarks this mapping cannot fill from ``joint_names``."""
        got = self.resolve(joint_names)
        return [n for n in CANONICAL_JOINTS if n not in got]

    def missing_required(self, joint_names: list[str]) -> list[str]:
        """The :data:`REQUIRED_LANDMARKS` not covered, plus ``"Spine1"`` when no :data:`TORSO_LANDMARKS` is."""
        return _missing_required(self.resolve(joint_names))

    def check(self, joint_names: list[str], where: str = "motion") -> None:
        """Raise :class:`~skeletok.errors.JointMappingError` unless the required landmarks are covered, each
        by a joint of its own.

        Args:
            joint_names: the motion's joint names.
            where: what the names belong to (a file path or ``"motion 'walk'"``), first in the message.
        """
        got = self.resolve(joint_names)
        missing = _missing_required(got)
        if missing:
            raise _coverage_error(where, joint_names, self.name, got, missing)
        shared: dict[int, list[str]] = {}
        for landmark in REQUIRED_LANDMARKS:
            shared.setdefault(got[landmark], []).append(landmark)
        twice = [(joint_names[i], ls) for i, ls in shared.items() if len(ls) > 1]
        if twice:
            said = "; ".join(f"{' and '.join(ls)} all from {name!r}" for name, ls in twice)
            raise JointMappingError(f"{where}: joint mapping {self.name!r} gives several required landmarks one joint "
                                    f"({said}): the bones between them would have no length. Map each landmark to "
                                    "its own joint (--mapping FILE.json)", missing=[l for _, ls in twice for l in ls])

    def apply(self, motion: Motion, *, require: bool = True) -> Motion:
        """Keep the mapped joints, renamed to landmarks in canonical order, parents among the kept ones.

        Args:
            motion: the source motion.
            require: refuse a motion that misses a required landmark (:meth:`check`); ``False`` only needs
                ``Hips`` (for partial skeletons that are not retargeted onto the body).

        Raises:
            JointMappingError: (a ``ValueError``) when a required landmark, or ``Hips``, is not covered.
        """
        if require:
            self.check(motion.joint_names, f"motion {motion.name!r}")
        got = self.resolve(motion.joint_names)
        if "Hips" not in got:
            raise _coverage_error(f"motion {motion.name!r}", motion.joint_names, self.name, got, ["Hips"])
        names = [n for n in CANONICAL_JOINTS if n in got]
        keep = set(names)
        parents = []
        for n in names:
            p = CANONICAL_PARENTS[n]
            while p is not None and p not in keep:
                p = CANONICAL_PARENTS[p]
            parents.append(-1 if p is None else names.index(p))
        idx = np.array([got[n] for n in names])
        return Motion(motion.name, names, np.array(parents), motion.positions[:, idx], motion.fps, motion.action)


def get_mapping(name_or_path: str | Path | JointMapping | dict) -> JointMapping:
    """A preset by name (:data:`PRESETS`), a JSON file path, a dict, or a :class:`JointMapping` as is."""
    if isinstance(name_or_path, JointMapping):
        return name_or_path
    if isinstance(name_or_path, dict):
        return JointMapping.from_dict(name_or_path)
    key = str(name_or_path)
    if key in PRESETS:
        return JointMapping(key, {k: list(v) for k, v in PRESETS[key].items()})
    if key.lower().endswith(".json") or Path(key).is_file():
        return JointMapping.from_file(key)
    raise ValueError(f"joint mapping must be one of {sorted(PRESETS)} or a .json file, got {key!r}")


def _missing_required(got: dict[str, int]) -> list[str]:
    missing = [n for n in REQUIRED_LANDMARKS if n not in got]
    if not any(n in got for n in TORSO_LANDMARKS):
        missing.append("Spine1")
    return missing


def _template(joint_names: list[str], got: dict[str, int], missing: list[str]) -> dict:
    """A JSON mapping: the matched joints, then one ``"<...>"`` placeholder per missing landmark."""
    joints: dict[str, str | list[str]] = {}
    for landmark in CANONICAL_JOINTS:
        if landmark in got:
            src = joint_names[got[landmark]]
            prev = joints.get(src)
            joints[src] = landmark if prev is None else ([prev] if isinstance(prev, str) else prev) + [landmark]
    for landmark in missing:
        joints[f"<your {_describe(landmark).split(' (')[0]} joint>"] = landmark
    return {"name": "my_rig", "joints": joints}


def _dump(template: dict) -> str:
    """The template as JSON, one joint a line."""
    rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in template["joints"].items()]
    return f'{{"name": {json.dumps(template["name"])}, "joints": {{\n' + ",\n".join(rows) + "\n}}"


def _coverage_error(where: str, joint_names: list[str], mapping: str, got: dict[str, int],
                    missing: list[str]) -> JointMappingError:
    template = _template(joint_names, got, missing)
    shown = ", ".join(f"{landmark} ({_describe(landmark)})" for landmark in missing)
    names = list(joint_names)
    listed = ", ".join(repr(n) for n in names[:80]) + (f", ... ({len(names)} joints)" if len(names) > 80 else "")
    body = _dump(template)
    return JointMappingError(
        f"{where}: joint mapping {mapping!r} leaves landmarks the 17 sparse joints need unmapped: {shown}. "
        "Without them the limbs (or the torso) of the body would stay frozen in the rest pose. Write a JSON "
        "mapping from your joint names to the landmarks (names as in skeletok.data.motion.mapping.CANONICAL_JOINTS) and "
        f"pass it with --mapping FILE.json (mapping= in Python); for these joints, replacing each '<...>' key:\n"
        f"{body}\nJoints found: {listed}",
        missing=missing, template=template,
    )


def best_mapping(joint_names: list[str]) -> tuple[str, list[str]]:
    """The preset for ``joint_names`` and the required landmarks it misses (``[]`` when it covers them).

    Presets that cover every required landmark come first, then the most canonical landmarks covered,
    then :data:`PRESETS` order.
    """
    best, best_score, best_missing = None, None, None
    for order, key in enumerate(PRESETS):
        got = get_mapping(key).resolve(joint_names)
        missing = _missing_required(got)
        score = (not missing, -len(missing), len(got), -order)
        if best_score is None or score > best_score:
            best, best_score, best_missing = key, score, missing
    return best, best_missing


def detect_mapping(joint_names: list[str], where: str = "motion") -> str:
    """The preset for ``joint_names`` (:func:`best_mapping`), refusing one that misses a required landmark.

    Args:
        joint_names: the motion's joint names.
        where: what the names belong to (a file path or ``"motion 'walk'"``), first in the error message.

    Raises:
        JointMappingError: (a ``ValueError``) when no preset covers the required landmarks; the message
            lists the missing ones and shows a JSON mapping to complete.
    """
    key, missing = best_mapping(joint_names)
    if missing:
        raise _coverage_error(where, joint_names, key, get_mapping(key).resolve(joint_names), missing)
    return key


def landmark_up(points: np.ndarray, joint_names: list[str], mapping=None) -> np.ndarray | None:
    """The body's feet-to-head direction in the axes of ``points``: a unit ``(3,)`` vector, or ``None``.

    Args:
        points: ``(j, 3)`` (a rest pose) or ``(t, j, 3)`` positions (the median direction over frames).
        joint_names: the ``j`` names.
        mapping: the mapping to find the landmarks with (default: :func:`best_mapping`).

    Returns:
        From the mean of the ankles (else knees) to the highest torso landmark found (``Head``, ``Neck1``,
        ``Neck``, ``Spine1``, ``Spine``); ``None`` when the names give no such pair or the points coincide.
    """
    m = get_mapping(mapping if mapping is not None else best_mapping(joint_names)[0])
    got = m.resolve(joint_names)
    feet = [got[n] for n in ("LeftFoot", "RightFoot") if n in got] or [got[n] for n in ("LeftLeg", "RightLeg")
                                                                        if n in got]
    top = next((got[n] for n in ("Head", "Neck1", "Neck", "Spine1", "Spine") if n in got), None)
    if not feet or top is None:
        return None
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[None] if pts.ndim == 2 else pts
    with np.errstate(all="ignore"):
        v = pts[:, top] - pts[:, feet].mean(axis=1)
        n = np.linalg.norm(v, axis=-1)
        ok = np.isfinite(n) & (n > 0)
        if not ok.any():
            return None
        med = np.median(v[ok] / n[ok, None], axis=0)
        size = np.linalg.norm(med)
    return med / size if np.isfinite(size) and size > 1e-6 else None


_UPRIGHT = 0.5  # cos 60 degrees: the feet-to-head direction's least vertical component for "upright"


def choose_up(direction: np.ndarray | None, up: str, path, what: str = "rest pose") -> str | None:
    """Decide (``up="auto"``) or check (``"y"``/``"z"``) a file's up axis from its feet-to-head direction.

    Args:
        direction: :func:`landmark_up` of the file's points in file axes, or ``None`` (unknown joints).
        up: ``"auto"``, ``"y"`` or ``"z"``.
        path: the file, named in errors and warnings.
        what: where the direction comes from (``"rest pose"`` or ``"frames"``), for the messages.

    Returns:
        ``"y"`` or ``"z"``; ``None`` for ``"auto"`` without a direction (the caller falls back).

    Raises:
        MotionFileError: for ``"auto"`` when the direction is not clearly along +Y or +Z (the message says to
            pass ``up``). An explicit ``up`` that leaves the body not upright only warns
            (:class:`~skeletok.errors.MotionWarning`): a lying or crawling take is not upright.
    """
    if direction is None:
        return None if up == "auto" else up
    d = np.asarray(direction, dtype=np.float64)
    shown = "(" + ", ".join(f"{v:+.2f}" for v in d) + ")"
    if up == "auto":
        axis = 1 if abs(d[1]) >= abs(d[2]) else 2
        name = "yz"[axis - 1]
        if d[axis] >= _UPRIGHT:
            return name
        if abs(d[0]) > max(abs(d[1]), abs(d[2])):
            reason = "the body lies along X (only Y-up and Z-up files are read): re-export it with Y or Z up"
        elif d[axis] <= -_UPRIGHT:
            reason = f"the body is upside down along {name.upper()}: re-export it with +Y or +Z up"
        else:
            reason = ("no axis is clearly up; if this is a lying or crawling take, pass the file's up axis "
                      "(up='y' or 'z', --up y|z)")
        raise MotionFileError(path, f"cannot detect the up axis: the feet-to-head direction in the {what} is "
                                    f"{shown} (file axes); {reason}")
    vertical = d[1] if up == "y" else d[2]
    if vertical < _UPRIGHT:
        tilt = float(np.degrees(np.arccos(np.clip(vertical, -1.0, 1.0))))
        other = "z" if up == "y" else "y"
        warnings.warn(f"{path}: with up={up!r} the body is not upright in the {what}: its feet-to-head direction "
                      f"is {tilt:.0f} degrees from vertical. Unless this is a lying or crawling take, the up axis "
                      f"is wrong: try --up {other} (up={other!r}) or --up auto", MotionWarning, stacklevel=3)
    return up
