"""Joint-name mappings from mocap conventions onto the canonical CMU MotionBuilder landmarks.

Shapes: ``t`` frames, ``j`` joints.

The canonical landmarks are the bone HEADS of the MakeHuman ``cmu_mb`` rig (31 bones, CMU
MotionBuilder names) plus three bone TAILS that orient the leaf bones (``Head_End``,
``LeftToeBase_End``, ``RightToeBase_End``); see :mod:`~skeletok.data.motion.presets`, which holds them
(``CANONICAL_JOINTS``, ``CANONICAL_PARENTS``) with the preset tables (``PRESETS``).

A mapping sends each source joint to one or more landmarks: one source point may stand for several
landmarks that coincide in that source (the CMU ASF ``root`` is the head of ``Hips``, ``LHipJoint``,
``RHipJoint`` and ``LowerBack``). Landmarks no source joint covers are simply absent from the result
(the retargeter keeps the rest orientation of such bones). Source names are matched exactly, then
without any ``prefix:`` namespace (``mixamorig:Hips`` -> ``Hips``). Notes per preset:
:mod:`~skeletok.data.motion.presets`.

Name rules: besides exact names, a source name matches a joint whose *name key* (:func:`name_key`) is equal:
the ``namespace:`` part, ``mixamorig``/``mixamorig_`` prefixes, Rigify's ``DEF-`` and Biped's ``Bip01``
words are dropped, a side word (``Left``/``L``/``l``/``left`` ... as a prefix, a ``_L``/``.L``/`` L``
suffix or a word of its own) becomes the side, and the remaining words are compared without case or
separators. So ``mixamorig_LeftArm``, ``Left_Arm``, ``Arm.L`` and ``arm_l`` are all ``L:arm``, and
``Bip01 L Thigh`` and ``Bip01_L_Thigh`` are both ``L:thigh``.

Coverage: a mapping must give ``Hips``, the 12 limb landmarks (hips, knees, ankles, shoulders, elbows and
wrists of both sides: ``REQUIRED_LANDMARKS``) and at least one chest/neck/head landmark
(``TORSO_LANDMARKS``); otherwise the limbs or the torso of the retargeted body would stay frozen in the
rest pose. :func:`detect_mapping` and :meth:`JointMapping.apply` refuse less with a
:class:`~skeletok.errors.JointMappingError` that lists what is missing and shows a JSON mapping to write
(the layout of :meth:`JointMapping.from_file`).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.motion.core import Motion
from skeletok.data.motion.presets import (CANONICAL_JOINTS, CANONICAL_PARENTS, PRESETS, REQUIRED_LANDMARKS,
                                          TORSO_LANDMARKS)
from skeletok.errors import JointMappingError

__all__ = ["JointMapping", "get_mapping", "detect_mapping", "best_mapping", "name_key"]


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
        table: source name -> canonical landmark names (each in
            :data:`~skeletok.data.motion.presets.CANONICAL_JOINTS`). When two
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
        """The :data:`~skeletok.data.motion.presets.REQUIRED_LANDMARKS` not covered, plus ``"Spine1"`` when no
        :data:`~skeletok.data.motion.presets.TORSO_LANDMARKS` is."""
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
    """A preset by name (:data:`~skeletok.data.motion.presets.PRESETS`), a JSON file path, a dict, or a
    :class:`JointMapping` as is."""
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
    then :data:`~skeletok.data.motion.presets.PRESETS` order.
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
