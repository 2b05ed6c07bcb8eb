"""The three levels of a skinned body: 17 sparse joints, 48 dense and 96 fine surface points, with parts.

``build_levels`` coarsens the body mesh (:func:`skeletok.data.body.hem.coarsen_mesh`), gives every dense and
fine point a part (a bone of the sparse skeleton) and fixes a linear regressor from the posed rig joints
and vertices to the 17 Human3.6M joints. :class:`BodyLevels` then turns posed bodies into the three
levels with three sparse matrix products, fast enough for tens of thousands of frames.

Clusters. The decimated MakeHuman body keeps a third of its vertices on the head and a quarter on the
hands, so the paper's vertex-balanced HEM (``balance="vertices"``, right for SMPL's even density) puts
27 of the 96 fine points on the head, 13 on each forearm and hand, 2 on each upper arm. The default
``balance="area"`` caps each HEM merge at twice the mean cluster area, which spreads the points by body
surface instead (head 9, each leg about 20, each arm about 10); the paper's choice stays one argument away.

Parts. Each rig bone is mapped to the sparse-skeleton bone named by its child joint (``RIG_TO_PART``,
for the MakeHuman ``cmu_mb`` rig with CMU MotionBuilder names); a rig bone missing from the map takes
the part of its nearest mapped ancestor. A dense point's part is the bone with the largest skinning weight
summed over its cluster's vertices, and each fine point takes the part of its dense parent (so the two
nested levels never disagree; assigned per level, 22 of the 96 fine points used to differ). The rig's small bones (hip joints, clavicles, neck) dominate no
cluster, so by default (``min_points_per_part=1``) each part left with no point takes the point with
the largest share of its skinning weight from a part that has points to spare (parts in centre-to-
periphery order): the pelvis-hip parts get a cluster over the buttock, thorax-neck one at the neck
base, the clavicle parts one on top of each shoulder. Feet and toes belong to the shin (knee-ankle) bone and hands and
fingers to the forearm (elbow-wrist) bone, since Human3.6M-17 ends at the ankles and wrists.

Sparse joints (``SPARSE_RECIPE``; rig joints are bone heads):

- hips, knees, ankles: the heads of ``*UpLeg``, ``*Leg``, ``*Foot``; pelvis: the mid-point of the hips;
- shoulders, elbows, wrists: the heads of ``*Arm``, ``*ForeArm``, ``*Hand``;
- spine: the head of ``Spine`` (mid-back, about halfway from pelvis to thorax);
- thorax: the mid-point of the ``LeftShoulder``/``RightShoulder`` (clavicle) heads, i.e. the top of the
  sternum between the inner ends of the clavicles;
- neck_nose: the head of ``Head`` (skull base, level with the mouth, inside the head);
- head: the mean of the *head-top cap*, the vertices mostly skinned to ``Head`` lying in the top
  ``HEAD_CAP`` fraction of the head's height above the ``Head`` joint (along pelvis -> ``Head``); as a vertex mean
  it follows the skull when the head turns.

Shapes: ``t`` frames, ``k`` rig joints, ``v`` vertices, ``j`` points of a level, ``p`` parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skeletok.data.body.hem import MeshHierarchy, _check_vertices, apply_vertex_matrix, coarsen_mesh
from skeletok.skeleton import H36M_17, Skeleton

__all__ = ["BodyLevels", "build_levels", "RIG_TO_PART", "SPARSE_RECIPE"]

HEAD_CAP = 0.2

RIG_TO_PART = {
    "Hips": "spine", "LowerBack": "spine", "Spine": "thorax", "Spine1": "thorax",
    "Neck": "neck_nose", "Neck1": "neck_nose", "Head": "head",
    "LHipJoint": "left_hip", "LeftUpLeg": "left_knee", "LeftLeg": "left_ankle",
    "RHipJoint": "right_hip", "RightUpLeg": "right_knee", "RightLeg": "right_ankle",
    "LeftShoulder": "left_shoulder", "LeftArm": "left_elbow", "LeftForeArm": "left_wrist",
    "RightShoulder": "right_shoulder", "RightArm": "right_elbow", "RightForeArm": "right_wrist",
}  # fmt: skip
"""Rig bone -> sparse-skeleton bone, named by the sparse bone's child joint (unlisted: nearest ancestor)."""

