"""The skinned body model: rest templates for several body shapes, a rig, and linear blend skinning (numpy).

Shape notation: ``t`` frames, ``s`` body shapes, ``v`` vertices, ``f`` triangles, ``k`` rig joints.

Conventions (see ``docs/concepts.md``): metres, Z-up, right-handed, ground at ``z = 0``; the rest body faces -y
with its left side at +x. Every rig joint is the *head* of one bone; ``parents`` lists parents before children.

A pose is given by **global** bone rotations relative to the rest pose: ``R_j`` is the world rotation applied to
bone ``j`` (identity everywhere is the rest pose). Posed joint heads follow the hierarchy,

    p_root = rest_root + root_translation,    p_j = p_parent(j) + R_parent(j) (rest_j - rest_parent(j)),

and each vertex moves with the blend of its bones' rigid motions ``x -> R_j (x - rest_j) + p_j`` (linear blend
skinning with 4 weights per vertex).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["BodyModel", "local_to_global"]

_KEYS = ("vertices", "faces", "joint_names", "parents", "rest_joints", "joint_tails", "skin_index", "skin_weight",
         "shape_names")
_CHUNK = 128  # frames skinned at once (bounds memory at about 40 MB)


def _rotations(name: str, x, num_joints: int) -> np.ndarray:
    """Validate a ``(t, k, 3, 3)`` stack of rotation matrices and return it as float64."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of shape (t, {num_joints}, 3, 3), got {type(x).__name__}") from exc
    if x.ndim != 4 or x.shape[1:] != (num_joints, 3, 3):
        raise ValueError(f"{name} must have shape (t, {num_joints}, 3, 3), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(x)).sum())} NaN/inf value(s)")
    err = np.abs(np.einsum("tkab,tkac->tkbc", x, x) - np.eye(3)).max(initial=0.0)
    if err > 1e-3 or (x.size and np.linalg.det(x).min() < 0):
        raise ValueError(f"{name} must hold rotation matrices (orthonormal, det +1), got max |R^T R - I| = {err:.3g}")
    return x


def local_to_global(local_rotations, parents) -> np.ndarray:
    """Compose local (parent-relative) joint rotations into global ones down a hierarchy.

    Args:
        local_rotations: ``(t, k, 3, 3)`` rotation of each joint relative to its parent's frame.
        parents: ``(k,)`` parent index of each joint, ``-1`` for roots, parents before children.

    Returns:
        ``(t, k, 3, 3)`` float64 global rotations, ``R_j = R_parent(j) @ L_j``.

    Raises:
        ValueError: on a bad shape, non-rotation matrices or a parent list that is not topologically ordered.
    """
    parents = np.asarray(parents)
    if parents.ndim != 1 or np.any(parents >= np.arange(len(parents))) or np.any(parents < -1):
        raise ValueError(f"parents must be a (k,) list with -1 <= parents[j] < j, got {parents.tolist()}")
    local = _rotations("local_rotations", local_rotations, len(parents))
    out = np.empty_like(local)
    for j, p in enumerate(parents):
        out[:, j] = local[:, j] if p < 0 else out[:, p] @ local[:, j]
    return out


