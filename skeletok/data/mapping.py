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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.motion import Motion

__all__ = ["CANONICAL_JOINTS", "CANONICAL_PARENTS", "JointMapping", "PRESETS", "get_mapping", "detect_mapping"]


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
    """Expand ``{s}``/``{h}``/``{c}`` templates for both sides (Left/L/l, Right/R/r)."""
    out: dict[str, list[str]] = {}
    for src, dst in table.items():
        dsts = [dst] if isinstance(dst, str) else dst
        sides = (("Left", "L", "l"), ("Right", "R", "r")) if "{" in src + "".join(dsts) else (("", "", ""),)
        for s, h, c in sides:
            out[src.format(s=s, h=h, c=c)] = [d.format(s=s, h=h, c=c) for d in dsts]
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


def _strip(name: str) -> str:
    return name.rsplit(":", 1)[-1]


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
        """Landmark -> index into ``joint_names`` for every landmark this mapping covers there."""
        exact = {n: i for i, n in enumerate(joint_names)}
        stripped: dict[str, int] = {}
        for i, n in enumerate(joint_names):
            stripped.setdefault(_strip(n), i)
        out: dict[str, int] = {}
        for src, dsts in self.table.items():
            i = exact.get(src, stripped.get(_strip(src)))
            if i is None:
                continue
            for d in dsts:
                out.setdefault(d, i)
        return out

    def missing(self, joint_names: list[str]) -> list[str]:
        """Canonical landmarks this mapping cannot fill from ``joint_names``."""
        got = self.resolve(joint_names)
        return [n for n in CANONICAL_JOINTS if n not in got]

    def apply(self, motion: Motion) -> Motion:
        """Keep the mapped joints, renamed to landmarks in canonical order, parents among the kept ones.

        Raises:
            ValueError: when ``Hips`` (the root landmark) is not covered.
        """
        got = self.resolve(motion.joint_names)
        if "Hips" not in got:
            raise ValueError(f"mapping {self.name!r} finds no source for 'Hips' among the joints of {motion.name!r}: "
                             f"{motion.joint_names}")
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


def detect_mapping(joint_names: list[str]) -> str:
    """The preset that covers the most canonical landmarks for ``joint_names`` (ties: :data:`PRESETS` order)."""
    counts = {k: len(get_mapping(k).resolve(joint_names)) for k in PRESETS}
    return max(counts, key=lambda k: counts[k])
