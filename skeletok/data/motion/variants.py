"""Variants of a source take for training: left/right mirrored motion and evenly spaced frames.

Mirroring happens on the *source* motion, before retargeting: positions are reflected through the
vertical x = 0 plane and every left joint takes its right partner's (reflected) trajectory, so the
retargeted body is an ordinary body doing the mirrored motion, and its asymmetric surface clusters
(dense/fine points) stay on their own side. Mirroring the finished levels instead would put the left
arm's clusters on the right arm.

Shapes: ``t`` frames, ``j`` joints, ``c = 3``; metres, Z-up.
"""

from __future__ import annotations

import re

import numpy as np

from skeletok.data.motion.core import Motion

__all__ = ["mirror_name", "mirror_permutation", "mirror_motion", "evenly_spaced", "evenly_spaced_index"]

# (pattern, replacement) pairs tried in order on a joint name; each rule maps left <-> right.
_RULES = (
    (r"Left", "Right"), (r"Right", "Left"), (r"left", "right"), (r"right", "left"),
    (r"LEFT", "RIGHT"), (r"RIGHT", "LEFT"),
    (r"(?<=[_.\- ])L(?=$|[_.\- \d])", "R"), (r"(?<=[_.\- ])R(?=$|[_.\- \d])", "L"),
    (r"(?<=[_.\- ])l(?=$|[_.\- \d])", "r"), (r"(?<=[_.\- ])r(?=$|[_.\- \d])", "l"),
    (r"^L(?=[A-Z_.\- ])", "R"), (r"^R(?=[A-Z_.\- ])", "L"),
    (r"^l_", "r_"), (r"^r_", "l_"),
)


def mirror_name(name: str, names) -> str:
    """The left/right partner of joint ``name`` among ``names`` (``LeftArm`` <-> ``RightArm``, ``LHipJoint`` <->
    ``RHipJoint``, ``thigh.L`` <-> ``thigh.R``, ``Bip01 L Thigh`` <-> ``Bip01 R Thigh``, ``l_hip`` <-> ``r_hip``);
    ``name`` itself for a joint on the mid-line."""
    names = set(names)
    for pattern, repl in _RULES:
        twin, count = re.subn(pattern, repl, name, count=1)
        if count and twin != name and twin in names:
            return twin
    return name


def mirror_permutation(names) -> np.ndarray:
    """``(j,)`` index of each joint's left/right partner (itself on the mid-line).

    Raises:
        ValueError: when the pairing is not symmetric (a partner whose partner is someone else).
    """
    names = list(names)
    perm = np.array([names.index(mirror_name(n, names)) for n in names], dtype=np.int64)
    if not (perm[perm] == np.arange(len(names))).all():
        bad = [names[i] for i in np.flatnonzero(perm[perm] != np.arange(len(names)))]
        raise ValueError(f"joint names {bad} have no consistent left/right partner")
    return perm


def mirror_motion(motion: Motion, *, suffix: str = "~mirror") -> Motion:
    """The left/right mirror of ``motion`` (reflected through x = 0, left and right trajectories swapped).

    Args:
        motion: the source motion (metres, Z-up).
        suffix: appended to the name of the mirrored motion.

    Returns:
        A new :class:`~skeletok.data.motion.core.Motion` on the same joint tree.

    Raises:
        ValueError: when the joint names have no left/right pairs at all (nothing could be mirrored
            consistently: the result would be a reflected body, not a mirrored motion).
    """
    perm = mirror_permutation(motion.joint_names)
    if (perm == np.arange(len(perm))).all():
        raise ValueError(f"Motion {motion.name!r}: no left/right joint pairs found in {motion.joint_names}; "
                         "cannot mirror it")
    pos = motion.positions[:, perm].copy()
    pos[..., 0] *= -1.0
    return Motion(motion.name + suffix, list(motion.joint_names), motion.parents.copy(), pos, motion.fps,
                  motion.action)


def evenly_spaced(motion: Motion, max_frames: int | None) -> Motion:
    """At most ``max_frames`` frames spread evenly over the whole take (first and last kept), never the first N.

    The frame rate is kept as metadata; the frames are no longer equally spaced in time by ``1 / fps`` when
    frames are dropped (single-frame training does not use it).
    """
    if max_frames is None or motion.num_frames <= max_frames:
        return motion
    idx = evenly_spaced_index(motion.num_frames, max_frames)
    return Motion(motion.name, list(motion.joint_names), motion.parents.copy(), motion.positions[idx], motion.fps,
                  motion.action)


def evenly_spaced_index(num_frames: int, max_frames: int | None) -> np.ndarray:
    """``(k,)`` indices of the frames :func:`evenly_spaced` keeps out of ``num_frames`` (all of them when
    ``max_frames`` is ``None`` or not below ``num_frames``)."""
    if max_frames is None or num_frames <= max_frames:
        return np.arange(num_frames, dtype=np.int64)
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    return np.unique(np.linspace(0, num_frames - 1, int(max_frames)).round().astype(np.int64))