@dataclass(frozen=True, eq=False)
class BodyModel:
    """A skinned body with ``s`` rest shapes and a ``k``-joint rig (the committed asset is MakeHuman ``cmu_mb``).

    Attributes:
        vertices: ``(s, v, 3)`` float32 rest templates, metres.
        faces: ``(f, 3)`` int32 triangles.
        joint_names: the ``k`` rig joint names (CMU MotionBuilder BVH names for the committed asset).
        parents: ``(k,)`` int64 parent of each joint, ``-1`` for the root, parents before children.
        rest_joints: ``(s, k, 3)`` float32 rest joint (bone head) positions, metres.
        joint_tails: ``(s, k, 3)`` float32 rest bone tail positions, metres (e.g. the ``Head`` tail is the crown).
        skin_index: ``(v, 4)`` int16 joints influencing each vertex.
        skin_weight: ``(v, 4)`` float32 their weights (rows sum to 1).
        shape_names: the ``s`` body shape names.
    """

    vertices: np.ndarray
    faces: np.ndarray
    joint_names: tuple[str, ...]
    parents: np.ndarray
    rest_joints: np.ndarray
    joint_tails: np.ndarray
    skin_index: np.ndarray
    skin_weight: np.ndarray
    shape_names: tuple[str, ...]
    _skin: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s, v, k = self.vertices.shape[0], self.vertices.shape[1], len(self.joint_names)
        expected = {"vertices": (s, v, 3), "rest_joints": (s, k, 3), "joint_tails": (s, k, 3), "parents": (k,),
                    "skin_index": (v, 4), "skin_weight": (v, 4)}
        for key, shape in expected.items():
            if getattr(self, key).shape != shape:
                raise ValueError(f"body field '{key}' must have shape {shape}, got {getattr(self, key).shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError(f"body field 'faces' must be (f, 3) indices in [0, {v}), got shape {self.faces.shape}")
        if np.any(self.parents >= np.arange(k)) or np.sum(self.parents < 0) != 1 or self.parents[0] != -1:
            raise ValueError(f"body field 'parents' must have one root at 0 and parents before children, "
                             f"got {self.parents.tolist()}")
        if self.skin_index.min() < 0 or self.skin_index.max() >= k:
            raise ValueError(f"body field 'skin_index' must hold joint indices in [0, {k})")
        if len(self.shape_names) != s:
            raise ValueError(f"body field 'shape_names' must have {s} names, got {len(self.shape_names)}")
        skin = np.zeros((v, k), dtype=np.float32)
        np.add.at(skin, (np.arange(v)[:, None], self.skin_index.astype(np.int64)), self.skin_weight)
        object.__setattr__(self, "_skin", skin)

    @classmethod
    def load(cls, path: str | Path | None = None) -> BodyModel:
        """Load a body ``.npz`` (default: the committed ``skeletok/data/assets/body.npz``).

        Raises:
            ValueError: when the file lacks a field or a field has the wrong shape (the message names both).
            FileNotFoundError: when ``path`` does not exist.
        """
        if path is None:
            with resources.as_file(resources.files("skeletok.data") / "assets" / "body.npz") as asset:
                return cls.load(asset)
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in _KEYS if key not in data.files]
            if missing:
                raise ValueError(f"body file {path} lacks field(s) {missing}; expected {list(_KEYS)}")
            d = {key: data[key] for key in _KEYS}
        try:
            return cls(
                vertices=d["vertices"].astype(np.float32),
                faces=d["faces"].astype(np.int32),
                joint_names=tuple(str(n) for n in d["joint_names"]),
                parents=d["parents"].astype(np.int64),
                rest_joints=d["rest_joints"].astype(np.float32),
                joint_tails=d["joint_tails"].astype(np.float32),
                skin_index=d["skin_index"].astype(np.int16),
                skin_weight=d["skin_weight"].astype(np.float32),
                shape_names=tuple(str(n) for n in d["shape_names"]),
            )
        except ValueError as exc:
            raise ValueError(f"body file {path}: {exc}") from exc

    @property
    def num_shapes(self) -> int:
        """Number of body shapes ``s``."""
        return self.vertices.shape[0]

    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices ``v``."""
        return self.vertices.shape[1]

    @property
    def num_joints(self) -> int:
        """Number of rig joints ``k``."""
        return len(self.joint_names)

    @property
    def skin_matrix(self) -> np.ndarray:
        """``(v, k)`` float32 dense skinning weights (rows sum to 1)."""
        return self._skin

    def joint_index(self, name: str) -> int:
        """Index of the rig joint called ``name``; ``ValueError`` listing the names if there is none."""
        if name not in self.joint_names:
            raise ValueError(f"joint name must be one of {list(self.joint_names)}, got {name!r}")
        return self.joint_names.index(name)

    def _shape(self, shape) -> int:
        if isinstance(shape, bool) or not isinstance(shape, (int, np.integer)) or not 0 <= shape < self.num_shapes:
            raise ValueError(f"shape must be an int in [0, {self.num_shapes}), got {shape!r}")
        return int(shape)

    def rest_pose(self, shape: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The rest template of one body shape.

        Returns:
            ``vertices (v, 3)`` and ``joints (k, 3)`` float32, metres (copies).
        """
        shape = self._shape(shape)
        return self.vertices[shape].copy(), self.rest_joints[shape].copy()

    def local_to_global(self, local_rotations) -> np.ndarray:
        """Compose ``(t, k, 3, 3)`` parent-relative rotations into global ones over this rig (see module doc)."""
        return local_to_global(local_rotations, self.parents)

    def joints(self, global_rotations, root_translation=None, shape: int = 0) -> np.ndarray:
        """Posed joint heads only (forward kinematics), ``(t, k, 3)`` float64, metres; arguments as :meth:`pose`."""
        shape = self._shape(shape)
        rot = _rotations("global_rotations", global_rotations, self.num_joints)
        trans = self._translation(root_translation, len(rot))
        rest = self.rest_joints[shape].astype(np.float64)
        out = np.empty((len(rot), self.num_joints, 3))
        for j, p in enumerate(self.parents):
            if p < 0:
                out[:, j] = rest[j] + trans
            else:
                out[:, j] = out[:, p] + rot[:, p] @ (rest[j] - rest[p])
        return out

    def _translation(self, root_translation, t: int) -> np.ndarray:
        if root_translation is None:
            return np.zeros((t, 3))
        try:
            trans = np.asarray(root_translation, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"root_translation must be an array of shape ({t}, 3), "
                             f"got {type(root_translation).__name__}") from exc
        if trans.shape != (t, 3) or not np.isfinite(trans).all():
            raise ValueError(f"root_translation must be a finite array of shape ({t}, 3) (one row per frame of "
                             f"global_rotations), got shape {trans.shape}")
        return trans

    def pose(self, global_rotations, root_translation=None, shape: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Pose the body by linear blend skinning.

        Args:
            global_rotations: ``(t, k, 3, 3)`` world rotation of each bone relative to the rest pose.
            root_translation: ``(t, 3)`` displacement of the root joint from its rest position, metres;
                ``None`` for zeros.
            shape: body shape index in ``[0, s)``.

        Returns:
            ``vertices (t, v, 3)`` and ``joints (t, k, 3)``, float32, metres (world frame, Z-up).

        Raises:
            ValueError: on a bad shape index, wrong array shapes, non-finite values or non-rotation matrices.
        """
        joints = self.joints(global_rotations, root_translation, shape)
        rot = np.asarray(global_rotations, dtype=np.float64)
        rest_j = self.rest_joints[self._shape(shape)].astype(np.float64)
        offset = joints - np.einsum("tkab,kb->tka", rot, rest_j)  # x -> R x + offset for each bone
        affine = np.concatenate([rot, offset[..., None]], axis=-1).reshape(len(rot), self.num_joints, 12)
        template = self.vertices[self._shape(shape)]
        out = np.empty((len(rot), self.num_vertices, 3), dtype=np.float32)
        for start in range(0, len(rot), _CHUNK):
            chunk = affine[start:start + _CHUNK].astype(np.float32)
            blended = np.einsum("vk,tkm->tvm", self._skin, chunk, optimize=True)
            blended = blended.reshape(len(chunk), self.num_vertices, 3, 4)
            out[start:start + _CHUNK] = (blended[..., 0] * template[:, None, 0] + blended[..., 1] * template[:, None, 1]
                                         + blended[..., 2] * template[:, None, 2] + blended[..., 3])
        return out, joints.astype(np.float32)