SPARSE_RECIPE = {
    "pelvis": {"LeftUpLeg": 0.5, "RightUpLeg": 0.5},
    "right_hip": {"RightUpLeg": 1.0}, "right_knee": {"RightLeg": 1.0}, "right_ankle": {"RightFoot": 1.0},
    "left_hip": {"LeftUpLeg": 1.0}, "left_knee": {"LeftLeg": 1.0}, "left_ankle": {"LeftFoot": 1.0},
    "spine": {"Spine": 1.0}, "thorax": {"LeftShoulder": 0.5, "RightShoulder": 0.5},
    "neck_nose": {"Head": 1.0}, "head": "head_top",
    "left_shoulder": {"LeftArm": 1.0}, "left_elbow": {"LeftForeArm": 1.0}, "left_wrist": {"LeftHand": 1.0},
    "right_shoulder": {"RightArm": 1.0}, "right_elbow": {"RightForeArm": 1.0}, "right_wrist": {"RightHand": 1.0},
}  # fmt: skip
"""Sparse joint -> weights of rig joint heads, or ``"head_top"`` (mean of the head-top cap vertices)."""


def _stack(matrices: list[sp.spmatrix]) -> sp.csr_matrix:
    return sp.vstack(matrices, format="csr")


@dataclass
class BodyLevels:
    """Levels and parts of one body mesh, and the maps from posed bodies to the three levels.

    Attributes:
        hierarchy: the nested fine/dense clusters (``sizes = (96, 48)``).
        parts_fine: ``(96,)`` int64 part of each fine point, in ``[0, p)``.
        parts_dense: ``(48,)`` int64 part of each dense point.
        joint_regressor: ``(17, k)`` float64 weights of the rig joint heads per sparse joint.
        vertex_regressor: ``(17, v)`` CSR weights of the vertices per sparse joint.
        sparse_names: the sparse skeleton's joint names, ``(17,)``.
        part_bones: ``(p, 2)`` int64 ``(parent, child)`` joint indices of each part.
        rig_names: the rig's joint names, ``(k,)``.
    """

    hierarchy: MeshHierarchy
    parts_fine: np.ndarray
    parts_dense: np.ndarray
    joint_regressor: np.ndarray
    vertex_regressor: sp.csr_matrix
    sparse_names: tuple[str, ...]
    part_bones: np.ndarray
    rig_names: tuple[str, ...]

    @property
    def fine_to_dense(self) -> np.ndarray:
        """``(96,)`` int64: the dense cluster containing each fine cluster."""
        return self.hierarchy.assignments[1]

    def _check(self, joints, vertices) -> tuple[np.ndarray, np.ndarray]:
        joints, vertices = np.asarray(joints), np.asarray(vertices)
        k, v = len(self.rig_names), self.hierarchy.num_vertices
        if joints.ndim < 2 or joints.shape[-2:] != (k, 3) or not np.issubdtype(joints.dtype, np.floating):
            raise ValueError(f"joints must be a float array of shape (..., {k}, 3), got {joints.dtype} {joints.shape}")
        if vertices.shape != joints.shape[:-2] + (v, 3) or not np.issubdtype(vertices.dtype, np.floating):
            raise ValueError(
                f"vertices must be a float array of shape {joints.shape[:-2] + (v, 3)} (same leading dims as "
                f"joints), got {vertices.dtype} {vertices.shape}"
            )
        return joints, vertices

    def regress_sparse(self, joints, vertices) -> np.ndarray:
        """The 17 sparse joints of posed bodies.

        Args:
            joints: ``(t, k, 3)`` posed rig joint heads (metres; any leading dims).
            vertices: ``(t, v, 3)`` posed vertices.

        Returns:
            ``(t, 17, 3)`` array, dtype of ``joints``.
        """
        return self.levels(joints, vertices)[0]

    def levels(self, joints, vertices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse, dense and fine points of posed bodies.

        Args:
            joints: ``(t, k, 3)`` posed rig joint heads (metres; any leading dims).
            vertices: ``(t, v, 3)`` posed vertices.

        Returns:
            ``(sparse (t, 17, 3), dense (t, 48, 3), fine (t, 96, 3))``, dtype of ``joints``.
        """
        joints, vertices = self._check(joints, vertices)
        h = self.hierarchy
        matrix = _stack([self.vertex_regressor, h.averaging_matrix(1), h.averaging_matrix(0)])
        points = apply_vertex_matrix(matrix, vertices)
        n_s, n_d = self.vertex_regressor.shape[0], h.sizes[1]
        sparse = points[..., :n_s, :] + np.einsum("sk,...kc->...sc", self.joint_regressor, joints)
        dense, fine = points[..., n_s : n_s + n_d, :], points[..., n_s + n_d :, :]
        return tuple(x.astype(joints.dtype) for x in (sparse, dense, fine))

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` file readable by :meth:`load`."""
        h, reg = self.hierarchy, self.vertex_regressor.tocoo()
        np.savez(
            path, num_vertices=h.num_vertices, sizes=np.asarray(h.sizes), hem_sizes=np.asarray(h.hem_sizes),
            vertex_to_fine=h.assignments[0], fine_to_dense=h.assignments[1],
            parts_fine=self.parts_fine, parts_dense=self.parts_dense, joint_regressor=self.joint_regressor,
            vertex_regressor_rows=reg.row, vertex_regressor_cols=reg.col, vertex_regressor_values=reg.data,
            sparse_names=np.asarray(self.sparse_names), part_bones=self.part_bones,
            rig_names=np.asarray(self.rig_names),
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> BodyLevels:
        """Read a file written by :meth:`save`.

        Raises:
            ValueError: naming the file and the missing field if it is not a levels file.
        """
        with np.load(path, allow_pickle=False) as f:
            needed = ("num_vertices", "sizes", "hem_sizes", "vertex_to_fine", "fine_to_dense", "parts_fine",
                      "parts_dense", "joint_regressor", "vertex_regressor_rows", "vertex_regressor_cols",
                      "vertex_regressor_values", "sparse_names", "part_bones", "rig_names")  # fmt: skip
            missing = [k for k in needed if k not in f.files]
            if missing:
                raise ValueError(f"{path}: not a BodyLevels file, missing field(s) {missing}")
            d = {k: f[k] for k in needed}
        v, sizes = int(d["num_vertices"]), tuple(int(s) for s in d["sizes"])
        hierarchy = MeshHierarchy(v, sizes, [d["vertex_to_fine"], d["fine_to_dense"]], [int(s) for s in d["hem_sizes"]])
        reg = sp.csr_matrix(
            (d["vertex_regressor_values"], (d["vertex_regressor_rows"], d["vertex_regressor_cols"])),
            shape=(len(d["sparse_names"]), v),
        )
        return cls(hierarchy, d["parts_fine"], d["parts_dense"], d["joint_regressor"], reg,
                   tuple(str(s) for s in d["sparse_names"]), d["part_bones"],
                   tuple(str(s) for s in d["rig_names"]))  # fmt: skip


def _check_rig(vertices_rest, skin_index, skin_weight, joint_names, parents, rest_joints):
    v = len(vertices_rest)
    names = tuple(str(n) for n in joint_names)
    k = len(names)
    parents = np.asarray(parents)
    if parents.shape != (k,) or not np.issubdtype(parents.dtype, np.integer) or (parents >= k).any():
        raise ValueError(
            f"parents must be ({k},) ints in [-1, {k}) (one per joint name), got {parents.dtype} {parents.shape}"
        )
    needed = {n for recipe in SPARSE_RECIPE.values() if isinstance(recipe, dict) for n in recipe} | {"Head"}
    missing = sorted(needed - set(names))
    if missing:
        raise ValueError(f"joint_names must name the cmu_mb rig joints, missing {missing}")
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    if rest_joints.shape != (k, 3) or not np.isfinite(rest_joints).all():
        raise ValueError(f"rest_joints must be finite with shape ({k}, 3), got {rest_joints.shape}")
    skin_index, skin_weight = np.asarray(skin_index), np.asarray(skin_weight, dtype=np.float64)
    if skin_index.ndim != 2 or skin_index.shape[0] != v or not np.issubdtype(skin_index.dtype, np.integer):
        raise ValueError(
            f"skin_index must be an int array of shape ({v}, i), got {skin_index.dtype} {skin_index.shape}"
        )
    if skin_index.min() < 0 or skin_index.max() >= k:
        raise ValueError(
            f"skin_index must hold joint indices in [0, {k}), got [{skin_index.min()}, {skin_index.max()}]"
        )
    if skin_weight.shape != skin_index.shape or (skin_weight < 0).any() or (skin_weight.sum(1) <= 0).any():
        raise ValueError(
            f"skin_weight must have shape {skin_index.shape} with non-negative rows of positive sum, "
            f"got {skin_weight.shape}"
        )
    return names, parents, rest_joints, skin_index.astype(np.int64), skin_weight


def _rig_parts(names, parents, skeleton: Skeleton) -> np.ndarray:
    """``(k,)`` part index of every rig bone (nearest mapped ancestor for unmapped bones)."""
    part_of_child = {skeleton.joint_names[child]: i for i, (_, child) in enumerate(skeleton.parts)}
    out = np.full(len(names), -1, dtype=np.int64)
    for j, name in enumerate(names):
        a = j
        while a >= 0 and names[a] not in RIG_TO_PART:
            a = int(parents[a])
        if a < 0:
            raise ValueError(f"joint_names: rig bone {name!r} has no ancestor listed in RIG_TO_PART")
        out[j] = part_of_child[RIG_TO_PART[names[a]]]
    return out


def build_levels(vertices_rest, faces, skin_index, skin_weight, joint_names, parents, rest_joints,
                 skeleton: Skeleton = H36M_17, sizes=(96, 48), weight: str = "count",
                 balance: str = "area", min_points_per_part: int = 1) -> BodyLevels:  # fmt: skip
    """Coarsen a rigged body into fine/dense clusters, assign parts and build the sparse regressor.

    Args:
        vertices_rest: ``(v, 3)`` rest vertices (metres) of one body shape.
        faces: ``(f, 3)`` int triangles.
        skin_index: ``(v, i)`` int rig joint (bone) of each skinning influence.
        skin_weight: ``(v, i)`` float skinning weights (rows need not be normalised).
        joint_names: ``(k,)`` rig joint names (the ``cmu_mb`` rig; see ``RIG_TO_PART``).
        parents: ``(k,)`` int parent of each rig joint, ``-1`` for the root.
        rest_joints: ``(k, 3)`` rest rig joint heads (metres).
        skeleton: the sparse skeleton; its joint names must be the keys of ``SPARSE_RECIPE``.
        sizes: ``(fine, dense)`` cluster counts.
        weight: mesh edge weight for HEM (see :func:`skeletok.data.body.hem.mesh_adjacency`).
        balance: ``"area"`` (default) or ``"vertices"`` (the paper's plain HEM); see
            :func:`skeletok.data.body.hem.coarsen_mesh` and the module notes.
        min_points_per_part: after the dominant-bone rule, every part with fewer dense points takes
            them over (see the module notes); ``0`` keeps the pure dominant-bone parts. Fine points take
            their dense parent's part, so each part has at least twice as many fine points.

    Returns:
        the :class:`BodyLevels`.

    Raises:
        ValueError: for inconsistent shapes, unknown joint names, or a mesh that cannot be coarsened.
    """
    vertices = _check_vertices(vertices_rest)
    names, parents, rest_joints, skin_index, skin_weight = _check_rig(
        vertices, skin_index, skin_weight, joint_names, parents, rest_joints
    )
    unknown = [n for n in skeleton.joint_names if n not in SPARSE_RECIPE]
    if unknown:
        raise ValueError(f"skeleton {skeleton.name!r} has joints without a regressor recipe: {unknown}")
    if len(tuple(sizes)) != 2:
        raise ValueError(f"sizes must be (fine, dense), got {sizes}")
    hierarchy = coarsen_mesh(vertices, faces, sizes, weight=weight, balance=balance)
    v, k, p = len(vertices), len(names), skeleton.num_parts

    # parts: skinning weight per (vertex, part), summed over each cluster
    rig_part = _rig_parts(names, parents, skeleton)
    rows = np.repeat(np.arange(v), skin_index.shape[1])
    vertex_part = sp.csr_matrix(
        ((skin_weight / skin_weight.sum(1, keepdims=True)).ravel(), (rows, rig_part[skin_index].ravel())), shape=(v, p)
    )
    # parts are assigned to the dense points; each fine point takes its dense parent's part (nested levels agree)
    ids = hierarchy.vertex_to_level(1)
    inside = np.flatnonzero(ids >= 0)
    member = sp.csr_matrix((np.ones(len(inside)), (ids[inside], inside)), shape=(hierarchy.sizes[1], v))
    parts_dense = _assign_parts((member @ vertex_part).toarray(), min_points_per_part, 1)
    parts = [parts_dense[hierarchy.assignments[1]], parts_dense]

    # sparse regressor
    joint_reg = np.zeros((skeleton.num_joints, k))
    vertex_rows, vertex_cols = [], []
    for s, name in enumerate(skeleton.joint_names):
        recipe = SPARSE_RECIPE[name]
        if recipe == "head_top":
            head = names.index("Head")
            up = _head_axis(rest_joints, names)
            dominant = skin_index[np.arange(v), skin_weight.argmax(1)] == head
            height = (vertices - rest_joints[head]) @ up
            top = height[dominant].max()
            cap = np.flatnonzero(dominant & (height >= top - HEAD_CAP * top))
            vertex_rows += [s] * len(cap)
            vertex_cols += list(cap)
        else:
            for joint, w in recipe.items():
                joint_reg[s, names.index(joint)] += w
    counts = np.bincount(vertex_rows, minlength=skeleton.num_joints)
    vertex_reg = sp.csr_matrix(
        (1.0 / counts[vertex_rows], (vertex_rows, vertex_cols)), shape=(skeleton.num_joints, v)
    ) if vertex_rows else sp.csr_matrix((skeleton.num_joints, v))  # fmt: skip
    return BodyLevels(hierarchy, parts[0], parts[1], joint_reg, vertex_reg, tuple(skeleton.joint_names),
                      np.asarray(skeleton.parts, dtype=np.int64), names)  # fmt: skip


def _assign_parts(weight: np.ndarray, minimum: int, level: int) -> np.ndarray:
    """Dominant part per point, then top up parts below ``minimum`` points; ``weight`` is ``(n, p)``."""
    n, p = weight.shape
    if minimum * p > n:
        raise ValueError(f"min_points_per_part={minimum} needs {minimum * p} points, level {level} has {n}")
    fraction = weight / np.maximum(weight.sum(1, keepdims=True), 1e-12)
    parts = fraction.argmax(1)
    for part in range(p):  # centre to periphery, so the order is fixed
        while (parts == part).sum() < minimum:
            counts = np.bincount(parts, minlength=p)
            spare = (counts[parts] > minimum) & (parts != part)
            candidates = np.flatnonzero(spare)
            parts[candidates[np.argmax(fraction[candidates, part])]] = part
    return parts.astype(np.int64)


def _head_axis(rest_joints, names) -> np.ndarray:
    """Unit vector from the pelvis (mid-point of the hips) to the ``Head`` joint: the body's up axis."""
    pelvis = 0.5 * (rest_joints[names.index("LeftUpLeg")] + rest_joints[names.index("RightUpLeg")])
    axis = rest_joints[names.index("Head")] - pelvis
    norm = np.linalg.norm(axis)
    if norm <= 0:
        raise ValueError("rest_joints: the Head joint coincides with the pelvis, so the body's up axis is undefined")
    return axis / norm
