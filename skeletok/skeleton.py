"""Skeletons as explicit objects: joint names, the kinematic tree, flip pairs and parts.

A *part* is one bone ``(parent, child)`` of the tree; parts are ordered centre to periphery
(breadth first from the root, children visited in joint-index order), which is the order in
which tokenizers and autoregressive priors walk the body (see ``docs/concepts.md``).

Shapes: ``j`` joints, ``c`` coordinates, ``p`` parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Skeleton", "H36M_17", "COCO_17", "coco17_to_h36m17"]


def _breadth_first_bones(parents: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    children: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    roots = [i for i, p in enumerate(parents) if p == -1]
    for i, p in enumerate(parents):
        if p != -1:
            children[p].append(i)
    order, queue = [], list(roots)
    while queue:
        joint = queue.pop(0)
        for child in children[joint]:
            order.append((joint, child))
            queue.append(child)
    return tuple(order)


@dataclass(frozen=True)
class Skeleton:
    """A named kinematic tree with left/right flip pairs and centre-to-periphery parts.

    Args:
        name: short identifier, e.g. ``"h36m_17"``.
        joint_names: one name per joint, ``(j,)``; names are unique.
        parents: parent index of each joint, ``(j,)``; ``-1`` marks the single root.
        left: indices of the left-side joints of the flip pairs.
        right: indices of the matching right-side joints (same length as ``left``).
        parts: bones as ``(parent, child)`` pairs in centre-to-periphery order. Left empty,
            they are derived breadth first from the root (children in joint-index order).
            Given, they must be exactly the tree's bones, each after its parent bone.

    Raises:
        ValueError: if the parents do not form a single tree, lengths disagree, names repeat,
            flip pairs are out of range or overlap, or ``parts`` is not a valid bone order.

    Example:
        >>> H36M_17.index("left_knee")
        5
        >>> H36M_17.parts[:3]
        ((0, 1), (0, 4), (0, 7))
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...] = ()
    right: tuple[int, ...] = ()
    parts: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        for attr in ("joint_names", "parents", "left", "right"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        object.__setattr__(self, "parts", tuple(tuple(int(v) for v in bone) for bone in self.parts))
        j = len(self.joint_names)
        if j == 0:
            raise ValueError(f"Skeleton {self.name!r}: joint_names must not be empty")
        if len(set(self.joint_names)) != j:
            raise ValueError(f"Skeleton {self.name!r}: joint_names must be unique, got {self.joint_names}")
        if len(self.parents) != j:
            raise ValueError(
                f"Skeleton {self.name!r}: parents must have one entry per joint ({j}), got {len(self.parents)}"
            )
        for i, p in enumerate(self.parents):
            if not isinstance(p, (int, np.integer)) or p < -1 or p >= j or p == i:
                raise ValueError(
                    f"Skeleton {self.name!r}: parents[{i}] must be -1 or another joint index in [0, {j}), got {p!r}"
                )
        roots = [i for i, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise ValueError(f"Skeleton {self.name!r}: parents must have exactly one root (-1), got {len(roots)}")
        for i in range(j):  # walk up from every joint; a cycle never reaches the root
            seen, k = set(), i
            while k != -1:
                if k in seen:
                    raise ValueError(f"Skeleton {self.name!r}: parents contain a cycle through joint {k}")
                seen.add(k)
                k = self.parents[k]
        if len(self.left) != len(self.right):
            raise ValueError(
                f"Skeleton {self.name!r}: left and right must have the same length, "
                f"got {len(self.left)} and {len(self.right)}"
            )
        flip = list(self.left) + list(self.right)
        if any(not 0 <= i < j for i in flip) or len(set(flip)) != len(flip):
            raise ValueError(
                f"Skeleton {self.name!r}: left/right must hold distinct joint indices in [0, {j}), "
                f"got left={self.left}, right={self.right}"
            )
        derived = _breadth_first_bones(self.parents)
        if not self.parts:
            object.__setattr__(self, "parts", derived)
        else:
            self._check_parts(set(derived))

    def _check_parts(self, bones: set[tuple[int, int]]) -> None:
        if len(self.parts) != len(bones) or set(self.parts) != bones:
            raise ValueError(
                f"Skeleton {self.name!r}: parts must list every bone (parent, child) exactly once, "
                f"expected {sorted(bones)}, got {self.parts}"
            )
        placed = {self.parents.index(-1)}
        for parent, child in self.parts:
            if parent not in placed:
                raise ValueError(
                    f"Skeleton {self.name!r}: parts must run centre to periphery, but bone "
                    f"({parent}, {child}) comes before the bone ending at joint {parent}"
                )
            placed.add(child)

    @property
    def num_joints(self) -> int:
        """Number of joints ``j``."""
        return len(self.joint_names)

    @property
    def num_parts(self) -> int:
        """Number of parts ``p`` (bones), ``j - 1``."""
        return len(self.parts)

    @property
    def root(self) -> int:
        """Index of the root joint."""
        return self.parents.index(-1)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``.

        Raises:
            ValueError: if no joint has that name (the message lists the valid names).
        """
        if name not in self.joint_names:
            raise ValueError(f"name must be a joint of {self.name!r}, one of {list(self.joint_names)}, got {name!r}")
        return self.joint_names.index(name)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """Bones ``(parent, child)`` in joint-index order of the child (for drawing)."""
        return tuple((p, i) for i, p in enumerate(self.parents) if p != -1)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """``(left, right)`` joint index pairs swapped by a horizontal flip."""
        return tuple(zip(self.left, self.right))

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """Joint permutation that swaps every flip pair, ``(j,)``: ``x_flipped = x[..., perm, :]``."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)

    @property
    def part_names(self) -> tuple[str, ...]:
        """One name per part, ``"parent-child"`` from the joint names, in part order."""
        return tuple(f"{self.joint_names[a]}-{self.joint_names[b]}" for a, b in self.parts)


H36M_17 = Skeleton(
    name="h36m_17",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    ),  # fmt: skip
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)
"""Human3.6M 17 joints in the VideoPose3D order, rooted at the pelvis; 16 parts.

Parts (centre to periphery): pelvis-right_hip, pelvis-left_hip, pelvis-spine, right_hip-right_knee,
left_hip-left_knee, spine-thorax, right_knee-right_ankle, left_knee-left_ankle, thorax-neck_nose,
thorax-left_shoulder, thorax-right_shoulder, neck_nose-head, left_shoulder-left_elbow,
right_shoulder-right_elbow, left_elbow-left_wrist, right_elbow-right_wrist.
"""

COCO_17 = Skeleton(
    name="coco_17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),  # fmt: skip
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)
"""COCO 17 keypoints in the standard COCO order.

COCO has no pelvis or neck, so the tree is a documented choice: rooted at the nose; the eyes hang
from the nose and the ears from the eyes; the shoulders hang from the nose; elbows and wrists from
the shoulders; each hip from the same-side shoulder (the torso side), knees and ankles below. 16 parts.
"""


def _mid(a, b):
    return (a + b) / 2


def coco17_to_h36m17(
    keypoints: np.ndarray | torch.Tensor, scores: np.ndarray | torch.Tensor | None = None
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor | None]:
    """Convert COCO-17 keypoints to the Human3.6M-17 layout (numpy arrays or torch tensors).

    COCO lacks five Human3.6M joints; they are approximated from COCO keypoints:

    - pelvis = mid(left_hip, right_hip);
    - thorax = mid(left_shoulder, right_shoulder);
    - spine = mid(pelvis, thorax);
    - neck_nose = nose;
    - head = e + 0.5 (e - thorax), where e is the mean of the two eyes and the two ears (the head
      centre): the top of the head, extrapolated from the head centre away from the thorax.

    Limbs and hips map one to one. The score of a derived joint is the minimum of the scores of
    the COCO keypoints it is computed from (e.g. the head: eyes, ears and shoulders).

    Args:
        keypoints: ``(..., 17, c)`` COCO keypoints, any unit (pixels, metres), ``c >= 1``;
            a numpy array or a floating torch tensor.
        scores: optional ``(..., 17)`` confidences of the same library as ``keypoints``.

    Returns:
        ``(keypoints, scores)``: ``(..., 17, c)`` in the Human3.6M-17 order (``H36M_17``) and
        ``(..., 17)`` scores, or ``None`` when ``scores`` is ``None``. Same library and dtype as the input.

    Raises:
        ValueError: if the shapes do not match, or the inputs are not numpy arrays / torch tensors.
    """
    is_torch = isinstance(keypoints, torch.Tensor)
    if not (is_torch or isinstance(keypoints, np.ndarray)):
        raise ValueError(f"keypoints must be a numpy array or a torch tensor, got {type(keypoints).__name__}")
    if keypoints.ndim < 2 or keypoints.shape[-2] != 17 or keypoints.shape[-1] < 1:
        raise ValueError(f"keypoints must have shape (..., 17, c), got {tuple(keypoints.shape)}")
    if not (keypoints.is_floating_point() if is_torch else np.issubdtype(keypoints.dtype, np.floating)):
        raise ValueError(f"keypoints must hold floating point values, got dtype {keypoints.dtype}")
    if scores is not None:
        if isinstance(scores, torch.Tensor) != is_torch or not isinstance(scores, (torch.Tensor, np.ndarray)):
            raise ValueError(
                f"scores must be the same kind as keypoints ({type(keypoints).__name__}), got {type(scores).__name__}"
            )
        if tuple(scores.shape) != tuple(keypoints.shape[:-1]):
            raise ValueError(
                f"scores must have shape {tuple(keypoints.shape[:-1])} (keypoints' shape without c), "
                f"got {tuple(scores.shape)}"
            )
    stack = torch.stack if is_torch else np.stack
    minimum = torch.minimum if is_torch else np.minimum
    c = COCO_17.index

    def joint(name):
        return keypoints[..., c(name), :]

    pelvis = _mid(joint("left_hip"), joint("right_hip"))
    thorax = _mid(joint("left_shoulder"), joint("right_shoulder"))
    head_centre = (joint("left_eye") + joint("right_eye") + joint("left_ear") + joint("right_ear")) / 4
    derived = {
        "pelvis": pelvis,
        "thorax": thorax,
        "spine": _mid(pelvis, thorax),
        "neck_nose": joint("nose"),
        "head": head_centre + 0.5 * (head_centre - thorax),
    }
    sources = {
        "pelvis": ("left_hip", "right_hip"),
        "thorax": ("left_shoulder", "right_shoulder"),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "neck_nose": ("nose",),
        "head": ("left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder"),
    }
    out, out_scores = [], []
    for name in H36M_17.joint_names:
        srcs = sources.get(name, (name,))
        out.append(derived[name] if name in derived else joint(name))
        if scores is not None:
            s = scores[..., c(srcs[0])]
            for other in srcs[1:]:
                s = minimum(s, scores[..., c(other)])
            out_scores.append(s)
    converted = stack(out, -2)
    return converted, (stack(out_scores, -1) if scores is not None else None)
