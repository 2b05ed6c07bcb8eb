"""Action labels per frame: from the source where it names the action, pseudo-labels otherwise.

HiPART's global alignment (Eq. 5) classifies each pose's action. Sources name actions in
different ways; :func:`action_from_name` turns a clip/sequence/file name into a short action
word (``"humanoid3d_backflip"`` -> ``"backflip"``, ``"climbing_03.npz"`` -> ``"climb"``,
``"walk_02.bvh"`` -> ``"walk"``). A :class:`~skeletok.data.motion.core.Motion` may carry its own
``action``, which wins.

Where the source gives no label, or one label for everything (so a classifier learns nothing),
:func:`pseudo_labels` clusters the poses instead: k-means (seeded, scipy's ``kmeans2`` with
k-means++ init) over *normalised* sparse poses: root-relative, the heading (yaw about +z) turned
to face +y, scaled to unit mean joint distance. These labels are named ``"cluster00"`` etc.

Shapes: ``n`` frames, ``j`` joints, ``c = 3``.
"""

from __future__ import annotations

import re

import numpy as np
from scipy.cluster.vq import kmeans2

__all__ = ["action_from_name", "normalise_poses", "pseudo_labels", "assign_actions"]

# Source words that all mean the same action, mapped to one name.
_SYNONYMS = {
    "climbing": "climb", "walking": "walk", "running": "run", "jumping": "jump", "dancing": "dance",
    "kicking": "kick", "punching": "punch", "spinkick": "kick", "sitting": "sit", "rolling": "roll",
}
_PREFIXES = ("humanoid3d_", "humanoid_", "biped3d_", "atlas_", "dog3d_")


def action_from_name(name: str) -> str:
    """A short action word from a clip, sequence or file name.

    Drops folders, the extension, known DeepMimic prefixes (``humanoid3d_``), take numbers and
    subject ids (``_01``, ``S1``), lower-cases, and maps synonyms (``climbing`` -> ``climb``).

    Raises:
        ValueError: if nothing is left of the name.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"\.(bvh|amc|npz|npy|txt|json)$", "", base, flags=re.I).lower()
    for prefix in _PREFIXES:
        if base.startswith(prefix):
            base = base[len(prefix):]
    words = [w for w in re.split(r"[^a-z0-9]+", base) if w and not re.fullmatch(r"(s|take|t)?\d+", w)]
    if not words:
        raise ValueError(f"name {name!r} holds no action word (only numbers or separators)")
    words = [_SYNONYMS.get(w, w) for w in words]
    return "_".join(words)


def normalise_poses(poses) -> np.ndarray:
    """Root-relative, heading-free, unit-scale poses for clustering, ``(n, j, 3)`` -> ``(n, j * 3)``.

    The heading is the direction of the left-to-right hip vector (joints 4 and 1 of
    Human3.6M-17) in the ground plane; each pose is turned about +z so that it faces +y.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[-1] != 3 or poses.shape[1] < 5:
        raise ValueError(f"poses must have shape (n, j >= 5, 3) in Human3.6M-17 order, got {poses.shape}")
    rel = poses - poses[:, :1]
    hips = rel[:, 1] - rel[:, 4]  # left hip -> right hip
    angle = np.arctan2(hips[:, 1], hips[:, 0])  # rotate so the hips lie along +x
    cos, sin = np.cos(-angle), np.sin(-angle)
    x = cos[:, None] * rel[..., 0] - sin[:, None] * rel[..., 1]
    y = sin[:, None] * rel[..., 0] + cos[:, None] * rel[..., 1]
    turned = np.stack([x, y, rel[..., 2]], axis=-1)
    scale = np.linalg.norm(turned, axis=-1).mean(-1, keepdims=True)[..., None]
    return (turned / np.maximum(scale, 1e-8)).reshape(len(poses), -1)


def pseudo_labels(poses, k: int = 8, *, seed: int = 0) -> np.ndarray:
    """k-means cluster ids of normalised poses, ``(n, j, 3)`` -> ``(n,)`` int64 in ``[0, k)``.

    Deterministic for a given ``seed``. Clusters are renumbered by decreasing size, so label 0
    is the most common pose family.
    """
    if int(k) < 1:
        raise ValueError(f"k must be a positive number of clusters, got {k}")
    feats = normalise_poses(poses)
    k = min(int(k), len(feats))
    if k == 1:
        return np.zeros(len(feats), dtype=np.int64)
    _, labels = kmeans2(feats, k, minit="++", seed=np.random.default_rng(seed))
    counts = np.bincount(labels, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(k)
    return rank[labels]


def assign_actions(sequence_actions, sequence, poses, *, k: int = 8, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Per-frame action ids and the action name table.

    Args:
        sequence_actions: one action name (or ``None`` for unknown) per sequence, ``(s,)``.
        sequence: ``(n,)`` sequence id of each frame.
        poses: ``(n, j, 3)`` sparse poses (Human3.6M-17 order), used for pseudo-labels.
        k: number of pose clusters for pseudo-labels.
        seed: k-means seed.

    Returns:
        ``(action (n,) int64, action_names)``. Frames of labelled sequences get their source
        label; frames of unlabelled sequences get pose clusters ``"clusterXX"``. If every
        sequence carries the same single label, all frames get pose clusters instead (one
        label for everything teaches the action head nothing).
    """
    sequence = np.asarray(sequence, dtype=np.int64)
    poses = np.asarray(poses)
    if len(poses) != len(sequence):
        raise ValueError(f"poses and sequence must have one entry per frame, got {len(poses)} and {len(sequence)}")
    if len(sequence) and (sequence.min() < 0 or sequence.max() >= len(sequence_actions)):
        raise ValueError(
            f"sequence ids must lie in [0, {len(sequence_actions)}), got range [{sequence.min()}, {sequence.max()}]"
        )
    labels = [None if a is None else str(a) for a in sequence_actions]
    known = sorted({a for a in labels if a is not None})
    if len(known) <= 1 and all(a is not None for a in labels):
        labels, known = [None] * len(labels), []
    frame_known = np.array([labels[s] is not None for s in sequence], dtype=bool)
    names = list(known)
    action = np.zeros(len(sequence), dtype=np.int64)
    for i, name in enumerate(known):
        ids = [s for s, a in enumerate(labels) if a == name]
        action[np.isin(sequence, ids)] = i
    if (~frame_known).any():
        clusters = pseudo_labels(poses[~frame_known], k=k, seed=seed)
        used = np.unique(clusters)
        remap = {c: len(names) + i for i, c in enumerate(used)}
        names += [f"cluster{c:02d}" for c in used]
        action[~frame_known] = np.array([remap[c] for c in clusters], dtype=np.int64)
    return action, names
